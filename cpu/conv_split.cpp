// kernel_split (cpu/conv_plan.h): a 2-D stride-1 conv with a kernel of 4 to 9 per dim (5x5, 7x7)
// run as one 3x3 conv. The kernel, zero-extended to 3m x 3m, is cut into m0 x m1 blocks of 3x3;
// block a reads the input shifted by 3a, so with
//   X'[n, (c, a0, a1), j0, j1] = x[n, c, j0 + 3 a0 - pad_lo0, j1 + 3 a1 - pad_lo1]  (0 outside x)
//   w'[k, (c, a0, a1), b0, b1] = w[k, c, 3 a0 + b0, 3 a1 + b1]                       (0 past k)
// on planes of out + 2 per dim, y = conv3x3(X', w') without padding:
//   forward          y = the 3x3 forward of X' and w' (with the bias), straight into y
//   backward_data    dX' = the 3x3 data gradient of dy; dx adds each block's plane back at its
//                    shift, blocks in order
//   backward_weight  dW' = the 3x3 weight gradient of dy and X'; dw[k, c, r] = dW'[k, (c, r / 3),
//                    r % 3]
// The 3x3 conv is Winograd (the plan takes this path only then): a 5x5 kernel costs 4 blocks x 36
// multiplications per 4x4 tile and channel pair instead of 400, a 7x7 one 9 x 36 instead of 784.
#include <omp.h>

#include <algorithm>
#include <vector>

#include "cpu/conv_common.h"
#include "cpu/conv_paths.h"

