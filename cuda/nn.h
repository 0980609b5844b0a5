// CUDA softmax / log-softmax over one axis, negative log-likelihood with integer labels, and
// index_select / index_add along one dim: the same contracts as cpu/nn.h on device tensors.
// Plain C++: any folder may include it. A build without CUDA links cuda/no_cuda.cpp, whose
// versions throw "<op>: this build has no CUDA support".
#pragma once

#include <cstdint>

#include "core/kernel_args.h"
#include "core/tensor.h"

namespace convtape::cuda {

Tensor softmax(const Tensor& x, std::int64_t outer, std::int64_t n, std::int64_t inner, bool log);
Tensor nll(const Tensor& logp, const Tensor& labels);
Tensor nll_backward(const Tensor& g, const Tensor& labels, std::int64_t classes);
Tensor index_select(const Tensor& x, std::int64_t outer, std::int64_t n, std::int64_t inner,
                    const Tensor& index);
Tensor index_add(const Tensor& src, std::int64_t outer, std::int64_t n, std::int64_t inner,
                 const Tensor& index);

}  // namespace convtape::cuda
