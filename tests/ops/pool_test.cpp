// Tests of ops/pool.
// - Seeded sweeps through the op harness (support/op_check.h: float64 gradcheck, float32 against
//   float64, CUDA against the CPU): max_pool (spatial ranks 1 to 3, strides, default stride,
//   symmetric and per-side padding, dilation, ceil_mode) on inputs without ties, avg_pool
//   (count_include_pad on and off, divisor_override, ceil_mode), adaptive avg / max pooling to
//   sizes that do and do not divide the input (and larger than it), global_avg_pool, max_unpool.
// - Exact results with small integers (ties included) against nested loops written from the
//   definition: each output scans its window in row-major order, max starts at the first element
//   inside the input and keeps the first strictly larger value (or the first NaN), so windows of
//   -inf (drawn among the values) still have an argmax; avg divides the sum by the clipped
//   window or the count of real elements. Values, indices and gradients, float32 and float64, with
//   and without indices
//   (two kernels), serial and parallel sizes, and four spatial dims.
// - The d2l and flax (probml notebook) examples with their printed numbers.
// - NaN propagation, the tie rule, padding never winning, ceil_mode's dropped window, the
//   unpool round trip, saved indices, strided views, empty batches, and every argument error.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cpu/isa.h"
#include "support/draw.h"
#include "support/op_check.h"

namespace {

using namespace convtape;
using ct_test::equal;

using ct_test::Draw;
using ct_test::Pads;
using ct_test::str;

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

// ---- the reference: windows per dim, scanned in row-major order

// One pooling, fully resolved: per spatial dim the kernel, stride, dilation and (low, high)
// padding, or adaptive windows. `given_stride` false means the options leave the stride unset.
struct Spec {
  enum class Op { Max, Avg, AdaptiveMax, AdaptiveAvg } op = Op::Max;
  Shape x;  // [N, C, *S]
  Shape kernel, stride, dilation;
  Pads pads;
  bool given_stride = true, symmetric = true, ceil = false, include_pad = true;
  std::int64_t divisor = 0;  // divisor_override when non-zero
  Shape adaptive_out;

  std::size_t rank() const { return x.size() - 2; }
  bool adaptive() const { return op == Op::AdaptiveMax || op == Op::AdaptiveAvg; }
  bool is_max() const { return op == Op::Max || op == Op::AdaptiveMax; }
  std::int64_t in(std::size_t d) const { return x[2 + d]; }

  // PyTorch's output size, written out independently of ops/pool.cpp.
  Shape out() const {
    if (adaptive()) return adaptive_out;
    Shape o;
    for (std::size_t d = 0; d < rank(); ++d) {
      const std::int64_t span =
          in(d) + pads[d].first + pads[d].second - dilation[d] * (kernel[d] - 1) - 1;
      std::int64_t n =
          (ceil ? floor_div(span + stride[d] - 1, stride[d]) : floor_div(span, stride[d])) + 1;
      if (ceil && (n - 1) * stride[d] >= in(d) + pads[d].first) --n;
      o.push_back(n);
    }
    return o;
  }
  Shape y_shape() const {
    Shape s{x[0], x[1]};
    const Shape o = out();
    s.insert(s.end(), o.begin(), o.end());
    return s;
  }

  // Valid input coordinates of output o's window along dim d, in order, and the dim's factor of
  // the average's divisor.
  std::vector<std::int64_t> taps(std::size_t d, std::int64_t o, std::int64_t& factor) const {
    std::vector<std::int64_t> t;
    if (adaptive()) {
      const std::int64_t n = adaptive_out[d];
      const std::int64_t start = floor_div(o * in(d), n);
      const std::int64_t end = floor_div((o + 1) * in(d) + n - 1, n);
      for (std::int64_t i = start; i < end; ++i) t.push_back(i);
      factor = end - start;
      return t;
    }
    const std::int64_t start = o * stride[d] - pads[d].first;
    for (std::int64_t r = 0; r < kernel[d]; ++r) {
      const std::int64_t i = start + r * dilation[d];
      if (i >= 0 && i < in(d)) t.push_back(i);
    }
    factor = include_pad ? std::min(start + kernel[d], in(d) + pads[d].second) - start
                         : static_cast<std::int64_t>(t.size());
    return t;
  }

  PoolOptions options() const {
    PoolOptions o(kernel);
    if (given_stride) o.stride(stride);
    if (symmetric) {
      Shape p;
      for (const auto& pr : pads) p.push_back(pr.first);
      o.padding(p);
    } else {
      o.padding(pads);
    }
    if (op == Op::Max) o.dilation(dilation);
    o.ceil_mode(ceil).count_include_pad(include_pad);
    if (divisor != 0) o.divisor_override(divisor);
    return o;
  }

  Tensor apply(const Tensor& t) const {
    switch (op) {
      case Op::Max:
        return max_pool(t, options());
      case Op::Avg:
        return avg_pool(t, options());
      case Op::AdaptiveMax:
        return adaptive_max_pool(t, adaptive_out);
      case Op::AdaptiveAvg:
        return adaptive_avg_pool(t, adaptive_out);
    }
    return {};
  }

