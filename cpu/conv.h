// CPU convolution kernels for any spatial rank, as implicit or blocked im2col GEMM:
//   y[n, k, o] = sum over c in group(k) and taps r of
//                w[k, c, r] * x~[n, c, o * stride + r * dilation - pad_lo]
// where x~ is x dilated by input_dilation (holes read as 0) and padded (outside reads as 0). The
// data gradient is the adjoint (col2im of W^T dy, or for unit and strided convolutions without
// input dilation one forward convolution of dy per stride phase), the weight gradient
// dw = sum_n dy col(x)^T. A tile of output positions is unfolded straight into the packed GEMM
// panel (cpu/gemm_driver.h) or read through row pointers from a padded copy of one sample, so no
// column matrix is ever materialised and the workspace stays a few MiB per thread whatever the
// input size; 1x1 stride-1 convolutions read the input as the GEMM operand directly.
// The plans that copy padded data (implicit GEMM, padded depthwise planes, the stride phases of the
// data gradient) size it in checked arithmetic and are taken only while it stays within a constant
// factor of the input and output; past that (a huge padding, stride or dilation) the direct or
// im2col kernels run, whose work is the output times the kernel's taps.
// Each call is planned first (cpu/conv_plan.h: a pure function of the geometry, the pass, the
// dtype, the ISA path and the threads picks the path, its tiles and its workspace), then run by
// that path (cpu/conv_paths.h lists them, one file each). CONVTAPE_CONV_VERBOSE=1 prints each
// call's plan to stderr.
#pragma once

#include <cstdint>

#include "core/kernel_args.h"
#include "core/tensor.h"

namespace convtape::cpu {

using convtape::ConvGeometry;

// x [N, C, *in], w [K, C/groups, *kernel], b [K] or undefined -> y [N, K, *out]. Contiguous inputs.
Tensor conv_forward(const Tensor& x, const Tensor& w, const Tensor& b, const ConvGeometry& g);
// dy [N, K, *out], w -> dx [N, C, *in], plus b[c] on channel c where b [C] is defined (a
// transposed conv's bias, added as the values are written where the path allows).
Tensor conv_backward_data(const Tensor& dy, const Tensor& w, const ConvGeometry& g,
                          const Tensor& b = Tensor());
// dy [N, K, *out], x [N, C, *in] -> dw [K, C/groups, *kernel].
Tensor conv_backward_weight(const Tensor& dy, const Tensor& x, const ConvGeometry& g);

}  // namespace convtape::cpu
