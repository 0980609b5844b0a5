// CT_CUDA_CHECK: turns a failing CUDA runtime call into a convtape::Error naming the call and
// CUDA's own error string. Only cuda/ includes this header.
#pragma once

#include <cuda_runtime.h>

#include "core/error.h"

#define CT_CUDA_CHECK(op, expr)                                                               \
  do {                                                                                        \
    const cudaError_t ct_status_ = (expr);                                                    \
    CT_CHECK(ct_status_ == cudaSuccess, "{}: expected {} to succeed, got {} ({})", op, #expr, \
             cudaGetErrorName(ct_status_), cudaGetErrorString(ct_status_));                   \
  } while (0)