  std::string describe() const {
    std::ostringstream s;
    const char* names[] = {"max_pool", "avg_pool", "adaptive_max_pool", "adaptive_avg_pool"};
    s << names[static_cast<int>(op)] << " x " << str(x);
    if (adaptive()) {
      s << " output_size " << str(adaptive_out);
    } else {
      s << " kernel " << str(kernel) << " stride " << (given_stride ? "" : "(default) ")
        << str(stride) << " padding " << str(pads) << " dilation " << str(dilation)
        << (ceil ? " ceil_mode" : "") << (include_pad ? "" : " exclude_pad");
      if (divisor) s << " divisor " << divisor;
    }
    s << " -> " << str(y_shape());
    return s.str();
  }
};

Shape unravel(std::int64_t flat, const Shape& shape) {
  Shape idx(shape.size());
  for (std::size_t d = shape.size(); d-- > 0;) {
    idx[d] = flat % shape[d];
    flat /= shape[d];
  }
  return idx;
}

struct Reference {
  std::vector<double> values;
  std::vector<std::int64_t> indices;  // max only
  std::vector<double> grad;           // d sum(y * g) / dx
};

// Nested loops from the definition, in the arithmetic of T (sums of small integers and their
// division then round exactly as the kernel's do).
template <class T>
Reference reference(const Spec& sp, const std::vector<double>& xv, const std::vector<double>& gv) {
  const Shape out = sp.out(), in(sp.x.begin() + 2, sp.x.end());
  const std::int64_t planes = sp.x[0] * sp.x[1], on = numel(out), in_n = numel(in);
  const std::size_t s = sp.rank();
  Reference r;
  r.grad.assign(xv.size(), 0.0);
  std::vector<T> grad(xv.size(), T(0));
  for (std::int64_t p = 0; p < planes; ++p)
    for (std::int64_t f = 0; f < on; ++f) {
      const Shape o = unravel(f, out);
      std::vector<std::vector<std::int64_t>> taps(s);
      std::int64_t div = 1;
      bool empty = false;
      for (std::size_t d = 0; d < s; ++d) {
        std::int64_t factor = 0;
        taps[d] = sp.taps(d, o[d], factor);
        div *= factor;
        empty = empty || taps[d].empty();
      }
      if (sp.divisor) div = sp.divisor;
      T best = -std::numeric_limits<T>::infinity(), sum = T(0);
      std::int64_t at = -1;
      std::vector<std::size_t> r_(s, 0);
      std::vector<std::int64_t> flats;
      while (!empty) {
        std::int64_t flat = 0;
        for (std::size_t d = 0; d < s; ++d) flat = flat * in[d] + taps[d][r_[d]];
        flats.push_back(flat);
        const T v = static_cast<T>(xv[static_cast<std::size_t>(p * in_n + flat)]);
        if (at < 0) at = flat;  // PyTorch's start: the first element inside the input
        if (v > best || (std::isnan(v) && !std::isnan(best))) {
          best = v;
          at = flat;
        }
        sum += v;
        std::size_t d = s;
        while (d-- > 0) {
          if (++r_[d] < taps[d].size()) break;
          r_[d] = 0;
        }
        if (d == static_cast<std::size_t>(-1)) break;
      }
      const T g = static_cast<T>(gv[static_cast<std::size_t>(p * on + f)]);
      if (sp.is_max()) {
        r.values.push_back(static_cast<double>(best));
        r.indices.push_back(at);
        if (at >= 0) grad[static_cast<std::size_t>(p * in_n + at)] += g;
      } else {
        r.values.push_back(static_cast<double>(sum / static_cast<T>(div)));
        for (auto flat : flats)
          grad[static_cast<std::size_t>(p * in_n + flat)] += g / static_cast<T>(div);
      }
    }
  for (std::size_t i = 0; i < grad.size(); ++i) r.grad[i] = static_cast<double>(grad[i]);
  return r;
}

// ---- random configurations

// Per-dim kernel, stride, dilation and padding within PyTorch's limits, and an input at least as
// large as the padded window (or, one time in four with ceil_mode, one short of it).
Spec random_pool(Draw& d, std::size_t rank, Spec::Op op, std::int64_t max_in = 7) {
  Spec sp;
  sp.op = op;
  sp.x = {d(1, 2), d(1, 2)};
  sp.given_stride = !d.one_in(4);
  sp.symmetric = !d.one_in(3);
  sp.ceil = d.one_in(2);
  if (op == Spec::Op::Avg) {
    sp.include_pad = !d.one_in(2);
    if (d.one_in(4)) sp.divisor = d(1, 6) * (d.one_in(5) ? -1 : 1);
  }
  for (std::size_t i = 0; i < rank; ++i) {
    const std::int64_t k = d(1, 3);
    sp.kernel.push_back(k);
    sp.stride.push_back(sp.given_stride ? d(1, 3) : k);
    sp.dilation.push_back(op == Spec::Op::Max && d.one_in(3) ? 2 : 1);
    const std::int64_t lo = d(0, k / 2), hi = sp.symmetric ? lo : d(0, k / 2);
    sp.pads.emplace_back(lo, hi);
    // At least `dilation` elements, so that no dilated window holds nothing but padding (its
    // -inf output would defeat central differences).
    const std::int64_t window = sp.dilation.back() * (k - 1) + 1;
    sp.x.push_back(std::max(window - lo - hi, sp.dilation.back()) + d(0, max_in - 3));
  }
  return sp;
}

Spec random_adaptive(Draw& d, std::size_t rank, bool max) {
  Spec sp;
  sp.op = max ? Spec::Op::AdaptiveMax : Spec::Op::AdaptiveAvg;
  sp.x = {d(1, 2), d(1, 2)};
  const bool divides = d.one_in(3);
  for (std::size_t i = 0; i < rank; ++i) {
    const std::int64_t out = d(1, 4);
    sp.adaptive_out.push_back(out);
    sp.x.push_back(divides ? out * d(1, 3) : d(1, 8));
  }
  return sp;
}

// Distinct values 0.05 apart in a shuffled order: max pooling without ties, whose central
// differences (eps 1e-6) never cross from one argmax to another.
Tensor distinct_leaf(const Shape& shape, Draw& d) {
  const std::int64_t n = numel(shape);
  std::vector<double> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = 0.05 * double(i - n / 2);
  for (std::int64_t i = n - 1; i > 0; --i)
    std::swap(v[static_cast<std::size_t>(i)], v[static_cast<std::size_t>(d(0, i))]);
  return tensor(v, shape, kFloat64).requires_grad_(true);
}

// Integers in [-4, 4]; with_inf turns the -4s into -inf, so that some max windows hold nothing
// else (their argmax is the first element inside the input, PyTorch's rule).
Tensor small_ints(const Shape& shape, Draw& d, DType dtype, bool with_inf = false) {
  std::vector<double> v(static_cast<std::size_t>(numel(shape)));
  for (auto& e : v) {
    e = static_cast<double>(d(-4, 4));
    if (with_inf && e == -4) e = -std::numeric_limits<double>::infinity();
  }
  return tensor(v, shape, dtype);
}

// The op harness (support/op_check.h): float64 gradcheck, float32 against float64 and, on a GPU,
// CUDA against the CPU.
int check_gradients(const std::string& description, const GradcheckFn& fn,
                    const std::vector<Tensor>& inputs) {
  ct_test::OpCheck(description, fn, inputs).run();
  return 1;
}

// Forward (both max kernels), indices and the input gradient of one spec against the reference.
template <class T>
void check_exact(const Spec& sp, Draw& d) {
  INFO(sp.describe() << " (" << dtype_name(dtype_of<T>()) << ")");
  const Tensor x0 = small_ints(sp.x, d, dtype_of<T>(), /*with_inf=*/true);
  const Tensor g = small_ints(sp.y_shape(), d, dtype_of<T>());
  const Reference ref = reference<T>(sp, x0.to_vector<double>(), g.to_vector<double>());
  Tensor x = x0.clone().requires_grad_(true);
  const Tensor y = sp.apply(x);
  REQUIRE(y.shape() == sp.y_shape());
  REQUIRE(y.dtype() == dtype_of<T>());
  CHECK(y.to_vector<double>() == ref.values);
  {
    NoGradGuard no_grad;  // max without grad runs the kernel that keeps no indices
    CHECK(sp.apply(x0).to_vector<double>() == ref.values);
  }
  if (sp.op == Spec::Op::Max || sp.op == Spec::Op::AdaptiveMax) {
    const PoolWithIndices r = sp.op == Spec::Op::Max
                                  ? max_pool_with_indices(x0, sp.options())
                                  : adaptive_max_pool_with_indices(x0, sp.adaptive_out);
    CHECK(r.values.to_vector<double>() == ref.values);
    REQUIRE(r.indices.dtype() == kInt64);
    CHECK(r.indices.shape() == sp.y_shape());
    CHECK(r.indices.to_vector<std::int64_t>() == ref.indices);
  }
  y.backward(g);
  if (sp.is_max())
    CHECK(x.grad().to_vector<double>() == ref.grad);
  else
    CHECK(ct_test::allclose(x.grad(), tensor(ref.grad, sp.x, kFloat64), 1e-6, 1e-6));
}

Tensor t2(std::initializer_list<double> v, const Shape& shape) {
  return tensor(v, shape, kFloat32);
}

}  // namespace

// ============================================================================ gradcheck sweeps

