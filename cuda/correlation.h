// CUDA kernels of the FlowNet correlation layer, with cpu/correlation.h's definition: forward, and
// the two gradients written as gathers onto the elements each thread owns (no atomics).
// Plain C++: any folder may include it. A build without CUDA links cuda/no_cuda.cpp, whose
// versions throw "<op>: this build has no CUDA support".
#pragma once

#include <cstdint>

#include "core/kernel_args.h"
#include "core/tensor.h"

namespace convtape::cuda {

using convtape::CorrelationGeometry;

Tensor correlation_forward(const Tensor& f1, const Tensor& f2, const CorrelationGeometry& g);
Tensor correlation_backward_f1(const Tensor& dy, const Tensor& f2, const CorrelationGeometry& g);
Tensor correlation_backward_f2(const Tensor& dy, const Tensor& f1, const CorrelationGeometry& g);

}  // namespace convtape::cuda
