// depth_unfold (cpu/conv_plan.h): a conv of rank >= 3 run as one 2-D conv over its last two dims,
// the leading dims' output positions moved into the batch and their taps into the channels:
//   X'[(n, o), (c, t)] = x[n, c, src(o, t)]   (a whole plane of the last two dims; zero where
//                                              src(o, t) = o * stride + t * dilation - pad_lo
//                                              falls outside the leading dims)
//   forward          y[n, k, o] = conv2d(X', w)[(n, o), k]    (w [K, C/g, *kernel] is already
//                                                              [K, (C/g) taps, kh, kw])
//   backward_data    dX' = the 2-D data gradient of dy' (dy'[(n, o), k] = dy[n, k, o]); dx folds
//                    it back: dx[n, c, i] = sum over (o, t) with src(o, t) = i of dX'[(n, o), (c,
//                    t)], in (o, t) order
//   backward_weight  dw = the 2-D weight gradient of dy' and X', already in dw's layout
// The 2-D conv is Winograd (the plan takes this path only then), so a 3x3x3 conv gets Winograd's
// fewer multiplications in its last two dims with its depth taps as a longer reduction. The
// unfold, the plane transposes and the fold are one pass each over the operands.
#include <omp.h>

#include <algorithm>
#include <vector>

#include "cpu/conv_common.h"
#include "cpu/conv_paths.h"

