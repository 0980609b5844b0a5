// CUDA device plumbing: device discovery, device storage (cudaMalloc / cudaFree), and copies.
// Kernels live in .cu files beside this one (cuda/kernels.h); the caching allocator arrives with
// the CUDA backend.
#include <cuda_runtime.h>

#include "cuda/check.h"
#include "cuda/cuda.h"
#include "cuda/kernels.h"

namespace convtape::cuda {

namespace {
void device_free(void* p, Device d) noexcept {
  int previous = 0;
  if (cudaGetDevice(&previous) != cudaSuccess) return;
  cudaSetDevice(d.index());
  cudaFree(p);
  cudaSetDevice(previous);
}

// Makes `device` current for its scope.
class DeviceScope {
 public:
  DeviceScope(std::string_view op, Device device) {
    CT_CHECK(device.is_cuda(), "{}: expected a CUDA device, got {}", op, device.str());
    const int n = device_count();
    CT_CHECK(device.index() >= 0 && device.index() < n,
             "{}: expected a CUDA device index in [0, {}), got {}", op, n, device.index());
    CT_CUDA_CHECK(op, cudaGetDevice(&previous_));
    CT_CUDA_CHECK(op, cudaSetDevice(device.index()));
  }
  ~DeviceScope() { cudaSetDevice(previous_); }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  int previous_ = 0;
};
}  // namespace

bool built_with_cuda() noexcept {
  return true;
}

int device_count() noexcept {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver / no device" status
    return 0;
  }
  return n;
}

bool is_available() noexcept {
  return device_count() > 0;
}

std::shared_ptr<Storage> allocate(std::string_view op, std::size_t nbytes, Device device) {
  DeviceScope scope(op, device);
  void* p = nullptr;
  CT_CUDA_CHECK(op, cudaMalloc(&p, std::max<std::size_t>(nbytes, 1)));
  return std::make_shared<Storage>(p, nbytes, device, &device_free);
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
