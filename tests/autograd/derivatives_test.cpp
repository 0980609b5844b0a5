// autograd::vjp, jvp and hvp (ops/derivatives.h): exact values where the derivative is known in
// closed form, float64 central differences elsewhere, several and unused inputs, create_graph
// results differentiated again, every error message, and the Hessian-vector product of a small
// CNN's loss (conv2d, tanh, max_pool2d, flatten, linear, cross_entropy) against central
// differences of its gradient.
#include <algorithm>
#include <cmath>

#include "support/test_util.h"

using namespace convtape;
using autograd::Derivative;
using autograd::Function;

namespace {

// f at xs with the tape off.
Tensor eval(const Function& f, const std::vector<Tensor>& xs) {
  NoGradGuard off;
  std::vector<Tensor> d;
  for (const auto& x : xs) d.push_back(x.detach());
  return f(d);
}

// x_i + h t_i for every input (no tape).
std::vector<Tensor> shifted(const std::vector<Tensor>& xs, const std::vector<Tensor>& ts,
                            double h) {
  NoGradGuard off;
  std::vector<Tensor> r;
  for (std::size_t i = 0; i < xs.size(); ++i) r.push_back(add(xs[i].detach(), mul(ts[i], h)));
  return r;
}

// (f(x + h t) - f(x - h t)) / 2h: the directional derivative J t by central differences.
Tensor fd_jvp(const Function& f, const std::vector<Tensor>& xs, const std::vector<Tensor>& ts,
              double h = 1e-6) {
  NoGradGuard off;
  return div(sub(eval(f, shifted(xs, ts, h)), eval(f, shifted(xs, ts, -h))), 2 * h);
}

// J_i^T v for every input i, one central difference per input element.
std::vector<Tensor> fd_vjp(const Function& f, const std::vector<Tensor>& xs, const Tensor& v) {
  std::vector<Tensor> out;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    std::vector<double> g(static_cast<std::size_t>(xs[i].numel()));
    for (std::size_t j = 0; j < g.size(); ++j) {
      std::vector<Tensor> ts;
      for (std::size_t k = 0; k < xs.size(); ++k) ts.push_back(zeros_like(xs[k].detach()));
      std::vector<double> e(g.size(), 0.0);
      e[j] = 1.0;
      ts[i] = from_vector(e, xs[i].shape());
      NoGradGuard off;
      g[j] = sum(mul(v, fd_jvp(f, xs, ts))).item();
    }
    out.push_back(from_vector(g, xs[i].shape()));
  }
  return out;
}

// The gradient of a scalar f (ordinary backward, fresh leaves).
std::vector<Tensor> gradient(const Function& f, const std::vector<Tensor>& xs) {
  std::vector<Tensor> leaves;
  for (const auto& x : xs) leaves.push_back(x.detach().clone().requires_grad_(true));
  return autograd::grad({f(leaves)}, leaves);
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  const auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  double m = 0.0;
  for (std::size_t i = 0; i < va.size(); ++i) m = std::max(m, std::abs(va[i] - vb[i]));
  return m;
}

double max_abs(const Tensor& a) {
  double m = 0.0;
  for (double x : a.to_vector<double>()) m = std::max(m, std::abs(x));
  return m;
}

Tensor f64(std::initializer_list<double> values, const Shape& shape) {
  return tensor(values, shape, kFloat64);
}

Tensor randn64(const Shape& shape, Generator& gen) {
  return randn(shape, kFloat64, &gen);
}

}  // namespace

// ---------------------------------------------------------------------------------------- vjp