namespace convtape::cpu::conv_detail {

namespace {

struct Split {
  std::int64_t m0, m1, blocks;  // blocks per dim, in all
  std::int64_t h, w;            // X' planes: out + 2 per dim
  explicit Split(const ConvGeometry& g)
      : m0(ceil_div(g.kernel[0], 3)),
        m1(ceil_div(g.kernel[1], 3)),
        blocks(m0 * m1),
        h(g.out[0] + 2),
        w(g.out[1] + 2) {}
};

// Block a's shift into x, X'_a[j0, j1] = x[j0 + s0, j1 + s1], and its columns j1 in [lo, hi) that
// land inside x's rows.
struct BlockShift {
  std::int64_t s0, s1, lo, hi;
  BlockShift(const ConvGeometry& g, const Split& sp, std::int64_t a)
      : s0(3 * (a / sp.m1) - g.pad_lo[0]),
        s1(3 * (a % sp.m1) - g.pad_lo[1]),
        lo(std::clamp<std::int64_t>(-s1, 0, sp.w)),
        hi(std::clamp<std::int64_t>(g.in[1] - s1, lo, sp.w)) {}
};

// X' from x, one (sample, channel) per job: each block's shifted copy, zero outside x.
template <class T>
void split_input(const ConvGeometry& g, const Split& sp, const T* x, T* xs) {
  const std::int64_t jobs = g.batch * g.channels, in0 = g.in[0], in1 = g.in[1];
  const std::int64_t plane = sp.h * sp.w;
#pragma omp parallel for schedule(static) if (jobs > 1 && jobs * sp.blocks * plane >= kParallelWork)
  for (std::int64_t job = 0; job < jobs; ++job) {
    const T* src = x + job * in0 * in1;
    for (std::int64_t a = 0; a < sp.blocks; ++a) {
      const auto [s0, s1, lo, hi] = BlockShift(g, sp, a);
      T* dst = xs + (job * sp.blocks + a) * plane;
      for (std::int64_t j0 = 0; j0 < sp.h; ++j0) {
        T* row = dst + j0 * sp.w;
        const std::int64_t i0 = j0 + s0;
        if (i0 < 0 || i0 >= in0 || hi <= lo) {
          std::fill_n(row, sp.w, T(0));
          continue;
        }
        std::fill_n(row, lo, T(0));
        std::copy_n(src + i0 * in1 + lo + s1, hi - lo, row + lo);
        std::fill_n(row + hi, sp.w - hi, T(0));
      }
    }
  }
}

// Visits every (w index, w' index) pair of the split: w[k, c, r0, r1] and w'[k, (c, a), b] with
// r = 3 a + b inside the kernel; the w' entries past the kernel are visited with -1.
template <class F>
void each_tap(const ConvGeometry& g, const Split& sp, F&& f) {
  const std::int64_t k0 = g.kernel[0], k1 = g.kernel[1];
  const std::int64_t jobs = g.out_channels * g.group_channels();
#pragma omp parallel for schedule(static) if (jobs * sp.blocks * 9 >= kParallelWork)
  for (std::int64_t job = 0; job < jobs; ++job)
    for (std::int64_t a = 0; a < sp.blocks; ++a)
      for (std::int64_t b = 0; b < 9; ++b) {
        const std::int64_t r0 = 3 * (a / sp.m1) + b / 3, r1 = 3 * (a % sp.m1) + b % 3;
        f(r0 < k0 && r1 < k1 ? job * k0 * k1 + r0 * k1 + r1 : -1, (job * sp.blocks + a) * 9 + b);
      }
}

}  // namespace

template <class T>
void split_forward(const ConvPlan& plan, const GemmKernel<T>& kern, const T* x, const T* w,
                   const T* b, T* y) {
  const ConvGeometry& g = plan.geometry;
  const Split sp(g);
  T* xs = kept_buffer<T>(Kept::split_x, g.batch * g.channels * sp.blocks * sp.h * sp.w);
  T* ws = kept_buffer<T>(Kept::split_w, g.out_channels * g.group_channels() * sp.blocks * 9);
  split_input(g, sp, x, xs);
  each_tap(g, sp, [&](std::int64_t i, std::int64_t j) { ws[j] = i < 0 ? T(0) : w[i]; });
  run_forward<T>(plan.inner.front(), kern, xs, ws, b, y);
}

template <class T>
void split_backward_data(const ConvPlan& plan, const GemmKernel<T>& kern, const T* dy, const T* w,
                         T* dx) {
  const ConvGeometry& g = plan.geometry;
  const Split sp(g);
  T* dxs = kept_buffer<T>(Kept::split_x, g.batch * g.channels * sp.blocks * sp.h * sp.w);
  T* ws = kept_buffer<T>(Kept::split_w, g.out_channels * g.group_channels() * sp.blocks * 9);
  each_tap(g, sp, [&](std::int64_t i, std::int64_t j) { ws[j] = i < 0 ? T(0) : w[i]; });
  run_backward_data<T>(plan.inner.front(), kern, dy, ws, dxs);
  // dx[i] = sum over blocks a of dX'_a[i - 3a + pad_lo] where that lies in the plane.
  const std::int64_t jobs = g.batch * g.channels, in0 = g.in[0], in1 = g.in[1];
  const std::int64_t plane = sp.h * sp.w;
#pragma omp parallel for schedule(static) if (jobs > 1 && jobs * sp.blocks * plane >= kParallelWork)
  for (std::int64_t job = 0; job < jobs; ++job) {
    T* dst = dx + job * in0 * in1;
    std::fill_n(dst, in0 * in1, T(0));
    for (std::int64_t a = 0; a < sp.blocks; ++a) {
      const auto [s0, s1, lo, hi] = BlockShift(g, sp, a);
      const T* src = dxs + (job * sp.blocks + a) * plane;
      for (std::int64_t j0 = 0; j0 < sp.h; ++j0) {
        const std::int64_t i0 = j0 + s0;
        if (i0 < 0 || i0 >= in0) continue;
        T* out = dst + i0 * in1 + s1;
        const T* row = src + j0 * sp.w;
        for (std::int64_t j1 = lo; j1 < hi; ++j1) out[j1] += row[j1];
      }
    }
  }
}

template <class T>
void split_backward_weight(const ConvPlan& plan, const GemmKernel<T>& kern, const T* dy, const T* x,
                           T* dw) {
  const ConvGeometry& g = plan.geometry;
  const Split sp(g);
  T* xs = kept_buffer<T>(Kept::split_x, g.batch * g.channels * sp.blocks * sp.h * sp.w);
  T* dws = kept_buffer<T>(Kept::split_dw, g.out_channels * g.group_channels() * sp.blocks * 9);
  split_input(g, sp, x, xs);
  run_backward_weight<T>(plan.inner.front(), kern, dy, xs, dws);
  each_tap(g, sp, [&](std::int64_t i, std::int64_t j) {
    if (i >= 0) dw[i] = dws[j];
  });
}

#define CT_INSTANTIATE(T)                                                                         \
  template void split_forward<T>(const ConvPlan&, const GemmKernel<T>&, const T*, const T*,       \
                                 const T*, T*);                                                   \
  template void split_backward_data<T>(const ConvPlan&, const GemmKernel<T>&, const T*, const T*, \
                                       T*);                                                       \
  template void split_backward_weight<T>(const ConvPlan&, const GemmKernel<T>&, const T*,         \
                                         const T*, T*);
CT_INSTANTIATE(float)
CT_INSTANTIATE(double)
#undef CT_INSTANTIATE

}  // namespace convtape::cpu::conv_detail
