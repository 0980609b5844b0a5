// CT_CUDA_CHECK, CT_CUBLAS_CHECK, CT_CUDNN_CHECK: turn a failing CUDA runtime, cuBLAS or cuDNN call
// into a convtape::Error naming the op, the failing expression and the library's own error
// string. Only cuda/ includes this header.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "core/error.h"
#include "cuda/blas.h"

#define CT_CUDA_CHECK(op, expr)                                                               \
  do {                                                                                        \
    const cudaError_t ct_status_ = (expr);                                                    \
    CT_CHECK(ct_status_ == cudaSuccess, "{}: expected {} to succeed, got {} ({})", op, #expr, \
             cudaGetErrorName(ct_status_), cudaGetErrorString(ct_status_));                   \
  } while (0)

#define CT_CUBLAS_CHECK(op, expr)                                                              \
  do {                                                                                         \
    const cublasStatus_t ct_status_ = (expr);                                                  \
    CT_CHECK(ct_status_ == CUBLAS_STATUS_SUCCESS,                                              \
             "{}: expected {} to succeed, got cuBLAS status {} ({})", op, #expr,               \
             static_cast<int>(ct_status_), ::convtape::cuda::blas::status_string(ct_status_)); \
  } while (0)

#define CT_CUDNN_CHECK(op, expr)                                                \
  do {                                                                          \
    const cudnnStatus_t ct_status_ = (expr);                                    \
    CT_CHECK(ct_status_ == CUDNN_STATUS_SUCCESS,                                \
             "{}: expected {} to succeed, got cuDNN status {} ({})", op, #expr, \
             static_cast<int>(ct_status_), cudnnGetErrorString(ct_status_));    \
  } while (0)