TEST_CASE("vjp: exact values of an elementwise cube, and the output", "[autograd][derivatives]") {
  const Function cube = [](const std::vector<Tensor>& x) { return mul(mul(x[0], x[0]), x[0]); };
  // x requires grad, but without create_graph the point is used detached: no history, no .grad.
  const Tensor x = f64({1.0, -2.0, 0.5}, {3}).requires_grad_(true);
  const Tensor v = f64({1.0, 2.0, -4.0}, {3});
  const Derivative d = autograd::vjp(cube, {x}, v);
  CHECK(d.output.to_vector<double>() == std::vector<double>{1.0, -8.0, 0.125});
  REQUIRE(d.derivatives.size() == 1);
  CHECK(d.derivatives[0].to_vector<double>() == std::vector<double>{3.0, 24.0, -3.0});  // 3x^2 v
  CHECK_FALSE(d.output.requires_grad());
  CHECK_FALSE(d.derivatives[0].requires_grad());
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("vjp: several inputs against central differences", "[autograd][derivatives]") {
  Generator gen(11);
  // f(a, B, c) = tanh(B a + c) * exp(0.3 sum(a)): a [3], B [4, 3], c [4] -> [4].
  const Function f = [](const std::vector<Tensor>& in) {
    const Tensor h = add(matmul(in[1], in[0]), in[2]);
    return mul(tanh(h), exp(mul(sum(in[0]), 0.3)));
  };
  const std::vector<Tensor> xs{randn64({3}, gen), randn64({4, 3}, gen), randn64({4}, gen)};
  const Tensor v = randn64({4}, gen);
  const Derivative d = autograd::vjp(f, xs, v);
  const auto num = fd_vjp(f, xs, v);
  REQUIRE(d.derivatives.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    INFO("input " << i);
    CHECK(max_abs(d.derivatives[i]) > 1e-3);
    CHECK(ct_test::allclose(d.derivatives[i], num[i], 1e-6, 1e-7));
  }
  CHECK(ct_test::allclose(d.output, eval(f, xs), 0.0, 0.0));
}

TEST_CASE("vjp: unused inputs and constant functions get zeros", "[autograd][derivatives]") {
  const Function only_first = [](const std::vector<Tensor>& in) { return mul(in[0], in[0]); };
  const Tensor x = f64({1.0, 2.0}, {2});
  const Tensor z = f64({5.0, 6.0, 7.0}, {3});
  const Tensor v = f64({1.0, 1.0}, {2});
  const Derivative d = autograd::vjp(only_first, {x, z}, v);
  REQUIRE(d.derivatives.size() == 2);
  CHECK(d.derivatives[0].to_vector<double>() == std::vector<double>{2.0, 4.0});
  CHECK(d.derivatives[1].shape() == Shape{3});
  CHECK(d.derivatives[1].to_vector<double>() == std::vector<double>{0.0, 0.0, 0.0});
  // A function of none of its inputs: its output is off the tape, every derivative is zero.
  const Function constant = [](const std::vector<Tensor>&) { return ones({2}, kFloat64); };
  const Derivative c = autograd::vjp(constant, {x, z}, v);
  CHECK(c.output.to_vector<double>() == std::vector<double>{1.0, 1.0});
  CHECK(c.derivatives[0].to_vector<double>() == std::vector<double>{0.0, 0.0});
  CHECK(c.derivatives[1].to_vector<double>() == std::vector<double>{0.0, 0.0, 0.0});
}

TEST_CASE("vjp with create_graph: the result is differentiable again", "[autograd][derivatives]") {
  const Function cube = [](const std::vector<Tensor>& x) { return mul(mul(x[0], x[0]), x[0]); };
  Tensor x = f64({1.0, -2.0, 0.5}, {3}).requires_grad_(true);
  const Tensor v = f64({1.0, 2.0, -4.0}, {3});
  const Derivative d = autograd::vjp(cube, {x}, v, /*create_graph=*/true);
  REQUIRE(d.output.requires_grad());
  REQUIRE(d.derivatives[0].requires_grad());
  // d/dx sum(3 x^2 v) = 6 x v, through the caller's own leaf x (used as it is).
  const auto g = autograd::grad({sum(d.derivatives[0])}, {x});
  CHECK(g[0].to_vector<double>() == std::vector<double>{6.0, -24.0, -12.0});
  // v on the tape too: d/dv sum(J^T v) = J 1 = 3 x^2.
  Tensor w = v.clone().requires_grad_(true);
  const Derivative e = autograd::vjp(cube, {x}, w, true);
  const auto gw = autograd::grad({sum(e.derivatives[0])}, {w});
  CHECK(gw[0].to_vector<double>() == std::vector<double>{3.0, 12.0, 0.75});
}

// ---------------------------------------------------------------------------------------- jvp

TEST_CASE("jvp of a matmul is the matmul of the tangents", "[autograd][derivatives]") {
  Generator gen(3);
  const Tensor a = randn64({3, 4}, gen), b = randn64({4, 2}, gen);
  const Tensor ta = randn64({3, 4}, gen), tb = randn64({4, 2}, gen);
  const Function mm = [](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); };
  // Linear in one input: J t = A t exactly as the op computes it.
  const Function left = [a](const std::vector<Tensor>& in) { return matmul(a, in[0]); };
  const Derivative one = autograd::jvp(left, {b}, {tb});
  REQUIRE(one.derivatives.size() == 1);
  CHECK(ct_test::allclose(one.derivatives[0], matmul(a, tb), 1e-14, 1e-14));
  CHECK(ct_test::allclose(one.output, matmul(a, b), 0.0, 0.0));
  // Both inputs: the product rule, d(AB) = dA B + A dB.
  const Derivative both = autograd::jvp(mm, {a, b}, {ta, tb});
  CHECK(ct_test::allclose(both.derivatives[0], add(matmul(ta, b), matmul(a, tb)), 1e-13, 1e-13));
  CHECK_FALSE(both.derivatives[0].requires_grad());
  CHECK_FALSE(both.output.requires_grad());
}

