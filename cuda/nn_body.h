// The CUDA kernels of softmax / log-softmax, negative log-likelihood, index_select / index_add and
// the device-side range check, as host/device functors (cuda/device_fn.h); like cuda/reduce_body.h,
// whose reduction passes softmax reuses, they include no CUDA header.
// softmax of x [outer, n, inner] along n, per line (o, j), exactly as cpu/nn.cpp computes it:
//   s = max_m x[o, m, j] (0 when that is -inf), Z = sum_m exp((double)(x - s)),
//   softmax = exp((double)(x - s)) / Z (as * (1 / Z)), log_softmax = x - s - (T)log(Z).
// Where cuda/reduce_body.h would reduce the lines in one pass, one work item per line computes s
// and Z in the CPU's order; otherwise the lines are cut into parts as there (max passes, then
// partial sums of exp, then sum passes).
// nll: out[i] = -logp[i, labels[i]] * w[labels[i]] (w = 1 without class weights), 0 where
// labels[i] == ignore_index; its gradient is -g[i] * w[labels[i]] at (i, labels[i]), 0 elsewhere.
// nll's labels are range-checked by the forward functor itself (ignore_index must pass), which
// lowers *first_bad to the first position holding a label outside [0, C) other than ignore_index.
// index_select: y[o, k, j] = x[o, index[k], j]. index_add: y[o, m, j] = sum over the k with
// index[k] == m, in increasing k, of src[o, k, j]; the positions k are sorted by index[k] first
// (a stable sort), so each output gathers its own terms in the CPU's order: no atomics, and the
// result is deterministic and equal to cpu::index_add.
// Indices outside their range are refused before these kernels run (FirstOutOfRange finds the
// first one on the device); the kernels only stay inside memory should one slip through: nll gives
// NaN, its gradient and the index kernels read zeros.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cuda/device_fn.h"
#include "cuda/reduce_body.h"

namespace convtape::cuda {

template <class T>
CT_HD inline T quiet_nan() {
  return infinity<T>() - infinity<T>();
}

// The shift of a softmax line: its max, or 0 when every value is -inf (exp stays finite).
template <class T>
CT_HD inline T softmax_shift(T mx) {
  return mx == -infinity<T>() ? T(0) : mx;
}

// One work item per line: mx[line] = the line's max (the CPU's std::max scan: a NaN is kept only
// in first position, which leaves every output NaN either way), sum[line] = Z.
template <class T>
struct SoftmaxLineStats {
  const T* x = nullptr;
  T* mx = nullptr;
  double* sum = nullptr;
  std::int64_t n = 0, inner = 1;

  CT_HD void operator()(std::int64_t line) const {
    const std::int64_t o = line / inner, j = line % inner;
    const T* p = x + o * n * inner + j;
    T m = p[0];
    for (std::int64_t k = 1; k < n; ++k) {
      const T v = p[k * inner];
      m = m < v ? v : m;
    }
    mx[line] = m;
    const T s = softmax_shift(m);
    double z = 0.0;
    for (std::int64_t k = 0; k < n; ++k) z += d_exp(static_cast<double>(p[k * inner] - s));
    sum[line] = z;
  }
};

// A pass over the parts of long lines: partial[(o, c, j)] = sum of exp((double)(x - s)) over the
// part's positions (cuda/reduce_body.h's interleaved cut), given the lines' maxima.
template <class T>
struct SoftmaxExpSum {
  const T* x = nullptr;
  const T* mx = nullptr;
  double* partial = nullptr;
  std::int64_t n = 0, inner = 1, chunks = 1;

  CT_HD void operator()(std::int64_t i) const {
    const std::int64_t j = i % inner;
    const std::int64_t oc = i / inner;
    const std::int64_t c = oc % chunks;
    const std::int64_t o = oc / chunks;
    const T s = softmax_shift(mx[o * inner + j]);
    const T* p = x + o * n * inner + j;
    double z = 0.0;
    for (std::int64_t k = c; k < n; k += chunks) z += d_exp(static_cast<double>(p[k * inner] - s));
    partial[i] = z;
  }
};

// One work item per element of y, from its line's max and Z.
template <class T>
struct SoftmaxApply {
  const T* x = nullptr;
  const T* mx = nullptr;
  const double* sum = nullptr;
  T* y = nullptr;
  std::int64_t n = 0, inner = 1;
  bool log = false;

