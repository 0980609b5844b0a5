// CUDA elementwise kernels (cuda/elementwise.cu): the same unary and broadcasting binary maps as
// cpu/elementwise.h, over strided operands, and the optimizers' in-place axpy_ / scale_. Results
// are new contiguous device tensors of the operands' dtype. Plain C++ (no CUDA include);
// implemented in the CUDA backend library, libconvtape_cuda.so.
// The kernels' signatures and contracts: core/kernels.def (declared by cuda/backend_kernels.h).
#pragma once

#include <cstdint>

#include "core/kernel_args.h"
#include "core/tensor.h"
#include "cuda/backend_kernels.h"
