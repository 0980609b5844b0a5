// Launchers of the CUDA optimizer steps (cuda/optim.cu): raw device pointers and the launch status
// in return, so that the .cu file stays free of Tensor, fmt and convtape::Error. They run on the
// current device's default stream; dtype is Float32 or Float64.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/dtype.h"

namespace convtape::cuda {

// One SGD step over n contiguous elements of p, g and buf (null when momentum == 0), as
// cuda/optim_body.h's SgdStepMap.
cudaError_t launch_sgd_step(DType dtype, void* p, const void* g, void* buf, std::int64_t n,
                            double lr, double momentum, double dampening, double weight_decay,
                            bool nesterov, bool first);

}  // namespace convtape::cuda
