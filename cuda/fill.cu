// fill kernel: sets n elements of a device buffer to one value (zeros, ones, full on CUDA).
#include <algorithm>
#include <cstdint>

#include "cuda/kernels.h"

namespace convtape::cuda::kernels {

namespace {
template <class T>
__global__ void fill_kernel(T* dst, std::int64_t n, T value) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride)
    dst[i] = value;
}

template <class T>
cudaError_t launch(void* dst, std::int64_t n, double value) {
  constexpr int kThreads = 256;
  const std::int64_t blocks = std::min<std::int64_t>((n + kThreads - 1) / kThreads, 65535);
  fill_kernel<T>
      <<<static_cast<unsigned>(blocks), kThreads>>>(static_cast<T*>(dst), n, static_cast<T>(value));
  return cudaGetLastError();
}
}  // namespace

cudaError_t fill(void* dst, DType dtype, std::int64_t n, double value) {
  if (n == 0) return cudaSuccess;
  switch (dtype) {
    case DType::Float32:
      return launch<float>(dst, n, value);
    case DType::Float64:
      return launch<double>(dst, n, value);
    case DType::Int64:
      return launch<std::int64_t>(dst, n, value);
  }
  return cudaErrorInvalidValue;
}

}  // namespace convtape::cuda::kernels
