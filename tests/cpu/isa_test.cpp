// Every ISA path of cpu/isa.h on every machine: under each of cpu::available_isas() (IsaGuard), the
// public ops run and their results and gradients are compared with float64 references:
// - conv forward, data and weight gradient (and the bias gradient), spatial ranks 1 to 3, groups,
//   depthwise (with and without a channel multiplier), stride, kernel and input dilation,
//   asymmetric padding, pointwise, a reduction deeper than one GEMM panel, and a stride-1 3 x 3 2-d
//   case (the float32 Winograd candidate); the reference is a nested loop over every (x, w, y)
//   triple of the definition y[n, k, o] = b[k] + sum_{c in group(k), r} x~[n, c, o * stride +
//   r * dilation - pad_lo] * w[k, c, r], x~ the input dilated by the input dilation;
// - GEMM (cpu::gemm, which follows cpu::isa()) with every transpose and edge sizes, and batched
//   matmul, against a float64 loop;
// - max / avg pooling forward and backward and FlowNet correlation forward and backward, against
//   the float64 result of the portable path (their own suites test that path against loops).
// Inputs are multiples of 2^-12 in [-1, 1], exact in float32, so float32 and float64 runs see the
// same data. Tolerances (REFERENCE.md): float64 rtol 1e-10, atol 1e-12 * L; float32 rtol 1e-4,
// atol 1e-5 * sqrt(L), L the longest sum of the case. The float32 results of every path are also
// compared with the native path's, so that the paths agree with each other, not only each with the
// reference. Also: set_isa clamps to native_isa(), parse_isa / isa_name round-trip, the order of
// available_isas(), CONVTAPE_ISA parsing (an unknown value is an Error), and gemm_kernel<T>()
// following set_isa.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cpu/gemm.h"
#include "cpu/isa.h"
#include "support/test_util.h"

namespace {

using namespace convtape;
using cpu::Isa;
using Values = std::vector<double>;
using Outputs = std::vector<Tensor>;

std::size_t at(std::int64_t i) {
  return static_cast<std::size_t>(i);
}

// Multiples of 2^-12 in [-1, 1]: exact in float32.
Values random_values(std::int64_t n, std::mt19937& rng) {
  Values v(at(n));
  for (auto& x : v) x = static_cast<double>(static_cast<int>(rng() % 8193u) - 4096) / 4096.0;
  return v;
}

Tensor make(const Values& v, const Shape& shape, DType dtype, bool grad = false) {
  Tensor t = tensor(v, shape, kFloat64).to(dtype);
  if (grad) t.requires_grad_(true);
  return t;
}

Tensor as_f64(const Tensor& t) {
  return t.detach().to(kFloat64);
}

std::string shape_str(const Shape& v) {
  std::ostringstream s;
  s << '[';
  for (std::size_t i = 0; i < v.size(); ++i) s << (i ? ", " : "") << v[i];
  s << ']';
  return s.str();
}

// One op under test: run(dtype) gives its results (values and gradients) as float64 tensors.
struct Case {
  std::string name;
  std::function<Outputs(DType)> run;
  Outputs reference;     // float64
  double reduction = 1;  // the longest sum in the case (scales the absolute tolerance)
};

// Runs every case under every available path in both dtypes and compares.
void check_cases(std::vector<Case>& cases) {
  for (Case& c : cases) {
    INFO("case " << c.name);
    if (c.reference.empty()) {
      const cpu::IsaGuard guard(Isa::portable);
      c.reference = c.run(kFloat64);
    }
    const double atol32 = 1e-5 * std::sqrt(c.reduction), atol64 = 1e-12 * c.reduction;
    Outputs native32;
    for (const Isa path : cpu::available_isas()) {
      const cpu::IsaGuard guard(path);
      INFO("path " << cpu::isa_name(path));
      REQUIRE(cpu::isa() == path);
      const Outputs out64 = c.run(kFloat64), out32 = c.run(kFloat32);
      REQUIRE(out64.size() == c.reference.size());
      REQUIRE(out32.size() == c.reference.size());
      for (std::size_t i = 0; i < c.reference.size(); ++i) {
        INFO("output " << i << " of shape " << shape_str(c.reference[i].shape()));
        CHECK(ct_test::allclose(out64[i], c.reference[i], 1e-10, atol64));
        CHECK(ct_test::allclose(out32[i], c.reference[i], 1e-4, atol32));
        if (!native32.empty()) CHECK(ct_test::allclose(out32[i], native32[i], 1e-4, atol32));
      }
      if (native32.empty()) native32 = out32;
    }
  }
}

// ---- conv

struct ConvSpec {
  std::string name;
  std::int64_t n = 1, c = 1, k = 1, groups = 1;
  Shape in, kernel, stride, dilation, input_dilation;
  std::vector<std::pair<std::int64_t, std::int64_t>> pad;
  bool bias = true;

