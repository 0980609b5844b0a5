// The CUDA correlation kernels' bodies (cuda/device_fn.h functors), with cpu/correlation.h's
// definition on f1, f2 [N, C, H, W] (contiguous, read in place: a coordinate outside [0, H) x
// [0, W) is the zero padding) -> y [N, D*D, H', W']. In unpadded coordinates the patch centre of
// output (y, x) is (cy, cx) = (y * stride1 + b - padding, x * stride1 + b - padding), b = border,
// and for displacement e = (p + R) * D + (o + R):
//   y[n, e, y, x] = scale * sum_{|i|, |j| <= r, c} f1[n, c, cy + i, cx + j]
//                                             * f2[n, c, cy + i + p * s2, cx + j + o * s2]
//   df1[n, c, y1, x1] = scale * sum over (i, j, p, o) with an output (y, x) centred at
//                       (y1 - i, x1 - j) of dy[n, e, y, x] * f2[n, c, y1 + p * s2, x1 + o * s2]
//   df2[n, c, y2, x2] = scale * sum over (p, o, i, j) with an output centred at
//                       (y2 - p * s2 - i, x2 - o * s2 - j) of dy[n, e, y, x] * f1[n, c, y2 - p s2,
//                       x2 - o s2]
// with scale = 1 / (k * k * C) applied once to the finished sum, as the CPU does. A centre is an
// output's when (centre + padding - b) is a multiple of stride1 and the quotient lies in [0, H')
// (resp. W'). One thread per element of y (forward) or of df1 / df2 (the gradients are gathers, so
// no atomics).
#pragma once

#include <cstdint>

#include "cuda/device_fn.h"

namespace convtape::cuda {

// A CorrelationGeometry with its derived sizes.
struct CorrelationShape {
  std::int64_t batch = 0, channels = 0, height = 0, width = 0;
  std::int64_t radius = 0, border = 0, grid_radius = 0, grid = 1;
  std::int64_t stride1 = 1, stride2 = 1, padding = 0;
  std::int64_t out_height = 0, out_width = 0;

  // The output coordinate whose patch centre is unpadded coordinate `centre`, or -1.
  CT_HD std::int64_t output_at(std::int64_t centre, std::int64_t extent) const {
    const std::int64_t t = centre + padding - border;
    if (t < 0 || t % stride1 != 0 || t / stride1 >= extent) return -1;
    return t / stride1;
  }
};

// y[i] for i over N * D * D * H' * W'.
template <class T>
struct CorrelationForward {
  const T* f1;
  const T* f2;
  T* y;
  CorrelationShape s;
  T scale;

  CT_HD void operator()(std::int64_t i) const {
    const std::int64_t x = i % s.out_width;
    std::int64_t rest = i / s.out_width;
    const std::int64_t yy = rest % s.out_height;
    rest /= s.out_height;
    const std::int64_t e = rest % (s.grid * s.grid), n = rest / (s.grid * s.grid);
    const std::int64_t p = e / s.grid - s.grid_radius, o = e % s.grid - s.grid_radius;
    const std::int64_t cy = yy * s.stride1 + s.border - s.padding;
    const std::int64_t cx = x * s.stride1 + s.border - s.padding;
    const std::int64_t hw = s.height * s.width;
    const T* a = f1 + n * s.channels * hw;
    const T* b = f2 + n * s.channels * hw;
    T sum = T(0);
    for (std::int64_t di = -s.radius; di <= s.radius; ++di) {
      const std::int64_t y1 = cy + di, y2 = y1 + p * s.stride2;
      if (y1 < 0 || y1 >= s.height || y2 < 0 || y2 >= s.height) continue;
      for (std::int64_t dj = -s.radius; dj <= s.radius; ++dj) {
        const std::int64_t x1 = cx + dj, x2 = x1 + o * s.stride2;
        if (x1 < 0 || x1 >= s.width || x2 < 0 || x2 >= s.width) continue;
        const T* pa = a + y1 * s.width + x1;
        const T* pb = b + y2 * s.width + x2;
        for (std::int64_t c = 0; c < s.channels; ++c) sum += pa[c * hw] * pb[c * hw];
      }
    }
    y[i] = scale * sum;
  }
};

// df1[i] for i over N * C * H * W.
template <class T>
struct CorrelationBackwardF1 {
  const T* dy;
  const T* f2;
  T* df1;
  CorrelationShape s;
  T scale;

