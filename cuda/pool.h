// CUDA pooling for any spatial rank with cpu/pool.h's contract and rules (first-index ties, NaN
// wins, padding never wins, ceil_mode, count_include_pad, divisor_override, adaptive windows).
// Plain C++: any folder may include it. A build without CUDA links cuda/no_cuda.cpp, whose
// versions throw "<op>: this build has no CUDA support".
#pragma once

#include <cstdint>

#include "core/kernel_args.h"
#include "core/tensor.h"

namespace convtape::cuda {

using convtape::PoolGeometry;
using convtape::PoolResult;

PoolResult max_pool_forward(const Tensor& x, const PoolGeometry& g, bool with_indices);
Tensor avg_pool_forward(const Tensor& x, const PoolGeometry& g);
Tensor avg_pool_backward(const Tensor& dy, const PoolGeometry& g);
Tensor index_scatter(const Tensor& src, const Tensor& indices, const Shape& plane, bool accumulate);
Tensor index_gather(const Tensor& src, const Tensor& indices);

}  // namespace convtape::cuda
