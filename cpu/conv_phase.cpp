// phase_implicit: the data gradient of a strided convolution (no input dilation) with every stride
// phase's conv run as an implicit GEMM over one shared padded copy of dy (cpu/conv_plan.h). In
// padded coordinates u = stride * m + a, phase a of dx is a unit-stride conv of dy with the phase's
// taps, flipped and channel-swapped (phase_conv), whose value m' lands at
//   dx[i], i = stride * (m' + skip) + a - pad_lo.
// phase_split runs each phase as a forward conv of its own, which copies and pads dy once per phase
// and writes the phase's values to a buffer z, scattered into dx afterwards. Here each (sample,
// group) task pads its dy once, with the largest low padding and reach of any phase
// (phase_layout), and each phase's GEMM reads that copy through its own tap offsets: row kk = (dy
// channel c, tap t) of phase a is the copy shifted by
//   c * plane + sum_d (lo_d - pad_lo_a,d + dilation_a,d * t_d) * gs_d,
// on a grid of the phase's outer positions by lines of ext_last columns (the columns past the
// phase's last-dim extent are computed and dropped, as in cpu/conv_implicit.cpp). The C tile's
// columns go straight into dx, every stride-th value along the last dim (line::add_rows_strided),
// while the task's dx block is still in cache. Each dx value is one phase's GEMM sum over its
// reduction slices in order: the result does not depend on the thread count. A phase without taps
// leaves zeros, written first by the task into its own block of dx. With plan.windows the
// phases run positions-major instead (phase_windows): no grid column past a phase's extent is
// computed, and each tile is transposed into channel rows before the same strided writes.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "cpu/conv_common.h"
#include "cpu/conv_paths.h"
#include "cpu/line_ops.h"