TEST_CASE("jvp: several inputs against central differences", "[autograd][derivatives]") {
  Generator gen(5);
  const Function f = [](const std::vector<Tensor>& in) {
    return div(sigmoid(mul(in[0], in[1])), add(exp(in[1]), 1.0));
  };
  const std::vector<Tensor> xs{randn64({2, 3}, gen), randn64({3}, gen)};
  const std::vector<Tensor> ts{randn64({2, 3}, gen), randn64({3}, gen)};
  const Derivative d = autograd::jvp(f, xs, ts);
  REQUIRE(d.derivatives[0].shape() == Shape{2, 3});
  CHECK(max_abs(d.derivatives[0]) > 1e-2);
  CHECK(ct_test::allclose(d.derivatives[0], fd_jvp(f, xs, ts), 1e-6, 1e-8));
  // One tangent at a time adds up to both (J is linear in t).
  const Derivative d0 = autograd::jvp(f, xs, {ts[0], zeros({3}, kFloat64)});
  const Derivative d1 = autograd::jvp(f, xs, {zeros({2, 3}, kFloat64), ts[1]});
  CHECK(
      ct_test::allclose(add(d0.derivatives[0], d1.derivatives[0]), d.derivatives[0], 1e-12, 1e-14));
}

TEST_CASE("jvp: identity, unused inputs and constant functions", "[autograd][derivatives]") {
  const Tensor x = f64({1.0, 2.0}, {2}), t = f64({3.0, -4.0}, {2});
  const Tensor z = f64({9.0}, {1}), tz = f64({100.0}, {1});
  // f(x) = x: J t = t (the output is the input leaf itself).
  const Function identity = [](const std::vector<Tensor>& in) { return in[0]; };
  CHECK(autograd::jvp(identity, {x}, {t}).derivatives[0].to_vector<double>() ==
        std::vector<double>{3.0, -4.0});
  // z unused: its tangent does not matter. d(x^2) = 2 x t.
  const Function square = [](const std::vector<Tensor>& in) { return mul(in[0], in[0]); };
  CHECK(autograd::jvp(square, {x, z}, {t, tz}).derivatives[0].to_vector<double>() ==
        std::vector<double>{6.0, -16.0});
  CHECK(autograd::jvp(square, {z, x}, {tz, t}).derivatives[0].to_vector<double>() ==
        std::vector<double>{1800.0});
  // f(x) = 3 x: the first backward's gradient is linear in the dummy output gradient only.
  const Function scale = [](const std::vector<Tensor>& in) { return mul(in[0], 3.0); };
  CHECK(autograd::jvp(scale, {x}, {t}).derivatives[0].to_vector<double>() ==
        std::vector<double>{9.0, -12.0});
  // A function of none of its inputs: zeros of the output's shape.
  const Function constant = [](const std::vector<Tensor>&) { return ones({2, 2}, kFloat64); };
  const Derivative c = autograd::jvp(constant, {x}, {t});
  CHECK(c.derivatives[0].shape() == Shape{2, 2});
  CHECK(c.derivatives[0].to_vector<double>() == std::vector<double>{0.0, 0.0, 0.0, 0.0});
}

