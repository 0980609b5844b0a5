// cuBLAS and cuDNN handles and the RAII cuDNN descriptors that the ops build their calls from.
// Only cuda/ includes this header.
//
// Handles: one per device and thread, created lazily on the first call from that thread for the
// current device (the op's DeviceScope picks it) and destroyed when the thread exits. A handle is
// not thread-safe, hence one per thread; creating one costs milliseconds, hence the reuse.
// Descriptors: N-d (3 to CUDNN_DIM_MAX dimensions), built from convtape's int64 sizes with range
// checks, movable, destroyed with their owner. Conv of rank 1 is expressed by the caller as rank 2
// with a unit dimension, as cuDNN wants at least 4-d tensors for convolutions.
#pragma once

#include <cublas_v2.h>
#include <cudnn.h>

#include <cstdint>
#include <span>
#include <string_view>

#include "core/dtype.h"

namespace convtape::cuda {

// This thread's handle for the current device. Errors name op.
cublasHandle_t cublas_handle(std::string_view op);
cudnnHandle_t cudnn_handle(std::string_view op);

// CUDNN_DATA_FLOAT / CUDNN_DATA_DOUBLE; other dtypes are refused with an Error naming op.
cudnnDataType_t cudnn_dtype(std::string_view op, DType dtype);

// A strided N-d tensor: sizes and strides in elements, as convtape's Tensor holds them.
class TensorDescriptor {
 public:
  TensorDescriptor(std::string_view op, DType dtype, std::span<const std::int64_t> sizes,
                   std::span<const std::int64_t> strides);
  // A contiguous (row-major) tensor of these sizes.
  TensorDescriptor(std::string_view op, DType dtype, std::span<const std::int64_t> sizes);
  ~TensorDescriptor();
  TensorDescriptor(TensorDescriptor&& other) noexcept;
  TensorDescriptor& operator=(TensorDescriptor&& other) noexcept;
  TensorDescriptor(const TensorDescriptor&) = delete;
  TensorDescriptor& operator=(const TensorDescriptor&) = delete;

  cudnnTensorDescriptor_t get() const noexcept { return desc_; }

 private:
  cudnnTensorDescriptor_t desc_ = nullptr;
};

// A convolution filter [K, C/groups, *R] in NCHW-style (row-major) layout.
class FilterDescriptor {
 public:
  FilterDescriptor(std::string_view op, DType dtype, std::span<const std::int64_t> sizes);
  ~FilterDescriptor();
  FilterDescriptor(FilterDescriptor&& other) noexcept;
  FilterDescriptor& operator=(FilterDescriptor&& other) noexcept;
  FilterDescriptor(const FilterDescriptor&) = delete;
  FilterDescriptor& operator=(const FilterDescriptor&) = delete;

  cudnnFilterDescriptor_t get() const noexcept { return desc_; }

 private:
  cudnnFilterDescriptor_t desc_ = nullptr;
};

// A cross-correlation (what deep learning calls convolution) over the spatial dimensions: padding,
// stride and dilation have one entry per spatial dimension (1 to CUDNN_DIM_MAX - 2). compute is the
// accumulation dtype. TF32 tensor cores stay off unless allow_tf32 (the design card's rule): the
// math type is CUDNN_FMA_MATH then, CUDNN_TENSOR_OP_MATH otherwise.
class ConvolutionDescriptor {
 public:
  ConvolutionDescriptor(std::string_view op, DType compute, std::span<const std::int64_t> padding,
                        std::span<const std::int64_t> stride,
                        std::span<const std::int64_t> dilation, std::int64_t groups,
                        bool allow_tf32 = false);
  ~ConvolutionDescriptor();
  ConvolutionDescriptor(ConvolutionDescriptor&& other) noexcept;
  ConvolutionDescriptor& operator=(ConvolutionDescriptor&& other) noexcept;
  ConvolutionDescriptor(const ConvolutionDescriptor&) = delete;
  ConvolutionDescriptor& operator=(const ConvolutionDescriptor&) = delete;

  cudnnConvolutionDescriptor_t get() const noexcept { return desc_; }

 private:
  cudnnConvolutionDescriptor_t desc_ = nullptr;
};

}  // namespace convtape::cuda