namespace convtape::cpu::conv_detail {

namespace {

// One live phase with taps: its conv, packed weights and where its values land.
template <class T>
struct FusedPhase {
  PhaseConv p;
  std::vector<std::int64_t> offs;    // per row kk = (c, t): offset in the padded copy
  std::int64_t rows = 0;             // kg * taps
  std::int64_t cols = 0, outer = 1;  // grid columns per outer plane, outer planes
  std::int64_t line = 0;             // columns per line of the grid (s == 1: cols)
  std::int64_t j0 = 0, j1 = 0;       // last-dim values m' whose dx index lies inside dx
  std::int64_t first_last = 0;       // dx last-dim index of m' = 0 (may be negative)
  std::unique_ptr<T[]> packed;       // A panels: mr dx channels x rows, per group (windows: B
                                     // panels of nr dx channels)
  // Positions-major (plan.windows): the phase's values inside dx in order, each its window's
  // offset in the padded copy, and their runs along dx's last dim (src: index of the run's first
  // value in pos_off, dst: its dx offset, n values every stride-th).
  std::vector<std::int64_t> pos_off;
  std::vector<line::Segment> runs;
};

// Outer plane op of phase f (the dims before the last two): its offset in the padded copy
// (strides gs) and in dx (strides xs); false when it lies outside dx.
template <class T>
bool outer_plane(const ConvGeometry& g, const FusedPhase<T>& f, const std::vector<std::int64_t>& gs,
                 const std::vector<std::int64_t>& xs, std::int64_t op, std::int64_t& ooff,
                 std::int64_t& xoff) {
  const ConvGeometry& pg = f.p.g;
  std::int64_t orem = op;
  ooff = xoff = 0;
  for (int d = static_cast<int>(g.in.size()) - 3; d >= 0; --d) {
    const auto du = static_cast<std::size_t>(d);
    const std::int64_t m = orem % pg.out[du];
    orem /= pg.out[du];
    ooff += m * gs[du];
    const std::int64_t i = f.p.dx_index(g, du, m);
    if (i < 0 || i >= g.in[du]) return false;
    xoff += i * xs[du];
  }
  return true;
}

// Line l of phase f (its index along the second-to-last dim; s >= 2) in dx: lx += its dx offset
// (strides xs); false when it lies outside dx.
template <class T>
bool line_in_dx(const ConvGeometry& g, const FusedPhase<T>& f, const std::vector<std::int64_t>& xs,
                std::int64_t l, std::int64_t& lx) {
  const std::size_t d = g.in.size() - 2;
  const std::int64_t i = f.p.dx_index(g, d, l);
  if (i < 0 || i >= g.in[d]) return false;
  lx += i * xs[d];
  return true;
}

// The values of phase f inside dx, in order (outer plane, line, last-dim value), as window offsets
// into the padded copy (strides gs) and runs along dx's last dim (strides xs).
template <class T>
void phase_positions(const ConvGeometry& g, const std::vector<std::int64_t>& gs,
                     const std::vector<std::int64_t>& xs, FusedPhase<T>& f) {
  const std::size_t s = g.in.size();
  const ConvGeometry& pg = f.p.g;
  const std::int64_t lines = s == 1 ? 1 : pg.out[s - 2];
  for (std::int64_t op = 0; op < f.outer; ++op) {
    std::int64_t ooff = 0, xoff = 0;
    if (!outer_plane(g, f, gs, xs, op, ooff, xoff)) continue;
    for (std::int64_t l = 0; l < lines; ++l) {
      std::int64_t lx = xoff;
      if (s >= 2 && !line_in_dx(g, f, xs, l, lx)) continue;
      if (f.j1 <= f.j0) continue;
      f.runs.push_back({static_cast<std::int64_t>(f.pos_off.size()),
                        lx + f.first_last + g.stride[s - 1] * f.j0, f.j1 - f.j0});
      for (std::int64_t j = f.j0; j < f.j1; ++j) f.pos_off.push_back(ooff + l * f.line + j);
    }
  }
}

// One (sample, group) of phase_implicit, positions-major: per phase, tiles of its values inside
// dx, C^T[position, c] = sum over rows kk of window_kk[position] * w_phase[c, kk] with the
// micro-kernel's rows being positions (each through its own window pointer, so that no grid
// column past the phase's last-dim extent is computed) and its columns dx channels (the packed
// phase weights as B panels); each tile transposed into channel rows (line::transpose_add), then
// written into dx every stride-th value with the bias (line::add_rows_strided). Each dx value is
// one phase's sum over its reduction slices in order, as on the grid.
template <class T>
void phase_windows(const ConvPlan& plan, const GemmKernel<T>& kern,
                   const std::vector<FusedPhase<T>>& phases, const T* padded, std::int64_t grp,
                   std::int64_t cgp, const T* bg, T* dxg) {
  const ConvGeometry& g = plan.geometry;
  const std::int64_t cg = g.group_channels(), in_n = g.in_numel();
  const std::int64_t mr = kern.mr, tile = plan.tile;  // tile: positions, mr multiple
  const std::int64_t st = g.stride[g.in.size() - 1];
  const Isa isa = plan.target.isa;
  T* ctile = gemm_workspace<T>(GemmBuffer::Extra, tile * cgp);
  T* rows_tile = gemm_workspace<T>(GemmBuffer::B, cg * tile);
  thread_local std::vector<const T*> abase;
  thread_local std::vector<line::Segment> segs;
  abase.resize(static_cast<std::size_t>(tile));
  for (const FusedPhase<T>& f : phases) {
    const auto total = static_cast<std::int64_t>(f.pos_off.size());
    const std::int64_t slices = ceil_div(f.rows, plan.tile_rows);
    const std::int64_t kstep = ceil_div(f.rows, slices);
    const T* wg = f.packed.get() + grp * cgp * f.rows;
    std::size_t run = 0;  // the first run not wholly before the tile
    for (std::int64_t p0 = 0; p0 < total; p0 += tile) {
      const std::int64_t np = std::min(tile, total - p0), npad = ceil_div(np, mr) * mr;
      for (std::int64_t i = 0; i < npad; ++i)
        abase[static_cast<std::size_t>(i)] =
            padded + f.pos_off[static_cast<std::size_t>(p0 + std::min(i, np - 1))];
      windows_product(kern, wg, f.rows, kstep, abase.data(), f.offs.data(), npad, cg, cgp, ctile);
      line::transpose_add(isa, rows_tile, tile, ctile, cgp, static_cast<const T*>(nullptr), cg, np);
      segs.clear();
      for (; run < f.runs.size(); ++run) {
        const line::Segment& r = f.runs[run];
        const std::int64_t c0 = std::max(r.src, p0), c1 = std::min(r.src + r.n, p0 + np);
        if (c1 > c0) segs.push_back({c0 - p0, r.dst + st * (c0 - r.src), c1 - c0});
        if (r.src + r.n > p0 + np) break;  // continues into the next tile
      }
      line::add_rows_strided(isa, dxg, in_n, rows_tile, tile, bg, cg, segs.data(),
                             static_cast<std::int64_t>(segs.size()), st);
    }
  }
}

}  // namespace

template <class T>
void phase_implicit_backward_data(const ConvPlan& plan, const GemmKernel<T>& kern, const T* dy,
                                  const T* w, const T* b, T* dx) {
  const ConvGeometry& g = plan.geometry;
  const std::size_t s = g.in.size();
  const int si = static_cast<int>(s);
  const std::int64_t cg = g.group_channels(), kg = g.group_out_channels();
  const std::int64_t in_n = g.in_numel(), out_n = g.out_numel();
  const std::int64_t mr = kern.mr, nr = kern.nr;
  const bool windows = plan.windows;
  // The packed weights' channel padding: mr-row A panels, or nr-wide B panels for the windows.
  const std::int64_t mpad = windows ? ceil_div(cg, nr) * nr : ceil_div(cg, mr) * mr;
  const PhaseLayout lay = phase_layout(g);
  // Strides of the padded copy and of dx.
  std::vector<std::int64_t> gs(s), xs(s);
  gs[s - 1] = 1;
  xs[s - 1] = 1;
  for (std::size_t d = s - 1; d-- > 0;) {
    gs[d] = gs[d + 1] * lay.ext[d + 1];
    xs[d] = xs[d + 1] * g.in[d + 1];
  }
  const std::int64_t st = g.stride[s - 1];
  // The live phases with taps, weights packed once for all tasks.
  std::vector<FusedPhase<T>> phases;
  bool all_taps = true;
  std::int64_t max_rows = 0;
  for (std::int64_t ph = 0; ph < plan.phases; ++ph) {
    FusedPhase<T> f;
    f.p = live_phase(g, ph);
    if (f.p.empty) {
      all_taps = false;
      continue;
    }
    const ConvGeometry& pg = f.p.g;
    const std::int64_t tn = pg.kernel_numel();
    f.rows = kg * tn;
    max_rows = std::max(max_rows, f.rows);
    // Tap t's offset in the padded copy.
    std::vector<std::int64_t> tap_off(static_cast<std::size_t>(tn));
    for (std::int64_t t = 0; t < tn; ++t) {
      std::int64_t trem = t, off = 0;
      for (std::size_t d = s; d-- > 0;) {
        const std::int64_t td = trem % pg.kernel[d];
        trem /= pg.kernel[d];
        off += (lay.lo[d] - pg.pad_lo[d] + pg.dilation[d] * td) * gs[d];
      }
      tap_off[static_cast<std::size_t>(t)] = off;
    }
    f.offs.resize(static_cast<std::size_t>(f.rows));
    for (std::int64_t c = 0; c < kg; ++c)
      for (std::int64_t t = 0; t < tn; ++t)
        f.offs[static_cast<std::size_t>(c * tn + t)] =
            c * lay.plane + tap_off[static_cast<std::size_t>(t)];
    f.packed = pack_weights(phase_weights(g, w, f.p), pg, windows ? kern.nr : kern.mr, mpad);
    f.line = s == 1 ? pg.out[0] : lay.ext[s - 1];
    f.cols = s == 1 ? pg.out[0] : pg.out[s - 2] * lay.ext[s - 1];
    for (std::size_t d = 0; d + 2 < s; ++d) f.outer *= pg.out[d];
    // Last dim: i = st (m' + skip) + a - pad_lo in [0, in).
    f.first_last = f.p.dx_index(g, s - 1, 0);
    f.j0 = f.first_last >= 0 ? 0 : ceil_div(-f.first_last, st);
    f.j1 = g.in[s - 1] - f.first_last > 0
               ? std::min(pg.out[s - 1], ceil_div(g.in[s - 1] - f.first_last, st))
               : 0;
    if (windows) phase_positions(g, gs, xs, f);
    phases.push_back(std::move(f));
  }
  const std::int64_t slack = lay.ext[s - 1] + nr;
  const std::int64_t tasks = plan.tasks;  // (sample, group)
  const Isa isa = plan.target.isa;        // read once, outside the parallel region
#pragma omp parallel for schedule(dynamic) if (tasks > 1 && plan.parallel)
  for (std::int64_t task = 0; task < tasks; ++task) {
    const std::int64_t n = task / g.groups, grp = task % g.groups;
    thread_local std::vector<const T*> brow;
    thread_local std::vector<line::Segment> segs;
    T* dxg = dx + (n * g.channels + grp * cg) * in_n;
    const T* bg = b ? b + grp * cg : nullptr;
    if (!all_taps) {
      for (std::int64_t c = 0; c < cg; ++c) std::fill_n(dxg + c * in_n, in_n, bg ? bg[c] : T(0));
    }
    // The padded copy of this sample's group of dy.
    T* padded = gemm_workspace<T>(GemmBuffer::Input, kg * lay.plane + slack);
    pad_planes(dy + (n * g.out_channels + grp * kg) * out_n, kg, si, g.out.data(), lay.lo.data(),
               gs.data(), lay.plane, padded);
    std::fill_n(padded + kg * lay.plane, slack, T(0));
    if (windows) {
      phase_windows(plan, kern, phases, padded, grp, mpad, bg, dxg);
      continue;
    }
    brow.resize(static_cast<std::size_t>(max_rows));
    T* ctile = gemm_workspace<T>(GemmBuffer::Extra, mpad * plan.tile);
    for (const FusedPhase<T>& f : phases) {
      const std::int64_t tile = std::min(plan.tile, ceil_div(f.cols, nr) * nr);
      const std::int64_t slices = ceil_div(f.rows, plan.tile_rows);
      const std::int64_t kstep = ceil_div(f.rows, slices);
      const T* wg = f.packed.get() + grp * mpad * f.rows;
      for (std::int64_t op = 0; op < f.outer; ++op) {
        std::int64_t ooff = 0, xoff = 0;
        if (!outer_plane(g, f, gs, xs, op, ooff, xoff)) continue;
        for (std::int64_t q0 = 0; q0 < f.cols; q0 += tile) {
          const std::int64_t ncols = std::min(tile, f.cols - q0), width = ceil_div(ncols, nr) * nr;
          // The tile's kept columns: per grid line, the values inside dx.
          segs.clear();
          for (std::int64_t l = q0 / f.line; l * f.line < q0 + ncols; ++l) {
            std::int64_t lx = xoff;
            if (s >= 2 && !line_in_dx(g, f, xs, l, lx)) continue;
            const std::int64_t c0 = std::max(l * f.line + f.j0, q0);
            const std::int64_t c1 = std::min(l * f.line + f.j1, q0 + ncols);
            if (c1 <= c0) continue;
            segs.push_back({c0 - q0, lx + f.first_last + st * (c0 - l * f.line), c1 - c0});
          }
          if (segs.empty()) continue;
          const T* base = padded + ooff + q0;
          for (std::int64_t kk = 0; kk < f.rows; ++kk)
            brow[static_cast<std::size_t>(kk)] = base + f.offs[static_cast<std::size_t>(kk)];
          rows_product(kern, wg, f.rows, kstep, brow.data(), 0, cg, width, ctile);
          line::add_rows_strided(isa, dxg, in_n, ctile, width, bg, cg, segs.data(),
                                 static_cast<std::int64_t>(segs.size()), st);
        }
      }
    }
  }
}

#define CT_INSTANTIATE(T)                                                                        \
  template void phase_implicit_backward_data<T>(const ConvPlan&, const GemmKernel<T>&, const T*, \
                                                const T*, const T*, T*);
CT_INSTANTIATE(float)
CT_INSTANTIATE(double)
#undef CT_INSTANTIATE

}  // namespace convtape::cpu::conv_detail
