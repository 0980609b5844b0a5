// CPU kernels of the comparison and selection ops (ops/compare.h): the broadcasting compare maps
// (comparisons, logical and / or, maximum / minimum), the where select, the flat positions of a
// mask's nonzero elements, and top-k per row. float32, float64 and int64 alike.
// The kernels' signatures and contracts: core/kernels.def (declared by cpu/backend_kernels.h).
#pragma once

#include <cstdint>
#include <type_traits>

#include "core/kernel_args.h"
#include "core/tensor.h"
#include "cpu/backend_kernels.h"

namespace convtape::cpu {

// topk's order on the elements of one row (core/kernels.def): whether (u at position i) comes
// before (v at position j). NaN ranks above every number, equal values go by position, so the
// order is total and every backend picks the same elements in the same order.
template <class T>
bool topk_before(T u, std::int64_t i, T v, std::int64_t j, bool largest) {
  if constexpr (!std::is_integral_v<T>) {
    const bool un = u != u, vn = v != v;
    if (un || vn) return un == vn ? i < j : (largest ? un : vn);
  }
  if (u != v) return largest ? v < u : u < v;
  return i < j;
}

}  // namespace convtape::cpu
