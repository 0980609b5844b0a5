// Host tests of the CUDA elementwise and copy kernels (cuda/elementwise_body.h, cuda/copy_body.h):
// the layout plans of cuda/elementwise_plan.h and the very functors the device launches, run in
// order over CPU tensors' storage and compared bit for bit with the CPU backend (cpu::unary,
// cpu::binary, cpu::axpy_, cpu::scale_, cpu::copy, cpu::fill). Every map, both floating dtypes (all
// three for copy and fill), contiguous, offset, transposed, permuted, stepped, reversed (negative
// strides), broadcast (stride 0), 0-d, empty and 16-dim operands, with NaN, +-inf, +-0 and
// overflowing values; strided destinations are compared with their whole storage, so a write
// outside the view fails too.
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iomanip>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "cpu/copy.h"
#include "cpu/elementwise.h"
#include "cuda/copy_body.h"
#include "cuda/elementwise_body.h"
#include "cuda/elementwise_plan.h"
#include "support/host_launch.h"
#include "support/test_util.h"

using namespace convtape;
namespace cu = convtape::cuda;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// ---------------------------------------------------------------- host twins of cuda/*.cpp

// When set, plans that chose 32-bit strided indexing use the 64-bit StridedIndexer instead, which
// the device only takes for 2^31 elements and more: the sweeps run both.
bool g_wide = false;

cu::MapLayout widened(cu::MapLayout m) {
  if (g_wide && m.layout == cu::Layout::Strided32) {
    m.layout = cu::Layout::Strided;
    // As on the device's large calls, the 32-bit indexers hold nothing useful.
    for (auto& ix : m.index32) ix = cu::StridedIndexer32{};
  }
  return m;
}

const char* width_name() {
  return g_wide ? "64-bit index, " : "";
}

// Runs f once with each strided index width.
template <class F>
void both_widths(F&& f) {
  for (bool wide : {false, true}) {
    g_wide = wide;
    f();
  }
  g_wide = false;
}

// What cuda::unary does, with the launch replaced by a host loop.
Tensor host_unary(Unary op, const Tensor& x, double p0 = 0.0, double p1 = 0.0) {
  Tensor y = Tensor::empty_cpu(x.shape(), x.dtype());
  if (y.numel() == 0) return y;
  const cu::MapLayout m = widened(cu::plan_unary("unary", x));
  const std::int64_t n = y.numel();
  dispatch_floating(x.dtype(), [&]<class T>() {
    cu::run_unary<T>(cu::unary_kind(op), static_cast<const T*>(x.raw_data()), y.data_ptr<T>(), m,
                     static_cast<T>(p0), static_cast<T>(p1),
                     [n](const auto& f) { ct_test::run_on_host(n, f); });
  });
  return y;
}

Tensor host_binary(Binary op, const Tensor& a, const Tensor& b, double p0 = 0.0, double p1 = 0.0) {
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), "binary");
  Tensor y = Tensor::empty_cpu(shape, a.dtype());
  if (y.numel() == 0) return y;
  const cu::MapLayout m = widened(cu::plan_binary("binary", a, b, shape));
  const std::int64_t n = y.numel();
  dispatch_floating(a.dtype(), [&]<class T>() {
    cu::run_binary<T>(cu::binary_kind(op), static_cast<const T*>(a.raw_data()),
                      static_cast<const T*>(b.raw_data()), y.data_ptr<T>(), m, static_cast<T>(p0),
                      static_cast<T>(p1), [n](const auto& f) { ct_test::run_on_host(n, f); });
  });
  return y;
}

void host_copy_unstaged(const Tensor& src, const Tensor& dst) {
  const cu::MapLayout m = widened(cu::plan_copy("copy", src, dst));
  const std::int64_t n = dst.numel();
  dispatch_all(dst.dtype(), [&]<class D>() {
    dispatch_all(src.dtype(), [&]<class S>() {
      cu::run_copy<D, S>(static_cast<const S*>(src.raw_data()), static_cast<D*>(dst.raw_data()), m,
                         [n](const auto& f) { ct_test::run_on_host(n, f); });
    });
  });
}

void host_copy(const Tensor& src, const Tensor& dst) {
  if (dst.numel() == 0) return;
  if (cu::copy_needs_staging(src, dst)) {
    const Tensor staged = Tensor::empty_cpu(src.shape(), src.dtype());
    host_copy_unstaged(src, staged);
    host_copy_unstaged(staged, dst);
  } else {
    host_copy_unstaged(src, dst);
  }
}

void host_fill(const Tensor& dst, double value) {
  if (dst.numel() == 0) return;
  const cu::MapLayout m = widened(cu::plan_fill("fill", dst));
  const std::int64_t n = dst.numel();
  dispatch_all(dst.dtype(), [&]<class T>() {
    cu::run_fill<T>(static_cast<T*>(dst.raw_data()), m, value,
                    [n](const auto& f) { ct_test::run_on_host(n, f); });
  });
}

