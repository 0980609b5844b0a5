// Per-thread, per-device cuBLAS and cuDNN handles, and the RAII cuDNN descriptors.
#include "cuda/handles.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

#include "core/error.h"
#include "cuda/blas.h"
#include "cuda/check.h"

namespace convtape::cuda {

namespace {
// This thread's handles, indexed by device. Destroyed at thread exit; for the main thread that is
// inside exit(), before the CUDA runtime's own teardown (thread-local destructors run first), and
// a failure there has nobody to report to, so statuses are ignored.
struct ThreadHandles {
  std::vector<cublasHandle_t> cublas;
  std::vector<cudnnHandle_t> cudnn;

  ThreadHandles() = default;
  ThreadHandles(const ThreadHandles&) = delete;
  ThreadHandles& operator=(const ThreadHandles&) = delete;
  ~ThreadHandles() {
    int previous = 0;
    if (cudaGetDevice(&previous) != cudaSuccess) return;
    for (std::size_t d = 0; d < cublas.size(); ++d)
      if (cublas[d] && cudaSetDevice(static_cast<int>(d)) == cudaSuccess)
        blas::api("cublas").destroy(cublas[d]);
    for (std::size_t d = 0; d < cudnn.size(); ++d)
      if (cudnn[d] && cudaSetDevice(static_cast<int>(d)) == cudaSuccess) cudnnDestroy(cudnn[d]);
    cudaSetDevice(previous);
  }
};
thread_local ThreadHandles t_handles;

// The current device's slot in `handles`, grown as needed.
template <class H>
H& slot(std::string_view op, std::vector<H>& handles) {
  int device = 0;
  CT_CUDA_CHECK(op, cudaGetDevice(&device));
  if (handles.size() <= static_cast<std::size_t>(device))
    handles.resize(static_cast<std::size_t>(device) + 1, nullptr);
  return handles[static_cast<std::size_t>(device)];
}

int to_int(std::string_view op, const char* what, std::int64_t v) {
  CT_CHECK(v >= 0 && v <= std::numeric_limits<int>::max(),
           "{}: expected every {} to fit cuDNN's int, got {}", op, what, v);
  return static_cast<int>(v);
}

std::vector<int> to_ints(std::string_view op, const char* what, std::span<const std::int64_t> v) {
  std::vector<int> out;
  out.reserve(v.size());
  for (const std::int64_t x : v) out.push_back(to_int(op, what, x));
  return out;
}

void check_rank(std::string_view op, const char* what, std::size_t rank, std::size_t lo,
                std::size_t hi) {
  CT_CHECK(rank >= lo && rank <= hi, "{}: expected a {} of {} to {} dimensions for cuDNN, got {}",
           op, what, lo, hi, rank);
}
}  // namespace

cublasHandle_t cublas_handle(std::string_view op) {
  cublasHandle_t& h = slot(op, t_handles.cublas);
  if (!h) CT_CUBLAS_CHECK(op, blas::api(op).create(&h));
  return h;
}

cudnnHandle_t cudnn_handle(std::string_view op) {
  cudnnHandle_t& h = slot(op, t_handles.cudnn);
  if (!h) CT_CUDNN_CHECK(op, cudnnCreate(&h));
  return h;
}

cudnnDataType_t cudnn_dtype(std::string_view op, DType dtype) {
  switch (dtype) {
    case DType::Float32:
      return CUDNN_DATA_FLOAT;
    case DType::Float64:
      return CUDNN_DATA_DOUBLE;
    default:
      CT_FAIL("{}: expected a float32 or float64 tensor for cuDNN, got {}", op, dtype_name(dtype));
  }
}

// --- TensorDescriptor ---

TensorDescriptor::TensorDescriptor(std::string_view op, DType dtype,
                                   std::span<const std::int64_t> sizes,
                                   std::span<const std::int64_t> strides) {
  check_rank(op, "tensor", sizes.size(), 3, CUDNN_DIM_MAX);
  CT_CHECK(strides.size() == sizes.size(), "{}: expected {} strides, got {}", op, sizes.size(),
           strides.size());
  const cudnnDataType_t type = cudnn_dtype(op, dtype);
  const std::vector<int> dims = to_ints(op, "size", sizes);
  const std::vector<int> steps = to_ints(op, "stride", strides);
  CT_CUDNN_CHECK(op, cudnnCreateTensorDescriptor(&desc_));
  // The check inside the try names the failing call in the message; a throwing constructor runs
  // no destructor, so the descriptor is destroyed here.
  try {
    CT_CUDNN_CHECK(op, cudnnSetTensorNdDescriptor(desc_, type, static_cast<int>(dims.size()),
                                                  dims.data(), steps.data()));
  } catch (...) {
    cudnnDestroyTensorDescriptor(std::exchange(desc_, nullptr));
    throw;
  }
}

namespace {
std::vector<std::int64_t> contiguous_strides(std::span<const std::int64_t> sizes) {
  std::vector<std::int64_t> strides(sizes.size(), 1);
  for (std::size_t i = sizes.size(); i-- > 1;)
    strides[i - 1] = strides[i] * std::max<std::int64_t>(sizes[i], 1);
  return strides;
}
}  // namespace

TensorDescriptor::TensorDescriptor(std::string_view op, DType dtype,
                                   std::span<const std::int64_t> sizes)
    : TensorDescriptor(op, dtype, sizes, contiguous_strides(sizes)) {}

TensorDescriptor::~TensorDescriptor() {
  if (desc_) cudnnDestroyTensorDescriptor(desc_);
}
TensorDescriptor::TensorDescriptor(TensorDescriptor&& other) noexcept
    : desc_(std::exchange(other.desc_, nullptr)) {}
TensorDescriptor& TensorDescriptor::operator=(TensorDescriptor&& other) noexcept {
  std::swap(desc_, other.desc_);
  return *this;
}

// --- FilterDescriptor ---

FilterDescriptor::FilterDescriptor(std::string_view op, DType dtype,
                                   std::span<const std::int64_t> sizes) {
  check_rank(op, "filter", sizes.size(), 3, CUDNN_DIM_MAX);
  const cudnnDataType_t type = cudnn_dtype(op, dtype);
  const std::vector<int> dims = to_ints(op, "size", sizes);
  CT_CUDNN_CHECK(op, cudnnCreateFilterDescriptor(&desc_));
  try {  // as in TensorDescriptor: the message names the call, the descriptor is destroyed
    CT_CUDNN_CHECK(op, cudnnSetFilterNdDescriptor(desc_, type, CUDNN_TENSOR_NCHW,
                                                  static_cast<int>(dims.size()), dims.data()));
  } catch (...) {
    cudnnDestroyFilterDescriptor(std::exchange(desc_, nullptr));
    throw;
  }
}

FilterDescriptor::~FilterDescriptor() {
  if (desc_) cudnnDestroyFilterDescriptor(desc_);
}
FilterDescriptor::FilterDescriptor(FilterDescriptor&& other) noexcept
    : desc_(std::exchange(other.desc_, nullptr)) {}
FilterDescriptor& FilterDescriptor::operator=(FilterDescriptor&& other) noexcept {
  std::swap(desc_, other.desc_);
  return *this;
}

// --- ConvolutionDescriptor ---

ConvolutionDescriptor::ConvolutionDescriptor(std::string_view op, DType compute,
                                             std::span<const std::int64_t> padding,
                                             std::span<const std::int64_t> stride,
                                             std::span<const std::int64_t> dilation,
                                             std::int64_t groups, bool allow_tf32) {
  check_rank(op, "convolution", padding.size(), 1, CUDNN_DIM_MAX - 2);
  CT_CHECK(stride.size() == padding.size() && dilation.size() == padding.size(),
           "{}: expected as many strides ({}) and dilations ({}) as paddings ({})", op,
           stride.size(), dilation.size(), padding.size());
  for (std::size_t i = 0; i < stride.size(); ++i)
    CT_CHECK(stride[i] >= 1 && dilation[i] >= 1,
             "{}: expected strides and dilations of at least 1, got stride {} and dilation {} in "
             "spatial dimension {}",
             op, stride[i], dilation[i], i);
  CT_CHECK(groups >= 1, "{}: expected groups of at least 1, got {}", op, groups);
  const cudnnDataType_t type = cudnn_dtype(op, compute);
  const std::vector<int> pads = to_ints(op, "padding", padding);
  const std::vector<int> steps = to_ints(op, "stride", stride);
  const std::vector<int> dils = to_ints(op, "dilation", dilation);
  const int group_count = to_int(op, "group count", groups);
  CT_CUDNN_CHECK(op, cudnnCreateConvolutionDescriptor(&desc_));
  try {  // as in TensorDescriptor: the message names the call, the descriptor is destroyed
    CT_CUDNN_CHECK(op, cudnnSetConvolutionNdDescriptor(desc_, static_cast<int>(pads.size()),
                                                       pads.data(), steps.data(), dils.data(),
                                                       CUDNN_CROSS_CORRELATION, type));
    CT_CUDNN_CHECK(op, cudnnSetConvolutionGroupCount(desc_, group_count));
    CT_CUDNN_CHECK(
        op, cudnnSetConvolutionMathType(desc_, allow_tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH));
  } catch (...) {
    cudnnDestroyConvolutionDescriptor(std::exchange(desc_, nullptr));
    throw;
  }
}

ConvolutionDescriptor::~ConvolutionDescriptor() {
  if (desc_) cudnnDestroyConvolutionDescriptor(desc_);
}
ConvolutionDescriptor::ConvolutionDescriptor(ConvolutionDescriptor&& other) noexcept
    : desc_(std::exchange(other.desc_, nullptr)) {}
ConvolutionDescriptor& ConvolutionDescriptor::operator=(ConvolutionDescriptor&& other) noexcept {
  std::swap(desc_, other.desc_);
  return *this;
}

}  // namespace convtape::cuda