TEST_CASE("jvp with create_graph: differentiable in the point and the tangent",
          "[autograd][derivatives]") {
  const Function cube = [](const std::vector<Tensor>& x) { return mul(mul(x[0], x[0]), x[0]); };
  Tensor x = f64({1.0, -2.0, 0.5}, {3}).requires_grad_(true);
  Tensor t = f64({2.0, 1.0, -1.0}, {3}).requires_grad_(true);
  const Derivative d = autograd::jvp(cube, {x}, {t}, /*create_graph=*/true);
  REQUIRE(d.derivatives[0].requires_grad());
  CHECK(d.derivatives[0].to_vector<double>() == std::vector<double>{6.0, 12.0, -0.75});  // 3x^2 t
  // d/dx sum(3 x^2 t) = 6 x t and d/dt = 3 x^2.
  const auto g = autograd::grad({sum(d.derivatives[0])}, {x, t});
  CHECK(g[0].to_vector<double>() == std::vector<double>{12.0, -12.0, -3.0});
  CHECK(g[1].to_vector<double>() == std::vector<double>{3.0, 12.0, 0.75});
}

// ---------------------------------------------------------------------------------------- hvp

TEST_CASE("hvp: exact Hessians of a cube sum and a quadratic form", "[autograd][derivatives]") {
  // f(x) = sum(x^3): H = diag(6 x), so H v = 6 x v.
  const Function cubes = [](const std::vector<Tensor>& in) {
    return sum(mul(mul(in[0], in[0]), in[0]));
  };
  const Tensor x = f64({1.0, -2.0, 0.5, 3.0}, {4});
  const Tensor v = f64({1.0, 2.0, -4.0, 0.25}, {4});
  const Derivative d = autograd::hvp(cubes, {x}, {v});
  CHECK(d.output.item() == 1.0 - 8.0 + 0.125 + 27.0);
  CHECK(d.derivatives[0].to_vector<double>() == std::vector<double>{6.0, -24.0, -12.0, 4.5});
  CHECK_FALSE(d.derivatives[0].requires_grad());

  // f(x) = x^T A x with A not symmetric: H = A + A^T, whatever x is.
  const Tensor a = f64({1.0, 2.0, 0.0, -1.0, 3.0, 4.0, 5.0, 0.0, -2.0}, {3, 3});
  const Function quad = [a](const std::vector<Tensor>& in) {
    const Tensor col = in[0].reshape({3, 1});
    return matmul(col.transpose(0, 1), matmul(a, col)).reshape({});
  };
  const Tensor v3 = f64({1.0, -1.0, 2.0}, {3});
  const Tensor expect = matmul(add(a, a.transpose(0, 1)), v3.reshape({3, 1})).reshape({3});
  for (const Tensor& at : {f64({0.0, 0.0, 0.0}, {3}), f64({1.5, -2.0, 7.0}, {3})}) {
    const Derivative q = autograd::hvp(quad, {at}, {v3});
    CHECK(q.derivatives[0].to_vector<double>() == expect.to_vector<double>());
  }
  CHECK(expect.to_vector<double>() == std::vector<double>{11.0, 3.0, -7.0});
}

TEST_CASE("hvp: several inputs, exact blocks and central differences", "[autograd][derivatives]") {
  // f(x, y) = sum(x^2 y): d2f/dx2 = diag(2y), d2f/dxdy = diag(2x), d2f/dy2 = 0, so
  // (H v)_x = 2 y v_x + 2 x v_y and (H v)_y = 2 x v_x.
  const Function f = [](const std::vector<Tensor>& in) {
    return sum(mul(mul(in[0], in[0]), in[1]));
  };
  const Tensor x = f64({1.0, -2.0}, {2}), y = f64({3.0, 0.5}, {2});
  const Tensor vx = f64({1.0, 4.0}, {2}), vy = f64({-1.0, 2.0}, {2});
  const Derivative d = autograd::hvp(f, {x, y}, {vx, vy});
  REQUIRE(d.derivatives.size() == 2);
  CHECK(d.derivatives[0].to_vector<double>() == std::vector<double>{4.0, -4.0});
  CHECK(d.derivatives[1].to_vector<double>() == std::vector<double>{2.0, -16.0});

  // A non-polynomial function: central differences of its gradient.
  Generator gen(7);
  const Function g = [](const std::vector<Tensor>& in) {
    return sum(mul(tanh(matmul(in[0], in[1])), log(add(mul(in[1], in[1]), 1.0)).sum()));
  };
  const std::vector<Tensor> xs{randn64({2, 3}, gen), randn64({3, 2}, gen)};
  const std::vector<Tensor> vs{randn64({2, 3}, gen), randn64({3, 2}, gen)};
  const Derivative h = autograd::hvp(g, xs, vs);
  const double step = 1e-5;
  const auto plus = gradient(g, shifted(xs, vs, step));
  const auto minus = gradient(g, shifted(xs, vs, -step));
  for (std::size_t i = 0; i < 2; ++i) {
    const Tensor num = div(sub(plus[i], minus[i]), 2 * step);
    INFO("input " << i << ": max |analytic - numeric| " << max_abs_diff(h.derivatives[i], num));
    CHECK(max_abs(num) > 1e-2);
    CHECK(ct_test::allclose(h.derivatives[i], num, 1e-6, 1e-7));
  }
  // H is symmetric: <u, H v> = <v, H u>.
  const std::vector<Tensor> us{randn64({2, 3}, gen), randn64({3, 2}, gen)};
  const Derivative hu = autograd::hvp(g, xs, us);
  const double uhv =
      sum(mul(us[0], h.derivatives[0])).item() + sum(mul(us[1], h.derivatives[1])).item();
  const double vhu =
      sum(mul(vs[0], hu.derivatives[0])).item() + sum(mul(vs[1], hu.derivatives[1])).item();
  CHECK(uhv == Approx(vhu).epsilon(1e-12));
}

