// Second derivatives (float64 gradgradcheck) of the basic ops: elementwise, shape, reductions,
// conversions, comparison and selection, matmul / linear, embedding and dropout; a few exact
// second derivatives computed by hand; zero gradients of empty selections that stay on the tape;
// and a module backward hook under create_graph. Inputs keep away from kinks and ties (relu, abs,
// clamp, max, topk), so that central differences are valid.
#include <cstdint>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "support/test_util.h"

namespace {

using namespace convtape;
using Inputs = std::vector<Tensor>;

// gradgradcheck of fn at inputs; with curvature, the second derivatives with respect to the
// inputs must not all be zero (for functions that are not linear in each input).
void gg(const std::string& what, const GradcheckFn& fn, const Inputs& inputs,
        bool curvature = false, double eps = 1e-6) {
  GradgradcheckOptions o;
  o.require_curvature = curvature;
  o.eps = eps;
  const auto r = gradgradcheck(fn, inputs, o);
  INFO(what << ": " << r.report);
  CHECK(r.ok);
}

// A float64 leaf of distinct values center + gap * (k + 1/2) for k = a permutation of
// -floor(n / 2) .. n - 1 - floor(n / 2): no two elements closer than gap (no ties for max, topk
// and sort), and with gap = 0.1 every value lies 0.05 or more away from center + any multiple of
// 0.1 (with center 0: from 0 and +-0.5, the kinks of relu, abs and clamp(-0.5, 0.5)).
Tensor distinct(const Shape& shape, double center = 0.0, double gap = 0.1) {
  const auto n = static_cast<std::int64_t>(
      std::accumulate(shape.begin(), shape.end(), std::int64_t{1}, std::multiplies<>()));
  std::int64_t stride = 7;
  while (std::gcd(stride, n) != 1) ++stride;
  std::vector<double> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    const auto k = static_cast<double>((i * stride + 3) % n - n / 2);
    v[static_cast<std::size_t>(i)] = center + gap * (k + 0.5);
  }
  return from_vector(v, shape).requires_grad_(true);
}

Tensor index(const std::vector<std::int64_t>& v) {
  return from_vector(v, {static_cast<std::int64_t>(v.size())});
}

}  // namespace

