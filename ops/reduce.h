// Reductions over all elements or a set of dims, with keepdim. max / min send the gradient to the
// first extreme element of each reduced slice, and propagate NaN; argmax / argmin return int64.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace convtape {

Tensor sum(const Tensor& x);
Tensor sum(const Tensor& x, const std::vector<std::int64_t>& dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, const std::vector<std::int64_t>& dims, bool keepdim = false);
Tensor max(const Tensor& x);
Tensor max(const Tensor& x, const std::vector<std::int64_t>& dims, bool keepdim = false);
Tensor min(const Tensor& x);
Tensor min(const Tensor& x, const std::vector<std::int64_t>& dims, bool keepdim = false);
Tensor argmax(const Tensor& x);  // index into the flattened tensor
Tensor argmax(const Tensor& x, std::int64_t dim, bool keepdim = false);
Tensor argmin(const Tensor& x);
Tensor argmin(const Tensor& x, std::int64_t dim, bool keepdim = false);

}  // namespace convtape
