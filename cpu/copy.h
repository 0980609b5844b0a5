// CPU copies: strided (and broadcast) source into a strided destination with dtype conversion,
// and fill. These back contiguous(), clone(), to(dtype), copy_(), expand materialisation and cat.
// The kernels' signatures and contracts: core/kernels.def (declared by cpu/backend_kernels.h).
#pragma once

#include "core/tensor.h"
#include "cpu/backend_kernels.h"