  std::size_t dims() const { return in.size(); }
  std::int64_t dilated_in(std::size_t d) const { return (in[d] - 1) * input_dilation[d] + 1; }
  Shape out() const {
    Shape o;
    for (std::size_t d = 0; d < dims(); ++d)
      o.push_back(
          (dilated_in(d) + pad[d].first + pad[d].second - dilation[d] * (kernel[d] - 1) - 1) /
              stride[d] +
          1);
    return o;
  }
  Shape x_shape() const {
    Shape s{n, c};
    s.insert(s.end(), in.begin(), in.end());
    return s;
  }
  Shape w_shape() const {
    Shape s{k, c / groups};
    s.insert(s.end(), kernel.begin(), kernel.end());
    return s;
  }
  Shape y_shape() const {
    Shape s{n, k};
    const Shape o = out();
    s.insert(s.end(), o.begin(), o.end());
    return s;
  }
  ConvOptions options() const {
    return ConvOptions()
        .stride(stride)
        .padding(pad)
        .dilation(dilation)
        .input_dilation(input_dilation)
        .groups(groups);
  }
};

// Fills the per-dim defaults (stride, dilation, input dilation 1, padding 0).
ConvSpec conv_spec(std::string name, std::int64_t n, std::int64_t c, std::int64_t k,
                   std::int64_t groups, Shape in, Shape kernel) {
  ConvSpec s;
  s.name = std::move(name);
  s.n = n;
  s.c = c;
  s.k = k;
  s.groups = groups;
  s.in = std::move(in);
  s.kernel = std::move(kernel);
  s.stride = s.dilation = s.input_dilation = Shape(s.in.size(), 1);
  s.pad.assign(s.in.size(), {0, 0});
  return s;
}

// Row-major index of a multi-index within extents.
std::int64_t flat(const Shape& idx, const Shape& ext) {
  std::int64_t f = 0;
  for (std::size_t d = 0; d < ext.size(); ++d) f = f * ext[d] + idx[d];
  return f;
}

// Multi-index of a flat row-major position.
Shape unflat(std::int64_t f, const Shape& ext) {
  Shape idx(ext.size());
  for (std::size_t d = ext.size(); d-- > 0;) {
    idx[d] = f % ext[d];
    f /= ext[d];
  }
  return idx;
}

// Calls f(x index, w index, y index) for every product of the conv's definition.
template <class F>
void for_each_conv_term(const ConvSpec& s, F&& f) {
  const Shape out = s.out();
  const std::int64_t cg = s.c / s.groups, kg = s.k / s.groups;
  const std::int64_t out_n = numel(out), ker_n = numel(s.kernel), in_n = numel(s.in);
  Shape pos(s.dims());
  for (std::int64_t n = 0; n < s.n; ++n)
    for (std::int64_t k = 0; k < s.k; ++k)
      for (std::int64_t o = 0; o < out_n; ++o) {
        const Shape oi = unflat(o, out);
        for (std::int64_t r = 0; r < ker_n; ++r) {
          const Shape ri = unflat(r, s.kernel);
          bool inside = true;
          for (std::size_t d = 0; d < s.dims() && inside; ++d) {
            const std::int64_t p = oi[d] * s.stride[d] + ri[d] * s.dilation[d] - s.pad[d].first;
            inside = p >= 0 && p < s.dilated_in(d) && p % s.input_dilation[d] == 0;
            pos[d] = inside ? p / s.input_dilation[d] : 0;
          }
          if (!inside) continue;
          const std::int64_t xi = flat(pos, s.in);
          for (std::int64_t cc = 0; cc < cg; ++cc) {
            const std::int64_t ch = (k / kg) * cg + cc;
            f((n * s.c + ch) * in_n + xi, (k * cg + cc) * ker_n + r, (n * s.k + k) * out_n + o);
          }
        }
      }
}

Case conv_case(const ConvSpec& s, std::uint32_t seed) {
  std::mt19937 rng(seed);
  const Values x = random_values(numel(s.x_shape()), rng);
  const Values w = random_values(numel(s.w_shape()), rng);
  const Values b = random_values(s.k, rng);
  const Values dy = random_values(numel(s.y_shape()), rng);
  // The float64 reference from the definition.
  Values y(dy.size(), 0.0), dx(x.size(), 0.0), dw(w.size(), 0.0), db(b.size(), 0.0);
  const std::int64_t out_n = numel(s.out());
  for (std::int64_t i = 0; i < numel(s.y_shape()); ++i) {
    if (s.bias) y[at(i)] = b[at(i / out_n % s.k)];
    db[at(i / out_n % s.k)] += dy[at(i)];
  }
  for_each_conv_term(s, [&](std::int64_t xi, std::int64_t wi, std::int64_t yi) {
    y[at(yi)] += x[at(xi)] * w[at(wi)];
    dx[at(xi)] += dy[at(yi)] * w[at(wi)];
    dw[at(wi)] += dy[at(yi)] * x[at(xi)];
  });
  Outputs reference{tensor(y, s.y_shape(), kFloat64), tensor(dx, s.x_shape(), kFloat64),
                    tensor(dw, s.w_shape(), kFloat64)};
  if (s.bias) reference.push_back(tensor(db, {s.k}, kFloat64));
  // The longest sum: a forward output's, a dw element's (over samples and positions) or a dx
  // element's (over output channels and taps).
  const double reduction = static_cast<double>(
      std::max({s.c / s.groups * numel(s.kernel), s.n * out_n, s.k / s.groups * numel(s.kernel)}));
  auto run = [s, x, w, b, dy](DType dtype) {
    Tensor xt = make(x, s.x_shape(), dtype, true), wt = make(w, s.w_shape(), dtype, true);
    Tensor bt = s.bias ? make(b, {s.k}, dtype, true) : Tensor();
    const Tensor yt = conv(xt, wt, bt, s.options());
    yt.backward(make(dy, s.y_shape(), dtype));
    Outputs out{as_f64(yt), as_f64(xt.grad()), as_f64(wt.grad())};
    if (s.bias) out.push_back(as_f64(bt.grad()));
    return out;
  };
  return Case{s.name, run, reference, reduction};
}

std::vector<ConvSpec> conv_specs() {
  std::vector<ConvSpec> v;
  // Stride 1, 3 x 3, 2-d: implicit GEMM today, the float32 Winograd candidate.
  v.push_back(conv_spec("2-d 3x3 stride 1 pad 1", 2, 8, 16, 1, {12, 13}, {3, 3}));
  v.back().pad = {{1, 1}, {1, 1}};
  // One sample, enough work to split across threads: the im2col path.
  v.push_back(conv_spec("2-d 3x3 one sample, wide", 1, 12, 20, 1, {30, 34}, {3, 3}));
  v.back().pad = {{1, 1}, {1, 1}};
  // 64 * 9 = 576 rows: deeper than one packed panel (kc) on every path.
  v.push_back(conv_spec("2-d deep reduction", 2, 64, 40, 1, {9, 10}, {3, 3}));
  v.back().pad = {{0, 1}, {1, 0}};
  v.push_back(conv_spec("2-d stride 2", 2, 6, 10, 1, {11, 13}, {3, 3}));
  v.back().stride = {2, 2};
  v.back().pad = {{1, 1}, {1, 1}};
  v.push_back(conv_spec("2-d pointwise", 2, 16, 24, 1, {9, 7}, {1, 1}));
  v.push_back(conv_spec("2-d pointwise strided", 2, 16, 24, 1, {9, 7}, {1, 1}));
  v.back().stride = {2, 3};
  v.push_back(conv_spec("2-d groups 2, dilation 2", 2, 8, 12, 2, {11, 9}, {5, 3}));
  v.back().dilation = {2, 2};
  v.back().pad = {{2, 1}, {0, 2}};
  v.push_back(conv_spec("2-d depthwise", 2, 8, 8, 8, {10, 12}, {3, 3}));
  v.back().pad = {{1, 1}, {1, 1}};
  v.push_back(conv_spec("2-d depthwise stride 2 dilation 2", 2, 6, 6, 6, {13, 11}, {3, 3}));
  v.back().stride = {2, 2};
  v.back().dilation = {2, 2};
  v.back().pad = {{2, 2}, {1, 2}};
  v.push_back(conv_spec("2-d depthwise multiplier 2, no bias", 1, 4, 8, 4, {9, 17}, {3, 5}));
  v.back().pad = {{1, 1}, {2, 2}};
  v.back().bias = false;
  v.push_back(conv_spec("2-d input dilation 2", 2, 3, 5, 1, {6, 7}, {3, 3}));
  v.back().input_dilation = {2, 2};
  v.back().pad = {{2, 2}, {1, 1}};
  v.push_back(conv_spec("2-d depthwise input dilation", 1, 3, 3, 3, {6, 5}, {3, 2}));
  v.back().input_dilation = {2, 3};
  v.back().pad = {{1, 0}, {0, 1}};
  v.push_back(conv_spec("1-d kernel 5 pad 2", 3, 5, 7, 1, {40}, {5}));
  v.back().pad = {{2, 2}};
  v.push_back(conv_spec("1-d stride 3 dilation 2", 2, 4, 6, 1, {37}, {3}));
  v.back().stride = {3};
  v.back().dilation = {2};
  v.back().pad = {{3, 1}};
  v.push_back(conv_spec("1-d depthwise", 2, 5, 5, 5, {33}, {4}));
  v.back().pad = {{1, 2}};
  v.push_back(conv_spec("3-d 3x3x3 pad 1", 2, 3, 4, 1, {6, 7, 5}, {3, 3, 3}));
  v.back().pad = {{1, 1}, {1, 1}, {1, 1}};
  v.push_back(conv_spec("3-d stride 2 groups 2", 1, 4, 6, 2, {7, 6, 8}, {3, 2, 3}));
  v.back().stride = {2, 2, 2};
  v.back().pad = {{1, 0}, {0, 0}, {1, 1}};
  v.push_back(conv_spec("3-d depthwise", 1, 4, 4, 4, {5, 6, 7}, {3, 3, 3}));
  v.back().pad = {{1, 1}, {1, 1}, {1, 1}};
  return v;
}

// ---- GEMM

// C = alpha op(A) op(B) + beta C through cpu::gemm (the kernel of cpu::isa()) against a float64
// loop; A, B, C with leading dimensions wider than their rows.
template <class T>
bool gemm_matches(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, double alpha,
                  double beta, std::mt19937& rng) {
  const std::int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + 2;
  const Values a = random_values((ta ? k : m) * lda, rng),
               b = random_values((tb ? n : k) * ldb, rng);
  Values c = random_values(m * ldc, rng);
  Values expect = c;
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      double acc = 0;
      for (std::int64_t p = 0; p < k; ++p)
        acc += a[at(ta ? p * lda + i : i * lda + p)] * b[at(tb ? j * ldb + p : p * ldb + j)];
      double& e = expect[at(i * ldc + j)];
      e = alpha * acc + (beta == 0 ? 0.0 : beta * e);
    }
  const std::vector<T> at_(a.begin(), a.end()), bt(b.begin(), b.end());
  std::vector<T> ct(c.begin(), c.end());
  cpu::gemm<T>(ta, tb, m, n, k, static_cast<T>(alpha), at_.data(), lda, bt.data(), ldb,
               static_cast<T>(beta), ct.data(), ldc);
  const bool single = sizeof(T) == 4;
  const double rtol = single ? 1e-4 : 1e-10;
  const double atol =
      single ? 1e-5 * std::sqrt(static_cast<double>(k) + 1) : 1e-12 * (static_cast<double>(k) + 1);
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      const double got = static_cast<double>(ct[at(i * ldc + j)]), want = expect[at(i * ldc + j)];
      if (!(std::abs(got - want) <= atol + rtol * std::abs(want))) {
        UNSCOPED_INFO((single ? "float32" : "float64")
                      << " ta=" << ta << " tb=" << tb << " m=" << m << " n=" << n << " k=" << k
                      << ": C[" << i << ", " << j << "] = " << got << ", expected " << want);
        return false;
      }
    }
  // The padding between rows of C is not written.
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = n; j < ldc; ++j)
      if (static_cast<double>(ct[at(i * ldc + j)]) != c[at(i * ldc + j)]) return false;
  return true;
}

