// CUDA device plumbing: device discovery, device storage (through the caching allocator,
// cuda/allocator.h), and copies. Kernels live in .cu files beside this one (cuda/kernels.h).
#include <cuda_runtime.h>

#include "cuda/allocator.h"
#include "cuda/check.h"
#include "cuda/cuda.h"
#include "cuda/device_scope.h"
#include "cuda/kernels.h"

namespace convtape::cuda {

bool built_with_cuda() noexcept {
  return true;
}

int device_count() noexcept {
  // Devices do not come and go while a process runs, and every op's DeviceScope asks: read once.
  static const int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();  // clear the sticky "no driver / no device" status
      return 0;
    }
    return n;
  }();
  return count;
}

bool is_available() noexcept {
  return device_count() > 0;
}

std::shared_ptr<Storage> allocate(std::string_view op, std::size_t nbytes, Device device) {
  DeviceScope scope(op, device);
  void* p = detail::device_malloc(op, nbytes, device);
  try {
    return std::make_shared<Storage>(p, nbytes, device, &detail::device_release);
  } catch (...) {
    detail::device_release(p, device);
    throw;
  }
}

Tensor empty(const Shape& shape, TensorOptions options) {
  const auto bytes = static_cast<std::size_t>(numel(shape)) * dtype_size(options.dtype());
  return Tensor::make(allocate("empty", bytes, options.device()), shape, contiguous_strides(shape),
                      0, options.dtype());
}

void copy(std::string_view op, void* dst, Device dst_device, const void* src, Device src_device,
          std::size_t nbytes) {
  if (nbytes == 0) return;
  const Device active = dst_device.is_cuda() ? dst_device : src_device;
  DeviceScope scope(op, active);
  cudaMemcpyKind kind = cudaMemcpyDeviceToDevice;
  if (dst_device.is_cpu()) kind = cudaMemcpyDeviceToHost;
  if (src_device.is_cpu()) kind = cudaMemcpyHostToDevice;
  if (dst_device.is_cuda() && src_device.is_cuda() && dst_device != src_device) {
    CT_CUDA_CHECK(op, cudaMemcpyPeer(dst, dst_device.index(), src, src_device.index(), nbytes));
    return;
  }
  CT_CUDA_CHECK(op, cudaMemcpy(dst, src, nbytes, kind));
}

void fill(std::string_view op, void* dst, DType dtype, std::int64_t n, double value,
          Device device) {
  DeviceScope scope(op, device);
  CT_CUDA_CHECK(op, kernels::fill(dst, dtype, n, value));
}

void synchronize(std::string_view op, Device device) {
  DeviceScope scope(op, device);
  CT_CUDA_CHECK(op, cudaDeviceSynchronize());
}

}  // namespace convtape::cuda