// ---------------------------------------------------------------- comparisons

// Same shape and dtype, and the same bits element by element (any NaN matches any NaN; +0 and -0
// differ).
bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) {
    UNSCOPED_INFO("shape or dtype differs: " << to_string(a.shape()) << " " << dtype_name(a.dtype())
                                             << " vs " << to_string(b.shape()) << " "
                                             << dtype_name(b.dtype()));
    return false;
  }
  return dispatch_all(a.dtype(), [&]<class T>() {
    const auto va = a.to_vector<T>(), vb = b.to_vector<T>();
    for (std::size_t i = 0; i < va.size(); ++i) {
      if constexpr (!std::is_same_v<T, std::int64_t>)
        if (std::isnan(va[i]) && std::isnan(vb[i])) continue;
      if (std::memcmp(&va[i], &vb[i], sizeof(T)) != 0) {
        UNSCOPED_INFO("element " << i << ": " << std::setprecision(17) << va[i] << " vs " << vb[i]);
        return false;
      }
    }
    return true;
  });
}

// ---------------------------------------------------------------- operands

// Values that every map must get right, placed among uniform [-3, 3) ones.
const std::vector<double> kSpecials = {kNaN,  kInf,   -kInf, 0.0,  -0.0,  1.0,   -1.0,
                                       0.5,   -0.5,   2.0,   1e30, -1e30, 88.75, -100,
                                       1e-30, -1e-30, 0.75,  3.0,  -2.0,  1e-6};

// A 1-d storage of n values of dtype: uniform [-3, 3) with kSpecials at every third position.
Tensor make_base(std::int64_t n, DType dtype, std::uint64_t seed) {
  manual_seed(seed);
  Tensor base = uniform({n}, -3.0, 3.0, dtype);
  for (std::size_t k = 0; k < kSpecials.size() && static_cast<std::int64_t>(3 * k + 1) < n; ++k)
    base.put_({static_cast<std::int64_t>(3 * k + 1)}, kSpecials[k]);
  return base;
}

struct ViewSpec {
  std::string name;
  Shape shape, strides;
  std::int64_t offset = 0;
  cu::Layout layout = cu::Layout::Contiguous;  // what plan_unary must pick (unused when empty)
};

// Views over a 64-element storage, from the dense to the odd.
const std::vector<ViewSpec> kViews = {
    {"contiguous [2, 3, 4]", {2, 3, 4}, {12, 4, 1}, 0, cu::Layout::Contiguous},
    {"contiguous at offset 7 [5]", {5}, {1}, 7, cu::Layout::Contiguous},
    {"transposed [4, 3]", {4, 3}, {1, 4}, 0, cu::Layout::Strided32},
    {"permuted [4, 2, 3]", {4, 2, 3}, {1, 12, 4}, 0, cu::Layout::Strided32},
    {"narrowed [2, 3, 2] at offset 1", {2, 3, 2}, {12, 4, 1}, 1, cu::Layout::Strided32},
    {"step 2 [30]", {30}, {2}, 1, cu::Layout::Linear},
    {"reversed [12]", {12}, {-1}, 40, cu::Layout::Linear},
    {"reversed [3, 4] (one merged dim)", {3, 4}, {-4, -1}, 60, cu::Layout::Linear},
    {"reversed rows [3, 4]", {3, 4}, {-4, 1}, 50, cu::Layout::Strided32},
    {"expanded [3, 4] of [3, 1]", {3, 4}, {1, 0}, 2, cu::Layout::Strided32},
    {"all broadcast [2, 3]", {2, 3}, {0, 0}, 5, cu::Layout::Linear},
    {"0-d", {}, {}, 9, cu::Layout::Contiguous},
    {"size-1 dims with odd strides [1, 5, 1]", {1, 5, 1}, {77, 1, 33}, 2, cu::Layout::Contiguous},
    {"rank 6 mixed [2, 1, 3, 2, 2, 2]",
     {2, 1, 3, 2, 2, 2},
     {1, 5, 16, 2, 4, 8},
     0,
     cu::Layout::Strided32},
    {"empty [0, 3]", {0, 3}, {3, 1}, 0, cu::Layout::Contiguous},
    {"empty [4, 0]", {4, 0}, {-1, 1}, 10, cu::Layout::Contiguous},
};

Tensor view_of(const Tensor& base, const ViewSpec& v) {
  return Tensor::make(base.storage(), v.shape, v.strides, v.offset, base.dtype());
}