// ---- pooling and correlation: the portable path's float64 result is the reference

Case pool_case(std::string name, const Shape& shape, bool max, const PoolOptions& options,
               double reduction, std::uint32_t seed) {
  std::mt19937 rng(seed);
  const Values x = random_values(numel(shape), rng);
  Shape y_shape;
  {
    const Tensor probe = tensor(x, shape, kFloat64);
    y_shape = (max ? max_pool(probe, options) : avg_pool(probe, options)).shape();
  }
  const Values dy = random_values(numel(y_shape), rng);
  auto run = [shape, max, options, x, dy, y_shape](DType dtype) {
    Tensor xt = make(x, shape, dtype, true);
    const Tensor yt = max ? max_pool(xt, options) : avg_pool(xt, options);
    yt.backward(make(dy, y_shape, dtype));
    return Outputs{as_f64(yt), as_f64(xt.grad())};
  };
  return Case{std::move(name), run, {}, reduction};
}

Case correlation_case(std::string name, const Shape& shape, const CorrelationOptions& options,
                      std::uint32_t seed) {
  std::mt19937 rng(seed);
  const Values f1 = random_values(numel(shape), rng), f2 = random_values(numel(shape), rng);
  const Shape y_shape =
      correlation(tensor(f1, shape, kFloat64), tensor(f2, shape, kFloat64), options).shape();
  const Values dy = random_values(numel(y_shape), rng);
  auto run = [shape, options, f1, f2, dy, y_shape](DType dtype) {
    Tensor a = make(f1, shape, dtype, true), b = make(f2, shape, dtype, true);
    const Tensor yt = correlation(a, b, options);
    yt.backward(make(dy, y_shape, dtype));
    return Outputs{as_f64(yt), as_f64(a.grad()), as_f64(b.grad())};
  };
  // A gradient element sums over every displacement and patch offset that reaches it.
  const std::int64_t k = options.kernel_size(), d = y_shape[1];
  return Case{std::move(name), run, {}, static_cast<double>(std::max(shape[1] * k * k, d * k * k))};
}

}  // namespace

