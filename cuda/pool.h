// CUDA pooling for any spatial rank with cpu/pool.h's contract and rules (first-index ties, NaN
// wins, padding never wins, ceil_mode, count_include_pad, divisor_override, adaptive windows).
// Plain C++ (no CUDA include); implemented in the CUDA backend library, libconvtape_cuda.so.
// The kernels' signatures and contracts: core/kernels.def (declared by cuda/backend_kernels.h).
#pragma once

#include <cstdint>

#include "core/kernel_args.h"
#include "core/tensor.h"
#include "cuda/backend_kernels.h"
