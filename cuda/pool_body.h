// The CUDA pooling kernels' bodies (cuda/device_fn.h functors), on contiguous planes p = (n, c) of
// x [N, C, *in] -> [N, C, *out], for 1 to kMaxPoolDims spatial dims, with cpu/pool.h's rules:
//   window of output o along dim d: input coordinates first + r * step for r in [0, count), where
//     regular:  first = o * stride - pad_lo + lo * dilation, step = dilation, taps in the padding
//               dropped (count = hi - lo), divisor factor = count_include_pad ? min(o * stride -
//               pad_lo + kernel, in + pad_hi) - (o * stride - pad_lo) : count
//     adaptive: [floor(o * in / out), ceil((o + 1) * in / out)), step 1, factor = its size
//   max:  the first maximal element in row-major window order (a first NaN wins and stays); the
//         argmax starts at the window's first input element (PyTorch's rule), so an all -inf
//         window gives -inf and that element's index; -inf and index -1 for a window with no
//         input element; index = flat in-plane position
//   avg:  sum / divisor, divisor = divisor_override or the product of the dims' factors
//   avg backward: dx[p, i] = sum over the outputs o whose window holds i of dy[p, o] / divisor(o)
//   index_scatter / index_gather: cpu::index_scatter / cpu::index_gather.
// Sums are accumulated in the order the CPU kernels use (rows of the window in row-major order;
// for the average's gradient, outer outputs ascending and, along the last dim, regular windows by
// descending output and adaptive ones ascending), so that both backends round alike. Windows
// larger than a few thousand taps may be split over `lanes` partial results per output (lane l
// takes taps l, l + lanes, ... so that neighbouring threads read neighbouring elements), which a
// second pass combines in lane order.
#pragma once

#include <cstdint>

#include "cuda/device_fn.h"

namespace convtape::cuda {

// Spatial dims of a pooling (cpu/pool.cpp and ops/pool.cpp allow as many).
inline constexpr int kMaxPoolDims = 8;

// max's update rule: a strictly larger value, or the first NaN.
template <class T>
CT_HD inline bool max_takes(T v, T cur) {
  return v > cur || (is_nan(v) && !is_nan(cur));
}

// Whether the lane partial (v, at) beats (cur, cur_at) when partials are combined: a NaN beats a
// number, then the larger value; between equals (NaNs included, and all -inf lanes, which carry
// their first tap) the earlier element, i.e. the smaller in-plane index (row-major window order is
// increasing index order). Partials holding no element carry index -1 and never win a tie.
template <class T>
CT_HD inline bool partial_beats(T v, std::int64_t at, T cur, std::int64_t cur_at) {
  const bool vn = is_nan(v), cn = is_nan(cur);
  if (vn != cn) return vn;
  if (!vn) {
    if (v > cur) return true;
    if (v < cur) return false;
  }
  return at >= 0 && (cur_at < 0 || at < cur_at);
}

// atomicMax / atomicMin on the device, plain max / min on the host (one thread at a time).
CT_HD inline void atomic_max(std::int64_t* p, std::int64_t v) {
#if defined(__CUDA_ARCH__)
  atomicMax(reinterpret_cast<long long*>(p), static_cast<long long>(v));
#else
  if (v > *p) *p = v;
#endif
}
CT_HD inline void atomic_min(std::int64_t* p, std::int64_t v) {
#if defined(__CUDA_ARCH__)
  atomicMin(reinterpret_cast<long long*>(p), static_cast<long long>(v));
#else
  if (v < *p) *p = v;
#endif
}

// One output's window along one dim.
struct DimWindow {
  std::int64_t first = 0, step = 1, count = 0, factor = 0;
};

// A PoolGeometry in fixed-size arrays (per-dim values for dims [0, dims)).
struct PoolWindows {
  int dims = 0;
  std::int64_t in[kMaxPoolDims] = {}, out[kMaxPoolDims] = {};
  std::int64_t kernel[kMaxPoolDims] = {}, stride[kMaxPoolDims] = {}, dilation[kMaxPoolDims] = {};
  std::int64_t pad_lo[kMaxPoolDims] = {}, pad_hi[kMaxPoolDims] = {};
  std::int64_t row_stride[kMaxPoolDims] = {};  // of the input plane, row-major
  std::int64_t in_numel = 1, out_numel = 1;
  bool adaptive = false, count_include_pad = true;
  std::int64_t divisor_override = 0;

