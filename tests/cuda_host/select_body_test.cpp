// Host tests of the CUDA comparison and selection kernels (cuda/select_body.h): the layout plans
// of cuda/select_plan.h and the very functors cuda/select.cu launches, run in order over CPU
// tensors' storage and compared bit for bit with the CPU backend (cpu::compare, cpu::where,
// cpu::nonzero_flat, cpu::topk). Every compare map, all three dtypes, contiguous, broadcast,
// transposed and offset operands, NaN, +-inf and +-0; nonzero through a host exclusive scan (CUB's
// on the device); topk with ties, NaN and every k.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <vector>

#include "cpu/select.h"
#include "cuda/select_body.h"
#include "cuda/select_plan.h"
#include "support/host_launch.h"
#include "support/test_util.h"

using namespace convtape;
namespace cu = convtape::cuda;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

const auto host = [](std::int64_t n, const auto& f) {
  ct_test::run_on_host(n, f);
  return 0;
};

bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) {
    UNSCOPED_INFO("shape or dtype differs: " << to_string(a.shape()) << " vs "
                                             << to_string(b.shape()));
    return false;
  }
  const auto size = static_cast<std::size_t>(dtype_size(a.dtype()));
  const auto* pa = static_cast<const unsigned char*>(a.raw_data());
  const auto* pb = static_cast<const unsigned char*>(b.raw_data());
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    const auto at = static_cast<std::size_t>(i) * size;
    if (std::memcmp(pa + at, pb + at, size) != 0) {
      UNSCOPED_INFO("element " << i << " differs");
      return false;
    }
  }
  return true;
}

// Values with ties, NaN, infinities and signed zeros (integers for int64).
Tensor values(DType dt, const Shape& shape, unsigned seed) {
  const std::vector<double> pool =
      dt == kInt64 ? std::vector<double>{-2, -1, 0, 1, 2, 3, 1 << 20}
                   : std::vector<double>{-2, -1, 0, -0.0, 1, 2.5, kNaN, kInf, -kInf, 1e-300};
  std::vector<double> v(static_cast<std::size_t>(numel(shape)));
  unsigned s = seed;
  for (auto& x : v) {
    s = s * 1103515245u + 12345u;
    x = pool[(s >> 8) % pool.size()];
  }
  return tensor(v, shape, kFloat64).to(dt);
}

template <class T>
const T* at(const Tensor& t) {
  return static_cast<const T*>(t.raw_data());
}

// The CUDA compare on the host: cuda/select.cpp without the device.
Tensor host_compare(Compare op, const Tensor& a, const Tensor& b) {
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), "compare");
  Tensor y = Tensor::empty_cpu(shape, a.dtype());
  if (y.numel() == 0) return y;
  const cu::MapLayout layout = cu::plan_binary("compare", a, b, shape);
  dispatch_all(a.dtype(), [&]<class T>() {
    cu::run_compare<T>(cu::compare_kind(op), at<T>(a), at<T>(b), y.data_ptr<T>(), layout,
                       [&](const auto& f) { return host(y.numel(), f); });
  });
  return y;
}

