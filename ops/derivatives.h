// Derivatives of functions, built on autograd::grad: vector-Jacobian products (vjp), Jacobian-
// vector products (jvp) and Hessian-vector products (hvp), in the functional style: each takes a
// function of a list of tensors, the point, and the direction, and returns the function's value
// there with the derivative.
//
// The maths, with y = f(x) for inputs x = (x_1, ..., x_n) and Jacobians J_i = dy/dx_i:
// - vjp(f, x, v) = (J_1^T v, ..., J_n^T v): one backward pass.
// - jvp(f, x, t) = J t = sum_i J_i t_i, by the double-vjp trick: g(u) = J^T u is linear in a dummy
//   output gradient u, so the vjp of g with respect to u, in the direction t, is
//   (dg/du)^T t = (J^T)^T t = J t. Two backward passes, the first with create_graph; u's value
//   does not matter (zeros here) because g is linear in it.
// - hvp(f, x, v) = H v for a scalar f, H the Hessian: with g(x) = grad f(x) (create_graph),
//   H v = d<g(x), v>/dx, the vjp of g in the direction v (H is symmetric, so this is also the
//   jvp). For several inputs, v = (v_1, ..., v_n) and (H v)_i = sum_j d^2 f / dx_i dx_j v_j.
//
// The inputs are used detached, as new leaves, unless create_graph is set: then inputs that
// require grad are used as they are, so that the derivative stays differentiable with respect to
// them (a derivative in a loss). Directions must match the inputs (or the output, for vjp) in
// shape, dtype and device. Inputs that f does not use get zeros.
#pragma once

#include <functional>
#include <vector>

#include "core/tensor.h"

namespace convtape::autograd {

using Function = std::function<Tensor(const std::vector<Tensor>&)>;

struct Derivative {
  Tensor output;                    // f(x)
  std::vector<Tensor> derivatives;  // vjp, hvp: one per input; jvp: one, of the output's shape
};

Derivative vjp(const Function& f, const std::vector<Tensor>& inputs, const Tensor& v,
               bool create_graph = false);
Derivative jvp(const Function& f, const std::vector<Tensor>& inputs,
               const std::vector<Tensor>& tangents, bool create_graph = false);
Derivative hvp(const Function& f, const std::vector<Tensor>& inputs, const std::vector<Tensor>& v,
               bool create_graph = false);

}  // namespace convtape::autograd
