// The convolution kernels of the CUDA backend as functors over one output element (or work item)
// each, written once for the device and for the host tests (cuda/device_fn.h). Shapes: x [N, C,
// *in], w [K, C/groups, *kernel], y / dy [N, K, *out]; every buffer contiguous. With x~ the input
// dilated by input_dilation (holes read 0) and padded (pad_lo below, anything outside reads 0):
//   y[n, k, o]   = b[k] + sum over c in group(k), taps r of
//                  w[k, c, r] * x~[n, c, o * stride + r * dilation - pad_lo]
//   dx[n, c, i]  = sum over k in group(c), taps r with o = (i * input_dilation + pad_lo
//                  - r * dilation) / stride an integer in [0, out) of dy[n, k, o] * w[k, c, r]
//   dw[k, c, r]  = sum over n, o of dy[n, k, o] * x~[n, group(k) * C/groups + c, ...]
// The direct kernels serve spatial ranks above cuDNN's 3 (and inputs too large for its int
// sizes); ConvPad / ConvUnpad build x~ for cuDNN when its symmetric padding cannot
// express the geometry, and gather the data gradient back; ConvAddBias adds b after cuDNN.
#pragma once

#include <cstdint>

#include "cuda/device_fn.h"

namespace convtape::cuda {

// The front ends allow up to 8 spatial dims.
inline constexpr int kMaxConvDims = 8;

// ConvGeometry as fixed arrays, copyable to the device by value (cuda/conv_plan.h builds it).
struct ConvDims {
  int s = 0;  // spatial rank
  std::int64_t batch = 0, channels = 0, out_channels = 0, groups = 1;
  std::int64_t in[kMaxConvDims] = {}, out[kMaxConvDims] = {}, kernel[kMaxConvDims] = {};
  std::int64_t stride[kMaxConvDims] = {}, dilation[kMaxConvDims] = {};
  std::int64_t input_dilation[kMaxConvDims] = {}, pad_lo[kMaxConvDims] = {};
  std::int64_t in_numel = 1, out_numel = 1, kernel_numel = 1;

  CT_HD std::int64_t group_channels() const { return channels / groups; }
  CT_HD std::int64_t group_out_channels() const { return out_channels / groups; }
  CT_HD std::int64_t weight_numel() const { return out_channels * group_channels() * kernel_numel; }

  // Offset within one input plane of the element that output position `o` reads through tap
  // `r` (both flat, row-major), or -1 when that lands in padding or a dilation hole.
  CT_HD std::int64_t input_offset(std::int64_t o, std::int64_t r) const {
    std::int64_t off = 0, scale = 1;
    for (int d = s - 1; d >= 0; --d) {
      const std::int64_t od = o % out[d], rd = r % kernel[d];
      o /= out[d];
      r /= kernel[d];
      std::int64_t t = od * stride[d] + rd * dilation[d] - pad_lo[d];
      if (t < 0 || t % input_dilation[d] != 0) return -1;
      t /= input_dilation[d];
      if (t >= in[d]) return -1;
      off += t * scale;
      scale *= in[d];
    }
    return off;
  }

  // Offset within one output plane of the position that reads input element `i` through tap
  // `r`, or -1 when no output position does.
  CT_HD std::int64_t output_offset(std::int64_t i, std::int64_t r) const {
    std::int64_t off = 0, scale = 1;
    for (int d = s - 1; d >= 0; --d) {
      const std::int64_t id = i % in[d], rd = r % kernel[d];
      i /= in[d];
      r /= kernel[d];
      const std::int64_t t = id * input_dilation[d] + pad_lo[d] - rd * dilation[d];
      if (t < 0 || t % stride[d] != 0) return -1;
      const std::int64_t od = t / stride[d];
      if (od >= out[d]) return -1;
      off += od * scale;
      scale *= out[d];
    }
    return off;
  }
};

// y [N, K, *out], one thread per output element; b may be null.
template <class T>
struct ConvForwardDirect {
  const T* x;
  const T* w;
  const T* b;
  T* y;
  ConvDims g;

  CT_HD void operator()(std::int64_t i) const {
    const std::int64_t p = i % g.out_numel, nk = i / g.out_numel;
    const std::int64_t k = nk % g.out_channels, n = nk / g.out_channels;
    const std::int64_t cg = g.group_channels(), c0 = (k / g.group_out_channels()) * cg;
    const T* xn = x + (n * g.channels + c0) * g.in_numel;
    const T* wk = w + k * cg * g.kernel_numel;
    T acc = T(0);
    for (std::int64_t r = 0; r < g.kernel_numel; ++r) {
      const std::int64_t off = g.input_offset(p, r);
      if (off < 0) continue;
      for (std::int64_t c = 0; c < cg; ++c)
        acc += wk[c * g.kernel_numel + r] * xn[c * g.in_numel + off];
    }
    y[i] = b ? acc + b[k] : acc;
  }
};

// dx [N, C, *in], one thread per input element: a gather over the taps that read it, so no
// atomics are needed and the result is deterministic.
template <class T>
struct ConvBackwardDataDirect {
  const T* dy;
  const T* w;
  T* dx;
  ConvDims g;

