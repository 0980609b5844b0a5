// The launchers of cuda/nn_launch.h: the functors of cuda/nn_body.h through for_each
// (cuda/launch.cuh), and CUB's stable radix sort for index_add's keys.
#include <cub/device/device_radix_sort.cuh>

#include "cuda/launch.cuh"
#include "cuda/nn_body.h"
#include "cuda/nn_launch.h"

namespace convtape::cuda::kernels {

namespace {

template <class T>
cudaError_t softmax_typed(const void* x, void* y, std::int64_t outer, std::int64_t n,
                          std::int64_t inner, bool log, void* mx, double* sum, double* partial,
                          void* va, void* vb, double* a, double* b) {
  return softmax_passes(DeviceLaunch{}, static_cast<const T*>(x), static_cast<T*>(y), outer, n,
                        inner, log, static_cast<T*>(mx), sum, partial, static_cast<T*>(va),
                        static_cast<T*>(vb), a, b);
}

}  // namespace

cudaError_t softmax(DType dtype, const void* x, void* y, std::int64_t outer, std::int64_t n,
                    std::int64_t inner, bool log, void* mx, double* sum, double* partial, void* va,
                    void* vb, double* a, double* b) {
  if (dtype == DType::Float64)
    return softmax_typed<double>(x, y, outer, n, inner, log, mx, sum, partial, va, vb, a, b);
  if (dtype == DType::Float32)
    return softmax_typed<float>(x, y, outer, n, inner, log, mx, sum, partial, va, vb, a, b);
  return cudaErrorInvalidValue;
}

namespace {

template <class T>
cudaError_t nll_forward_typed(const void* logp, const std::int64_t* labels, const void* weight,
                              void* out, void* sample_weights, std::int64_t batch,
                              std::int64_t classes, std::int64_t ignore_index,
                              std::int64_t* first) {
  return for_each(
      batch, NllForward<T>{static_cast<const T*>(logp), labels, static_cast<const T*>(weight),
                           static_cast<T*>(out), static_cast<T*>(sample_weights), first, classes,
                           ignore_index});
}

template <class T>
cudaError_t nll_backward_typed(const void* g, const std::int64_t* labels, const void* weight,
                               void* dx, std::int64_t batch, std::int64_t classes,
                               std::int64_t ignore_index) {
  return for_each(batch * classes,
                  NllBackward<T>{static_cast<const T*>(g), labels, static_cast<const T*>(weight),
                                 static_cast<T*>(dx), classes, ignore_index});
}

}  // namespace

cudaError_t nll_forward(DType dtype, const void* logp, const std::int64_t* labels,
                        const void* weight, void* out, void* sample_weights, std::int64_t batch,
                        std::int64_t classes, std::int64_t ignore_index, std::int64_t* first,
                        std::int64_t* position, std::int64_t* value) {
  *position = -1;
  *value = 0;
  if (batch <= 0) return cudaSuccess;
  if (dtype != DType::Float64 && dtype != DType::Float32) return cudaErrorInvalidValue;
  cudaError_t e = cudaMemcpy(first, &batch, sizeof(batch), cudaMemcpyHostToDevice);
  if (e != cudaSuccess) return e;
  e = dtype == DType::Float64 ? nll_forward_typed<double>(logp, labels, weight, out, sample_weights,
                                                          batch, classes, ignore_index, first)
                              : nll_forward_typed<float>(logp, labels, weight, out, sample_weights,
                                                         batch, classes, ignore_index, first);
  std::int64_t at = batch;
  if (e == cudaSuccess) e = cudaMemcpy(&at, first, sizeof(at), cudaMemcpyDeviceToHost);
  if (e != cudaSuccess || at >= batch) return e;
  *position = at;
  return cudaMemcpy(value, labels + at, sizeof(*value), cudaMemcpyDeviceToHost);
}

cudaError_t nll_backward(DType dtype, const void* g, const std::int64_t* labels, const void* weight,
                         void* dx, std::int64_t batch, std::int64_t classes,
                         std::int64_t ignore_index) {
  if (dtype == DType::Float64)
    return nll_backward_typed<double>(g, labels, weight, dx, batch, classes, ignore_index);
  if (dtype == DType::Float32)
    return nll_backward_typed<float>(g, labels, weight, dx, batch, classes, ignore_index);
  return cudaErrorInvalidValue;
}

cudaError_t index_select(DType dtype, const void* x, const std::int64_t* index, void* y,
                         std::int64_t outer, std::int64_t n, std::int64_t inner, std::int64_t len) {
  const std::int64_t items = outer * len * inner;
  switch (dtype) {
    case DType::Float32:
      return for_each(items, IndexSelect<float>{static_cast<const float*>(x), index,
                                                static_cast<float*>(y), n, len, inner});
    case DType::Float64:
      return for_each(items, IndexSelect<double>{static_cast<const double*>(x), index,
                                                 static_cast<double*>(y), n, len, inner});
    case DType::Int64:
      return for_each(items,
                      IndexSelect<std::int64_t>{static_cast<const std::int64_t*>(x), index,
                                                static_cast<std::int64_t*>(y), n, len, inner});
  }
  return cudaErrorInvalidValue;
}

cudaError_t index_sort_scratch(std::int64_t len, int bits, std::size_t* bytes) {
  *bytes = 0;
  return cub::DeviceRadixSort::SortPairs(nullptr, *bytes, static_cast<const std::int64_t*>(nullptr),
                                         static_cast<std::int64_t*>(nullptr),
                                         static_cast<const std::int64_t*>(nullptr),
                                         static_cast<std::int64_t*>(nullptr), len, 0, bits);
}

cudaError_t index_sort(const std::int64_t* index, std::int64_t len, int bits, std::int64_t* keys,
                       std::int64_t* iota, std::int64_t* perm, void* scratch, std::size_t bytes) {
  const cudaError_t e = for_each(len, Iota{iota});
  if (e != cudaSuccess) return e;
  return cub::DeviceRadixSort::SortPairs(scratch, bytes, index, keys, iota, perm, len, 0, bits);
}

cudaError_t index_add(DType dtype, const void* src, const std::int64_t* keys,
                      const std::int64_t* perm, void* y, std::int64_t outer, std::int64_t n,
                      std::int64_t inner, std::int64_t len) {
  const std::int64_t items = outer * n * inner;
  if (dtype == DType::Float64)
    return for_each(items, IndexAddGather<double>{static_cast<const double*>(src), keys, perm,
                                                  static_cast<double*>(y), n, len, inner});
  if (dtype == DType::Float32)
    return for_each(items, IndexAddGather<float>{static_cast<const float*>(src), keys, perm,
                                                 static_cast<float*>(y), n, len, inner});
  return cudaErrorInvalidValue;
}

cudaError_t first_out_of_range(const std::int64_t* values, std::int64_t count, std::int64_t lo,
                               std::int64_t hi, std::int64_t* first, std::int64_t* position,
                               std::int64_t* value) {
  *position = -1;
  *value = 0;
  if (count <= 0) return cudaSuccess;
  cudaError_t e = cudaMemcpy(first, &count, sizeof(count), cudaMemcpyHostToDevice);
  if (e == cudaSuccess) e = for_each(count, FirstOutOfRange{values, lo, hi, first});
  std::int64_t at = count;
  if (e == cudaSuccess) e = cudaMemcpy(&at, first, sizeof(at), cudaMemcpyDeviceToHost);
  if (e != cudaSuccess || at >= count) return e;
  *position = at;
  return cudaMemcpy(value, values + at, sizeof(*value), cudaMemcpyDeviceToHost);
}

}  // namespace convtape::cuda::kernels