  CT_HD void operator()(std::int64_t i) const {
    const std::int64_t x1 = i % s.width;
    const std::int64_t y1 = (i / s.width) % s.height;
    const std::int64_t nc = i / (s.width * s.height), n = nc / s.channels;
    const std::int64_t dd = s.grid * s.grid, plane = s.out_height * s.out_width;
    const T* g = dy + n * dd * plane;
    const T* b = f2 + nc * s.height * s.width;
    T sum = T(0);
    for (std::int64_t di = -s.radius; di <= s.radius; ++di) {
      const std::int64_t oy = s.output_at(y1 - di, s.out_height);
      if (oy < 0) continue;
      for (std::int64_t dj = -s.radius; dj <= s.radius; ++dj) {
        const std::int64_t ox = s.output_at(x1 - dj, s.out_width);
        if (ox < 0) continue;
        const T* go = g + oy * s.out_width + ox;
        for (std::int64_t p = -s.grid_radius; p <= s.grid_radius; ++p) {
          const std::int64_t y2 = y1 + p * s.stride2;
          if (y2 < 0 || y2 >= s.height) continue;
          for (std::int64_t o = -s.grid_radius; o <= s.grid_radius; ++o) {
            const std::int64_t x2 = x1 + o * s.stride2;
            if (x2 < 0 || x2 >= s.width) continue;
            const std::int64_t e = (p + s.grid_radius) * s.grid + (o + s.grid_radius);
            sum += go[e * plane] * b[y2 * s.width + x2];
          }
        }
      }
    }
    df1[i] = scale * sum;
  }
};

// df2[i] for i over N * C * H * W.
template <class T>
struct CorrelationBackwardF2 {
  const T* dy;
  const T* f1;
  T* df2;
  CorrelationShape s;
  T scale;

  CT_HD void operator()(std::int64_t i) const {
    const std::int64_t x2 = i % s.width;
    const std::int64_t y2 = (i / s.width) % s.height;
    const std::int64_t nc = i / (s.width * s.height), n = nc / s.channels;
    const std::int64_t dd = s.grid * s.grid, plane = s.out_height * s.out_width;
    const T* g = dy + n * dd * plane;
    const T* a = f1 + nc * s.height * s.width;
    T sum = T(0);
    for (std::int64_t p = -s.grid_radius; p <= s.grid_radius; ++p) {
      const std::int64_t y1 = y2 - p * s.stride2;
      if (y1 < 0 || y1 >= s.height) continue;
      for (std::int64_t o = -s.grid_radius; o <= s.grid_radius; ++o) {
        const std::int64_t x1 = x2 - o * s.stride2;
        if (x1 < 0 || x1 >= s.width) continue;
        const T v = a[y1 * s.width + x1];
        const T* ge = g + ((p + s.grid_radius) * s.grid + (o + s.grid_radius)) * plane;
        T w = T(0);
        for (std::int64_t di = -s.radius; di <= s.radius; ++di) {
          const std::int64_t oy = s.output_at(y1 - di, s.out_height);
          if (oy < 0) continue;
          for (std::int64_t dj = -s.radius; dj <= s.radius; ++dj) {
            const std::int64_t ox = s.output_at(x1 - dj, s.out_width);
            if (ox >= 0) w += ge[oy * s.out_width + ox];
          }
        }
        sum += w * v;
      }
    }
    df2[i] = scale * sum;
  }
};

}  // namespace convtape::cuda
