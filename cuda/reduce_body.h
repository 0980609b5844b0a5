// The CUDA reduction kernels as host/device functors (cuda/device_fn.h), and the plan that chains
// them. x is contiguous [outer, n, inner]; a pass cuts the n axis of every (o, j) line into
// `chunks` interleaved parts (part c holds positions c, c + chunks, c + 2 chunks, ...: neighbouring
// work items read neighbouring addresses) and writes one partial per part, laid out
// [outer, chunks, inner]; the next pass reduces those partials the same way, until one part is
// left. Sums accumulate in double (partials are double); max / min partials carry the position
// along the original axis, and a candidate replaces the current best when it is larger (smaller),
// a first NaN, or an equal value at an earlier position. So NaN wins, ties go to the first
// position, and the result does not depend on how the axis was cut: cpu/reduce.cpp's rules.
// reduce_scatter is the gather form of the max / min gradient: dx[o, m, j] = dy[o, j] where
// indices[o, j] == m, else 0.
#pragma once

#include <algorithm>
#include <cstdint>

#include "cuda/device_fn.h"

namespace convtape::cuda {

// Work items that keep a GPU busy (an H100 runs 132 x 2048 threads at once).
inline constexpr std::int64_t kReduceTargetItems = std::int64_t{1} << 17;
// A cut axis gives each work item at least this many values; shorter axes (under twice this), and
// lines numerous enough to fill the GPU alone, are reduced in one pass, one work item per output.
inline constexpr std::int64_t kReduceMinPerItem = 64;
// Each cut divides the axis by at least kReduceMinPerItem, so a few passes always suffice.
inline constexpr int kReduceMaxPasses = 12;

// How many parts one pass cuts an axis of n into when `lines` lines are reduced at once.
inline std::int64_t reduce_chunks(std::int64_t lines, std::int64_t n) {
  if (lines <= 0 || lines >= kReduceTargetItems) return 1;
  return std::max<std::int64_t>(1, std::min(kReduceTargetItems / lines, n / kReduceMinPerItem));
}

// The passes of one reduction: pass p reduces an axis of len[p] to chunks[p] parts, which are the
// next pass's axis (len[p + 1] = chunks[p]); the last pass leaves one part.
struct ReducePlan {
  int passes = 0;
  std::int64_t len[kReduceMaxPasses] = {};
  std::int64_t chunks[kReduceMaxPasses] = {};

  // Partials of the largest intermediate pass per line (0 when one pass does).
  std::int64_t scratch_per_line() const { return passes > 1 ? chunks[0] : 0; }
};

inline ReducePlan plan_reduce(std::int64_t lines, std::int64_t n) {
  ReducePlan p;
  for (;;) {
    const std::int64_t c = reduce_chunks(lines, n);
    p.len[p.passes] = n;
    p.chunks[p.passes] = c;
    ++p.passes;
    if (c == 1 || p.passes == kReduceMaxPasses) break;
    n = c;
  }
  // Unreachable guard: kReduceMaxPasses cuts by kReduceMinPerItem exceed any int64 axis.
  p.chunks[p.passes - 1] = 1;
  return p;
}

// One pass of a sum: out[(o, c, j)] = sum over the part's positions m of in[o, m, j], in double.
// With one part and inner == 1 the row is summed with eight interleaved partials exactly as
// cpu::reduce does, so that single-pass results match the CPU bit for bit.
template <class In, class Out>
struct SumPass {
  const In* in = nullptr;
  Out* out = nullptr;
  std::int64_t n = 0, inner = 1, chunks = 1;

  CT_HD void operator()(std::int64_t i) const {
    const std::int64_t j = i % inner;
    const std::int64_t oc = i / inner;
    const std::int64_t c = oc % chunks;
    const std::int64_t o = oc / chunks;
    const In* p = in + o * n * inner + j;
    if (chunks == 1 && inner == 1) {
      double part[8] = {};
      std::int64_t m = 0;
      for (; m + 8 <= n; m += 8)
        for (int k = 0; k < 8; ++k) part[k] += static_cast<double>(p[m + k]);
      double acc = 0.0;
      for (; m < n; ++m) acc += static_cast<double>(p[m]);
      for (int k = 0; k < 8; ++k) acc += part[k];
      out[i] = static_cast<Out>(acc);
      return;
    }
    double acc = 0.0;
    for (std::int64_t m = c; m < n; m += chunks) acc += static_cast<double>(p[m * inner]);
    out[i] = static_cast<Out>(acc);
  }
};

// Whether candidate (v, at) replaces the current best (best, best_at) of a max (or min).
template <class T>
CT_HD inline bool reduce_better(bool max, T v, std::int64_t at, T best, std::int64_t best_at) {
  if (is_nan(best)) return is_nan(v) && at < best_at;
  if (is_nan(v)) return true;
  if (v == best) return at < best_at;
  return max ? v > best : v < best;
}

// One pass of a max / min: out[(o, c, j)] = the best of in[o, m, j] over the part's positions m,
// out_idx its position along the original axis: m itself on the first pass (in_idx null), else
// in_idx[o, m, j]. out_idx may be null (values only). An empty axis (n == 0) gives 0 at position
// 0, cpu::reduce's value; the front ends refuse such reductions.
template <class T>
struct ExtremePass {
  const T* in = nullptr;
  const std::int64_t* in_idx = nullptr;
  T* out = nullptr;
  std::int64_t* out_idx = nullptr;
  std::int64_t n = 0, inner = 1, chunks = 1;
  bool max = true;