TEST_CASE("max_pool: seeded gradcheck sweep over ranks, strides, paddings, dilation, ceil_mode",
          "[ops][pool][gradcheck]") {
  Draw d(20240612u);
  int configs = 0;
  std::map<std::string, int> seen;
  for (int i = 0; i < 60; ++i) {
    const Spec sp = random_pool(d, static_cast<std::size_t>(1 + i % 3), Spec::Op::Max);
    seen["rank " + std::to_string(sp.rank())]++;
    seen["ceil_mode"] += sp.ceil;
    seen["per-side"] += !sp.symmetric;
    seen["default stride"] += !sp.given_stride;
    seen["dilation"] +=
        std::any_of(sp.dilation.begin(), sp.dilation.end(), [](std::int64_t e) { return e > 1; });
    seen["padding"] += std::any_of(sp.pads.begin(), sp.pads.end(),
                                   [](const auto& p) { return p.first + p.second > 0; });
    configs += check_gradients(sp.describe(),
                               [sp](const std::vector<Tensor>& v) { return sp.apply(v[0]); },
                               {distinct_leaf(sp.x, d)});
  }
  REQUIRE(configs == 60);
  for (const char* f : {"rank 1", "rank 2", "rank 3", "ceil_mode", "per-side", "default stride",
                        "dilation", "padding"}) {
    INFO(f);
    CHECK(seen[f] >= 5);
  }
}

TEST_CASE("avg_pool: seeded gradcheck sweep over count_include_pad, divisor_override, ceil_mode",
          "[ops][pool][gradcheck]") {
  manual_seed(201);
  Draw d(777u);
  int configs = 0, excluded = 0, overridden = 0, ceiled = 0;
  for (int i = 0; i < 60; ++i) {
    const Spec sp = random_pool(d, static_cast<std::size_t>(1 + i % 3), Spec::Op::Avg);
    excluded += !sp.include_pad;
    overridden += sp.divisor != 0;
    ceiled += sp.ceil;
    configs += check_gradients(sp.describe(),
                               [sp](const std::vector<Tensor>& v) { return sp.apply(v[0]); },
                               {ct_test::leaf(sp.x)});
  }
  REQUIRE(configs == 60);
  CHECK(excluded >= 10);
  CHECK(overridden >= 5);
  CHECK(ceiled >= 10);
}

TEST_CASE("adaptive pooling and global_avg_pool: seeded gradcheck sweep",
          "[ops][pool][gradcheck]") {
  manual_seed(202);
  Draw d(4242u);
  int configs = 0, divides = 0, grows = 0;
  for (int i = 0; i < 48; ++i) {
    const Spec sp = random_adaptive(d, static_cast<std::size_t>(1 + i % 3), i % 2 == 0);
    bool all_divide = true, any_grow = false;
    for (std::size_t k = 0; k < sp.rank(); ++k) {
      all_divide = all_divide && sp.in(k) % sp.adaptive_out[k] == 0;
      any_grow = any_grow || sp.adaptive_out[k] > sp.in(k);
    }
    divides += all_divide;
    grows += any_grow;
    const Tensor x = sp.is_max() ? distinct_leaf(sp.x, d) : ct_test::leaf(sp.x);
    configs += check_gradients(sp.describe(),
                               [sp](const std::vector<Tensor>& v) { return sp.apply(v[0]); }, {x});
  }
  REQUIRE(configs == 48);
  CHECK(divides >= 8);
  CHECK(grows >= 8);
  for (const Shape& shape : {Shape{2, 3, 5}, Shape{1, 2, 3, 4}, Shape{2, 1, 2, 3, 2}})
    check_gradients("global_avg_pool",
                    [](const std::vector<Tensor>& v) { return global_avg_pool(v[0]); },
                    {ct_test::leaf(shape)});
}

TEST_CASE("max_unpool: gradcheck over ranks with and without output_size",
          "[ops][pool][gradcheck]") {
  Draw d(99u);
  struct Case {
    Shape pooled;
    PoolOptions o;
    bool sized;
  };
  const std::vector<Case> cases{
      {{2, 2, 9}, PoolOptions(2), false},
      {{1, 2, 10}, PoolOptions(3).stride(3).padding(1), true},
      {{2, 1, 6, 7}, PoolOptions(2), true},
      {{1, 2, 7, 8}, PoolOptions({2, 3}).stride({2, 3}).padding({1, 0}), true},
      {{1, 1, 4, 5, 4}, PoolOptions(2), true},
  };
  for (const auto& c : cases) {
    INFO(str(c.pooled));
    const PoolWithIndices r = max_pool_with_indices(distinct_leaf(c.pooled, d).detach(), c.o);
    const Shape size = c.sized ? Shape(c.pooled.begin() + 2, c.pooled.end()) : Shape{};
    const PoolOptions o = c.o;
    // The indices are an input, so that they move to the device with the values.
    const auto unpool = [o, size](const std::vector<Tensor>& v) {
      return max_unpool(v[0], v[1], o, size);
    };
    check_gradients("max_unpool", unpool, {ct_test::leaf(r.values.shape()), r.indices});
  }
}

// ============================================================================ exact checks

TEST_CASE("pooling: random small-integer cases equal the nested-loop reference exactly",
          "[ops][pool][exact]") {
  Draw d(31337u);
  int checked = 0;
  for (int i = 0; i < 120; ++i) {
    const auto rank = static_cast<std::size_t>(1 + i % 3);
    const int kind = (i / 3) % 4;
    const Spec sp = kind < 2 ? random_pool(d, rank, kind == 0 ? Spec::Op::Max : Spec::Op::Avg, 9)
                             : random_adaptive(d, rank, kind == 2);
    if (i % 2 == 0)
      check_exact<float>(sp, d);
    else
      check_exact<double>(sp, d);
    ++checked;
  }
  CHECK(checked == 120);
}

TEST_CASE("pooling: shapes above the parallel threshold equal the reference exactly",
          "[ops][pool][exact]") {
  Draw d(5u);
  Spec mx;
  mx.x = {8, 16, 33, 34};
  mx.kernel = {3, 3};
  mx.stride = {2, 2};
  mx.dilation = {1, 1};
  mx.pads = {{1, 1}, {1, 1}};
  check_exact<float>(mx, d);
  mx.ceil = true;
  check_exact<double>(mx, d);
  Spec av = mx;
  av.op = Spec::Op::Avg;
  av.ceil = false;
  av.include_pad = false;
  check_exact<float>(av, d);
  Spec stride1 = av;  // unit stride: the contiguous inner loops
  stride1.stride = {1, 1};
  stride1.include_pad = true;
  check_exact<float>(stride1, d);
  Spec ad;
  ad.op = Spec::Op::AdaptiveAvg;
  ad.x = {8, 32, 30, 29};
  ad.adaptive_out = {7, 6};
  check_exact<float>(ad, d);
  ad.op = Spec::Op::AdaptiveMax;
  check_exact<float>(ad, d);
  Spec one_d;
  one_d.x = {8, 32, 1030};
  one_d.kernel = {3};
  one_d.stride = {2};
  one_d.dilation = {1};
  one_d.pads = {{0, 0}};
  check_exact<float>(one_d, d);
  Spec three_d;
  three_d.x = {8, 16, 8, 16, 17};
  three_d.kernel = {2, 2, 2};
  three_d.stride = {2, 2, 2};
  three_d.dilation = {1, 1, 1};
  three_d.pads = {{0, 0}, {0, 0}, {1, 1}};
  check_exact<float>(three_d, d);
}

