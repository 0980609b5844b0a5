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
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace convtape::cpu {

// A fully resolved convolution: every per-dim vector has one entry per spatial dim. Only pad_lo
// enters the index maths; out fixes the output size (callers derive it, including pad_hi).
struct ConvGeometry {
  std::int64_t batch = 0, channels = 0, out_channels = 0, groups = 1;
  Shape in, out, kernel;
  Shape stride, dilation, input_dilation, pad_lo;

  std::int64_t spatial() const { return static_cast<std::int64_t>(in.size()); }
  std::int64_t in_numel() const { return numel(in); }
  std::int64_t out_numel() const { return numel(out); }
  std::int64_t kernel_numel() const { return numel(kernel); }
  std::int64_t group_channels() const { return channels / groups; }
  std::int64_t group_out_channels() const { return out_channels / groups; }
  // 1x1 kernel, unit strides and dilations, no padding: the input is already the column matrix.
  bool pointwise() const;
};

// x [N, C, *in], w [K, C/groups, *kernel], b [K] or undefined -> y [N, K, *out]. Contiguous inputs.
Tensor conv_forward(const Tensor& x, const Tensor& w, const Tensor& b, const ConvGeometry& g);
// dy [N, K, *out], w -> dx [N, C, *in].
Tensor conv_backward_data(const Tensor& dy, const Tensor& w, const ConvGeometry& g);
// dy [N, K, *out], x [N, C, *in] -> dw [K, C/groups, *kernel].
Tensor conv_backward_weight(const Tensor& dy, const Tensor& x, const ConvGeometry& g);

}  // namespace convtape::cpu
