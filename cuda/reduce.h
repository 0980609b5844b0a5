// CUDA reductions over the middle axis of a contiguous device tensor viewed as [outer, mid, inner],
// with cpu/reduce.h's rules: sum accumulated in double, max / min where NaN wins and the first
// extreme element wins ties (its position along mid returned as int64 when asked for).
// Plain C++: any folder may include it. A build without CUDA links cuda/no_cuda.cpp, whose
// versions throw "<op>: this build has no CUDA support".
#pragma once

#include <cstdint>

#include "core/kernel_args.h"
#include "core/tensor.h"

namespace convtape::cuda {

using convtape::Reduce;

Tensor reduce(Reduce op, const Tensor& x, std::int64_t outer, std::int64_t mid, std::int64_t inner,
              Tensor* indices = nullptr);
// Gradient of a max/min reduction: dy [outer, inner] scattered to [outer, mid, inner] at indices.
Tensor reduce_scatter(const Tensor& dy, const Tensor& indices, std::int64_t outer, std::int64_t mid,
                      std::int64_t inner);

}  // namespace convtape::cuda
