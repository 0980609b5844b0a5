// The CUDA kernels of the comparison and selection ops as host/device functors (cuda/device_fn.h),
// shared by cuda/select.cu and the host tests (tests/cuda_host/select_body_test.cpp). Each formula
// is cpu/select.cpp's, so the two backends agree bit for bit:
//   compare  y[i] = f(a[ia(i)], b[ib(i)])     the maps of CompareKind (core/kernel_args.h's
//   Compare)
//                                              through cuda/elementwise_body.h's BinaryMap
//   where    y[i] = c[ic(i)] != 0 ? a[ia(i)] : b[ib(i)]
//   nonzero  flags[i] = mask[i] != 0; pos = exclusive prefix sum of flags (CUB on the device);
//            out[pos[i]] = i where flags[i]
//   topk     one work item per row of [rows, n]: k passes, pass j taking the first element (in
//            topk_before's total order) after the one pass j - 1 took; O(n k) per row, no scratch.
// Operands are float32, float64 or int64; layouts are cuda/elementwise_plan.h's.
#pragma once

#include <cstdint>
#include <type_traits>

#include "cuda/device_fn.h"
#include "cuda/elementwise_body.h"

namespace convtape::cuda {

// The maps of convtape::Compare (core/kernel_args.h, which .cu files cannot include);
// cuda/select_plan.h translates.
enum class CompareKind { Eq, Ne, Lt, Le, Gt, Ge, And, Or, Max, Min };

namespace sel {

template <class T>
CT_HD inline bool is_nan(T v) {
  if constexpr (std::is_integral_v<T>)
    return false;
  else
    return v != v;
}

}  // namespace sel

// f(a, b) of CompareKind K in the operands' type T.
template <class T, CompareKind K>
struct CompareFn {
  CT_HD T operator()(T u, T v) const {
    if constexpr (K == CompareKind::Eq) {
      return static_cast<T>(u == v);
    } else if constexpr (K == CompareKind::Ne) {
      return static_cast<T>(u != v);
    } else if constexpr (K == CompareKind::Lt) {
      return static_cast<T>(u < v);
    } else if constexpr (K == CompareKind::Le) {
      return static_cast<T>(u <= v);
    } else if constexpr (K == CompareKind::Gt) {
      return static_cast<T>(u > v);
    } else if constexpr (K == CompareKind::Ge) {
      return static_cast<T>(u >= v);
    } else if constexpr (K == CompareKind::And) {
      return static_cast<T>(u != T(0) && v != T(0));
    } else if constexpr (K == CompareKind::Or) {
      return static_cast<T>(u != T(0) || v != T(0));
    } else if constexpr (K == CompareKind::Max) {
      return sel::is_nan(u) ? u : sel::is_nan(v) ? v : u < v ? v : u;
    } else {
      static_assert(K == CompareKind::Min, "every CompareKind has a formula");
      return sel::is_nan(u) ? u : sel::is_nan(v) ? v : v < u ? v : u;
    }
  }
};

// Calls f(CompareFn<T, kind>{}): one kernel per map.
template <class T, class F>
decltype(auto) visit_compare(CompareKind kind, F&& f) {
  switch (kind) {
    case CompareKind::Eq:
      return f(CompareFn<T, CompareKind::Eq>{});
    case CompareKind::Ne:
      return f(CompareFn<T, CompareKind::Ne>{});
    case CompareKind::Lt:
      return f(CompareFn<T, CompareKind::Lt>{});
    case CompareKind::Le:
      return f(CompareFn<T, CompareKind::Le>{});
    case CompareKind::Gt:
      return f(CompareFn<T, CompareKind::Gt>{});
    case CompareKind::Ge:
      return f(CompareFn<T, CompareKind::Ge>{});
    case CompareKind::And:
      return f(CompareFn<T, CompareKind::And>{});
    case CompareKind::Or:
      return f(CompareFn<T, CompareKind::Or>{});
    case CompareKind::Max:
      return f(CompareFn<T, CompareKind::Max>{});
    case CompareKind::Min:
      break;
  }
  return f(CompareFn<T, CompareKind::Min>{});
}

template <class T, class Index>
struct WhereMap {
  const T* c;
  const T* a;
  const T* b;
  T* y;
  Index ic, ia, ib;

  CT_HD void operator()(std::int64_t i) const {
    y[i] = c[ic.offset(i)] != T(0) ? a[ia.offset(i)] : b[ib.offset(i)];
  }
};

template <class T>
struct NonzeroFlag {
  const T* mask;
  std::int64_t* flags;

  CT_HD void operator()(std::int64_t i) const { flags[i] = mask[i] != T(0) ? 1 : 0; }
};

// pos: the exclusive prefix sum of flags.
struct NonzeroScatter {
  const std::int64_t* flags;
  const std::int64_t* pos;
  std::int64_t* out;

  CT_HD void operator()(std::int64_t i) const {
    if (flags[i] != 0) out[pos[i]] = i;
  }
};

// cpu::topk_before (cpu/select.h), the order both backends use: NaN above every number, equal
// values by position.
template <class T>
CT_HD inline bool topk_before(T u, std::int64_t i, T v, std::int64_t j, bool largest) {
  if constexpr (!std::is_integral_v<T>) {
    const bool un = u != u, vn = v != v;
    if (un || vn) return un == vn ? i < j : (largest ? un : vn);
  }
  if (u != v) return largest ? v < u : u < v;
  return i < j;
}

template <class T>
struct TopkRow {
  const T* x;
  T* values;
  std::int64_t* indices;
  std::int64_t n = 0, k = 0;
  bool largest = true;

  CT_HD void operator()(std::int64_t r) const {
    const T* row = x + r * n;
    std::int64_t prev = -1;
    for (std::int64_t j = 0; j < k; ++j) {
      std::int64_t best = -1;
      for (std::int64_t i = 0; i < n; ++i) {
        if (prev >= 0 && !topk_before(row[prev], prev, row[i], i, largest)) continue;
        if (best < 0 || topk_before(row[i], i, row[best], best, largest)) best = i;
      }
      values[r * k + j] = row[best];
      indices[r * k + j] = best;
      prev = best;
    }
  }
};

// Builds the kernel of one compare call and hands it to run (a device launch, or a host loop in
// the tests). The layout's operands 0 and 1 are a and b.
template <class T, class Run>
decltype(auto) run_compare(CompareKind kind, const T* a, const T* b, T* y, const MapLayout& m,
                           Run&& run) {
  return visit_compare<T>(kind, [&](auto op) -> decltype(auto) {
    return visit_layout<2>(m, [&](auto ia, auto ib) -> decltype(auto) {
      return run(BinaryMap<T, decltype(op), decltype(ia)>{a, b, y, ia, ib, op});
    });
  });
}

// As run_compare; the layout's operands 0, 1 and 2 are c, a and b.
template <class T, class Run>
decltype(auto) run_where(const T* c, const T* a, const T* b, T* y, const MapLayout& m, Run&& run) {
  return visit_layout<3>(m, [&](auto ic, auto ia, auto ib) -> decltype(auto) {
    return run(WhereMap<T, decltype(ic)>{c, a, b, y, ic, ia, ib});
  });
}

}  // namespace convtape::cuda
