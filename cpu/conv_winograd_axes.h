// Winograd convolutions on CPU for float32 built from one transform per axis
// (cpu/conv_winograd_axes.cpp): along each axis of the output a tile of outputs is computed from a
// 1-D transform of its inputs, the 2-D transform being the two 1-D ones in turn, and the products
// of a block of tiles run as GEMMs over channels, one per distinct transformed weight.
//   winograd_s2  stride-2 3x3 2-D convolutions by phases: along each axis taps 0 and 2 read the
//                even inputs (a stride-1 2-tap correlation, Winograd F(M, 2)), tap 1 the odd
//                ones; an M x M output tile (M = 5 or 7) takes (2 M + 1)^2 products per channel
//                pair against 9 M^2 direct (1.86x and 1.96x fewer). Every pass: the data
//                gradient, a stride-2 transposed convolution, by output phases (2M x 2M tiles of
//                dx from (M + 1)^2 values of dy, the same products per tile).
//   winograd_1d  stride-1 1-D convolutions with kernel 3 (F(6, 3): 8 products per 6 outputs
//                against 18) or 5 (F(4, 5): 8 per 4 against 20); forward, data gradient (a
//                stride-1 convolution of dy with the flipped, channel-swapped kernel) and weight
//                gradient.
//   winograd_kxk stride-1 2-D 5x5 and 7x7 convolutions: F(4x4, 5x5), 64 products per 4x4 tile
//                against 400, and F(2x2, 7x7), 64 per 2x2 tile against 196; every pass as
//                winograd_1d.
// Accuracy is a measured contract (tests/cpu/conv_winograd_axes_test.cpp), the bound of
// cpu/conv_winograd.h; results are not exact on small integers (the transforms hold 1/6, 2/9,
// 1/90 and 32/45).
// Workspace: the per-thread GEMM buffers of cpu/gemm_driver.h (all four, on the calling thread and
// on every thread of its team), so a caller must not hold pointers into them across these calls.
#pragma once

#include <cstdint>

#include "core/kernel_args.h"

namespace convtape::cpu::winograd_s2 {

// True when the geometry is one these kernels compute (2-D, kernel 3x3, stride 2, dilation 1, no
// input dilation, padding 0..2 on each side) and, by the measured cost model, faster than the
// GEMM paths (channels per group, output size). The caller (cpu/conv_plan.h) also asks for
// float32, a path and pass where it pays (measured per ISA) and that the exact path is not forced.
bool applies(const ConvGeometry& g);

// The output tile's edge these kernels use for g (5 or 7: the fewer transformed points over the
// output), and the tiles of one output plane.
int tile(const ConvGeometry& g);
std::int64_t tiles(const ConvGeometry& g);

// The data gradient (a stride-2 transposed convolution) by output phases: 2M x 2M tiles of dx
// (M = data_tile(g), 5 or 7) from (M + 1)^2 values of dy, the same (2 M + 1)^2 products per tile
// and channel pair. applies_data: applies(g), the same padding parity on both axes (one scheme
// per parity) and tiles of dx that keep the saving.
bool applies_data(const ConvGeometry& g);
int data_tile(const ConvGeometry& g);
std::int64_t data_tiles(const ConvGeometry& g);

// Contiguous NCHW operands as in cpu/conv.h; b may be null. Preconditions: applies(g)
// (backward_data: applies_data(g)).
void forward(const float* x, const float* w, const float* b, float* y, const ConvGeometry& g);
void backward_data(const float* dy, const float* w, float* dx, const ConvGeometry& g);
void backward_weight(const float* dy, const float* x, float* dw, const ConvGeometry& g);

}  // namespace convtape::cpu::winograd_s2

namespace convtape::cpu::winograd_1d {

// True for 1-D stride-1 convolutions with kernel 3 or 5, dilation 1, no input dilation, padding
// 0 .. k - 1 on each side, with enough channels per group and outputs to fill the tiles. The
// caller (cpu/conv_plan.h) also asks for float32 and that the exact path is not forced.
bool applies(const ConvGeometry& g);

// Outputs per tile (6 for kernel 3, 4 for kernel 5) and the tiles of one output line.
int tile(const ConvGeometry& g);
std::int64_t tiles(const ConvGeometry& g);

// Contiguous NCL operands as in cpu/conv.h; b may be null. Preconditions: applies(g).
void forward(const float* x, const float* w, const float* b, float* y, const ConvGeometry& g);
void backward_data(const float* dy, const float* w, float* dx, const ConvGeometry& g);
void backward_weight(const float* dy, const float* x, float* dw, const ConvGeometry& g);

}  // namespace convtape::cpu::winograd_1d

namespace convtape::cpu::winograd_kxk {

// True for 2-D stride-1 5x5 or 7x7 convolutions (dilation 1, no input dilation, padding 0 .. k - 1
// on each side) with enough channels per group and outputs to fill the tiles: F(4x4, 5x5), 64
// products per 4x4 tile against 400, or F(2x2, 7x7), 64 per 2x2 tile against 196. The caller
// (cpu/conv_plan.h) also asks for float32 and that the exact path is not forced.
bool applies(const ConvGeometry& g);

// The output tile's edge (4 for 5x5 kernels, 2 for 7x7) and the tiles of one output plane.
int tile(const ConvGeometry& g);
std::int64_t tiles(const ConvGeometry& g);

// Contiguous NCHW operands as in cpu/conv.h; b may be null. Preconditions: applies(g).
void forward(const float* x, const float* w, const float* b, float* y, const ConvGeometry& g);
void backward_data(const float* dy, const float* w, float* dx, const ConvGeometry& g);
void backward_weight(const float* dy, const float* x, float* dw, const ConvGeometry& g);

}  // namespace convtape::cpu::winograd_kxk
