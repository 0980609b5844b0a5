// The CUDA entry points of a build without CUDA: each reports that the backend is absent, except
// the allocator's statistics (all zeros) and empty_cache (nothing to return).
#include "core/error.h"
#include "cuda/conv.h"
#include "cuda/copy.h"
#include "cuda/correlation.h"
#include "cuda/cuda.h"
#include "cuda/elementwise.h"
#include "cuda/gemm.h"
#include "cuda/nn.h"
#include "cuda/pool.h"
#include "cuda/reduce.h"

namespace convtape::cuda {

namespace {
[[noreturn]] void no_cuda(std::string_view op) {
  CT_FAIL("{}: this build has no CUDA support", op);
}
}  // namespace

bool built_with_cuda() noexcept {
  return false;
}
int device_count() noexcept {
  return 0;
}
bool is_available() noexcept {
  return false;
}

std::shared_ptr<Storage> allocate(std::string_view op, std::size_t, Device) {
  no_cuda(op);
}
Tensor empty(const Shape&, TensorOptions) {
  no_cuda("empty");
}
void copy(std::string_view op, void*, Device, const void*, Device, std::size_t) {
  no_cuda(op);
}
void fill(std::string_view op, void*, DType, std::int64_t, double, Device) {
  no_cuda(op);
}
void synchronize(std::string_view op, Device) {
  no_cuda(op);
}

DeviceMemoryStats memory_stats(Device device) {
  CT_CHECK(device.is_cuda(), "memory_stats: expected a CUDA device, got {}", device.str());
  return {};
}
void reset_peak_memory_stats(Device device) {
  CT_CHECK(device.is_cuda(), "reset_peak_memory_stats: expected a CUDA device, got {}",
           device.str());
}
void empty_cache() {}

// The kernels of core/kernels.def: unreachable from the front ends, which only dispatch here for
// CUDA tensors, and a build without CUDA cannot make one.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#define CT_DEFAULT(value)
#define CT_KERNEL(Ret, name, Params, Args, first, op) \
  Ret name Params {                                   \
    no_cuda(op);                                      \
  }
#include "core/kernels.def"
#undef CT_KERNEL
#undef CT_DEFAULT
#pragma GCC diagnostic pop

}  // namespace convtape::cuda
