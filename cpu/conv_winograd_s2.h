// Winograd convolution on CPU for float32, stride-2 3x3 2-D convolutions, by phases. Along one
// axis a stride-2 3x3 correlation is two phase convolutions of the input: taps 0 and 2 read its
// even positions (a stride-1 2-tap correlation, computed as Winograd F(5, 2)), tap 1 its odd ones
// (a 1-tap product). One 5x5 output tile reads an 11x11 input tile (rows and columns 10 apart)
// and is computed from 11 x 11 = 121 transformed values per channel pair instead of 9 x 25 = 225
// multiplications; of the 121 transformed weights only 49 differ (an odd point's weight is the
// kernel's middle tap), so the 121 products of a block of tiles run as 49 GEMMs over channels.
//   forward          y = conv(x, w) + b
//   backward_weight  dw = the adjoint of conv in w with the same transforms, summed over tiles
// (The data gradient, a stride-2 transposed convolution, is phase_implicit's: its Winograd form
// would overlap-add neighbouring tiles.)
// Accuracy is a measured contract (tests/cpu/conv_winograd_test.cpp), the bound of
// cpu/conv_winograd.h; the results are not exact on small integers (the transform holds 1/6 and
// 1/24).
// Workspace: the per-thread GEMM buffers of cpu/gemm_driver.h (all four, on the calling thread and
// on every thread of its team), so a caller must not hold pointers into them across these calls.
#pragma once

#include <cstdint>

#include "core/kernel_args.h"

namespace convtape::cpu::winograd_s2 {

// True when the geometry is one these kernels compute (2-D, kernel 3x3, stride 2, dilation 1, no
// input dilation, padding 0..2 on each side) and, by the measured cost model, faster than the
// GEMM paths (channels per group, output size). The caller (cpu/conv_plan.h) also asks for
// float32, a forward or weight-gradient pass, and that the exact path is not forced.
bool applies(const ConvGeometry& g);

// The output tile's edge these kernels use for g (5 or 7: the fewer transformed points over the
// output), and the tiles of one output plane.
int tile(const ConvGeometry& g);
std::int64_t tiles(const ConvGeometry& g);

// Contiguous NCHW operands as in cpu/conv.h; b may be null. Preconditions: applies(g).
void forward(const float* x, const float* w, const float* b, float* y, const ConvGeometry& g);
void backward_weight(const float* dy, const float* x, float* dw, const ConvGeometry& g);

}  // namespace convtape::cpu::winograd_s2
