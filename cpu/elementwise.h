// CPU elementwise kernels: unary maps with up to two scalar parameters, and broadcasting binary
// maps, including the fused gradient maps that backward closures use (dy and a saved tensor in,
// dx out). Results are new contiguous tensors of the operands' dtype.
// The kernels' signatures and contracts: core/kernels.def (declared by cpu/backend_kernels.h).
#pragma once

#include "core/kernel_args.h"
#include "core/tensor.h"
#include "cpu/backend_kernels.h"
