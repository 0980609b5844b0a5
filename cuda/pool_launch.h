// Launchers of the CUDA pooling kernels (cuda/pool_body.h), defined in cuda/pool.cu. They take
// device pointers to contiguous buffers of the given floating dtype, run on the current device's
// default stream, and return the first failing CUDA status (the .cpp callers turn it into an
// Error); nothing here throws.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/dtype.h"
#include "cuda/pool_body.h"

namespace convtape::cuda::kernels {

// y (and indices unless null) [planes, out_numel] from x [planes, in_numel]. lanes > 1 splits each
// window over that many partial results, kept in partial_values / partial_indices
// [planes * out_numel * lanes] (unused, and may be null, when lanes == 1).
cudaError_t max_pool(DType dtype, const void* x, void* y, std::int64_t* indices,
                     const PoolWindows& pw, std::int64_t planes, std::int64_t lanes,
                     void* partial_values, std::int64_t* partial_indices);
// y [planes, out_numel] from x [planes, in_numel]; lanes and partial_sums as for max_pool.
cudaError_t avg_pool(DType dtype, const void* x, void* y, const PoolWindows& pw,
                     std::int64_t planes, std::int64_t lanes, void* partial_sums);
// dx [planes, in_numel] from dy [planes, out_numel].
cudaError_t avg_pool_backward(DType dtype, const void* dy, void* dx, const PoolWindows& pw,
                              std::int64_t planes);
// out [planes, size] = 0, then out[p, indices[p, o]] += src[p, o] for o < m (atomics).
cudaError_t index_scatter_add(DType dtype, const void* src, const std::int64_t* indices, void* out,
                              std::int64_t planes, std::int64_t m, std::int64_t size);
// out [planes, size] = 0, then out[p, indices[p, o]] = src[p, o], the largest o winning among
// duplicates; indices outside [0, size) are skipped (the front end has refused them). owner
// [planes * size] is device scratch.
cudaError_t index_scatter_last(DType dtype, const void* src, const std::int64_t* indices, void* out,
                               std::int64_t planes, std::int64_t m, std::int64_t size,
                               std::int64_t* owner);
// out [planes, m] = src[p, indices[p, o]], zero for a negative index.
cudaError_t index_gather(DType dtype, const void* src, const std::int64_t* indices, void* out,
                         std::int64_t planes, std::int64_t m, std::int64_t size);

}  // namespace convtape::cuda::kernels