// Unary maps with their parameters.
struct UnaryCase {
  const char* name;
  Unary op;
  double p0 = 0.0, p1 = 0.0;
};
const std::vector<UnaryCase> kUnaryCases = {
    {"neg", Unary::Neg},
    {"exp", Unary::Exp},
    {"log", Unary::Log},
    {"sqrt", Unary::Sqrt},
    {"abs", Unary::Abs},
    {"sign", Unary::Sign},
    {"relu", Unary::Relu},
    {"sigmoid", Unary::Sigmoid},
    {"tanh", Unary::Tanh},
    {"leaky_relu 0.01", Unary::LeakyRelu, 0.01},
    {"leaky_relu 0.2", Unary::LeakyRelu, 0.2},
    {"clamp [-0.5, 0.75]", Unary::Clamp, -0.5, 0.75},
    {"clamp [-inf, 0.3]", Unary::Clamp, -kInf, 0.3},
    {"clamp [0.2, inf]", Unary::Clamp, 0.2, kInf},
    {"pow 2", Unary::PowScalar, 2.0},
    {"pow 0.5", Unary::PowScalar, 0.5},
    {"pow -1.5", Unary::PowScalar, -1.5},
    {"pow 3", Unary::PowScalar, 3.0},
    {"pow 0", Unary::PowScalar, 0.0},
    {"add 1.25", Unary::AddScalar, 1.25},
    {"mul -3", Unary::MulScalar, -3.0},
    {"div 3", Unary::DivScalar, 3.0},
    {"div 0.1", Unary::DivScalar, 0.1},
    {"rsub 2", Unary::RSubScalar, 2.0},
    {"rdiv 1.5", Unary::RDivScalar, 1.5},
};

struct BinaryCase {
  const char* name;
  Binary op;
  double p0 = 0.0, p1 = 0.0;
};
const std::vector<BinaryCase> kBinaryCases = {
    {"add", Binary::Add},
    {"sub", Binary::Sub},
    {"mul", Binary::Mul},
    {"div", Binary::Div},
    {"pow", Binary::Pow},
    {"relu grad", Binary::ReluGrad},
    {"leaky_relu grad 0.1", Binary::LeakyReluGrad, 0.1},
    {"sigmoid grad", Binary::SigmoidGrad},
    {"tanh grad", Binary::TanhGrad},
    {"abs grad", Binary::AbsGrad},
    {"clamp grad [-0.5, 0.5]", Binary::ClampGrad, -0.5, 0.5},
    {"clamp grad [-inf, 1]", Binary::ClampGrad, -kInf, 1.0},
    {"sqrt grad", Binary::SqrtGrad},
    {"pow grad 2.5", Binary::PowScalarGrad, 2.5},
    {"pow grad 3", Binary::PowScalarGrad, 3.0},
    {"pow grad 0", Binary::PowScalarGrad, 0.0},
};

// Binary operand pairs: each view is {shape, strides, offset} over its own 64-element storage.
struct PairSpec {
  std::string name;
  ViewSpec a, b;
  cu::Layout layout;
};
const std::vector<PairSpec> kPairs = {
    {"same shape, contiguous",
     {"", {3, 4}, {4, 1}, 0},
     {"", {3, 4}, {4, 1}, 3},
     cu::Layout::Contiguous},
    {"contiguous with transposed",
     {"", {3, 4}, {4, 1}, 0},
     {"", {3, 4}, {1, 3}, 0},
     cu::Layout::Strided32},
    {"[2, 3, 4] with [4]",
     {"", {2, 3, 4}, {12, 4, 1}, 0},
     {"", {4}, {1}, 5},
     cu::Layout::Strided32},
    {"[3, 1, 4] with [2, 1]",
     {"", {3, 1, 4}, {4, 4, 1}, 0},
     {"", {2, 1}, {1, 1}, 0},
     cu::Layout::Strided32},
    {"[] with [2, 3]", {"", {}, {}, 4}, {"", {2, 3}, {3, 1}, 0}, cu::Layout::Linear},
    {"[2, 3] with []", {"", {2, 3}, {3, 1}, 0}, {"", {}, {}, 4}, cu::Layout::Linear},
    {"[4] with [2, 3, 4]",
     {"", {4}, {1}, 0},
     {"", {2, 3, 4}, {12, 4, 1}, 0},
     cu::Layout::Strided32},
    {"[2, 1] with [1, 3]", {"", {2, 1}, {1, 1}, 0}, {"", {1, 3}, {3, 1}, 0}, cu::Layout::Strided32},
    {"[2, 3, 1] with [3, 4]",
     {"", {2, 3, 1}, {3, 1, 1}, 0},
     {"", {3, 4}, {4, 1}, 0},
     cu::Layout::Strided32},
    {"stepped with reversed [20]", {"", {20}, {3}, 1}, {"", {20}, {-2}, 50}, cu::Layout::Linear},
    {"[] with []", {"", {}, {}, 3}, {"", {}, {}, 8}, cu::Layout::Contiguous},
    {"expanded with permuted [4, 3]",
     {"", {4, 3}, {0, 1}, 0},
     {"", {4, 3}, {1, 4}, 0},
     cu::Layout::Strided32},
    {"rank 5 [2, 1, 3, 1, 2] with [1, 2, 1, 2, 1]",
     {"", {2, 1, 3, 1, 2}, {6, 1, 2, 1, 1}, 0},
     {"", {1, 2, 1, 2, 1}, {1, 10, 1, 3, 1}, 0},
     cu::Layout::Strided32},
    {"[0, 3] with [3]", {"", {0, 3}, {3, 1}, 0}, {"", {3}, {1}, 0}, cu::Layout::Contiguous},
};