TEST_CASE("available_isas lists the native path first and portable last, best first", "[isa]") {
  const auto paths = cpu::available_isas();
  REQUIRE(!paths.empty());
  CHECK(paths.front() == cpu::native_isa());
  CHECK(paths.back() == Isa::portable);
  CHECK(paths.size() == static_cast<std::size_t>(cpu::native_isa()) + 1);
  for (std::size_t i = 1; i < paths.size(); ++i)
    CHECK(static_cast<int>(paths[i]) == static_cast<int>(paths[i - 1]) - 1);
  INFO("CPU: " << cpu::cpu_model() << ", native path " << cpu::isa_name(cpu::native_isa()));
  CHECK(!cpu::cpu_model().empty());
}

TEST_CASE("isa_name and parse_isa round-trip; other names are refused", "[isa]") {
  for (const Isa p : {Isa::avx512, Isa::avx2, Isa::portable}) {
    const auto parsed = cpu::parse_isa(cpu::isa_name(p));
    REQUIRE(parsed.has_value());
    CHECK(*parsed == p);
  }
  CHECK(std::string(cpu::isa_name(Isa::avx512)) == "avx512");
  CHECK(std::string(cpu::isa_name(Isa::avx2)) == "avx2");
  CHECK(std::string(cpu::isa_name(Isa::portable)) == "portable");
  for (const char* bad : {"", "AVX2", "avx", "avx2 ", "sse", "native"})
    CHECK_FALSE(cpu::parse_isa(bad).has_value());
}