TEST_CASE("gradgradcheck: elementwise ops", "[autograd][gradgrad]") {
  manual_seed(1);
  const auto pos = [] { return ct_test::leaf({2, 3}, 0.5, 1.5); };
  gg("add", [](const Inputs& in) { return add(in[0], in[1]); },
     {ct_test::leaf({2, 3}), ct_test::leaf({3})});
  gg("sub", [](const Inputs& in) { return sub(in[0], in[1]); },
     {ct_test::leaf({2, 1}), ct_test::leaf({2, 3})});
  gg(
      "mul", [](const Inputs& in) { return mul(in[0], in[1]); },
      {ct_test::leaf({2, 3}), ct_test::leaf({3})}, true);
  gg(
      "mul of x by itself", [](const Inputs& in) { return mul(in[0], in[0]); },
      {ct_test::leaf({4})}, true);
  gg(
      "div", [](const Inputs& in) { return div(in[0], in[1]); }, {ct_test::leaf({2, 3}), pos()},
      true);
  gg(
      "pow tensor", [](const Inputs& in) { return pow(in[0], in[1]); },
      {pos(), ct_test::leaf({2, 3})}, true);
  gg(
      "pow scalar", [](const Inputs& in) { return pow(in[0], 3.0); }, {ct_test::leaf({5})}, true);
  gg(
      "pow scalar 0.5", [](const Inputs& in) { return pow(in[0], 0.5); }, {pos()}, true);
  gg("add scalar", [](const Inputs& in) { return add(in[0], 2.0); }, {ct_test::leaf({4})});
  gg("sub scalar", [](const Inputs& in) { return sub(in[0], 2.0); }, {ct_test::leaf({4})});
  gg("scalar sub", [](const Inputs& in) { return sub(2.0, in[0]); }, {ct_test::leaf({4})});
  gg("mul scalar", [](const Inputs& in) { return mul(in[0], -3.0); }, {ct_test::leaf({4})});
  gg("div scalar", [](const Inputs& in) { return div(in[0], 4.0); }, {ct_test::leaf({4})});
  gg(
      "scalar div", [](const Inputs& in) { return div(2.0, in[0]); }, {pos()}, true);
  gg("neg", [](const Inputs& in) { return neg(in[0]); }, {ct_test::leaf({4})});
  gg(
      "exp", [](const Inputs& in) { return exp(in[0]); }, {ct_test::leaf({2, 3})}, true);
  gg(
      "log", [](const Inputs& in) { return log(in[0]); }, {pos()}, true);
  gg(
      "sqrt", [](const Inputs& in) { return sqrt(in[0]); }, {pos()}, true);
  gg("abs", [](const Inputs& in) { return abs(in[0]); }, {distinct({2, 3})});
  gg("relu", [](const Inputs& in) { return relu(in[0]); }, {distinct({2, 3})});
  gg("leaky_relu", [](const Inputs& in) { return leaky_relu(in[0], 0.2); }, {distinct({2, 3})});
  gg(
      "sigmoid", [](const Inputs& in) { return sigmoid(in[0]); }, {ct_test::leaf({2, 3}, -2, 2)},
      true);
  gg(
      "tanh", [](const Inputs& in) { return tanh(in[0]); }, {ct_test::leaf({2, 3}, -2, 2)}, true);
  gg("clamp", [](const Inputs& in) { return clamp(in[0], -0.5, 0.5); }, {distinct({4, 6})});
  // The piecewise-linear ops times their input: second derivatives through their gradient maps.
  gg(
      "relu(x) * x", [](const Inputs& in) { return mul(relu(in[0]), in[0]); }, {distinct({2, 3})},
      true);
  gg(
      "abs(x) * x", [](const Inputs& in) { return mul(abs(in[0]), in[0]); }, {distinct({2, 3})},
      true);
  gg(
      "clamp(x) * x", [](const Inputs& in) { return mul(clamp(in[0], -0.5, 0.5), in[0]); },
      {distinct({4, 6})}, true);
}

TEST_CASE("gradgradcheck: views and reshapes", "[autograd][gradgrad]") {
  manual_seed(2);
  const Tensor x = ct_test::leaf({2, 3, 4});
  gg("reshape", [](const Inputs& in) { return reshape(in[0], {4, -1}); }, {x});
  gg("reshape of a transpose (a copy)",
     [](const Inputs& in) { return reshape(transpose(in[0], 0, 2), {-1}); }, {x});
  gg("view", [](const Inputs& in) { return view(in[0], {6, 4}); }, {x});
  gg("flatten", [](const Inputs& in) { return flatten(in[0], 1); }, {x});
  gg("permute", [](const Inputs& in) { return permute(in[0], {2, 0, 1}); }, {x});
  gg("transpose", [](const Inputs& in) { return transpose(in[0], 0, 1); }, {x});
  gg("squeeze / unsqueeze",
     [](const Inputs& in) { return squeeze(unsqueeze(in[0], 1), 1).unsqueeze(-1); }, {x});
  gg("narrow", [](const Inputs& in) { return narrow(in[0], 2, 1, 2); }, {x});
  gg("slice with step 2", [](const Inputs& in) { return slice(in[0], 2, 0, 4, 2); }, {x});
  gg("slice, negative start, step 3", [](const Inputs& in) { return slice(in[0], 0, -7, 100, 3); },
     {ct_test::leaf({8, 2})});
  gg("expand", [](const Inputs& in) { return expand(in[0], {2, 3, 4}); }, {ct_test::leaf({3, 1})});
  gg(
      "expand then square",
      [](const Inputs& in) {
        const Tensor e = expand(in[0], {2, 3, 4});
        return mul(e, e);
      },
      {ct_test::leaf({3, 1})}, true);
  gg(
      "product of two overlapping slices",
      [](const Inputs& in) { return mul(slice(in[0], 1, 0, 5, 2), slice(in[0], 1, 1, 6, 2)); },
      {ct_test::leaf({2, 6})}, true);
}

