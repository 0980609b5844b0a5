// Launchers of the optimizer steps of cuda/optim_body.h: one kernel per dtype, a grid-stride loop
// over the parameter's elements (cuda/launch.cuh).
#include <cstdint>

#include "cuda/launch.cuh"
#include "cuda/optim_body.h"
#include "cuda/optim_launch.h"

namespace convtape::cuda {

cudaError_t launch_sgd_step(DType dtype, void* p, const void* g, void* buf, std::int64_t n,
                            double lr, double momentum, double dampening, double weight_decay,
                            bool nesterov, bool first) {
  if (dtype == DType::Float64)
    return for_each(n, sgd_step_map(static_cast<double*>(p), static_cast<const double*>(g),
                                    static_cast<double*>(buf), lr, momentum, dampening,
                                    weight_decay, nesterov, first));
  if (dtype == DType::Float32)
    return for_each(n, sgd_step_map(static_cast<float*>(p), static_cast<const float*>(g),
                                    static_cast<float*>(buf), lr, momentum, dampening, weight_decay,
                                    nesterov, first));
  return cudaErrorInvalidValue;
}

}  // namespace convtape::cuda
