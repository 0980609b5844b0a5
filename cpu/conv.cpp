// Blocked im2col + GEMM convolution on CPU. Column p of the (virtual) column matrix is output
// position p; row kk is (input channel c, kernel offset r). Packers unfold only the panel the GEMM
// driver asks for, walking output positions in runs along the last spatial dim so that the
// innermost loop is a strided (usually unit-stride) row of the input.
#include "cpu/conv.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>
#include <optional>
#include <vector>

#include "core/checked.h"
#include "cpu/gemm.h"
#include "cpu/gemm_driver.h"
#include "cpu/line_ops.h"
#include "cpu/parallel.h"

namespace convtape::cpu {

namespace {

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
void make_runs(const Index& ix, std::int64_t p0, std::int64_t count, std::vector<Run>& runs) {
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

RowIndex decode_row(const Index& ix, std::int64_t kk) {
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
T tap_value(const T* row, std::int64_t t, std::int64_t di) {
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

// Multiply-adds of one pass of the convolution; below kParallelWork a pass runs on the calling
// thread, since waking the team costs more than the work (tiny convs in tests and small models).
// batch * out_channels * out_numel is the output's element count, group_channels * kernel_numel
// the weight's per output channel; their product saturates (it only picks the thread count).
std::int64_t pass_work(const ConvGeometry& g) {
  return checked::try_mul(g.batch * g.out_channels * g.out_numel(),
                          g.group_channels() * g.kernel_numel())
      .value_or(std::numeric_limits<std::int64_t>::max());
}
constexpr std::int64_t kParallelWork = 1 << 18;

// ceil(a / b) for a >= 0, b > 0, without the a + b - 1 that overflows near INT64_MAX.
std::int64_t ceil_div(std::int64_t a, std::int64_t b) {
  return checked::div_ceil(a, b);
}

// Output-position tiles per (sample, group) so that there are enough tasks for the threads (the
// planned ones: tile edges decide which sums a GEMM tile does, see cpu/parallel.h).
std::int64_t tile_width(std::int64_t positions, std::int64_t per_sample_tasks,
                        std::int64_t preferred) {
  const int threads = plan_threads();
  std::int64_t tiles = std::max<std::int64_t>(ceil_div(positions, preferred), 1);
  // An empty batch has no tasks to spread (and nothing to divide by). per_sample_tasks * tiles is
  // at most batch * groups * positions, below the output's element count.
  if (per_sample_tasks > 0 && per_sample_tasks * tiles < 2 * threads)
    tiles = std::min(positions, ceil_div(2 * threads, per_sample_tasks));
  return std::max<std::int64_t>(ceil_div(positions, std::max<std::int64_t>(tiles, 1)), 1);
}

// Direct kernels for convolutions in which every output channel reads one input channel
// (C / groups == 1 with few outputs per group: depthwise). A GEMM with one or two rows would
// waste the micro-kernel, so these loop over output runs and kernel taps with unit-stride FMAs.
bool use_direct(const ConvGeometry& g) {
  return g.group_channels() == 1 && g.group_out_channels() <= 4;
}

// Calls f(j_lo, j_hi, run, map, tap offset r) for every (run, kernel tap) whose last-dim
// coordinates fall inside the input row (holes of an input dilation are skipped by the callers).
template <class F>
void for_each_tap(const Index& ix, const std::vector<Run>& runs, F&& f) {
  for (std::int64_t r = 0; r < ix.kernel_numel; ++r) {
    const RowIndex ri = decode_row(ix, r);  // channel 0, tap r
    for (const Run& run : runs) {
      const RunMap m = map_run(ix, ri, run);
      if (m.base < 0) continue;
      std::int64_t j_lo, j_hi;
      valid_span(m.first, m.step, run.len, ix.span_last, j_lo, j_hi);
      if (j_lo < j_hi) f(r, run, m, j_lo, j_hi);
    }
  }
}

// Depthwise kernels on a zero-padded copy of each plane (no input dilation): every (output line,
// kernel tap) pair is then one bounds-free strided loop, which keeps the per-tap overhead small.
// The plane's rows, the output lines and the kernel taps are precomputed as padded-plane offsets.
// Values in a padded plane: per dim the larger of the input with its low padding and the reach of
// the last output's window, (out - 1) * stride + dilation * (kernel - 1) + 1. Each is at most the
// padded extent the front end checked; the product is checked here (nullopt when it overflows).
std::optional<std::int64_t> padded_plane_size(const Index& ix) {
  std::optional<std::int64_t> size = 1;
  for (int d = 0; d < ix.s && size; ++d) {
    const std::int64_t reach = (ix.out[d] - 1) * ix.stride[d] + ix.dil[d] * (ix.kernel[d] - 1) + 1;
    size = checked::try_mul(*size, std::max(ix.in[d] + ix.pad[d], reach));
  }
  return size;
}

struct PaddedPlane {
  std::int64_t size = 1;
  std::vector<std::int64_t> rows;   // padded offset of each input row
  std::vector<std::int64_t> lines;  // padded offset of each output line's first tap
  std::vector<std::int64_t> taps;   // padded offset of each tap relative to the first
  std::int64_t row_len;             // input values per row
  line::PlaneMap map;

  // Built only where padded_direct_ok holds, so size and every offset below fit.
  explicit PaddedPlane(const Index& ix) : row_len(ix.in[ix.s - 1]) {
    const int s = ix.s;
    std::int64_t ps[kMaxRank];  // padded strides
    for (int d = s - 1; d >= 0; --d) {
      const std::int64_t reach =
          (ix.out[d] - 1) * ix.stride[d] + ix.dil[d] * (ix.kernel[d] - 1) + 1;
      ps[d] = size;
      size *= std::max(ix.in[d] + ix.pad[d], reach);
    }
    std::int64_t nrows = 1, nlines = 1;
    for (int d = 0; d + 1 < s; ++d) {
      nrows *= ix.in[d];
      nlines *= ix.out[d];
    }
    rows.resize(static_cast<std::size_t>(nrows));
    for (std::size_t r = 0; r < rows.size(); ++r) {
      std::int64_t rem = static_cast<std::int64_t>(r), off = ix.pad[s - 1];
      for (int d = s - 2; d >= 0; --d) {
        off += (rem % ix.in[d] + ix.pad[d]) * ps[d];
        rem /= ix.in[d];
      }
      rows[r] = off;
    }
    lines.resize(static_cast<std::size_t>(nlines));
    for (std::size_t l = 0; l < lines.size(); ++l) {
      std::int64_t rem = static_cast<std::int64_t>(l), off = 0;
      for (int d = s - 2; d >= 0; --d) {
        off += (rem % ix.out[d]) * ix.stride[d] * ps[d];
        rem /= ix.out[d];
      }
      lines[l] = off;
    }
    taps.resize(static_cast<std::size_t>(ix.kernel_numel));
    for (std::int64_t r = 0; r < ix.kernel_numel; ++r) {
      const RowIndex tap = decode_row(ix, r);
      std::int64_t off = 0;
      for (int d = 0; d < s; ++d) off += tap.rd[d] * ps[d];
      taps[static_cast<std::size_t>(r)] = off;
    }
    map = {lines.data(),  static_cast<std::int64_t>(lines.size()),
           taps.data(),   static_cast<std::int64_t>(taps.size()),
           ix.out[s - 1], ix.stride[s - 1]};
  }
  // Copies an unpadded plane into the interior of buf (whose padding the caller keeps zero).
  template <class T>
  void load(const T* plane, T* buf) const {
    line::scatter_rows(buf, rows.data(), plane, static_cast<std::int64_t>(rows.size()), row_len);
  }
  // Copies the interior of buf into an unpadded plane.
  template <class T>
  void store(const T* buf, T* plane) const {
    line::gather_rows(plane, buf, rows.data(), static_cast<std::int64_t>(rows.size()), row_len);
  }
};

// No input dilation, and a padded plane at most four times the input and output planes plus 64 Ki
// values: filling and loading the plane then costs no more than the real work. A huge padding,
// stride or dilation (whose windows mostly read zeros) takes the direct kernels, whose work is the
// output times the kernel's taps.
bool padded_direct_ok(const Index& ix) {
  for (int d = 0; d < ix.s; ++d)
    if (ix.di[d] != 1) return false;
  std::int64_t out_numel = 1;
  for (int d = 0; d < ix.s; ++d) out_numel *= ix.out[d];  // an output plane's size: fits
  const auto size = padded_plane_size(ix);
  return size && *size / 4 <= ix.in_numel + out_numel + 16384;
}

template <class T>
void padded_direct_forward(const T* x, const T* w, const T* b, T* y, const ConvGeometry& g,
                           const Index& ix) {
  const PaddedPlane pp(ix);
  const std::int64_t kg = g.group_out_channels(), positions = g.out_numel(), rn = ix.kernel_numel;
  const std::int64_t planes = g.batch * g.out_channels;
#pragma omp parallel if (planes > 1 && pass_work(g) >= kParallelWork)
  {
    // Every load rewrites the same interior, so the padding is zeroed once per thread.
    T* buf = gemm_workspace<T>(GemmBuffer::Input, pp.size);
    std::fill_n(buf, pp.size, T(0));
#pragma omp for schedule(dynamic, 4)
    for (std::int64_t pl = 0; pl < planes; ++pl) {
      const std::int64_t n = pl / g.out_channels, k = pl % g.out_channels, c = k / kg;
      pp.load(x + (n * g.channels + c) * ix.in_numel, buf);
      line::taps(y + pl * positions, buf, w + k * rn, b ? b[k] : T(0), pp.map);
    }
  }
}

template <class T>
void padded_direct_backward_data(const T* dy, const T* w, T* dx, const ConvGeometry& g,
                                 const Index& ix) {
  const PaddedPlane pp(ix);
  const std::int64_t kg = g.group_out_channels(), positions = g.out_numel(), rn = ix.kernel_numel;
  const std::int64_t planes = g.batch * g.channels;
#pragma omp parallel for schedule(dynamic, 4) if (planes > 1 && pass_work(g) >= kParallelWork)
  for (std::int64_t pl = 0; pl < planes; ++pl) {  // each task owns one dx plane
    const std::int64_t n = pl / g.channels, c = pl % g.channels;
    T* buf = gemm_workspace<T>(GemmBuffer::Input, pp.size);
    std::fill_n(buf, pp.size, T(0));
    for (std::int64_t k = c * kg; k < (c + 1) * kg; ++k)
      line::scatter(buf, dy + (n * g.out_channels + k) * positions, w + k * rn, pp.map);
    pp.store(buf, dx + pl * ix.in_numel);
  }
}

template <class T>
void padded_direct_backward_weight(const T* dy, const T* x, T* dw, const ConvGeometry& g,
                                   const Index& ix) {
  const PaddedPlane pp(ix);
  const std::int64_t kg = g.group_out_channels(), positions = g.out_numel(), rn = ix.kernel_numel;
#pragma omp parallel if (g.out_channels > 1 && pass_work(g) >= kParallelWork)
  {
    T* buf = gemm_workspace<T>(GemmBuffer::Input, pp.size);
    std::fill_n(buf, pp.size, T(0));
#pragma omp for schedule(dynamic)
    for (std::int64_t k = 0; k < g.out_channels; ++k) {  // each task owns one row of dw
      const std::int64_t c = k / kg;
      T* dwk = dw + k * rn;
      std::fill_n(dwk, rn, T(0));
      for (std::int64_t n = 0; n < g.batch; ++n) {
        pp.load(x + (n * g.channels + c) * ix.in_numel, buf);
        line::tap_dots(dwk, dy + (n * g.out_channels + k) * positions, buf, pp.map);
      }
    }
  }
}

template <class T>
void direct_forward(const T* x, const T* w, const T* b, T* y, const ConvGeometry& g) {
  const Index ix(g);
  const std::int64_t kg = g.group_out_channels(), positions = g.out_numel(), in_n = g.in_numel();
  const std::int64_t rn = g.kernel_numel();
  const std::int64_t di = g.input_dilation[static_cast<std::size_t>(g.spatial() - 1)];
  const std::int64_t planes = g.batch * g.out_channels;
#pragma omp parallel for schedule(dynamic, 4) if (planes > 1 && pass_work(g) >= kParallelWork)
  for (std::int64_t pl = 0; pl < planes; ++pl) {
    const std::int64_t n = pl / g.out_channels, k = pl % g.out_channels, c = k / kg;
    const T* plane = x + (n * g.channels + c) * in_n;
    const T* wk = w + k * rn;
    T* out = y + pl * positions;
    std::fill_n(out, positions, b ? b[k] : T(0));
    Scratch<T>& s = scratch<T>();
    make_runs(ix, 0, positions, s.runs);
    for_each_tap(
        ix, s.runs,
        [&](std::int64_t r, const Run& run, const RunMap& m, std::int64_t j_lo, std::int64_t j_hi) {
          const T wr = wk[r];
          const T* row = plane + m.base;
          T* o = out + run.col;
          if (di == 1 && m.step == 1) {
            // Based at the first valid tap: row + m.first alone may point before the row.
            const T* src = row + (m.first + j_lo);
            for (std::int64_t j = j_lo; j < j_hi; ++j) o[j] += wr * src[j - j_lo];
          } else {
            for (std::int64_t j = j_lo; j < j_hi; ++j)
              o[j] += wr * tap_value(row, m.first + j * m.step, di);
          }
        });
  }
}

template <class T>
void direct_backward_data(const T* dy, const T* w, T* dx, const ConvGeometry& g) {
  const Index ix(g);
  const std::int64_t kg = g.group_out_channels(), positions = g.out_numel(), in_n = g.in_numel();
  const std::int64_t rn = g.kernel_numel();
  const std::int64_t di = g.input_dilation[static_cast<std::size_t>(g.spatial() - 1)];
  const std::int64_t planes = g.batch * g.channels;  // each task owns one dx plane
#pragma omp parallel for schedule(dynamic, 4) if (planes > 1 && pass_work(g) >= kParallelWork)
  for (std::int64_t pl = 0; pl < planes; ++pl) {
    const std::int64_t n = pl / g.channels, c = pl % g.channels;
    T* plane = dx + pl * in_n;
    std::fill_n(plane, in_n, T(0));
    Scratch<T>& s = scratch<T>();
    make_runs(ix, 0, positions, s.runs);
    for (std::int64_t k = c * kg; k < (c + 1) * kg; ++k) {
      const T* grad = dy + (n * g.out_channels + k) * positions;
      const T* wk = w + k * rn;
      for_each_tap(ix, s.runs,
                   [&](std::int64_t r, const Run& run, const RunMap& m, std::int64_t j_lo,
                       std::int64_t j_hi) {
                     const T wr = wk[r];
                     T* row = plane + m.base;
                     const T* gr = grad + run.col;
                     if (di == 1 && m.step == 1) {
                       T* dst = row + (m.first + j_lo);  // see direct_forward
                       for (std::int64_t j = j_lo; j < j_hi; ++j) dst[j - j_lo] += wr * gr[j];
                     } else {
                       for (std::int64_t j = j_lo; j < j_hi; ++j) {
                         const std::int64_t t = m.first + j * m.step;
                         if (t % di == 0) row[t / di] += wr * gr[j];
                       }
                     }
                   });
    }
  }
}

template <class T>
void direct_backward_weight(const T* dy, const T* x, T* dw, const ConvGeometry& g) {
  const Index ix(g);
  const std::int64_t kg = g.group_out_channels(), positions = g.out_numel(), in_n = g.in_numel();
  const std::int64_t rn = g.kernel_numel();
  const std::int64_t di = g.input_dilation[static_cast<std::size_t>(g.spatial() - 1)];
#pragma omp parallel for schedule(dynamic) if (g.out_channels > 1 && pass_work(g) >= kParallelWork)
  for (std::int64_t k = 0; k < g.out_channels; ++k) {  // each task owns one row of dw
    const std::int64_t c = k / kg;
    T* dwk = dw + k * rn;
    std::fill_n(dwk, rn, T(0));
    Scratch<T>& s = scratch<T>();
    make_runs(ix, 0, positions, s.runs);
    for (std::int64_t n = 0; n < g.batch; ++n) {
      const T* plane = x + (n * g.channels + c) * in_n;
      const T* grad = dy + (n * g.out_channels + k) * positions;
      for_each_tap(ix, s.runs,
                   [&](std::int64_t r, const Run& run, const RunMap& m, std::int64_t j_lo,
                       std::int64_t j_hi) {
                     const T* row = plane + m.base;
                     const T* gr = grad + run.col;
                     T acc = T(0);
                     if (di == 1 && m.step == 1) {
                       const T* src = row + (m.first + j_lo);  // see direct_forward
                       for (std::int64_t j = j_lo; j < j_hi; ++j) acc += gr[j] * src[j - j_lo];
                     } else {
                       for (std::int64_t j = j_lo; j < j_hi; ++j)
                         acc += gr[j] * tap_value(row, m.first + j * m.step, di);
                     }
                     dwk[r] += acc;
                   });
    }
  }
}

// Implicit GEMM for unit-stride convolutions without input dilation. One sample's group is copied
// into a zero-padded buffer laid out on the grid G = (out[0], padded in[1], ..., padded in[s-1]);
// on that grid, row kk = (c, r) of the column matrix is the padded buffer itself shifted by
// off(kk) = c * plane + sum_d r[d] * dilation[d] * Gstride[d]. The micro-kernel reads B through one
// row pointer per kk, so nothing is packed; grid columns past the real output width are computed
// and dropped. Used when the padded sample fits a few MiB and there are samples enough for the
// threads.
constexpr std::int64_t kImplicitBytes = std::int64_t{6} << 20;

bool implicit_ok(const ConvGeometry& g, std::size_t elem) {
  if (use_direct(g) || g.pointwise() || g.group_channels() == 0) return false;
  // The buffer's size in checked arithmetic: a huge stride makes as many phases, and an unchecked
  // product once wrapped to a small value here and sent ImplicitGrid looping over 2^62 phases.
  std::optional<std::int64_t> padded = g.group_channels() * static_cast<std::int64_t>(elem);
  for (std::size_t d = 0; d < g.in.size() && padded; ++d) {
    if (g.input_dilation[d] != 1) return false;
    // Every stride phase of the dim, each as long as the output plus the kernel's reach in it;
    // out + reach / stride <= padded extent / stride + 2 fits.
    const std::int64_t phase = g.out[d] + g.dilation[d] * (g.kernel[d] - 1) / g.stride[d];
    const auto extent = checked::try_mul(g.stride[d], phase);
    padded = extent ? checked::try_mul(*padded, *extent) : std::nullopt;
  }
  const std::int64_t threads = plan_threads();  // the path decides the sums' order
  return padded && *padded <= kImplicitBytes &&
         (g.batch * g.groups >= threads || pass_work(g) < kParallelWork);
}

// The padded grid of one sample's group. A strided conv is first split into its stride phases:
// phase plane (a_0, .., a_{s-1}) holds the padded input at coordinates stride * i + a, so that tap
// r of output o, at padded coordinate stride * o + dil * r = stride * (o + dil * r / stride) +
// (dil * r) % stride, reads phase (dil * r) % stride at o + dil * r / stride: a unit-stride window
// again. Each phase plane has extents ip (output extent + the kernel's reach in phase
// coordinates) and strides gs; `plane` is the padded size of one channel (all its phases), and
// off(kk) the window offset of column-matrix row kk. The grid's columns run over the output's
// last two dims with the last one padded (out[s-2] x ip[s-1] columns per outer plane, the extra
// ip - out columns of each line being discarded), once per outer plane (the output positions of
// dims 0 .. s-3): padding only the last dim keeps the wasted columns of a 3-d conv at ip/out of
// one dim instead of three. A unit-stride conv has one phase.
struct ImplicitGrid {
  std::int64_t ip[kMaxRank], gs[kMaxRank], phases[kMaxRank];
  std::int64_t pplane = 0;     // values per phase plane
  std::int64_t plane = 0;      // padded values per channel (every phase)
  std::int64_t cols = 0;       // grid columns per outer plane
  std::int64_t outer = 1;      // outer planes
  std::int64_t grid = 0;       // outer * cols
  std::int64_t plane_out = 0;  // output positions per outer plane
  std::vector<std::int64_t> offs, outer_off;
  ImplicitGrid(const Index& ix, std::int64_t rows) : offs(static_cast<std::size_t>(rows)) {
    const int s = ix.s;
    std::int64_t nphase = 1;
    for (int d = 0; d < s; ++d) {
      ip[d] = ix.out[d] + ix.dil[d] * (ix.kernel[d] - 1) / ix.stride[d];
      phases[d] = ix.stride[d];
      nphase *= phases[d];
    }
    gs[s - 1] = 1;
    for (int d = s - 2; d >= 0; --d) gs[d] = gs[d + 1] * ip[d + 1];
    pplane = gs[0] * ip[0];
    plane = nphase * pplane;
    cols = s == 1 ? ix.out[0] : ix.out[s - 2] * ip[s - 1];
    plane_out = s == 1 ? ix.out[0] : ix.out[s - 2] * ix.out[s - 1];
    for (int d = 0; d + 2 < s; ++d) outer *= ix.out[d];
    grid = outer * cols;
    outer_off.resize(static_cast<std::size_t>(outer));
    for (std::int64_t op = 0; op < outer; ++op) {
      std::int64_t rem = op, off = 0;
      for (int d = s - 3; d >= 0; --d) {
        off += (rem % ix.out[d]) * gs[d];
        rem /= ix.out[d];
      }
      outer_off[static_cast<std::size_t>(op)] = off;
    }
    for (std::int64_t kk = 0; kk < rows; ++kk) {
      const RowIndex ri = decode_row(ix, kk);
      std::int64_t off = ri.c * plane, phase = 0;
      for (int d = 0; d < s; ++d) {
        const std::int64_t reach = ri.rd[d];  // dil * r
        off += reach / ix.stride[d] * gs[d];
        phase = phase * phases[d] + reach % ix.stride[d];
      }
      offs[static_cast<std::size_t>(kk)] = off + phase * pplane;
    }
  }
  // Zero-padded, phase-split copy of channels [0, cg) of xg into the per-thread Input buffer, with
  // `slack` extra zeros after the last plane. Input values that no output reads are left out.
  template <class T>
  T* pad(const Index& ix, const T* xg, std::int64_t cg, std::int64_t slack) const {
    const int s = ix.s;
    const std::int64_t size = cg * plane + slack;
    T* padded = gemm_workspace<T>(GemmBuffer::Input, size);
    std::fill_n(padded, size, T(0));
    const std::int64_t lines = ix.in_numel / ix.in[s - 1], len = ix.in[s - 1];
    const std::int64_t st = ix.stride[s - 1], lo = ix.pad[s - 1];
    for (std::int64_t c = 0; c < cg; ++c)
      for (std::int64_t line = 0; line < lines; ++line) {
        std::int64_t rem = line, base = c * plane, phase = 0, scale = 1;
        bool kept = true;
        for (int d = s - 2; d >= 0 && kept; --d) {
          const std::int64_t u = rem % ix.in[d] + ix.pad[d];
          rem /= ix.in[d];
          kept = u / ix.stride[d] < ip[d];
          base += u / ix.stride[d] * gs[d];
          phase += (u % ix.stride[d]) * scale;
          scale *= phases[d];
        }
        if (!kept) continue;
        const T* src = xg + (c * lines + line) * len;
        if (st == 1) {
          std::copy_n(src, std::min(len, ip[s - 1] - lo), padded + base + phase * pplane + lo);
          continue;
        }
        // One strided gather per phase of the last dim (which varies fastest in the phase index):
        // input i lands at index (i + lo) / st of phase (i + lo) % st.
        for (std::int64_t a = 0; a < st; ++a) {
          const std::int64_t i0 = ((a - lo) % st + st) % st;  // first i of phase a
          T* dst = padded + base + (phase * st + a) * pplane + (i0 + lo) / st;
          const std::int64_t count = std::min(ceil_div(len - i0, st), ip[s - 1] - (i0 + lo) / st);
          for (std::int64_t j = 0; j < count; ++j) dst[j] = src[i0 + j * st];
        }
      }
    return padded;
  }
  // Output position of column q of outer plane op, or -1 for a column past the output's last dim.
  std::int64_t position(const Index& ix, std::int64_t op, std::int64_t q) const {
    if (ix.s == 1) return q;
    const std::int64_t j = q % ip[ix.s - 1];
    if (j >= ix.out[ix.s - 1]) return -1;
    return op * plane_out + (q / ip[ix.s - 1]) * ix.out[ix.s - 1] + j;
  }
};

template <class T>
void implicit_forward(const T* x, const T* packed_w, std::int64_t mpad, const T* b, T* y,
                      const ConvGeometry& g) {
  const GemmKernel<T>& kern = gemm_kernel<T>();
  const Index ix(g);
  const int s = ix.s;
  const std::int64_t cg = g.group_channels(), kg = g.group_out_channels(),
                     rows = cg * ix.kernel_numel;
  const std::int64_t positions = g.out_numel();
  const ImplicitGrid ig(ix, rows);
  const auto& offs = ig.offs;
  const std::int64_t nr = kern.nr, mr = kern.mr;
  const std::int64_t tile = std::min<std::int64_t>(kern.nc, ceil_div(ig.cols, nr) * nr);
  // A run of grid columns that maps to consecutive output positions: one output line (s >= 2) or
  // the whole tile (s == 1).
  const std::int64_t line_cols = s == 1 ? tile : ig.ip[s - 1];
  const std::int64_t tasks = g.batch * g.groups;
  const std::int64_t slices = ceil_div(rows, kern.kc), kstep = ceil_div(rows, slices);
#pragma omp parallel for schedule(dynamic) if (tasks > 1 && pass_work(g) >= kParallelWork)
  for (std::int64_t t = 0; t < tasks; ++t) {
    const std::int64_t n = t / g.groups, grp = t % g.groups;
    thread_local std::vector<const T*> brow;
    // The padded copy of this sample's group, with slack for the last tile's extra columns.
    const T* padded = ig.pad(ix, x + (n * g.channels + grp * cg) * ix.in_numel, cg, tile + nr);
    brow.resize(static_cast<std::size_t>(rows));
    const T* wg = packed_w + grp * mpad * rows;
    T* yg = y + (n * g.out_channels + grp * kg) * positions;
    T* ctile = gemm_workspace<T>(GemmBuffer::Extra, mpad * tile);
    for (std::int64_t op = 0; op < ig.outer; ++op)
      for (std::int64_t q0 = 0; q0 < ig.cols; q0 += tile) {
        const std::int64_t ncols = std::min(tile, ig.cols - q0), width = ceil_div(ncols, nr) * nr;
        const T* base = padded + ig.outer_off[static_cast<std::size_t>(op)] + q0;
        for (std::int64_t kk = 0; kk < rows; ++kk)
          brow[static_cast<std::size_t>(kk)] = base + offs[static_cast<std::size_t>(kk)];
        for (std::int64_t pc = 0; pc < rows; pc += kstep) {
          const std::int64_t kc = std::min(kstep, rows - pc);
          const T beta = pc == 0 ? T(0) : T(1);
          for (std::int64_t ir = 0; ir < kg; ir += mr) {
            const T* a_panel = wg + (ir / mr) * mr * rows + pc * mr;
            for (std::int64_t jr = 0; jr < width; jr += nr)
              kern.rows(kc, a_panel, brow.data() + pc, jr, ctile + ir * width + jr, width, T(1),
                        beta);
          }
        }
        // Keep the grid columns that are real output positions, one output line at a time.
        for (std::int64_t q = q0; q < q0 + ncols;) {
          const std::int64_t run = std::min(line_cols - q % line_cols, q0 + ncols - q);
          const std::int64_t p = ig.position(ix, op, q);
          if (p >= 0) {
            const std::int64_t count =
                s == 1 ? run : std::min(run, ix.out[s - 1] - q % ig.ip[s - 1]);
            for (std::int64_t k = 0; k < kg; ++k) {
              const T bias = b ? b[grp * kg + k] : T(0);
              const T* src = ctile + k * width + (q - q0);
              T* dst = yg + k * positions + p;
              for (std::int64_t i = 0; i < count; ++i) dst[i] = src[i] + bias;
            }
          }
          q += run;
        }
      }
  }
}

template <class T>
void forward_typed(const T* x, const T* w, const T* b, T* y, const ConvGeometry& g) {
  const Index ix(g);
  if (use_direct(g))
    return padded_direct_ok(ix) ? padded_direct_forward(x, w, b, y, g, ix)
                                : direct_forward(x, w, b, y, g);
  const GemmKernel<T>& kern = gemm_kernel<T>();
  const std::int64_t cg = g.group_channels(), kg = g.group_out_channels();
  const std::int64_t rows = cg * g.kernel_numel(), positions = g.out_numel(), in_n = g.in_numel();
  const std::int64_t width = tile_width(positions, g.batch * g.groups, kern.nc);
  const std::int64_t tiles = ceil_div(positions, width);
  const std::int64_t tasks = g.batch * g.groups * tiles;
  const bool pointwise = g.pointwise();
  // The weights are packed once for all tasks.
  const std::int64_t mpad = ceil_div(kg, kern.mr) * kern.mr;
  std::vector<T> packed_w(static_cast<std::size_t>(g.groups * mpad * rows));
  for (std::int64_t grp = 0; grp < g.groups; ++grp)
    MatrixPackA<T>{w + grp * kg * rows, rows, false, kern.mr}(0, 0, kg, rows,
                                                              packed_w.data() + grp * mpad * rows);
  if (implicit_ok(g, sizeof(T))) return implicit_forward(x, packed_w.data(), mpad, b, y, g);
#pragma omp parallel for schedule(dynamic) if (tasks > 1 && pass_work(g) >= kParallelWork)
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
    const PackedA<T> pack_a{packed_w.data() + grp * mpad * rows, rows, kern.mr};
    if (pointwise) {
      const MatrixPackB<T> pack_b{xg + p0, positions, false, kern.nr, kg <= 8 * kern.mr};
      gemm_blocked<T>(kern, kg, pn, rows, T(1), pack_a, pack_b, beta, yg, positions);
    } else {
      gemm_blocked<T>(kern, kg, pn, rows, T(1), pack_a, Im2colPackB<T>{&ix, xg, p0, kern.nr}, beta,
                      yg, positions);
    }
  }
}

// For a unit-stride convolution without input dilation whose low padding is at most
// dilation * (k - 1), the geometry of dx as a forward convolution of dy: channels swapped,
// low padding dilation * (k - 1) - pad_lo, output = the original input.
std::optional<ConvGeometry> transposed_as_forward(const ConvGeometry& g) {
  ConvGeometry t;
  t.batch = g.batch;
  t.channels = g.out_channels;
  t.out_channels = g.channels;
  t.groups = g.groups;
  t.in = g.out;
  t.out = g.in;
  t.kernel = g.kernel;
  t.dilation = g.dilation;
  t.stride = g.stride;
  t.input_dilation = g.input_dilation;
  for (std::size_t d = 0; d < g.in.size(); ++d) {
    const std::int64_t lo = g.dilation[d] * (g.kernel[d] - 1) - g.pad_lo[d];
    if (g.stride[d] != 1 || g.input_dilation[d] != 1 || lo < 0) return std::nullopt;
    t.pad_lo.push_back(lo);
  }
  if (g.channels == 0 || g.out_channels == 0) return std::nullopt;
  return t;
}

// The data gradient of a strided convolution (no input dilation), one stride phase at a time. In
// padded coordinates u = stride * m + a, dx~[u] = sum over taps r with dil * r = a (mod stride) of
// w[r] dy[m - e_r], e_r = (dil * r - a) / stride: for each phase a, a unit-stride convolution of
// dy with the phase's taps (flipped, channels swapped; they are evenly spaced, so the sub-kernel
// is an ordinary dilated one), which runs through the forward path (implicit GEMM) instead of
// col2im. Each dx value belongs to exactly one phase; a phase without taps leaves zeros.
struct PhaseConv {
  ConvGeometry g;                         // dy -> this phase's values z[m], m in [0, out)
  std::vector<std::int64_t> first, step;  // per dim: first tap r0 and tap spacing in r
  bool empty = false;
};

// Phase residues a of dim d that hold some dx value: u = pad_lo + i < pad_lo + in, so a < that
// (and a < stride). Iterating only these keeps a huge stride from visiting 2^62 empty phases.
std::int64_t live_phases(const ConvGeometry& g, std::size_t d) {
  return std::min(g.stride[d], g.pad_lo[d] + g.in[d]);  // pad_lo + in <= padded extent: fits
}

// Strided, without input dilation, with channels on both sides (the depthwise kernels and empty
// convolutions take their own paths), and with a low padding that the phases' outputs, which
// together cover the padded range [0, pad_lo + in) per dim, do not make much larger than dx
// (else the phases would mostly compute values that land in the padding: col2im runs instead).
bool strided_split_ok(const ConvGeometry& g) {
  bool strided = false;
  std::optional<std::int64_t> covered = 1;
  for (std::size_t d = 0; d < g.in.size(); ++d) {
    if (g.input_dilation[d] != 1) return false;
    strided = strided || g.stride[d] > 1;
    if (covered) covered = checked::try_mul(*covered, g.pad_lo[d] + g.in[d]);
  }
  return strided && g.channels > 0 && g.out_channels > 0 && g.batch > 0 && covered &&
         *covered / 4 <= g.in_numel() + 16384;
}

PhaseConv phase_conv(const ConvGeometry& g, const std::vector<std::int64_t>& a) {
  PhaseConv p;
  p.g.batch = g.batch;
  p.g.channels = g.out_channels;
  p.g.out_channels = g.channels;
  p.g.groups = g.groups;
  p.g.in = g.out;
  for (std::size_t d = 0; d < g.in.size(); ++d) {
    const std::int64_t st = g.stride[d], dil = g.dilation[d], k = g.kernel[d];
    std::int64_t r0 = 0;
    while (r0 < k && (dil * r0) % st != a[d]) ++r0;
    const std::int64_t last = g.pad_lo[d] + g.in[d] - 1 - a[d];  // largest padded u - a in dx
    if (r0 == k || last < 0) {
      p.empty = true;
      return p;
    }
    const std::int64_t gcd = std::gcd(dil, st), rstep = st / gcd;
    const std::int64_t taps = (k - 1 - r0) / rstep + 1, e0 = (dil * r0 - a[d]) / st;
    p.first.push_back(r0);
    p.step.push_back(rstep);
    p.g.kernel.push_back(taps);
    p.g.dilation.push_back(dil / gcd);
    p.g.pad_lo.push_back(e0 + (taps - 1) * (dil / gcd));
    p.g.out.push_back(last / st + 1);
    p.g.stride.push_back(1);
    p.g.input_dilation.push_back(1);
  }
  return p;
}

template <class T>
void phase_backward_data(const T* dy, const T* w, T* dx, const ConvGeometry& g) {
  const std::size_t s = g.in.size();
  const std::int64_t cg = g.group_channels(), kg = g.group_out_channels(), rn = g.kernel_numel();
  const std::int64_t planes = g.batch * g.channels, in_n = g.in_numel();
  std::fill_n(dx, planes * in_n, T(0));
  // The live phases only (strided_split_ok bounds their product by the covered range).
  std::int64_t phases = 1;
  for (std::size_t d = 0; d < s; ++d) phases *= live_phases(g, d);
  std::vector<T> z, wt;
  std::vector<std::int64_t> a(s);
  for (std::int64_t ph = 0; ph < phases; ++ph) {
    std::int64_t rem = ph;
    for (std::size_t d = s; d-- > 0;) {
      a[d] = rem % live_phases(g, d);
      rem /= live_phases(g, d);
    }
    const PhaseConv p = phase_conv(g, a);
    if (p.empty) continue;
    // wt[grp*cg + c, k, t] = w[grp*kg + k, c, r(flipped t)], r_d = first_d + (n_d - 1 - t_d)
    // step_d.
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
    wt.resize(static_cast<std::size_t>(g.channels * kg * tn));
    for (std::int64_t grp = 0; grp < g.groups; ++grp)
      for (std::int64_t c = 0; c < cg; ++c)
        for (std::int64_t k = 0; k < kg; ++k) {
          const T* src = w + ((grp * kg + k) * cg + c) * rn;
          T* dst = wt.data() + ((grp * cg + c) * kg + k) * tn;
          for (std::int64_t t = 0; t < tn; ++t) dst[t] = src[src_tap[static_cast<std::size_t>(t)]];
        }
    const std::int64_t zn = p.g.out_numel();
    z.resize(static_cast<std::size_t>(planes * zn));
    forward_typed<T>(dy, wt.data(), nullptr, z.data(), p.g);
    // dx[i] = z[m] for i = stride * m + a - pad_lo inside the input, one z line at a time.
    const std::int64_t zlast = p.g.out[s - 1], lines = zn / zlast;
    const std::int64_t st = g.stride[s - 1], off = a[s - 1] - g.pad_lo[s - 1];
    const std::int64_t m0 = off >= 0 ? 0 : ceil_div(-off, st);
#pragma omp parallel for schedule(static) if (planes > 1 && planes * zn >= kParallelWork)
    for (std::int64_t pl = 0; pl < planes; ++pl)
      for (std::int64_t line = 0; line < lines; ++line) {
        std::int64_t lrem = line, base = 0, scale = g.in[s - 1];
        bool inside = true;
        for (std::size_t d = s - 1; d-- > 0 && inside;) {
          const std::int64_t m = lrem % p.g.out[d];
          lrem /= p.g.out[d];
          const std::int64_t i = g.stride[d] * m + a[d] - g.pad_lo[d];
          inside = i >= 0 && i < g.in[d];
          base += i * scale;
          scale *= g.in[d];
        }
        if (!inside) continue;
        const T* src = z.data() + pl * zn + line * zlast;
        T* dst = dx + pl * in_n + base;
        for (std::int64_t m = m0; m < zlast; ++m) {
          const std::int64_t i = st * m + off;
          if (i >= g.in[s - 1]) break;
          dst[i] = src[m];
        }
      }
  }
}

template <class T>
void backward_data_typed(const T* dy, const T* w, T* dx, const ConvGeometry& g) {
  const Index ix(g);
  // With one output per input channel, the unit-stride data gradient is a depthwise forward
  // convolution with the flipped kernel (below); other direct cases run the adjoint loops.
  if (use_direct(g) && (g.group_out_channels() != 1 || !transposed_as_forward(g)))
    return padded_direct_ok(ix) ? padded_direct_backward_data(dy, w, dx, g, ix)
                                : direct_backward_data(dy, w, dx, g);
  if (strided_split_ok(g)) return phase_backward_data(dy, w, dx, g);
  if (const auto t = transposed_as_forward(g)) {
    // Unit stride: dx is itself a unit-stride convolution of dy with the flipped, channel-swapped
    // kernel, so it runs through the forward path (implicit GEMM) instead of col2im.
    const std::int64_t cg = g.group_channels(), kg = g.group_out_channels(), rn = g.kernel_numel();
    std::vector<T> wt(static_cast<std::size_t>(g.out_channels * cg * rn));
    for (std::int64_t grp = 0; grp < g.groups; ++grp)
      for (std::int64_t k = 0; k < kg; ++k)
        for (std::int64_t c = 0; c < cg; ++c) {
          const T* src = w + ((grp * kg + k) * cg + c) * rn;
          T* dst = wt.data() + ((grp * cg + c) * kg + k) * rn;
          for (std::int64_t r = 0; r < rn; ++r) dst[r] = src[rn - 1 - r];
        }
    return forward_typed<T>(dy, wt.data(), nullptr, dx, *t);
  }
  const GemmKernel<T>& kern = gemm_kernel<T>();
  const std::int64_t cg = g.group_channels(), kg = g.group_out_channels(), rn = g.kernel_numel();
  const std::int64_t rows = cg * rn, positions = g.out_numel(), in_n = g.in_numel();
  std::fill_n(dx, g.batch * g.channels * in_n, T(0));
  if (g.batch * g.channels * in_n == 0) return;  // empty dx (and no channel blocks to split)
  if (g.pointwise()) {
    // dx[n, group] = W^T dy[n, group], straight into dx.
    const std::int64_t tasks = g.batch * g.groups;
#pragma omp parallel for schedule(dynamic) if (tasks > 1 && pass_work(g) >= kParallelWork)
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
  // Tasks own disjoint channel blocks of dx, so their col2im scatters never collide.
  const int threads = plan_threads();
  std::int64_t blocks = 1;
  while (g.batch * g.groups * blocks < 2 * threads && blocks < cg) ++blocks;
  const std::int64_t chans = ceil_div(cg, blocks);
  blocks = ceil_div(cg, chans);
  constexpr std::int64_t kTileRows = 256, kTilePositions = 512;
  const std::int64_t tasks = g.batch * g.groups * blocks;
#pragma omp parallel for schedule(dynamic) if (tasks > 1 && pass_work(g) >= kParallelWork)
  for (std::int64_t t = 0; t < tasks; ++t) {
    const std::int64_t n = t / (g.groups * blocks), grp = (t / blocks) % g.groups, blk = t % blocks;
    const std::int64_t kk_begin = blk * chans * rn, kk_end = std::min(rows, (blk + 1) * chans * rn);
    const T* dyg = dy + (n * g.out_channels + grp * kg) * positions;
    const T* wg = w + grp * kg * rows;
    T* dxg = dx + (n * g.channels + grp * cg) * in_n;
    T* buf = gemm_workspace<T>(GemmBuffer::Extra, kTileRows * kTilePositions);
    Scratch<T>& s = scratch<T>();
    for (std::int64_t p0 = 0; p0 < positions; p0 += kTilePositions) {
      const std::int64_t pn = std::min(kTilePositions, positions - p0);
      for (std::int64_t kk0 = kk_begin; kk0 < kk_end; kk0 += kTileRows) {
        const std::int64_t mt = std::min(kTileRows, kk_end - kk0);
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

// Unit-stride weight gradient on the padded grid: dw^T[kk, k] = sum_q window_kk[q] * dy~[k, q]
// with dy~ = dy spread onto the grid (zero in the columns past the output). Returns false when the
// geometry does not qualify (see implicit_ok).
template <class T>
bool implicit_backward_weight(const T* dy, const T* x, T* dw, const ConvGeometry& g) {
  if (!implicit_ok(g, sizeof(T))) return false;
  const GemmKernel<T>& kern = gemm_kernel<T>();
  const Index ix(g);
  const std::int64_t cg = g.group_channels(), kg = g.group_out_channels(),
                     rows = cg * ix.kernel_numel;
  const std::int64_t positions = g.out_numel();
  const ImplicitGrid ig(ix, rows);
  const std::int64_t tasks = g.batch * g.groups;
  const std::int64_t mr = kern.mr, nr = kern.nr, kgp = ceil_div(kg, nr) * nr;
  const std::int64_t kstep = std::min(kern.kc, ig.cols);
  // The samples are cut into `used` contiguous parts, each summed in sample order into its own
  // dw^T and the parts added in order below: the same sums whichever thread runs a part, and the
  // same cut for any team size in deterministic mode (cpu/parallel.h).
  const int used = pass_work(g) >= kParallelWork
                       ? static_cast<int>(std::clamp<std::int64_t>(tasks, 1, plan_threads()))
                       : 1;
  const std::int64_t tsize = g.groups * rows * kg;  // dw^T per group: [rows, kg]
  std::vector<T> acc(static_cast<std::size_t>(used * tsize), T(0));
  std::vector<std::int64_t> where(static_cast<std::size_t>(ig.grid));
  for (std::int64_t q = 0; q < ig.grid; ++q)
    where[static_cast<std::size_t>(q)] = ig.position(ix, q / ig.cols, q % ig.cols);
#pragma omp parallel num_threads(run_threads(used)) if (used > 1)
  {
    std::vector<T> spread(static_cast<std::size_t>(kg * ig.grid));
#pragma omp for schedule(dynamic)
    for (int part = 0; part < used; ++part) {
      T* mine = acc.data() + part * tsize;
      for (std::int64_t t = part_begin(tasks, used, part); t < part_begin(tasks, used, part + 1);
           ++t) {
        const std::int64_t n = t / g.groups, grp = t % g.groups;
        const T* padded = ig.pad(ix, x + (n * g.channels + grp * cg) * ix.in_numel, cg, 0);
        const T* dyg = dy + (n * g.out_channels + grp * kg) * positions;
        for (std::int64_t k = 0; k < kg; ++k)
          for (std::int64_t q = 0; q < ig.grid; ++q) {
            const std::int64_t p = where[static_cast<std::size_t>(q)];
            spread[static_cast<std::size_t>(k * ig.grid + q)] =
                p < 0 ? T(0) : dyg[k * positions + p];
          }
        // dw^T[rows, kg] += windows[rows, grid] * spread^T[grid, kg]: B packed per slice of an
        // outer plane's columns, A read in place through one pointer per window (arows kernel).
        T* c = mine + grp * rows * kg;
        T* bp = gemm_workspace<T>(GemmBuffer::B, kstep * kgp);
        alignas(64) T tile[8 * 32];
        const T* arows[32];
        for (std::int64_t op = 0; op < ig.outer; ++op)
          for (std::int64_t pc = 0; pc < ig.cols; pc += kstep) {
            const std::int64_t kc = std::min(kstep, ig.cols - pc);
            MatrixPackB<T>{spread.data(), ig.grid, true, kern.nr}(op * ig.cols + pc, 0, kc, kg, bp);
            const T* base = padded + ig.outer_off[static_cast<std::size_t>(op)] + pc;
            for (std::int64_t ir = 0; ir < rows; ir += mr) {
              const std::int64_t mr_now = std::min(mr, rows - ir);
              for (std::int64_t i = 0; i < mr; ++i)
                arows[i] = base + ig.offs[static_cast<std::size_t>(ir + std::min(i, mr_now - 1))];
              for (std::int64_t jr = 0; jr < kg; jr += nr) {
                const std::int64_t nr_now = std::min(nr, kg - jr);
                const T* b_panel = bp + (jr / nr) * nr * kc;
                if (mr_now == mr && nr_now == nr) {
                  kern.arows(kc, arows, b_panel, nr, c + ir * kg + jr, kg, T(1), T(1));
                } else {
                  (2 * nr_now <= nr ? kern.arows_half : kern.arows)(kc, arows, b_panel, nr, tile,
                                                                    nr, T(1), T(0));
                  for (std::int64_t i = 0; i < mr_now; ++i)
                    for (std::int64_t j = 0; j < nr_now; ++j)
                      c[(ir + i) * kg + jr + j] += tile[i * nr + j];
                }
              }
            }
          }
      }
    }
  }
  for (std::int64_t grp = 0; grp < g.groups; ++grp)
    for (std::int64_t k = 0; k < kg; ++k)
      for (std::int64_t kk = 0; kk < rows; ++kk) {
        T sum = T(0);
        for (int u = 0; u < used; ++u)
          sum += acc[static_cast<std::size_t>(u * tsize + (grp * rows + kk) * kg + k)];
        dw[(grp * kg + k) * rows + kk] = sum;
      }
  return true;
}

template <class T>
void backward_weight_typed(const T* dy, const T* x, T* dw, const ConvGeometry& g) {
  const Index ix(g);
  if (use_direct(g))
    return padded_direct_ok(ix) ? padded_direct_backward_weight(dy, x, dw, g, ix)
                                : direct_backward_weight(dy, x, dw, g);
  if (implicit_backward_weight(dy, x, dw, g)) return;
  const GemmKernel<T>& kern = gemm_kernel<T>();
  const std::int64_t cg = g.group_channels(), kg = g.group_out_channels();
  const std::int64_t rows = cg * g.kernel_numel(), positions = g.out_numel(), in_n = g.in_numel();
  const std::int64_t wsize = g.out_channels * rows;
  // Reduction over samples and positions: the (sample, tile) tasks are cut into `used` contiguous
  // parts, each summed in task order into its own dw (part 0 into dw itself), and the parts are
  // added in order below. The sums do not depend on which thread runs a part, and the cut (tiles
  // and parts) depends on plan_threads() only (cpu/parallel.h).
  const std::int64_t width = tile_width(positions, g.batch, 4096);
  const std::int64_t tiles = ceil_div(positions, width);
  const std::int64_t tasks = g.batch * tiles;
  const int used = pass_work(g) >= kParallelWork
                       ? static_cast<int>(std::clamp<std::int64_t>(tasks, 1, plan_threads()))
                       : 1;
  std::vector<T> partial(static_cast<std::size_t>(std::max(used - 1, 0) * wsize), T(0));
  std::fill_n(dw, wsize, T(0));
  const bool pointwise = g.pointwise();
#pragma omp parallel for schedule(dynamic) num_threads(run_threads(used)) if (used > 1)
  for (int part = 0; part < used; ++part) {
    T* acc = part == 0 ? dw : partial.data() + (part - 1) * wsize;
    for (std::int64_t t = part_begin(tasks, used, part); t < part_begin(tasks, used, part + 1);
         ++t) {
      const std::int64_t n = t / tiles, p0 = (t % tiles) * width,
                         pn = std::min(width, positions - p0);
      for (std::int64_t grp = 0; grp < g.groups; ++grp) {
        const T* dyg = dy + (n * g.out_channels + grp * kg) * positions + p0;
        const T* xg = x + (n * g.channels + grp * cg) * in_n;
        const MatrixPackA<T> pack_a{dyg, positions, false, kern.mr};
        T* dwg = acc + grp * kg * rows;
        if (pointwise) {
          gemm_blocked<T>(kern, kg, rows, pn, T(1), pack_a,
                          MatrixPackB<T>{xg + p0, in_n, true, kern.nr}, T(1), dwg, rows);
        } else {
          gemm_blocked<T>(kern, kg, rows, pn, T(1), pack_a, Im2colTPackB<T>{&ix, xg, p0, kern.nr},
                          T(1), dwg, rows);
        }
      }
    }
  }
  for (int p = 0; p + 1 < used; ++p) {
    const T* src = partial.data() + p * wsize;
    for (std::int64_t i = 0; i < wsize; ++i) dw[i] += src[i];
  }
}

// A dense CPU tensor set to zero, for gradients that no element contributes to.
Tensor zero_filled(Tensor t) {
  std::memset(t.raw_data(), 0, static_cast<std::size_t>(t.numel()) * dtype_size(t.dtype()));
  return t;
}

}  // namespace

Tensor conv_forward(const Tensor& x, const Tensor& w, const Tensor& b, const ConvGeometry& g) {
  Shape shape{g.batch, g.out_channels};
  shape.insert(shape.end(), g.out.begin(), g.out.end());
  Tensor y = Tensor::empty_cpu(shape, x.dtype());
  // Empty operands are answered here, before any plan: no plan may be sized from the geometry of
  // an empty batch (a padding of 2^61 with batch 0 once sized a 2^62-element plane), nor divide
  // by an empty extent (the implicit-GEMM grid did). With an empty input, no tap reads anything:
  // the output is the bias (or zeros).
  if (y.numel() == 0) return y;
  if (x.numel() == 0) {
    dispatch_floating(x.dtype(), [&]<class T>() {
      T* out = y.data_ptr<T>();
      const T* bias = b.defined() ? b.data_ptr<T>() : nullptr;
      const std::int64_t positions = g.out_numel();
      for (std::int64_t nk = 0; nk < g.batch * g.out_channels; ++nk)
        std::fill_n(out + nk * positions, positions, bias ? bias[nk % g.out_channels] : T(0));
    });
    return y;
  }
  dispatch_floating(x.dtype(), [&]<class T>() {
    forward_typed<T>(x.data_ptr<T>(), w.data_ptr<T>(), b.defined() ? b.data_ptr<T>() : nullptr,
                     y.data_ptr<T>(), g);
  });
  return y;
}

Tensor conv_backward_data(const Tensor& dy, const Tensor& w, const ConvGeometry& g) {
  Shape shape{g.batch, g.channels};
  shape.insert(shape.end(), g.in.begin(), g.in.end());
  Tensor dx = Tensor::empty_cpu(shape, dy.dtype());
  if (dx.numel() == 0) return dx;
  if (dy.numel() == 0) return zero_filled(dx);  // no output reads any input
  dispatch_floating(dy.dtype(), [&]<class T>() {
    backward_data_typed<T>(dy.data_ptr<T>(), w.data_ptr<T>(), dx.data_ptr<T>(), g);
  });
  return dx;
}

Tensor conv_backward_weight(const Tensor& dy, const Tensor& x, const ConvGeometry& g) {
  Shape shape{g.out_channels, g.group_channels()};
  shape.insert(shape.end(), g.kernel.begin(), g.kernel.end());
  Tensor dw = Tensor::empty_cpu(shape, dy.dtype());
  if (dw.numel() == 0) return dw;
  if (dy.numel() == 0 || x.numel() == 0) return zero_filled(dw);  // an empty sum
  dispatch_floating(dy.dtype(), [&]<class T>() {
    backward_weight_typed<T>(dy.data_ptr<T>(), x.data_ptr<T>(), dw.data_ptr<T>(), g);
  });
  return dw;
}

}  // namespace convtape::cpu