TEST_CASE("gradgradcheck: copies (index_select, cat, stack, pad, flip, rot90)",
          "[autograd][gradgrad]") {
  manual_seed(3);
  const Tensor x = ct_test::leaf({2, 3, 4});
  const Tensor rep = index({2, 0, 2, 1, 2});
  gg("index_select, repeated indices, dim 1",
     [&](const Inputs& in) { return index_select(in[0], 1, rep); }, {x});
  gg("index_select, dim 0",
     [](const Inputs& in) {
       return index_select(in[0], 0, index({1, 1}));
     },
     {x});
  gg(
      "index_select, repeated, squared",
      [&](const Inputs& in) {
        const Tensor s = index_select(in[0], 1, rep);
        return mul(s, s);
      },
      {x}, true);
  gg("cat of three along dim 1",
     [](const Inputs& in) {
       return cat({in[0], in[1], in[2]}, 1);
     },
     {ct_test::leaf({2, 1, 3}), ct_test::leaf({2, 2, 3}), ct_test::leaf({2, 3, 3})});
  gg("cat along dim 0 with a constant",
     [](const Inputs& in) {
       return cat({in[0], in[1]}, 0);
     },
     {ct_test::leaf({2, 3}), uniform({1, 3}, -1, 1, kFloat64)});
  gg(
      "cat of x with its square",
      [](const Inputs& in) {
        return cat({in[0], mul(in[0], in[0])});
      },
      {ct_test::leaf({3})}, true);
  gg("stack",
     [](const Inputs& in) {
       return stack({in[0], in[1]}, 1);
     },
     {ct_test::leaf({2, 3}), ct_test::leaf({2, 3})});
  gg("pad constant", [](const Inputs& in) { return pad(in[0], {{1, 2}, {0, 1}}, 0.5); }, {x});
  gg("pad reflect", [](const Inputs& in) { return pad(in[0], {{2, 1}}, PadMode::Reflect); }, {x});
  gg("pad replicate",
     [](const Inputs& in) {
       return pad(in[0], {{1, 1}, {2, 0}}, PadMode::Replicate);
     },
     {x});
  gg("pad circular", [](const Inputs& in) { return pad(in[0], {{1, 2}}, PadMode::Circular); }, {x});
  gg(
      "pad reflect, squared",
      [](const Inputs& in) {
        const Tensor p = pad(in[0], {{1, 2}}, PadMode::Reflect);
        return mul(p, p);
      },
      {ct_test::leaf({2, 4})}, true);
  gg("flip", [](const Inputs& in) { return flip(in[0], {0, 2}); }, {x});
  gg("rot90", [](const Inputs& in) { return rot90(in[0], 1, {1, 2}); }, {x});
  gg("masked_select",
     [](const Inputs& in) {
       return masked_select(in[0], tensor({1.0, 0.0, 1.0, 1.0}, {4}, kFloat64));
     },
     {x});
}

TEST_CASE("gradgradcheck: reductions", "[autograd][gradgrad]") {
  manual_seed(4);
  const Tensor x = ct_test::leaf({2, 3, 4});
  gg("sum", [](const Inputs& in) { return sum(in[0]); }, {x});
  gg("sum over dim 1", [](const Inputs& in) { return sum(in[0], {1}); }, {x});
  gg("sum over dims 0, 2 keepdim", [](const Inputs& in) { return sum(in[0], {0, 2}, true); }, {x});
  gg("mean", [](const Inputs& in) { return mean(in[0]); }, {x});
  gg("mean over dims 0, 2", [](const Inputs& in) { return mean(in[0], {0, 2}); }, {x});
  gg("mean over dim 1 keepdim", [](const Inputs& in) { return mean(in[0], {1}, true); }, {x});
  gg(
      "mean squared",
      [](const Inputs& in) {
        const Tensor m = mean(in[0], {0, 2});
        return mul(m, m);
      },
      {x}, true);
  const Tensor d = distinct({2, 3, 4});
  gg("max", [](const Inputs& in) { return max(in[0]); }, {d});
  gg("max over dim 1", [](const Inputs& in) { return max(in[0], {1}); }, {d});
  gg("max over dims 0, 2", [](const Inputs& in) { return max(in[0], {0, 2}); }, {d});
  gg("min over dim 2 keepdim", [](const Inputs& in) { return min(in[0], {2}, true); }, {d});
  gg("min", [](const Inputs& in) { return min(in[0]); }, {d});
  gg(
      "max over dim 1, squared",
      [](const Inputs& in) {
        const Tensor m = max(in[0], {1});
        return mul(m, m);
      },
      {d}, true);
  gg(
      "min over dims 0, 2 times the mean",
      [](const Inputs& in) {
        return mul(min(in[0], {0, 2}), mean(in[0], {0, 2}));
      },
      {d}, true);
}

