// dilation_split (cpu/conv_plan.h): a stride-1 convolution with a dilated kernel run as one
// undilated convolution per dilation phase. Output phase a (outputs j = a mod d per dim) reads
// only input phase b = (a - pad_lo) mod d, through the same kernel, undilated:
//   forward          gather x's phase b, run the phase's plan, scatter into y's phase a
//   backward_data    gather dy's phase a, run the phase's data gradient, scatter into dx's phase b
//                    (a -> b is one-to-one, so every dx value is written once)
//   backward_weight  dw = the phases' weight gradients, added in phase order
// The phases' plans are Winograd (the plan takes this path only then), so a dilated 3x3 layer
// gets its fewer multiplications; the gathers and scatters are one pass over each operand.
#include <omp.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "cpu/conv_common.h"
#include "cpu/conv_paths.h"
#include "cpu/line_ops.h"

namespace convtape::cpu::conv_detail {

namespace {

// The lines of one phase of a plane: phase line l (over every dim but the last, row-major) is full
// line `offsets[l]` (its first value's offset in the full plane, the last dim's phase included),
// read or written every `step` values, `n` of them.
struct PhaseLines {
  std::vector<std::int64_t> offsets;
  std::int64_t n = 0, step = 1, full = 0, sub = 0;  // full / sub: values per plane
};

PhaseLines phase_lines(const Shape& full, const Shape& sub, const std::vector<std::int64_t>& phase,
                       const std::vector<std::int64_t>& step) {
  PhaseLines pl;
  const std::size_t s = full.size();
  pl.n = sub[s - 1];
  pl.step = step[s - 1];
  pl.full = numel(full);
  pl.sub = numel(sub);
  const std::int64_t lines = pl.n > 0 ? pl.sub / pl.n : 0;
  pl.offsets.resize(static_cast<std::size_t>(lines));
  for (std::int64_t l = 0; l < lines; ++l) {
    std::int64_t rem = l, off = phase[s - 1], scale = full[s - 1];
    for (std::size_t d = s - 1; d-- > 0;) {
      off += (rem % sub[d] * step[d] + phase[d]) * scale;
      rem /= sub[d];
      scale *= full[d];
    }
    pl.offsets[static_cast<std::size_t>(l)] = off;
  }
  return pl;
}

// to[plane] (phase, dense) <- from[plane] (full) for every plane, or the reverse when `scatter`.
template <class T>
void move_phase(Isa isa, const PhaseLines& pl, std::int64_t planes, const T* from, T* to,
                bool scatter) {
  const line::StridedRows rows{pl.offsets.data(), nullptr,
                               static_cast<std::int64_t>(pl.offsets.size()), pl.n, pl.step};
#pragma omp parallel for schedule(static) if (planes > 1 && planes * pl.sub >= kParallelWork)
  for (std::int64_t p = 0; p < planes; ++p) {
    if (scatter)
      line::scatter_strided_rows(isa, to + p * pl.full, rows, from + p * pl.sub);
    else
      line::gather_strided_rows(isa, to + p * pl.sub, rows, from + p * pl.full);
  }
}

// Phase ph of g: its undilated conv, and the lines of its input (x, dx) and output (y, dy)
// phases.
struct Phase {
  DilationPhase dp;
  PhaseLines in, out;
  Phase(const ConvGeometry& g, std::int64_t ph)
      : dp(dilation_phase(g, ph)),
        in(phase_lines(g.in, dp.g.in, dp.b, dp.d)),
        out(phase_lines(g.out, dp.g.out, dp.a, dp.d)) {}
};

}  // namespace

template <class T>
void dilated_forward(const ConvPlan& plan, const GemmKernel<T>& kern, const T* x, const T* w,
                     const T* b, T* y) {
  const ConvGeometry& g = plan.geometry;
  const Isa isa = plan.target.isa;
  for (std::int64_t ph = 0; ph < plan.phases; ++ph) {
    const Phase p(g, ph);
    T* xs = kept_buffer<T>(Kept::dilated_in, g.batch * g.channels * p.in.sub);
    T* ys = kept_buffer<T>(Kept::dilated_out, g.batch * g.out_channels * p.out.sub);
    move_phase(isa, p.in, g.batch * g.channels, x, xs, false);
    run_forward<T>(plan.inner[static_cast<std::size_t>(ph)], kern, xs, w, b, ys);
    move_phase(isa, p.out, g.batch * g.out_channels, ys, y, true);
  }
}

template <class T>
void dilated_backward_data(const ConvPlan& plan, const GemmKernel<T>& kern, const T* dy, const T* w,
                           T* dx) {
  const ConvGeometry& g = plan.geometry;
  const Isa isa = plan.target.isa;
  for (std::int64_t ph = 0; ph < plan.phases; ++ph) {
    const Phase p(g, ph);
    T* dys = kept_buffer<T>(Kept::dilated_in, g.batch * g.out_channels * p.out.sub);
    T* dxs = kept_buffer<T>(Kept::dilated_out, g.batch * g.channels * p.in.sub);
    move_phase(isa, p.out, g.batch * g.out_channels, dy, dys, false);
    run_backward_data<T>(plan.inner[static_cast<std::size_t>(ph)], kern, dys, w, dxs);
    move_phase(isa, p.in, g.batch * g.channels, dxs, dx, true);
  }
}

template <class T>
void dilated_backward_weight(const ConvPlan& plan, const GemmKernel<T>& kern, const T* dy,
                             const T* x, T* dw) {
  const ConvGeometry& g = plan.geometry;
  const Isa isa = plan.target.isa;
  const std::int64_t wn = g.out_channels * g.group_channels() * g.kernel_numel();
  T* part = kept_buffer<T>(Kept::dilated_dw, wn);
  for (std::int64_t ph = 0; ph < plan.phases; ++ph) {
    const Phase p(g, ph);
    T* xs = kept_buffer<T>(Kept::dilated_in, g.batch * g.channels * p.in.sub);
    T* dys = kept_buffer<T>(Kept::dilated_out, g.batch * g.out_channels * p.out.sub);
    move_phase(isa, p.in, g.batch * g.channels, x, xs, false);
    move_phase(isa, p.out, g.batch * g.out_channels, dy, dys, false);
    T* into = ph == 0 ? dw : part;
    run_backward_weight<T>(plan.inner[static_cast<std::size_t>(ph)], kern, dys, xs, into);
    if (ph > 0)
      for (std::int64_t i = 0; i < wn; ++i) dw[i] += part[i];
  }
}

#define CT_INSTANTIATE(T)                                                                     \
  template void dilated_forward<T>(const ConvPlan&, const GemmKernel<T>&, const T*, const T*, \
                                   const T*, T*);                                             \
  template void dilated_backward_data<T>(const ConvPlan&, const GemmKernel<T>&, const T*,     \
                                         const T*, T*);                                       \
  template void dilated_backward_weight<T>(const ConvPlan&, const GemmKernel<T>&, const T*,   \
                                           const T*, T*);
CT_INSTANTIATE(float)
CT_INSTANTIATE(double)
#undef CT_INSTANTIATE

}  // namespace convtape::cpu::conv_detail
