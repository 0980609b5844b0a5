// The CPU backend's kernels: one declaration per entry of core/kernels.def, which documents
// each. Their implementations live in cpu/<area>.cpp.
#pragma once

#include <cstdint>

#include "core/kernel_args.h"
#include "core/tensor.h"

namespace convtape::cpu {

#define CT_DEFAULT(value) = value
#define CT_KERNEL(Ret, name, Params, Args, first, op) Ret name Params;
#include "core/kernels.def"
#undef CT_KERNEL
#undef CT_DEFAULT

}  // namespace convtape::cpu