const std::array<DType, 2> kFloating = {kFloat32, kFloat64};
const std::array<DType, 3> kAllDtypes = {kFloat32, kFloat64, kInt64};

}  // namespace

// ---------------------------------------------------------------- plans

TEST_CASE("layout plans merge jointly contiguous dims and pick the cheapest index",
          "[cpu][cuda_body]") {
  const Tensor base = make_base(64, kFloat32, 1);
  for (const auto& v : kViews) {
    const Tensor x = view_of(base, v);
    if (x.numel() == 0) continue;
    INFO(v.name);
    CHECK(cu::plan_unary("unary", x).layout == v.layout);
  }
  for (const auto& p : kPairs) {
    const Tensor a = view_of(base, p.a), b = view_of(base, p.b);
    const Shape shape = broadcast_shapes(a.shape(), b.shape(), "binary");
    if (numel(shape) == 0) continue;
    INFO(p.name);
    CHECK(cu::plan_binary("binary", a, b, shape).layout == p.layout);
  }
  SECTION("a narrowed [2, 3, 2] of [2, 3, 4] merges its two leading dims") {
    const cu::MapLayout m = cu::plan_unary("unary", view_of(base, kViews[4]));
    REQUIRE(m.layout == cu::Layout::Strided32);
    REQUIRE(m.index[0].ndim == 2);
    CHECK(m.index[0].sizes[0] == 6);
    CHECK(m.index[0].sizes[1] == 2);
    CHECK(m.index[0].strides[0] == 4);
    CHECK(m.index[0].strides[1] == 1);
  }
  SECTION("a broadcast operand keeps dims apart that the other would merge") {
    const Tensor a = arange(24).reshape({2, 3, 4});
    const Tensor b = arange(4);
    const cu::MapLayout m = cu::plan_binary("binary", a, b, a.shape());
    REQUIRE(m.index[0].ndim == 2);
    CHECK(m.index[0].sizes[0] == 6);
    CHECK(m.index[0].strides[0] == 4);
    CHECK(m.index[1].strides[0] == 0);
    CHECK(m.index[1].strides[1] == 1);
  }
  SECTION("copy and fill plans index the destination as operand 0") {
    const Tensor dst = arange(12).reshape({3, 4}).transpose(0, 1);
    const Tensor src = arange(3);
    const cu::MapLayout m = widened(cu::plan_copy("copy", src, dst));
    REQUIRE(m.layout == cu::Layout::Strided32);
    CHECK(m.index[0].strides[0] == 1);
    CHECK(m.index[0].strides[1] == 4);
    CHECK(m.index[1].strides[0] == 0);
    CHECK(m.index[1].strides[1] == 1);
    CHECK(cu::plan_fill("fill", dst).layout == cu::Layout::Strided32);
    CHECK(cu::plan_fill("fill", dst.contiguous()).layout == cu::Layout::Contiguous);
  }
  SECTION("more than kMaxDims dims after merging are refused") {
    std::vector<std::int64_t> reverse(17);
    for (std::size_t d = 0; d < 17; ++d) reverse[d] = static_cast<std::int64_t>(16 - d);
    const Tensor x = arange(1 << 17).reshape(Shape(17, 2)).permute(reverse);
    CT_REQUIRE_ERROR(cu::plan_unary("unary", x),
                     "unary: expected at most 16 dims once the contiguous ones are merged, got 17");
    // The same shape, contiguous, is one dim.
    CHECK(cu::plan_unary("unary", x.contiguous()).layout == cu::Layout::Contiguous);
  }
  SECTION("every Unary and Binary has its kind") {
    for (const auto& c : kUnaryCases)
      CHECK(static_cast<int>(cu::unary_kind(c.op)) == static_cast<int>(c.op));
    for (const auto& c : kBinaryCases)
      CHECK(static_cast<int>(cu::binary_kind(c.op)) == static_cast<int>(c.op));
  }
}

