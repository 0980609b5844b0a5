// The reduction launchers of cuda/reduce_launch.h: each runs the passes of cuda/reduce_body.h
// through for_each (cuda/launch.cuh) for the dtype's element type.
#include "cuda/launch.cuh"
#include "cuda/reduce_body.h"
#include "cuda/reduce_launch.h"

namespace convtape::cuda::kernels {

namespace {}  // namespace

cudaError_t reduce_sum(DType dtype, const void* x, void* out, std::int64_t outer, std::int64_t n,
                       std::int64_t inner, double* a, double* b) {
  if (dtype == DType::Float64)
    return reduce_sum_passes(DeviceLaunch{}, static_cast<const double*>(x),
                             static_cast<double*>(out), outer, n, inner, a, b);
  if (dtype == DType::Float32)
    return reduce_sum_passes(DeviceLaunch{}, static_cast<const float*>(x), static_cast<float*>(out),
                             outer, n, inner, a, b);
  return cudaErrorInvalidValue;
}

cudaError_t reduce_extreme(DType dtype, bool max, const void* x, void* out, std::int64_t* idx,
                           std::int64_t outer, std::int64_t n, std::int64_t inner, void* va,
                           void* vb, std::int64_t* ia, std::int64_t* ib) {
  if (dtype == DType::Float64)
    return reduce_extreme_passes(DeviceLaunch{}, max, static_cast<const double*>(x),
                                 static_cast<double*>(out), idx, outer, n, inner,
                                 static_cast<double*>(va), static_cast<double*>(vb), ia, ib);
  if (dtype == DType::Float32)
    return reduce_extreme_passes(DeviceLaunch{}, max, static_cast<const float*>(x),
                                 static_cast<float*>(out), idx, outer, n, inner,
                                 static_cast<float*>(va), static_cast<float*>(vb), ia, ib);
  return cudaErrorInvalidValue;
}

cudaError_t reduce_scatter(DType dtype, const void* dy, const std::int64_t* indices, void* dx,
                           std::int64_t outer, std::int64_t mid, std::int64_t inner) {
  const std::int64_t n = outer * mid * inner;
  if (dtype == DType::Float64)
    return for_each(n, ReduceScatter<double>{static_cast<const double*>(dy), indices,
                                             static_cast<double*>(dx), mid, inner});
  if (dtype == DType::Float32)
    return for_each(n, ReduceScatter<float>{static_cast<const float*>(dy), indices,
                                            static_cast<float*>(dx), mid, inner});
  return cudaErrorInvalidValue;
}

}  // namespace convtape::cuda::kernels
