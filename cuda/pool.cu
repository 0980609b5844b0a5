// The CUDA pooling kernels: the functors of cuda/pool_body.h launched one thread per output
// element (max, average, the split windows' partial and combine passes, the scatter and gather of
// max pooling's indices) or per input element (the average's gradient, a gather, so no atomics).
// All pooling runs on these kernels rather than cuDNN's: cuDNN pooling returns no argmax indices,
// which max_pool_with_indices, max_unpool and max pooling's gradient need, and it documents no rule
// for ties or NaN, where ours must match the CPU backend (first maximal element, first NaN wins).
// max_unpool is deterministic: a claim pass keeps, per destination, the last source aiming at it
// (an atomic max of source positions), then a gather writes every destination once.
#include <cstdint>
#include <limits>

#include "cuda/launch.cuh"
#include "cuda/pool_launch.h"

namespace convtape::cuda::kernels {

namespace {

template <class T>
cudaError_t max_pool_typed(const void* x, void* y, std::int64_t* indices, const PoolWindows& pw,
                           std::int64_t planes, std::int64_t lanes, void* partial_values,
                           std::int64_t* partial_indices) {
  const std::int64_t outputs = planes * pw.out_numel;
  const T* xs = static_cast<const T*>(x);
  T* ys = static_cast<T*>(y);
  if (lanes <= 1) return for_each(outputs, MaxPoolForward<T>{xs, ys, indices, pw});
  T* pv = static_cast<T*>(partial_values);
  const cudaError_t e =
      for_each(outputs * lanes, MaxPoolPartial<T>{xs, pv, partial_indices, pw, lanes});
  if (e != cudaSuccess) return e;
  return for_each(outputs, MaxPoolCombine<T>{pv, partial_indices, ys, indices, lanes});
}

template <class T>
cudaError_t avg_pool_typed(const void* x, void* y, const PoolWindows& pw, std::int64_t planes,
                           std::int64_t lanes, void* partial_sums) {
  const std::int64_t outputs = planes * pw.out_numel;
  const T* xs = static_cast<const T*>(x);
  T* ys = static_cast<T*>(y);
  if (lanes <= 1) return for_each(outputs, AvgPoolForward<T>{xs, ys, pw});
  T* ps = static_cast<T*>(partial_sums);
  const cudaError_t e = for_each(outputs * lanes, AvgPoolPartial<T>{xs, ps, pw, lanes});
  if (e != cudaSuccess) return e;
  return for_each(outputs, AvgPoolCombine<T>{ps, ys, pw, lanes});
}

template <class T>
cudaError_t index_scatter_add_typed(const void* src, const std::int64_t* indices, void* out,
                                    std::int64_t planes, std::int64_t m, std::int64_t size) {
  T* o = static_cast<T*>(out);
  const cudaError_t e = for_each(planes * size, FillValue<T>{o, T(0)});
  if (e != cudaSuccess) return e;
  return for_each(planes * m, IndexScatterAdd<T>{static_cast<const T*>(src), indices, o, m, size});
}

cudaError_t claim_last(const std::int64_t* indices, std::int64_t planes, std::int64_t m,
                       std::int64_t size, std::int64_t* owner) {
  const cudaError_t e = for_each(planes * size, FillValue<std::int64_t>{owner, -1});
  if (e != cudaSuccess) return e;
  return for_each(planes * m, IndexClaim{indices, owner, m, size});
}

template <class F>
cudaError_t by_dtype(DType dtype, F&& f) {
  switch (dtype) {
    case DType::Float32:
      return f(float{});
    case DType::Float64:
      return f(double{});
    default:
      return cudaErrorInvalidValue;
  }
}

}  // namespace

cudaError_t max_pool(DType dtype, const void* x, void* y, std::int64_t* indices,
                     const PoolWindows& pw, std::int64_t planes, std::int64_t lanes,
                     void* partial_values, std::int64_t* partial_indices) {
  return by_dtype(dtype, [&](auto zero) {
    return max_pool_typed<decltype(zero)>(x, y, indices, pw, planes, lanes, partial_values,
                                          partial_indices);
  });
}

cudaError_t avg_pool(DType dtype, const void* x, void* y, const PoolWindows& pw,
                     std::int64_t planes, std::int64_t lanes, void* partial_sums) {
  return by_dtype(dtype, [&](auto zero) {
    return avg_pool_typed<decltype(zero)>(x, y, pw, planes, lanes, partial_sums);
  });
}

cudaError_t avg_pool_backward(DType dtype, const void* dy, void* dx, const PoolWindows& pw,
                              std::int64_t planes) {
  return by_dtype(dtype, [&](auto zero) {
    using T = decltype(zero);
    return for_each(planes * pw.in_numel,
                    AvgPoolBackward<T>{static_cast<const T*>(dy), static_cast<T*>(dx), pw});
  });
}

cudaError_t index_scatter_add(DType dtype, const void* src, const std::int64_t* indices, void* out,
                              std::int64_t planes, std::int64_t m, std::int64_t size) {
  return by_dtype(dtype, [&](auto zero) {
    return index_scatter_add_typed<decltype(zero)>(src, indices, out, planes, m, size);
  });
}

cudaError_t index_scatter_last(DType dtype, const void* src, const std::int64_t* indices, void* out,
                               std::int64_t planes, std::int64_t m, std::int64_t size,
                               std::int64_t* owner) {
  const cudaError_t e = claim_last(indices, planes, m, size, owner);
  if (e != cudaSuccess) return e;
  return by_dtype(dtype, [&](auto zero) {
    using T = decltype(zero);
    return for_each(planes * size, IndexClaimGather<T>{static_cast<const T*>(src), owner,
                                                       static_cast<T*>(out), m, size});
  });
}

cudaError_t index_gather(DType dtype, const void* src, const std::int64_t* indices, void* out,
                         std::int64_t planes, std::int64_t m, std::int64_t size) {
  return by_dtype(dtype, [&](auto zero) {
    using T = decltype(zero);
    return for_each(planes * m, IndexGather<T>{static_cast<const T*>(src), indices,
                                               static_cast<T*>(out), m, size});
  });
}

}  // namespace convtape::cuda::kernels
