// CUDA reductions over the middle axis of a contiguous device tensor viewed as [outer, mid, inner],
// with cpu/reduce.h's rules: sum accumulated in double, max / min where NaN wins and the first
// extreme element wins ties (its position along mid returned as int64 when asked for).
// Plain C++ (no CUDA include); implemented in the CUDA backend library, libconvtape_cuda.so.
// The kernels' signatures and contracts: core/kernels.def (declared by cuda/backend_kernels.h).
#pragma once

#include <cstdint>

#include "core/kernel_args.h"
#include "core/tensor.h"
#include "cuda/backend_kernels.h"
