// CPU reductions over the middle axis of a contiguous tensor viewed as [outer, mid, inner]:
// sum (accumulated in double), max and min (NaN wins; the first extreme element wins ties, and its
// position along mid is returned as int64 when asked for). The front end permutes any set of
// reduced dims into that middle block.
// The kernels' signatures and contracts: core/kernels.def (declared by cpu/backend_kernels.h).
#pragma once

#include <cstdint>

#include "core/kernel_args.h"
#include "core/tensor.h"
#include "cpu/backend_kernels.h"