TEST_CASE("hvp: unused inputs and functions without curvature get zeros",
          "[autograd][derivatives]") {
  const Tensor x = f64({1.0, 2.0}, {2}), z = f64({4.0}, {1});
  const Tensor vx = f64({1.0, 1.0}, {2}), vz = f64({3.0}, {1});
  // z unused: (H v)_z = 0, and v_z does not matter.
  const Function sq = [](const std::vector<Tensor>& in) { return sum(mul(in[0], in[0])); };
  const Derivative d = autograd::hvp(sq, {x, z}, {vx, vz});
  CHECK(d.derivatives[0].to_vector<double>() == std::vector<double>{2.0, 2.0});
  CHECK(d.derivatives[1].to_vector<double>() == std::vector<double>{0.0});
  // Linear: the gradient is a constant, H = 0.
  const Function lin = [](const std::vector<Tensor>& in) { return sum(mul(in[0], 3.0)); };
  CHECK(autograd::hvp(lin, {x}, {vx}).derivatives[0].to_vector<double>() ==
        std::vector<double>{0.0, 0.0});
  // Constant.
  const Function constant = [](const std::vector<Tensor>&) { return ones({}, kFloat64); };
  const Derivative c = autograd::hvp(constant, {x, z}, {vx, vz});
  CHECK(c.output.item() == 1.0);
  CHECK(c.derivatives[0].to_vector<double>() == std::vector<double>{0.0, 0.0});
  CHECK(c.derivatives[1].to_vector<double>() == std::vector<double>{0.0});
}

TEST_CASE("hvp with create_graph: third derivatives through the caller's leaves",
          "[autograd][derivatives]") {
  const Function cubes = [](const std::vector<Tensor>& in) {
    return sum(mul(mul(in[0], in[0]), in[0]));
  };
  Tensor x = f64({1.0, -2.0, 0.5}, {3}).requires_grad_(true);
  Tensor v = f64({2.0, 1.0, -1.0}, {3}).requires_grad_(true);
  const Derivative d = autograd::hvp(cubes, {x}, {v}, /*create_graph=*/true);
  REQUIRE(d.output.requires_grad());
  REQUIRE(d.derivatives[0].requires_grad());
  CHECK(d.derivatives[0].to_vector<double>() == std::vector<double>{12.0, -12.0, -3.0});  // 6xv
  // d/dx sum(6 x v) = 6 v; d/dv = 6 x.
  const auto g = autograd::grad({sum(d.derivatives[0])}, {x, v});
  CHECK(g[0].to_vector<double>() == std::vector<double>{12.0, 6.0, -6.0});
  CHECK(g[1].to_vector<double>() == std::vector<double>{6.0, -12.0, 3.0});
  // The inputs that do not require grad become new leaves: the result is on the tape anyway.
  const Tensor plain = f64({1.0, 2.0, 3.0}, {3});
  const Derivative p = autograd::hvp(cubes, {plain}, {f64({1.0, 1.0, 1.0}, {3})}, true);
  CHECK(p.derivatives[0].requires_grad());
  CHECK_FALSE(plain.requires_grad());
}

// ------------------------------------------------------------------------------------- errors

