// CUDA elementwise and copy kernels against the CPU backend: the kernels directly (cuda::unary,
// cuda::binary, cuda::axpy_, cuda::scale_, cuda::copy, cuda::fill over strided, broadcast,
// reversed, 0-d and empty device views, whole storages compared for strided writes), every public
// elementwise op forward and backward on both devices (through the op harness, support/op_check.h),
// a float64 gradcheck on the GPU, the Tensor methods that copy or write in place, and sizes past
// one grid of blocks. Tolerances: float32 rtol 1e-4 / atol 1e-5, float64 rtol / atol 1e-12 (the
// device's exp, log, tanh and pow are within a few ulp of glibc's); copies, fills and maps without
// libm calls are exact.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "cpu/copy.h"
#include "cpu/elementwise.h"
#include "cuda/copy.h"
#include "cuda/elementwise.h"
#include "support/op_check.h"

using namespace convtape;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

const Device kGpu(DeviceType::CUDA, 0);  // named only: the main checks that it exists

using ct_test::close;
using ct_test::identical;

// A view with the same geometry over another storage (the device copy of a host base).
Tensor same_view(const Tensor& base, const Shape& shape, const Shape& strides,
                 std::int64_t offset) {
  return Tensor::make(base.storage(), shape, strides, offset, base.dtype());
}

struct ViewSpec {
  std::string name;
  Shape shape, strides;
  std::int64_t offset = 0;
};

// Views over a 64-element storage.
const std::vector<ViewSpec> kViews = {
    {"contiguous [2, 3, 4]", {2, 3, 4}, {12, 4, 1}, 0},
    {"contiguous at offset 7 [5]", {5}, {1}, 7},
    {"transposed [4, 3]", {4, 3}, {1, 4}, 0},
    {"permuted [4, 2, 3]", {4, 2, 3}, {1, 12, 4}, 0},
    {"narrowed [2, 3, 2]", {2, 3, 2}, {12, 4, 1}, 1},
    {"step 2 [30]", {30}, {2}, 1},
    {"reversed [3, 4]", {3, 4}, {-4, -1}, 60},
    {"reversed rows [3, 4]", {3, 4}, {-4, 1}, 50},
    {"expanded [3, 4] of [3, 1]", {3, 4}, {1, 0}, 2},
    {"all broadcast [2, 3]", {2, 3}, {0, 0}, 5},
    {"0-d", {}, {}, 9},
    {"rank 6 [2, 1, 3, 2, 2, 2]", {2, 1, 3, 2, 2, 2}, {1, 5, 16, 2, 4, 8}, 0},
    {"empty [0, 3]", {0, 3}, {3, 1}, 0},
};

struct PairSpec {
  std::string name;
  ViewSpec a, b;
};
const std::vector<PairSpec> kPairs = {
    {"same shape", {"", {3, 4}, {4, 1}, 0}, {"", {3, 4}, {4, 1}, 3}},
    {"contiguous with transposed", {"", {3, 4}, {4, 1}, 0}, {"", {3, 4}, {1, 3}, 0}},
    {"[2, 3, 4] with [4]", {"", {2, 3, 4}, {12, 4, 1}, 0}, {"", {4}, {1}, 5}},
    {"[3, 1, 4] with [2, 1]", {"", {3, 1, 4}, {4, 4, 1}, 0}, {"", {2, 1}, {1, 1}, 0}},
    {"[] with [2, 3]", {"", {}, {}, 4}, {"", {2, 3}, {3, 1}, 0}},
    {"[2, 1] with [1, 3]", {"", {2, 1}, {1, 1}, 0}, {"", {1, 3}, {3, 1}, 0}},
    {"stepped with reversed [20]", {"", {20}, {3}, 1}, {"", {20}, {-2}, 50}},
    {"[0, 3] with [3]", {"", {0, 3}, {3, 1}, 0}, {"", {3}, {1}, 0}},
};

