// Launching the functors of cuda/*_body.h (see cuda/device_fn.h): for_each runs f(i) for every i in
// [0, n) in a grid-stride loop on the current device's default stream and returns the launch
// status; with_dtype maps a DType onto its element type. Only .cu files include this header.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "core/dtype.h"

namespace convtape::cuda {

template <class F>
__global__ void for_each_kernel(std::int64_t n, F f) {
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += step)
    f(i);
}

inline constexpr int kThreadsPerBlock = 256;
// Enough blocks to fill an H100 several times over; larger n loops inside the kernel.
inline constexpr std::int64_t kMaxBlocks = 65535;

template <class F>
cudaError_t for_each(std::int64_t n, const F& f) {
  if (n <= 0) return cudaSuccess;
  const std::int64_t blocks =
      std::min<std::int64_t>((n + kThreadsPerBlock - 1) / kThreadsPerBlock, kMaxBlocks);
  for_each_kernel<F><<<static_cast<unsigned>(blocks), kThreadsPerBlock>>>(n, f);
  return cudaGetLastError();
}

// for_each as a callable, for the multi-pass drivers of cuda/*_body.h that take their launcher as
// an argument (the body tests hand them a host loop instead).
struct DeviceLaunch {
  template <class F>
  cudaError_t operator()(std::int64_t n, const F& f) const {
    return for_each(n, f);
  }
};

// Calls f(T{}) with T the element type of dtype and returns its status: the one dtype switch of
// the type-erased launchers (cuda/*_launch.h take void pointers and a DType).
template <class F>
cudaError_t with_dtype(DType dtype, F&& f) {
  switch (dtype) {
    case DType::Float32:
      return f(float{});
    case DType::Float64:
      return f(double{});
    case DType::Int64:
      return f(std::int64_t{});
  }
  return cudaErrorInvalidValue;
}

}  // namespace convtape::cuda
