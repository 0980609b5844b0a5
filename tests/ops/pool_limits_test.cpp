// Tests of ops/pool at its limits (issue 11): PyTorch's -inf / NaN argmax rule in every max-pool
// variant, arguments up to 2^63 - 1 (exact shapes where the answer fits, "<op>: expected ..."
// errors naming the real values where it does not, never a hang, a wrapped number or
// std::bad_alloc), and a seeded sweep over wide argument magnitudes checked against an
// independent __int128 computation of PyTorch's output-size formulas.
// Expected -inf / NaN results were printed by Debian's python3-torch 1.13 (F.max_pool*d with
// return_indices, F.adaptive_max_pool1d), except where convtape keeps the first NaN of a window
// (PyTorch's CPU kernel keeps the last), which is said at each such case.
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "support/test_util.h"

namespace {

using namespace convtape;
using ct_test::equal;

using ct_test::Pads;
__extension__ typedef __int128 i128;  // exact PyTorch formulas, independent of ops/

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t k2p61 = std::int64_t{1} << 61;
constexpr std::int64_t k2p62 = std::int64_t{1} << 62;

Tensor f64(const std::vector<double>& v, const Shape& shape) {
  return from_vector(v, shape);
}

std::vector<std::int64_t> ints(const Tensor& t) {
  return t.to_vector<std::int64_t>();
}

// max_pool_with_indices of x and the gradient of sum(max_pool(x)) with respect to x.
struct MaxRun {
  Tensor values, indices;
  std::vector<double> grad;
};

MaxRun run_max(const Tensor& x, const PoolOptions& o) {
  MaxRun r;
  const PoolWithIndices p = max_pool_with_indices(x, o);
  r.values = p.values;
  r.indices = p.indices;
  Tensor leaf = x.detach().clone().requires_grad_(true);
  max_pool(leaf, o).backward(ones(p.values.shape(), kFloat64));
  r.grad = leaf.grad().to_vector<double>();
  return r;
}

MaxRun run_adaptive(const Tensor& x, const Shape& out) {
  MaxRun r;
  const PoolWithIndices p = adaptive_max_pool_with_indices(x, out);
  r.values = p.values;
  r.indices = p.indices;
  Tensor leaf = x.detach().clone().requires_grad_(true);
  adaptive_max_pool(leaf, out).backward(ones(p.values.shape(), kFloat64));
  r.grad = leaf.grad().to_vector<double>();
  return r;
}

bool all_equal(const Tensor& t, double v) {
  for (double e : t.to_vector<double>())
    if (!(e == v)) return false;
  return true;
}

}  // namespace

// ============================================================================ -inf and NaN