TEST_CASE("max_pool 2x2 stride 2 (the pairs kernels) equals the reference exactly on every path",
          "[ops][pool][exact][isa]") {
  // Widths around the AVX-512 and AVX2 blocks (16 and 8 outputs), odd extents whose last row and
  // column no window reads, and a size above the parallel threshold; -inf windows and ties drawn.
  const std::vector<Shape> shapes = {{2, 3, 2, 2},   {1, 2, 4, 14},   {2, 2, 5, 15},
                                     {1, 3, 6, 32},  {1, 2, 3, 34},   {2, 2, 7, 71},
                                     {3, 1, 2, 130}, {8, 16, 28, 28}, {4, 32, 15, 15}};
  for (const cpu::Isa isa : cpu::available_isas()) {
    cpu::IsaGuard guard(isa);
    INFO("ISA path " << cpu::isa_name(isa));
    Draw d(77u);
    for (const Shape& x : shapes) {
      Spec sp;
      sp.x = x;
      sp.kernel = {2, 2};
      sp.stride = {2, 2};
      sp.dilation = {1, 1};
      sp.pads = {{0, 0}, {0, 0}};
      check_exact<float>(sp, d);
    }
    // NaN: the first NaN of a window wins and takes the gradient, in each of the four places.
    for (std::int64_t at = 0; at < 4; ++at) {
      Tensor z = zeros({1, 1, 2, 36});
      for (std::int64_t col = 0; col < 36; col += 2) {
        z.put_({0, 0, at / 2, col + at % 2}, std::nan(""));
        z.put_({0, 0, 1, col + 1}, std::nan(""));  // a later NaN of the same window loses
        z.put_({0, 0, 0, col}, at == 0 ? std::nan("") : 5.0);
      }
      const PoolWithIndices r = max_pool_with_indices(z, PoolOptions(2));
      const auto idx = r.indices.to_vector<std::int64_t>();
      const auto v = r.values.to_vector<double>();
      for (std::int64_t o = 0; o < 18; ++o) {
        INFO("NaN placed at " << at << ", output " << o);
        // A window whose (0, 0) element is 5 and holds NaNs: the first NaN in row-major order.
        const std::int64_t first_nan = at == 0 ? 0 : at == 1 ? 1 : at == 2 ? 36 : 37;
        CHECK(std::isnan(v[static_cast<std::size_t>(o)]));
        CHECK(idx[static_cast<std::size_t>(o)] == 2 * o + first_nan);
      }
    }
  }
}

TEST_CASE("pooling: windows covering whole planes (global) equal the reference exactly",
          "[ops][pool][exact]") {
  Draw d(6u);
  for (const Shape& x : {Shape{3, 5, 7, 7}, Shape{2, 4, 37}, Shape{1, 3, 2, 3, 4}}) {
    const Shape spatial(x.begin() + 2, x.end());
    Spec am;
    am.op = Spec::Op::AdaptiveMax;
    am.x = x;
    am.adaptive_out = Shape(spatial.size(), 1);
    check_exact<float>(am, d);
    Spec aa = am;
    aa.op = Spec::Op::AdaptiveAvg;
    check_exact<double>(aa, d);
    Spec mk;  // the kernel is the whole input
    mk.x = x;
    mk.kernel = spatial;
    mk.stride = spatial;
    mk.dilation = Shape(spatial.size(), 1);
    mk.pads = Pads(spatial.size(), {0, 0});
    check_exact<float>(mk, d);
    mk.op = Spec::Op::Avg;
    check_exact<float>(mk, d);
    const Tensor t = small_ints(x, d, kFloat64);
    std::vector<std::int64_t> dims;
    for (std::size_t k = 0; k < spatial.size(); ++k)
      dims.push_back(static_cast<std::int64_t>(2 + k));
    CHECK(ct_test::allclose(global_avg_pool(t), mean(t, dims, /*keepdim=*/true), 1e-12, 1e-12));
  }
  // A NaN anywhere in a plane is its global max, and the first NaN is its index.
  Tensor x = zeros({1, 2, 3, 3});
  x.put_({0, 0, 1, 2}, std::nan(""));
  x.put_({0, 0, 2, 0}, std::nan(""));
  x.put_({0, 1, 2, 2}, 7.0);
  const PoolWithIndices r = adaptive_max_pool_with_indices(x, {1});
  CHECK(std::isnan(r.values.at<float>({0, 0, 0, 0})));
  CHECK(r.values.at<float>({0, 1, 0, 0}) == 7.0f);
  CHECK(r.indices.to_vector<std::int64_t>() == std::vector<std::int64_t>{5, 8});
  NoGradGuard no_grad;
  CHECK(std::isnan(adaptive_max_pool(x, {1}).at<float>({0, 0, 0, 0})));
}

TEST_CASE("pooling: four spatial dims run through the same N-d kernels", "[ops][pool][exact]") {
  Draw d(8u);
  Spec sp;
  sp.x = {1, 2, 4, 3, 5, 4};
  sp.kernel = {2, 1, 3, 2};
  sp.stride = {2, 1, 2, 1};
  sp.dilation = {1, 1, 1, 2};
  sp.pads = {{1, 1}, {0, 0}, {1, 0}, {1, 1}};
  sp.symmetric = false;
  sp.ceil = true;
  check_exact<double>(sp, d);
  sp.op = Spec::Op::Avg;
  sp.dilation = {1, 1, 1, 1};
  sp.include_pad = false;
  check_exact<double>(sp, d);
  check_gradients(sp.describe(), [sp](const std::vector<Tensor>& v) { return sp.apply(v[0]); },
                  {ct_test::leaf(sp.x)});
}

// ============================================================================ the seeds' examples

TEST_CASE("d2l: 2x2 max and average pooling of arange(9)", "[ops][pool][seeds]") {
  const Tensor x = arange(9.0).reshape({1, 1, 3, 3});
  const PoolOptions o = PoolOptions(2).stride(1);
  CHECK(equal(max_pool2d(x, o), t2({4, 5, 7, 8}, {1, 1, 2, 2})));
  CHECK(equal(avg_pool2d(x, o), t2({2, 3, 5, 6}, {1, 1, 2, 2})));
}

TEST_CASE("d2l / probml: 3x3 max pooling of arange(16), padding and stride variants",
          "[ops][pool][seeds]") {
  const Tensor x = arange(16.0).reshape({1, 1, 4, 4});
  // pool2d(X, (3, 3), 'max') with the d2l loop (stride 1): [[10, 11], [14, 15]].
  CHECK(equal(max_pool2d(x, PoolOptions(3).stride(1)), t2({10, 11, 14, 15}, {1, 1, 2, 2})));
  // nn.MaxPool2d(3): the stride defaults to the kernel.
  CHECK(equal(max_pool2d(x, PoolOptions(3)), t2({10}, {1, 1, 1, 1})));
  // nn.MaxPool2d(3, padding=1, stride=2).
  CHECK(
      equal(max_pool2d(x, PoolOptions(3).padding(1).stride(2)), t2({5, 7, 13, 15}, {1, 1, 2, 2})));
  // nn.MaxPool2d((2, 3), stride=(2, 3), padding=(0, 1)).
  CHECK(equal(max_pool2d(x, PoolOptions({2, 3}).stride({2, 3}).padding({0, 1})),
              t2({5, 7, 13, 15}, {1, 1, 2, 2})));
  // Two channels, X and X + 1, pooled separately.
  const Tensor x2 = cat({x, x + 1.0}, 1);
  CHECK(equal(max_pool2d(x2, PoolOptions(3).padding(1).stride(2)),
              t2({5, 7, 13, 15, 6, 8, 14, 16}, {1, 2, 2, 2})));
}

