// The front ends' one door to the kernels: each function runs the CPU or the CUDA kernel of the
// same name by the device of its first tensor operand, one per entry of core/kernels.def (both
// backends implement that list). CPU kernels are called directly; CUDA kernels through the table
// of the CUDA backend library (cuda/backend_table.h), which is loaded by the time a CUDA tensor
// exists, and whose absence reads "convtape: this installation has no CUDA backend (...)". The
// front ends have already checked that every operand lives on that one device.
#pragma once

#include <cstdint>

#include "core/kernel_args.h"
#include "core/tensor.h"
#include "cpu/backend_kernels.h"
#include "cuda/backend_table.h"

namespace convtape::backend {

// One dispatcher per entry of core/kernels.def: the CUDA kernel for a CUDA first operand, else the
// CPU one (the same signature, defaults included).
#define CT_DEFAULT(value) = value
#define CT_KERNEL(Ret, name, Params, Args, first, op)                      \
  inline Ret name Params {                                                 \
    return (first).is_cuda() ? cuda::backend().name Args : cpu::name Args; \
  }
#include "core/kernels.def"
#undef CT_KERNEL
#undef CT_DEFAULT

}  // namespace convtape::backend