TEST_CASE("max_pool: an all -inf window sends its index and gradient to its first element",
          "[ops][pool][limits]") {
  SECTION("plain 1-d windows") {
    const MaxRun r = run_max(f64({-kInf, -kInf, -kInf, -kInf}, {1, 1, 4}), PoolOptions(2));
    CHECK(all_equal(r.values, -kInf));
    CHECK(ints(r.indices) == std::vector<std::int64_t>{0, 2});
    CHECK(r.grad == std::vector<double>{1, 0, 1, 0});
  }
  SECTION("padding is never selected, even when it is all the window holds besides -inf") {
    const MaxRun r = run_max(f64({-kInf, -kInf, -kInf}, {1, 1, 3}), PoolOptions(2).padding(1));
    CHECK(ints(r.indices) == std::vector<std::int64_t>{0, 1});
    CHECK(r.grad == std::vector<double>{1, 1, 0});
    const MaxRun c = run_max(f64({-kInf, -kInf, -kInf}, {1, 1, 3}),
                             PoolOptions(2).stride(2).padding(1).ceil_mode());
    CHECK(ints(c.indices) == std::vector<std::int64_t>{0, 1});
    CHECK(c.grad == std::vector<double>{1, 1, 0});
  }
  SECTION("dilated and padded: the first tap inside the input, not the first tap") {
    // Taps {-1, 1}, {1, 3}, {3, 5}.
    const MaxRun r = run_max(f64(std::vector<double>(5, -kInf), {1, 1, 5}),
                             PoolOptions(2).dilation(2).padding(1));
    CHECK(ints(r.indices) == std::vector<std::int64_t>{1, 1, 3});
    CHECK(r.grad == std::vector<double>{0, 2, 0, 1, 0});
  }
  SECTION("2-d and 3-d windows, row-major first element") {
    const MaxRun r =
        run_max(f64(std::vector<double>(15, -kInf), {1, 1, 3, 5}), PoolOptions(2).padding(1));
    CHECK(ints(r.indices) == std::vector<std::int64_t>{0, 1, 3, 5, 6, 8});
    CHECK(r.grad == std::vector<double>{1, 1, 0, 1, 0, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0});
    const MaxRun v = run_max(f64(std::vector<double>(18, -kInf), {1, 1, 2, 3, 3}),
                             PoolOptions(2).stride(2).padding(1));
    CHECK(ints(v.indices) == std::vector<std::int64_t>{0, 1, 3, 4, 9, 10, 12, 13});
    CHECK(
        max_pool3d(f64(std::vector<double>(18, -kInf), {1, 1, 2, 3, 3}), PoolOptions(2)).shape() ==
        Shape{1, 1, 1, 1, 1});
  }
  SECTION("four spatial dims, and windows covering the whole plane (the global kernels)") {
    const MaxRun r =
        run_max(f64(std::vector<double>(24, -kInf), {1, 1, 2, 2, 2, 3}), PoolOptions(2).stride(1));
    CHECK(ints(r.indices) == std::vector<std::int64_t>{0, 1});
    const MaxRun g = run_max(f64(std::vector<double>(18, -kInf), {2, 1, 3, 3}), PoolOptions(3));
    CHECK(ints(g.indices) == std::vector<std::int64_t>{0, 0});
    std::vector<double> want(18, 0.0);
    want[0] = want[9] = 1;
    CHECK(g.grad == want);
    CHECK(ints(adaptive_max_pool_with_indices(f64(std::vector<double>(9, -kInf), {1, 1, 3, 3}), {1})
                   .indices) == std::vector<std::int64_t>{0});
  }
  SECTION("adaptive windows") {
    // [0, 2), [1, 4), [3, 5).
    const MaxRun r = run_adaptive(f64(std::vector<double>(5, -kInf), {1, 1, 5}), {3});
    CHECK(ints(r.indices) == std::vector<std::int64_t>{0, 1, 3});
    CHECK(r.grad == std::vector<double>{1, 1, 0, 1, 0});
    // Whole-plane adaptive (kernel = stride = in / out) too.
    const MaxRun d = run_adaptive(f64(std::vector<double>(16, -kInf), {1, 1, 4, 4}), {2, 2});
    CHECK(ints(d.indices) == std::vector<std::int64_t>{0, 2, 8, 10});
  }
  SECTION("planes above the parallel threshold, float32 and float64") {
    for (DType dt : {kFloat32, kFloat64}) {
      const Tensor x = full({4, 8, 64, 64}, -kInf, dt);
      const PoolWithIndices p = max_pool_with_indices(x, PoolOptions(3).stride(2).padding(1));
      const auto idx = ints(p.indices);
      REQUIRE(idx.size() == 4u * 8 * 32 * 32);
      bool ok = true;
      for (std::size_t i = 0; i < idx.size(); ++i) {
        const std::int64_t f = static_cast<std::int64_t>(i % (32 * 32)), oh = f / 32, ow = f % 32;
        const std::int64_t h = std::max<std::int64_t>(oh * 2 - 1, 0);
        const std::int64_t w = std::max<std::int64_t>(ow * 2 - 1, 0);
        ok = ok && idx[i] == h * 64 + w;
      }
      CHECK(ok);
    }
  }
  SECTION("max_unpool puts an all -inf window's value back at its first element") {
    const PoolWithIndices p =
        max_pool_with_indices(f64({-kInf, -kInf, 2, -kInf}, {1, 1, 4}), PoolOptions(2));
    const Tensor u = max_unpool1d(p.values, p.indices, PoolOptions(2));
    const auto v = u.to_vector<double>();
    CHECK(v == std::vector<double>{-kInf, 0, 2, 0});
  }
}

TEST_CASE("max_pool: NaN replaces -inf and numbers; the first NaN of a window wins",
          "[ops][pool][limits]") {
  // PyTorch 1.13's CPU kernel returns index 3 here (its last NaN); convtape keeps the first.
  const MaxRun a =
      run_max(f64({-kInf, std::nan(""), -kInf, std::nan("")}, {1, 1, 4}), PoolOptions(4));
  CHECK(std::isnan(a.values.item<double>()));
  CHECK(ints(a.indices) == std::vector<std::int64_t>{1});
  CHECK(a.grad == std::vector<double>{0, 1, 0, 0});
  const MaxRun all = run_max(f64({std::nan(""), std::nan("")}, {1, 1, 2}), PoolOptions(2));
  CHECK(ints(all.indices) == std::vector<std::int64_t>{0});
  const MaxRun after = run_max(f64({-kInf, std::nan("")}, {1, 1, 2}), PoolOptions(2));
  CHECK(ints(after.indices) == std::vector<std::int64_t>{1});
  // Padded: [pad, NaN], [-inf, -inf] -> NaN at 0, then -inf at 1 (PyTorch: the same).
  const MaxRun p = run_max(f64({std::nan(""), -kInf, -kInf}, {1, 1, 3}), PoolOptions(2).padding(1));
  CHECK(ints(p.indices) == std::vector<std::int64_t>{0, 1});
  CHECK(std::isnan(p.values.to_vector<double>()[0]));
  CHECK(p.values.to_vector<double>()[1] == -kInf);
  // Adaptive and global windows follow the same rule.
  const Tensor x = f64({-kInf, 1, std::nan(""), std::nan(""), 2, -kInf}, {1, 1, 6});
  CHECK(ints(adaptive_max_pool_with_indices(x, {2}).indices) == std::vector<std::int64_t>{2, 3});
  CHECK(ints(adaptive_max_pool_with_indices(x, {1}).indices) == std::vector<std::int64_t>{2});
}

