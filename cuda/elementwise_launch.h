// Launchers of the CUDA elementwise kernels (cuda/elementwise.cu): raw device pointers, a layout
// planned on the host (cuda/elementwise_plan.h) and the launch status in return, so that the .cu
// file stays free of Tensor, fmt and convtape::Error. All run on the current device's default
// stream; n is the output's element count; dtype is Float32 or Float64.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/dtype.h"
#include "cuda/elementwise_body.h"

namespace convtape::cuda {

// y (contiguous, n elements) = f(x); layout operand 0 = x.
cudaError_t launch_unary(UnaryKind op, DType dtype, const void* x, void* y, std::int64_t n,
                         const MapLayout& layout, double p0, double p1);
// y (contiguous, n elements) = f(a, b); layout operands 0 = a, 1 = b.
cudaError_t launch_binary(BinaryKind op, DType dtype, const void* a, const void* b, void* y,
                          std::int64_t n, const MapLayout& layout, double p0, double p1);
// y += alpha * x over n contiguous elements.
cudaError_t launch_axpy(DType dtype, void* y, const void* x, std::int64_t n, double alpha);
// y *= factor over n contiguous elements.
cudaError_t launch_scale(DType dtype, void* y, std::int64_t n, double factor);

}  // namespace convtape::cuda
