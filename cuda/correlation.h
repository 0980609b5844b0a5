// CUDA kernels of the FlowNet correlation layer, with cpu/correlation.h's definition: forward, and
// the two gradients written as gathers onto the elements each thread owns (no atomics).
// Plain C++ (no CUDA include); implemented in the CUDA backend library, libconvtape_cuda.so.
// The kernels' signatures and contracts: core/kernels.def (declared by cuda/backend_kernels.h).
#pragma once

#include <cstdint>

#include "core/kernel_args.h"
#include "core/tensor.h"
#include "cuda/backend_kernels.h"
