// TEMPORARY (removed when the kernels land): throwing placeholders so the CUDA build links while
// this part of the backend is being written.
#include "core/error.h"
#include "cuda/correlation.h"
#include "cuda/pool.h"

namespace convtape::cuda {
PoolResult max_pool_forward(const Tensor&, const PoolGeometry&, bool) {
  CT_FAIL("{}: CUDA kernel not written yet", "max_pool");
}
Tensor avg_pool_forward(const Tensor&, const PoolGeometry&) {
  CT_FAIL("{}: CUDA kernel not written yet", "avg_pool");
}
Tensor avg_pool_backward(const Tensor&, const PoolGeometry&) {
  CT_FAIL("{}: CUDA kernel not written yet", "avg_pool");
}
Tensor index_scatter(const Tensor&, const Tensor&, const Shape&, bool) {
  CT_FAIL("{}: CUDA kernel not written yet", "max_pool");
}
Tensor index_gather(const Tensor&, const Tensor&) {
  CT_FAIL("{}: CUDA kernel not written yet", "max_unpool");
}
Tensor correlation_forward(const Tensor&, const Tensor&, const CorrelationGeometry&) {
  CT_FAIL("{}: CUDA kernel not written yet", "correlation");
}
Tensor correlation_backward_f1(const Tensor&, const Tensor&, const CorrelationGeometry&) {
  CT_FAIL("{}: CUDA kernel not written yet", "correlation");
}
Tensor correlation_backward_f2(const Tensor&, const Tensor&, const CorrelationGeometry&) {
  CT_FAIL("{}: CUDA kernel not written yet", "correlation");
}
}  // namespace convtape::cuda