TEST_CASE("max_pool: -inf before a window's max never takes its gradient (float64 gradcheck)",
          "[ops][pool][limits][gradcheck]") {
  // x + mask: mask is -inf where (row + col) % 3 == 0, so windows start at (or hold) -inf
  // elements before their finite maximum. The gradcheck differentiates the finite leaf; perturbing
  // a -inf position changes nothing, and its analytic gradient must be 0 too.
  std::vector<double> mask(25), values(25);
  for (int i = 0; i < 25; ++i) {
    mask[static_cast<std::size_t>(i)] = ((i / 5 + i % 5) % 3 == 0) ? -kInf : 0.0;
    values[static_cast<std::size_t>(i)] = 0.1 * ((i * 7) % 25) - 1.0;  // distinct
  }
  const Tensor m = f64(mask, {1, 1, 5, 5});
  const Tensor x = f64(values, {1, 1, 5, 5}).requires_grad_(true);
  const std::vector<Tensor> inputs{x};
  for (const PoolOptions& o : {PoolOptions(3).stride(2).padding(1), PoolOptions(2).stride(1),
                               PoolOptions(3).stride(2).dilation({2, 1}).padding(1),
                               PoolOptions(3).stride(2).ceil_mode()}) {
    const Tensor y = max_pool2d(add(x.detach(), m), o);
    for (double v : y.to_vector<double>()) REQUIRE(std::isfinite(v));
    const GradcheckFn fn = [&](const std::vector<Tensor>& in) {
      return max_pool2d(add(in[0], m), o);
    };
    CT_REQUIRE_GRADCHECK(fn, inputs);
    Tensor leaf = x.detach().clone().requires_grad_(true);
    max_pool2d(add(leaf, m), o).backward(ones(y.shape(), kFloat64));
    const auto g = leaf.grad().to_vector<double>();
    double total = 0;
    for (std::size_t i = 0; i < g.size(); ++i) {
      if (mask[i] == -kInf) CHECK(g[i] == 0.0);
      total += g[i];
    }
    CHECK(total == static_cast<double>(y.numel()));
  }
  // The adaptive kernel likewise (windows [0, 2), [1, 4), [3, 5) per dim).
  const GradcheckFn adaptive = [&](const std::vector<Tensor>& in) {
    return adaptive_max_pool(add(in[0], m), {3, 3});
  };
  CT_REQUIRE_GRADCHECK(adaptive, inputs);
}

TEST_CASE("avg_pool: every window holds an input element; the divisor counts padding or not",
          "[ops][pool][limits]") {
  // PyTorch 1.13: avg_pool1d(arange(1, 6), 3, 2, 1, ceil_mode=True) and (4, 3, 2, ceil_mode).
  const Tensor x = f64({1, 2, 3, 4, 5}, {1, 1, 5});
  const PoolOptions a = PoolOptions(3).stride(2).padding(1).ceil_mode();
  CHECK(equal(avg_pool1d(x, a), f64({1, 3, 3}, {1, 1, 3})));
  CHECK(
      equal(avg_pool1d(x, PoolOptions(a).count_include_pad(false)), f64({1.5, 3, 4.5}, {1, 1, 3})));
  const PoolOptions b = PoolOptions(4).stride(3).padding(2).ceil_mode();
  CHECK(ct_test::allclose(avg_pool1d(x, b), f64({0.75, 3.5, 5.0 / 3}, {1, 1, 3}), 1e-15, 0));
  CHECK(
      equal(avg_pool1d(x, PoolOptions(b).count_include_pad(false)), f64({1.5, 3.5, 5}, {1, 1, 3})));
  // Padding beyond half the kernel (the only way to make a window of padding alone without
  // dilation, which average pooling lacks) is refused, as in PyTorch.
  CT_REQUIRE_ERROR(avg_pool1d(x, PoolOptions(2).padding(2).count_include_pad(false)),
                   "avg_pool1d: expected padding at most half the kernel size");
}

// ============================================================================ extreme arguments

