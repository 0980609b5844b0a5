// Winograd convolution on CPU for float32, stride-1 3x3 2-D convolutions: F(4x4, 3x3), 6x6 input
// tiles, 36 multiplications per 4x4 output tile and input/output channel pair instead of 144.
//   forward          y = conv(x, w) + b
//   backward_data    dx = the adjoint of conv in x, itself a stride-1 3x3 convolution of dy with
//                    the flipped, channel-swapped kernel and padding 2 - pad on each side
//   backward_weight  dw = the adjoint of conv in w, with the same transforms: per tile
//                    dw += G^T [(A dy A^T) . (B^T x B)] G, summed over tiles and samples
// The transformed tiles of a block of output tiles are multiplied as 36 independent GEMMs over
// channels, blocked so that the tiles stay in cache and the workspace stays bounded per thread.
// Accuracy is a measured contract (tests/cpu/conv_winograd_test.cpp): with L the reduction length
// and P the largest product of operand magnitudes, |result - exact| <= 4e-5 sqrt(L) P + 1e-4
// |exact|; the results are not exact on small integers (G holds 1/6 and 1/24).
// Workspace: the per-thread GEMM buffers of cpu/gemm_driver.h (all four, on the calling thread and
// on every thread of its team), so a caller must not hold pointers into them across these calls.
#pragma once

#include "core/kernel_args.h"

namespace convtape::cpu::winograd {

// True when the geometry is one these kernels compute (2-D, kernel 3x3, stride 1, dilation 1, no
// input dilation, padding within what they handle) and, by the measured cost model, faster than
// the GEMM paths (channels per group, output size). The caller (cpu/conv_plan.h) also asks for
// float32 and that the exact path is not forced.
bool applies(const ConvGeometry& g);

// Contiguous NCHW operands as in cpu/conv.h; b may be null. Preconditions: applies(g).
void forward(const float* x, const float* w, const float* b, float* y, const ConvGeometry& g);
void backward_data(const float* dy, const float* w, float* dx, const ConvGeometry& g);
void backward_weight(const float* dy, const float* x, float* dw, const ConvGeometry& g);

}  // namespace convtape::cpu::winograd
