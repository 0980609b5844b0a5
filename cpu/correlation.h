// CPU kernels of the FlowNet correlation layer (cost volume), f1, f2 [N, C, H, W] -> y [N, D*D,
// H', W']. With both inputs zero-padded by `padding` (P1, P2), kernel radius r = (k - 1) / 2,
// border b = max_displacement + r, grid radius R = max_displacement / stride2, D = 2R + 1 and
// patch centre (cy, cx) = (y * stride1 + b, x * stride1 + b):
//   forward: y[n, (p + R) * D + (o + R), y, x] =
//              sum_{c, |i| <= r, |j| <= r} P1[n, c, cy + i, cx + j]
//                                          * P2[n, c, cy + i + p * stride2, cx + j + o * stride2]
//              / (k * k * C)
//   backward: df1 and df2 are the adjoints of the same sum.
// The inputs are copied once per call into zero-padded channels-last buffers [N, Hp, Wp, C], on
// which every (position, displacement) term is a contiguous dot product over channels (k * C
// values per patch row). Each pass is written as a gather onto rows it owns (forward: output rows;
// backward: rows of df1 or df2), parallel over (sample, row) without races, and the register-
// blocked inner kernels (AVX-512 / AVX2 / portable, the path of cpu::isa() read once per pass) keep
// several displacements in flight per load of the shared operand. Where the padded buffers would
// dwarf the inputs (a huge padding, kernel or displacement), direct loops over the taps inside both
// inputs run instead, so the work stays the output times min(k, H) * min(k, W) * C.
// The kernels' signatures and contracts: core/kernels.def (declared by cpu/backend_kernels.h).
#pragma once

#include <cstdint>

#include "core/kernel_args.h"
#include "core/tensor.h"
#include "cpu/backend_kernels.h"