  CT_HD void operator()(std::int64_t i) const {
    const std::int64_t line = i / (n * inner) * inner + i % inner;
    const T s = softmax_shift(mx[line]);
    if (log) {
      const T lse = static_cast<T>(d_log(sum[line]));
      y[i] = x[i] - s - lse;
    } else {
      const double inv = 1.0 / sum[line];
      y[i] = static_cast<T>(d_exp(static_cast<double>(x[i] - s)) * inv);
    }
  }
};

// Scratch of a softmax over `lines` lines of length n, in elements (0: not needed):
// T values for the max passes, doubles for the partial sums of exp and for their passes.
struct SoftmaxScratch {
  std::int64_t max_values = 0, partials = 0, sum_values = 0;
};
inline SoftmaxScratch softmax_scratch(std::int64_t lines, std::int64_t n) {
  const ReducePlan plan = plan_reduce(lines, n);
  if (plan.passes == 1) return {};
  return {lines * plan.scratch_per_line(), lines * plan.chunks[0],
          lines * plan_reduce(lines, plan.chunks[0]).scratch_per_line()};
}

// All the passes of a softmax of x [outer, n, inner] (n > 0) into y, launched through
// launch(items, functor) (cuda/reduce_body.h). mx and sum hold outer * inner values; partial, va,
// vb, a and b the sizes softmax_scratch gives (va / vb for max partials, a / b for sums).
template <class T, class Launch>
auto softmax_passes(const Launch& launch, const T* x, T* y, std::int64_t outer, std::int64_t n,
                    std::int64_t inner, bool log, T* mx, double* sum, double* partial, T* va, T* vb,
                    double* a, double* b) {
  const std::int64_t lines = outer * inner;
  const ReducePlan plan = plan_reduce(lines, n);
  using Status = decltype(launch(std::int64_t{0}, SoftmaxApply<T>{}));
  Status status{};
  if (plan.passes == 1) {
    status = launch(lines, SoftmaxLineStats<T>{x, mx, sum, n, inner});
  } else {
    const std::int64_t chunks = plan.chunks[0];
    status = reduce_extreme_passes<T>(launch, true, x, mx, nullptr, outer, n, inner, va, vb,
                                      nullptr, nullptr);
    if (status == Status{})
      status = launch(outer * chunks * inner, SoftmaxExpSum<T>{x, mx, partial, n, inner, chunks});
    if (status == Status{})
      status = reduce_sum_passes<double, double>(launch, partial, sum, outer, chunks, inner, a, b);
  }
  if (status == Status{})
    status = launch(outer * n * inner, SoftmaxApply<T>{x, mx, sum, y, n, inner, log});
  return status;
}

// Lowers *p to v when v is smaller (atomically on the device).
CT_HD inline void atomic_min_int64(std::int64_t* p, std::int64_t v) {
#if defined(__CUDA_ARCH__)
  static_assert(sizeof(long long) == sizeof(std::int64_t), "int64 atomics");
  atomicMin(reinterpret_cast<long long*>(p), static_cast<long long>(v));
#else
  if (v < *p) *p = v;
#endif
}

// out[i] (and sample_weights[i] when non-null) for logp [batch, classes]; weight null: all 1.
// A label outside [0, classes) other than ignore_index gives NaN and lowers *first_bad (when
// non-null) to its position.
template <class T>
struct NllForward {
  const T* logp = nullptr;
  const std::int64_t* labels = nullptr;
  const T* weight = nullptr;
  T* out = nullptr;
  T* sample_weights = nullptr;
  std::int64_t* first_bad = nullptr;
  std::int64_t classes = 0;
  std::int64_t ignore_index = -100;

