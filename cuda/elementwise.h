// CUDA elementwise kernels (cuda/elementwise.cu): the same unary and broadcasting binary maps as
// cpu/elementwise.h, over strided operands, and the optimizers' in-place axpy_ / scale_. Results
// are new contiguous device tensors of the operands' dtype. Plain C++: any folder may include it. A
// build without CUDA links cuda/no_cuda.cpp, whose versions throw "<op>: this build has no CUDA
// support".
#pragma once

#include <cstdint>

#include "core/kernel_args.h"
#include "core/tensor.h"

namespace convtape::cuda {

using convtape::Binary;
using convtape::Unary;

Tensor unary(Unary op, const Tensor& x, double p0 = 0.0, double p1 = 0.0);
Tensor binary(Binary op, const Tensor& a, const Tensor& b, double p0 = 0.0, double p1 = 0.0);

// In place on contiguous device tensors of one dtype and shape: y += alpha * x, y *= factor.
void axpy_(Tensor& y, const Tensor& x, double alpha);
void scale_(Tensor& y, double factor);

}  // namespace convtape::cuda