const std::vector<double> kSpecials = {kNaN, kInf, -kInf, 0.0,  -0.0,  1.0,  -1.0,
                                       0.5,  -0.5, 2.0,   1e30, -1e30, -100, 1e-6};

// 64 values of dtype: uniform [-3, 3) with kSpecials at every third position.
Tensor make_base(DType dtype, std::uint64_t seed) {
  manual_seed(seed);
  Tensor base = uniform({64}, -3.0, 3.0, dtype);
  for (std::size_t k = 0; k < kSpecials.size(); ++k)
    base.put_({static_cast<std::int64_t>(3 * k + 1)}, kSpecials[k]);
  return base;
}

Tensor view_of(const Tensor& base, const ViewSpec& v) {
  return same_view(base, v.shape, v.strides, v.offset);
}

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
    {"leaky_relu 0.2", Unary::LeakyRelu, 0.2},
    {"clamp [-0.5, 0.75]", Unary::Clamp, -0.5, 0.75},
    {"clamp [-inf, 0.3]", Unary::Clamp, -kInf, 0.3},
    {"pow 2", Unary::PowScalar, 2.0},
    {"pow 0.5", Unary::PowScalar, 0.5},
    {"pow -1.5", Unary::PowScalar, -1.5},
    {"add 1.25", Unary::AddScalar, 1.25},
    {"mul -3", Unary::MulScalar, -3.0},
    {"div 3", Unary::DivScalar, 3.0},
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
    {"leaky_relu grad", Binary::LeakyReluGrad, 0.1},
    {"sigmoid grad", Binary::SigmoidGrad},
    {"tanh grad", Binary::TanhGrad},
    {"abs grad", Binary::AbsGrad},
    {"clamp grad", Binary::ClampGrad, -0.5, 0.5},
    {"sqrt grad", Binary::SqrtGrad},
    {"pow grad 2.5", Binary::PowScalarGrad, 2.5},
    {"pow grad 0", Binary::PowScalarGrad, 0.0},
};

// Maps whose device result must equal the CPU's bit for bit: no libm call on either side.
bool exact_unary(Unary op) {
  return op != Unary::Exp && op != Unary::Log && op != Unary::Sigmoid && op != Unary::Tanh &&
         op != Unary::PowScalar;
}
bool exact_binary(Binary op) {
  return op != Binary::Pow && op != Binary::PowScalarGrad;
}

const std::array<DType, 2> kFloating = {kFloat32, kFloat64};
const std::array<DType, 3> kAllDtypes = {kFloat32, kFloat64, kInt64};

}  // namespace

// ---------------------------------------------------------------- kernels, called directly

TEST_CASE("cuda::unary matches cpu::unary on every view", "[cuda][elementwise]") {
  for (DType dt : kFloating) {
    const Tensor base = make_base(dt, 1);
    const Tensor dbase = base.to(kGpu);
    for (const auto& v : kViews) {
      const Tensor x = view_of(base, v), xd = view_of(dbase, v);
      for (const auto& c : kUnaryCases) {
        INFO(dtype_name(dt) << ", " << v.name << ", " << c.name);
        const Tensor y = cuda::unary(c.op, xd, c.p0, c.p1);
        REQUIRE(y.is_cuda());
        REQUIRE(y.is_contiguous());
        const Tensor expect = cpu::unary(c.op, x, c.p0, c.p1);
        if (exact_unary(c.op))
          REQUIRE(identical(y.cpu(), expect));
        else
          REQUIRE(close(y.cpu(), expect));
      }
    }
  }
}

