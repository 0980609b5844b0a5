// Gradient clipping, in place on the gradients of the given parameters (those without a gradient
// are skipped), as PyTorch's torch.nn.utils does.
//   clip_grad_norm_   total = (sum_i ||g_i||_p^p)^(1/p) over the parameters' gradients (the max of
//                     |g| for p = inf); every gradient is scaled by max_norm / (total + 1e-6) when
//                     that is below 1. Returns total, the norm before clipping.
//   clip_grad_value_  clamps every gradient element into [-clip_value, clip_value].
#pragma once

#include <limits>
#include <vector>

#include "core/tensor.h"

namespace convtape::optim {

// norm_type > 0 or infinity. A non-finite total scales the gradients to NaN (PyTorch's behaviour),
// unless error_if_nonfinite asks for an error instead.
double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false);

// clip_value >= 0.
void clip_grad_value_(const std::vector<Tensor>& params, double clip_value);

}  // namespace convtape::optim
