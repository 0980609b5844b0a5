// CUDA batched matrix product through cuBLAS (row-major operands handed over as their transposes).
// Plain C++: any folder may include it. A build without CUDA links cuda/no_cuda.cpp, whose
// versions throw "<op>: this build has no CUDA support".
#pragma once

#include <cstdint>

#include "core/kernel_args.h"
#include "core/tensor.h"

namespace convtape::cuda {

// a [B, M, K] and b [B, K, N], device tensors of one floating dtype, each contiguous or the
// transpose of a contiguous batch -> [B, M, N] (cpu::bmm's contract).
Tensor bmm(const Tensor& a, const Tensor& b);

}  // namespace convtape::cuda
