// softmax / log_softmax over a dim, and the losses: mean squared error, negative log-likelihood and
// cross-entropy (logits [N, C] with int64 class labels [N]).
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace convtape {

enum class Reduction { None, Mean, Sum };

Tensor softmax(const Tensor& x, std::int64_t dim);
Tensor log_softmax(const Tensor& x, std::int64_t dim);

// (input - target)^2, reduced. input and target have one shape.
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);
// -log_probs[i, labels[i]], reduced. log_probs [N, C], labels int64 [N] with values in [0, C).
Tensor nll_loss(const Tensor& log_probs, const Tensor& labels,
                Reduction reduction = Reduction::Mean);
// nll_loss(log_softmax(logits, 1), labels).
Tensor cross_entropy(const Tensor& logits, const Tensor& labels,
                     Reduction reduction = Reduction::Mean);

}  // namespace convtape
