// Launchers of the reduction kernels (cuda/reduce_body.h), defined in cuda/reduce.cu: raw device
// pointers in, the launch status out (cudaSuccess when every pass was queued). dtype is float32 or
// float64 and types x, out, the value scratch and dy / dx. Scratch sizes come from plan_reduce.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/dtype.h"

namespace convtape::cuda::kernels {

// out [outer, inner] = sum over n of x [outer, n, inner], accumulated in double; a and b hold
// outer * inner * plan_reduce(outer * inner, n).scratch_per_line() doubles each.
cudaError_t reduce_sum(DType dtype, const void* x, void* out, std::int64_t outer, std::int64_t n,
                       std::int64_t inner, double* a, double* b);

// out [outer, inner] = max (or min) over n of x [outer, n, inner], idx (nullable) its positions;
// va / vb hold as many values of dtype as a / b above, ia / ib as many positions (nullable when
// idx is).
cudaError_t reduce_extreme(DType dtype, bool max, const void* x, void* out, std::int64_t* idx,
                           std::int64_t outer, std::int64_t n, std::int64_t inner, void* va,
                           void* vb, std::int64_t* ia, std::int64_t* ib);

// dx [outer, mid, inner] from dy and indices [outer, inner].
cudaError_t reduce_scatter(DType dtype, const void* dy, const std::int64_t* indices, void* dx,
                           std::int64_t outer, std::int64_t mid, std::int64_t inner);

}  // namespace convtape::cuda::kernels