TEST_CASE("pooling: extreme arguments give exact shapes or errors naming the real values",
          "[ops][pool][limits]") {
  const Tensor x16 = arange(0.0, 16.0, 1.0, kFloat64).reshape({1, 1, 4, 4});
  const Tensor x5 = arange(0.0, 5.0, 1.0, kFloat64).reshape({1, 1, 5});
  const Tensor x3 = f64({1, 2, 3}, {1, 1, 3});

  SECTION("a kernel of 2^62: refused fast, or answered fast when a window fits") {
    CT_REQUIRE_ERROR(max_pool2d(x16, PoolOptions(k2p62)),
                     "max_pool2d: expected a window (dilated kernel 4611686018427387904 x "
                     "4611686018427387904) that fits the padded input (4 x 4), got output size "
                     "0 x 0 for input [1, 1, 4, 4]");
    // ceil_mode lets the one window overhang the input: the whole plane.
    const PoolOptions c = PoolOptions(k2p62).stride(k2p62).ceil_mode();
    const MaxRun r = run_max(x16, c);
    CHECK(r.values.shape() == Shape{1, 1, 1, 1});
    CHECK(r.values.item<double>() == 15);
    CHECK(ints(r.indices) == std::vector<std::int64_t>{15});
    CHECK(avg_pool2d(x16, c).item<double>() == 120.0 / 16);  // clipped to the input: 4 x 4
    // Padding 2^61 on both sides: five windows per dim, each covering the whole input.
    const PoolOptions p = PoolOptions(k2p62).stride(1).padding(k2p61);
    CHECK(equal(max_pool2d(x16, p), full({1, 1, 5, 5}, 15.0, kFloat64)));
    Tensor leaf = x5.clone().requires_grad_(true);
    avg_pool1d(leaf, p).backward(ones({1, 1, 6}, kFloat64));
    // Every window's divisor is the kernel (in + pad_hi - start >= 2^62 for all six).
    CHECK(all_equal(leaf.grad(), 6.0 / 4611686018427387904.0));
  }
  SECTION("windows far wider than a line and its row run per output (no loop over the kernel)") {
    // kernel 2^62, padding 2^61, stride 2^61 - 1, ceil_mode: windows start at -2^61 and -1.
    const PoolOptions o = PoolOptions(k2p62).stride(k2p61 - 1).padding(k2p61).ceil_mode();
    const MaxRun r = run_max(x5, o);
    CHECK(r.values.to_vector<double>() == std::vector<double>{4, 4});
    CHECK(ints(r.indices) == std::vector<std::int64_t>{4, 4});
    CHECK(r.grad == std::vector<double>{0, 0, 0, 0, 2});
    const auto a = avg_pool1d(x5, o).to_vector<double>();
    REQUIRE(a.size() == 2);
    CHECK(a[0] == 10.0 / 4611686018427387904.0);
    CHECK(a[1] == 10.0 / static_cast<double>(k2p61 + 6));
    CHECK(equal(avg_pool1d(x5, PoolOptions(o).count_include_pad(false)), f64({2, 2}, {1, 1, 2})));
  }
  SECTION(
      "kernel 2^63 - 1 with padding 2^62 - 1: the padded extent leaves 64 bits, the answer "
      "does not") {
    const PoolOptions o = PoolOptions(kMax).stride(1).padding(k2p62 - 1);
    CHECK(equal(max_pool1d(x3, o), f64({3, 3, 3}, {1, 1, 3})));
    // count_include_pad: every divisor is the kernel, 2^63 - 1 (2^63 as a double).
    CHECK(all_equal(avg_pool1d(x3, o), 6.0 / 9223372036854775807.0));
    CHECK(
        equal(avg_pool1d(x3, PoolOptions(o).count_include_pad(false)), f64({2, 2, 2}, {1, 1, 3})));
    // Two such dims: the divisor (2^63 - 1)^2 is formed in double instead of overflowing.
    const Tensor x9 = full({1, 1, 3, 3}, 1.0, kFloat64);
    const double d = 9223372036854775807.0;
    CHECK(all_equal(avg_pool2d(x9, o), 9.0 / (d * d)));
    CT_REQUIRE_ERROR(max_pool1d(x3, PoolOptions(kMax).padding(k2p62)),
                     "max_pool1d: expected padding at most half the kernel size, got padding "
                     "(4611686018427387904, 4611686018427387904) for kernel size "
                     "9223372036854775807 in dim 0");
  }
  SECTION("stride 2^63 - 1") {
    CHECK(equal(max_pool1d(x5, PoolOptions(2).stride(kMax)), f64({1}, {1, 1, 1})));
    // ceil_mode's second window would start at 2^63 - 1, past the input: dropped.
    CHECK(equal(max_pool1d(x5, PoolOptions(2).stride(kMax).ceil_mode()), f64({1}, {1, 1, 1})));
    CHECK(equal(avg_pool1d(x5, PoolOptions(3).stride(kMax).padding(1).ceil_mode()),
                f64({1.0 / 3}, {1, 1, 1})));
  }
  SECTION("dilation: an extent past 64 bits is refused with its operands") {
    CT_REQUIRE_ERROR(max_pool1d(x5, PoolOptions(2).dilation(kMax)),
                     "max_pool1d: expected the dilated kernel extent to fit in 64 bits, got "
                     "9223372036854775807 + 1");
    CT_REQUIRE_ERROR(max_pool1d(x5, PoolOptions(3).dilation(k2p62)),
                     "max_pool1d: expected the dilated kernel extent to fit in 64 bits, got "
                     "4611686018427387904 * 2");
    CT_REQUIRE_ERROR(max_pool1d(x5, PoolOptions(2).dilation(k2p62)),
                     "max_pool1d: expected a window (dilated kernel 4611686018427387905) that "
                     "fits the padded input (5)");
    // ceil_mode with a huge stride keeps one window, whose taps -1 and 2^62 - 1 both miss the
    // input: refused, as any window of padding alone.
    CT_REQUIRE_ERROR(
        max_pool_with_indices(x5,
                              PoolOptions(2).dilation(k2p62).stride(kMax).padding(1).ceil_mode()),
        "max_pool_with_indices: expected every dilated window to hold an input element, got "
        "output 0 in dim 0 with taps -1 + 4611686018427387904 * r (r < 2) outside the input of "
        "size 5");
    // One that reaches the input with its second tap is answered.
    CHECK(equal(max_pool1d(x5, PoolOptions(2).dilation(4).stride(kMax).padding(1).ceil_mode()),
                f64({3}, {1, 1, 1})));
  }
  SECTION("adaptive pooling to huge sizes: errors, never a hang or std::bad_alloc") {
    CT_REQUIRE_ERROR(adaptive_max_pool(x5, {k2p62}),
                     "adaptive_max_pool: expected output size * input size (the adaptive window "
                     "bounds) to fit in 64 bits, got 4611686018427387904 * 5");
    CT_REQUIRE_ERROR(adaptive_avg_pool(x16, {std::int64_t{1} << 31, std::int64_t{1} << 31}),
                     "adaptive_avg_pool: expected a tensor of at most 9223372036854775807 bytes, "
                     "got shape [1, 1, 2147483648, 2147483648]");
    CT_REQUIRE_ERROR(adaptive_avg_pool(x16, {std::int64_t{1} << 32, std::int64_t{1} << 32}),
                     "adaptive_avg_pool: expected a shape whose element count fits in 64 bits, "
                     "got [4294967296, 4294967296]");
    // 2^40 outputs of 4 bytes fit 64 bits but no machine: the allocator refuses them.
    try {
      (void)adaptive_max_pool(x5.to(kFloat32), {std::int64_t{1} << 40});
      FAIL("2^40 outputs were allocated");
    } catch (const Error& e) {
      CHECK_THAT(e.message(), Catch::Contains("expected") && Catch::Contains("bytes"));
    }
    // With no planes the result is empty and immediate, whatever its spatial size.
    CHECK(adaptive_max_pool(zeros({0, 3, 5}), {std::int64_t{1} << 40}).shape() ==
          Shape{0, 3, std::int64_t{1} << 40});
    CHECK(max_pool(zeros({2, 0, 7}), PoolOptions(k2p62).stride(kMax).ceil_mode()).shape() ==
          Shape{2, 0, 1});
  }
  SECTION("max_unpool: default and given output sizes, index bounds") {
    const Tensor v = f64({1, 2}, {1, 1, 2});
    const Tensor i0 = zeros({1, 1, 2}, kInt64);
    CT_REQUIRE_ERROR(max_unpool1d(v, i0, PoolOptions(k2p62)),
                     "max_unpool1d: expected the default output size to fit in 64 bits, got "
                     "4611686018427387904 + 4611686018427387904");
    CT_REQUIRE_ERROR(max_unpool1d(v, i0, PoolOptions(2).stride(kMax)),
                     "max_unpool1d: expected the default output size to fit in 64 bits, got "
                     "9223372036854775807 + 2");
    CT_REQUIRE_ERROR(max_unpool1d(v, i0, PoolOptions(2).padding(kMax)),
                     "max_unpool1d: expected the default output size to fit in 64 bits, got "
                     "-9223372036854775805 + -9223372036854775805");
    CT_REQUIRE_ERROR(max_unpool1d(v, i0, PoolOptions(2).dilation(kMax)),
                     "max_unpool1d: expected the dilated kernel extent to fit in 64 bits, got "
                     "9223372036854775807 + 1");
    // Default 2^41 floats: within 64 bits, refused by the allocator.
    try {
      (void)max_unpool1d(v.to(kFloat32), i0, PoolOptions(std::int64_t{1} << 40));
      FAIL("2^41 outputs were allocated");
    } catch (const Error& e) {
      CHECK_THAT(e.message(), Catch::Contains("expected") && Catch::Contains("bytes"));
    }
    // A given size above default + stride, which leaves 64 bits, is bounded only below.
    const Tensor one = f64({7}, {1, 1, 1});
    const Tensor z = zeros({1, 1, 1}, kInt64);
    CT_REQUIRE_ERROR(max_unpool1d(one, z, PoolOptions(k2p62).stride(kMax), {k2p62 + k2p61}),
                     "max_unpool1d: expected a tensor of at most 9223372036854775807 bytes, got "
                     "shape [1, 1, 6917529027641081856]");
    CT_REQUIRE_ERROR(max_unpool1d(one, z, PoolOptions(2).stride(kMax), {kMax}),
                     "max_unpool1d: expected a tensor of at most 9223372036854775807 bytes, got "
                     "shape [1, 1, 9223372036854775807]");
    CT_REQUIRE_ERROR(max_unpool1d(one, z, PoolOptions(2).stride(k2p62), {k2p62 + 2}),
                     "max_unpool1d: expected output size in dim 0 strictly between 0 and "
                     "4611686018427387906 (input [1, 1, 1], kernel size 2, stride "
                     "4611686018427387904), got 4611686018427387906");
    CHECK(equal(max_unpool1d(one, z, PoolOptions(2).stride(kMax), {5}),
                f64({7, 0, 0, 0, 0}, {1, 1, 5})));
    const Tensor huge = from_vector(std::vector<std::int64_t>{kMax}, {1, 1, 1});
    CT_REQUIRE_ERROR(max_unpool1d(one, huge, PoolOptions(2)),
                     "max_unpool1d: expected indices in [0, 2) (the output plane 2), got "
                     "9223372036854775807 at flat position 0");
    const Tensor lowest =
        from_vector(std::vector<std::int64_t>{std::numeric_limits<std::int64_t>::min()}, {1, 1, 1});
    CT_REQUIRE_ERROR(max_unpool1d(one, lowest, PoolOptions(2)),
                     "max_unpool1d: expected indices in [0, 2) (the output plane 2), got "
                     "-9223372036854775808 at flat position 0");
  }
}