TEST_CASE("cuda::binary matches cpu::binary on every operand pair", "[cuda][elementwise]") {
  for (DType dt : kFloating) {
    const Tensor base_a = make_base(dt, 2), base_b = make_base(dt, 3);
    const Tensor dbase_a = base_a.to(kGpu), dbase_b = base_b.to(kGpu);
    for (const auto& p : kPairs) {
      const Tensor a = view_of(base_a, p.a), b = view_of(base_b, p.b);
      const Tensor ad = view_of(dbase_a, p.a), bd = view_of(dbase_b, p.b);
      for (const auto& c : kBinaryCases) {
        INFO(dtype_name(dt) << ", " << p.name << ", " << c.name);
        for (int swap = 0; swap < 2; ++swap) {
          const Tensor y = swap ? cuda::binary(c.op, bd, ad, c.p0, c.p1)
                                : cuda::binary(c.op, ad, bd, c.p0, c.p1);
          const Tensor expect =
              swap ? cpu::binary(c.op, b, a, c.p0, c.p1) : cpu::binary(c.op, a, b, c.p0, c.p1);
          REQUIRE(y.is_cuda());
          if (exact_binary(c.op))
            REQUIRE(identical(y.cpu(), expect));
          else
            REQUIRE(close(y.cpu(), expect));
        }
      }
    }
  }
}

TEST_CASE("cuda::axpy_ and cuda::scale_ match the CPU bit for bit", "[cuda][elementwise]") {
  // The product is rounded before the sum on both sides (no FMA), so the optimizers' updates are
  // the same on both devices.
  for (DType dt : kFloating) {
    for (std::int64_t n : {1, 1000, 1 << 20}) {
      for (double alpha : {1.0, -0.1, 3.7e-3}) {
        INFO(dtype_name(dt) << ", n " << n << ", alpha " << alpha);
        manual_seed(static_cast<std::uint64_t>(n));
        const Tensor x = uniform({n}, -5, 5, dt);
        Tensor y = uniform({n}, -5, 5, dt);
        Tensor yd = y.to(kGpu);
        cpu::axpy_(y, x, alpha);
        cuda::axpy_(yd, x.to(kGpu), alpha);
        REQUIRE(identical(yd.cpu(), y));
        cpu::scale_(y, alpha);
        cuda::scale_(yd, alpha);
        REQUIRE(identical(yd.cpu(), y));
      }
    }
  }
}

TEST_CASE("cuda::copy converts, broadcasts and writes strided destinations like cpu::copy",
          "[cuda][copy]") {
  struct CopySpec {
    std::string name;
    ViewSpec src, dst;
  };
  const std::vector<CopySpec> copies = {
      {"contiguous", {"", {3, 4}, {4, 1}, 2}, {"", {3, 4}, {4, 1}, 1}},
      {"transposed source", {"", {4, 3}, {1, 4}, 0}, {"", {4, 3}, {3, 1}, 0}},
      {"transposed destination", {"", {4, 3}, {3, 1}, 0}, {"", {4, 3}, {1, 4}, 3}},
      {"[4] to [3, 4]", {"", {4}, {1}, 9}, {"", {3, 4}, {4, 1}, 0}},
      {"[] to [2, 3]", {"", {}, {}, 9}, {"", {2, 3}, {3, 1}, 0}},
      {"[3, 1] to stepped [3, 4]", {"", {3, 1}, {1, 1}, 0}, {"", {3, 4}, {8, 2}, 1}},
      {"reversed to reversed", {"", {2, 5}, {-5, -1}, 20}, {"", {2, 5}, {-1, -2}, 40}},
      {"expanded to rank 3", {"", {3, 4}, {0, 1}, 3}, {"", {2, 3, 4}, {1, 8, 2}, 0}},
      {"empty", {"", {0, 4}, {4, 1}, 0}, {"", {0, 4}, {1, 0}, 0}},
  };
  for (DType sd : kAllDtypes) {
    // Fractions of both signs (int64 truncates toward zero), and int64 values that float32 and
    // float64 must round.
    Tensor src_base;
    if (sd == kInt64) {
      std::vector<std::int64_t> v;
      for (std::int64_t i = 0; i < 64; ++i)
        v.push_back((i % 2 ? -1 : 1) * ((std::int64_t{1} << (i % 63)) + i));
      src_base = from_vector(v, {64});
    } else {
      manual_seed(4);
      src_base = uniform({64}, -1e6, 1e6, sd);
      src_base.put_({0}, -2.7);
      src_base.put_({1}, 2.7);
      src_base.put_({2}, 16777217.0);
    }
    const Tensor dsrc_base = src_base.to(kGpu);
    for (DType dd : kAllDtypes) {
      for (const auto& c : copies) {
        INFO(dtype_name(sd) << " to " << dtype_name(dd) << ", " << c.name);
        const Tensor expect = full({64}, -77.0, dd);
        cpu::copy(view_of(src_base, c.src), view_of(expect, c.dst));
        const Tensor got = full({64}, -77.0, TensorOptions(dd).device(kGpu));
        cuda::copy(view_of(dsrc_base, c.src), view_of(got, c.dst));
        REQUIRE(identical(got.cpu(), expect));  // the whole storage: nothing written outside
      }
    }
  }
  CHECK(tensor({kNaN, -kInf, 1e20, -3.9}, kFloat64)
            .to(kGpu)
            .to(kInt64)
            .cpu()
            .to_vector<std::int64_t>() ==
        std::vector<std::int64_t>{std::numeric_limits<std::int64_t>::min(),
                                  std::numeric_limits<std::int64_t>::min(),
                                  std::numeric_limits<std::int64_t>::min(), -3});
}

