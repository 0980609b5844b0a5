// Launchers of the convolution functors of cuda/conv_body.h on the current device's default
// stream. They take raw device pointers of one floating dtype and return the launch status, which
// the callers in cuda/conv.cpp turn into errors; .cu files include no convtape::Error.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/dtype.h"
#include "cuda/conv_body.h"

namespace convtape::cuda::conv_kernels {

// y [N, K, *out] from x, w and b (b may be null).
cudaError_t forward_direct(DType dtype, const void* x, const void* w, const void* b, void* y,
                           const ConvDims& g);
// dx [N, C, *in] from dy and w.
cudaError_t backward_data_direct(DType dtype, const void* dy, const void* w, void* dx,
                                 const ConvDims& g);
// partial [chunks, K, C/groups, *kernel]: chunk c sums pairs [c * chunk_len, (c + 1) * chunk_len).
cudaError_t backward_weight_direct(DType dtype, const void* dy, const void* x, void* partial,
                                   const ConvDims& g, std::int64_t chunks, std::int64_t chunk_len);
// out [n] = sum over c < chunks of partial [chunks, n].
cudaError_t chunk_sum(DType dtype, const void* partial, void* out, std::int64_t chunks,
                      std::int64_t n);
// x~ [rows, *padded] from x [rows, *in].
cudaError_t pad(DType dtype, const void* x, void* xt, const ConvPadDims& g);
// dx [rows, *in] from dx~ [rows, *padded] (ConvPad's adjoint).
cudaError_t unpad(DType dtype, const void* dxt, void* dx, const ConvPadDims& g);
// y [n, channels, plane] += b [channels], n = total / (channels * plane).
cudaError_t add_bias(DType dtype, void* y, const void* b, std::int64_t channels, std::int64_t plane,
                     std::int64_t total);

}  // namespace convtape::cuda::conv_kernels