TEST_CASE("gradgradcheck: conversions", "[autograd][gradgrad]") {
  manual_seed(5);
  gg("clone", [](const Inputs& in) { return in[0].clone(); }, {ct_test::leaf({2, 3})});
  gg("contiguous of a transpose",
     [](const Inputs& in) { return transpose(in[0], 0, 1).contiguous(); }, {ct_test::leaf({2, 3})});
  gg("to(float64) of float64", [](const Inputs& in) { return in[0].to(kFloat64); },
     {ct_test::leaf({3})});
  // Through float32 and back: differences of 1e-3 keep float32 rounding far below the tolerance.
  gg(
      "to(float32).to(float64)", [](const Inputs& in) { return in[0].to(kFloat32).to(kFloat64); },
      {ct_test::leaf({2, 3})}, false, 1e-3);
  gg(
      "square in float32",
      [](const Inputs& in) {
        const Tensor f = in[0].to(kFloat32);
        return mul(f, f).to(kFloat64);
      },
      {ct_test::leaf({2, 3})}, true, 1e-3);
}

TEST_CASE("gradgradcheck: where, maximum, minimum, masked_fill", "[autograd][gradgrad]") {
  manual_seed(6);
  const Tensor cond = tensor({1.0, 0.0, 0.0, 1.0, 1.0, 0.0}, {2, 3}, kFloat64);
  gg("where", [&](const Inputs& in) { return where(cond, in[0], in[1]); },
     {ct_test::leaf({2, 3}), ct_test::leaf({3})});
  gg("where with a scalar branch", [&](const Inputs& in) { return where(cond, in[0], 2.0); },
     {ct_test::leaf({2, 3})});
  gg("where, scalar first", [&](const Inputs& in) { return where(cond, -1.0, in[0]); },
     {ct_test::leaf({1, 3})});
  gg(
      "where of squares",
      [&](const Inputs& in) { return where(cond, mul(in[0], in[0]), mul(in[0], in[1])); },
      {ct_test::leaf({2, 3}), ct_test::leaf({2, 3})}, true);
  // a on the 0.05 + 0.1 k grid, b on the 0.1 k grid: never tied.
  const Tensor a = distinct({2, 3}), b = distinct({3}, 0.05);
  gg("maximum", [](const Inputs& in) { return maximum(in[0], in[1]); }, {a, b});
  gg("minimum", [](const Inputs& in) { return minimum(in[0], in[1]); }, {a, b});
  gg(
      "maximum times a", [](const Inputs& in) { return mul(maximum(in[0], in[1]), in[0]); }, {a, b},
      true);
  gg(
      "minimum squared",
      [](const Inputs& in) {
        const Tensor m = minimum(in[0], in[1]);
        return mul(m, m);
      },
      {a, b}, true);
  gg("masked_fill", [&](const Inputs& in) { return masked_fill(in[0], cond, 3.0); },
     {ct_test::leaf({2, 3})});
  gg("masked_fill broadcast over x",
     [](const Inputs& in) {
       return masked_fill(in[0], tensor({0.0, 1.0, 0.0}, {3}, kFloat64), -1.0);
     },
     {ct_test::leaf({2, 1})});
  gg(
      "masked_fill squared",
      [&](const Inputs& in) {
        const Tensor m = masked_fill(in[0], cond, 3.0);
        return mul(m, m);
      },
      {ct_test::leaf({2, 3})}, true);
}

