// How the CUDA backend runs a ConvGeometry (x [N, C, *in], w [K, C/groups, *kernel] ->
// y [N, K, *out]): a pure function of the geometry, so the CPU test suite can prove it.
//
// cuDNN's legacy convolution takes one symmetric padding per dim and no input dilation, and
// computes out' = (in + 2 pad - dilation (kernel - 1) - 1) / stride + 1 itself. When the geometry
// has input dilation, a negative low padding, or an out' (with pad = pad_lo) different from ours,
// cuDNN runs instead on x~ [N, C, *P]: x dilated by input_dilation and padded, pad_lo below
// (cropping when negative) and exactly P = (out - 1) stride + dilation (kernel - 1) + 1 in all, so
// that an unpadded cuDNN convolution of x~ gives `out` and reads x~ wherever ours reads x's
// dilated, padded coordinates. Spatial rank 1 runs as rank 2 with a leading unit dim; ranks above
// 3 (cuDNN's legacy limit here) and samples too large for cuDNN's int sizes run the direct kernels
// of cuda/conv_body.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>

#include "core/checked.h"
#include "core/error.h"
#include "core/kernel_args.h"
#include "cuda/conv_body.h"

namespace convtape::cuda {

// The geometry as the kernels' fixed arrays.
inline ConvDims conv_dims(const ConvGeometry& g) {
  const std::int64_t s = g.spatial();
  CT_CHECK(s >= 1 && s <= kMaxConvDims,
           "conv: expected 1 to {} spatial dims for the CUDA kernels, got {}", kMaxConvDims, s);
  ConvDims d;
  d.s = static_cast<int>(s);
  d.batch = g.batch;
  d.channels = g.channels;
  d.out_channels = g.out_channels;
  d.groups = g.groups;
  for (std::size_t i = 0; i < static_cast<std::size_t>(s); ++i) {
    d.in[i] = g.in[i];
    d.out[i] = g.out[i];
    d.kernel[i] = g.kernel[i];
    d.stride[i] = g.stride[i];
    d.dilation[i] = g.dilation[i];
    d.input_dilation[i] = g.input_dilation[i];
    d.pad_lo[i] = g.pad_lo[i];
    d.in_numel *= g.in[i];
    d.out_numel *= g.out[i];
    d.kernel_numel *= g.kernel[i];
  }
  return d;
}

// The output size cuDNN computes for one dim with symmetric padding `pad` (0 when nothing fits,
// -1 when in + 2 * pad overflows int64: no int-sized cuDNN call could take it, so the plan then
// materialises or runs the direct kernels). dilation * (kernel - 1) fits: the front end checked it.
inline std::int64_t cudnn_out_size(std::int64_t in, std::int64_t pad, std::int64_t kernel,
                                   std::int64_t stride, std::int64_t dilation) {
  const auto twice = checked::try_mul(pad, 2);
  const auto padded = twice ? checked::try_add(in, *twice) : std::nullopt;
  if (!padded) return -1;
  const std::int64_t room = *padded - dilation * (kernel - 1) - 1;
  return room < 0 ? 0 : room / stride + 1;
}

struct ConvPlan {
  bool direct = false;       // our own kernels run the geometry as it is
  bool materialise = false;  // cuDNN runs on x~, which `pad` describes
  bool lifted = false;       // spatial rank 1 runs as rank 2
  ConvPadDims pad;           // x [N * C, *in] -> x~ [N * C, *P], in the geometry's own rank
  // What cuDNN runs (unless direct): rank 2 or 3, no input dilation, pad_lo >= 0 taken as the
  // symmetric padding, in = P when materialised, and cudnn_out_size(...) == out in every dim.
  ConvGeometry cudnn;
  // Samples per cuDNN call, so that every tensor of a call has fewer than 2^31 elements (cuDNN's
  // int sizes and strides); the batch runs in slices of this many.
  std::int64_t batch_chunk = 1;
};

inline ConvPlan plan_conv(const ConvGeometry& g) {
  constexpr std::int64_t kIntMax = std::numeric_limits<int>::max();
  const std::size_t s = g.in.size();
  ConvPlan plan;
  if (s > 3) {
    plan.direct = true;
    return plan;
  }
  for (std::size_t d = 0; d < s; ++d)
    plan.materialise =
        plan.materialise || g.input_dilation[d] != 1 || g.pad_lo[d] < 0 ||
        cudnn_out_size(g.in[d], g.pad_lo[d], g.kernel[d], g.stride[d], g.dilation[d]) != g.out[d];
  ConvGeometry c = g;
  c.input_dilation.assign(s, 1);
  if (plan.materialise) {
    ConvPadDims& p = plan.pad;
    p.s = static_cast<int>(s);
    p.rows = g.batch * g.channels;
    for (std::size_t d = 0; d < s; ++d) {
      p.in[d] = g.in[d];
      p.padded[d] = (g.out[d] - 1) * g.stride[d] + g.dilation[d] * (g.kernel[d] - 1) + 1;
      p.input_dilation[d] = g.input_dilation[d];
      p.pad_lo[d] = g.pad_lo[d];
      p.in_numel *= p.in[d];
      // May wrap for a huge x~; such a plan is replaced by the direct one below before use.
      p.padded_numel = checked::try_mul(p.padded_numel, p.padded[d]).value_or(0);
      c.in[d] = p.padded[d];
      c.pad_lo[d] = 0;
    }
  }
  if (s == 1) {
    plan.lifted = true;
    for (Shape* v : {&c.in, &c.out, &c.kernel, &c.stride, &c.dilation, &c.input_dilation})
      v->insert(v->begin(), 1);
    c.pad_lo.insert(c.pad_lo.begin(), 0);
  }
  plan.cudnn = c;

  // cuDNN describes every size, stride and count as an int: one sample of each tensor must fit,
  // and the batch is sliced so that a slice does too. A materialised x~ may be far larger than x
  // (a huge padding or stride), so its size is checked arithmetic; y and w are real tensors.
  const auto x_plane = checked::try_numel(c.in);
  const auto x_sample = x_plane ? checked::try_mul(c.channels, *x_plane) : std::nullopt;
  const std::int64_t y_sample = c.out_channels * c.out_numel();
  const std::int64_t w_numel = c.out_channels * c.group_channels() * c.kernel_numel();
  const std::int64_t sample = !x_sample ? kIntMax + 1 : *x_sample > y_sample ? *x_sample : y_sample;
  if (sample > kIntMax || w_numel > kIntMax) {
    plan = ConvPlan{};
    plan.direct = true;
    return plan;
  }
  plan.batch_chunk = sample == 0 ? g.batch : kIntMax / sample;
  if (plan.batch_chunk > g.batch) plan.batch_chunk = g.batch;
  if (plan.batch_chunk < 1) plan.batch_chunk = 1;
  return plan;
}

// How the direct weight gradient splits its N * out (sample, position) pairs: enough work items
// to fill a GPU (about 2^16) when the weight has fewer elements, at least 1024 pairs per item.
struct WeightGradSplit {
  std::int64_t chunks = 1, chunk_len = 0;
};

inline WeightGradSplit weight_grad_split(const ConvDims& d, std::int64_t target_items = 1 << 16,
                                         std::int64_t min_chunk = 1024) {
  const std::int64_t pairs = d.batch * d.out_numel, wn = d.weight_numel();
  WeightGradSplit split;
  split.chunk_len = pairs;
  if (wn <= 0 || pairs <= min_chunk || wn >= target_items) return split;
  std::int64_t chunks = target_items / wn;
  const std::int64_t most = pairs / min_chunk;
  if (chunks > most) chunks = most;
  if (chunks <= 1) return split;
  split.chunk_len = (pairs + chunks - 1) / chunks;
  split.chunks = (pairs + split.chunk_len - 1) / split.chunk_len;
  return split;
}

}  // namespace convtape::cuda
