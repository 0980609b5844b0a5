// Launchers of the convolution functors (cuda/conv_body.h): direct kernels for spatial ranks
// cuDNN does not take, the dilate-and-pad copy x~ and its adjoint, and the bias add. One thread
// per output element (or weight-gradient work item), grid-stride (cuda/launch.cuh).
#include <type_traits>

#include "cuda/conv_body.h"
#include "cuda/conv_launch.h"
#include "cuda/launch.cuh"

namespace convtape::cuda::conv_kernels {

namespace {

template <class Make>
cudaError_t by_dtype(DType dtype, std::int64_t n, Make make) {
  switch (dtype) {
    case DType::Float32:
      return for_each(n, make(static_cast<float*>(nullptr)));
    case DType::Float64:
      return for_each(n, make(static_cast<double*>(nullptr)));
    default:
      return cudaErrorInvalidValue;
  }
}

}  // namespace

cudaError_t forward_direct(DType dtype, const void* x, const void* w, const void* b, void* y,
                           const ConvDims& g) {
  const std::int64_t n = g.batch * g.out_channels * g.out_numel;
  return by_dtype(dtype, n, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    return ConvForwardDirect<T>{static_cast<const T*>(x), static_cast<const T*>(w),
                                static_cast<const T*>(b), static_cast<T*>(y), g};
  });
}

cudaError_t backward_data_direct(DType dtype, const void* dy, const void* w, void* dx,
                                 const ConvDims& g) {
  const std::int64_t n = g.batch * g.channels * g.in_numel;
  return by_dtype(dtype, n, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    return ConvBackwardDataDirect<T>{static_cast<const T*>(dy), static_cast<const T*>(w),
                                     static_cast<T*>(dx), g};
  });
}

cudaError_t backward_weight_direct(DType dtype, const void* dy, const void* x, void* partial,
                                   const ConvDims& g, std::int64_t chunks, std::int64_t chunk_len) {
  const std::int64_t n = chunks * g.weight_numel();
  return by_dtype(dtype, n, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    return ConvBackwardWeightDirect<T>{static_cast<const T*>(dy), static_cast<const T*>(x),
                                       static_cast<T*>(partial), g, chunk_len};
  });
}

cudaError_t chunk_sum(DType dtype, const void* partial, void* out, std::int64_t chunks,
                      std::int64_t n) {
  return by_dtype(dtype, n, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    return ConvChunkSum<T>{static_cast<const T*>(partial), static_cast<T*>(out), chunks, n};
  });
}

cudaError_t pad(DType dtype, const void* x, void* xt, const ConvPadDims& g) {
  return by_dtype(dtype, g.rows * g.padded_numel, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    return ConvPad<T>{static_cast<const T*>(x), static_cast<T*>(xt), g};
  });
}

cudaError_t unpad(DType dtype, const void* dxt, void* dx, const ConvPadDims& g) {
  return by_dtype(dtype, g.rows * g.in_numel, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    return ConvUnpad<T>{static_cast<const T*>(dxt), static_cast<T*>(dx), g};
  });
}

cudaError_t add_bias(DType dtype, void* y, const void* b, std::int64_t channels, std::int64_t plane,
                     std::int64_t total) {
  return by_dtype(dtype, total, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    return ConvAddBias<T>{static_cast<T*>(y), static_cast<const T*>(b), channels, plane};
  });
}

}  // namespace convtape::cuda::conv_kernels