TEST_CASE("index spaces of 2^31 elements and more take the 64-bit indexer", "[cpu][cuda_body]") {
  // An expanded view: 2^32 elements over a storage of two.
  const Tensor x = arange(2).reshape({2, 1}).expand({2, std::int64_t{1} << 31});
  const cu::MapLayout m = cu::plan_unary("unary", x);
  REQUIRE(m.layout == cu::Layout::Strided);
  for (std::int64_t i : {std::int64_t{0}, (std::int64_t{1} << 31) - 1, std::int64_t{1} << 31,
                         (std::int64_t{1} << 32) - 1})
    CHECK(m.index[0].offset(i) == (i >> 31));
  CHECK(cu::plan_unary("unary", x.narrow(1, 0, (std::int64_t{1} << 30) - 1)).layout ==
        cu::Layout::Strided32);
}

TEST_CASE("the multiply-shift divider divides exactly below 2^31", "[cpu][cuda_body]") {
  std::vector<std::uint32_t> divisors;
  for (std::uint32_t d = 1; d <= 3000; ++d) divisors.push_back(d);
  for (int s = 2; s <= 31; ++s)
    for (std::int64_t delta : {-1, 0, 1})
      if (const std::int64_t d = (std::int64_t{1} << s) + delta; d <= (std::int64_t{1} << 31))
        divisors.push_back(static_cast<std::uint32_t>(d));
  std::mt19937 rng(7);
  for (int k = 0; k < 3000; ++k)
    divisors.push_back(std::uniform_int_distribution<std::uint32_t>(1, 1u << 31)(rng));
  std::uniform_int_distribution<std::uint32_t> any_n(0, (1u << 31) - 1);
  std::int64_t bad = 0;
  for (std::uint32_t d : divisors) {
    const cu::FastDivider f(d);
    std::vector<std::uint32_t> ns = {0, 1, (1u << 31) - 1, (1u << 31) - 2};
    for (std::uint64_t q : {std::uint64_t{1}, std::uint64_t{2}, std::uint64_t{3},
                            (std::uint64_t{1} << 31) / d, (std::uint64_t{1} << 31) / d - 1})
      for (std::int64_t r : {-1, 0, 1})
        if (const std::int64_t n = static_cast<std::int64_t>(q * d) + r;
            n >= 0 && n < (std::int64_t{1} << 31))
          ns.push_back(static_cast<std::uint32_t>(n));
    for (int k = 0; k < 200; ++k) ns.push_back(any_n(rng));
    for (std::uint32_t n : ns)
      if (f.div(n) != n / d) {
        if (bad++ < 5) UNSCOPED_INFO(n << " / " << d << ": " << f.div(n) << ", expected " << n / d);
      }
  }
  REQUIRE(bad == 0);
}

// ---------------------------------------------------------------- unary

TEST_CASE("unary bodies match cpu::unary bit for bit", "[cpu][cuda_body]") {
  both_widths([&] {
    for (DType dt : kFloating) {
      const Tensor base = make_base(64, dt, 2);
      for (const auto& v : kViews) {
        const Tensor x = view_of(base, v);
        for (const auto& c : kUnaryCases) {
          INFO(width_name() << dtype_name(dt) << ", " << v.name << ", " << c.name);
          const Tensor got = host_unary(c.op, x, c.p0, c.p1);
          REQUIRE(got.is_contiguous());
          REQUIRE(same_bits(got, cpu::unary(c.op, x, c.p0, c.p1)));
        }
      }
    }
  });
}

TEST_CASE("unary bodies: documented values at the edges", "[cpu][cuda_body]") {
  const Tensor x = tensor({kNaN, -kInf, -1000, -0.0, 0.0, 1000, kInf}, kFloat64);
  const auto at = [](const Tensor& t, std::int64_t i) { return t.to_vector<double>()[i]; };
  const Tensor s = host_unary(Unary::Sigmoid, x);
  CHECK(std::isnan(at(s, 0)));
  CHECK(at(s, 1) == 0.0);
  CHECK(at(s, 2) == 0.0);  // the negative branch: no exp overflow, no NaN
  CHECK(at(s, 5) == 1.0);
  CHECK(at(s, 6) == 1.0);
  const Tensor r = host_unary(Unary::Relu, x);
  CHECK(std::isnan(at(r, 0)));
  CHECK(!std::signbit(at(r, 3)));  // relu(-0) = +0
  const Tensor g = host_unary(Unary::Sign, x);
  CHECK(at(g, 0) == 0.0);
  CHECK(at(g, 1) == -1.0);
  CHECK(at(g, 3) == 0.0);
  const Tensor c = host_unary(Unary::Clamp, x, -1, 1);
  CHECK(std::isnan(at(c, 0)));
  CHECK(at(c, 1) == -1.0);
  CHECK(at(c, 6) == 1.0);
  // A true division: 49 / 49 is 1, where 49 * (1 / 49) is not.
  CHECK(host_unary(Unary::DivScalar, tensor({49.0}, kFloat64), 49.0).item() == 1.0);
  CHECK(host_unary(Unary::DivScalar, tensor({-1785.0}, kFloat32), 7.0).item() == -255.0);
}

