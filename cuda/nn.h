// CUDA softmax / log-softmax over one axis, negative log-likelihood with integer labels, and
// index_select / index_add along one dim: the same contracts as cpu/nn.h on device tensors.
// Plain C++ (no CUDA include); implemented in the CUDA backend library, libconvtape_cuda.so.
// The kernels' signatures and contracts: core/kernels.def (declared by cuda/backend_kernels.h).
#pragma once

#include <cstdint>

#include "core/kernel_args.h"
#include "core/tensor.h"
#include "cuda/backend_kernels.h"