  CT_HD void operator()(std::int64_t i) const {
    const std::int64_t c = labels[i];
    T loss = T(0), w = T(0);
    if (c != ignore_index) {
      if (c >= 0 && c < classes) {
        w = weight ? weight[c] : T(1);
        loss = weight ? -logp[i * classes + c] * w : -logp[i * classes + c];
      } else {
        loss = w = quiet_nan<T>();
        if (first_bad) atomic_min_int64(first_bad, i);
      }
    }
    out[i] = loss;
    if (sample_weights) sample_weights[i] = w;
  }
};

// dx [batch, classes]: -g[i] * w[labels[i]] at (i, labels[i]), 0 elsewhere and on ignored rows;
// one work item per element of dx.
template <class T>
struct NllBackward {
  const T* g = nullptr;
  const std::int64_t* labels = nullptr;
  const T* weight = nullptr;
  T* dx = nullptr;
  std::int64_t classes = 0;
  std::int64_t ignore_index = -100;

  CT_HD void operator()(std::int64_t i) const {
    const std::int64_t r = i / classes, k = i % classes;
    const std::int64_t c = labels[r];
    dx[i] = c == k && c != ignore_index ? (weight ? -g[r] * weight[c] : -g[r]) : T(0);
  }
};

// y [outer, len, inner] from x [outer, n, inner]; one work item per element of y.
template <class T>
struct IndexSelect {
  const T* x = nullptr;
  const std::int64_t* index = nullptr;
  T* y = nullptr;
  std::int64_t n = 0, len = 0, inner = 1;

  CT_HD void operator()(std::int64_t i) const {
    const std::int64_t j = i % inner;
    const std::int64_t ok = i / inner;
    const std::int64_t k = ok % len;
    const std::int64_t o = ok / len;
    const std::int64_t m = index[k];
    y[i] = m >= 0 && m < n ? x[(o * n + m) * inner + j] : T(0);
  }
};

// perm[k] = k: the values that the stable sort of index_add carries along with the keys.
struct Iota {
  std::int64_t* out = nullptr;
  CT_HD void operator()(std::int64_t i) const { out[i] = i; }
};

// y [outer, n, inner] from src [outer, len, inner], given the index sorted (keys, ascending) and
// the positions it came from (perm; equal keys in increasing position); one work item per element
// of y, which binary-searches its run of keys.
template <class T>
struct IndexAddGather {
  const T* src = nullptr;
  const std::int64_t* keys = nullptr;
  const std::int64_t* perm = nullptr;
  T* y = nullptr;
  std::int64_t n = 0, len = 0, inner = 1;

  CT_HD void operator()(std::int64_t i) const {
    const std::int64_t j = i % inner;
    const std::int64_t om = i / inner;
    const std::int64_t m = om % n;
    const std::int64_t o = om / n;
    std::int64_t lo = 0, hi = len;  // first key >= m
    while (lo < hi) {
      const std::int64_t mid = lo + (hi - lo) / 2;
      if (keys[mid] < m)
        lo = mid + 1;
      else
        hi = mid;
    }
    T acc = T(0);
    for (std::int64_t p = lo; p < len && keys[p] == m; ++p)
      acc += src[(o * len + perm[p]) * inner + j];
    y[i] = acc;
  }
};

// The dim of a shape (sizes[0 .. rank)) that splits it into [outer, n, inner], for error messages
// that name it: the first one when size-1 dims let several fit (n == 1), -1 when none does.
inline std::int64_t split_dim(const std::int64_t* sizes, std::size_t rank, std::int64_t outer,
                              std::int64_t n, std::int64_t inner) {
  std::int64_t before = 1;
  for (std::size_t d = 0; d < rank; ++d) {
    std::int64_t after = 1;
    for (std::size_t e = d + 1; e < rank; ++e) after *= sizes[e];
    if (before == outer && sizes[d] == n && after == inner) return static_cast<std::int64_t>(d);
    before *= sizes[d];
  }
  return -1;
}

// *first = the smallest i with values[i] outside [lo, hi) (left as it was, the count, when none).
struct FirstOutOfRange {
  const std::int64_t* values = nullptr;
  std::int64_t lo = 0, hi = 0;
  std::int64_t* first = nullptr;

  CT_HD void operator()(std::int64_t i) const {
    const std::int64_t v = values[i];
    if (v < lo || v >= hi) atomic_min_int64(first, i);
  }
};

}  // namespace convtape::cuda