// ============================================================================ seeded sweep

namespace {

// Fixed-seed draws (std::mt19937_64's sequence is fixed by the standard; reduced by modulo).
class Wide {
 public:
  explicit Wide(std::uint64_t seed) : rng_(seed) {}
  std::int64_t in(std::int64_t lo, std::int64_t hi) {
    return lo + static_cast<std::int64_t>(rng_() % static_cast<std::uint64_t>(hi - lo + 1));
  }
  bool one_in(std::int64_t n) { return in(1, n) == 1; }
  // A positive value anywhere in [1, 2^63 - 1], weighted toward small values, powers of two
  // (and their neighbours) and the top of the range.
  std::int64_t magnitude() {
    switch (in(0, 5)) {
      case 0:
      case 1:
        return in(1, 6);
      case 2: {
        const std::int64_t p = std::int64_t{1} << in(0, 62);
        return std::max<std::int64_t>(p + in(-1, p > 1 ? 1 : 0), 1);
      }
      case 3:
        return kMax - in(0, 2);
      case 4:
        return static_cast<std::int64_t>(rng_() >> 1) | 1;
      default:
        return in(1, 64);
    }
  }
  // An argument: mostly a magnitude, sometimes 0 or negative (to be refused).
  std::int64_t arg() {
    if (one_in(20)) return one_in(2) ? 0 : -magnitude();
    return magnitude();
  }
  // Padding for kernel k: mostly within PyTorch's half-kernel limit, at its edge, or beyond.
  std::int64_t pad(std::int64_t k) {
    const std::int64_t half = k > 0 ? k / 2 : 0;
    switch (in(0, 7)) {
      case 0:
      case 1:
        return std::min<std::int64_t>(half, in(0, 3));
      case 2:
      case 3:
        return half;
      case 4:
        return static_cast<std::int64_t>(rng_() % static_cast<std::uint64_t>(half + 1));
      case 5:
        return half + 1;
      default:
        return one_in(3) ? -in(1, 3) : magnitude();
    }
  }

