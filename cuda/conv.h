// CUDA convolution for any spatial rank, same contract as cpu/conv.h. Spatial ranks 1 to 3 run as
// cuDNN calls (rank 1 as rank 2 with a unit dimension); input dilation, negative padding and a
// high padding cuDNN's symmetric descriptor cannot express go through an explicitly dilated and
// padded copy of the input. Ranks above 3 run our own direct kernels.
// Plain C++ (no CUDA include); implemented in the CUDA backend library, libconvtape_cuda.so.
// The kernels' signatures and contracts: core/kernels.def (declared by cuda/backend_kernels.h).
#pragma once

#include <cstdint>

#include "core/kernel_args.h"
#include "core/tensor.h"
#include "cuda/backend_kernels.h"
