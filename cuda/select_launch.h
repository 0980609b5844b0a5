// Launchers of the comparison and selection kernels (cuda/select_body.h), defined in
// cuda/select.cu: raw device pointers, layouts planned on the host (cuda/select_plan.h), the launch
// status in return (cudaSuccess when everything was queued on the current device's default
// stream). dtype is Float32, Float64 or Int64.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "core/dtype.h"
#include "cuda/select_body.h"

namespace convtape::cuda::kernels {

// y (contiguous, n elements) = op(a, b); layout operands 0 = a, 1 = b.
cudaError_t compare(CompareKind op, DType dtype, const void* a, const void* b, void* y,
                    std::int64_t n, const MapLayout& layout);
// y (contiguous, n elements) = c != 0 ? a : b; layout operands 0 = c, 1 = a, 2 = b.
cudaError_t where(DType dtype, const void* c, const void* a, const void* b, void* y, std::int64_t n,
                  const MapLayout& layout);

// Bytes of device scratch that nonzero_count needs for n elements (n < 2^31).
cudaError_t nonzero_scratch(std::int64_t n, std::size_t* bytes);
// flags [n] = mask [n] != 0, pos [n] = their exclusive prefix sum; on return (the kernels
// finished) *count = the number of nonzero elements. scratch: nonzero_scratch's bytes.
cudaError_t nonzero_count(DType dtype, const void* mask, std::int64_t n, std::int64_t* flags,
                          std::int64_t* pos, void* scratch, std::size_t bytes, std::int64_t* count);
// out [count] = the positions i with flags[i] != 0, in increasing order.
cudaError_t nonzero_scatter(const std::int64_t* flags, const std::int64_t* pos, std::int64_t n,
                            std::int64_t* out);

// values [rows, k] and indices [rows, k] of x [rows, n] (contiguous), 0 < k <= n.
cudaError_t topk(DType dtype, const void* x, void* values, std::int64_t* indices, std::int64_t rows,
                 std::int64_t n, std::int64_t k, bool largest);

}  // namespace convtape::cuda::kernels