TEST_CASE("set_isa clamps to the native path, returns the previous one, and IsaGuard restores",
          "[isa]") {
  const Isa start = cpu::isa();
  for (const Isa p : {Isa::avx512, Isa::avx2, Isa::portable}) {
    const Isa expect =
        static_cast<int>(p) > static_cast<int>(cpu::native_isa()) ? cpu::native_isa() : p;
    {
      const cpu::IsaGuard guard(p);
      CHECK(cpu::isa() == expect);
      // Every SIMD path follows: the GEMM kernel is the chosen path's.
      CHECK(std::string(cpu::gemm_kernel<float>().isa) == cpu::isa_name(expect));
      CHECK(std::string(cpu::gemm_kernel<double>().isa) == cpu::isa_name(expect));
      CHECK(&cpu::gemm_kernel<float>(p) == &cpu::gemm_kernel<float>());
      const Isa before = cpu::set_isa(Isa::portable);
      CHECK(before == expect);
      CHECK(cpu::isa() == Isa::portable);
    }
    CHECK(cpu::isa() == start);
  }
  // One GEMM kernel per available path, in the same order.
  const auto kernels = cpu::available_gemm_kernels<float>();
  const auto paths = cpu::available_isas();
  REQUIRE(kernels.size() == paths.size());
  for (std::size_t i = 0; i < paths.size(); ++i)
    CHECK(std::string(kernels[i]->isa) == cpu::isa_name(paths[i]));
}