TEST_CASE("unary bodies on 16 unmergeable dims", "[cpu][cuda_body]") {
  both_widths([&] {
    std::vector<std::int64_t> reverse(16);
    for (std::size_t d = 0; d < 16; ++d) reverse[d] = static_cast<std::int64_t>(15 - d);
    for (DType dt : kFloating) {
      manual_seed(3);
      const Tensor x = uniform({1 << 16}, -2, 2, dt).reshape(Shape(16, 2)).permute(reverse);
      const cu::MapLayout m = cu::plan_unary("unary", x);
      REQUIRE(m.index[0].ndim == 16);
      REQUIRE(same_bits(host_unary(Unary::Tanh, x), cpu::unary(Unary::Tanh, x)));
      REQUIRE(same_bits(host_binary(Binary::Sub, x, x.contiguous()),
                        cpu::binary(Binary::Sub, x, x.contiguous())));
    }
  });
}

// ---------------------------------------------------------------- binary

TEST_CASE("binary bodies match cpu::binary bit for bit", "[cpu][cuda_body]") {
  both_widths([&] {
    for (DType dt : kFloating) {
      const Tensor base_a = make_base(64, dt, 4);
      const Tensor base_b = make_base(64, dt, 5);
      for (const auto& p : kPairs) {
        const Tensor a = view_of(base_a, p.a), b = view_of(base_b, p.b);
        for (const auto& c : kBinaryCases) {
          INFO(width_name() << dtype_name(dt) << ", " << p.name << ", " << c.name);
          const Tensor got = host_binary(c.op, a, b, c.p0, c.p1);
          REQUIRE(got.is_contiguous());
          REQUIRE(same_bits(got, cpu::binary(c.op, a, b, c.p0, c.p1)));
          // And with the operands swapped, which moves the broadcast to the other side.
          REQUIRE(
              same_bits(host_binary(c.op, b, a, c.p0, c.p1), cpu::binary(c.op, b, a, c.p0, c.p1)));
        }
      }
    }
  });
}

TEST_CASE("binary bodies on larger random broadcasts", "[cpu][cuda_body]") {
  both_widths([&] {
    // [7, 1, 33] with [5, 1] and transposed views: thousands of outputs through every layout.
    for (DType dt : kFloating) {
      manual_seed(6);
      const Tensor a = uniform({7, 1, 33}, 0.1, 3, dt);
      const Tensor b = uniform({5, 1}, -2, 2, dt);
      const Tensor at = uniform({33, 5, 7}, -2, 2, dt).permute({2, 1, 0});
      for (const auto& c : kBinaryCases) {
        INFO(width_name() << dtype_name(dt) << ", " << c.name);
        REQUIRE(
            same_bits(host_binary(c.op, a, b, c.p0, c.p1), cpu::binary(c.op, a, b, c.p0, c.p1)));
        REQUIRE(
            same_bits(host_binary(c.op, a, at, c.p0, c.p1), cpu::binary(c.op, a, at, c.p0, c.p1)));
      }
    }
  });
}

// ---------------------------------------------------------------- axpy_ and scale_

TEST_CASE("axpy and scale bodies match cpu::axpy_ and cpu::scale_", "[cpu][cuda_body]") {
  for (DType dt : kFloating) {
    for (std::int64_t n : {1, 7, 1000}) {
      for (double alpha : {1.0, -0.1, 1e-3, 3.7}) {
        INFO(dtype_name(dt) << ", n " << n << ", alpha " << alpha);
        manual_seed(static_cast<std::uint64_t>(n));
        const Tensor x = uniform({n}, -5, 5, dt);
        Tensor expect = uniform({n}, -5, 5, dt);
        Tensor got = expect.clone();
        cpu::axpy_(expect, x, alpha);
        dispatch_floating(dt, [&]<class T>() {
          ct_test::run_on_host(
              n, cu::AxpyMap<T>{got.data_ptr<T>(), x.data_ptr<T>(), static_cast<T>(alpha)});
        });
        REQUIRE(same_bits(got, expect));
        cpu::scale_(expect, alpha);
        dispatch_floating(dt, [&]<class T>() {
          ct_test::run_on_host(n, cu::ScaleMap<T>{got.data_ptr<T>(), static_cast<T>(alpha)});
        });
        REQUIRE(same_bits(got, expect));
      }
    }
  }
}

