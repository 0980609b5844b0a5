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

// The kernels (cuda/elementwise.h ... cuda/gemm.h): unreachable from the front ends, which only
// dispatch here for CUDA tensors, and a build without CUDA cannot make one.
Tensor unary(Unary, const Tensor&, double, double) {
  no_cuda("unary");
}
Tensor binary(Binary, const Tensor&, const Tensor&, double, double) {
  no_cuda("binary");
}
void axpy_(Tensor&, const Tensor&, double) {
  no_cuda("add_");
}
void scale_(Tensor&, double) {
  no_cuda("mul_");
}
void copy(const Tensor&, const Tensor&) {
  no_cuda("copy");
}
void fill(const Tensor&, double) {
  no_cuda("fill");
}
Tensor reduce(Reduce, const Tensor&, std::int64_t, std::int64_t, std::int64_t, Tensor*) {
  no_cuda("reduce");
}
Tensor reduce_scatter(const Tensor&, const Tensor&, std::int64_t, std::int64_t, std::int64_t) {
  no_cuda("reduce");
}
Tensor softmax(const Tensor&, std::int64_t, std::int64_t, std::int64_t, bool) {
  no_cuda("softmax");
}
Tensor nll(const Tensor&, const Tensor&) {
  no_cuda("nll_loss");
}
Tensor nll_backward(const Tensor&, const Tensor&, std::int64_t) {
  no_cuda("nll_loss");
}
Tensor index_select(const Tensor&, std::int64_t, std::int64_t, std::int64_t, const Tensor&) {
  no_cuda("index_select");
}
Tensor index_add(const Tensor&, std::int64_t, std::int64_t, std::int64_t, const Tensor&) {
  no_cuda("index_select");
}
Tensor bmm(const Tensor&, const Tensor&) {
  no_cuda("matmul");
}
Tensor conv_forward(const Tensor&, const Tensor&, const Tensor&, const ConvGeometry&) {
  no_cuda("conv");
}
Tensor conv_backward_data(const Tensor&, const Tensor&, const ConvGeometry&, const Tensor&) {
  no_cuda("conv");
}
Tensor conv_backward_weight(const Tensor&, const Tensor&, const ConvGeometry&) {
  no_cuda("conv");
}
PoolResult max_pool_forward(const Tensor&, const PoolGeometry&, bool) {
  no_cuda("max_pool");
}
Tensor avg_pool_forward(const Tensor&, const PoolGeometry&) {
  no_cuda("avg_pool");
}
Tensor avg_pool_backward(const Tensor&, const PoolGeometry&) {
  no_cuda("avg_pool");
}
Tensor index_scatter(const Tensor&, const Tensor&, const Shape&, bool) {
  no_cuda("max_pool");
}
Tensor index_gather(const Tensor&, const Tensor&) {
  no_cuda("max_unpool");
}
Tensor correlation_forward(const Tensor&, const Tensor&, const CorrelationGeometry&) {
  no_cuda("correlation");
}
Tensor correlation_backward_f1(const Tensor&, const Tensor&, const CorrelationGeometry&) {
  no_cuda("correlation");
}
Tensor correlation_backward_f2(const Tensor&, const Tensor&, const CorrelationGeometry&) {
  no_cuda("correlation");
}

}  // namespace convtape::cuda
