// CUDA comparison and selection kernels (cuda/select.cu): the same compare maps, where select,
// nonzero positions and top-k as cpu/select.h, on device tensors. Plain C++ (no CUDA include);
// implemented in the CUDA backend library, libconvtape_cuda.so.
// The kernels' signatures and contracts: core/kernels.def (declared by cuda/backend_kernels.h).
#pragma once

#include <cstdint>

#include "core/kernel_args.h"
#include "core/tensor.h"
#include "cuda/backend_kernels.h"