// ---------------------------------------------------------------- copy and fill

namespace {

// Sources for copies: floating ones hold fractions of both signs (truncation, not floor, toward
// int64), int64 ones hold values that float32 and float64 must round.
Tensor copy_source_base(DType dt) {
  if (dt == kInt64) {
    std::vector<std::int64_t> v;
    const std::vector<std::int64_t> picks = {(std::int64_t{1} << 53) + 1,
                                             (std::int64_t{1} << 62) + 12345,
                                             -(std::int64_t{1} << 60) - 1,
                                             16777217,
                                             -16777217,
                                             0,
                                             7,
                                             -3,
                                             std::numeric_limits<std::int64_t>::max(),
                                             std::numeric_limits<std::int64_t>::min()};
    for (std::size_t i = 0; i < 64; ++i) v.push_back(picks[i % picks.size()]);
    return from_vector(v, {64});
  }
  manual_seed(7);
  Tensor base = uniform({64}, -1e6, 1e6, dt);
  const std::vector<double> picks = {-2.7,       2.7,         -0.5,       0.5,    -0.0,
                                     1e15 + 0.5, -1e15 - 0.5, 16777217.0, 3.4e38, 1e-40};
  for (std::size_t k = 0; k < picks.size(); ++k)
    base.put_({static_cast<std::int64_t>(5 * k)}, picks[k]);
  return base;
}

struct CopySpec {
  std::string name;
  ViewSpec src, dst;  // dst is a view into a 64-element storage of sentinels
};
const std::vector<CopySpec> kCopies = {
    {"contiguous to contiguous", {"", {3, 4}, {4, 1}, 2}, {"", {3, 4}, {4, 1}, 1}},
    {"transposed to contiguous", {"", {4, 3}, {1, 4}, 0}, {"", {4, 3}, {3, 1}, 0}},
    {"contiguous to transposed", {"", {4, 3}, {3, 1}, 0}, {"", {4, 3}, {1, 4}, 3}},
    {"[4] broadcast to [3, 4]", {"", {4}, {1}, 9}, {"", {3, 4}, {4, 1}, 0}},
    {"[] broadcast to [2, 3]", {"", {}, {}, 9}, {"", {2, 3}, {3, 1}, 0}},
    {"[3, 1] broadcast to stepped [3, 4]", {"", {3, 1}, {1, 1}, 0}, {"", {3, 4}, {8, 2}, 1}},
    {"reversed to reversed [2, 5]", {"", {2, 5}, {-5, -1}, 20}, {"", {2, 5}, {-1, -2}, 40}},
    {"expanded [3, 4] to [2, 3, 4]", {"", {3, 4}, {0, 1}, 3}, {"", {2, 3, 4}, {1, 8, 2}, 0}},
    {"permuted rank 4", {"", {2, 2, 3, 2}, {1, 12, 4, 2}, 0}, {"", {2, 2, 3, 2}, {12, 6, 2, 1}, 1}},
    {"0-d to 0-d", {"", {}, {}, 4}, {"", {}, {}, 60}},
    {"empty", {"", {0, 4}, {4, 1}, 0}, {"", {0, 4}, {1, 0}, 0}},
};

constexpr double kSentinel = -77.0;

Tensor sentinel_base(DType dt) {
  return full({64}, kSentinel, dt);
}

}  // namespace

TEST_CASE("copy bodies match cpu::copy for every dtype pair and layout", "[cpu][cuda_body]") {
  both_widths([&] {
    for (DType sd : kAllDtypes) {
      const Tensor src_base = copy_source_base(sd);
      for (DType dd : kAllDtypes) {
        for (const auto& c : kCopies) {
          INFO(width_name() << dtype_name(sd) << " to " << dtype_name(dd) << ", " << c.name);
          const Tensor src = view_of(src_base, c.src);
          const Tensor got_base = sentinel_base(dd), expect_base = sentinel_base(dd);
          host_copy(src, view_of(got_base, c.dst));
          cpu::copy(src, view_of(expect_base, c.dst));
          // The whole storage: elements outside the view must keep their sentinel.
          REQUIRE(same_bits(got_base, expect_base));
        }
      }
    }
  });
}

