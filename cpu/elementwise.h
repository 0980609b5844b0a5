// CPU elementwise kernels: unary maps with up to two scalar parameters, and broadcasting binary
// maps, including the fused gradient maps that backward closures use (dy and a saved tensor in,
// dx out). Results are new contiguous tensors of the operands' dtype.
#pragma once

#include "core/tensor.h"

namespace convtape::cpu {

enum class Unary {
  Neg,
  Exp,
  Log,
  Sqrt,
  Abs,
  Sign,
  Relu,
  Sigmoid,
  Tanh,
  LeakyRelu,   // p0 = negative slope
  Clamp,       // p0 = low, p1 = high (NaN passes through)
  PowScalar,   // x ^ p0
  AddScalar,   // x + p0
  MulScalar,   // x * p0
  DivScalar,   // x / p0 (a true division: x * (1 / p0) would round twice)
  RSubScalar,  // p0 - x
  RDivScalar,  // p0 / x
};

enum class Binary {
  Add,
  Sub,
  Mul,
  Div,
  Pow,
  // Gradient maps: a = dy, b = the saved tensor named in the comment.
  ReluGrad,       // b = x
  LeakyReluGrad,  // b = x, p0 = slope
  SigmoidGrad,    // b = y
  TanhGrad,       // b = y
  AbsGrad,        // b = x
  ClampGrad,      // b = x, p0 = low, p1 = high
  SqrtGrad,       // b = y
  PowScalarGrad,  // b = x, p0 = exponent
};

Tensor unary(Unary op, const Tensor& x, double p0 = 0.0, double p1 = 0.0);
Tensor binary(Binary op, const Tensor& a, const Tensor& b, double p0 = 0.0, double p1 = 0.0);

// In place on contiguous tensors of one dtype and shape (the optimizers' updates):
//   axpy_: y += alpha * x        scale_: y *= factor
void axpy_(Tensor& y, const Tensor& x, double alpha);
void scale_(Tensor& y, double factor);

}  // namespace convtape::cpu
