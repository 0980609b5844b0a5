// CUDA copies: a strided (and broadcast) device source into a strided device destination with dtype
// conversion, and fill of a strided destination; the device side of cpu/copy.h.
// Plain C++ (no CUDA include); implemented in the CUDA backend library, libconvtape_cuda.so.
// The kernels' signatures and contracts: core/kernels.def (declared by cuda/backend_kernels.h).
#pragma once

#include <cstdint>

#include "core/kernel_args.h"
#include "core/tensor.h"
#include "cuda/backend_kernels.h"
