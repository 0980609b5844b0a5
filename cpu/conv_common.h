// Shared index machinery of the CPU convolution paths (cpu/conv_*.cpp). Column p of the (virtual)
// column matrix of a (sample, group) is output position p; row kk is (input channel c, kernel
// offset r), and
//   col[kk, p] = x~[n, c, o(p) * stride + r * dilation - pad_lo]
// with x~ the input dilated by input_dilation (holes read as 0) and padded (outside reads as 0).
// Output positions are walked in runs along the last spatial dim, so that the innermost loop of a
// packer or direct kernel is a strided (usually unit-stride) row of the input; a run maps to one
// input row, the span of it that lies inside the row, and the step between taps.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/checked.h"
#include "core/kernel_args.h"
#include "core/storage.h"
#include "cpu/gemm_driver.h"
#include "cpu/gemm_kernel.h"

namespace convtape::cpu::conv_detail {

constexpr int kMaxRank = 8;  // spatial dims handled by the fixed-size index arrays below

// The geometry as flat arrays, built once per kernel call: the packers consult it per run.
struct Index {
  int s = 0;
  std::int64_t in[kMaxRank], out[kMaxRank], kernel[kMaxRank], stride[kMaxRank], dil[kMaxRank],
      di[kMaxRank], pad[kMaxRank], plane_stride[kMaxRank];
  std::int64_t in_numel = 1, kernel_numel = 1;
  std::int64_t span_last = 0;  // last coordinate of a dilated input row: (in - 1) * di
  explicit Index(const ConvGeometry& g) {
    s = static_cast<int>(g.spatial());
    std::int64_t ps = 1;
    for (int d = s - 1; d >= 0; --d) {
      const auto du = static_cast<std::size_t>(d);
      in[d] = g.in[du];
      out[d] = g.out[du];
      kernel[d] = g.kernel[du];
      stride[d] = g.stride[du];
      dil[d] = g.dilation[du];
      di[d] = g.input_dilation[du];
      pad[d] = g.pad_lo[du];
      plane_stride[d] = ps;
      ps *= in[d];
      kernel_numel *= kernel[d];
    }
    in_numel = ps;
    span_last = (in[s - 1] - 1) * di[s - 1];
  }
};

// A run of consecutive output positions that share every index but the last. t[d] is the
// dilated-padded input coordinate o[d] * stride[d] - pad[d] of its first position (before the
// kernel offset is added).
struct Run {
  std::int64_t col;  // position of the run's first column within the tile
  std::int64_t len;  // positions in the run
  std::int64_t t[kMaxRank];
};

// Splits output positions [p0, p0 + count) into runs along the last spatial dim.
inline void make_runs(const Index& ix, std::int64_t p0, std::int64_t count,
                      std::vector<Run>& runs) {
  runs.clear();
  const int s = ix.s;
  std::int64_t o[kMaxRank] = {};
  std::int64_t rem = p0;
  for (int d = s - 1; d >= 0; --d) {
    o[d] = rem % ix.out[d];
    rem /= ix.out[d];
  }
  std::int64_t col = 0;
  while (col < count) {
    Run r;
    r.col = col;
    r.len = std::min(count - col, ix.out[s - 1] - o[s - 1]);
    for (int d = 0; d < s; ++d) r.t[d] = o[d] * ix.stride[d] - ix.pad[d];
    runs.push_back(r);
    col += r.len;
    o[s - 1] = 0;
    for (int d = s - 2; d >= 0; --d) {  // carry into the outer dims
      if (++o[d] < ix.out[d]) break;
      o[d] = 0;
    }
  }
}

// Row kk of a group's column matrix: input channel c and the kernel offset, as dilated offsets
// rd[d] = r[d] * dilation[d].
struct RowIndex {
  std::int64_t c;
  std::int64_t rd[kMaxRank];
};

inline RowIndex decode_row(const Index& ix, std::int64_t kk) {
  RowIndex ri;
  ri.c = kk / ix.kernel_numel;
  std::int64_t rem = kk % ix.kernel_numel;
  for (int d = ix.s - 1; d >= 0; --d) {
    ri.rd[d] = (rem % ix.kernel[d]) * ix.dil[d];
    rem /= ix.kernel[d];
  }
  return ri;
}

// Where a run of one im2col row reads the input plane: the offset of the row of the input that
// the outer dims select (or -1 when that row lies in padding or a dilation hole), then, for the
// last dim, input index t(j) = first + j * step in dilated-padded coordinates.
struct RunMap {
  std::int64_t base;   // plane offset of the selected input row, -1 if none
  std::int64_t first;  // dilated coordinate of position 0 of the run along the last dim
  std::int64_t step;   // stride along the last dim
};

inline RunMap map_run(const Index& ix, const RowIndex& ri, const Run& run) {
  const int last = ix.s - 1;
  std::int64_t base = 0;
  for (int d = 0; d < last; ++d) {
    std::int64_t t = run.t[d] + ri.rd[d];
    if (ix.di[d] != 1) {
      if (t < 0 || t % ix.di[d] != 0) return {-1, 0, 0};
      t /= ix.di[d];
    }
    if (static_cast<std::uint64_t>(t) >= static_cast<std::uint64_t>(ix.in[d])) return {-1, 0, 0};
    base += t * ix.plane_stride[d];
  }
  return {base, run.t[last] + ri.rd[last], ix.stride[last]};
}

// Range [j_lo, j_hi) of run positions whose last-dim coordinate t = first + j * step is in
// [0, span] (the dilated input row).
inline void valid_span(std::int64_t first, std::int64_t step, std::int64_t len, std::int64_t span,
                       std::int64_t& j_lo, std::int64_t& j_hi) {
  if (step == 1) {
    j_lo = std::clamp<std::int64_t>(-first, 0, len);
    j_hi = std::clamp<std::int64_t>(span - first + 1, j_lo, len);
    return;
  }
  // first + j * step >= 0  <=>  j >= ceil(-first / step); first >= -pad_lo, so -first fits.
  j_lo = first >= 0 ? 0 : checked::div_ceil(-first, step);
  // first + j * step <= span  <=>  j <= floor((span - first) / step)
  j_hi = span < first ? 0 : (span - first) / step + 1;
  j_lo = std::min(j_lo, len);
  j_hi = std::clamp(j_hi, j_lo, len);
}

// Input row element at last-dim coordinate t of the dilated row (0 in a dilation hole).
template <class T>
inline T tap_value(const T* row, std::int64_t t, std::int64_t di) {
  return di == 1 ? row[t] : (t % di == 0 ? row[t / di] : T(0));
}

// vals[j] = x~ at the run's positions for one im2col row (0 in padding and dilation holes).
template <class T>
void gather_run(const Index& ix, const T* plane, const RowIndex& ri, const Run& run, T* vals) {
  const RunMap m = map_run(ix, ri, run);
  if (m.base < 0) {
    std::fill_n(vals, run.len, T(0));
    return;
  }
  const std::int64_t di = ix.di[ix.s - 1];
  std::int64_t j_lo, j_hi;
  valid_span(m.first, m.step, run.len, ix.span_last, j_lo, j_hi);
  std::fill_n(vals, j_lo, T(0));
  const T* row = plane + m.base;
  if (di == 1 && j_hi > j_lo) {  // an empty span's first index may lie far outside the row
    const T* src = row + m.first + j_lo * m.step;
    if (m.step == 1) {
      std::copy(src, src + (j_hi - j_lo), vals + j_lo);
    } else {
      for (std::int64_t j = j_lo; j < j_hi; ++j) vals[j] = src[(j - j_lo) * m.step];
    }
  } else {
    for (std::int64_t j = j_lo; j < j_hi; ++j) {
      const std::int64_t t = m.first + j * m.step;
      vals[j] = tap_value(row, t, di);
    }
  }
  std::fill(vals + j_hi, vals + run.len, T(0));
}

// The adjoint of gather_run: plane[...] += vals[j] where the run reads a real input element.
template <class T>
void scatter_add_run(const Index& ix, T* plane, const RowIndex& ri, const Run& run, const T* vals) {
  const RunMap m = map_run(ix, ri, run);
  if (m.base < 0) return;
  const std::int64_t di = ix.di[ix.s - 1];
  std::int64_t j_lo, j_hi;
  valid_span(m.first, m.step, run.len, ix.span_last, j_lo, j_hi);
  T* row = plane + m.base;
  if (di == 1) {
    if (j_hi <= j_lo) return;  // an empty span's first index may lie far outside the row
    T* dst = row + m.first + j_lo * m.step;
    if (m.step == 1) {
      for (std::int64_t j = j_lo; j < j_hi; ++j) dst[j - j_lo] += vals[j];
    } else {
      for (std::int64_t j = j_lo; j < j_hi; ++j) dst[(j - j_lo) * m.step] += vals[j];
    }
  } else {
    for (std::int64_t j = j_lo; j < j_hi; ++j) {
      const std::int64_t t = m.first + j * m.step;
      if (t % di == 0) row[t / di] += vals[j];
    }
  }
}

// Per-thread scratch: the runs of a tile and one unfolded row.
template <class T>
struct Scratch {
  std::vector<Run> runs;
  std::vector<T> vals;
};

template <class T>
Scratch<T>& scratch() {
  thread_local Scratch<T> s;
  return s;
}

// ceil(a / b) for a >= 0, b > 0, without the a + b - 1 that overflows near INT64_MAX.
inline std::int64_t ceil_div(std::int64_t a, std::int64_t b) {
  return checked::div_ceil(a, b);
}

// Scratch of the reshaping paths (the data gradient's flipped kernel and phase outputs, the
// dilation phases, the unfolded and split operands), kept per thread between calls as the GEMM's
// buffers are (cpu/gemm_driver.h), and counted with them in memory_stats().workspace_bytes: a
// fresh multi-MB allocation per call cost its page faults every time. One buffer per slot, so
// that a path and the paths it runs inside never share one; a slot grows to the largest request
// and is not shrunk.
enum class Kept {
  flipped,
  phase_z,
  dilated_in,
  dilated_out,
  dilated_dw,
  unfold_a,
  unfold_b,
  split_x,
  split_w,
  split_dw,
  count
};
template <class T>
struct KeptBuffers {
  std::vector<T> slots[static_cast<int>(Kept::count)];
  KeptBuffers() = default;
  KeptBuffers(const KeptBuffers&) = delete;
  KeptBuffers& operator=(const KeptBuffers&) = delete;
  ~KeptBuffers() {
    for (const auto& v : slots) detail::count_workspace(-bytes(v));
  }
  static std::int64_t bytes(const std::vector<T>& v) {
    return static_cast<std::int64_t>(v.size() * sizeof(T));
  }
};
template <class T>
T* kept_buffer(Kept slot, std::int64_t n) {
  thread_local KeptBuffers<T> bufs;
  auto& v = bufs.slots[static_cast<int>(slot)];
  if (static_cast<std::int64_t>(v.size()) < n) {
    detail::count_workspace(-KeptBuffers<T>::bytes(v));
    v.clear();
    v.shrink_to_fit();
    v.resize(static_cast<std::size_t>(n));
    detail::count_workspace(KeptBuffers<T>::bytes(v));
  }
  return v.data();
}

// The weights of every group packed once for all the tasks of a pass, in panels of `width` output
// channels: the GEMM's A panels (width = the micro-kernel's mr) or the positions-major forward's
// B panels (width = nr), which are the same layout, panel p at p * width * rows with element
// (row kk, channel j) at kk * width + j. Each group's kg channels are padded with zero channels to
// `padded`, a multiple of width. Left uninitialised and packed panel by panel on the team (each
// panel writes all of its values): 256 channels of 3x3 are 2.4 MB, whose serial zeroing and
// packing cost a 3x3 stride-2 forward a tenth of its time.
template <class T>
std::unique_ptr<T[]> pack_weights(const T* w, const ConvGeometry& g, int width,
                                  std::int64_t padded) {
  const std::int64_t kg = g.group_out_channels(), rows = g.group_channels() * g.kernel_numel();
  std::unique_ptr<T[]> packed(new T[static_cast<std::size_t>(g.groups * padded * rows)]);
  const std::int64_t panels = padded / width, jobs = g.groups * panels;
#pragma omp parallel for schedule(static) if (jobs > 1 && g.groups * padded * rows >= (1 << 16))
  for (std::int64_t job = 0; job < jobs; ++job) {
    const std::int64_t grp = job / panels, i0 = job % panels * width;
    MatrixPackA<T>{w + grp * kg * rows, rows, false, width}(
        i0, 0, std::min<std::int64_t>(width, kg - i0), rows,
        packed.get() + grp * padded * rows + i0 * rows);
  }
  return packed;
}

// Channels [0, channels) of src (dense planes of extent[0..s) values, last dim contiguous) into
// dst planes of `plane` values each, src value i at sum_d (i_d + lo_d) gs_d (gs[s - 1] == 1) and
// zeros everywhere else: a padded copy, zeroed and filled channel by channel while it is in cache.
template <class T>
void pad_planes(const T* src, std::int64_t channels, int s, const std::int64_t* extent,
                const std::int64_t* lo, const std::int64_t* gs, std::int64_t plane, T* dst) {
  const std::int64_t len = extent[s - 1];
  std::int64_t lines = 1;
  for (int d = 0; d + 1 < s; ++d) lines *= extent[d];
  for (std::int64_t c = 0; c < channels; ++c) {
    T* pc = dst + c * plane;
    std::fill_n(pc, plane, T(0));
    for (std::int64_t l = 0; l < lines; ++l) {
      std::int64_t rem = l, off = lo[s - 1];
      for (int d = s - 2; d >= 0; --d) {
        off += (rem % extent[d] + lo[d]) * gs[d];
        rem /= extent[d];
      }
      std::copy_n(src + (c * lines + l) * len, len, pc + off);
    }
  }
}

// The implicit GEMM's tile: C rows [k0, k1) (k0 a multiple of mr) by `width` columns (a multiple
// of nr), C = A B, with A the mr-row panels packed by pack_weights (`rows` deep) and B row kk read
// through brow[kk] + column, summed over equal reduction slices of `kstep` rows; C row i at
// ctile + i * width. The GEMM driver's loop order: reduction slice, block of mc rows, column
// panel, row panel, so that the block's packed weights (mc x kc) stay in L2 while the kc x nr
// window of B that the row pointers reach stays in L1 across the block's row panels. (Column
// panels outermost streamed all the weights, 2.4 MB for 256 channels of 3x3, from L3 per column
// panel; row panels outermost streamed the whole kc x tile window of B from L2 per row panel.)
// Each C element sums the slices in order either way. A last row panel at most half full runs
// the half-height kernel: C rows past its top mr / 2 are then not written.
template <class T>
void rows_product(const GemmKernel<T>& kern, const T* a, std::int64_t rows, std::int64_t kstep,
                  const T* const* brow, std::int64_t k0, std::int64_t k1, std::int64_t width,
                  T* ctile) {
  const std::int64_t mr = kern.mr, nr = kern.nr, mc = kern.mc;  // mc: a multiple of mr
  for (std::int64_t pc = 0; pc < rows; pc += kstep) {
    const std::int64_t kc = std::min(kstep, rows - pc);
    const T beta = pc == 0 ? T(0) : T(1);
    for (std::int64_t ic = k0; ic < k1; ic += mc)
      for (std::int64_t jr = 0; jr < width; jr += nr)
        for (std::int64_t ir = ic; ir < std::min(ic + mc, k1); ir += mr)
          (2 * (k1 - ir) <= mr ? kern.rows_part : kern.rows)(
              kc, a + (ir / mr) * mr * rows + pc * mr, brow + pc, jr, ctile + ir * width + jr,
              width, T(1), beta);
  }
}

// The positions-major tile: C^T[i, j] = sum over rows kk of abase[i][offs[kk]] * B[kk, j] for
// positions i < npad (a multiple of mr, abase holding npad window pointers) and channels
// j < cols, with B the nr-wide panels packed by pack_weights (`rows` deep, kp = cols rounded up
// to nr); C^T row i at ctile + i * kp. Summed over equal reduction slices of `kstep` rows; a last
// channel panel at most half full runs the half-width kernel.
template <class T>
void windows_product(const GemmKernel<T>& kern, const T* b, std::int64_t rows, std::int64_t kstep,
                     const T* const* abase, const std::int64_t* offs, std::int64_t npad,
                     std::int64_t cols, std::int64_t kp, T* ctile) {
  const std::int64_t mr = kern.mr, nr = kern.nr;
  for (std::int64_t pc = 0; pc < rows; pc += kstep) {
    const std::int64_t kc = std::min(kstep, rows - pc);
    const T beta = pc == 0 ? T(0) : T(1);
    for (std::int64_t j0 = 0; j0 < kp; j0 += nr) {
      const T* bp = b + j0 * rows + pc * nr;
      const auto fn = 2 * (cols - j0) <= nr ? kern.windows_half : kern.windows;
      for (std::int64_t i0 = 0; i0 < npad; i0 += mr)
        fn(kc, abase + i0, offs + pc, bp, nr, ctile + i0 * kp + j0, kp, T(1), beta);
    }
  }
}

}  // namespace convtape::cpu::conv_detail
