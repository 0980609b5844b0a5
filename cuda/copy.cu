// Launchers of the copy and fill kernels of cuda/copy_body.h: one kernel per (destination dtype,
// source dtype, layout), each a grid-stride loop over dst (cuda/launch.cuh).
#include <cstddef>
#include <cstdint>

#include "cuda/copy_body.h"
#include "cuda/copy_launch.h"
#include "cuda/launch.cuh"

namespace convtape::cuda {

cudaError_t launch_copy(DType dst_dtype, DType src_dtype, const void* src, void* dst,
                        std::int64_t n, const MapLayout& layout) {
  // Dense bytes to dense bytes: the copy engine's own path (clone of a dense tensor).
  if (dst_dtype == src_dtype && layout.layout == Layout::Contiguous && n > 0)
    return src == dst
               ? cudaSuccess
               : cudaMemcpyAsync(dst, src, static_cast<std::size_t>(n) * dtype_size(dst_dtype),
                                 cudaMemcpyDeviceToDevice);
  return with_dtype(dst_dtype, [&](auto dzero) {
    using D = decltype(dzero);
    return with_dtype(src_dtype, [&](auto szero) {
      using S = decltype(szero);
      return run_copy<D, S>(static_cast<const S*>(src), static_cast<D*>(dst), layout,
                            [n](const auto& f) { return for_each(n, f); });
    });
  });
}

cudaError_t launch_fill(DType dtype, void* dst, std::int64_t n, const MapLayout& layout,
                        double value) {
  return with_dtype(dtype, [&](auto zero) {
    using T = decltype(zero);
    return run_fill<T>(static_cast<T*>(dst), layout, value,
                       [n](const auto& f) { return for_each(n, f); });
  });
}

}  // namespace convtape::cuda