TEST_CASE("CONVTAPE_ISA values: unset or empty is native, a name is clamped, others are errors",
          "[isa]") {
  CHECK(cpu::isa_from_string(nullptr) == cpu::native_isa());
  CHECK(cpu::isa_from_string("") == cpu::native_isa());
  CHECK(cpu::isa_from_string("portable") == Isa::portable);
  CHECK(cpu::isa_from_string("avx512") == cpu::native_isa());
  CHECK(cpu::isa_from_string("avx2") ==
        (cpu::native_isa() == Isa::portable ? Isa::portable : Isa::avx2));
  CT_REQUIRE_ERROR(cpu::isa_from_string("foo"),
                   "CONVTAPE_ISA: expected avx512, avx2 or portable, got 'foo'");
  CT_REQUIRE_ERROR(cpu::isa_from_string("AVX512"), "got 'AVX512'");
  // The path in effect between tests is the one the environment asked for (CI runs the CPU tests
  // under CONVTAPE_ISA=avx2 and =portable too); every IsaGuard above has restored it.
  const char* env = std::getenv("CONVTAPE_ISA");
  INFO("CONVTAPE_ISA=" << (env ? env : "(unset)"));
  CHECK(cpu::isa() == cpu::isa_from_string(env));
}

TEST_CASE("conv forward, data and weight gradients agree with the definition on every path",
          "[isa][conv]") {
  std::vector<Case> cases;
  std::uint32_t seed = 100;
  for (const ConvSpec& s : conv_specs()) cases.push_back(conv_case(s, seed++));
  check_cases(cases);
}

TEST_CASE("gemm and batched matmul agree with a float64 loop on every path", "[isa][gemm]") {
  for (const Isa path : cpu::available_isas()) {
    const cpu::IsaGuard guard(path);
    INFO("path " << cpu::isa_name(path));
    std::mt19937 rng(3);
    const auto& k32 = cpu::gemm_kernel<float>();
    // Edges of the register tile, and past the cache blocks (mc, nc, kc) of this path's kernel.
    const std::vector<std::int64_t> sizes{1, 7, k32.mr + 1, k32.nr + 3, 2 * k32.nr};
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (auto m : sizes)
          for (auto n : sizes)
            for (std::int64_t k : {1, 19}) {
              CHECK(gemm_matches<float>(ta, tb, m, n, k, 1.0, 0.0, rng));
              CHECK(gemm_matches<double>(ta, tb, m, n, k, -0.5, 0.25, rng));
            }
    CHECK(gemm_matches<float>(false, false, k32.mc + 5, k32.nc + 3, k32.kc + 9, 1.0, 1.0, rng));
    CHECK(gemm_matches<double>(true, true, 150, 70, 2 * cpu::gemm_kernel<double>().kc + 7, 2.0,
                               -1.0, rng));
    // Large enough for the threaded split (more than 2^20 multiply-adds).
    CHECK(gemm_matches<float>(false, true, 130, 140, 70, 1.0, 0.0, rng));
  }
  // Batched matmul (cpu::bmm) against the same product per batch.
  std::mt19937 rng(5);
  const Values a = random_values(3 * 17 * 29, rng), b = random_values(3 * 29 * 23, rng);
  Values want(3 * 17 * 23, 0.0);
  for (std::int64_t q = 0; q < 3; ++q)
    for (std::int64_t i = 0; i < 17; ++i)
      for (std::int64_t j = 0; j < 23; ++j)
        for (std::int64_t p = 0; p < 29; ++p)
          want[at((q * 17 + i) * 23 + j)] +=
              a[at((q * 17 + i) * 29 + p)] * b[at((q * 29 + p) * 23 + j)];
  std::vector<Case> cases{Case{
      "bmm [3, 17, 29] x [3, 29, 23]",
      [a, b](DType dtype) {
        return Outputs{as_f64(matmul(make(a, {3, 17, 29}, dtype), make(b, {3, 29, 23}, dtype)))};
      },
      {tensor(want, {3, 17, 23}, kFloat64)},
      29}};
  check_cases(cases);
}

