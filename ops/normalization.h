// Normalisation over groups of a tensor's dims, PyTorch's functional forms
// (torch.nn.functional.layer_norm / group_norm / instance_norm). Each subtracts a mean and divides
// by sqrt(var + eps), the variance biased (divided by the count n of values it is over), then
// applies an optional per-element (layer_norm) or per-channel (group_norm, instance_norm) affine
// map y * weight + bias:
//   layer_norm     x [*, *S], normalized_shape S, weight and bias S or none:
//                  statistics over the trailing dims S of each leading index
//   group_norm     x [N, C, *], num_groups G dividing C, weight and bias [C] or none:
//                  statistics over the C / G channels of each group and every spatial position,
//                  per sample ([N, G, C / G * prod(*)] moments)
//   instance_norm  x [N, C, *], running_mean and running_var [C] or none, weight and bias [C] or
//                  none: with use_input_stats, statistics per sample and channel over the spatial
//                  dims (which must hold more than one value); when running stats are given they
//                  are then updated outside autograd, as PyTorch's, with the batch average of the
//                  per-instance statistics and the unbiased variance (count prod(*)):
//                    running_mean = (1 - momentum) running_mean + momentum mean_n(mean)
//                    running_var  = (1 - momentum) running_var  + momentum mean_n(var n / (n - 1))
//                  Without use_input_stats the running statistics normalise (they must be given).
// Built from differentiable ops (mean, sub, mul, div, sqrt, reshape), so gradients flow to x,
// weight and bias on every device; float32 and float64.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace convtape {

Tensor layer_norm(const Tensor& x, const std::vector<std::int64_t>& normalized_shape,
                  const Tensor& weight = {}, const Tensor& bias = {}, double eps = 1e-5);

Tensor group_norm(const Tensor& x, std::int64_t num_groups, const Tensor& weight = {},
                  const Tensor& bias = {}, double eps = 1e-5);

// running_mean and running_var are updated in place (both given, or neither).
Tensor instance_norm(const Tensor& x, const Tensor& running_mean = {},
                     const Tensor& running_var = {}, const Tensor& weight = {},
                     const Tensor& bias = {}, bool use_input_stats = true, double momentum = 0.1,
                     double eps = 1e-5);

}  // namespace convtape