  // No intermediate value leaves 64 bits for the geometries ops/pool.cpp accepts (it checks
  // out * in for adaptive pooling and the dilated kernel extent; a regular window starts in
  // (-pad_lo, in)): ceilings are taken without forming a + b - 1, and the first tap is formed
  // only when the window holds one (lo * dilation may not fit when lo is clipped to the kernel).
  CT_HD DimWindow window(int d, std::int64_t o) const {
    DimWindow w;
    const std::int64_t n = in[d];
    if (adaptive) {  // [floor(o * n / m), ceil((o + 1) * n / m))
      const std::int64_t m = out[d], end = (o + 1) * n;
      w.first = o * n / m;
      w.count = end / m + (end % m != 0 ? 1 : 0) - w.first;
      w.factor = w.count;
      return w;
    }
    const std::int64_t k = kernel[d], dil = dilation[d];
    const std::int64_t start = o * stride[d] - pad_lo[d];
    std::int64_t lo = start >= 0 ? 0 : -start / dil + (-start % dil != 0 ? 1 : 0);
    std::int64_t hi = start > n - 1 ? 0 : (n - 1 - start) / dil + 1;
    lo = lo < k ? lo : k;
    hi = hi < k ? hi : k;
    hi = hi > lo ? hi : lo;
    w.first = hi > lo ? start + lo * dil : start;
    w.step = dil;
    w.count = hi - lo;
    // count_include_pad: min(k, n + pad_hi - start), with n - start > 0 and k - (n - start) >= 0
    // or below it, so neither difference overflows.
    const std::int64_t room = n - start;
    w.factor = count_include_pad ? (k - room <= pad_hi[d] ? k : room + pad_hi[d]) : hi - lo;
    return w;
  }

  // Output coordinates of the in-plane flat output index f.
  CT_HD void unravel_out(std::int64_t f, std::int64_t* o) const {
    for (int d = dims - 1; d >= 0; --d) {
      o[d] = f % out[d];
      f /= out[d];
    }
  }

  // The average's divisor as cpu/pool.cpp forms it: T(outer factors multiplied in double) *
  // T(double(last factor)); double is exact below 2^53 and cannot overflow for huge kernels.
  template <class T>
  CT_HD T divisor(const DimWindow* w) const {
    if (divisor_override != 0) return static_cast<T>(divisor_override);
    double outer = 1;
    for (int d = 0; d + 1 < dims; ++d) outer *= static_cast<double>(w[d].factor);
    return static_cast<T>(outer) * static_cast<T>(static_cast<double>(w[dims - 1].factor));
  }

  // The windows of output f (in-plane); false when one of them is empty.
  CT_HD bool windows(std::int64_t f, DimWindow* w) const {
    std::int64_t o[kMaxPoolDims];
    unravel_out(f, o);
    bool any = true;
    for (int d = 0; d < dims; ++d) {
      w[d] = window(d, o[d]);
      any = any && w[d].count > 0;
    }
    return any;
  }
};

// Walks the window rows (every dim but the last) in row-major order: base is the in-plane offset
// of the current row's first tap.
struct RowWalker {
  int outer = 0;
  std::int64_t r[kMaxPoolDims] = {}, count[kMaxPoolDims] = {}, delta[kMaxPoolDims] = {};
  std::int64_t base = 0;

