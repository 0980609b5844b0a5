// Softmax and loss front ends. softmax's backward is y * (dy - sum(dy * y)); log_softmax's is
// dy - exp(y) * sum(dy); nll scatters -g to the labelled class. cross_entropy's label smoothing and
// probability targets are compositions of differentiable ops, so they need no backward of their
// own.
#include "ops/loss.h"

#include "core/autograd.h"
#include "ops/backend.h"
#include "ops/detail.h"
#include "ops/elementwise.h"
#include "ops/factory.h"
#include "ops/reduce.h"
#include "ops/shape.h"

namespace convtape {

namespace {

Tensor softmax_impl(std::string_view op, const Tensor& x, std::int64_t dim, bool log) {
  detail::check_floating_same(op, {x});
  detail::check_same_device(op, {x});
  const std::int64_t d = wrap_dim(dim, x.dim(), op);
  Tensor y;
  if (x.numel() == 0) {
    // Nothing to normalise; the [outer, n, inner] split of an empty shape with huge extents beside
    // its zero would overflow.
    y = empty(x.shape(), x.options());
  } else {
    const auto sp = detail::split_at(x.shape(), x.dim() == 0 ? 0 : d);
    y = backend::softmax(x.detach().contiguous(), sp.outer, sp.n, sp.inner, log);
  }
  const std::int64_t rd = x.dim() == 0 ? 0 : d;
  record(y, op, {x}, {y}, [log, rd](const Saved& s, const Tensor& dy, const GradMask&) {
    const Tensor& yv = s[0];
    // A scalar is a one-element distribution: y is constant (1, or 0 for log), so dx = 0.
    if (yv.dim() == 0) return std::vector<Tensor>{mul(dy, 0.0)};
    if (log) return std::vector<Tensor>{sub(dy, mul(exp(yv), sum(dy, {rd}, true)))};
    return std::vector<Tensor>{mul(yv, sub(dy, sum(mul(dy, yv), {rd}, true)))};
  });
  return y;
}

Tensor reduce_losses(const Tensor& losses, Reduction reduction) {
  switch (reduction) {
    case Reduction::None:
      return losses;
    case Reduction::Sum:
      return sum(losses);
    case Reduction::Mean:
      return mean(losses);
  }
  return losses;
}

}  // namespace

Tensor softmax(const Tensor& x, std::int64_t dim) {
  return softmax_impl("softmax", x, dim, false);
}
Tensor log_softmax(const Tensor& x, std::int64_t dim) {
  return softmax_impl("log_softmax", x, dim, true);
}

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  detail::check_floating_same("mse_loss", {input, target});
  CT_CHECK(input.shape() == target.shape(),
           "mse_loss: expected input and target of one shape, got {} and {}",
           to_string(input.shape()), to_string(target.shape()));
  const Tensor diff = sub(input, target);
  return reduce_losses(mul(diff, diff), reduction);
}

Tensor nll_loss(const Tensor& log_probs, const Tensor& labels, Reduction reduction) {
  detail::check_floating_same("nll_loss", {log_probs});
  detail::check_defined("nll_loss", labels, "labels");
  detail::check_same_device("nll_loss", {log_probs, labels});
  CT_CHECK(log_probs.dim() == 2, "nll_loss: expected log-probabilities [N, C], got {}",
           to_string(log_probs.shape()));
  CT_CHECK(labels.dtype() == kInt64, "nll_loss: expected int64 labels, got {}",
           dtype_name(labels.dtype()));
  CT_CHECK(labels.dim() == 1 && labels.size(0) == log_probs.size(0),
           "nll_loss: expected labels [N] with N = {} for log-probabilities {}, got {}",
           log_probs.size(0), to_string(log_probs.shape()), to_string(labels.shape()));
  const std::int64_t classes = log_probs.size(1);
  const Tensor lab = labels.contiguous();
  const OutOfRange bad = detail::find_out_of_range(lab, 0, classes);
  CT_CHECK(!bad.found(), "nll_loss: expected labels in [0, {}), got {} at position {}", classes,
           bad.value, bad.position);
  Tensor losses = backend::nll(log_probs.detach().contiguous(), lab);
  record(losses, "nll_loss", {log_probs}, {lab},
         [classes](const Saved& s, const Tensor& g, const GradMask&) {
           return std::vector<Tensor>{backend::nll_backward(g.contiguous(), s[0], classes)};
         });
  return reduce_losses(losses, reduction);
}

Tensor cross_entropy(const Tensor& logits, const Tensor& labels, Reduction reduction,
                     double label_smoothing) {
  detail::check_floating_same("cross_entropy", {logits});
  detail::check_defined("cross_entropy", labels, "labels");
  CT_CHECK(logits.dim() == 2, "cross_entropy: expected logits [N, C], got {}",
           to_string(logits.shape()));
  CT_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0,
           "cross_entropy: expected label_smoothing in [0, 1], got {}", label_smoothing);
  const double eps = label_smoothing;
  const auto classes = static_cast<double>(logits.size(1));
  const Tensor logp = log_softmax(logits, 1);
  if (labels.is_floating_point()) {
    CT_CHECK(labels.shape() == logits.shape(),
             "cross_entropy: expected int64 labels [N] or class probabilities of the logits' "
             "shape {}, got {} {}",
             to_string(logits.shape()), dtype_name(labels.dtype()), to_string(labels.shape()));
    detail::check_floating_same("cross_entropy", {logits, labels});
    const Tensor target = eps > 0.0 ? add(mul(labels, 1.0 - eps), eps / classes) : labels;
    const Tensor prod = mul(logp, target);
    switch (reduction) {
      case Reduction::None:
        return neg(sum(prod, {1}));
      case Reduction::Sum:
        return neg(sum(prod));
      case Reduction::Mean:
        return div(neg(sum(prod)), static_cast<double>(logits.size(0)));
    }
  }
  const Tensor nll = nll_loss(logp, labels, reduction);
  if (eps == 0.0) return nll;
  // PyTorch's order of operations: both terms reduced first, then mixed.
  const Tensor smooth = reduce_losses(neg(sum(logp, {1})), reduction);
  return add(mul(nll, 1.0 - eps), mul(smooth, eps / classes));
}

}  // namespace convtape