TEST_CASE("derivatives error: no inputs", "[autograd][derivatives][errors]") {
  const Function f = [](const std::vector<Tensor>&) { return ones({}, kFloat64); };
  const Tensor s = ones({}, kFloat64);
  CT_REQUIRE_ERROR(autograd::vjp(f, {}, s), "vjp: expected at least one input, got none");
  CT_REQUIRE_ERROR(autograd::jvp(f, {}, {}), "jvp: expected at least one input, got none");
  CT_REQUIRE_ERROR(autograd::hvp(f, {}, {}), "hvp: expected at least one input, got none");
}

TEST_CASE("derivatives error: inputs that are not floating-point",
          "[autograd][derivatives][errors]") {
  const Function f = [](const std::vector<Tensor>& in) { return sum(in[0]); };
  const Tensor x = ones({2}, kFloat64);
  const Tensor i = from_vector(std::vector<std::int64_t>{1, 2}, {2});
  CT_REQUIRE_ERROR(autograd::vjp(f, {x, i}, ones({}, kFloat64)),
                   "vjp: expected floating-point inputs, got int64 for input 1");
  CT_REQUIRE_ERROR(autograd::jvp(f, {Tensor()}, {x}),
                   "jvp: expected floating-point inputs, got an undefined tensor for input 0");
  CT_REQUIRE_ERROR(autograd::hvp(f, {i}, {i}),
                   "hvp: expected floating-point inputs, got int64 for input 0");
}

TEST_CASE("derivatives error: a direction count that does not match the inputs",
          "[autograd][derivatives][errors]") {
  const Function f = [](const std::vector<Tensor>& in) { return sum(in[0]); };
  const Tensor x = ones({2}, kFloat64);
  CT_REQUIRE_ERROR(autograd::jvp(f, {x, x}, {x}), "jvp: expected one tangent per input (2), got 1");
  CT_REQUIRE_ERROR(autograd::hvp(f, {x}, {}), "hvp: expected one direction per input (1), got 0");
}

TEST_CASE("derivatives error: a direction unlike its input", "[autograd][derivatives][errors]") {
  const Function f = [](const std::vector<Tensor>& in) { return sum(in[0]); };
  const Tensor x = ones({2}, kFloat64);
  CT_REQUIRE_ERROR(autograd::jvp(f, {x}, {ones({3}, kFloat64)}),
                   "jvp: expected tangent 0 of shape [2] (float64, cpu), got [3] (float64, cpu)");
  CT_REQUIRE_ERROR(autograd::jvp(f, {x}, {ones({2}, kFloat32)}),
                   "jvp: expected tangent 0 of shape [2] (float64, cpu), got [2] (float32, cpu)");
  CT_REQUIRE_ERROR(
      autograd::hvp(f, {x, x}, {x, Tensor()}),
      "hvp: expected direction 1 of shape [2] (float64, cpu), got an undefined tensor");
}

TEST_CASE("derivatives error: an empty function", "[autograd][derivatives][errors]") {
  const Tensor x = ones({2}, kFloat64);
  CT_REQUIRE_ERROR(autograd::vjp(Function(), {x}, x), "vjp: expected a function, got an empty one");
  CT_REQUIRE_ERROR(autograd::jvp(Function(), {x}, {x}),
                   "jvp: expected a function, got an empty one");
  CT_REQUIRE_ERROR(autograd::hvp(Function(), {x}, {x}),
                   "hvp: expected a function, got an empty one");
}

TEST_CASE("derivatives error: a function that returns no floating-point tensor",
          "[autograd][derivatives][errors]") {
  const Tensor x = ones({2}, kFloat64);
  const Function index = [](const std::vector<Tensor>& in) { return argmax(in[0], 0); };
  const Function nothing = [](const std::vector<Tensor>&) { return Tensor(); };
  CT_REQUIRE_ERROR(autograd::vjp(index, {x}, x),
                   "vjp: expected the function to return a floating-point tensor, got int64");
  CT_REQUIRE_ERROR(autograd::jvp(nothing, {x}, {x}),
                   "jvp: expected the function to return a floating-point tensor, got an "
                   "undefined tensor");
  CT_REQUIRE_ERROR(autograd::hvp(index, {x}, {x}),
                   "hvp: expected the function to return a floating-point tensor, got int64");
}

