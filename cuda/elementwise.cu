// Launchers of the elementwise kernels of cuda/elementwise_body.h: one kernel per (dtype, map,
// layout), each a grid-stride loop over the output (cuda/launch.cuh).
#include <cstdint>

#include "cuda/elementwise_body.h"
#include "cuda/elementwise_launch.h"
#include "cuda/launch.cuh"

namespace convtape::cuda {

namespace {

// Calls f(T{}) with T the element type of a floating dtype.
template <class F>
cudaError_t with_floating(DType dtype, F&& f) {
  if (dtype == DType::Float64) return f(double{});
  if (dtype == DType::Float32) return f(float{});
  return cudaErrorInvalidValue;
}

}  // namespace

cudaError_t launch_unary(UnaryKind op, DType dtype, const void* x, void* y, std::int64_t n,
                         const MapLayout& layout, double p0, double p1) {
  return with_floating(dtype, [&](auto zero) {
    using T = decltype(zero);
    return run_unary<T>(op, static_cast<const T*>(x), static_cast<T*>(y), layout,
                        static_cast<T>(p0), static_cast<T>(p1),
                        [n](const auto& f) { return for_each(n, f); });
  });
}

cudaError_t launch_binary(BinaryKind op, DType dtype, const void* a, const void* b, void* y,
                          std::int64_t n, const MapLayout& layout, double p0, double p1) {
  return with_floating(dtype, [&](auto zero) {
    using T = decltype(zero);
    return run_binary<T>(op, static_cast<const T*>(a), static_cast<const T*>(b), static_cast<T*>(y),
                         layout, static_cast<T>(p0), static_cast<T>(p1),
                         [n](const auto& f) { return for_each(n, f); });
  });
}

cudaError_t launch_axpy(DType dtype, void* y, const void* x, std::int64_t n, double alpha) {
  return with_floating(dtype, [&](auto zero) {
    using T = decltype(zero);
    return for_each(
        n, AxpyMap<T>{static_cast<T*>(y), static_cast<const T*>(x), static_cast<T>(alpha)});
  });
}

cudaError_t launch_scale(DType dtype, void* y, std::int64_t n, double factor) {
  return with_floating(dtype, [&](auto zero) {
    using T = decltype(zero);
    return for_each(n, ScaleMap<T>{static_cast<T*>(y), static_cast<T>(factor)});
  });
}

}  // namespace convtape::cuda