  CT_HD RowWalker(const PoolWindows& pw, const DimWindow* w) : outer(pw.dims - 1) {
    for (int d = 0; d < pw.dims; ++d) base += w[d].first * pw.row_stride[d];
    for (int d = 0; d < outer; ++d) {
      count[d] = w[d].count;
      delta[d] = w[d].step * pw.row_stride[d];
    }
  }
  CT_HD bool next() {
    for (int d = outer - 1; d >= 0; --d) {
      if (++r[d] < count[d]) {
        base += delta[d];
        return true;
      }
      base -= (count[d] - 1) * delta[d];
      r[d] = 0;
    }
    return false;
  }
};

// In-plane offset of tap t (row-major over the window's counts).
CT_HD inline std::int64_t tap_offset(const PoolWindows& pw, const DimWindow* w, std::int64_t t) {
  std::int64_t off = 0;
  for (int d = pw.dims - 1; d >= 0; --d) {
    const std::int64_t r = t % w[d].count;
    t /= w[d].count;
    off += (w[d].first + r * w[d].step) * pw.row_stride[d];
  }
  return off;
}

CT_HD inline std::int64_t window_taps(const PoolWindows& pw, const DimWindow* w) {
  std::int64_t n = 1;
  for (int d = 0; d < pw.dims; ++d) n *= w[d].count;
  return n;
}

// y[i], indices[i] (when not null) for i over planes * out_numel.
template <class T>
struct MaxPoolForward {
  const T* x;
  T* y;
  std::int64_t* indices;
  PoolWindows pw;

  CT_HD void operator()(std::int64_t i) const {
    const std::int64_t plane = i / pw.out_numel;
    DimWindow w[kMaxPoolDims];
    T best = -infinity<T>();
    std::int64_t at = -1;
    if (pw.windows(i - plane * pw.out_numel, w)) {
      const T* xp = x + plane * pw.in_numel;
      const DimWindow& last = w[pw.dims - 1];
      RowWalker rows(pw, w);
      at = rows.base;  // the first input element: what an all -inf window returns
      bool nan = false;
      do {
        for (std::int64_t r = 0; r < last.count; ++r) {
          const std::int64_t off = rows.base + r * last.step;
          const T v = xp[off];
          if (max_takes(v, best)) {
            best = v;
            at = off;
            nan = is_nan(v);
            if (nan) break;  // nothing replaces the first NaN
          }
        }
      } while (!nan && rows.next());
    }
    y[i] = best;
    if (indices) indices[i] = at;
  }
};

// y[i] for i over planes * out_numel.
template <class T>
struct AvgPoolForward {
  const T* x;
  T* y;
  PoolWindows pw;

  CT_HD void operator()(std::int64_t i) const {
    const std::int64_t plane = i / pw.out_numel;
    DimWindow w[kMaxPoolDims];
    const bool any = pw.windows(i - plane * pw.out_numel, w);
    T sum = T(0);
    if (any) {
      const T* xp = x + plane * pw.in_numel;
      const DimWindow& last = w[pw.dims - 1];
      RowWalker rows(pw, w);
      do {
        const T* row = xp + rows.base;
        if (pw.adaptive) {  // cpu/pool.cpp sums each row's segment, then adds it
          T seg = T(0);
          for (std::int64_t r = 0; r < last.count; ++r) seg += row[r];
          sum += seg;
        } else {
          for (std::int64_t r = 0; r < last.count; ++r) sum += row[r * last.step];
        }
      } while (rows.next());
    }
    y[i] = sum / pw.divisor<T>(w);
  }
};

// Pass 1 of a split max: i over planes * out_numel * lanes; lane l of output q = i / lanes scans
// taps l, l + lanes, ...
template <class T>
struct MaxPoolPartial {
  const T* x;
  T* values;
  std::int64_t* indices;
  PoolWindows pw;
  std::int64_t lanes;

