// Direct convolution kernels on CPU for convolutions in which every output channel reads one
// input channel (C / groups == 1 with at most 4 outputs per group: depthwise), for any spatial
// rank:
//   y[n, k, o] = b[k] + sum over taps r of w[k, 0, r] * x~[n, k / (K / groups), o * stride +
//                r * dilation - pad_lo]
// with its adjoints dx (scatter per tap) and dw (one dot product per tap). A GEMM with one or two
// rows would waste the micro-kernel, so these loop over output runs and kernel taps with
// unit-stride FMAs. direct_padded works on a zero-padded copy of each plane (no input dilation):
// every (output line, kernel tap) pair is then one bounds-free strided loop (cpu/line_ops.h), which
// keeps the per-tap overhead small. direct, taken when that plane would be much larger than the
// data (a huge padding, stride or dilation, whose windows mostly read zeros) or the input is
// dilated, visits only the taps that land inside the input: its work is the output times the
// kernel's taps.
#include <algorithm>
#include <vector>

#include "cpu/conv_common.h"
#include "cpu/conv_paths.h"
#include "cpu/line_ops.h"

namespace convtape::cpu::conv_detail {

namespace {

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

// The plane's rows, the output lines and the kernel taps are precomputed as padded-plane offsets;
// the plane's extents are those of padded_plane_size (cpu/conv_plan.h).
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
  void load(Isa isa, const T* plane, T* buf) const {
    line::scatter_rows(isa, buf, rows.data(), plane, static_cast<std::int64_t>(rows.size()),
                       row_len);
  }
  // Copies the interior of buf into an unpadded plane.
  template <class T>
  void store(Isa isa, const T* buf, T* plane) const {
    line::gather_rows(isa, plane, buf, rows.data(), static_cast<std::int64_t>(rows.size()),
                      row_len);
  }
};

template <class T>
void padded_direct_forward(const ConvPlan& plan, const T* x, const T* w, const T* b, T* y) {
  const ConvGeometry& g = plan.geometry;
  const Index ix(g);
  const PaddedPlane pp(ix);
  const Isa isa = plan.target.isa;  // read before the parallel region, once per call
  const std::int64_t kg = g.group_out_channels(), positions = g.out_numel(), rn = ix.kernel_numel;
  const std::int64_t planes = g.batch * g.out_channels;
#pragma omp parallel if (planes > 1 && plan.parallel)
  {
    // Every load rewrites the same interior, so the padding is zeroed once per thread.
    T* buf = gemm_workspace<T>(GemmBuffer::Input, pp.size);
    std::fill_n(buf, pp.size, T(0));
#pragma omp for schedule(dynamic, 4)
    for (std::int64_t pl = 0; pl < planes; ++pl) {
      const std::int64_t n = pl / g.out_channels, k = pl % g.out_channels, c = k / kg;
      pp.load(isa, x + (n * g.channels + c) * ix.in_numel, buf);
      line::taps(isa, y + pl * positions, buf, w + k * rn, b ? b[k] : T(0), pp.map);
    }
  }
}

template <class T>
void padded_direct_backward_data(const ConvPlan& plan, const T* dy, const T* w, T* dx) {
  const ConvGeometry& g = plan.geometry;
  const Index ix(g);
  const PaddedPlane pp(ix);
  const Isa isa = plan.target.isa;  // read before the parallel region, once per call
  const std::int64_t kg = g.group_out_channels(), positions = g.out_numel(), rn = ix.kernel_numel;
  const std::int64_t planes = g.batch * g.channels;
#pragma omp parallel for schedule(dynamic, 4) if (planes > 1 && plan.parallel)
  for (std::int64_t pl = 0; pl < planes; ++pl) {  // each task owns one dx plane
    const std::int64_t n = pl / g.channels, c = pl % g.channels;
    T* buf = gemm_workspace<T>(GemmBuffer::Input, pp.size);
    std::fill_n(buf, pp.size, T(0));
    for (std::int64_t k = c * kg; k < (c + 1) * kg; ++k)
      line::scatter(isa, buf, dy + (n * g.out_channels + k) * positions, w + k * rn, pp.map);
    pp.store(isa, buf, dx + pl * ix.in_numel);
  }
}

template <class T>
void padded_direct_backward_weight(const ConvPlan& plan, const T* dy, const T* x, T* dw) {
  const ConvGeometry& g = plan.geometry;
  const Index ix(g);
  const PaddedPlane pp(ix);
  const Isa isa = plan.target.isa;  // read before the parallel region, once per call
  const std::int64_t kg = g.group_out_channels(), positions = g.out_numel(), rn = ix.kernel_numel;
#pragma omp parallel if (g.out_channels > 1 && plan.parallel)
  {
    T* buf = gemm_workspace<T>(GemmBuffer::Input, pp.size);
    std::fill_n(buf, pp.size, T(0));
#pragma omp for schedule(dynamic)
    for (std::int64_t k = 0; k < g.out_channels; ++k) {  // each task owns one row of dw
      const std::int64_t c = k / kg;
      T* dwk = dw + k * rn;
      std::fill_n(dwk, rn, T(0));
      for (std::int64_t n = 0; n < g.batch; ++n) {
        pp.load(isa, x + (n * g.channels + c) * ix.in_numel, buf);
        line::tap_dots(isa, dwk, dy + (n * g.out_channels + k) * positions, buf, pp.map);
      }
    }
  }
}

template <class T>
void direct_forward(const ConvPlan& plan, const T* x, const T* w, const T* b, T* y) {
  const ConvGeometry& g = plan.geometry;
  const Index ix(g);
  const std::int64_t kg = g.group_out_channels(), positions = g.out_numel(), in_n = g.in_numel();
  const std::int64_t rn = g.kernel_numel();
  const std::int64_t di = g.input_dilation[static_cast<std::size_t>(g.spatial() - 1)];
  const std::int64_t planes = g.batch * g.out_channels;
#pragma omp parallel for schedule(dynamic, 4) if (planes > 1 && plan.parallel)
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
void direct_backward_data(const ConvPlan& plan, const T* dy, const T* w, T* dx) {
  const ConvGeometry& g = plan.geometry;
  const Index ix(g);
  const std::int64_t kg = g.group_out_channels(), positions = g.out_numel(), in_n = g.in_numel();
  const std::int64_t rn = g.kernel_numel();
  const std::int64_t di = g.input_dilation[static_cast<std::size_t>(g.spatial() - 1)];
  const std::int64_t planes = g.batch * g.channels;  // each task owns one dx plane
#pragma omp parallel for schedule(dynamic, 4) if (planes > 1 && plan.parallel)
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
void direct_backward_weight(const ConvPlan& plan, const T* dy, const T* x, T* dw) {
  const ConvGeometry& g = plan.geometry;
  const Index ix(g);
  const std::int64_t kg = g.group_out_channels(), positions = g.out_numel(), in_n = g.in_numel();
  const std::int64_t rn = g.kernel_numel();
  const std::int64_t di = g.input_dilation[static_cast<std::size_t>(g.spatial() - 1)];
#pragma omp parallel for schedule(dynamic) if (g.out_channels > 1 && plan.parallel)
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

}  // namespace

template <class T>
void depthwise_forward(const ConvPlan& plan, const T* x, const T* w, const T* b, T* y) {
  if (plan.path == ConvPath::direct_padded) return padded_direct_forward(plan, x, w, b, y);
  direct_forward(plan, x, w, b, y);
}

template <class T>
void depthwise_backward_data(const ConvPlan& plan, const T* dy, const T* w, T* dx) {
  if (plan.path == ConvPath::direct_padded) return padded_direct_backward_data(plan, dy, w, dx);
  direct_backward_data(plan, dy, w, dx);
}

template <class T>
void depthwise_backward_weight(const ConvPlan& plan, const T* dy, const T* x, T* dw) {
  if (plan.path == ConvPath::direct_padded) return padded_direct_backward_weight(plan, dy, x, dw);
  direct_backward_weight(plan, dy, x, dw);
}

#define CT_INSTANTIATE(T)                                                                \
  template void depthwise_forward<T>(const ConvPlan&, const T*, const T*, const T*, T*); \
  template void depthwise_backward_data<T>(const ConvPlan&, const T*, const T*, T*);     \
  template void depthwise_backward_weight<T>(const ConvPlan&, const T*, const T*, T*);
CT_INSTANTIATE(float)
CT_INSTANTIATE(double)
#undef CT_INSTANTIATE

}  // namespace convtape::cpu::conv_detail