 private:
  std::mt19937_64 rng_;
};

i128 floor_div128(i128 a, i128 b) {
  const i128 q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}
i128 ceil_div128(i128 a, i128 b) {
  const i128 q = a / b;
  return (a % b != 0 && a > 0) ? q + 1 : q;
}

// What PyTorch's formulas say, in exact 128-bit arithmetic: whether the call is valid, its
// output shape, and whether convtape may refuse it anyway because an intermediate quantity it
// names (a dilated kernel extent, a default unpool size, out * in of adaptive windows) does not
// fit 64 bits.
struct Want {
  bool valid = true;
  bool may_refuse = false;
  Shape out;  // spatial
};

struct Args {
  std::string op;
  Shape x;
  Shape k, st, dil, out_size;
  Pads pads;
  bool ceil = false, include_pad = true, stride_given = true;
};

Want pool_want(const Args& a, bool avg) {
  Want w;
  for (std::size_t d = 0; d < a.k.size(); ++d) {
    const i128 in = a.x[2 + d], k = a.k[d], st = a.st[d], dil = a.dil[d];
    const i128 lo = a.pads[d].first, hi = a.pads[d].second;
    if (k <= 0 || st <= 0 || dil <= 0 || lo < 0 || hi < 0 || lo > k / 2 || hi > k / 2 ||
        (avg && dil != 1)) {
      w.valid = false;
      return w;
    }
    const i128 extent = dil * (k - 1) + 1;
    if (extent > kMax) w.may_refuse = true;
    const i128 num = in + lo + hi - extent;
    i128 out = (a.ceil ? ceil_div128(num, st) : floor_div128(num, st)) + 1;
    if (a.ceil && (out - 1) * st >= in + lo) --out;
    if (out < 1) w.valid = false;
    // Every dilated window must reach the input: the first tap at 0 or later lies below in.
    for (i128 o = 0; o < out && !avg; ++o) {
      const i128 start = o * st - lo;
      if (start >= 0) break;
      const i128 first = ceil_div128(-start, dil);
      if (first >= k || start + first * dil > in - 1) w.valid = false;
    }
    w.out.push_back(static_cast<std::int64_t>(out < 1 ? 0 : out));
  }
  return w;
}

Want adaptive_want(const Args& a) {
  Want w;
  for (std::size_t d = 0; d < a.out_size.size(); ++d) {
    if (a.out_size[d] < 1) w.valid = false;
    if (static_cast<i128>(a.out_size[d]) * a.x[2 + d] > kMax) w.may_refuse = true;
    w.out.push_back(a.out_size[d]);
  }
  return w;
}

Want unpool_want(const Args& a) {
  Want w;
  for (std::size_t d = 0; d < a.k.size(); ++d) {
    const i128 in = a.x[2 + d], k = a.k[d], st = a.st[d], dil = a.dil[d];
    const i128 lo = a.pads[d].first, hi = a.pads[d].second;
    if (k <= 0 || st <= 0 || dil <= 0 || lo < 0 || hi < 0) {
      w.valid = false;
      return w;
    }
    const i128 extent = dil * (k - 1) + 1, reach = (in - 1) * st;
    const i128 dflt = reach - lo - hi + extent;
    if (extent > kMax || reach > kMax || dflt > kMax || dflt < -kMax) w.may_refuse = true;
    if (a.out_size.empty()) {
      if (dflt < 1) w.valid = false;
      w.out.push_back(dflt < 1 || dflt > kMax ? 0 : static_cast<std::int64_t>(dflt));
    } else {
      const i128 want = a.out_size[d];
      const i128 below = dflt - st > 0 ? dflt - st : 0;
      if (!(want > below && want < dflt + st)) w.valid = false;
      w.out.push_back(a.out_size[d]);
    }
  }
  return w;
}

// Element count of [N, C, *out], saturating at 2^127.
i128 elements(const Args& a, const Shape& out) {
  for (auto v : out)
    if (v < 1) return 0;  // refused before any allocation
  i128 n = static_cast<i128>(a.x[0]) * a.x[1];
  bool spatial_overflow = false;
  i128 s = 1;
  for (auto v : out) {
    s *= v;
    if (s > kMax) spatial_overflow = true, s = static_cast<i128>(kMax) + 1;
  }
  return spatial_overflow ? static_cast<i128>(kMax) * 4 : n * s;
}

std::string describe(const Args& a) {
  std::ostringstream s;
  auto list = [&](const char* name, const Shape& v) {
    s << ' ' << name << " [";
    for (std::size_t i = 0; i < v.size(); ++i) s << (i ? ", " : "") << v[i];
    s << ']';
  };
  s << a.op;
  list("x", a.x);
  list("kernel", a.k);
  list("stride", a.st);
  list("dilation", a.dil);
  list("output_size", a.out_size);
  s << " padding [";
  for (std::size_t i = 0; i < a.pads.size(); ++i)
    s << (i ? ", " : "") << '(' << a.pads[i].first << ", " << a.pads[i].second << ')';
  s << ']' << (a.ceil ? " ceil_mode" : "") << (a.include_pad ? "" : " exclude_pad");
  return s.str();
}

PoolOptions options_of(const Args& a) {
  PoolOptions o(a.k);
  if (a.stride_given) o.stride(a.st);
  o.padding(a.pads).dilation(a.dil).ceil_mode(a.ceil).count_include_pad(a.include_pad);
  return o;
}

}  // namespace

