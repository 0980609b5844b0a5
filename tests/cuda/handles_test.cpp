// cuBLAS / cuDNN handles (one per thread and device, created once) and the RAII cuDNN descriptors,
// read back through cuDNN's getters. Runs only where a CUDA device is present; in a build without
// CUDA this file holds no test, as cuda/handles.h needs the CUDA headers.
#include "support/test_util.h"

#if defined(CT_WITH_CUDA)
#include <thread>

#include "cuda/blas.h"
#include "cuda/check.h"
#include "cuda/handles.h"

using namespace convtape;

TEST_CASE("handles are created once per thread and device", "[cuda]") {
  const cublasHandle_t blas = cuda::cublas_handle("handles_test");
  const cudnnHandle_t dnn = cuda::cudnn_handle("handles_test");
  REQUIRE(blas != nullptr);
  REQUIRE(dnn != nullptr);
  CHECK(cuda::cublas_handle("handles_test") == blas);
  CHECK(cuda::cudnn_handle("handles_test") == dnn);
  cublasHandle_t other_blas = nullptr, other_blas_again = nullptr;
  cudnnHandle_t other_dnn = nullptr;
  std::thread([&] {
    other_blas = cuda::cublas_handle("handles_test");
    other_blas_again = cuda::cublas_handle("handles_test");
    other_dnn = cuda::cudnn_handle("handles_test");
  }).join();  // the thread's handles are destroyed as it exits
  CHECK(other_blas != nullptr);
  CHECK(other_blas != blas);
  CHECK(other_blas_again == other_blas);
  CHECK(other_dnn != nullptr);
  CHECK(other_dnn != dnn);
  int version = 0;
  CT_CUBLAS_CHECK("handles_test", cuda::blas::api("handles_test").get_version(blas, &version));
  CHECK(version > 0);
}

TEST_CASE("tensor and filter descriptors carry sizes, strides and dtype", "[cuda]") {
  const std::vector<std::int64_t> sizes{2, 3, 4, 5};
  const cuda::TensorDescriptor t("handles_test", kFloat32, sizes);
  cudnnDataType_t type{};
  int rank = 0;
  std::vector<int> dims(8), strides(8);
  CT_CUDNN_CHECK("handles_test",
                 cudnnGetTensorNdDescriptor(t.get(), 8, &type, &rank, dims.data(), strides.data()));
  CHECK(type == CUDNN_DATA_FLOAT);
  CHECK(rank == 4);
  CHECK(std::vector<int>(dims.begin(), dims.begin() + 4) == std::vector<int>{2, 3, 4, 5});
  CHECK(std::vector<int>(strides.begin(), strides.begin() + 4) == std::vector<int>{60, 20, 5, 1});

  // A transposed (strided) 5-d view.
  const std::vector<std::int64_t> sizes5{1, 2, 3, 4, 5}, strides5{120, 1, 2, 6, 24};
  cuda::TensorDescriptor moved("handles_test", kFloat64, sizes5, strides5);
  const cuda::TensorDescriptor t5(std::move(moved));
  CHECK(moved.get() == nullptr);
  CT_CUDNN_CHECK("handles_test", cudnnGetTensorNdDescriptor(t5.get(), 8, &type, &rank, dims.data(),
                                                            strides.data()));
  CHECK(type == CUDNN_DATA_DOUBLE);
  CHECK(rank == 5);
  CHECK(std::vector<int>(strides.begin(), strides.begin() + 5) ==
        std::vector<int>{120, 1, 2, 6, 24});

  const std::vector<std::int64_t> wsizes{8, 3, 3, 3};
  const cuda::FilterDescriptor f("handles_test", kFloat32, wsizes);
  cudnnTensorFormat_t format{};
  CT_CUDNN_CHECK("handles_test",
                 cudnnGetFilterNdDescriptor(f.get(), 8, &type, &format, &rank, dims.data()));
  CHECK(type == CUDNN_DATA_FLOAT);
  CHECK(format == CUDNN_TENSOR_NCHW);
  CHECK(std::vector<int>(dims.begin(), dims.begin() + rank) == std::vector<int>{8, 3, 3, 3});

  CT_REQUIRE_ERROR(cuda::TensorDescriptor("conv", kInt64, sizes),
                   "conv: expected a float32 or float64 tensor for cuDNN, got int64");
  const std::vector<std::int64_t> two{2, 3};
  CT_REQUIRE_ERROR(cuda::TensorDescriptor("conv", kFloat32, two),
                   "conv: expected a tensor of 3 to 8 dimensions for cuDNN, got 2");
  const std::vector<std::int64_t> huge{1, 1, std::int64_t{1} << 40};
  CT_REQUIRE_ERROR(cuda::TensorDescriptor("conv", kFloat32, huge),
                   "conv: expected every size to fit cuDNN's int, got 1099511627776");
  const std::vector<std::int64_t> zero{2, 0, 3};
  CT_REQUIRE_ERROR(cuda::TensorDescriptor("conv", kFloat32, zero),
                   "conv: expected cudnnSetTensorNdDescriptor(");  // cuDNN's own refusal
}

TEST_CASE("convolution descriptors give cuDNN's output shape", "[cuda]") {
  const std::vector<std::int64_t> pad{1, 0}, stride{2, 1}, dilation{1, 2};
  const cuda::ConvolutionDescriptor c("handles_test", kFloat32, pad, stride, dilation, 2);
  int groups = 0;
  CT_CUDNN_CHECK("handles_test", cudnnGetConvolutionGroupCount(c.get(), &groups));
  CHECK(groups == 2);
  cudnnMathType_t math{};
  CT_CUDNN_CHECK("handles_test", cudnnGetConvolutionMathType(c.get(), &math));
  CHECK(math == CUDNN_FMA_MATH);  // TF32 off unless asked

  const std::vector<std::int64_t> xs{2, 4, 9, 10}, ws{6, 2, 3, 3};
  const cuda::TensorDescriptor x("handles_test", kFloat32, xs);
  const cuda::FilterDescriptor w("handles_test", kFloat32, ws);
  std::vector<int> out(4);
  CT_CUDNN_CHECK("handles_test",
                 cudnnGetConvolutionNdForwardOutputDim(c.get(), x.get(), w.get(), 4, out.data()));
  // H: (9 + 2 - 3) / 2 + 1 = 5; W: (10 - (2 * 2 + 1)) / 1 + 1 = 6.
  CHECK(out == std::vector<int>{2, 6, 5, 6});

  const cuda::ConvolutionDescriptor tf32("handles_test", kFloat32, pad, stride, dilation, 1, true);
  CT_CUDNN_CHECK("handles_test", cudnnGetConvolutionMathType(tf32.get(), &math));
  CHECK(math == CUDNN_TENSOR_OP_MATH);

  const std::vector<std::int64_t> bad_stride{0, 1};
  CT_REQUIRE_ERROR(cuda::ConvolutionDescriptor("conv", kFloat32, pad, bad_stride, dilation, 1),
                   "conv: expected strides and dilations of at least 1, got stride 0");
  const std::vector<std::int64_t> one{1};
  CT_REQUIRE_ERROR(cuda::ConvolutionDescriptor("conv", kFloat32, pad, one, dilation, 1),
                   "conv: expected as many strides (1) and dilations (2) as paddings (2)");
}
#endif