TEST_CASE("probml: flax-style NHWC max_pool of arange(16), window (3, 3), strides (1, 1)",
          "[ops][pool][seeds]") {
  // flax.linen.max_pool(X, (3, 3), strides=(1, 1)) on X = arange(16).reshape((1, 4, 4, 1)):
  // [[[[10], [11]], [[14], [15]]]]. Pooling is channel-first here; NHWC maps onto it by permutes.
  const Tensor x = arange(16.0).reshape({1, 4, 4, 1});
  const Tensor y =
      permute(max_pool2d(permute(x, {0, 3, 1, 2}), PoolOptions(3).stride(1)), {0, 2, 3, 1});
  CHECK(y.shape() == Shape{1, 2, 2, 1});
  CHECK(equal(y.contiguous(), t2({10, 11, 14, 15}, {1, 2, 2, 1})));
}

// ============================================================================ semantics

TEST_CASE("max_pool: NaN propagates and takes the gradient (the first NaN of a window)",
          "[ops][pool]") {
  Tensor x = t2({1, std::nan(""), 3, 2, 5, 0, std::nan(""), 4}, {1, 1, 8});
  x.requires_grad_(true);
  const PoolWithIndices r = max_pool_with_indices(x.detach(), PoolOptions(4));
  CHECK(std::isnan(r.values.at<float>({0, 0, 0})));
  CHECK(std::isnan(r.values.at<float>({0, 0, 1})));
  CHECK(r.indices.to_vector<std::int64_t>() == std::vector<std::int64_t>{1, 6});
  // Overlapping windows: only those holding the NaN become NaN.
  const Tensor y = max_pool1d(x, PoolOptions(2).stride(1));
  const auto v = y.to_vector<double>();
  REQUIRE(v.size() == 7);
  CHECK(std::isnan(v[0]));
  CHECK(std::isnan(v[1]));
  CHECK(v[2] == 3.0);
  CHECK(v[3] == 5.0);
  CHECK(v[4] == 5.0);
  CHECK(std::isnan(v[5]));
  CHECK(std::isnan(v[6]));
  y.backward(ones({1, 1, 7}));
  CHECK(x.grad().to_vector<double>() == std::vector<double>{0, 2, 1, 0, 2, 0, 2, 0});
  // Two NaNs in one window: the first one is the max, in 2-d row-major order too.
  Tensor z = zeros({1, 1, 2, 2});
  z.put_({0, 0, 0, 1}, std::nan(""));
  z.put_({0, 0, 1, 0}, std::nan(""));
  CHECK(max_pool_with_indices(z, PoolOptions(2)).indices.item<std::int64_t>() == 1);
  // NaN propagates through the average too.
  CHECK(std::isnan(avg_pool1d(x.detach(), PoolOptions(4)).at<float>({0, 0, 0})));
}

TEST_CASE("max_pool: ties send the gradient to the first maximal element", "[ops][pool]") {
  Tensor x = ones({1, 1, 4, 4}, TensorOptions().requires_grad(true));
  const PoolWithIndices r = max_pool_with_indices(x.detach(), PoolOptions(2));
  CHECK(r.indices.to_vector<std::int64_t>() == std::vector<std::int64_t>{0, 2, 8, 10});
  max_pool2d(x, PoolOptions(2)).backward(ones({1, 1, 2, 2}));
  CHECK(x.grad().to_vector<double>() ==
        std::vector<double>{1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0});
  // A tie across rows: the earlier row wins, though the later row's element comes first in
  // column-major order.
  const Tensor y = t2({0, 3, 3, 1}, {1, 1, 2, 2});
  CHECK(max_pool_with_indices(y, PoolOptions(2)).indices.item<std::int64_t>() == 1);
  const Tensor w = t2({0, 1, 3, 3}, {1, 1, 2, 2});
  CHECK(max_pool_with_indices(w, PoolOptions(2)).indices.item<std::int64_t>() == 2);
}

TEST_CASE("max_pool: padding never wins, even over all-negative inputs", "[ops][pool]") {
  const Tensor x = arange(-16.0, 0.0).reshape({1, 1, 4, 4});
  const PoolWithIndices r = max_pool_with_indices(x, PoolOptions(3).stride(2).padding(1));
  CHECK(equal(r.values, t2({-11, -9, -3, -1}, {1, 1, 2, 2})));
  CHECK(r.indices.to_vector<std::int64_t>() == std::vector<std::int64_t>{5, 7, 13, 15});
  const Tensor corner = max_pool2d(full({1, 1, 2, 2}, -5.0), PoolOptions(2).stride(1).padding(1));
  CHECK(equal(corner, full({1, 1, 3, 3}, -5.0)));
  // Per-side padding, ceil_mode overhang and dilation: still the real elements only.
  // in 5, kernel 3, dilation 2, padding (1, 0), ceil_mode: taps {-1, 1, 3} and {1, 3, 5}.
  const Tensor d =
      max_pool1d(t2({-3, -1, -2, -7, -5}, {1, 1, 5}),
                 PoolOptions(3).stride(2).dilation(2).padding(Pads{{1, 0}}).ceil_mode());
  CHECK(equal(d, t2({-1, -1}, {1, 1, 2})));
}

TEST_CASE("max_pool: a dilated window whose taps all fall in padding is refused", "[ops][pool]") {
  // PyTorch accepts this window (kernel 2, dilation 2, padding 1 over one element), whose taps at
  // -1 and 1 both miss the input, and returns -inf with index 1, outside the input: no answer.
  const Tensor x = t2({4}, {1, 1, 1});
  const PoolOptions o = PoolOptions(2).stride(1).dilation(2).padding(1);
  CT_REQUIRE_ERROR(max_pool_with_indices(x, o),
                   "max_pool_with_indices: expected every dilated window to hold an input "
                   "element, got output 0 in dim 0 with taps -1 + 2 * r (r < 2) outside the input "
                   "of size 1");
  CT_REQUIRE_ERROR(max_pool1d(x, o), "max_pool1d: expected every dilated window");
  // Dim 0's windows (taps {-1, 2}, {0, 3}, {1, 4} over [0, 4)) each hold an element; dim 1's one
  // window (taps {-1, 2} over [0, 2)) does not.
  CT_REQUIRE_ERROR(max_pool2d(zeros({1, 1, 4, 2}), PoolOptions(2).stride(1).dilation(3).padding(1)),
                   "max_pool2d: expected every dilated window to hold an input element, got "
                   "output 0 in dim 1 with taps -1 + 3 * r (r < 2) outside the input of size 2");
  // Dilated windows that each keep one input element are accepted.
  CHECK(max_pool1d(t2({4, 5}, {1, 1, 2}), o).to_vector<double>() == std::vector<double>{5, 4});
}