TEST_CASE("pooling: seeded sweep over wide argument magnitudes against 128-bit arithmetic",
          "[ops][pool][limits][sweep]") {
  Wide w(20251101);
  int ran = 0, accepted = 0, refused = 0;
  for (int c = 0; c < 3000; ++c) {
    Args a;
    const std::int64_t rank = w.in(1, 3);
    const int kind = static_cast<int>(w.in(0, 5));  // max, max+indices, avg, adaptive, unpool
    const bool named = w.one_in(2);
    a.x = {w.one_in(10) ? 0 : w.in(1, 2), w.in(1, 2)};
    for (std::int64_t d = 0; d < rank; ++d) a.x.push_back(w.in(1, 6));
    const std::string suffix = named ? std::to_string(rank) + "d" : "";
    for (std::int64_t d = 0; d < rank; ++d) {
      a.k.push_back(w.arg());
      a.dil.push_back(w.one_in(3) ? w.arg() : 1);
      const std::int64_t lo = w.pad(a.k.back());
      a.pads.emplace_back(lo, w.one_in(2) ? lo : w.pad(a.k.back()));
      a.out_size.push_back(w.one_in(3) ? w.arg() : w.in(1, 8));
    }
    a.stride_given = !w.one_in(4);
    for (std::int64_t d = 0; d < rank; ++d) a.st.push_back(a.stride_given ? w.arg() : a.k[d]);
    a.ceil = w.one_in(2);
    a.include_pad = !w.one_in(3);

    std::vector<double> values(static_cast<std::size_t>(numel(a.x)));
    for (auto& v : values)
      v = w.one_in(8) ? -kInf : w.one_in(24) ? std::nan("") : static_cast<double>(w.in(-3, 3));
    const Tensor x = from_vector(values, a.x);

    Want want;
    std::function<Tensor()> call;
    PoolWithIndices with;
    switch (kind) {
      case 0:
      case 1:
        a.op = kind == 0 ? "max_pool" + suffix : "max_pool_with_indices";
        want = pool_want(a, false);
        call = [&] {
          if (kind == 1) {
            with = max_pool_with_indices(x, options_of(a));
            return with.values;
          }
          if (!named) return max_pool(x, options_of(a));
          return rank == 1   ? max_pool1d(x, options_of(a))
                 : rank == 2 ? max_pool2d(x, options_of(a))
                             : max_pool3d(x, options_of(a));
        };
        break;
      case 2:
        a.op = "avg_pool" + suffix;
        if (!w.one_in(4)) a.dil.assign(static_cast<std::size_t>(rank), 1);
        want = pool_want(a, true);
        call = [&] {
          if (!named) return avg_pool(x, options_of(a));
          return rank == 1   ? avg_pool1d(x, options_of(a))
                 : rank == 2 ? avg_pool2d(x, options_of(a))
                             : avg_pool3d(x, options_of(a));
        };
        break;
      case 3:
        a.op = named ? "adaptive_max_pool" : "adaptive_avg_pool";
        want = adaptive_want(a);
        call = [&] {
          return named ? adaptive_max_pool(x, a.out_size) : adaptive_avg_pool(x, a.out_size);
        };
        break;
      default: {
        a.op = "max_unpool" + suffix;
        if (w.one_in(2)) a.out_size.clear();
        want = unpool_want(a);
        call = [&] {
          const Tensor i = zeros(a.x, kInt64);
          if (!named) return max_unpool(x, i, options_of(a), a.out_size);
          return rank == 1   ? max_unpool1d(x, i, options_of(a), a.out_size)
                 : rank == 2 ? max_unpool2d(x, i, options_of(a), a.out_size)
                             : max_unpool3d(x, i, options_of(a), a.out_size);
        };
        break;
      }
    }
    // Results of more than 2^16 elements that must be accepted are not run: they would only
    // allocate. Byte counts past 64 bits must be refused whatever their size.
    const i128 n = elements(a, want.out);
    const bool too_big = n * 8 > kMax;
    if (want.valid && !too_big && n > (1 << 16)) continue;
    if (too_big) want.valid = false;
    ++ran;
    INFO(describe(a));
    Tensor y;
    try {
      y = call();
    } catch (const Error& e) {
      ++refused;
      INFO(e.message());
      CHECK(e.message().rfind(a.op + ": expected", 0) == 0);
      CHECK((!want.valid || want.may_refuse));
      continue;
    }
    ++accepted;
    REQUIRE(want.valid);
    Shape shape{a.x[0], a.x[1]};
    shape.insert(shape.end(), want.out.begin(), want.out.end());
    CHECK(y.shape() == shape);
    if (kind == 1) {  // every index names an element whose value it returned
      const auto v = with.values.to_vector<double>();
      const auto idx = ints(with.indices);
      const std::int64_t plane = numel(Shape(a.x.begin() + 2, a.x.end()));
      for (std::size_t i = 0; i < idx.size(); ++i) {
        const std::int64_t at = idx[i];
        REQUIRE(at >= 0);  // windows that miss the input are refused
        REQUIRE(at < plane);
        const std::int64_t p =
            static_cast<std::int64_t>(i) / std::max<std::int64_t>(numel(want.out), 1);
        const double got = at < 0 ? -kInf : values[static_cast<std::size_t>(p * plane + at)];
        CHECK(((std::isnan(v[i]) && std::isnan(got)) || v[i] == got));
      }
    }
    if (kind <= 2 && c % 4 == 0) {  // the gradient runs on the same geometry
      Tensor leaf = x.clone().requires_grad_(true);
      const Tensor out = kind == 2 ? avg_pool(leaf, options_of(a)) : max_pool(leaf, options_of(a));
      out.backward(ones(out.shape(), kFloat64));
      CHECK(leaf.grad().shape() == a.x);
    }
  }
  // The sweep must exercise both outcomes in earnest.
  CHECK(ran > 2000);
  CHECK(accepted > 400);
  CHECK(refused > 400);
}
