// The CUDA correlation kernels: cuda/correlation_body.h's functors launched one thread per output
// element (forward) or per element of df1 / df2 (the gradients, written as gathers so that no two
// threads write one element and no atomics are needed). The inputs are read in place in NCHW:
// neighbouring threads take neighbouring columns, so their loads coalesce, and the zero padding is
// a range test rather than a padded copy.
#include <cstdint>

#include "cuda/correlation_launch.h"
#include "cuda/launch.cuh"

namespace convtape::cuda::kernels {

namespace {

std::int64_t input_numel(const CorrelationShape& s) {
  return s.batch * s.channels * s.height * s.width;
}

// The mean's factor formed in T, as the CPU forms it: T(1) / T(k * k * C).
template <template <class> class F, class T>
cudaError_t run(std::int64_t n, const void* a, const void* b, void* out,
                const CorrelationShape& s) {
  const std::int64_t k = 2 * s.radius + 1;
  const T scale = T(1) / static_cast<T>(k * k * s.channels);
  return for_each(
      n, F<T>{static_cast<const T*>(a), static_cast<const T*>(b), static_cast<T*>(out), s, scale});
}

template <template <class> class F>
cudaError_t run(DType dtype, std::int64_t n, const void* a, const void* b, void* out,
                const CorrelationShape& s) {
  switch (dtype) {
    case DType::Float32:
      return run<F, float>(n, a, b, out, s);
    case DType::Float64:
      return run<F, double>(n, a, b, out, s);
    default:
      return cudaErrorInvalidValue;
  }
}

}  // namespace

cudaError_t correlation_forward(DType dtype, const void* f1, const void* f2, void* y,
                                const CorrelationShape& s) {
  const std::int64_t n = s.batch * s.grid * s.grid * s.out_height * s.out_width;
  return run<CorrelationForward>(dtype, n, f1, f2, y, s);
}

cudaError_t correlation_backward_f1(DType dtype, const void* dy, const void* f2, void* df1,
                                    const CorrelationShape& s) {
  return run<CorrelationBackwardF1>(dtype, input_numel(s), dy, f2, df1, s);
}

cudaError_t correlation_backward_f2(DType dtype, const void* dy, const void* f1, void* df2,
                                    const CorrelationShape& s) {
  return run<CorrelationBackwardF2>(dtype, input_numel(s), dy, f1, df2, s);
}

}  // namespace convtape::cuda::kernels