TEST_CASE("avg_pool: count_include_pad and divisor_override decide the divisor", "[ops][pool]") {
  const Tensor x = ones({1, 1, 3, 3});
  const PoolOptions o = PoolOptions(3).stride(1).padding(1);
  CHECK(ct_test::allclose(
      avg_pool2d(x, o),
      t2({4.0 / 9, 6.0 / 9, 4.0 / 9, 6.0 / 9, 1, 6.0 / 9, 4.0 / 9, 6.0 / 9, 4.0 / 9}, {1, 1, 3, 3}),
      0, 1e-7));
  CHECK(equal(avg_pool2d(x, PoolOptions(o).count_include_pad(false)), ones({1, 1, 3, 3})));
  CHECK(equal(avg_pool2d(x, PoolOptions(o).divisor_override(2)),
              t2({2, 3, 2, 3, 4.5, 3, 2, 3, 2}, {1, 1, 3, 3})));
  // ceil_mode windows overhanging the high padding divide by the part inside the padded input:
  // in 5, kernel 3, stride 2, padding 1 -> windows [-1, 2), [1, 4), [3, 6) (clipped to 6).
  const Tensor r = arange(1.0, 6.0).reshape({1, 1, 5});
  CHECK(equal(avg_pool1d(r, PoolOptions(3).stride(2).padding(1).ceil_mode()),
              t2({3.0f / 3, 9.0f / 3, 9.0f / 3}, {1, 1, 3})));
  // in 6: the last window [5, 8) reaches past the padded input [−1, 7): divisor 2, as PyTorch.
  const Tensor r6 = arange(1.0, 7.0).reshape({1, 1, 6});
  CHECK(equal(avg_pool1d(r6, PoolOptions(3).stride(2).padding(1).ceil_mode()),
              t2({3.0f / 3, 9.0f / 3, 15.0f / 3, 6.0f / 2}, {1, 1, 4})));
}

TEST_CASE("ceil_mode: a window that would start in the high padding is dropped", "[ops][pool]") {
  // in 5, kernel 2, stride 2, padding 1: ceil((5 + 2 - 2) / 2) + 1 = 4 windows, but the fourth
  // would start at 5 = in + pad_lo, in the padding: 3 remain.
  CHECK(max_pool1d(zeros({1, 1, 5}), PoolOptions(2).stride(2).padding(1).ceil_mode()).shape() ==
        Shape{1, 1, 3});
  CHECK(max_pool1d(zeros({1, 1, 5}), PoolOptions(2).stride(2).padding(1)).shape() ==
        Shape{1, 1, 3});
  // in 6: the fourth window starts at 6 - 1 = 5 < 6 and stays.
  CHECK(max_pool1d(zeros({1, 1, 6}), PoolOptions(2).stride(2).padding(1).ceil_mode()).shape() ==
        Shape{1, 1, 4});
  CHECK(avg_pool2d(zeros({1, 1, 7, 8}), PoolOptions(3).stride(2).ceil_mode()).shape() ==
        Shape{1, 1, 3, 4});
  // ceil_mode lets a kernel larger than the input by less than the stride fit (as in PyTorch).
  CHECK(max_pool1d(zeros({1, 1, 2}), PoolOptions(3).stride(2).ceil_mode()).shape() ==
        Shape{1, 1, 1});
}

TEST_CASE("max_unpool: the round trip keeps each window's max in place and zeros elsewhere",
          "[ops][pool]") {
  const Tensor x = t2({1, 5, 2, 0, 3, 4, 8, 7, 6, 9, 1, 2, 0, 2, 5, 3}, {1, 1, 4, 4});
  const PoolOptions o = PoolOptions(2);
  const PoolWithIndices r = max_pool_with_indices(x, o);
  CHECK(equal(r.values, t2({5, 8, 9, 5}, {1, 1, 2, 2})));
  CHECK(r.indices.to_vector<std::int64_t>() == std::vector<std::int64_t>{1, 6, 9, 14});
  const Tensor u = max_unpool2d(r.values, r.indices, o);
  CHECK(equal(u, t2({0, 5, 0, 0, 0, 0, 8, 0, 0, 9, 0, 0, 0, 0, 5, 0}, {1, 1, 4, 4})));
  CHECK(equal(max_pool2d(u, o), r.values));
  // An odd input: the default size (2 x 4) is too small for its indices; output_size restores
  // the input's size.
  const Tensor odd = arange(15.0).reshape({1, 1, 3, 5});
  const PoolWithIndices ro = max_pool_with_indices(odd, o);
  CT_REQUIRE_ERROR(max_unpool2d(ro.values, ro.indices, o),
                   "max_unpool2d: expected indices in [0, 8) (the output plane 2 x 4), got 8");
  const Tensor full_size = max_unpool2d(ro.values, ro.indices, o, {3, 5});
  CHECK(full_size.shape() == Shape{1, 1, 3, 5});
  CHECK(equal(max_unpool2d(ro.values, ro.indices, o, {1, 1, 3, 5}), full_size));
  CHECK(equal(full_size, t2({0, 0, 0, 0, 0, 0, 6, 0, 8, 0, 0, 0, 0, 0, 0}, {1, 1, 3, 5})));
  // Duplicate indices (overlapping windows): the later write stands; the gradient gathers.
  Tensor v = t2({1, 2}, {1, 1, 2}).requires_grad_(true);
  const Tensor dup = from_vector(std::vector<std::int64_t>{1, 1}, {1, 1, 2});
  const Tensor y = max_unpool1d(v, dup, PoolOptions(2).stride(1));
  CHECK(equal(y.detach(), t2({0, 2, 0}, {1, 1, 3})));
  y.backward(t2({5, 6, 7}, {1, 1, 3}));
  CHECK(equal(v.grad(), t2({6, 6}, {1, 1, 2})));
}

TEST_CASE("max_pool: the forward's argmax indices are saved for backward", "[ops][pool]") {
  Tensor x = t2({1, 3, 2, 0}, {1, 1, 4}).requires_grad_(true);
  const Tensor y = max_pool1d(x, PoolOptions(2));
  // Changing x after the forward pass cannot move the gradient: the saved argmax routes it.
  {
    NoGradGuard no_grad;
    x.detach().copy_(t2({9, 0, 0, 9}, {1, 1, 4}));
  }
  y.backward(t2({1, 2}, {1, 1, 2}));
  CHECK(equal(x.grad(), t2({0, 1, 2, 0}, {1, 1, 4})));
  // The saved indices are the returned ones: writing into them is caught in backward.
  Tensor z = t2({1, 3, 2, 0}, {1, 1, 4}).requires_grad_(true);
  const PoolWithIndices r = max_pool_with_indices(z, PoolOptions(2));
  CHECK(r.values.requires_grad());
  CHECK_FALSE(r.indices.requires_grad());
  Tensor ind = r.indices;
  ind.put_({0, 0, 0}, 0.0);
  CT_REQUIRE_ERROR(r.values.backward(ones({1, 1, 2})),
                   "backward of max_pool_with_indices: expected saved tensor 0 unchanged");
}

