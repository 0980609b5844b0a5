// CPU kernels for softmax / log-softmax over one axis, negative log-likelihood with integer
// labels, and index_select / index_add along one dim.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace convtape::cpu {

// x contiguous viewed as [outer, n, inner]; softmax (or log-softmax) along n, max-shifted.
Tensor softmax(const Tensor& x, std::int64_t outer, std::int64_t n, std::int64_t inner, bool log);

// logp [N, C] contiguous, labels int64 [N] contiguous (checked by the front end) -> per-sample
// losses [N] = -logp[i, labels[i]].
Tensor nll(const Tensor& logp, const Tensor& labels);
// d logp [N, C] from per-sample gradients g [N]: -g[i] at (i, labels[i]), 0 elsewhere.
Tensor nll_backward(const Tensor& g, const Tensor& labels, std::int64_t classes);

// x contiguous viewed as [outer, n, inner]; picks rows of the middle axis -> [outer, len(index),
// inner].
Tensor index_select(const Tensor& x, std::int64_t outer, std::int64_t n, std::int64_t inner,
                    const Tensor& index);
// Inverse of index_select for gradients: src [outer, len(index), inner] summed into zeros [outer,
// n, inner].
Tensor index_add(const Tensor& src, std::int64_t outer, std::int64_t n, std::int64_t inner,
                 const Tensor& index);

}  // namespace convtape::cpu