Tensor host_where(const Tensor& c, const Tensor& a, const Tensor& b) {
  const Shape shape =
      broadcast_shapes(broadcast_shapes(c.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor y = Tensor::empty_cpu(shape, a.dtype());
  if (y.numel() == 0) return y;
  const cu::MapLayout layout = cu::plan_where("where", c, a, b, shape);
  dispatch_all(a.dtype(), [&]<class T>() {
    cu::run_where<T>(at<T>(c), at<T>(a), at<T>(b), y.data_ptr<T>(), layout,
                     [&](const auto& f) { return host(y.numel(), f); });
  });
  return y;
}

Tensor host_nonzero(const Tensor& mask) {
  const std::int64_t n = mask.numel();
  std::vector<std::int64_t> flags(static_cast<std::size_t>(n)), pos(static_cast<std::size_t>(n));
  dispatch_all(mask.dtype(), [&]<class T>() {
    host(n, cu::NonzeroFlag<T>{at<T>(mask), flags.data()});
  });
  std::exclusive_scan(flags.begin(), flags.end(), pos.begin(), std::int64_t{0});
  const std::int64_t count = n > 0 ? pos.back() + flags.back() : 0;
  Tensor out = Tensor::empty_cpu({count}, kInt64);
  if (count > 0)
    host(n, cu::NonzeroScatter{flags.data(), pos.data(), out.data_ptr<std::int64_t>()});
  return out;
}

Tensor host_topk(const Tensor& x, std::int64_t k, bool largest, Tensor* indices) {
  const std::int64_t rows = x.size(0), n = x.size(1);
  Tensor v = Tensor::empty_cpu({rows, k}, x.dtype());
  *indices = Tensor::empty_cpu({rows, k}, kInt64);
  if (rows > 0 && k > 0)
    dispatch_all(x.dtype(), [&]<class T>() {
      host(rows, cu::TopkRow<T>{at<T>(x), v.data_ptr<T>(), indices->data_ptr<std::int64_t>(), n, k,
                                largest});
    });
  return v;
}

const std::vector<Compare> kAllCompares = {Compare::Eq,  Compare::Ne, Compare::Lt,  Compare::Le,
                                           Compare::Gt,  Compare::Ge, Compare::And, Compare::Or,
                                           Compare::Max, Compare::Min};

}  // namespace

TEST_CASE("cuda compare body: every map, dtype and layout, bit for bit", "[cuda_host][select]") {
  struct Pair {
    Shape a, b;
  };
  const std::vector<Pair> pairs = {{{5, 7}, {5, 7}}, {{5, 1}, {7}},       {{}, {3, 4}},
                                   {{2, 3, 4}, {}},  {{4, 1, 3}, {2, 1}}, {{0, 3}, {3}}};
  unsigned seed = 1;
  for (const DType dt : {kFloat32, kFloat64, kInt64})
    for (const auto& p : pairs) {
      const Tensor a = values(dt, p.a, seed++), b = values(dt, p.b, seed++);
      for (const Compare op : kAllCompares) {
        INFO(dtype_name(dt) << " " << to_string(p.a) << " " << to_string(p.b) << " op "
                            << static_cast<int>(op));
        REQUIRE(same_bits(host_compare(op, a, b), cpu::compare(op, a, b)));
      }
    }
  // Transposed and offset (narrowed) operands.
  for (const DType dt : {kFloat32, kFloat64, kInt64}) {
    const Tensor a = values(dt, {6, 5}, 91), b = values(dt, {5, 8}, 92);
    const Tensor at_ = a.t(), bn = b.narrow(1, 2, 6);
    for (const Compare op : kAllCompares) {
      INFO(dtype_name(dt) << " strided, op " << static_cast<int>(op));
      REQUIRE(same_bits(host_compare(op, at_, bn), cpu::compare(op, at_, bn)));
    }
  }
}

TEST_CASE("cuda where body: broadcast and strided, bit for bit", "[cuda_host][select]") {
  unsigned seed = 40;
  for (const DType dt : {kFloat32, kFloat64, kInt64}) {
    const std::vector<std::vector<Shape>> shapes = {{{4, 5}, {4, 5}, {4, 5}},
                                                    {{4, 1}, {5}, {}},
                                                    {{2, 1, 3}, {4, 1}, {2, 4, 3}},
                                                    {{0}, {1}, {}}};
    for (const auto& s : shapes) {
      INFO(dtype_name(dt) << " " << to_string(s[0]) << " " << to_string(s[1]) << " "
                          << to_string(s[2]));
      const Tensor c = values(dt, s[0], seed++), a = values(dt, s[1], seed++),
                   b = values(dt, s[2], seed++);
      REQUIRE(same_bits(host_where(c, a, b), cpu::where(c, a, b)));
    }
    const Tensor c = values(dt, {5, 4}, 7).t(), a = values(dt, {4, 5}, 8), b = values(dt, {5}, 9);
    REQUIRE(same_bits(host_where(c, a, b), cpu::where(c, a, b)));
  }
}

TEST_CASE("cuda nonzero body: flags, scan and scatter match cpu::nonzero_flat",
          "[cuda_host][select]") {
  unsigned seed = 70;
  for (const DType dt : {kFloat32, kFloat64, kInt64})
    for (const std::int64_t n : {0, 1, 7, 100}) {
      INFO(dtype_name(dt) << " n " << n);
      const Tensor m = values(dt, {n}, seed++);
      REQUIRE(same_bits(host_nonzero(m), cpu::nonzero_flat(m)));
    }
  REQUIRE(same_bits(host_nonzero(zeros({5})), cpu::nonzero_flat(zeros({5}))));
}

TEST_CASE("cuda topk body: every k, ties and NaN, matches cpu::topk", "[cuda_host][select]") {
  unsigned seed = 100;
  for (const DType dt : {kFloat32, kFloat64, kInt64})
    for (const Shape& s : {Shape{1, 1}, Shape{3, 7}, Shape{4, 12}, Shape{0, 5}})
      for (std::int64_t k = 0; k <= s[1]; ++k)
        for (const bool largest : {true, false}) {
          INFO(dtype_name(dt) << " " << to_string(s) << " k " << k << " largest " << largest);
          const Tensor x = values(dt, s, seed++);
          Tensor hi, ci;
          const Tensor hv = host_topk(x, k, largest, &hi);
          const Tensor cv = cpu::topk(x, k, largest, &ci);
          REQUIRE(same_bits(hv, cv));
          REQUIRE(same_bits(hi, ci));
        }
}
