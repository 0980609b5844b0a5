// The CUDA backend's error macros (cuda/check.h): CT_CUDA_CHECK, CT_CUBLAS_CHECK and CT_CUDNN_CHECK
// name the op, the failing call and the library's own message. They use only the libraries'
// string functions, so this runs without a GPU; in a build without the CUDA backend this file
// holds no test, as cuda/check.h needs the CUDA headers.
#include "support/test_util.h"

#if defined(CT_WITH_CUDA)
#include "cuda/blas.h"
#include "cuda/check.h"

using namespace convtape;

TEST_CASE("CT_CUBLAS_CHECK and CT_CUDNN_CHECK report the op, the call and the library's message",
          "[cuda_check]") {
  const auto cublas_fails = [] { CT_CUBLAS_CHECK("gemm", CUBLAS_STATUS_INVALID_VALUE); };
  CT_REQUIRE_ERROR(cublas_fails(),
                   fmt::format("gemm: expected CUBLAS_STATUS_INVALID_VALUE to succeed, got cuBLAS "
                               "status 7 ({})",
                               cuda::blas::status_string(CUBLAS_STATUS_INVALID_VALUE)));
  // The text is cuBLAS's own: the library loads on demand (cuda/blas.h), also without a GPU.
  CHECK(std::string(cuda::blas::status_string(CUBLAS_STATUS_INVALID_VALUE)) ==
        std::string("an unsupported value or parameter was passed to the function"));
  const auto cudnn_fails = [] { CT_CUDNN_CHECK("conv", CUDNN_STATUS_BAD_PARAM); };
  CT_REQUIRE_ERROR(cudnn_fails(),
                   "conv: expected CUDNN_STATUS_BAD_PARAM to succeed, got cuDNN "
                   "status 2000 (CUDNN_STATUS_BAD_PARAM)");
  CHECK_NOTHROW([] { CT_CUDNN_CHECK("conv", CUDNN_STATUS_SUCCESS); }());
  const auto cuda_fails = [] { CT_CUDA_CHECK("copy", cudaErrorInvalidValue); };
  CT_REQUIRE_ERROR(cuda_fails(),
                   "copy: expected cudaErrorInvalidValue to succeed, got "
                   "cudaErrorInvalidValue");
}
#endif