  CT_HD void operator()(std::int64_t i) const {
    const std::int64_t q = i / lanes, lane = i - q * lanes;
    const std::int64_t plane = q / pw.out_numel;
    DimWindow w[kMaxPoolDims];
    T best = -infinity<T>();
    std::int64_t at = -1;
    if (pw.windows(q - plane * pw.out_numel, w)) {
      const T* xp = x + plane * pw.in_numel;
      const std::int64_t taps = window_taps(pw, w);
      // The lane's first tap: among all -inf lanes the combine keeps the smallest index, tap 0's,
      // the window's first input element.
      if (lane < taps) at = tap_offset(pw, w, lane);
      for (std::int64_t t = lane; t < taps; t += lanes) {
        const std::int64_t off = tap_offset(pw, w, t);
        const T v = xp[off];
        if (max_takes(v, best)) {
          best = v;
          at = off;
          if (is_nan(v)) break;
        }
      }
    }
    values[i] = best;
    indices[i] = at;
  }
};

// Pass 2 of a split max: i over planes * out_numel.
template <class T>
struct MaxPoolCombine {
  const T* values;
  const std::int64_t* partial_indices;
  T* y;
  std::int64_t* indices;  // may be null
  std::int64_t lanes;

  CT_HD void operator()(std::int64_t i) const {
    T best = -infinity<T>();
    std::int64_t at = -1;
    for (std::int64_t l = i * lanes; l < (i + 1) * lanes; ++l)
      if (partial_beats(values[l], partial_indices[l], best, at)) {
        best = values[l];
        at = partial_indices[l];
      }
    y[i] = best;
    if (indices) indices[i] = at;
  }
};

// Pass 1 of a split average: i over planes * out_numel * lanes, partial sums.
template <class T>
struct AvgPoolPartial {
  const T* x;
  T* sums;
  PoolWindows pw;
  std::int64_t lanes;

  CT_HD void operator()(std::int64_t i) const {
    const std::int64_t q = i / lanes, lane = i - q * lanes;
    const std::int64_t plane = q / pw.out_numel;
    DimWindow w[kMaxPoolDims];
    T sum = T(0);
    if (pw.windows(q - plane * pw.out_numel, w)) {
      const T* xp = x + plane * pw.in_numel;
      const std::int64_t taps = window_taps(pw, w);
      for (std::int64_t t = lane; t < taps; t += lanes) sum += xp[tap_offset(pw, w, t)];
    }
    sums[i] = sum;
  }
};

// Pass 2 of a split average: i over planes * out_numel.
template <class T>
struct AvgPoolCombine {
  const T* sums;
  T* y;
  PoolWindows pw;
  std::int64_t lanes;

  CT_HD void operator()(std::int64_t i) const {
    const std::int64_t plane = i / pw.out_numel;
    DimWindow w[kMaxPoolDims];
    pw.windows(i - plane * pw.out_numel, w);
    T sum = T(0);
    for (std::int64_t l = i * lanes; l < (i + 1) * lanes; ++l) sum += sums[l];
    y[i] = sum / pw.divisor<T>(w);
  }
};

// dx[i] for i over planes * in_numel: a gather over the outputs whose windows hold element i.
template <class T>
struct AvgPoolBackward {
  const T* dy;
  T* dx;
  PoolWindows pw;

