// TEMPORARY (removed when the kernels land): throwing placeholders so the CUDA build links while
// this part of the backend is being written.
#include "core/error.h"
#include "cuda/conv.h"
#include "cuda/gemm.h"

namespace convtape::cuda {
Tensor bmm(const Tensor&, const Tensor&) {
  CT_FAIL("{}: CUDA kernel not written yet", "matmul");
}
Tensor conv_forward(const Tensor&, const Tensor&, const Tensor&, const ConvGeometry&) {
  CT_FAIL("{}: CUDA kernel not written yet", "conv");
}
Tensor conv_backward_data(const Tensor&, const Tensor&, const ConvGeometry&) {
  CT_FAIL("{}: CUDA kernel not written yet", "conv");
}
Tensor conv_backward_weight(const Tensor&, const Tensor&, const ConvGeometry&) {
  CT_FAIL("{}: CUDA kernel not written yet", "conv");
}
}  // namespace convtape::cuda