TEST_CASE("pooling reads strided views like their contiguous copies", "[ops][pool]") {
  Draw d(12u);
  const Tensor base = small_ints({2, 6, 5, 3}, d, kFloat64);
  const Tensor v = permute(base, {0, 3, 2, 1});  // [2, 3, 5, 6], not contiguous
  REQUIRE_FALSE(v.is_contiguous());
  const PoolOptions o = PoolOptions(3).stride(2).padding(1);
  CHECK(equal(max_pool2d(v, o), max_pool2d(v.contiguous(), o)));
  CHECK(equal(avg_pool2d(v, o), avg_pool2d(v.contiguous(), o)));
  CHECK(equal(adaptive_avg_pool(v, {2, 4}), adaptive_avg_pool(v.contiguous(), {2, 4})));
  CHECK(equal(adaptive_max_pool(v, {3}), adaptive_max_pool(v.contiguous(), {3})));
  const PoolWithIndices r = max_pool_with_indices(v, o);
  CHECK(equal(
      max_unpool2d(r.values, permute(permute(r.indices, {0, 1, 3, 2}).contiguous(), {0, 1, 3, 2}),
                   o, {5, 6}),
      max_unpool2d(r.values, r.indices, o, {5, 6})));
}

TEST_CASE("pooling: empty batches and zero channels give empty results", "[ops][pool]") {
  Tensor x = zeros({0, 3, 6, 6}, TensorOptions().requires_grad(true));
  const Tensor y = max_pool2d(x, PoolOptions(2));
  CHECK(y.shape() == Shape{0, 3, 3, 3});
  y.backward(zeros({0, 3, 3, 3}));
  CHECK(x.grad().shape() == Shape{0, 3, 6, 6});
  CHECK(avg_pool2d(zeros({2, 0, 6, 6}), PoolOptions(3)).shape() == Shape{2, 0, 2, 2});
  CHECK(adaptive_avg_pool(zeros({0, 2, 5}), {2}).shape() == Shape{0, 2, 2});
  CHECK(global_avg_pool(zeros({3, 0, 4, 4})).shape() == Shape{3, 0, 1, 1});
  const PoolWithIndices r = max_pool_with_indices(zeros({0, 1, 4}), PoolOptions(2));
  CHECK(max_unpool1d(r.values, r.indices, PoolOptions(2)).shape() == Shape{0, 1, 4});
}

TEST_CASE("global_avg_pool keeps size-1 spatial dims", "[ops][pool]") {
  const Tensor x = arange(24.0).reshape({2, 3, 4});
  CHECK(equal(global_avg_pool(x), t2({1.5, 5.5, 9.5, 13.5, 17.5, 21.5}, {2, 3, 1})));
  CHECK(global_avg_pool(zeros({2, 5, 7, 7})).shape() == Shape{2, 5, 1, 1});
}

// ============================================================================ errors

TEST_CASE("pooling: argument errors", "[ops][pool][errors]") {
  const Tensor x = zeros({1, 2, 5, 5});
  CT_REQUIRE_ERROR(max_pool(zeros({4, 5}), PoolOptions(2)),
                   "max_pool: expected input [N, C, *spatial] with at least one spatial dim, got "
                   "[4, 5]");
  CT_REQUIRE_ERROR(max_pool(zeros({1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}), PoolOptions(1)),
                   "max_pool: expected at most 8 spatial dims");
  CT_REQUIRE_ERROR(max_pool(zeros({1, 1, 0, 4}), PoolOptions(1)),
                   "max_pool: expected non-empty spatial dims, got input [1, 1, 0, 4]");
  CT_REQUIRE_ERROR(max_pool(x, PoolOptions()),
                   "max_pool: expected a kernel_size with 1 or 2 values, got none");
  CT_REQUIRE_ERROR(
      max_pool(x, PoolOptions({2, 2, 2})),
      "max_pool: expected kernel_size with 1 or 2 values (one per spatial dim), got 3");
  CT_REQUIRE_ERROR(max_pool(x, PoolOptions(0)), "max_pool: expected kernel_size > 0, got [0, 0]");
  CT_REQUIRE_ERROR(max_pool(x, PoolOptions(2).stride(0)),
                   "max_pool: expected stride > 0, got [0, 0]");
  CT_REQUIRE_ERROR(avg_pool(x, PoolOptions(2).stride({1, -1})),
                   "avg_pool: expected stride > 0, got [1, -1]");
  CT_REQUIRE_ERROR(max_pool(x, PoolOptions(2).stride({1, 1, 1})),
                   "max_pool: expected stride with 1 or 2 values (one per spatial dim), got 3");
  CT_REQUIRE_ERROR(max_pool(x, PoolOptions(2).dilation(0)),
                   "max_pool: expected dilation > 0, got [0, 0]");
  CT_REQUIRE_ERROR(avg_pool(x, PoolOptions(2).dilation(2)),
                   "avg_pool: expected dilation 1 (average pooling has no dilation), got [2, 2]");
  CT_REQUIRE_ERROR(max_pool(x, PoolOptions(2).padding(-1)),
                   "max_pool: expected non-negative padding, got (-1, -1)");
  CT_REQUIRE_ERROR(max_pool(x, PoolOptions(3).padding(Shape{1, 2})),
                   "max_pool: expected padding at most half the kernel size, got padding (2, 2) "
                   "for kernel size 3 in dim 1");
  CT_REQUIRE_ERROR(avg_pool(x, PoolOptions(2).padding(Pads{{1, 2}})),
                   "avg_pool: expected padding at most half the kernel size, got padding (1, 2) "
                   "for kernel size 2 in dim 0");
  CT_REQUIRE_ERROR(max_pool(x, PoolOptions(2).padding(Pads{{0, 0}, {0, 0}, {0, 0}})),
                   "max_pool: expected padding with 1 or 2 values (one per spatial dim), got 3");
  CT_REQUIRE_ERROR(max_pool(zeros({1, 1, 2, 2}), PoolOptions(3)),
                   "max_pool: expected a window (dilated kernel 3 x 3) that fits the padded input "
                   "(2 x 2), got output size 0 x 0 for input [1, 1, 2, 2]");
  CT_REQUIRE_ERROR(max_pool(zeros({1, 1, 4}), PoolOptions(2).dilation(4)),
                   "max_pool: expected a window (dilated kernel 5) that fits the padded input (4)");
  CT_REQUIRE_ERROR(avg_pool(zeros({1, 1, 4, 9}), PoolOptions({5, 2})),
                   "avg_pool: expected a window (dilated kernel 5 x 2) that fits the padded input "
                   "(4 x 9), got output size 0 x 4");
  CT_REQUIRE_ERROR(avg_pool(x, PoolOptions(2).divisor_override(0)),
                   "avg_pool: expected a non-zero divisor_override, got 0");
  CT_REQUIRE_ERROR(max_pool(x.to(kInt64), PoolOptions(2)),
                   "max_pool: expected a floating-point tensor (float32 or float64), got int64");
  CT_REQUIRE_ERROR(max_pool(Tensor(), PoolOptions(2)), "max_pool: expected a defined input tensor");
  CT_REQUIRE_ERROR(max_pool_with_indices(zeros({3}), PoolOptions(2)),
                   "max_pool_with_indices: expected input [N, C, *spatial]");
}