TEST_CASE("gradgradcheck: topk and sort", "[autograd][gradgrad]") {
  const Tensor x = distinct({3, 5});
  gg("topk 2 along the last dim", [](const Inputs& in) { return topk(in[0], 2).values; }, {x});
  gg("topk 2 smallest along dim 0",
     [](const Inputs& in) { return topk(in[0], 2, 0, false).values; }, {x});
  gg("sort descending", [](const Inputs& in) { return sort(in[0], -1, true).values; }, {x});
  gg("sort along dim 0", [](const Inputs& in) { return sort(in[0], 0).values; }, {x});
  gg("topk of a 3-d tensor along dim 1", [](const Inputs& in) { return topk(in[0], 3, 1).values; },
     {distinct({2, 4, 3})});
  gg(
      "topk squared",
      [](const Inputs& in) {
        const Tensor v = topk(in[0], 3).values;
        return mul(v, v);
      },
      {x}, true);
}

TEST_CASE("gradgradcheck: matmul and linear", "[autograd][gradgrad]") {
  manual_seed(7);
  const auto mm = [](const Inputs& in) { return matmul(in[0], in[1]); };
  gg("matmul 1-d . 1-d", mm, {ct_test::leaf({3}), ct_test::leaf({3})}, true);
  gg("matmul 2-d @ 1-d", mm, {ct_test::leaf({2, 3}), ct_test::leaf({3})}, true);
  gg("matmul 1-d @ 2-d", mm, {ct_test::leaf({3}), ct_test::leaf({3, 2})}, true);
  gg("matmul 2-d @ 2-d", mm, {ct_test::leaf({2, 3}), ct_test::leaf({3, 4})}, true);
  gg("matmul batched, broadcast", mm, {ct_test::leaf({2, 1, 2, 3}), ct_test::leaf({3, 3, 2})},
     true);
  gg("matmul with a constant", mm, {ct_test::leaf({2, 3}), uniform({3, 2}, -1, 1, kFloat64)});
  gg(
      "matmul of x with its transpose",
      [](const Inputs& in) { return matmul(in[0], transpose(in[0], 0, 1)); },
      {ct_test::leaf({2, 3})}, true);
  const auto lin = [](const Inputs& in) { return linear(in[0], in[1], in[2]); };
  gg("linear with bias", lin, {ct_test::leaf({4, 3}), ct_test::leaf({2, 3}), ct_test::leaf({2})},
     true);
  gg(
      "linear, 3-d input, no bias", [](const Inputs& in) { return linear(in[0], in[1]); },
      {ct_test::leaf({2, 2, 3}), ct_test::leaf({2, 3})}, true);
  gg("linear, constant input", lin,
     {uniform({4, 3}, -1, 1, kFloat64), ct_test::leaf({2, 3}), ct_test::leaf({2})});
  gg("linear, constant weight", [](const Inputs& in) { return linear(in[0], in[1]); },
     {ct_test::leaf({4, 3}), uniform({2, 3}, -1, 1, kFloat64)});
  gg(
      "linear of a transposed input",
      [](const Inputs& in) { return linear(transpose(in[0], 0, 1), in[1], in[2]); },
      {ct_test::leaf({3, 4}), ct_test::leaf({2, 3}), ct_test::leaf({2})}, true);
}

TEST_CASE("gradgradcheck: embedding and dropout", "[autograd][gradgrad]") {
  manual_seed(8);
  const Tensor idx = from_vector(std::vector<std::int64_t>{0, 3, 1, 3, 4, 1}, {2, 3});
  gg("embedding", [&](const Inputs& in) { return embedding(idx, in[0]); }, {ct_test::leaf({5, 3})});
  gg("embedding with padding_idx", [&](const Inputs& in) { return embedding(idx, in[0], 1); },
     {ct_test::leaf({5, 3})});
  gg(
      "embedding with padding_idx -2, squared",
      [&](const Inputs& in) {
        const Tensor e = embedding(idx, in[0], -2);
        return mul(e, e);
      },
      {ct_test::leaf({5, 3})}, true);
  // One mask per call: the generator is re-seeded inside fn so that every evaluation draws the
  // same one.
  gg("dropout",
     [](const Inputs& in) {
       Generator gen(11);
       return dropout(in[0], 0.4, true, &gen);
     },
     {ct_test::leaf({3, 4})});
  gg(
      "dropout2d times x",
      [](const Inputs& in) {
        Generator gen(12);
        return mul(dropout2d(in[0], 0.5, true, &gen), in[0]);
      },
      {ct_test::leaf({2, 3, 2, 2})}, true);
}

