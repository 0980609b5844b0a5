// Blocked im2col + GEMM convolution on CPU, for any spatial rank, stride, dilation, input
// dilation and groups. Per (sample, group), with the column matrix col [C/groups * prod(R),
// positions] of cpu/conv_common.h:
//   forward          y = W col + b              (W [K/groups, C/groups * prod(R)])
//   backward_data    dx = col2im(W^T dy)        (each column-matrix entry scattered back)
//   backward_weight  dw = sum_n dy col^T
// Packers unfold only the panel the GEMM driver asks for (cpu/gemm_driver.h), walking output
// positions in runs along the last spatial dim so that the innermost loop is a strided (usually
// unit-stride) row of the input; so no column matrix is ever materialised and the workspace stays
// a few MiB per thread whatever the input size. pointwise_gemm (1x1, unit stride, no padding)
// reads the input as the GEMM operand directly.
#include <omp.h>

#include <algorithm>
#include <vector>

#include "cpu/conv_common.h"
#include "cpu/conv_paths.h"
#include "cpu/parallel.h"

namespace convtape::cpu::conv_detail {

namespace {

// Writes count consecutive columns, starting at column c0, of row kk of a packed B block
// (dst[(panel * kc + kk) * nr + lane]) with get(i), splitting at panel boundaries so that each
// segment is a contiguous store.
template <class T, class Get>
void write_columns(T* dst, std::int64_t kc, std::int64_t kk, std::int64_t nr, std::int64_t c0,
                   std::int64_t count, Get get) {
  for (std::int64_t i = 0; i < count;) {
    const std::int64_t c = c0 + i, lane = c % nr, n = std::min(count - i, nr - lane);
    T* d = dst + ((c / nr) * kc + kk) * nr + lane;
    for (std::int64_t t = 0; t < n; ++t) d[t] = get(i + t);
    i += n;
  }
}

// B = the column matrix of one (sample, group): rows kk, columns = output positions p0 + j.
template <class T>
struct Im2colPackB {
  const Index* ix;
  const T* x;  // x[n, group's first channel]
  std::int64_t p0;
  int nr;
  void operator()(std::int64_t k0, std::int64_t j0, std::int64_t kc, std::int64_t nc,
                  T* dst) const {
    Scratch<T>& s = scratch<T>();
    make_runs(*ix, p0 + j0, nc, s.runs);
    const std::int64_t di = ix->di[ix->s - 1], span = ix->span_last;
    const std::int64_t padded = (nc + nr - 1) / nr * nr;
    for (std::int64_t kk = 0; kk < kc; ++kk) {
      const RowIndex ri = decode_row(*ix, k0 + kk);
      const T* plane = x + ri.c * ix->in_numel;
      // Each run is written straight into the panels, segment by segment.
      for (const Run& run : s.runs) {
        const RunMap m = map_run(*ix, ri, run);
        if (m.base < 0) {
          write_columns(dst, kc, kk, nr, run.col, run.len, [](std::int64_t) { return T(0); });
          continue;
        }
        std::int64_t j_lo, j_hi;
        valid_span(m.first, m.step, run.len, span, j_lo, j_hi);
        write_columns(dst, kc, kk, nr, run.col, j_lo, [](std::int64_t) { return T(0); });
        const T* row = plane + m.base;
        if (j_hi <= j_lo) {
          // An empty span: its first index may lie far outside the row, so no pointer is formed.
        } else if (di == 1 && m.step == 1) {
          const T* src = row + m.first + j_lo;
          write_columns(dst, kc, kk, nr, run.col + j_lo, j_hi - j_lo,
                        [src](std::int64_t j) { return src[j]; });
        } else {
          const std::int64_t first = m.first + j_lo * m.step, step = m.step;
          write_columns(dst, kc, kk, nr, run.col + j_lo, j_hi - j_lo,
                        [row, first, step, di](std::int64_t j) {
                          return tap_value(row, first + j * step, di);
                        });
        }
        write_columns(dst, kc, kk, nr, run.col + j_hi, run.len - j_hi,
                      [](std::int64_t) { return T(0); });
      }
      write_columns(dst, kc, kk, nr, nc, padded - nc, [](std::int64_t) { return T(0); });
    }
  }
};

// B = the transposed column matrix: rows = output positions p0 + k, columns = im2col rows kk.
template <class T>
struct Im2colTPackB {
  const Index* ix;
  const T* x;
  std::int64_t p0;
  int nr;
  void operator()(std::int64_t k0, std::int64_t j0, std::int64_t kc, std::int64_t nc,
                  T* dst) const {
    Scratch<T>& s = scratch<T>();
    make_runs(*ix, p0 + k0, kc, s.runs);
    s.vals.resize(static_cast<std::size_t>(kc));
    const std::int64_t panels = (nc + nr - 1) / nr;
    for (std::int64_t jj = 0; jj < panels * nr; ++jj) {
      T* col = dst + (jj / nr) * nr * kc + jj % nr;
      if (jj >= nc) {
        for (std::int64_t k = 0; k < kc; ++k) col[k * nr] = T(0);
        continue;
      }
      const RowIndex ri = decode_row(*ix, j0 + jj);
      const T* plane = x + ri.c * ix->in_numel;
      for (const Run& run : s.runs) gather_run(*ix, plane, ri, run, s.vals.data() + run.col);
      for (std::int64_t k = 0; k < kc; ++k) col[k * nr] = s.vals[static_cast<std::size_t>(k)];
    }
  }
};

// A B packer whose columns start j_off further: a block of columns of a wider product.
template <class T, class P>
struct ShiftedB {
  P inner;
  std::int64_t j_off;
  void operator()(std::int64_t k0, std::int64_t j0, std::int64_t kc, std::int64_t nc,
                  T* dst) const {
    inner(k0, j0 + j_off, kc, nc, dst);
  }
};

}  // namespace

template <class T>
void im2col_forward(const ConvPlan& plan, const GemmKernel<T>& kern, const T* x, const T* w,
                    const T* b, T* y) {
  const ConvGeometry& g = plan.geometry;
  const Index ix(g);
  const std::int64_t cg = g.group_channels(), kg = g.group_out_channels();
  const std::int64_t rows = cg * g.kernel_numel(), positions = g.out_numel(), in_n = g.in_numel();
  // Output-position tiles per (sample, group), enough tasks for the planned threads (tile edges
  // decide which sums a GEMM tile does, see cpu/parallel.h).
  const std::int64_t width = plan.tile, tiles = plan.tiles, tasks = plan.tasks;
  const bool pointwise = plan.path == ConvPath::pointwise_gemm;
  // The weights are packed once for all tasks.
  const std::int64_t mpad = ceil_div(kg, kern.mr) * kern.mr;
  const std::unique_ptr<T[]> packed_w = pack_weights(w, g, kern.mr, mpad);
#pragma omp parallel for schedule(dynamic) if (tasks > 1 && plan.parallel)
  for (std::int64_t t = 0; t < tasks; ++t) {
    const std::int64_t n = t / (g.groups * tiles), grp = (t / tiles) % g.groups, tile = t % tiles;
    const std::int64_t p0 = tile * width, pn = std::min(width, positions - p0);
    const T* xg = x + (n * g.channels + grp * cg) * in_n;
    T* yg = y + (n * g.out_channels + grp * kg) * positions + p0;
    T beta = T(0);
    if (b) {
      for (std::int64_t k = 0; k < kg; ++k) std::fill_n(yg + k * positions, pn, b[grp * kg + k]);
      beta = T(1);
    }
    const PackedA<T> pack_a{packed_w.get() + grp * mpad * rows, rows, kern.mr};
    if (pointwise) {
      const MatrixPackB<T> pack_b{xg + p0, positions, false, kern.nr, kg <= 8 * kern.mr};
      gemm_blocked<T>(kern, kg, pn, rows, T(1), pack_a, pack_b, beta, yg, positions);
    } else {
      gemm_blocked<T>(kern, kg, pn, rows, T(1), pack_a, Im2colPackB<T>{&ix, xg, p0, kern.nr}, beta,
                      yg, positions);
    }
  }
}

template <class T>
void im2col_backward_data(const ConvPlan& plan, const GemmKernel<T>& kern, const T* dy, const T* w,
                          T* dx) {
  const ConvGeometry& g = plan.geometry;
  const Index ix(g);
  const std::int64_t cg = g.group_channels(), kg = g.group_out_channels(), rn = g.kernel_numel();
  const std::int64_t rows = cg * rn, positions = g.out_numel(), in_n = g.in_numel();
  if (plan.path == ConvPath::pointwise_gemm) {
    // dx[n, group] = W^T dy[n, group], straight into dx.
    const std::int64_t tasks = plan.tasks;  // (sample, group)
#pragma omp parallel for schedule(dynamic) if (tasks > 1 && plan.parallel)
    for (std::int64_t t = 0; t < tasks; ++t) {
      const std::int64_t n = t / g.groups, grp = t % g.groups;
      gemm_blocked<T>(kern, cg, positions, kg, T(1),
                      MatrixPackA<T>{w + grp * kg * rows, rows, true, kern.mr},
                      MatrixPackB<T>{dy + (n * g.out_channels + grp * kg) * positions, positions,
                                     false, kern.nr},
                      T(0), dx + (n * g.channels + grp * cg) * in_n, in_n);
    }
    return;
  }
  // Tasks own disjoint channel blocks of dx, so their col2im scatters never collide (as many
  // blocks as the planned threads need, at most one per channel).
  std::fill_n(dx, g.batch * g.channels * in_n, T(0));
  const std::int64_t blocks = plan.channel_blocks, chans = plan.block_channels;
  // The GEMM tile W^T dy that is scattered back: rows of the column matrix by output positions.
  const std::int64_t tile_rows = plan.tile_rows, tile_positions = plan.tile;
  const std::int64_t tasks = plan.tasks;
#pragma omp parallel for schedule(dynamic) if (tasks > 1 && plan.parallel)
  for (std::int64_t t = 0; t < tasks; ++t) {
    const std::int64_t n = t / (g.groups * blocks), grp = (t / blocks) % g.groups, blk = t % blocks;
    const std::int64_t kk_begin = blk * chans * rn, kk_end = std::min(rows, (blk + 1) * chans * rn);
    const T* dyg = dy + (n * g.out_channels + grp * kg) * positions;
    const T* wg = w + grp * kg * rows;
    T* dxg = dx + (n * g.channels + grp * cg) * in_n;
    T* buf = gemm_workspace<T>(GemmBuffer::Extra, tile_rows * tile_positions);
    Scratch<T>& s = scratch<T>();
    for (std::int64_t p0 = 0; p0 < positions; p0 += tile_positions) {
      const std::int64_t pn = std::min(tile_positions, positions - p0);
      for (std::int64_t kk0 = kk_begin; kk0 < kk_end; kk0 += tile_rows) {
        const std::int64_t mt = std::min(tile_rows, kk_end - kk0);
        // buf[mt, pn] = W^T[kk0 : kk0 + mt, :] dy[:, p0 : p0 + pn]
        gemm_blocked<T>(kern, mt, pn, kg, T(1), MatrixPackA<T>{wg + kk0, rows, true, kern.mr},
                        MatrixPackB<T>{dyg + p0, positions, false, kern.nr}, T(0), buf, pn);
        make_runs(ix, p0, pn, s.runs);
        for (std::int64_t i = 0; i < mt; ++i) {
          const RowIndex ri = decode_row(ix, kk0 + i);
          T* plane = dxg + ri.c * in_n;
          for (const Run& run : s.runs) scatter_add_run(ix, plane, ri, run, buf + i * pn + run.col);
        }
      }
    }
  }
}

template <class T>
void im2col_backward_weight(const ConvPlan& plan, const GemmKernel<T>& kern, const T* dy,
                            const T* x, T* dw) {
  const ConvGeometry& g = plan.geometry;
  const Index ix(g);
  const std::int64_t cg = g.group_channels(), kg = g.group_out_channels();
  const std::int64_t rows = cg * g.kernel_numel(), positions = g.out_numel(), in_n = g.in_numel();
  const std::int64_t wsize = g.out_channels * rows;
  // Reduction over samples and positions: the (sample, tile) tasks are cut into `used` contiguous
  // parts, each summed in task order into its own dw (part 0 into dw itself), and the parts are
  // added in order below. The sums do not depend on which thread runs a part, and the cut (tiles
  // and parts) depends on plan_threads() only (cpu/parallel.h): the plan's tile, tiles and parts.
  const std::int64_t width = plan.tile, tiles = plan.tiles, tasks = plan.tasks;
  const int used = plan.parts;
  const bool pointwise = plan.path == ConvPath::pointwise_gemm;
  // into[grp][:, j0 : j0 + nc] += dy[n, grp][:, p0 : p0 + pn] col(x[n, grp])^T[p0 : p0 + pn,
  // j0 : j0 + nc]: columns [j0, j0 + nc) of one (sample, group)'s product over a run of positions.
  const auto accumulate = [&](T* into, std::int64_t n, std::int64_t grp, std::int64_t p0,
                              std::int64_t pn, std::int64_t j0, std::int64_t nc) {
    const T* dyg = dy + (n * g.out_channels + grp * kg) * positions + p0;
    const T* xg = x + (n * g.channels + grp * cg) * in_n;
    const MatrixPackA<T> pack_a{dyg, positions, false, kern.mr};
    T* dwg = into + grp * kg * rows + j0;
    if (pointwise)
      gemm_blocked<T>(kern, kg, nc, pn, T(1), pack_a,
                      ShiftedB<T, MatrixPackB<T>>{{xg + p0, in_n, true, kern.nr}, j0}, T(1), dwg,
                      rows);
    else
      gemm_blocked<T>(kern, kg, nc, pn, T(1), pack_a,
                      ShiftedB<T, Im2colTPackB<T>>{{&ix, xg, p0, kern.nr}, j0}, T(1), dwg, rows);
  };
  std::fill_n(dw, wsize, T(0));
  if (plan.channel_blocks > 0) {
    // Few samples: each task owns a block of dw's columns (rows of the column matrix) and sums
    // every sample and position into it.
    const std::int64_t bw = plan.block_channels, blocks = plan.channel_blocks;
#pragma omp parallel for schedule(dynamic) if (blocks > 1 && plan.parallel)
    for (std::int64_t blk = 0; blk < blocks; ++blk) {
      const std::int64_t j0 = blk * bw, nc = std::min(bw, rows - j0);
      for (std::int64_t n = 0; n < g.batch; ++n)
        for (std::int64_t grp = 0; grp < g.groups; ++grp)
          accumulate(dw, n, grp, 0, positions, j0, nc);
    }
    return;
  }
  std::vector<T> partial(static_cast<std::size_t>(std::max(used - 1, 0) * wsize), T(0));
#pragma omp parallel for schedule(dynamic) num_threads(run_threads(used)) if (used > 1)
  for (int part = 0; part < used; ++part) {
    T* acc = part == 0 ? dw : partial.data() + (part - 1) * wsize;
    for (std::int64_t t = part_begin(tasks, used, part); t < part_begin(tasks, used, part + 1);
         ++t) {
      const std::int64_t n = t / tiles, p0 = (t % tiles) * width,
                         pn = std::min(width, positions - p0);
      for (std::int64_t grp = 0; grp < g.groups; ++grp) accumulate(acc, n, grp, p0, pn, 0, rows);
    }
  }
  for (int p = 0; p + 1 < used; ++p) {
    const T* src = partial.data() + p * wsize;
    for (std::int64_t i = 0; i < wsize; ++i) dw[i] += src[i];
  }
}

#define CT_INSTANTIATE(T)                                                                          \
  template void im2col_forward<T>(const ConvPlan&, const GemmKernel<T>&, const T*, const T*,       \
                                  const T*, T*);                                                   \
  template void im2col_backward_data<T>(const ConvPlan&, const GemmKernel<T>&, const T*, const T*, \
                                        T*);                                                       \
  template void im2col_backward_weight<T>(const ConvPlan&, const GemmKernel<T>&, const T*,         \
                                          const T*, T*);
CT_INSTANTIATE(float)
CT_INSTANTIATE(double)
#undef CT_INSTANTIATE

}  // namespace convtape::cpu::conv_detail
