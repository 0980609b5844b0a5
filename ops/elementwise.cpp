// Elementwise front ends: checks, the backend kernels (ops/backend.h), and the tape entries with
// their backward formulas.
#include "ops/elementwise.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "core/autograd.h"
#include "core/trace.h"
#include "ops/backend.h"
#include "ops/compare.h"
#include "ops/detail.h"

namespace convtape {

namespace {

void check_unary(std::string_view op, const Tensor& x) {
  detail::check_floating_same(op, {x});
  detail::check_same_device(op, {x});
}

void check_binary(std::string_view op, const Tensor& a, const Tensor& b) {
  detail::check_floating_same(op, {a, b});
  detail::check_same_device(op, {a, b});
  broadcast_shapes(a.shape(), b.shape(), op);
}

// The fused gradient map grad(dy, v, p0, p1) (v the saved x or y) as ops that record, for a
// backward with create_graph: the same values, differentiable in dy and v.
Tensor unary_grad_graph(Binary grad, const Tensor& dy, const Tensor& v, double p0, double p1) {
  switch (grad) {
    case Binary::ReluGrad:  // v = x
      return where(gt(v, 0.0), dy, 0.0);
    case Binary::LeakyReluGrad:  // v = x
      return where(gt(v, 0.0), dy, mul(dy, p0));
    case Binary::SigmoidGrad:  // v = y: dy * y * (1 - y)
      return mul(dy, mul(v, sub(1.0, v)));
    case Binary::TanhGrad:  // v = y: dy * (1 - y^2)
      return mul(dy, sub(1.0, mul(v, v)));
    case Binary::AbsGrad:  // v = x: dy * sign(x)
      return mul(dy, sub(gt(v, 0.0), lt(v, 0.0)));
    case Binary::ClampGrad:  // v = x
      return where(logical_and(ge(v, p0), le(v, p1)), dy, 0.0);
    case Binary::SqrtGrad:  // v = y: dy / (2 y)
      return div(dy, mul(v, 2.0));
    case Binary::PowScalarGrad:  // v = x: dy * p * x^(p - 1)
      return p0 == 0.0 ? mul(dy, 0.0) : mul(dy, mul(pow(v, p0 - 1.0), p0));
    default:
      CT_FAIL("backward: expected a gradient map of a unary op, got Binary #{}",
              static_cast<int>(grad));
  }
}

// grad(dy, v, p0, p1): the fused kernel for the ordinary backward, ops for create_graph.
Tensor unary_grad(Binary grad, const Tensor& dy, const Tensor& v, double p0 = 0, double p1 = 0) {
  return autograd::creating_graph() ? unary_grad_graph(grad, dy, v, p0, p1)
                                    : backend::binary(grad, dy, v, p0, p1);
}

// y = op(x, p0, p1) with dx = grad_op(dy, saved (x or y), p0, p1).
Tensor unary_op(std::string_view name, Unary op, Binary grad, bool save_output, const Tensor& x,
                double p0 = 0, double p1 = 0) {
  check_unary(name, x);
  Tensor y = backend::unary(op, x, p0, p1);
  record(y, name, {x}, {save_output ? y : x},
         [grad, p0, p1](const Saved& s, const Tensor& dy, const GradMask&) {
           return std::vector<Tensor>{unary_grad(grad, dy, s[0], p0, p1)};
         });
  return y;
}

// y = fwd(x, p) for maps with a constant derivative: dx = grad(dy, grad_p), or dx = dy when there
// is no grad map. Nothing is saved.
Tensor linear_unary(std::string_view name, const Tensor& x, Unary fwd, double p,
                    std::optional<Unary> grad = std::nullopt, double grad_p = 0.0) {
  check_unary(name, x);
  Tensor y = backend::unary(fwd, x, p);
  record(y, name, {x}, {}, [grad, grad_p](const Saved&, const Tensor& dy, const GradMask&) {
    // The gradient maps here are linear (neg, scaling), so the create_graph form is the same map
    // as an op: its own backward applies it again.
    if (!grad) return std::vector<Tensor>{dy};
    return std::vector<Tensor>{
        autograd::creating_graph()
            ? linear_unary("linear_backward", dy, *grad, grad_p, grad, grad_p)
            : backend::unary(*grad, dy, grad_p)};
  });
  return y;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  trace::OpScope scope;
  check_binary("add", a, b);
  Tensor y = backend::binary(Binary::Add, a, b);
  Shape sa = a.shape(), sb = b.shape();
  record(y, "add", {a, b}, {}, [sa, sb](const Saved&, const Tensor& dy, const GradMask& need) {
    return std::vector<Tensor>{need[0] ? detail::sum_to(dy, sa) : Tensor(),
                               need[1] ? detail::sum_to(dy, sb) : Tensor()};
  });
  if (scope.recording()) scope.emit("add", {a, b}, y);
  return y;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  trace::OpScope scope;
  check_binary("sub", a, b);
  Tensor y = backend::binary(Binary::Sub, a, b);
  Shape sa = a.shape(), sb = b.shape();
  record(y, "sub", {a, b}, {}, [sa, sb](const Saved&, const Tensor& dy, const GradMask& need) {
    return std::vector<Tensor>{need[0] ? detail::sum_to(dy, sa) : Tensor(),
                               need[1] ? detail::sum_to(neg(dy), sb) : Tensor()};
  });
  if (scope.recording()) scope.emit("sub", {a, b}, y);
  return y;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  trace::OpScope scope;
  check_binary("mul", a, b);
  Tensor y = backend::binary(Binary::Mul, a, b);
  record(y, "mul", {a, b}, {a, b}, [](const Saved& s, const Tensor& dy, const GradMask& need) {
    const Tensor &av = s[0], &bv = s[1];
    return std::vector<Tensor>{need[0] ? detail::sum_to(mul(dy, bv), av.shape()) : Tensor(),
                               need[1] ? detail::sum_to(mul(dy, av), bv.shape()) : Tensor()};
  });
  if (scope.recording()) scope.emit("mul", {a, b}, y);
  return y;
}

Tensor div(const Tensor& a, const Tensor& b) {
  trace::OpScope scope;
  check_binary("div", a, b);
  Tensor y = backend::binary(Binary::Div, a, b);
  Shape sa = a.shape();
  // da = dy / b, db = -dy * y / b
  record(y, "div", {a, b}, {b, y}, [sa](const Saved& s, const Tensor& dy, const GradMask& need) {
    const Tensor &bv = s[0], &yv = s[1];
    Tensor dy_over_b = div(dy, bv);
    return std::vector<Tensor>{
        need[0] ? detail::sum_to(dy_over_b, sa) : Tensor(),
        need[1] ? detail::sum_to(neg(mul(dy_over_b, yv)), bv.shape()) : Tensor()};
  });
  if (scope.recording()) scope.emit("div", {a, b}, y);
  return y;
}

Tensor pow(const Tensor& a, const Tensor& b) {
  trace::OpScope scope;
  check_binary("pow", a, b);
  Tensor y = backend::binary(Binary::Pow, a, b);
  record(y, "pow", {a, b}, {a, b, y}, [](const Saved& s, const Tensor& dy, const GradMask& need) {
    const Tensor &av = s[0], &bv = s[1], &yv = s[2];
    Tensor da, db;
    if (need[0]) {
      // d/da a^b = b * a^(b-1), computed without dividing by a so that a = 0 stays finite.
      Tensor t = pow(av, add(bv, -1.0));
      da = detail::sum_to(mul(dy, mul(bv, t)), av.shape());
    }
    if (need[1]) {
      db = detail::sum_to(mul(dy, mul(yv, log(av))), bv.shape());
    }
    return std::vector<Tensor>{da, db};
  });
  if (scope.recording()) scope.emit("pow", {a, b}, y);
  return y;
}

Tensor add(const Tensor& a, double b) {
  trace::OpScope scope;
  Tensor y = linear_unary("add", a, Unary::AddScalar, b);
  if (scope.recording()) scope.emit("add_scalar", {a}, y, {{"scalar", b}});
  return y;
}
Tensor sub(const Tensor& a, double b) {
  trace::OpScope scope;
  Tensor y = linear_unary("sub", a, Unary::AddScalar, -b);
  if (scope.recording()) scope.emit("sub_scalar", {a}, y, {{"scalar", b}});
  return y;
}
Tensor sub(double a, const Tensor& b) {
  trace::OpScope scope;
  Tensor y = linear_unary("sub", b, Unary::RSubScalar, a, Unary::Neg);
  if (scope.recording()) scope.emit("rsub_scalar", {b}, y, {{"scalar", a}});
  return y;
}
Tensor mul(const Tensor& a, double b) {
  trace::OpScope scope;
  Tensor y = linear_unary("mul", a, Unary::MulScalar, b, Unary::MulScalar, b);
  if (scope.recording()) scope.emit("mul_scalar", {a}, y, {{"scalar", b}});
  return y;
}
Tensor div(const Tensor& a, double b) {
  trace::OpScope scope;
  Tensor y = linear_unary("div", a, Unary::DivScalar, b, Unary::DivScalar, b);
  if (scope.recording()) scope.emit("div_scalar", {a}, y, {{"scalar", b}});
  return y;
}

Tensor div(double a, const Tensor& b) {
  trace::OpScope scope;
  check_unary("div", b);
  Tensor y = backend::unary(Unary::RDivScalar, b, a);
  // d(a / b) = -y / b
  record(y, "div", {b}, {b, y}, [](const Saved& s, const Tensor& dy, const GradMask&) {
    return std::vector<Tensor>{neg(mul(dy, div(s[1], s[0])))};
  });
  if (scope.recording()) scope.emit("rdiv_scalar", {b}, y, {{"scalar", a}});
  return y;
}

Tensor pow(const Tensor& a, double exponent) {
  trace::OpScope scope;
  Tensor y = unary_op("pow", Unary::PowScalar, Binary::PowScalarGrad, false, a, exponent);
  if (scope.recording()) scope.emit("pow_scalar", {a}, y, {{"scalar", exponent}});
  return y;
}

Tensor neg(const Tensor& x) {
  trace::OpScope scope;
  Tensor y = linear_unary("neg", x, Unary::Neg, 0.0, Unary::Neg);
  if (scope.recording()) scope.emit("neg", {x}, y);
  return y;
}

Tensor exp(const Tensor& x) {
  trace::OpScope scope;
  check_unary("exp", x);
  Tensor y = backend::unary(Unary::Exp, x);
  record(y, "exp", {x}, {y}, [](const Saved& s, const Tensor& dy, const GradMask&) {
    return std::vector<Tensor>{mul(dy, s[0])};
  });
  if (scope.recording()) scope.emit("exp", {x}, y);
  return y;
}

Tensor log(const Tensor& x) {
  trace::OpScope scope;
  check_unary("log", x);
  Tensor y = backend::unary(Unary::Log, x);
  record(y, "log", {x}, {x}, [](const Saved& s, const Tensor& dy, const GradMask&) {
    return std::vector<Tensor>{div(dy, s[0])};
  });
  if (scope.recording()) scope.emit("log", {x}, y);
  return y;
}

Tensor sqrt(const Tensor& x) {
  trace::OpScope scope;
  Tensor y = unary_op("sqrt", Unary::Sqrt, Binary::SqrtGrad, true, x);
  if (scope.recording()) scope.emit("sqrt", {x}, y);
  return y;
}
Tensor abs(const Tensor& x) {
  trace::OpScope scope;
  Tensor y = unary_op("abs", Unary::Abs, Binary::AbsGrad, false, x);
  if (scope.recording()) scope.emit("abs", {x}, y);
  return y;
}
Tensor relu(const Tensor& x) {
  trace::OpScope scope;
  Tensor y = unary_op("relu", Unary::Relu, Binary::ReluGrad, false, x);
  if (scope.recording()) scope.emit("relu", {x}, y);
  return y;
}
Tensor leaky_relu(const Tensor& x, double negative_slope) {
  trace::OpScope scope;
  Tensor y =
      unary_op("leaky_relu", Unary::LeakyRelu, Binary::LeakyReluGrad, false, x, negative_slope);
  if (scope.recording()) scope.emit("leaky_relu", {x}, y, {{"negative_slope", negative_slope}});
  return y;
}
Tensor sigmoid(const Tensor& x) {
  trace::OpScope scope;
  Tensor y = unary_op("sigmoid", Unary::Sigmoid, Binary::SigmoidGrad, true, x);
  if (scope.recording()) scope.emit("sigmoid", {x}, y);
  return y;
}
Tensor tanh(const Tensor& x) {
  trace::OpScope scope;
  Tensor y = unary_op("tanh", Unary::Tanh, Binary::TanhGrad, true, x);
  if (scope.recording()) scope.emit("tanh", {x}, y);
  return y;
}

Tensor clamp(const Tensor& x, double low, double high) {
  trace::OpScope scope;
  check_unary("clamp", x);
  // PyTorch's min(max(x, low), high): a NaN bound makes every element NaN (x + NaN is NaN for
  // every x, infinities included), low > high makes every non-NaN element high. The gradient mask
  // stays low <= x <= high, false for every element in both cases, as in PyTorch.
  Tensor y = std::isnan(low) || std::isnan(high)
                 ? backend::unary(Unary::AddScalar, x, std::numeric_limits<double>::quiet_NaN())
                 : backend::unary(Unary::Clamp, x, std::min(low, high), high);
  record(y, "clamp", {x}, {x}, [low, high](const Saved& s, const Tensor& dy, const GradMask&) {
    return std::vector<Tensor>{unary_grad(Binary::ClampGrad, dy, s[0], low, high)};
  });
  if (scope.recording()) scope.emit("clamp", {x}, y, {{"low", low}, {"high", high}});
  return y;
}

}  // namespace convtape
