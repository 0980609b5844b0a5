// CPU elementwise kernels: unary maps with up to two scalar parameters, and broadcasting binary
// maps, including the fused gradient maps that backward closures use (dy and a saved tensor in,
// dx out). Results are new contiguous tensors of the operands' dtype.
#pragma once

#include "core/kernel_args.h"
#include "core/tensor.h"

namespace convtape::cpu {

using convtape::Binary;
using convtape::Unary;

Tensor unary(Unary op, const Tensor& x, double p0 = 0.0, double p1 = 0.0);
Tensor binary(Binary op, const Tensor& a, const Tensor& b, double p0 = 0.0, double p1 = 0.0);

// In place on contiguous tensors of one dtype and shape (the optimizers' updates):
//   axpy_: y += alpha * x        scale_: y *= factor
void axpy_(Tensor& y, const Tensor& x, double alpha);
void scale_(Tensor& y, double factor);

}  // namespace convtape::cpu