TEST_CASE("max and avg pooling forward and backward agree on every path", "[isa][pool]") {
  std::vector<Case> cases;
  cases.push_back(pool_case("max 2-d k3 s2 pad 1 ceil", {2, 5, 15, 14}, true,
                            PoolOptions(3).stride(2).padding(1).ceil_mode(), 9, 1));
  cases.push_back(pool_case("max 2-d k2 dilation 2", {2, 3, 13, 40}, true,
                            PoolOptions(2).stride(1).dilation(2), 4, 2));
  // 2x2 windows of stride 2: the pairs kernels (35 and 7 outputs per row; odd extents).
  cases.push_back(pool_case("max 2-d k2 s2", {2, 3, 14, 70}, true, PoolOptions(2), 4, 12));
  cases.push_back(pool_case("max 2-d k2 s2 odd", {2, 3, 15, 15}, true, PoolOptions(2), 4, 13));
  cases.push_back(pool_case("max 1-d k3 s1", {3, 4, 70}, true, PoolOptions(3).stride(1), 3, 3));
  cases.push_back(
      pool_case("max 3-d k2", {1, 3, 8, 9, 10}, true, PoolOptions(2).ceil_mode(), 8, 4));
  cases.push_back(pool_case("avg 2-d k3 s1 pad 1, pad excluded", {2, 4, 17, 19}, false,
                            PoolOptions(3).stride(1).padding(1).count_include_pad(false), 9, 5));
  cases.push_back(pool_case("avg 2-d k(2, 5) s(2, 3)", {2, 3, 12, 41}, false,
                            PoolOptions({2, 5}).stride({2, 3}), 10, 6));
  cases.push_back(pool_case("avg 1-d k4 s2 pad 2", {2, 5, 50}, false,
                            PoolOptions(4).stride(2).padding(2), 4, 7));
  cases.push_back(pool_case("avg 3-d k3 s2 pad 1", {1, 2, 9, 8, 7}, false,
                            PoolOptions(3).stride(2).padding(1), 27, 8));
  cases.push_back(pool_case("avg global-size window", {2, 6, 7, 7}, false, PoolOptions(7), 49, 9));
  check_cases(cases);
}

TEST_CASE("FlowNet correlation forward and backward agree on every path", "[isa][correlation]") {
  std::vector<Case> cases;
  // D = 9 displacements per row (one block of 8 and one of 1), 16 channels (whole vectors).
  cases.push_back(correlation_case("k1 md4 16 channels", {2, 16, 12, 14},
                                   CorrelationOptions().max_displacement(4).padding(4), 11));
  // k3, strides 2: partial channel vectors (5), D = 3.
  cases.push_back(correlation_case(
      "k3 md2 strides 2", {1, 5, 11, 13},
      CorrelationOptions().kernel_size(3).max_displacement(2).stride1(2).stride2(2).padding(3),
      12));
  // D = 7, 40 channels (several vectors, a partial one in float32 on AVX-512 for 40 % 16 = 8).
  cases.push_back(correlation_case("k1 md6 stride2 2, 40 channels", {1, 40, 10, 12},
                                   CorrelationOptions().max_displacement(6).stride2(2).padding(6),
                                   13));
  // D = 17 (blocks of 8, 8, 1), padding below the border.
  cases.push_back(correlation_case("k1 md8 pad 5", {1, 3, 20, 21},
                                   CorrelationOptions().max_displacement(8).padding(5), 14));
  check_cases(cases);
}