TEST_CASE("cuda::fill writes every element of strided views only", "[cuda][copy]") {
  for (DType dt : kAllDtypes) {
    for (const auto& v : kViews) {
      for (double value : {2.5, -3.7, -0.0, kNaN}) {
        if (dt == kInt64 && std::isnan(value)) continue;
        INFO(dtype_name(dt) << ", " << v.name << ", " << value);
        const Tensor expect = full({64}, -77.0, dt);
        cpu::fill(view_of(expect, v), value);
        const Tensor got = full({64}, -77.0, TensorOptions(dt).device(kGpu));
        cuda::fill(view_of(got, v), value);
        REQUIRE(identical(got.cpu(), expect));
      }
    }
  }
}

TEST_CASE("cuda::copy between overlapping views reads the source as it was", "[cuda][copy][slow]") {
  for (DType dt : kFloating) {
    INFO(dtype_name(dt));
    // Large enough that thousands of blocks run at once: without staging, some would read values
    // that others had already overwritten.
    const std::int64_t n = std::int64_t{1} << 22;
    const Tensor host = arange(0, static_cast<double>(n), 1, dt);
    SECTION("shifted by one, both ways") {
      Tensor d = host.to(kGpu);
      cuda::copy(d.narrow(0, 0, n - 1), d.narrow(0, 1, n - 1));
      Tensor expect = host.clone();
      cpu::copy(host.narrow(0, 0, n - 1).clone(), expect.narrow(0, 1, n - 1));
      REQUIRE(identical(d.cpu(), expect));
      cuda::copy(d.narrow(0, 1, n - 1), d.narrow(0, 0, n - 1));
      cpu::copy(expect.narrow(0, 1, n - 1).clone(), expect.narrow(0, 0, n - 1));
      REQUIRE(identical(d.cpu(), expect));
    }
    SECTION("a square matrix transposed onto itself") {
      const Tensor m = host.reshape({2048, 2048});
      Tensor d = m.to(kGpu);
      cuda::copy(d.transpose(0, 1), d);
      REQUIRE(identical(d.cpu(), m.transpose(0, 1).contiguous()));
    }
    SECTION("reversed onto itself") {
      Tensor d = host.to(kGpu);
      cuda::copy(same_view(d, {n}, {-1}, n - 1), d);
      REQUIRE(identical(d.cpu(), flip(host, {0})));
    }
    SECTION("the same view, converted in place") {
      Tensor d = host.to(kGpu);
      cuda::copy(d, d);
      REQUIRE(identical(d.cpu(), host));
    }
  }
}

