// Pooling on CPU. Every spatial rank runs through one plan: per dim and output coordinate, the
// window's valid taps (first + r * step for r in [lo, hi)); the dims before the last select input
// rows, and along the last dim a whole output line is updated per (row, tap) with a unit- or
// constant-stride loop, so that the inner loops vectorise (compare-and-blend for max, adds for
// avg). Adaptive windows that are not all one size use per-output segments instead, and windows
// that cover a whole plane (global pooling) are plain contiguous reductions.
// Windows are scanned in row-major order and max replaces its candidate only on a strictly larger
// value or a first NaN, so the index is the first maximal element (PyTorch's CPU kernel keeps the
// last NaN of a window; this one keeps the first, as convtape's max reduction does).
#include "cpu/pool.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string_view>
#include <vector>

#include "cpu/gemm_kernel.h"

namespace convtape::cpu {

namespace {

constexpr int kMaxRank = 8;  // spatial dims handled by the fixed-size arrays below

// Window reads of one call; below kParallelWork a call runs on the calling thread, since waking
// the OpenMP team costs more than the work (small test tensors, late layers of small models).
constexpr std::int64_t kParallelWork = 1 << 18;

// The window of each output coordinate along one dim: taps r in [lo, hi) read input coordinate
// first + r * step; factor is the dim's share of the average's divisor.
struct DimWindows {
  std::vector<std::int64_t> first, lo, hi, factor;
  std::int64_t step = 1;
};

struct Plan {
  int s = 0;
  std::int64_t in[kMaxRank] = {}, out[kMaxRank] = {}, row_stride[kMaxRank] = {};
  std::int64_t in_numel = 1, out_numel = 1;
  std::int64_t lines = 1;  // output lines: the product of every output size but the last
  std::int64_t n = 1;      // outputs per line
  std::vector<DimWindows> dims;
  // Regular windows along the last dim: tap r of output j reads j * step + tap_off[r], inside
  // the input row for j in [tap_jlo[r], tap_jhi[r]).
  bool taps = false;
  std::int64_t step = 1;
  std::vector<std::int64_t> tap_off, tap_jlo, tap_jhi;
  // One window covering the whole plane with unit steps.
  bool global = false;
  std::int64_t divisor_override = 0;
  std::vector<double> last_factor;  // the last dim's factor per output, as a floating value
  double global_divisor = 1;        // the average's divisor when `global`
  std::int64_t work = 0;            // window reads per plane
};

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

Plan make_plan(const PoolGeometry& g) {
  Plan p;
  p.s = static_cast<int>(g.spatial());
  const int last = p.s - 1;
  std::int64_t rs = 1;
  for (int d = p.s - 1; d >= 0; --d) {
    const auto du = static_cast<std::size_t>(d);
    p.in[d] = g.in[du];
    p.out[d] = g.out[du];
    p.row_stride[d] = rs;
    rs *= p.in[d];
  }
  p.in_numel = g.in_numel();
  p.out_numel = g.out_numel();
  p.n = p.out[last];
  p.lines = p.out_numel / std::max<std::int64_t>(p.n, 1);
  p.divisor_override = g.divisor_override;
  p.global = true;
  std::int64_t window = 1;
  for (int d = 0; d < p.s; ++d) {
    const auto du = static_cast<std::size_t>(d);
    const std::int64_t in = p.in[d], out = p.out[d];
    DimWindows w;
    w.step = g.adaptive ? 1 : g.dilation[du];
    std::int64_t widest = 0;
    for (std::int64_t o = 0; o < out; ++o) {
      std::int64_t first, lo, hi, factor;
      if (g.adaptive) {
        first = floor_div(o * in, out);
        const std::int64_t end = floor_div((o + 1) * in + out - 1, out);
        lo = 0;
        hi = end - first;
        factor = hi;
      } else {
        const std::int64_t k = g.kernel[du], dil = g.dilation[du];
        first = o * g.stride[du] - g.pad_lo[du];
        lo = first >= 0 ? 0 : std::min(k, (-first + dil - 1) / dil);
        hi = first > in - 1 ? 0 : std::min(k, (in - 1 - first) / dil + 1);
        hi = std::max(hi, lo);
        factor = g.count_include_pad ? std::min(first + k, in + g.pad_hi[du]) - first : hi - lo;
      }
      w.first.push_back(first);
      w.lo.push_back(lo);
      w.hi.push_back(hi);
      w.factor.push_back(factor);
      widest = std::max(widest, hi - lo);
      p.global = p.global && out == 1 && first == 0 && lo == 0 && hi == in && w.step == 1;
    }
    window *= g.adaptive ? widest : g.kernel[du];
    p.dims.push_back(std::move(w));
  }
  p.work = p.out_numel * window;
  if (p.global) {
    p.global_divisor = static_cast<double>(g.divisor_override);
    if (g.divisor_override == 0) {
      p.global_divisor = 1;
      for (const DimWindows& w : p.dims) p.global_divisor *= static_cast<double>(w.factor[0]);
    }
  }
  const DimWindows& wl = p.dims.back();
  for (std::int64_t j = 0; j < p.n; ++j)
    p.last_factor.push_back(static_cast<double>(wl.factor[static_cast<std::size_t>(j)]));
  p.taps = !g.adaptive && !p.global;
  if (p.taps) {
    const auto lu = static_cast<std::size_t>(last);
    const std::int64_t k = g.kernel[lu], dil = g.dilation[lu], in = p.in[last];
    p.step = g.stride[lu];
    for (std::int64_t r = 0; r < k; ++r) {
      const std::int64_t off = r * dil - g.pad_lo[lu];
      // 0 <= j * step + off <= in - 1
      std::int64_t jlo = off >= 0 ? 0 : (-off + p.step - 1) / p.step;
      std::int64_t jhi = off > in - 1 ? 0 : (in - 1 - off) / p.step + 1;
      jlo = std::min(jlo, p.n);
      jhi = std::clamp(jhi, jlo, p.n);
      p.tap_off.push_back(off);
      p.tap_jlo.push_back(jlo);
      p.tap_jhi.push_back(jhi);
    }
  }
  return p;
}

// The plane kernels below are inlined into one copy per ISA (see plane_fn).
#define CT_POOL_INLINE __attribute__((always_inline)) inline

// max's update rule: a strictly larger value, or the first NaN.
template <class T>
CT_POOL_INLINE bool takes(T v, T cur) {
  return v > cur || (v != v && cur == cur);
}

// Calls row(base) for every input row (dims before the last) of output line o's window, in
// row-major order; base is the row's offset in the plane.
template <class F>
CT_POOL_INLINE void for_each_row(const Plan& pl, const std::int64_t* o, F&& row) {
  const int last = pl.s - 1;
  std::int64_t r[kMaxRank];
  for (int d = 0; d < last; ++d) {
    const auto od = static_cast<std::size_t>(o[d]);
    r[d] = pl.dims[static_cast<std::size_t>(d)].lo[od];
    if (r[d] >= pl.dims[static_cast<std::size_t>(d)].hi[od]) return;  // no valid row
  }
  for (;;) {
    std::int64_t base = 0;
    for (int d = 0; d < last; ++d) {
      const DimWindows& w = pl.dims[static_cast<std::size_t>(d)];
      base += (w.first[static_cast<std::size_t>(o[d])] + r[d] * w.step) * pl.row_stride[d];
    }
    row(base);
    int d = last - 1;
    for (; d >= 0; --d) {
      const DimWindows& w = pl.dims[static_cast<std::size_t>(d)];
      const auto od = static_cast<std::size_t>(o[d]);
      if (++r[d] < w.hi[od]) break;
      r[d] = w.lo[od];
    }
    if (d < 0) return;
  }
}

// Steps the outer output coordinate o (dims before the last) to the next line.
CT_POOL_INLINE void next_line(const Plan& pl, std::int64_t* o) {
  for (int d = pl.s - 2; d >= 0; --d) {
    if (++o[d] < pl.out[d]) return;
    o[d] = 0;
  }
}

// One tap of max along a line: m[j] = max(m[j], row[j * ST + off]) for j in [jlo, jhi), with the
// index base + j * ST + off when kIdx. ST > 0 is a compile-time stride, 0 the run-time `step`.
template <class T, bool kIdx, int ST>
CT_POOL_INLINE void max_tap(T* m, std::int64_t* id, const T* row, std::int64_t off,
                            std::int64_t base, std::int64_t jlo, std::int64_t jhi,
                            std::int64_t step) {
  const std::int64_t st = ST > 0 ? ST : step;
  for (std::int64_t j = jlo; j < jhi; ++j) {
    const T v = row[j * st + off], cur = m[j];
    const bool take = takes(v, cur);
    m[j] = take ? v : cur;
    if constexpr (kIdx) id[j] = take ? base + j * st + off : id[j];
  }
}

template <class T, bool kIdx, int ST>
CT_POOL_INLINE void max_row_taps(const Plan& pl, T* m, std::int64_t* id, const T* x,
                                 std::int64_t base) {
  const std::size_t k = pl.tap_off.size();
  for (std::size_t r = 0; r < k; ++r)
    max_tap<T, kIdx, ST>(m, id, x + base, pl.tap_off[r], base, pl.tap_jlo[r], pl.tap_jhi[r],
                         pl.step);
}

template <class T, bool kIdx>
CT_POOL_INLINE void max_plane(const Plan& pl, const T* x, T* y, std::int64_t* ind) {
  const T lowest = -std::numeric_limits<T>::infinity();
  if (pl.global) {
    if constexpr (kIdx) {
      T m = lowest;
      std::int64_t at = -1;
      for (std::int64_t i = 0; i < pl.in_numel; ++i)
        if (takes(x[i], m)) {
          m = x[i];
          at = i;
          if (m != m) break;
        }
      y[0] = m;
      ind[0] = at;
    } else {
      constexpr int kLanes = 64 / sizeof(T);
      T acc[kLanes];
      for (int l = 0; l < kLanes; ++l) acc[l] = lowest;
      std::int64_t i = 0;
      for (; i + kLanes <= pl.in_numel; i += kLanes)
        for (int l = 0; l < kLanes; ++l) {
          const T v = x[i + l];
          acc[l] = (v > acc[l] || v != v) ? v : acc[l];
        }
      for (int w = kLanes / 2; w >= 1; w /= 2)
        for (int l = 0; l < w; ++l)
          acc[l] = (acc[l + w] > acc[l] || acc[l + w] != acc[l + w]) ? acc[l + w] : acc[l];
      T m = acc[0];
      for (; i < pl.in_numel; ++i) m = (x[i] > m || x[i] != x[i]) ? x[i] : m;
      y[0] = m;
    }
    return;
  }
  const std::int64_t n = pl.n;
  const DimWindows& wl = pl.dims.back();
  std::int64_t o[kMaxRank] = {};
  for (std::int64_t l = 0; l < pl.lines; ++l, next_line(pl, o)) {
    T* m = y + l * n;
    std::int64_t* id = kIdx ? ind + l * n : nullptr;
    for (std::int64_t j = 0; j < n; ++j) m[j] = lowest;
    if constexpr (kIdx)
      for (std::int64_t j = 0; j < n; ++j) id[j] = -1;
    for_each_row(pl, o, [&](std::int64_t base) {
      if (pl.taps) {
        if (pl.step == 1)
          max_row_taps<T, kIdx, 1>(pl, m, id, x, base);
        else if (pl.step == 2)
          max_row_taps<T, kIdx, 2>(pl, m, id, x, base);
        else
          max_row_taps<T, kIdx, 0>(pl, m, id, x, base);
        return;
      }
      for (std::int64_t j = 0; j < n; ++j) {  // adaptive segments
        const auto ju = static_cast<std::size_t>(j);
        const std::int64_t start = base + wl.first[ju];
        for (std::int64_t t = start + wl.lo[ju]; t < start + wl.hi[ju]; ++t)
          if (takes(x[t], m[j])) {
            m[j] = x[t];
            if constexpr (kIdx) id[j] = t;
          }
      }
    });
  }
}

// The average's divisor for output j of a line whose outer dims contribute `outer`.
template <class T>
CT_POOL_INLINE T divisor(const Plan& pl, T outer, std::int64_t j) {
  return pl.divisor_override != 0
             ? static_cast<T>(pl.divisor_override)
             : outer * static_cast<T>(pl.last_factor[static_cast<std::size_t>(j)]);
}

template <class T>
CT_POOL_INLINE T outer_factor(const Plan& pl, const std::int64_t* o) {
  std::int64_t f = 1;
  for (int d = 0; d + 1 < pl.s; ++d)
    f *= pl.dims[static_cast<std::size_t>(d)].factor[static_cast<std::size_t>(o[d])];
  return static_cast<T>(f);
}

template <class T, int ST>
CT_POOL_INLINE void sum_row_taps(const Plan& pl, T* a, const T* row) {
  const std::int64_t st = ST > 0 ? ST : pl.step;
  const std::size_t k = pl.tap_off.size();
  for (std::size_t r = 0; r < k; ++r) {
    const T* src = row + pl.tap_off[r];
    const std::int64_t jhi = pl.tap_jhi[r];
    for (std::int64_t j = pl.tap_jlo[r]; j < jhi; ++j) a[j] += src[j * st];
  }
}

template <class T>
CT_POOL_INLINE T plane_sum(const T* x, std::int64_t count) {
  constexpr int kLanes = 64 / sizeof(T);
  T acc[kLanes] = {};
  std::int64_t i = 0;
  for (; i + kLanes <= count; i += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += x[i + l];
  for (int w = kLanes / 2; w >= 1; w /= 2)  // a tree: log2(lanes) vector steps
    for (int l = 0; l < w; ++l) acc[l] += acc[l + w];
  T s = acc[0];
  for (; i < count; ++i) s += x[i];
  return s;
}

template <class T>
CT_POOL_INLINE void avg_plane(const Plan& pl, const T* x, T* y) {
  if (pl.global) {
    y[0] = plane_sum(x, pl.in_numel) / static_cast<T>(pl.global_divisor);
    return;
  }
  const std::int64_t n = pl.n;
  const DimWindows& wl = pl.dims.back();
  std::int64_t o[kMaxRank] = {};
  for (std::int64_t l = 0; l < pl.lines; ++l, next_line(pl, o)) {
    T* a = y + l * n;
    for (std::int64_t j = 0; j < n; ++j) a[j] = T(0);
    for_each_row(pl, o, [&](std::int64_t base) {
      const T* row = x + base;
      if (pl.taps) {
        if (pl.step == 1)
          sum_row_taps<T, 1>(pl, a, row);
        else if (pl.step == 2)
          sum_row_taps<T, 2>(pl, a, row);
        else
          sum_row_taps<T, 0>(pl, a, row);
        return;
      }
      for (std::int64_t j = 0; j < n; ++j) {
        const auto ju = static_cast<std::size_t>(j);
        const T* seg = row + wl.first[ju];
        T s = T(0);
        for (std::int64_t t = wl.lo[ju]; t < wl.hi[ju]; ++t) s += seg[t];
        a[j] += s;
      }
    });
    const T outer = outer_factor<T>(pl, o);
    for (std::int64_t j = 0; j < n; ++j) a[j] /= divisor(pl, outer, j);
  }
}

// dx (one plane, zeroed here) from dy: every window element receives dy / divisor. `g` holds one
// line of scaled gradients.
template <class T>
CT_POOL_INLINE void avg_backward_plane(const Plan& pl, const T* dy, T* dx, T* g) {
  if (pl.global) {
    const T v = dy[0] / static_cast<T>(pl.global_divisor);
    for (std::int64_t i = 0; i < pl.in_numel; ++i) dx[i] = v;
    return;
  }
  for (std::int64_t i = 0; i < pl.in_numel; ++i) dx[i] = T(0);
  const std::int64_t n = pl.n;
  const DimWindows& wl = pl.dims.back();
  std::int64_t o[kMaxRank] = {};
  for (std::int64_t l = 0; l < pl.lines; ++l, next_line(pl, o)) {
    const T outer = outer_factor<T>(pl, o);
    for (std::int64_t j = 0; j < n; ++j) g[j] = dy[l * n + j] / divisor(pl, outer, j);
    for_each_row(pl, o, [&](std::int64_t base) {
      T* row = dx + base;
      if (pl.taps) {
        const std::size_t k = pl.tap_off.size();
        const std::int64_t st = pl.step;
        for (std::size_t r = 0; r < k; ++r) {
          T* dst = row + pl.tap_off[r];
          const std::int64_t jhi = pl.tap_jhi[r];
          if (st == 1) {
            for (std::int64_t j = pl.tap_jlo[r]; j < jhi; ++j) dst[j] += g[j];
          } else {
            for (std::int64_t j = pl.tap_jlo[r]; j < jhi; ++j) dst[j * st] += g[j];
          }
        }
        return;
      }
      for (std::int64_t j = 0; j < n; ++j) {
        const auto ju = static_cast<std::size_t>(j);
        T* seg = row + wl.first[ju];
        for (std::int64_t t = wl.lo[ju]; t < wl.hi[ju]; ++t) seg[t] += g[j];
      }
    });
  }
}

enum class Kind { MaxValues, MaxIndices, Avg, AvgBackward };

// Planes [p0, p1): src and dst (and ind, which has dst's layout) advance by one plane each.
struct Planes {
  std::int64_t p0, p1, src_plane, dst_plane;
};

template <class T>
using PlaneFn = void (*)(const Plan&, const Planes&, const T* src, T* dst, std::int64_t* ind,
                         T* scratch);

template <Kind K, class T>
CT_POOL_INLINE void planes_body(const Plan& pl, const Planes& r, const T* src, T* dst,
                                std::int64_t* ind, T* scratch) {
  for (std::int64_t p = r.p0; p < r.p1; ++p) {
    const T* s = src + p * r.src_plane;
    T* d = dst + p * r.dst_plane;
    if constexpr (K == Kind::MaxValues)
      max_plane<T, false>(pl, s, d, nullptr);
    else if constexpr (K == Kind::MaxIndices)
      max_plane<T, true>(pl, s, d, ind + p * r.dst_plane);
    else if constexpr (K == Kind::Avg)
      avg_plane<T>(pl, s, d);
    else
      avg_backward_plane<T>(pl, s, d, scratch);
  }
}

// One copy of every plane kernel per ISA: the always-inline bodies take on the target of the
// function they are inlined into. Each call runs a range of planes, so that small planes (global
// pooling of 7 x 7 maps) pay no call per plane.
#define CT_POOL_ISA(SUFFIX, TARGET)                                                  \
  template <Kind K, class T>                                                         \
  TARGET void planes_##SUFFIX(const Plan& pl, const Planes& r, const T* src, T* dst, \
                              std::int64_t* ind, T* scratch) {                       \
    planes_body<K, T>(pl, r, src, dst, ind, scratch);                                \
  }
CT_POOL_ISA(avx512, __attribute__((target("avx512f"))))
CT_POOL_ISA(avx2, __attribute__((target("avx2,fma"))))
CT_POOL_ISA(base, )
#undef CT_POOL_ISA

// The ISA of the chosen GEMM kernel, so that CONVTAPE_ISA forces these kernels too.
int isa() {
  static const int level = [] {
    const std::string_view chosen = gemm_kernel<float>().isa;
    return chosen == "avx512" ? 2 : chosen == "avx2" ? 1 : 0;
  }();
  return level;
}

template <Kind K, class T>
PlaneFn<T> plane_fn() {
  switch (isa()) {
    case 2:
      return planes_avx512<K, T>;
    case 1:
      return planes_avx2<K, T>;
    default:
      return planes_base<K, T>;
  }
}

// Runs a plane kernel over every plane, in parallel when the call is large enough.
template <Kind K, class T>
void run_planes(const Plan& pl, std::int64_t planes, const T* src, std::int64_t src_plane, T* dst,
                std::int64_t dst_plane, std::int64_t* ind, std::int64_t scratch) {
  const PlaneFn<T> f = plane_fn<K, T>();
  const bool parallel = planes > 1 && planes * pl.work >= kParallelWork;
#pragma omp parallel if (parallel)
  {
    // One contiguous range of planes per thread (every plane costs the same).
    const std::int64_t team = omp_get_num_threads(), me = omp_get_thread_num();
    const Planes r{planes * me / team, planes * (me + 1) / team, src_plane, dst_plane};
    std::vector<T> buf(static_cast<std::size_t>(scratch));
    if (r.p0 < r.p1) f(pl, r, src, dst, ind, buf.data());
  }
}

Shape with_planes(const PoolGeometry& g, const Shape& spatial) {
  Shape s{g.batch, g.channels};
  s.insert(s.end(), spatial.begin(), spatial.end());
  return s;
}

}  // namespace

PoolResult max_pool_forward(const Tensor& x, const PoolGeometry& g, bool with_indices) {
  const Plan pl = make_plan(g);
  PoolResult r;
  r.values = Tensor::empty_cpu(with_planes(g, g.out), x.dtype());
  if (with_indices) r.indices = Tensor::empty_cpu(with_planes(g, g.out), kInt64);
  std::int64_t* ind = with_indices ? r.indices.data_ptr<std::int64_t>() : nullptr;
  dispatch_floating(x.dtype(), [&]<class T>() {
    if (with_indices)
      run_planes<Kind::MaxIndices, T>(pl, g.planes(), x.data_ptr<T>(), pl.in_numel,
                                      r.values.data_ptr<T>(), pl.out_numel, ind, 0);
    else
      run_planes<Kind::MaxValues, T>(pl, g.planes(), x.data_ptr<T>(), pl.in_numel,
                                     r.values.data_ptr<T>(), pl.out_numel, nullptr, 0);
  });
  return r;
}

Tensor avg_pool_forward(const Tensor& x, const PoolGeometry& g) {
  const Plan pl = make_plan(g);
  Tensor y = Tensor::empty_cpu(with_planes(g, g.out), x.dtype());
  dispatch_floating(x.dtype(), [&]<class T>() {
    run_planes<Kind::Avg, T>(pl, g.planes(), x.data_ptr<T>(), pl.in_numel, y.data_ptr<T>(),
                             pl.out_numel, nullptr, 0);
  });
  return y;
}

Tensor avg_pool_backward(const Tensor& dy, const PoolGeometry& g) {
  const Plan pl = make_plan(g);
  Tensor dx = Tensor::empty_cpu(with_planes(g, g.in), dy.dtype());
  dispatch_floating(dy.dtype(), [&]<class T>() {
    run_planes<Kind::AvgBackward, T>(pl, g.planes(), dy.data_ptr<T>(), pl.out_numel,
                                     dx.data_ptr<T>(), pl.in_numel, nullptr, pl.n);
  });
  return dx;
}

Tensor index_scatter(const Tensor& src, const Tensor& indices, const Shape& plane,
                     bool accumulate) {
  const std::int64_t planes = src.size(0) * src.size(1);
  const std::int64_t m = planes > 0 ? src.numel() / planes : 0, size = numel(plane);
  Shape shape{src.size(0), src.size(1)};
  shape.insert(shape.end(), plane.begin(), plane.end());
  Tensor out = Tensor::empty_cpu(shape, src.dtype());
  const std::int64_t* ind = indices.data_ptr<std::int64_t>();
  dispatch_floating(src.dtype(), [&]<class T>() {
    const T* s = src.data_ptr<T>();
    T* d = out.data_ptr<T>();
#pragma omp parallel for schedule(static) if (planes > 1 && planes * (m + size) >= kParallelWork)
    for (std::int64_t p = 0; p < planes; ++p) {
      T* dp = d + p * size;
      const T* sp = s + p * m;
      const std::int64_t* ip = ind + p * m;
      std::fill_n(dp, size, T(0));
      if (accumulate) {
        for (std::int64_t o = 0; o < m; ++o)
          if (ip[o] >= 0) dp[ip[o]] += sp[o];
      } else {
        for (std::int64_t o = 0; o < m; ++o)
          if (ip[o] >= 0) dp[ip[o]] = sp[o];
      }
    }
  });
  return out;
}

Tensor index_gather(const Tensor& src, const Tensor& indices) {
  const std::int64_t planes = src.size(0) * src.size(1);
  const std::int64_t size = planes > 0 ? src.numel() / planes : 0;
  const std::int64_t m = planes > 0 ? indices.numel() / planes : 0;
  Tensor out = Tensor::empty_cpu(indices.shape(), src.dtype());
  const std::int64_t* ind = indices.data_ptr<std::int64_t>();
  dispatch_floating(src.dtype(), [&]<class T>() {
    const T* s = src.data_ptr<T>();
    T* d = out.data_ptr<T>();
#pragma omp parallel for schedule(static) if (planes > 1 && planes * m >= kParallelWork)
    for (std::int64_t p = 0; p < planes; ++p)
      for (std::int64_t o = 0; o < m; ++o) {
        const std::int64_t i = ind[p * m + o];
        d[p * m + o] = i >= 0 ? s[p * size + i] : T(0);
      }
  });
  return out;
}

}  // namespace convtape::cpu