TEST_CASE("second derivatives of basic ops against exact values", "[autograd][gradgrad]") {
  SECTION("matmul: d/dB <C, d sum(A B) / dA> = sum of C's rows") {
    const Tensor a = tensor({1, 2, 3, 4}, {2, 2}, kFloat64).requires_grad_(true);
    const Tensor b = tensor({5, 6, 7, 8}, {2, 2}, kFloat64).requires_grad_(true);
    const auto ga = autograd::grad({sum(matmul(a, b))}, {a}, {}, {.create_graph = true});
    // d sum(A B) / dA[i, k] = sum_j B[k, j].
    CHECK(ga[0].to_vector<double>() == std::vector<double>{11, 15, 11, 15});
    const Tensor c = tensor({1, -2, 3, 5}, {2, 2}, kFloat64);
    const auto gb = autograd::grad({sum(mul(ga[0], c))}, {b});
    // d/dB[k, j] sum_i,k C[i, k] sum_j B[k, j] = sum_i C[i, k].
    CHECK(gb[0].to_vector<double>() == std::vector<double>{4, 4, 3, 3});
  }
  SECTION("index_select with repeats: the Hessian of sum(y^2) counts each row's copies") {
    const Tensor x = tensor({1, 2, 3, 4}, {4}, kFloat64).requires_grad_(true);
    const auto hv = autograd::hvp(
        [](const Inputs& in) {
          const Tensor y = index_select(in[0], 0, index({2, 0, 2, 2, 1}));
          return sum(mul(y, y));
        },
        {x}, {ones({4}, kFloat64)});
    CHECK(hv.derivatives[0].to_vector<double>() == std::vector<double>{2, 2, 6, 0});
  }
  SECTION("embedding with padding: the padding row has no curvature") {
    const Tensor w = ones({4, 2}, kFloat64).requires_grad_(true);
    const Tensor idx = from_vector(std::vector<std::int64_t>{3, 0, 3, 2, 0, 3}, {6});
    const auto hv = autograd::hvp(
        [&](const Inputs& in) {
          const Tensor e = embedding(idx, in[0], 0);
          return sum(mul(e, e));
        },
        {w}, {ones({4, 2}, kFloat64)});
    CHECK(hv.derivatives[0].to_vector<double>() == std::vector<double>{0, 0, 0, 0, 2, 2, 6, 6});
  }
  SECTION("max over a dim: the Hessian of sum(max^2) is 2 at each maximum") {
    const Tensor x = tensor({1, 5, 2, 7, 3, 0}, {2, 3}, kFloat64).requires_grad_(true);
    const auto hv = autograd::hvp(
        [](const Inputs& in) {
          const Tensor m = max(in[0], {1});
          return sum(mul(m, m));
        },
        {x}, {full({2, 3}, 3.0, kFloat64)});
    CHECK(hv.derivatives[0].to_vector<double>() == std::vector<double>{0, 6, 0, 6, 0, 0});
  }
  SECTION("linear: d/dw <c, d sum(x w^T + b) / dx>") {
    const Tensor x = tensor({1, 2, 3, 4, 5, 6}, {2, 3}, kFloat64).requires_grad_(true);
    const Tensor w = tensor({1, 0, -1, 2, 1, 0}, {2, 3}, kFloat64).requires_grad_(true);
    const Tensor b = tensor({1, 1}, {2}, kFloat64).requires_grad_(true);
    const auto gx = autograd::grad({sum(linear(x, w, b))}, {x}, {}, {.create_graph = true});
    // d/dx[r, i] = sum_o w[o, i].
    CHECK(gx[0].to_vector<double>() == std::vector<double>{3, 1, -1, 3, 1, -1});
    const Tensor c = tensor({1, 2, 3, -1, 0, 1}, {2, 3}, kFloat64);
    const auto gw = autograd::grad({sum(mul(gx[0], c))}, {w, b}, {}, {.allow_unused = true});
    // d/dw[o, i] sum_r,i c[r, i] sum_o w[o, i] = sum_r c[r, i]; b has no part in it.
    CHECK(gw[0].to_vector<double>() == std::vector<double>{0, 2, 4, 0, 2, 4});
    CHECK_FALSE(gw[1].defined());
  }
}

