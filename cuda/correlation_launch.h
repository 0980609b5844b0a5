// Launchers of the CUDA correlation kernels (cuda/correlation_body.h), defined in
// cuda/correlation.cu. Device pointers to contiguous buffers of the given floating dtype; they run
// on the current device's default stream and return the launch status (nothing here throws).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/dtype.h"
#include "cuda/correlation_body.h"

namespace convtape::cuda::kernels {

// y [N, D*D, H', W'] from f1, f2 [N, C, H, W].
cudaError_t correlation_forward(DType dtype, const void* f1, const void* f2, void* y,
                                const CorrelationShape& s);
// df1 [N, C, H, W] from dy [N, D*D, H', W'] and f2.
cudaError_t correlation_backward_f1(DType dtype, const void* dy, const void* f2, void* df1,
                                    const CorrelationShape& s);
// df2 [N, C, H, W] from dy [N, D*D, H', W'] and f1.
cudaError_t correlation_backward_f2(DType dtype, const void* dy, const void* f1, void* df2,
                                    const CorrelationShape& s);

}  // namespace convtape::cuda::kernels