  CT_HD void operator()(std::int64_t i) const {
    const std::int64_t q = i % g.in_numel, nc = i / g.in_numel;
    const std::int64_t c = nc % g.channels, n = nc / g.channels;
    const std::int64_t cg = g.group_channels(), kg = g.group_out_channels();
    const std::int64_t k0 = (c / cg) * kg, ci = c % cg;
    const T* dyn = dy + (n * g.out_channels + k0) * g.out_numel;
    const T* wc = w + (k0 * cg + ci) * g.kernel_numel;
    T acc = T(0);
    for (std::int64_t r = 0; r < g.kernel_numel; ++r) {
      const std::int64_t off = g.output_offset(q, r);
      if (off < 0) continue;
      for (std::int64_t k = 0; k < kg; ++k)
        acc += dyn[k * g.out_numel + off] * wc[k * cg * g.kernel_numel + r];
    }
    dx[i] = acc;
  }
};

// The weight gradient, split into `chunks` slices of the N * out (sample, position) pairs so that
// a small kernel over a large input still spreads over many threads: work item
// i = chunk * weight_numel + weight element writes its slice's partial sum to partial[i]. With one
// chunk, partial is dw itself; otherwise ConvChunkSum adds the slices in a fixed order.
template <class T>
struct ConvBackwardWeightDirect {
  const T* dy;
  const T* x;
  T* partial;
  ConvDims g;
  std::int64_t chunk_len = 0;  // pairs per chunk; the last chunk may be shorter

  CT_HD void operator()(std::int64_t i) const {
    const std::int64_t wn = g.weight_numel();
    const std::int64_t e = i % wn, chunk = i / wn;
    const std::int64_t cg = g.group_channels();
    const std::int64_t r = e % g.kernel_numel, kc = e / g.kernel_numel;
    const std::int64_t ci = kc % cg, k = kc / cg;
    const std::int64_t c = (k / g.group_out_channels()) * cg + ci;
    const std::int64_t pairs = g.batch * g.out_numel;
    const std::int64_t first = chunk * chunk_len;
    const std::int64_t last = first + chunk_len < pairs ? first + chunk_len : pairs;
    T acc = T(0);
    for (std::int64_t q = first; q < last; ++q) {
      const std::int64_t n = q / g.out_numel, p = q % g.out_numel;
      const std::int64_t off = g.input_offset(p, r);
      if (off < 0) continue;
      acc += dy[(n * g.out_channels + k) * g.out_numel + p] *
             x[(n * g.channels + c) * g.in_numel + off];
    }
    partial[i] = acc;
  }
};

// out[i] = sum over c < chunks of partial[c * n + i], in order of c.
template <class T>
struct ConvChunkSum {
  const T* partial;
  T* out;
  std::int64_t chunks = 1, n = 0;

  CT_HD void operator()(std::int64_t i) const {
    T acc = T(0);
    for (std::int64_t c = 0; c < chunks; ++c) acc += partial[c * n + i];
    out[i] = acc;
  }
};

// The dilated, padded copy x~ [rows, *padded] of x [rows, *in] (rows = N * C): element p of a
// padded plane holds x at dilated coordinate t = p - pad_lo when t is a multiple of
// input_dilation inside the input, else 0. pad_lo may be negative (the low side is cropped), and
// padded may end before the dilated input does (the high side is cropped).
struct ConvPadDims {
  int s = 0;
  std::int64_t rows = 0;
  std::int64_t in[kMaxConvDims] = {}, padded[kMaxConvDims] = {};
  std::int64_t input_dilation[kMaxConvDims] = {}, pad_lo[kMaxConvDims] = {};
  std::int64_t in_numel = 1, padded_numel = 1;
};

// One thread per element of x~.
template <class T>
struct ConvPad {
  const T* x;
  T* xt;
  ConvPadDims g;

  CT_HD void operator()(std::int64_t i) const {
    std::int64_t p = i % g.padded_numel;
    const std::int64_t row = i / g.padded_numel;
    std::int64_t off = 0, scale = 1;
    for (int d = g.s - 1; d >= 0; --d) {
      std::int64_t t = p % g.padded[d] - g.pad_lo[d];
      p /= g.padded[d];
      if (t < 0 || t % g.input_dilation[d] != 0 || t / g.input_dilation[d] >= g.in[d]) {
        xt[i] = T(0);
        return;
      }
      t /= g.input_dilation[d];
      off += t * scale;
      scale *= g.in[d];
    }
    xt[i] = x[row * g.in_numel + off];
  }
};

// The adjoint of ConvPad: dx [rows, *in] from dx~ [rows, *padded], one thread per element of
// dx. Each input element sits at exactly one place of x~ (or was cropped away: gradient 0).
template <class T>
struct ConvUnpad {
  const T* dxt;
  T* dx;
  ConvPadDims g;

  CT_HD void operator()(std::int64_t i) const {
    std::int64_t q = i % g.in_numel;
    const std::int64_t row = i / g.in_numel;
    std::int64_t off = 0, scale = 1;
    for (int d = g.s - 1; d >= 0; --d) {
      const std::int64_t p = (q % g.in[d]) * g.input_dilation[d] + g.pad_lo[d];
      q /= g.in[d];
      if (p < 0 || p >= g.padded[d]) {
        dx[i] = T(0);
        return;
      }
      off += p * scale;
      scale *= g.padded[d];
    }
    dx[i] = dxt[row * g.padded_numel + off];
  }
};

// y [N, K, plane] += b[k], one thread per element of y.
template <class T>
struct ConvAddBias {
  T* y;
  const T* b;
  std::int64_t channels = 1, plane = 1;

  CT_HD void operator()(std::int64_t i) const { y[i] += b[(i / plane) % channels]; }
};

}  // namespace convtape::cuda