namespace convtape::cpu::conv_detail {

namespace {

// The leading dims' map: src[o * taps + t] = the flattened leading input index that output
// position o reads through tap t, or -1 (padding).
struct LeadingMap {
  std::int64_t outer = 1, taps = 1, in_outer = 1;  // leading output positions, taps, inputs
  std::int64_t plane_in = 1, plane_out = 1;        // values per plane of the last two dims
  std::vector<std::int64_t> src;
  explicit LeadingMap(const ConvGeometry& g) {
    const std::size_t s = g.in.size(), lead = s - 2;
    for (std::size_t d = 0; d < lead; ++d) {
      outer *= g.out[d];
      taps *= g.kernel[d];
      in_outer *= g.in[d];
    }
    plane_in = g.in[s - 2] * g.in[s - 1];
    plane_out = g.out[s - 2] * g.out[s - 1];
    src.resize(static_cast<std::size_t>(outer * taps));
    for (std::int64_t o = 0; o < outer; ++o)
      for (std::int64_t t = 0; t < taps; ++t) {
        std::int64_t orem = o, trem = t, idx = 0, scale = 1;
        bool inside = true;
        for (std::size_t d = lead; d-- > 0;) {
          const std::int64_t od = orem % g.out[d], td = trem % g.kernel[d];
          orem /= g.out[d];
          trem /= g.kernel[d];
          const std::int64_t i = od * g.stride[d] + td * g.dilation[d] - g.pad_lo[d];
          inside = inside && i >= 0 && i < g.in[d];
          idx += i * scale;
          scale *= g.in[d];
        }
        src[static_cast<std::size_t>(o * taps + t)] = inside ? idx : -1;
      }
  }
};

bool large(std::int64_t values) {
  return values >= kParallelWork;
}

// X' from x: [N, outer, C, taps, plane_in].
template <class T>
void unfold(const ConvGeometry& g, const LeadingMap& m, const T* x, T* xu) {
  const std::int64_t jobs = g.batch * m.outer, per = g.channels * m.taps * m.plane_in;
#pragma omp parallel for schedule(static) if (jobs > 1 && large(jobs * per))
  for (std::int64_t job = 0; job < jobs; ++job) {
    const std::int64_t n = job / m.outer, o = job % m.outer;
    T* dst = xu + job * per;
    for (std::int64_t c = 0; c < g.channels; ++c)
      for (std::int64_t t = 0; t < m.taps; ++t, dst += m.plane_in) {
        const std::int64_t i = m.src[static_cast<std::size_t>(o * m.taps + t)];
        if (i < 0)
          std::fill_n(dst, m.plane_in, T(0));
        else
          std::copy_n(x + ((n * g.channels + c) * m.in_outer + i) * m.plane_in, m.plane_in, dst);
      }
  }
}

// [N, K, outer, plane] <-> [N, outer, K, plane], plane by plane: `to_leading` moves dy to dy'.
template <class T>
void swap_planes(const ConvGeometry& g, const LeadingMap& m, const T* from, T* to,
                 bool to_leading) {
  const std::int64_t jobs = g.batch * g.out_channels, pl = m.plane_out;
#pragma omp parallel for schedule(static) if (jobs > 1 && large(jobs * m.outer * pl))
  for (std::int64_t job = 0; job < jobs; ++job) {
    const std::int64_t n = job / g.out_channels, k = job % g.out_channels;
    for (std::int64_t o = 0; o < m.outer; ++o) {
      const std::int64_t natural = (job * m.outer + o) * pl;                       // [n, k, o]
      const std::int64_t leading = ((n * m.outer + o) * g.out_channels + k) * pl;  // [(n, o), k]
      if (to_leading)
        std::copy_n(from + natural, pl, to + leading);
      else
        std::copy_n(from + leading, pl, to + natural);
    }
  }
}

}  // namespace

template <class T>
void unfold_forward(const ConvPlan& plan, const GemmKernel<T>& kern, const T* x, const T* w,
                    const T* b, T* y) {
  const ConvGeometry& g = plan.geometry;
  const LeadingMap m(g);
  T* xu = kept_buffer<T>(Kept::unfold_a, g.batch * m.outer * g.channels * m.taps * m.plane_in);
  T* yu = kept_buffer<T>(Kept::unfold_b, g.batch * m.outer * g.out_channels * m.plane_out);
  unfold(g, m, x, xu);
  run_forward<T>(plan.inner.front(), kern, xu, w, b, yu);
  swap_planes(g, m, yu, y, false);
}

template <class T>
void unfold_backward_data(const ConvPlan& plan, const GemmKernel<T>& kern, const T* dy, const T* w,
                          T* dx) {
  const ConvGeometry& g = plan.geometry;
  const LeadingMap m(g);
  T* dyu = kept_buffer<T>(Kept::unfold_b, g.batch * m.outer * g.out_channels * m.plane_out);
  T* dxu = kept_buffer<T>(Kept::unfold_a, g.batch * m.outer * g.channels * m.taps * m.plane_in);
  swap_planes(g, m, dy, dyu, true);
  run_backward_data<T>(plan.inner.front(), kern, dyu, w, dxu);
  // The fold: each leading input index gathers its (o, t) readers, in (o, t) order.
  std::vector<std::vector<std::int64_t>> readers(static_cast<std::size_t>(m.in_outer));
  for (std::int64_t ot = 0; ot < m.outer * m.taps; ++ot) {
    const std::int64_t i = m.src[static_cast<std::size_t>(ot)];
    if (i >= 0) readers[static_cast<std::size_t>(i)].push_back(ot);
  }
  const std::int64_t jobs = g.batch * g.channels, pl = m.plane_in;
#pragma omp parallel for schedule(static) if (jobs > 1 && large(jobs * m.in_outer * pl))
  for (std::int64_t job = 0; job < jobs; ++job) {
    const std::int64_t n = job / g.channels, c = job % g.channels;
    for (std::int64_t i = 0; i < m.in_outer; ++i) {
      T* dst = dx + (job * m.in_outer + i) * pl;
      const auto& from = readers[static_cast<std::size_t>(i)];
      if (from.empty()) {
        std::fill_n(dst, pl, T(0));
        continue;
      }
      for (std::size_t r = 0; r < from.size(); ++r) {
        const std::int64_t o = from[r] / m.taps, t = from[r] % m.taps;
        const T* src = dxu + (((n * m.outer + o) * g.channels + c) * m.taps + t) * pl;
        if (r == 0)
          std::copy_n(src, pl, dst);
        else
          for (std::int64_t j = 0; j < pl; ++j) dst[j] += src[j];
      }
    }
  }
}

template <class T>
void unfold_backward_weight(const ConvPlan& plan, const GemmKernel<T>& kern, const T* dy,
                            const T* x, T* dw) {
  const ConvGeometry& g = plan.geometry;
  const LeadingMap m(g);
  T* xu = kept_buffer<T>(Kept::unfold_a, g.batch * m.outer * g.channels * m.taps * m.plane_in);
  T* dyu = kept_buffer<T>(Kept::unfold_b, g.batch * m.outer * g.out_channels * m.plane_out);
  unfold(g, m, x, xu);
  swap_planes(g, m, dy, dyu, true);
  run_backward_weight<T>(plan.inner.front(), kern, dyu, xu, dw);
}

#define CT_INSTANTIATE(T)                                                                          \
  template void unfold_forward<T>(const ConvPlan&, const GemmKernel<T>&, const T*, const T*,       \
                                  const T*, T*);                                                   \
  template void unfold_backward_data<T>(const ConvPlan&, const GemmKernel<T>&, const T*, const T*, \
                                        T*);                                                       \
  template void unfold_backward_weight<T>(const ConvPlan&, const GemmKernel<T>&, const T*,         \
                                          const T*, T*);
CT_INSTANTIATE(float)
CT_INSTANTIATE(double)
#undef CT_INSTANTIATE

}  // namespace convtape::cpu::conv_detail
