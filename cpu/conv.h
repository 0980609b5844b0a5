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
// The kernels' signatures and contracts: core/kernels.def (declared by cpu/backend_kernels.h).
#pragma once

#include <cstdint>

#include "core/kernel_args.h"
#include "core/tensor.h"
#include "cpu/backend_kernels.h"
