// cuBLAS, opened on first use instead of linked. Loading libcublas (and the libcublasLt it needs)
// maps and initialises about 200 MiB of kernel images at program start, which every program of a
// CUDA-enabled build would carry even when it never touches a GPU (a CPU training run's resident
// memory went from 54 MiB to 204 MiB). So the library is dlopen'ed the first time a cuBLAS handle
// is made, from the path CMake found at build time or else by its soname, and the few entry
// points the backend calls are taken from it. Only cuda/ includes this header.
#pragma once

#include <cublas_v2.h>

#include <string_view>

namespace convtape::cuda::blas {

struct Api {
  decltype(&cublasCreate_v2) create = nullptr;
  decltype(&cublasDestroy_v2) destroy = nullptr;
  decltype(&cublasGetVersion_v2) get_version = nullptr;
  decltype(&cublasSetMathMode) set_math_mode = nullptr;
  decltype(&cublasSgemmStridedBatched) sgemm_strided_batched = nullptr;
  decltype(&cublasDgemmStridedBatched) dgemm_strided_batched = nullptr;
  decltype(&cublasGetStatusString) get_status_string = nullptr;
};

// The entry points, loading the library on the first call; an Error naming op and the loader's
// message when it cannot be loaded.
const Api& api(std::string_view op);

// cuBLAS's text for a status, for error messages; never throws (loads the library if it can, and
// says so when it cannot).
const char* status_string(cublasStatus_t status) noexcept;

}  // namespace convtape::cuda::blas