TEST_CASE("kernels cover sizes past one grid of blocks", "[cuda][elementwise][slow]") {
  // 65535 blocks of 256 threads are 16.8 million threads; 40 million elements make each loop
  // more than once.
  const std::int64_t n = 40'000'000;
  manual_seed(5);
  const Tensor a = uniform({n / 1000, 1000}, -4, 4);
  const Tensor b = uniform({1000}, -4, 4);
  const Tensor ad = a.to(kGpu), bd = b.to(kGpu);
  REQUIRE(identical(cuda::binary(Binary::Add, ad, bd).cpu(), cpu::binary(Binary::Add, a, b)));
  REQUIRE(identical(cuda::unary(Unary::MulScalar, ad.transpose(0, 1), -0.5).cpu(),
                    cpu::unary(Unary::MulScalar, a.transpose(0, 1), -0.5)));
  Tensor filled = empty({n}, TensorOptions(kFloat64).device(kGpu));
  cuda::fill(filled, 0.25);
  const auto v = filled.cpu().to_vector<double>();
  REQUIRE(std::count(v.begin(), v.end(), 0.25) == static_cast<std::ptrdiff_t>(n));
}

TEST_CASE("kernel argument errors", "[cuda][elementwise]") {
  const Tensor d = ones({2, 3}, kGpu);
  CT_REQUIRE_ERROR(cuda::unary(Unary::Neg, zeros({2}, TensorOptions(kInt64).device(kGpu))),
                   "unary: expected a float32 or float64 input, got int64");
  CT_REQUIRE_ERROR(cuda::unary(Unary::Neg, ones({2})),
                   "unary: expected the input on a CUDA device");
  CT_REQUIRE_ERROR(cuda::binary(Binary::Add, d, d.to(kFloat64)),
                   "binary: expected operands of one dtype, got float32 and float64");
  CT_REQUIRE_ERROR(cuda::binary(Binary::Add, d, ones({4}, kGpu)),
                   "binary: expected broadcastable shapes");
  CT_REQUIRE_ERROR(
      cuda::copy(ones({2, 3}), d),
      "copy: expected a source and a destination on one CUDA device, got cpu and cuda:0");
  CT_REQUIRE_ERROR(cuda::copy(ones({4}, kGpu), d),
                   "copy: expected a source that broadcasts to [2, 3], got [4]");
  CT_REQUIRE_ERROR(cuda::fill(ones({2}), 1.0), "fill: expected a CUDA tensor, got one on cpu");
  Tensor t = d.transpose(0, 1);
  CT_REQUIRE_ERROR(cuda::scale_(t, 2.0), "mul_: expected a contiguous tensor");
  Tensor c = d.clone();
  CT_REQUIRE_ERROR(cuda::axpy_(c, ones({3, 2}, kGpu), 1.0),
                   "add_: expected contiguous tensors of one shape");
  std::vector<std::int64_t> reverse(17);
  for (std::size_t i = 0; i < 17; ++i) reverse[i] = static_cast<std::int64_t>(16 - i);
  const Tensor deep = zeros(Shape(17, 2), kGpu).permute(reverse);
  CT_REQUIRE_ERROR(cuda::unary(Unary::Neg, deep),
                   "unary: expected at most 16 dims once the contiguous ones are merged, got 17");
}

// ---------------------------------------------------------------- public ops, forward and backward

