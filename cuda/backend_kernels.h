// The CUDA backend's kernels: one declaration per entry of core/kernels.def, which documents
// each. Plain C++: any folder may include it. They live in the CUDA backend library
// (libconvtape_cuda.so), which hands them to libconvtape through cuda/backend_table.h.
#pragma once

#include <cstdint>

#include "core/kernel_args.h"
#include "core/tensor.h"

namespace convtape::cuda {

#define CT_DEFAULT(value) = value
#define CT_KERNEL(Ret, name, Params, Args, first, op) Ret name Params;
#include "core/kernels.def"
#undef CT_KERNEL
#undef CT_DEFAULT

}  // namespace convtape::cuda
