// softmax / log_softmax over a dim, and the losses, with PyTorch's semantics:
//   mse_loss                  (input - target)^2.
//   nll_loss, cross_entropy   input [N, C, d1, ..., dk] (k >= 0) or unbatched [C]; class labels
//                             int64 [N, d1, ..., dk] (or []) in [0, C) or equal to ignore_index;
//                             cross_entropy also takes class probabilities of the input's shape.
//   binary_cross_entropy(_with_logits)  elementwise, on probabilities (or logits) and targets of
//                             one shape, any rank.
// Class losses, per position i (a sample and a spatial place), y = labels[i], w = weight (1s when
// undefined), lp = log_softmax(logits) over the class dim for cross_entropy:
//   l_i = -w[y] * lp[i, y], 0 when y == ignore_index; Mean divides sum_i l_i by sum_i w[y_i] over
//   the positions not ignored (NaN when every one is ignored, or there is none).
// Label smoothing eps (PyTorch's): the target becomes (1 - eps) * one_hot + eps / C, computed as
//   (1 - eps) * nll + eps / C * smooth, smooth_i = -sum_c w[c] * lp[i, c] (0 where ignored),
// each term reduced on its own (Mean: both divided by the same sum of weights). With probability
// targets p: l_i = -sum_c w[c] * ((1 - eps) * p[i, c] + eps / C) * lp[i, c], and Mean divides by
// the number of positions N * d1 * ... * dk (not by weights); ignore_index must stay -100.
// Binary cross-entropy of probabilities x and targets t, weight w broadcast to x's shape:
//   l = -w * (t * max(log x, -100) + (1 - t) * max(log(1 - x), -100)); x outside [0, 1] is refused.
//   dl/dx = w * (x - t) / max(x * (1 - x), 1e-12f), dl/dt = w * (log(1 - x) - log(x)).
// With logits x, pos_weight p broadcast to x's shape (typically [C], over the last dim):
//   l = w * ((1 - t) * x + (1 + (p - 1) * t) * log(1 + exp(-x))), computed as PyTorch does with
//   m = max(-x, 0): log(1 + exp(-x)) = log(exp(-m) + exp(-x - m)) + m;
//   dl/dx = w * ((p * t + 1 - t) * sigmoid(x) - p * t), dl/dt = w * (log_sigmoid(-x) - p *
//   log_sigmoid(x)). Mean divides by the number of elements.
// weight and pos_weight are constants, as in PyTorch: one that requires grad while grad mode is on
// is refused, except cross_entropy's weight with probability targets (a plain product there).
#pragma once

#include <cstdint>
#include <utility>

#include "core/tensor.h"

namespace convtape {

enum class Reduction { None, Mean, Sum };

Tensor softmax(const Tensor& x, std::int64_t dim);
Tensor log_softmax(const Tensor& x, std::int64_t dim);

// (input - target)^2, reduced. input and target have one shape.
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);
// Options of nll_loss and cross_entropy, chainable: NllLossOptions().weight(w).ignore_index(255).
// weight: an undefined Tensor (every class weighs 1) or [C] of the input's dtype and device.
class NllLossOptions {
 public:
  NllLossOptions() = default;
  NllLossOptions& weight(Tensor w) {
    weight_ = std::move(w);
    return *this;
  }
  NllLossOptions& ignore_index(std::int64_t index) {
    ignore_index_ = index;
    return *this;
  }
  NllLossOptions& reduction(Reduction r) {
    reduction_ = r;
    return *this;
  }
  const Tensor& weight() const { return weight_; }
  std::int64_t ignore_index() const { return ignore_index_; }
  Reduction reduction() const { return reduction_; }

 private:
  Tensor weight_;
  std::int64_t ignore_index_ = -100;
  Reduction reduction_ = Reduction::Mean;
};

// NllLossOptions and label_smoothing in [0, 1].
class CrossEntropyOptions {
 public:
  CrossEntropyOptions() = default;
  CrossEntropyOptions& weight(Tensor w) {
    weight_ = std::move(w);
    return *this;
  }
  CrossEntropyOptions& ignore_index(std::int64_t index) {
    ignore_index_ = index;
    return *this;
  }
  CrossEntropyOptions& reduction(Reduction r) {
    reduction_ = r;
    return *this;
  }
  CrossEntropyOptions& label_smoothing(double eps) {
    label_smoothing_ = eps;
    return *this;
  }
  const Tensor& weight() const { return weight_; }
  std::int64_t ignore_index() const { return ignore_index_; }
  Reduction reduction() const { return reduction_; }
  double label_smoothing() const { return label_smoothing_; }

 private:
  Tensor weight_;
  std::int64_t ignore_index_ = -100;
  Reduction reduction_ = Reduction::Mean;
  double label_smoothing_ = 0.0;
};

// -weight[y] * log_probs[i, y], reduced (see the top). log_probs [N, C, *] or [C]; labels int64
// [N, *] or []. Reduction::None returns the labels' shape.
Tensor nll_loss(const Tensor& log_probs, const Tensor& labels,
                Reduction reduction = Reduction::Mean);
Tensor nll_loss(const Tensor& log_probs, const Tensor& labels, const NllLossOptions& options);
// Cross-entropy of logits [N, C, *] or [C] (softmax over dim 1, or 0 unbatched). labels int64
// [N, *] or []: nll_loss(log_softmax(logits, 1), labels) when label_smoothing is 0. labels
// floating-point of the logits' shape and dtype: class probabilities, differentiable too.
Tensor cross_entropy(const Tensor& logits, const Tensor& labels,
                     Reduction reduction = Reduction::Mean, double label_smoothing = 0.0);
Tensor cross_entropy(const Tensor& logits, const Tensor& labels,
                     const CrossEntropyOptions& options);

// Binary cross-entropy of probabilities input in [0, 1] and targets of input's shape; weight (may
// be undefined) broadcasts to input's shape. Differentiable in input and target.
Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, const Tensor& weight = {},
                            Reduction reduction = Reduction::Mean);
// The same from logits, in a numerically stable form; pos_weight (may be undefined) weighs the
// positive term and broadcasts to input's shape ([C] for input [..., C]). Differentiable in input
// and target.
Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target,
                                        const Tensor& weight = {}, const Tensor& pos_weight = {},
                                        Reduction reduction = Reduction::Mean);

}  // namespace convtape