namespace {

using UnaryFnT = std::function<Tensor(const Tensor&)>;
using BinaryFnT = std::function<Tensor(const Tensor&, const Tensor&)>;

// f on CPU and CUDA copies of x (values of float64 x, rounded for float32): values, then the
// gradient of one random upstream gradient.
void check_unary_op(const std::string& name, const UnaryFnT& f, const Tensor& x, bool transpose) {
  ct_test::OpCheck(name + (transpose ? ", transposed" : ""),
                   [f, transpose](const std::vector<Tensor>& v) {
                     return f(transpose ? v[0].transpose(0, 1) : v[0]);
                   },
                   {x.detach().requires_grad_(true)})
      .cuda_only()
      .run();
}

void check_binary_op(const std::string& name, const BinaryFnT& f, const Tensor& a,
                     const Tensor& b) {
  // Broadcast gradients are sums over up to a few dozen terms.
  const auto grads = [](DType dt) { return ct_test::default_tolerance(dt).times(10.0); };
  ct_test::OpCheck(name + ", " + to_string(a.shape()) + " with " + to_string(b.shape()),
                   [f](const std::vector<Tensor>& v) { return f(v[0], v[1]); },
                   {a.detach().requires_grad_(true), b.detach().requires_grad_(true)})
      .cuda_only()
      .tolerance(kFloat32, ct_test::default_tolerance(kFloat32), grads(kFloat32))
      .tolerance(kFloat64, ct_test::default_tolerance(kFloat64), grads(kFloat64))
      .run();
}

const std::vector<std::pair<Shape, Shape>> kBinaryShapes = {
    {{3, 4}, {3, 4}}, {{3, 1, 4}, {2, 1}}, {{}, {2, 3}}, {{2, 3}, {}},
    {{4}, {2, 3, 4}}, {{2, 1}, {1, 3}},    {{5}, {5}},   {{2, 3, 1}, {3, 4}},
};

}  // namespace

TEST_CASE("unary ops and activations: CUDA forward and backward match the CPU",
          "[cuda][elementwise]") {
  struct Op {
    const char* name;
    UnaryFnT f;
    double low, high;  // input range: positive for log, sqrt and fractional powers
  };
  const std::vector<Op> ops = {
      {"neg", [](const Tensor& x) { return neg(x); }, -3, 3},
      {"operator-", [](const Tensor& x) { return -x; }, -3, 3},
      {"exp", [](const Tensor& x) { return exp(x); }, -3, 3},
      {"log", [](const Tensor& x) { return log(x); }, 0.1, 3},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, 0.1, 3},
      {"abs", [](const Tensor& x) { return abs(x); }, -3, 3},
      {"relu", [](const Tensor& x) { return relu(x); }, -3, 3},
      {"leaky_relu", [](const Tensor& x) { return leaky_relu(x, 0.1); }, -3, 3},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, -6, 6},
      {"tanh", [](const Tensor& x) { return tanh(x); }, -3, 3},
      {"clamp", [](const Tensor& x) { return clamp(x, -0.5, 1.5); }, -3, 3},
      {"pow 3", [](const Tensor& x) { return pow(x, 3.0); }, -2, 2},
      {"pow 0.5", [](const Tensor& x) { return x.pow(0.5); }, 0.1, 3},
      {"pow -1.5", [](const Tensor& x) { return pow(x, -1.5); }, 0.2, 3},
      {"add scalar", [](const Tensor& x) { return x + 1.5; }, -3, 3},
      {"scalar add", [](const Tensor& x) { return 1.5 + x; }, -3, 3},
      {"sub scalar", [](const Tensor& x) { return x - 0.25; }, -3, 3},
      {"scalar sub", [](const Tensor& x) { return 2.0 - x; }, -3, 3},
      {"mul scalar", [](const Tensor& x) { return x * -1.75; }, -3, 3},
      {"div scalar", [](const Tensor& x) { return x / 3.0; }, -3, 3},
      {"scalar div", [](const Tensor& x) { return 2.0 / x; }, 0.2, 3},
  };
  for (const auto& op : ops) {
    manual_seed(10);
    const Tensor x = uniform({4, 5}, op.low, op.high, kFloat64);
    check_unary_op(op.name, op.f, x, false);
    check_unary_op(op.name, op.f, x, true);
  }
}

