// The launchers of cuda/select_launch.h: the functors of cuda/select_body.h through for_each
// (cuda/launch.cuh), and CUB's exclusive scan for the positions of a mask's nonzero elements.
#include <cub/device/device_scan.cuh>

#include "cuda/launch.cuh"
#include "cuda/select_body.h"
#include "cuda/select_launch.h"

namespace convtape::cuda::kernels {

cudaError_t compare(CompareKind op, DType dtype, const void* a, const void* b, void* y,
                    std::int64_t n, const MapLayout& layout) {
  return with_dtype(dtype, [&](auto zero) {
    using T = decltype(zero);
    return run_compare<T>(op, static_cast<const T*>(a), static_cast<const T*>(b),
                          static_cast<T*>(y), layout,
                          [n](const auto& f) { return for_each(n, f); });
  });
}

cudaError_t where(DType dtype, const void* c, const void* a, const void* b, void* y, std::int64_t n,
                  const MapLayout& layout) {
  return with_dtype(dtype, [&](auto zero) {
    using T = decltype(zero);
    return run_where<T>(static_cast<const T*>(c), static_cast<const T*>(a),
                        static_cast<const T*>(b), static_cast<T*>(y), layout,
                        [n](const auto& f) { return for_each(n, f); });
  });
}

cudaError_t nonzero_scratch(std::int64_t n, std::size_t* bytes) {
  *bytes = 0;
  return cub::DeviceScan::ExclusiveSum(nullptr, *bytes, static_cast<const std::int64_t*>(nullptr),
                                       static_cast<std::int64_t*>(nullptr), static_cast<int>(n));
}

cudaError_t nonzero_count(DType dtype, const void* mask, std::int64_t n, std::int64_t* flags,
                          std::int64_t* pos, void* scratch, std::size_t bytes,
                          std::int64_t* count) {
  *count = 0;
  if (n <= 0) return cudaSuccess;
  cudaError_t e = with_dtype(dtype, [&](auto zero) {
    using T = decltype(zero);
    return for_each(n, NonzeroFlag<T>{static_cast<const T*>(mask), flags});
  });
  if (e == cudaSuccess)
    e = cub::DeviceScan::ExclusiveSum(scratch, bytes, flags, pos, static_cast<int>(n));
  std::int64_t last[2] = {0, 0};
  if (e == cudaSuccess)
    e = cudaMemcpy(&last[0], pos + (n - 1), sizeof(std::int64_t), cudaMemcpyDeviceToHost);
  if (e == cudaSuccess)
    e = cudaMemcpy(&last[1], flags + (n - 1), sizeof(std::int64_t), cudaMemcpyDeviceToHost);
  if (e == cudaSuccess) *count = last[0] + last[1];
  return e;
}

cudaError_t nonzero_scatter(const std::int64_t* flags, const std::int64_t* pos, std::int64_t n,
                            std::int64_t* out) {
  return for_each(n, NonzeroScatter{flags, pos, out});
}

cudaError_t topk(DType dtype, const void* x, void* values, std::int64_t* indices, std::int64_t rows,
                 std::int64_t n, std::int64_t k, bool largest) {
  return with_dtype(dtype, [&](auto zero) {
    using T = decltype(zero);
    return for_each(rows, TopkRow<T>{static_cast<const T*>(x), static_cast<T*>(values), indices, n,
                                     k, largest});
  });
}

}  // namespace convtape::cuda::kernels
