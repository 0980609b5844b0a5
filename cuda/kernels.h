// Launchers for the backend's own CUDA kernels. They return the launch status instead of throwing
// so that .cu files stay free of fmt and of convtape::Error; the .cpp callers check the status.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/dtype.h"

namespace convtape::cuda::kernels {

// Sets n elements of dtype at dst (on the current device) to value.
cudaError_t fill(void* dst, DType dtype, std::int64_t n, double value);

}  // namespace convtape::cuda::kernels