TEST_CASE("binary ops: CUDA forward and backward match the CPU, broadcasting both ways",
          "[cuda][elementwise]") {
  struct Op {
    const char* name;
    BinaryFnT f;
    double low;  // pow wants a positive base
  };
  const std::vector<Op> ops = {
      {"add", [](const Tensor& a, const Tensor& b) { return add(a, b); }, -3},
      {"sub", [](const Tensor& a, const Tensor& b) { return a - b; }, -3},
      {"mul", [](const Tensor& a, const Tensor& b) { return a * b; }, -3},
      {"div", [](const Tensor& a, const Tensor& b) { return div(a, b); }, -3},
      {"pow", [](const Tensor& a, const Tensor& b) { return pow(a, b); }, 0.2},
  };
  for (const auto& op : ops) {
    for (const auto& [sa, sb] : kBinaryShapes) {
      manual_seed(11);
      const Tensor a = uniform(sa, op.low, 3, kFloat64);
      // Divisors kept away from zero.
      Tensor b = uniform(sb, 0.5, 2, kFloat64) * (numel(sb) > 1 ? 1.0 : -1.0);
      check_binary_op(op.name, op.f, a, b);
    }
  }
}

TEST_CASE("float64 gradcheck of a composite expression on the GPU", "[cuda][elementwise]") {
  manual_seed(12);
  const Tensor a = uniform({3, 4}, 0.3, 1.5, kFloat64).to(kGpu).detach().requires_grad_(true);
  const Tensor b = uniform({4}, 0.3, 1.5, kFloat64).to(kGpu).detach().requires_grad_(true);
  const auto f = [](const std::vector<Tensor>& in) {
    const Tensor &x = in[0], &y = in[1];
    REQUIRE(x.is_cuda());
    return tanh(x * y + exp(x) / (1.0 + y * y)) - sigmoid(x).pow(2.0) + relu(x - y) +
           leaky_relu(y - 1.0, 0.2) * abs(x - 0.9) + clamp(x, 0.5, 1.2) + sqrt(x + y) +
           log(1.0 + x * x) + pow(x, y) - 2.0 / (x + 1.0) + neg(y) / 3.0;
  };
  CT_REQUIRE_GRADCHECK(f, (std::vector<Tensor>{a, b}));
}

// ---------------------------------------------------------------- Tensor methods

TEST_CASE("to(dtype), clone and contiguous of strided CUDA tensors", "[cuda][copy]") {
  manual_seed(13);
  const Tensor x = uniform({4, 6, 5}, -100, 100, kFloat64);
  const Tensor xd = x.to(kGpu);
  const std::vector<std::pair<std::string, std::function<Tensor(const Tensor&)>>> views = {
      {"permuted",
       [](const Tensor& t) {
         return t.permute({2, 0, 1});
       }},
      {"narrowed", [](const Tensor& t) { return t.narrow(1, 1, 3); }},
      {"stepped", [](const Tensor& t) { return slice(t, 2, 0, 5, 2); }},
      {"expanded",
       [](const Tensor& t) {
         return t.narrow(0, 0, 1).expand({3, 6, 5});
       }},
  };
  for (const auto& [name, view] : views) {
    INFO(name);
    const Tensor v = view(x), vd = view(xd);
    for (DType dt : kAllDtypes) {
      INFO(dtype_name(dt));
      const Tensor y = vd.to(dt);
      REQUIRE(y.is_cuda());
      REQUIRE(identical(y.cpu(), v.to(dt)));
    }
    REQUIRE(identical(vd.clone().cpu(), v.clone()));
    const Tensor c = vd.contiguous();
    REQUIRE(c.is_contiguous());
    REQUIRE(c.is_cuda());
    REQUIRE(identical(c.cpu(), v.contiguous()));
  }
  // int64 back to floating.
  const Tensor i = randint(-1000, 1000, {3, 4}).to(kGpu).transpose(0, 1);
  REQUIRE(identical(i.to(kFloat32).cpu(), i.cpu().to(kFloat32)));
}

