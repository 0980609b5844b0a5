// TEMPORARY (removed when the kernels land): throwing placeholders so the CUDA build links while
// this part of the backend is being written.
#include "core/error.h"
#include "cuda/nn.h"
#include "cuda/reduce.h"

namespace convtape::cuda {
Tensor reduce(Reduce, const Tensor&, std::int64_t, std::int64_t, std::int64_t, Tensor*) {
  CT_FAIL("{}: CUDA kernel not written yet", "reduce");
}
Tensor reduce_scatter(const Tensor&, const Tensor&, std::int64_t, std::int64_t, std::int64_t) {
  CT_FAIL("{}: CUDA kernel not written yet", "reduce");
}
Tensor softmax(const Tensor&, std::int64_t, std::int64_t, std::int64_t, bool) {
  CT_FAIL("{}: CUDA kernel not written yet", "softmax");
}
Tensor nll(const Tensor&, const Tensor&) {
  CT_FAIL("{}: CUDA kernel not written yet", "nll_loss");
}
Tensor nll_backward(const Tensor&, const Tensor&, std::int64_t) {
  CT_FAIL("{}: CUDA kernel not written yet", "nll_loss");
}
Tensor index_select(const Tensor&, std::int64_t, std::int64_t, std::int64_t, const Tensor&) {
  CT_FAIL("{}: CUDA kernel not written yet", "index_select");
}
Tensor index_add(const Tensor&, std::int64_t, std::int64_t, std::int64_t, const Tensor&) {
  CT_FAIL("{}: CUDA kernel not written yet", "index_select");
}
}  // namespace convtape::cuda
