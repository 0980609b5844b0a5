// The CUDA backend library's device plumbing (device discovery, device storage through the
// caching allocator of cuda/allocator.h, copies, fill) and its one exported symbol: the table of
// cuda/backend_table.h that libconvtape opens it for, filled with these functions and with every
// kernel of core/kernels.def.
#include <cuda_runtime.h>

#include <string>

#include "cuda/allocator.h"
#include "cuda/backend_kernels.h"
#include "cuda/backend_table.h"
#include "cuda/check.h"
#include "cuda/cuda.h"
#include "cuda/device_scope.h"
#include "cuda/kernels.h"
#include "cuda/runtime.h"

namespace convtape::cuda::runtime {

namespace {
struct Count {
  int n = 0;
  std::string error;  // the runtime's message when cudaGetDeviceCount failed
};
const Count& counted() noexcept {
  // Devices do not come and go while a process runs, and every op's DeviceScope asks: read once.
  static const Count count = [] {
    Count c;
    const cudaError_t e = cudaGetDeviceCount(&c.n);
    if (e != cudaSuccess) {
      c.n = 0;
      c.error = std::string(cudaGetErrorName(e)) + ", " + cudaGetErrorString(e);
      cudaGetLastError();  // clear the sticky "no driver / no device" status
    } else if (c.n == 0) {
      c.error = "cudaGetDeviceCount reports 0 devices";
    }
    return c;
  }();
  return count;
}
}  // namespace

int device_count() noexcept {
  return counted().n;
}

const char* device_error() noexcept {
  return counted().error.c_str();
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

}  // namespace convtape::cuda::runtime

namespace {
// What libconvtape's loader reads: the plumbing above, the allocator's statistics, and every
// kernel of the list.
const convtape::cuda::BackendTable kTable = {
    convtape::cuda::kBackendAbi,
    {&convtape::cuda::runtime::device_count, &convtape::cuda::runtime::device_error,
     &convtape::cuda::runtime::allocate, &convtape::cuda::runtime::empty,
     &convtape::cuda::runtime::copy, &convtape::cuda::runtime::fill,
     &convtape::cuda::runtime::synchronize, &convtape::cuda::runtime::memory_stats,
     &convtape::cuda::runtime::reset_peak_memory_stats, &convtape::cuda::runtime::empty_cache},
#define CT_DEFAULT(value)
#define CT_KERNEL(Ret, name, Params, Args, first, op) &convtape::cuda::name,
#include "core/kernels.def"
#undef CT_KERNEL
#undef CT_DEFAULT
};
}  // namespace

extern "C" __attribute__((visibility("default"))) const convtape::cuda::BackendTable*
convtape_cuda_backend_table() {
  return &kTable;
}
