// Launchers of the CUDA copy and fill kernels (cuda/copy.cu): raw device pointers, a layout planned
// on the host (cuda/elementwise_plan.h), the launch status in return. n is dst's element count.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/dtype.h"
#include "cuda/elementwise_body.h"

namespace convtape::cuda {

// dst = convert(src); layout operands 0 = dst, 1 = src (broadcast to dst's shape).
cudaError_t launch_copy(DType dst_dtype, DType src_dtype, const void* src, void* dst,
                        std::int64_t n, const MapLayout& layout);
// dst = value; layout operand 0 = dst.
cudaError_t launch_fill(DType dtype, void* dst, std::int64_t n, const MapLayout& layout,
                        double value);

}  // namespace convtape::cuda