TEST_CASE("float to int64 conversion: truncation, and INT64_MIN where C++ defines nothing",
          "[cpu][cuda_body]") {
  constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
  CHECK(cu::convert<std::int64_t>(-2.7) == -2);
  CHECK(cu::convert<std::int64_t>(2.7f) == 2);
  CHECK(cu::convert<std::int64_t>(-0.5) == 0);
  CHECK(cu::convert<std::int64_t>(9223372036854774784.0) == 9223372036854774784);  // 2^63 - 1024
  CHECK(cu::convert<std::int64_t>(-9223372036854775808.0) == kMin);                // -2^63 exactly
  CHECK(cu::convert<std::int64_t>(9223371487098961920.0f) == 9223371487098961920);
  for (double v : {kNaN, kInf, -kInf, 9223372036854775808.0, 1e19, -9.3e18}) {
    INFO(v);
    CHECK(cu::convert<std::int64_t>(v) == kMin);
    CHECK(cu::convert<std::int64_t>(static_cast<float>(v)) == kMin);
  }
  CHECK(cu::convert<float>(std::int64_t{16777217}) == 16777216.0f);
  CHECK(cu::convert<double>((std::int64_t{1} << 53) + 1) == 9007199254740992.0);
  CHECK(cu::convert<float>(1e300) == std::numeric_limits<float>::infinity());
  CHECK(std::isnan(cu::convert<float>(kNaN)));
  // Through the copy body.
  const Tensor src = tensor({kNaN, -3.9, 1e20}, kFloat64);
  const Tensor dst = empty({3}, kInt64);
  host_copy(src, dst);
  CHECK(dst.to_vector<std::int64_t>() == std::vector<std::int64_t>{kMin, -3, kMin});
}

TEST_CASE("copies between overlapping views read the source as it was", "[cpu][cuda_body]") {
  for (DType dt : kFloating) {
    INFO(dtype_name(dt));
    SECTION("shifted by one") {
      const Tensor base = arange(0, 12, 1, dt);
      const Tensor expect_base = base.clone();
      const Tensor src = base.narrow(0, 0, 11), dst = base.narrow(0, 1, 11);
      REQUIRE(cu::copy_needs_staging(src, dst));
      host_copy(src, dst);
      cpu::copy(expect_base.narrow(0, 0, 11).clone(), expect_base.narrow(0, 1, 11));
      REQUIRE(same_bits(base, expect_base));
      CHECK(base.to_vector<double>()[11] == 10.0);  // not 0: no value travelled twice
    }
    SECTION("a square matrix transposed onto itself") {
      const Tensor m = arange(0, 16, 1, dt).reshape({4, 4});
      const Tensor expect = m.transpose(0, 1).contiguous();
      REQUIRE(cu::copy_needs_staging(m.transpose(0, 1), m));
      host_copy(m.transpose(0, 1), m);
      REQUIRE(same_bits(m, expect));
    }
    SECTION("reversed onto itself") {
      const Tensor base = arange(0, 9, 1, dt);
      const Tensor rev = Tensor::make(base.storage(), {9}, {-1}, 8, dt);
      const Tensor expect = rev.contiguous();
      REQUIRE(cu::copy_needs_staging(rev, base));
      host_copy(rev, base);
      REQUIRE(same_bits(base, expect));
    }
    SECTION("views that need no staging") {
      const Tensor base = arange(0, 12, 1, dt);
      CHECK(!cu::copy_needs_staging(base, base));  // the same view
      CHECK(!cu::copy_needs_staging(base.reshape({3, 4}), base.reshape({3, 4})));
      CHECK(!cu::copy_needs_staging(base.narrow(0, 0, 6), base.narrow(0, 6, 6)));  // disjoint
      CHECK(!cu::copy_needs_staging(base, base.clone()));                          // other storage
      CHECK(!cu::copy_needs_staging(base.narrow(0, 0, 0), base));                  // empty
      // Interleaved views touch overlapping byte ranges: staged although they never share an
      // element, which costs a copy but is never wrong.
      CHECK(cu::copy_needs_staging(slice(base, 0, 0, 12, 2), slice(base, 0, 1, 12, 2)));
      // A broadcast source that is part of the destination.
      CHECK(cu::copy_needs_staging(base.narrow(0, 0, 4), base.reshape({3, 4})));
    }
  }
}

TEST_CASE("fill bodies match cpu::fill for every dtype and layout", "[cpu][cuda_body]") {
  both_widths([&] {
    for (DType dt : kAllDtypes) {
      for (const auto& v : kViews) {
        for (double value : {2.5, -3.7, 0.0, -0.0, 1e300, kNaN, kInf}) {
          // Out-of-range int64 conversions have no C++ value to compare with (see the test above).
          if (dt == kInt64 && !(std::abs(value) < 1e18)) continue;
          INFO(width_name() << dtype_name(dt) << ", " << v.name << ", value " << value);
          const Tensor got_base = sentinel_base(dt), expect_base = sentinel_base(dt);
          host_fill(view_of(got_base, v), value);
          cpu::fill(view_of(expect_base, v), value);
          REQUIRE(same_bits(got_base, expect_base));
        }
      }
    }
  });
}
