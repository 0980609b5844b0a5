// CPU pooling kernels for any spatial rank, on contiguous planes p = (n, c) of x [N, C, *in]:
//   max:      y[p, o] = max_{r, valid} x[p, w(o, r)],  index[p, o] = flat in-plane argmax
//   avg:      y[p, o] = sum_{r, valid} x[p, w(o, r)] / divisor(o)
//   unpool:   y[p, index[p, o]] = x[p, o]  (zeros elsewhere)
// where the window of output o along dim d is w = o * stride - pad_lo + r * dilation for
// r in [0, kernel) (taps in the padding are skipped), or, for adaptive pooling, the input range
// [floor(o * in / out), ceil((o + 1) * in / out)).
// Max takes the first maximal element in the window's row-major order; a NaN wins over any number
// and the first NaN is kept. The argmax starts at the window's first element inside the input
// (PyTorch's rule), so a window of -inf values gives -inf and that element's index, and its
// gradient goes there; a window with no element inside the input (dilated taps that all land in
// the padding, which ops/pool.cpp refuses) gives -inf and index -1. Loops run over each window's
// overlap with the input, not over the nominal kernel, so a kernel of 2^62 costs what the input
// costs.
// Planes run in parallel (OpenMP); inner loops run along contiguous output lines and are compiled
// for AVX-512, AVX2 and plain x86-64; each op takes the path cpu::isa() names at its start
// (cpu/isa.h).
// The kernels' signatures and contracts: core/kernels.def (declared by cpu/backend_kernels.h).
#pragma once

#include <cstdint>

#include "core/kernel_args.h"
#include "core/tensor.h"
#include "cpu/backend_kernels.h"