TEST_CASE("zero gradients of empty selections stay on the tape under create_graph",
          "[autograd][gradgrad]") {
  // The output gradient is on the tape (as gradgradcheck's is), so the gradient must be too.
  const Tensor x = ct_test::leaf({3, 2});
  const auto on_tape_zeros = [&](const Tensor& y, const Shape& shape) {
    const Tensor v = zeros(y.shape(), kFloat64).requires_grad_(true);
    const auto g = autograd::grad({y}, {x}, {v}, {.create_graph = true});
    CHECK(g[0].requires_grad());
    CHECK(g[0].shape() == shape);
    CHECK(ct_test::equal(g[0].detach(), zeros(shape, kFloat64)));
  };
  on_tape_zeros(index_select(x, 0, from_vector(std::vector<std::int64_t>{}, {0})), {3, 2});
  on_tape_zeros(topk(x, 0, 1).values, {3, 2});
  on_tape_zeros(embedding(from_vector(std::vector<std::int64_t>{}, {0}), x), {3, 2});
  on_tape_zeros(slice(x, 0, 2, 1), {3, 2});
  const Tensor e = ct_test::leaf({0, 3});
  const auto g = autograd::grad({max(e, {1})}, {e}, {zeros({0}, kFloat64).requires_grad_(true)},
                                {.create_graph = true});
  CHECK(g[0].requires_grad());
  CHECK(g[0].shape() == Shape{0, 3});
}

TEST_CASE("a module's backward hook under create_graph", "[autograd][gradgrad][modules]") {
  manual_seed(9);
  auto lin = std::make_shared<nn::Linear>(3, 2);
  lin->to(kFloat64);
  std::vector<Tensor> seen;
  auto handle =
      lin->register_backward_hook([&](nn::Module&, const Tensor& g) { seen.push_back(g); });
  const Tensor x = ct_test::leaf({4, 3});
  const Tensor v = uniform({4, 3}, -1, 1, kFloat64);
  // H v of sum(tanh(lin(x))^2), and the gradient of h = lin(x) as the hook must see it.
  const auto run = [&] {
    const Tensor h = (*lin)(x);
    const Tensor t = tanh(h);
    const auto g = autograd::grad({sum(mul(t, t))}, {x, h}, {}, {.create_graph = true});
    REQUIRE(g[0].requires_grad());
    const auto hv = autograd::grad({sum(mul(g[0], v))}, {x});
    return std::make_pair(g[1].detach(), hv[0]);
  };
  const auto [gh, hv] = run();
  // Called by both backward passes: the second one runs through h's node again (the gradient of
  // x depends on h through tanh's saved output).
  REQUIRE(seen.size() == 2);
  CHECK(seen[0].requires_grad());  // the gradient on the tape, as passed on
  CHECK(ct_test::allclose(seen[0].detach(), gh, 1e-12, 1e-12));
  CHECK_FALSE(seen[1].requires_grad());
  handle.remove();
  const auto [gh2, hv2] = run();
  CHECK(seen.size() == 2);
  CHECK(ct_test::allclose(hv, hv2, 1e-12, 1e-12));
  CHECK(max(abs(hv)).item() > 0.0);
  // And gradgradcheck through the hooked module.
  lin->register_backward_hook([](nn::Module&, const Tensor&) {});
  gg(
      "linear module with a backward hook", [&](const Inputs& in) { return tanh((*lin)(in[0])); },
      {ct_test::leaf({2, 3})}, true);
}
