// The CUDA copy and fill kernels as host/device functors, shared by cuda/copy.cu and the host
// tests; operand layouts as in cuda/elementwise_body.h, over dst's shape after merging dims.
//   copy  dst[id(i)] = convert(src[is(i)])    src broadcast to dst (stride 0), any dtypes
//   fill  dst[id(i)] = convert(value)
// convert is cpu/copy.cpp's static_cast: floats to int64 truncate toward zero, int64 and double to
// float round to nearest. Where C++ leaves float -> int64 undefined (NaN, +-inf, out of range)
// the result is INT64_MIN, the value the CPU backend's x86 conversion gives, so that both backends
// agree there as well.
#pragma once

#include <cstdint>
#include <type_traits>

#include "cuda/device_fn.h"
#include "cuda/elementwise_body.h"

namespace convtape::cuda {

template <class D, class S>
CT_HD inline D convert(S v) {
  if constexpr (std::is_same_v<D, std::int64_t> && !std::is_same_v<S, std::int64_t>) {
    // [-2^63, 2^63) is where truncation fits; both bounds are exact in float and double.
    constexpr S lo = static_cast<S>(-9223372036854775808.0);
    if (v >= lo && v < -lo) return static_cast<std::int64_t>(v);
    return static_cast<std::int64_t>(-9223372036854775807LL - 1);
  } else {
    return static_cast<D>(v);
  }
}

template <class D, class S, class Index>
struct CopyMap {
  const S* src;
  D* dst;
  Index id, is;

  CT_HD void operator()(std::int64_t i) const { dst[id.offset(i)] = convert<D>(src[is.offset(i)]); }
};

template <class T, class Index>
struct FillMap {
  T* dst;
  Index id;
  T value;

  CT_HD void operator()(std::int64_t i) const { dst[id.offset(i)] = value; }
};

// Builds the kernel of one copy and hands it to run (a device launch, or a host loop in the
// tests). The layout's operand 0 is dst, operand 1 src.
template <class D, class S, class Run>
decltype(auto) run_copy(const S* src, D* dst, const MapLayout& m, Run&& run) {
  return visit_layout<2>(m, [&](auto id, auto is) -> decltype(auto) {
    return run(CopyMap<D, S, decltype(id)>{src, dst, id, is});
  });
}

// As run_copy; the layout's operand 0 is dst.
template <class T, class Run>
decltype(auto) run_fill(T* dst, const MapLayout& m, double value, Run&& run) {
  return visit_layout<1>(m, [&](auto id) -> decltype(auto) {
    return run(FillMap<T, decltype(id)>{dst, id, convert<T>(value)});
  });
}

}  // namespace convtape::cuda