  CT_HD void operator()(std::int64_t i) const {
    const std::int64_t j = i % inner;
    const std::int64_t oc = i / inner;
    const std::int64_t c = oc % chunks;
    const std::int64_t o = oc / chunks;
    if (c >= n) {
      out[i] = T(0);
      if (out_idx) out_idx[i] = 0;
      return;
    }
    const std::int64_t base = o * n * inner + j;
    T best = in[base + c * inner];
    std::int64_t best_at = in_idx ? in_idx[base + c * inner] : c;
    for (std::int64_t m = c + chunks; m < n; m += chunks) {
      const T v = in[base + m * inner];
      const std::int64_t at = in_idx ? in_idx[base + m * inner] : m;
      if (reduce_better(max, v, at, best, best_at)) {
        best = v;
        best_at = at;
      }
    }
    out[i] = best;
    if (out_idx) out_idx[i] = best_at;
  }
};

// dx [outer, mid, inner] from dy and indices [outer, inner]: one work item per element of dx.
template <class T>
struct ReduceScatter {
  const T* dy = nullptr;
  const std::int64_t* indices = nullptr;
  T* dx = nullptr;
  std::int64_t mid = 0, inner = 1;

  CT_HD void operator()(std::int64_t i) const {
    const std::int64_t j = i % inner;
    const std::int64_t om = i / inner;
    const std::int64_t m = om % mid;
    const std::int64_t g = om / mid * inner + j;
    dx[i] = indices[g] == m ? dy[g] : T(0);
  }
};

// The passes of a sum of x [outer, n, inner] into out [outer, inner] (Out: x's type, or double),
// launched through launch(items, functor), which returns a status (0 / cudaSuccess when it
// worked). a and b hold outer * plan.scratch_per_line() * inner doubles each.
template <class T, class Out, class Launch>
auto reduce_sum_passes(const Launch& launch, const T* x, Out* out, std::int64_t outer,
                       std::int64_t n, std::int64_t inner, double* a, double* b) {
  const ReducePlan plan = plan_reduce(outer * inner, n);
  if (plan.passes == 1) return launch(outer * inner, SumPass<T, Out>{x, out, n, inner, 1});
  auto status =
      launch(outer * plan.chunks[0] * inner, SumPass<T, double>{x, a, n, inner, plan.chunks[0]});
  for (int p = 1; p < plan.passes && status == decltype(status){}; ++p) {
    const std::int64_t len = plan.len[p], chunks = plan.chunks[p];
    if (p == plan.passes - 1) {
      status = launch(outer * inner, SumPass<double, Out>{a, out, len, inner, 1});
    } else {
      status = launch(outer * chunks * inner, SumPass<double, double>{a, b, len, inner, chunks});
      std::swap(a, b);
    }
  }
  return status;
}

// The passes of a max / min of x [outer, n, inner] into out [outer, inner] and, when idx is not
// null, the positions into idx. va and vb hold outer * plan.scratch_per_line() * inner values,
// ia and ib as many positions (they may be null when idx is).
template <class T, class Launch>
auto reduce_extreme_passes(const Launch& launch, bool max, const T* x, T* out, std::int64_t* idx,
                           std::int64_t outer, std::int64_t n, std::int64_t inner, T* va, T* vb,
                           std::int64_t* ia, std::int64_t* ib) {
  const ReducePlan plan = plan_reduce(outer * inner, n);
  if (plan.passes == 1)
    return launch(outer * inner, ExtremePass<T>{x, nullptr, out, idx, n, inner, 1, max});
  if (!idx) ia = ib = nullptr;
  auto status = launch(outer * plan.chunks[0] * inner,
                       ExtremePass<T>{x, nullptr, va, ia, n, inner, plan.chunks[0], max});
  for (int p = 1; p < plan.passes && status == decltype(status){}; ++p) {
    const std::int64_t len = plan.len[p], chunks = plan.chunks[p];
    if (p == plan.passes - 1) {
      status = launch(outer * inner, ExtremePass<T>{va, ia, out, idx, len, inner, 1, max});
    } else {
      status =
          launch(outer * chunks * inner, ExtremePass<T>{va, ia, vb, ib, len, inner, chunks, max});
      std::swap(va, vb);
      std::swap(ia, ib);
    }
  }
  return status;
}

}  // namespace convtape::cuda