TEST_CASE("copy_ and fill_ into strided CUDA tensors", "[cuda][copy]") {
  for (DType dt : kFloating) {
    INFO(dtype_name(dt));
    manual_seed(14);
    const Tensor base = uniform({6, 8}, -5, 5, dt);
    const Tensor src = uniform({4, 3}, -5, 5, kFloat64);
    SECTION("copy_ from the host, converted and into a transposed narrow view") {
      Tensor expect = base.clone(), d = base.to(kGpu);
      expect.narrow(1, 2, 3).transpose(0, 1).narrow(1, 0, 4).copy_(src.transpose(0, 1));
      d.narrow(1, 2, 3).transpose(0, 1).narrow(1, 0, 4).copy_(src.transpose(0, 1));
      REQUIRE(identical(d.cpu(), expect));
    }
    SECTION("copy_ from the device, broadcast") {
      Tensor expect = base.clone(), d = base.to(kGpu);
      const Tensor row = uniform({8}, -1, 1, dt);
      expect.narrow(0, 1, 4).copy_(row);
      d.narrow(0, 1, 4).copy_(row.to(kGpu));
      REQUIRE(identical(d.cpu(), expect));
      const Tensor scalar = full({}, 7.5, kFloat64);
      expect.transpose(0, 1).copy_(scalar);
      d.transpose(0, 1).copy_(scalar.to(kGpu));
      REQUIRE(identical(d.cpu(), expect));
    }
    SECTION("copy_ of an overlapping view of itself") {
      Tensor expect = base.clone(), d = base.to(kGpu);
      expect.narrow(1, 1, 7).copy_(base.narrow(1, 0, 7).clone());
      d.narrow(1, 1, 7).copy_(d.narrow(1, 0, 7));
      REQUIRE(identical(d.cpu(), expect));
    }
    SECTION("fill_ of strided views") {
      Tensor expect = base.clone(), d = base.to(kGpu);
      slice(expect, 1, 1, 8, 3).fill_(-2.25);
      slice(d, 1, 1, 8, 3).fill_(-2.25);
      expect.transpose(0, 1).narrow(0, 0, 2).fill_(9.0);
      d.transpose(0, 1).narrow(0, 0, 2).fill_(9.0);
      REQUIRE(identical(d.cpu(), expect));
    }
  }
}

TEST_CASE("add_ and mul_ in place on CUDA", "[cuda][elementwise]") {
  for (DType dt : kFloating) {
    INFO(dtype_name(dt));
    manual_seed(15);
    const Tensor base = uniform({5, 6}, -3, 3, dt);
    const Tensor other = uniform({5, 6}, -3, 3, dt);
    const Tensor row = uniform({6}, -3, 3, dt);
    Tensor expect = base.clone(), d = base.to(kGpu);
    {
      NoGradGuard guard;
      expect.add_(other, 0.3);  // contiguous, same shape: axpy
      d.add_(other.to(kGpu), 0.3);
      REQUIRE(d.is_cuda());
      REQUIRE(identical(d.cpu(), expect));
      expect.add_(row);  // broadcast
      d.add_(row.to(kGpu));
      REQUIRE(identical(d.cpu(), expect));
      expect.transpose(0, 1).narrow(0, 1, 3).add_(row.narrow(0, 0, 5), -2.0);  // strided
      d.transpose(0, 1).narrow(0, 1, 3).add_(row.to(kGpu).narrow(0, 0, 5), -2.0);
      REQUIRE(identical(d.cpu(), expect));
      expect.mul_(-1.5);  // contiguous: scale
      d.mul_(-1.5);
      REQUIRE(identical(d.cpu(), expect));
      expect.narrow(1, 2, 3).mul_(0.1);  // strided
      d.narrow(1, 2, 3).mul_(0.1);
      REQUIRE(identical(d.cpu(), expect));
    }
  }
}
