// The data gradient of a convolution as forward convolutions of dy on CPU, so that it runs through
// the forward paths (implicit GEMM, mostly) instead of col2im:
//   transposed_forward  unit stride, no input dilation, pad_lo <= dilation * (k - 1): dx is itself
//                       a unit-stride convolution of dy with the flipped, channel-swapped kernel,
//                       low padding dilation * (k - 1) - pad_lo (transposed_as_forward).
//   phase_split         strided, no input dilation: in padded coordinates u = stride * m + a,
//                       dx~[u] = sum over taps r with dil * r = a (mod stride) of w[r] dy[m - e_r],
//                       e_r = (dil * r - a) / stride, so each stride phase a of dx is a
//                       unit-stride convolution of dy with the phase's taps (flipped, channels
//                       swapped; evenly spaced, so the sub-kernel is an ordinary dilated one,
//                       phase_conv). Each dx value belongs to exactly one phase; a phase without
//                       taps leaves zeros. Each phase's forward conv is planned when it runs.
#include <omp.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "cpu/conv_common.h"
#include "cpu/conv_paths.h"
#include "cpu/line_ops.h"

namespace convtape::cpu::conv_detail {

namespace {

// The channel-swapped kernel at the given taps, in the kept Kept::flipped buffer, built on the
// team: wt[grp*cg + c, k, t] = w[grp*kg + k, c, taps[t]].
template <class T>
T* swap_channels(const ConvGeometry& g, const T* w, const std::vector<std::int64_t>& taps) {
  const std::int64_t cg = g.group_channels(), kg = g.group_out_channels(), rn = g.kernel_numel();
  const auto tn = static_cast<std::int64_t>(taps.size());
  T* wt = kept_buffer<T>(Kept::flipped, g.channels * kg * tn);
  const std::int64_t jobs = g.groups * cg;
#pragma omp parallel for schedule(static) if (jobs > 1 && jobs * kg * tn >= kParallelWork)
  for (std::int64_t job = 0; job < jobs; ++job) {
    const std::int64_t grp = job / cg, c = job % cg;
    for (std::int64_t k = 0; k < kg; ++k) {
      const T* src = w + ((grp * kg + k) * cg + c) * rn;
      T* dst = wt + ((grp * cg + c) * kg + k) * tn;
      for (std::int64_t t = 0; t < tn; ++t) dst[t] = src[taps[static_cast<std::size_t>(t)]];
    }
  }
  return wt;
}

}  // namespace

template <class T>
const T* phase_weights(const ConvGeometry& g, const T* w, const PhaseConv& p) {
  // Tap t of the phase's kernel is, flipped, tap r of w with r_d = first_d + (n_d - 1 - t_d)
  // step_d.
  const std::size_t s = g.in.size();
  const std::int64_t tn = p.g.kernel_numel();
  std::vector<std::int64_t> src_tap(static_cast<std::size_t>(tn));
  for (std::int64_t t = 0; t < tn; ++t) {
    std::int64_t trem = t, r = 0, scale = 1;
    for (std::size_t d = s; d-- > 0;) {
      const std::int64_t td = trem % p.g.kernel[d];
      trem /= p.g.kernel[d];
      r += (p.first[d] + (p.g.kernel[d] - 1 - td) * p.step[d]) * scale;
      scale *= g.kernel[d];
    }
    src_tap[static_cast<std::size_t>(t)] = r;
  }
  return swap_channels(g, w, src_tap);
}

template <class T>
void transposed_backward_data(const ConvPlan& plan, const GemmKernel<T>& kern, const T* dy,
                              const T* w, T* dx) {
  const ConvGeometry& g = plan.geometry;
  // The flipped, channel-swapped kernel: wt[grp*cg + c, k, r] = w[grp*kg + k, c, rn - 1 - r].
  const std::int64_t rn = g.kernel_numel();
  std::vector<std::int64_t> flipped(static_cast<std::size_t>(rn));
  for (std::int64_t r = 0; r < rn; ++r) flipped[static_cast<std::size_t>(r)] = rn - 1 - r;
  const T* wt = swap_channels(g, w, flipped);
  run_forward<T>(plan.inner.front(), kern, dy, wt, nullptr, dx);
}

template <class T>
void phase_backward_data(const ConvPlan& plan, const GemmKernel<T>& kern, const T* dy, const T* w,
                         T* dx) {
  const ConvGeometry& g = plan.geometry;
  const std::size_t s = g.in.size();
  const std::int64_t planes = g.batch * g.channels, in_n = g.in_numel();
  // The live phases only (strided_split_ok bounds their product by the covered range).
  const std::int64_t phases = plan.phases;
  // Every dx value belongs to exactly one live phase, and a phase with taps writes all of its
  // values: dx needs zeros first only where some phase has none (a kernel shorter than the stride
  // in some dim, or a dilation that skips residues). Zeroing 6 MiB cost tconv_k4s2 a tenth.
  bool all_taps = true;
  for (std::int64_t ph = 0; ph < phases && all_taps; ++ph) all_taps = !live_phase(g, ph).empty;
  if (!all_taps) std::fill_n(dx, planes * in_n, T(0));
  // z is written whole by each phase's forward.
  const Isa isa = plan.target.isa;
  for (std::int64_t ph = 0; ph < phases; ++ph) {
    const PhaseConv p = live_phase(g, ph);
    if (p.empty) continue;
    const T* wt = phase_weights(g, w, p);
    const std::int64_t zn = p.g.out_numel();
    T* z = kept_buffer<T>(Kept::phase_z, planes * zn);
    run_forward<T>(plan_conv(p.g, ConvPass::forward, plan.target), kern, dy, wt, nullptr, z);
    // dx[i] = z[m'] for i = stride * (m' + skip) + a - pad_lo inside the input: per z line inside
    // dx, the run of m whose i lands inside, scattered every stride-th value (cpu/line_ops.h).
    const std::int64_t zlast = p.g.out[s - 1], lines = zn / zlast;
    const std::int64_t st = g.stride[s - 1];
    const std::int64_t off = p.dx_index(g, s - 1, 0);  // i of z[.., 0]
    const std::int64_t m0 = off >= 0 ? 0 : ceil_div(-off, st);
    const std::int64_t m1 =
        g.in[s - 1] - off > 0 ? std::min(zlast, ceil_div(g.in[s - 1] - off, st)) : 0;
    std::vector<std::int64_t> to, from;
    for (std::int64_t line = 0; line < lines && m1 > m0; ++line) {
      std::int64_t lrem = line, base = 0, scale = g.in[s - 1];
      bool inside = true;
      for (std::size_t d = s - 1; d-- > 0 && inside;) {
        const std::int64_t m = lrem % p.g.out[d];
        lrem /= p.g.out[d];
        const std::int64_t i = p.dx_index(g, d, m);
        inside = i >= 0 && i < g.in[d];
        base += i * scale;
        scale *= g.in[d];
      }
      if (!inside) continue;
      to.push_back(base + st * m0 + off);
      from.push_back(line * zlast + m0);
    }
    const line::StridedRows rows{to.data(), from.data(), static_cast<std::int64_t>(to.size()),
                                 m1 - m0, st};
    const T* zs = z;
#pragma omp parallel for schedule(static) if (planes > 1 && planes * zn >= kParallelWork)
    for (std::int64_t pl = 0; pl < planes; ++pl)
      line::scatter_strided_rows(isa, dx + pl * in_n, rows, zs + pl * zn);
  }
}
#define CT_INSTANTIATE(T)                                                                         \
  template const T* phase_weights<T>(const ConvGeometry&, const T*, const PhaseConv&);            \
  template void transposed_backward_data<T>(const ConvPlan&, const GemmKernel<T>&, const T*,      \
                                            const T*, T*);                                        \
  template void phase_backward_data<T>(const ConvPlan&, const GemmKernel<T>&, const T*, const T*, \
                                       T*);
CT_INSTANTIATE(float)
CT_INSTANTIATE(double)
#undef CT_INSTANTIATE

}  // namespace convtape::cpu::conv_detail