  CT_HD void operator()(std::int64_t i) const {
    const std::int64_t plane = i / pw.in_numel;
    std::int64_t rest = i - plane * pw.in_numel;
    // Per dim, the candidate outputs o = first + q * dir for q in [0, count); a regular window
    // holds coordinate c only when (c + pad_lo - o * stride) is a multiple of the dilation.
    std::int64_t first[kMaxPoolDims], count[kMaxPoolDims], dir[kMaxPoolDims], c[kMaxPoolDims];
    for (int d = pw.dims - 1; d >= 0; --d) {
      c[d] = rest % pw.in[d];
      rest /= pw.in[d];
    }
    for (int d = 0; d < pw.dims; ++d) {
      std::int64_t lo, hi;  // inclusive output range
      if (pw.adaptive) {
        lo = c[d] * pw.out[d] / pw.in[d];
        hi = ((c[d] + 1) * pw.out[d] - 1) / pw.in[d];
      } else {  // (kernel - 1) * dilation fits: ops/pool.cpp checked the dilated extent
        const std::int64_t t = c[d] + pw.pad_lo[d], st = pw.stride[d];
        const std::int64_t span = t - (pw.kernel[d] - 1) * pw.dilation[d];
        lo = span <= 0 ? 0 : span / st + (span % st != 0 ? 1 : 0);
        hi = t / st;
      }
      hi = hi < pw.out[d] - 1 ? hi : pw.out[d] - 1;
      count[d] = hi - lo + 1;
      if (count[d] <= 0) {
        dx[i] = T(0);
        return;
      }
      // cpu/pool.cpp adds a regular line's taps in tap order: descending outputs on the last dim.
      const bool down = !pw.adaptive && d == pw.dims - 1;
      first[d] = down ? hi : lo;
      dir[d] = down ? -1 : 1;
    }
    const T* g = dy + plane * pw.out_numel;
    std::int64_t q[kMaxPoolDims] = {};
    T acc = T(0);
    for (;;) {
      std::int64_t o[kMaxPoolDims], f = 0;
      bool holds = true;
      for (int d = 0; d < pw.dims; ++d) {
        o[d] = first[d] + q[d] * dir[d];
        f = f * pw.out[d] + o[d];
        if (!pw.adaptive && (c[d] + pw.pad_lo[d] - o[d] * pw.stride[d]) % pw.dilation[d] != 0)
          holds = false;
      }
      if (holds) {
        DimWindow w[kMaxPoolDims];
        for (int d = 0; d < pw.dims; ++d) w[d] = pw.window(d, o[d]);
        acc += g[f] / pw.divisor<T>(w);
      }
      int d = pw.dims - 1;
      for (; d >= 0; --d) {
        if (++q[d] < count[d]) break;
        q[d] = 0;
      }
      if (d < 0) break;
    }
    dx[i] = acc;
  }
};

// out[i] = value for i over its size.
template <class T>
struct FillValue {
  T* out;
  T value;
  CT_HD void operator()(std::int64_t i) const { out[i] = value; }
};

// max pooling's gradient, i over planes * m sources: out[p, indices[i]] += src[i] (atomically);
// negative indices are skipped, and so are indices past the plane, which only a corrupted index
// tensor holds.
template <class T>
struct IndexScatterAdd {
  const T* src;
  const std::int64_t* indices;
  T* out;
  std::int64_t m, size;

  CT_HD void operator()(std::int64_t i) const {
    const std::int64_t k = indices[i];
    if (k < 0 || k >= size) return;
    atomic_add(out + (i / m) * size + k, src[i]);
  }
};

// max_unpool, pass 1 over i in planes * m: owner[p, indices[i]] = the largest source position o
// (within the plane) that targets it, so that a later duplicate overwrites as on the CPU. The
// front end has checked every index against the plane (ops/pool.cpp, once per call); one outside
// it is skipped like a negative one, never written.
struct IndexClaim {
  const std::int64_t* indices;
  std::int64_t* owner;
  std::int64_t m, size;

  CT_HD void operator()(std::int64_t i) const {
    const std::int64_t k = indices[i];
    if (k < 0 || k >= size) return;
    const std::int64_t p = i / m;
    atomic_max(owner + p * size + k, i - p * m);
  }
};

// max_unpool, pass 2 over every output element j: the owning source's value, or zero.
template <class T>
struct IndexClaimGather {
  const T* src;
  const std::int64_t* owner;
  T* out;
  std::int64_t m, size;

  CT_HD void operator()(std::int64_t j) const {
    const std::int64_t o = owner[j];
    out[j] = o >= 0 ? src[(j / size) * m + o] : T(0);
  }
};

// The adjoint of the scatter, i over planes * m: out[i] = src[p, indices[i]], zero for a negative
// index (or one past the plane).
template <class T>
struct IndexGather {
  const T* src;
  const std::int64_t* indices;
  T* out;
  std::int64_t m, size;

  CT_HD void operator()(std::int64_t i) const {
    const std::int64_t k = indices[i];
    out[i] = k >= 0 && k < size ? src[(i / m) * size + k] : T(0);
  }
};

}  // namespace convtape::cuda