TEST_CASE("pooling: the rank-checked wrappers", "[ops][pool][errors]") {
  CT_REQUIRE_ERROR(max_pool2d(zeros({1, 1, 4}), PoolOptions(2)),
                   "max_pool2d: expected input of rank 4 ([N, C, 2 spatial dims]), got [1, 1, 4]");
  CT_REQUIRE_ERROR(
      max_pool1d(zeros({1, 1, 4, 4}), PoolOptions(2)),
      "max_pool1d: expected input of rank 3 ([N, C, 1 spatial dim]), got [1, 1, 4, 4]");
  CT_REQUIRE_ERROR(max_pool3d(zeros({1, 1, 4, 4}), PoolOptions(2)),
                   "max_pool3d: expected input of rank 5 ([N, C, 3 spatial dims])");
  CT_REQUIRE_ERROR(avg_pool1d(zeros({4, 4}), PoolOptions(2)),
                   "avg_pool1d: expected input of rank 3");
  CT_REQUIRE_ERROR(avg_pool2d(zeros({1, 1, 4, 4, 4}), PoolOptions(2)),
                   "avg_pool2d: expected input of rank 4");
  CT_REQUIRE_ERROR(avg_pool3d(zeros({1, 1, 4}), PoolOptions(2)),
                   "avg_pool3d: expected input of rank 5");
  const Tensor i = zeros({1, 1, 2}, kInt64);
  CT_REQUIRE_ERROR(max_unpool2d(zeros({1, 1, 2}), i, PoolOptions(2)),
                   "max_unpool2d: expected input of rank 4");
  CT_REQUIRE_ERROR(max_unpool1d(zeros({1, 1, 2, 2}), i, PoolOptions(2)),
                   "max_unpool1d: expected input of rank 3");
  CT_REQUIRE_ERROR(max_unpool3d(zeros({1, 1, 2}), i, PoolOptions(2)),
                   "max_unpool3d: expected input of rank 5");
  CT_REQUIRE_ERROR(max_pool2d(zeros({1, 1, 4, 4}), PoolOptions(3).padding(2)),
                   "max_pool2d: expected padding at most half the kernel size");
}

TEST_CASE("max_unpool: argument errors", "[ops][pool][errors]") {
  const Tensor x = zeros({1, 1, 2, 2});
  const Tensor i = zeros({1, 1, 2, 2}, kInt64);
  const PoolOptions o = PoolOptions(2);
  CT_REQUIRE_ERROR(max_unpool(x, zeros({1, 1, 2, 2}), o),
                   "max_unpool: expected int64 indices, got float32");
  CT_REQUIRE_ERROR(max_unpool(x, Tensor(), o), "max_unpool: expected a defined indices tensor");
  CT_REQUIRE_ERROR(max_unpool(x, zeros({1, 1, 4}, kInt64), o),
                   "max_unpool: expected indices of the input's shape [1, 1, 2, 2], got [1, 1, 4]");
  CT_REQUIRE_ERROR(max_unpool(x, i, o, {4}),
                   "max_unpool: expected output_size with 2 (spatial) or 4 values, got [4]");
  CT_REQUIRE_ERROR(max_unpool(x, i, o, {4, 6}),
                   "max_unpool: expected output size in dim 1 strictly between 2 and 6 (input [1, "
                   "1, 2, 2], kernel size 2, stride 2), got 6");
  CT_REQUIRE_ERROR(max_unpool(x, i, o, {2, 4}),
                   "max_unpool: expected output size in dim 0 strictly between 2 and 6");
  CT_REQUIRE_ERROR(max_unpool(x, i, o, {2, 1, 4, 4}),
                   "max_unpool: expected output_size [N, C, *spatial] with N = 1 and C = 1, got "
                   "[2, 1, 4, 4]");
  CT_REQUIRE_ERROR(max_unpool(x, i, PoolOptions(1).padding(1)),
                   "max_unpool: expected a positive default output size, got 0 in dim 0");
  CHECK(max_unpool(x, i, o, {5, 3}).shape() == Shape{1, 1, 5, 3});
  const Tensor big = from_vector(std::vector<std::int64_t>{0, 3, 16, 2}, {1, 1, 2, 2});
  CT_REQUIRE_ERROR(max_unpool(x, big, o),
                   "max_unpool: expected indices in [0, 16) (the output plane 4 x 4), got 16 at "
                   "flat position 2");
  const Tensor negative = from_vector(std::vector<std::int64_t>{0, -1, 2, 3}, {1, 1, 2, 2});
  CT_REQUIRE_ERROR(max_unpool(x, negative, o), "max_unpool: expected indices in [0, 16)");
  CT_REQUIRE_ERROR(max_unpool(x, i, PoolOptions(2).stride(0)),
                   "max_unpool: expected stride > 0, got [0, 0]");
  CT_REQUIRE_ERROR(max_unpool(x.to(kInt64), i, o),
                   "max_unpool: expected a floating-point tensor (float32 or float64), got int64");
}

TEST_CASE("adaptive pooling: argument errors", "[ops][pool][errors]") {
  const Tensor x = zeros({1, 2, 5, 5});
  CT_REQUIRE_ERROR(adaptive_avg_pool(x, {}),
                   "adaptive_avg_pool: expected output_size with 1 or 2 values, got none");
  CT_REQUIRE_ERROR(adaptive_max_pool(x, {2, 2, 2}),
                   "adaptive_max_pool: expected output_size with 1 or 2 values (one per spatial "
                   "dim), got 3");
  CT_REQUIRE_ERROR(adaptive_avg_pool(x, {0, 2}),
                   "adaptive_avg_pool: expected output sizes >= 1, got [0, 2]");
  CT_REQUIRE_ERROR(adaptive_max_pool_with_indices(x, {-1}),
                   "adaptive_max_pool_with_indices: expected output sizes >= 1, got [-1, -1]");
  CT_REQUIRE_ERROR(adaptive_avg_pool(zeros({2, 5}), {1}),
                   "adaptive_avg_pool: expected input [N, C, *spatial] with at least one spatial "
                   "dim, got [2, 5]");
  CT_REQUIRE_ERROR(global_avg_pool(zeros({2, 5})),
                   "global_avg_pool: expected input [N, C, *spatial] with at least one spatial "
                   "dim");
  CT_REQUIRE_ERROR(global_avg_pool(zeros({1, 1, 3}, kInt64)),
                   "global_avg_pool: expected a floating-point tensor");
}

TEST_CASE("pooling: device mismatches are refused before any kernel runs", "[ops][pool][device]") {
  // int64 indices labelled as living on cuda:0 over host memory that nothing dereferences, as in
  // tests/core/tensor_test.cpp: the check must reject the mix with or without a GPU.
  static std::int64_t ihost[4] = {};
  auto ifake =
      std::make_shared<Storage>(ihost, sizeof(ihost), Device(DeviceType::CUDA, 0), nullptr);
  const Tensor id = Tensor::make(ifake, {1, 1, 2, 2}, {4, 4, 2, 1}, 0, kInt64);
  CT_REQUIRE_ERROR(max_unpool(zeros({1, 1, 2, 2}), id, PoolOptions(2)),
                   "max_unpool: expected tensors on one device, got cpu and cuda:0");
  CT_REQUIRE_ERROR(max_unpool2d(zeros({1, 1, 2, 2}), id, PoolOptions(2)),
                   "max_unpool2d: expected tensors on one device, got cpu and cuda:0");
}
