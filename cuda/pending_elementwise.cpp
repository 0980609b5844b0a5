// TEMPORARY (removed when the kernels land): throwing placeholders so the CUDA build links while
// this part of the backend is being written.
#include "core/error.h"
#include "cuda/copy.h"
#include "cuda/elementwise.h"

namespace convtape::cuda {
Tensor unary(Unary, const Tensor&, double, double) {
  CT_FAIL("{}: CUDA kernel not written yet", "unary");
}
Tensor binary(Binary, const Tensor&, const Tensor&, double, double) {
  CT_FAIL("{}: CUDA kernel not written yet", "binary");
}
void axpy_(Tensor&, const Tensor&, double) {
  CT_FAIL("{}: CUDA kernel not written yet", "add_");
}
void scale_(Tensor&, double) {
  CT_FAIL("{}: CUDA kernel not written yet", "mul_");
}
void copy(const Tensor&, const Tensor&) {
  CT_FAIL("{}: CUDA kernel not written yet", "copy");
}
void fill(const Tensor&, double) {
  CT_FAIL("{}: CUDA kernel not written yet", "fill");
}
}  // namespace convtape::cuda