TEST_CASE("derivatives error: vjp's v unlike the output", "[autograd][derivatives][errors]") {
  const Function f = [](const std::vector<Tensor>& in) { return mul(in[0], 2.0); };
  const Tensor x = ones({2}, kFloat64);
  CT_REQUIRE_ERROR(autograd::vjp(f, {x}, ones({3}, kFloat64)),
                   "vjp: expected v of the output's shape [2] (float64, cpu), got [3]");
  CT_REQUIRE_ERROR(autograd::vjp(f, {x}, Tensor()),
                   "vjp: expected v of the output's shape [2] (float64, cpu), got an undefined "
                   "tensor");
  CT_REQUIRE_ERROR(autograd::vjp(f, {x}, ones({2}, kFloat32)),
                   "vjp: expected v of the output's shape [2] (float64, cpu), got [2]");
}

TEST_CASE("derivatives error: hvp of a function with more than one output element",
          "[autograd][derivatives][errors]") {
  const Function f = [](const std::vector<Tensor>& in) { return mul(in[0], in[0]); };
  const Tensor x = ones({2}, kFloat64);
  CT_REQUIRE_ERROR(autograd::hvp(f, {x}, {x}),
                   "hvp: expected a function with a one-element output, got shape [2]");
}

// -------------------------------------------------------------------------- the CNN's Hessian

TEST_CASE("hvp of a small CNN's loss agrees with central differences of its gradient",
          "[autograd][derivatives][cnn]") {
  // conv2d (2 -> 3 channels, 3x3) -> tanh -> max_pool2d(2) -> flatten -> linear(12 -> 5) ->
  // cross_entropy, float64, 4 samples of 2 x 6 x 6; the parameters are the inputs.
  Generator gen(2024);
  const Tensor images = randn64({4, 2, 6, 6}, gen);
  const Tensor labels = from_vector(std::vector<std::int64_t>{0, 3, 1, 4}, {4});
  const Function loss = [images, labels](const std::vector<Tensor>& p) {
    const Tensor h = tanh(conv2d(images, p[0], p[1]));
    const Tensor pooled = max_pool2d(h, PoolOptions(2));
    return cross_entropy(linear(flatten(pooled, 1), p[2], p[3]), labels);
  };
  const std::vector<Tensor> params{mul(randn64({3, 2, 3, 3}, gen), 0.4),
                                   mul(randn64({3}, gen), 0.1), mul(randn64({5, 12}, gen), 0.5),
                                   mul(randn64({5}, gen), 0.1)};
  std::vector<Tensor> v;
  for (const auto& p : params) v.push_back(randn64(p.shape(), gen));

  const Derivative hv = autograd::hvp(loss, params, v);
  // The largest |H v - (g(p + h v) - g(p - h v)) / 2h| over every parameter, g the gradient from
  // an ordinary backward.
  const auto error_at = [&](double step, bool check) {
    const auto plus = gradient(loss, shifted(params, v, step));
    const auto minus = gradient(loss, shifted(params, v, -step));
    double worst = 0.0;
    for (std::size_t i = 0; i < params.size(); ++i) {
      const Tensor num = div(sub(plus[i], minus[i]), 2 * step);
      const double diff = max_abs_diff(hv.derivatives[i], num);
      const double scale = max_abs(num);
      worst = std::max(worst, diff);
      INFO("step " << step << ", parameter " << i << " (shape " << to_string(params[i].shape())
                   << "): max |Hv| " << scale << ", max |analytic - numeric| " << diff);
      if (!check) continue;
      CHECK(scale > 1e-2);  // every block of H v is non-trivial: curvature through each layer
      CHECK(diff <= 1e-6 * std::max(1.0, scale));
    }
    return worst;
  };
  const double e5 = error_at(1e-5, true);
  INFO("worst |analytic - numeric| with step 1e-5: " << e5);
  CHECK(e5 <= 1e-6);
  // Central differences converge as step^2 to the true derivative: ten times the step, a hundred
  // times the error, so the remaining difference is the differences' own, not H v's.
  const double e3 = error_at(1e-3, false), e4 = error_at(1e-4, false);
  INFO("worst difference with step 1e-3: " << e3 << ", 1e-4: " << e4);
  CHECK(e3 / e4 > 50.0);
  CHECK(e3 / e4 < 200.0);
  // The loss's output matches a plain evaluation.
  CHECK(hv.output.item() == Approx(eval(loss, params).item()).epsilon(1e-14));
}
