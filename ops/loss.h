// softmax / log_softmax over a dim, and the losses: mean squared error, negative log-likelihood and
// cross-entropy (logits [N, C] with int64 class labels [N] or class probabilities [N, C]).
// Label smoothing eps (PyTorch's): the target becomes (1 - eps) * one_hot + eps / C, so with labels
//   loss_i = (1 - eps) * nll_i + eps / C * sum_c -log_softmax(logits)[i, c]
// and with probabilities p the target is (1 - eps) * p + eps / C. Mean reduction divides by N.
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
// Cross-entropy of logits [N, C]. labels int64 [N]: nll_loss(log_softmax(logits, 1), labels) when
// label_smoothing is 0. labels floating-point [N, C] (the logits' shape and dtype): class
// probabilities, loss_i = -sum_c target[i, c] * log_softmax(logits)[i, c], differentiable in both.
// label_smoothing in [0, 1].
Tensor cross_entropy(const Tensor& logits, const Tensor& labels,
                     Reduction reduction = Reduction::Mean, double label_smoothing = 0.0);

}  // namespace convtape
