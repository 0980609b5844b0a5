// Softmax and loss front ends. softmax's backward is y * (dy - sum(dy * y)); log_softmax's is
// dy - exp(y) * sum(dy); nll scatters -g * weight[label] to the labelled class (the nll kernel
// pair, which also skips ignore_index). N-d class losses move the class dim last and flatten to
// rows [M, C] (one copy), so that one kernel pair serves every rank. cross_entropy's label
// smoothing and probability targets are compositions of differentiable ops. The binary
// cross-entropies compute their forward off the tape and record PyTorch's own gradient formulas
// (ops/loss.h), which differ from the derivative of the clamped forward at x = 0 or 1. Every
// gradient formula is made of ops that record (nll's through nll_map, a gather at the labels and
// its adjoint), so a backward with create_graph yields gradients that can be differentiated again.
#include "ops/loss.h"

#include <cmath>
#include <string>

#include "core/autograd.h"
#include "core/trace.h"
#include "ops/backend.h"
#include "ops/detail.h"
#include "ops/elementwise.h"
#include "ops/factory.h"
#include "ops/reduce.h"
#include "ops/shape.h"

namespace convtape {

namespace {

Tensor softmax_impl(std::string_view op, const Tensor& x, std::int64_t dim, bool log) {
  trace::OpScope scope;
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
  if (scope.recording()) scope.emit(op, {x}, y, {{"dim", rd}});
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

namespace {

// The shape of the positions of a class input: [N, C, d1, ..., dk] -> [N, d1, ..., dk], [C] -> [].
Shape positions_shape(const Shape& s) {
  Shape p;
  for (std::size_t d = 0; d < s.size(); ++d)
    if (d != (s.size() == 1 ? 0 : 1)) p.push_back(s[d]);
  return p;
}

// x [N, C, d1, ..., dk] -> rows [N * d1 * ... * dk, C], the class dim last (a differentiable copy
// when k > 0); [C] -> [1, C].
Tensor class_rows(const Tensor& x) {
  if (x.dim() == 2) return x;
  const std::int64_t classes = x.size(x.dim() == 1 ? 0 : 1);
  const std::int64_t positions = numel(positions_shape(x.shape()));
  if (x.dim() == 1) return reshape(x, {positions, classes});
  std::vector<std::int64_t> perm{0};
  for (std::int64_t d = 2; d < x.dim(); ++d) perm.push_back(d);
  perm.push_back(1);
  return reshape(permute(x, perm), {positions, classes});
}

// The class input's rank, and weight: undefined, or [C] of the input's dtype and device that
// requires no grad while grad mode is on (with differentiable_weight, it may).
void check_class_input(std::string_view op, const Tensor& x, std::string_view what,
                       const Tensor& weight, bool differentiable_weight = false) {
  detail::check_floating_same(op, {x});
  CT_CHECK(x.dim() >= 1, "{}: expected {} [N, C, *] or [C], got {}", op, what,
           to_string(x.shape()));
  if (!weight.defined()) return;
  detail::check_floating_same(op, {x, weight});
  const std::int64_t classes = x.size(x.dim() == 1 ? 0 : 1);
  CT_CHECK(weight.dim() == 1 && weight.size(0) == classes,
           "{}: expected weight [C] with C = {} for {} {}, got {}", op, classes, what,
           to_string(x.shape()), to_string(weight.shape()));
  CT_CHECK(differentiable_weight || !any_requires_grad({weight}),
           "{}: expected a weight that does not require grad (it is not differentiable), got one "
           "that does",
           op);
}

// int64 labels of the input's shape without its class dim.
void check_class_labels(std::string_view op, const Tensor& x, std::string_view what,
                        const Tensor& labels) {
  detail::check_defined(op, labels, "labels");
  detail::check_same_device(op, {x, labels});
  CT_CHECK(labels.dtype() == kInt64, "{}: expected int64 labels, got {}", op,
           dtype_name(labels.dtype()));
  const Shape want = positions_shape(x.shape());
  CT_CHECK(labels.shape() == want,
           "{}: expected labels of shape {} ({} {} without the class dim), got {}", op,
           to_string(want), what, to_string(x.shape()), to_string(labels.shape()));
}

// The two linear maps of nll at fixed labels (checked) and weights, as ops that record: Forward,
// rows [M, C] -> [M], -rows[i, y] * w[y] (y = labels[i]; 0 where y is ignore_index), and its
// adjoint Adjoint, g [M] -> [M, C], -g[i] * w[y] at (i, y) and 0 elsewhere. Each is the other's
// gradient: the second derivatives of nll flow through the gather at the labels.
enum class NllMap { Forward, Adjoint };

Tensor nll_map(NllMap kind, const Tensor& t, const Tensor& labels, const Tensor& weight,
               std::int64_t ignore_index, std::int64_t classes) {
  const Tensor tc = t.contiguous();
  Tensor y;
  if (kind == NllMap::Forward) {
    OutOfRange bad;
    y = backend::nll(tc.detach(), labels, weight, ignore_index, bad);
  } else {
    y = backend::nll_backward(tc.detach(), labels, weight, ignore_index, classes);
  }
  record(y, kind == NllMap::Forward ? "nll_loss_forward" : "nll_loss_backward", {tc},
         {labels, weight},
         [kind, ignore_index, classes](const Saved& s, const Tensor& c, const GradMask&) {
           return std::vector<Tensor>{
               nll_map(kind == NllMap::Forward ? NllMap::Adjoint : NllMap::Forward, c, s[0], s[1],
                       ignore_index, classes)};
         });
  return y;
}

// rows [M, C] (on the tape), labels [M] -> the per-row losses [M], recorded; sample_weights
// (when non-null) gets the rows' weights, 0 where ignored.
Tensor nll_rows(const Tensor& rows, const Tensor& labels, const Tensor& weight,
                std::int64_t ignore_index, Tensor* sample_weights) {
  // cross_entropy's labels are nll_loss's: one message and one tape entry for both.
  constexpr std::string_view op = "nll_loss";
  const std::int64_t classes = rows.size(1);
  const Tensor lab = reshape(labels, {rows.size(0)}).contiguous();
  const Tensor w = weight.defined() ? weight.detach().contiguous() : Tensor();
  OutOfRange bad;
  Tensor losses =
      backend::nll(rows.detach().contiguous(), lab, w, ignore_index, bad, sample_weights);
  CT_CHECK(!bad.found(),
           "{}: expected labels in [0, {}), got {} at position {} (ignore_index = {})", op, classes,
           bad.value, bad.position, ignore_index);
  record(losses, op, {rows}, {lab, w},
         [classes, ignore_index](const Saved& s, const Tensor& g, const GradMask&) {
           if (autograd::creating_graph())
             return std::vector<Tensor>{
                 nll_map(NllMap::Adjoint, g, s[0], s[1], ignore_index, classes)};
           return std::vector<Tensor>{
               backend::nll_backward(g.contiguous(), s[0], s[1], ignore_index, classes)};
         });
  return losses;
}

// Per-row losses [M] reduced: None in the positions' shape, Mean divided by the sum of weights.
Tensor reduce_rows(const Tensor& losses, const Tensor& sample_weights, Reduction reduction,
                   const Shape& shape) {
  switch (reduction) {
    case Reduction::None:
      return reshape(losses, shape);
    case Reduction::Sum:
      return sum(losses);
    case Reduction::Mean:
      return div(sum(losses), sum(sample_weights));
  }
  return losses;
}

// Weight broadcastable to shape (trailing dims equal or 1, no more dims than shape).
bool broadcasts_to(const Shape& from, const Shape& to) {
  if (from.size() > to.size()) return false;
  const std::size_t lead = to.size() - from.size();
  for (std::size_t d = 0; d < from.size(); ++d)
    if (from[d] != 1 && from[d] != to[lead + d]) return false;
  return true;
}

// Checks of the binary cross-entropies: input and target of one shape and dtype, and each
// optional weight broadcastable to it and requiring no grad.
void check_binary(std::string_view op, const Tensor& input, const Tensor& target,
                  const std::vector<std::pair<std::string_view, Tensor>>& weights) {
  detail::check_floating_same(op, {input});
  detail::check_defined(op, target, "target");
  detail::check_floating_same(op, {input, target});
  CT_CHECK(target.shape() == input.shape(), "{}: expected target of the input's shape {}, got {}",
           op, to_string(input.shape()), to_string(target.shape()));
  for (const auto& [name, w] : weights) {
    if (!w.defined()) continue;
    detail::check_floating_same(op, {input, w});
    CT_CHECK(broadcasts_to(w.shape(), input.shape()),
             "{}: expected {} broadcastable to the input's shape {}, got {}", op, name,
             to_string(input.shape()), to_string(w.shape()));
    CT_CHECK(!any_requires_grad({w}),
             "{}: expected a {} that does not require grad (it is not differentiable), got one "
             "that does",
             op, name);
  }
}

Tensor times(const Tensor& x, const Tensor& w) {
  return w.defined() ? mul(x, w) : x;
}

// log(1 + exp(-x)) as PyTorch computes it: log(exp(-m) + exp(-x - m)) + m, m = max(-x, 0).
Tensor softplus_neg(const Tensor& x) {
  const Tensor m = clamp(neg(x), 0.0);
  return add(log(add(exp(neg(m)), exp(sub(neg(x), m)))), m);
}

}  // namespace

Tensor nll_loss(const Tensor& log_probs, const Tensor& labels, Reduction reduction) {
  return nll_loss(log_probs, labels, NllLossOptions().reduction(reduction));
}

Tensor nll_loss(const Tensor& log_probs, const Tensor& labels, const NllLossOptions& o) {
  constexpr std::string_view op = "nll_loss";
  check_class_input(op, log_probs, "log-probabilities", o.weight());
  check_class_labels(op, log_probs, "log-probabilities", labels);
  Tensor sample_weights;
  const Tensor losses = nll_rows(class_rows(log_probs), labels, o.weight(), o.ignore_index(),
                                 o.reduction() == Reduction::Mean ? &sample_weights : nullptr);
  return reduce_rows(losses, sample_weights, o.reduction(), labels.shape());
}

Tensor cross_entropy(const Tensor& logits, const Tensor& labels, Reduction reduction,
                     double label_smoothing) {
  return cross_entropy(logits, labels,
                       CrossEntropyOptions().reduction(reduction).label_smoothing(label_smoothing));
}

Tensor cross_entropy(const Tensor& logits, const Tensor& labels, const CrossEntropyOptions& o) {
  constexpr std::string_view op = "cross_entropy";
  detail::check_defined(op, labels, "labels");
  const bool probabilities = labels.is_floating_point();
  check_class_input(op, logits, "logits", o.weight(), probabilities);
  CT_CHECK(o.label_smoothing() >= 0.0 && o.label_smoothing() <= 1.0,
           "cross_entropy: expected label_smoothing in [0, 1], got {}", o.label_smoothing());
  const double eps = o.label_smoothing();
  const Reduction reduction = o.reduction();
  const Tensor& weight = o.weight();
  const std::int64_t classes = logits.size(logits.dim() == 1 ? 0 : 1);
  const Shape positions = positions_shape(logits.shape());
  if (!probabilities) check_class_labels(op, logits, "logits", labels);
  const Tensor logp = log_softmax(class_rows(logits), 1);  // [M, C]
  if (probabilities) {
    CT_CHECK(labels.shape() == logits.shape(),
             "cross_entropy: expected int64 labels [N, *] or class probabilities of the logits' "
             "shape {}, got {} {}",
             to_string(logits.shape()), dtype_name(labels.dtype()), to_string(labels.shape()));
    detail::check_floating_same(op, {logits, labels});
    CT_CHECK(o.ignore_index() == -100,
             "cross_entropy: expected ignore_index = -100 with class-probability targets (it "
             "applies to class labels only), got {}",
             o.ignore_index());
    const Tensor rows = class_rows(labels);
    const Tensor target =
        eps > 0.0 ? add(mul(rows, 1.0 - eps), eps / static_cast<double>(classes)) : rows;
    const Tensor prod = times(mul(logp, target), weight);
    switch (reduction) {
      case Reduction::None:
        return reshape(neg(sum(prod, {1})), positions);
      case Reduction::Sum:
        return neg(sum(prod));
      case Reduction::Mean:
        return div(neg(sum(prod)), static_cast<double>(logp.size(0)));
    }
  }
  Tensor sample_weights;
  const bool need_weights = reduction == Reduction::Mean || eps > 0.0;
  const Tensor nll =
      nll_rows(logp, labels, weight, o.ignore_index(), need_weights ? &sample_weights : nullptr);
  const Tensor nll_reduced = reduce_rows(nll, sample_weights, reduction, positions);
  if (eps == 0.0) return nll_reduced;
  // PyTorch's order of operations: both terms reduced first, then mixed. The smoothing term of an
  // ignored position is 0; without class weights the sample weights are that mask already.
  Tensor mask = sample_weights;
  if (weight.defined()) {
    OutOfRange bad;
    backend::nll(logp.detach(), reshape(labels, {logp.size(0)}).contiguous(), Tensor(),
                 o.ignore_index(), bad, &mask);
  }
  const Tensor smooth = mul(neg(sum(times(logp, weight), {1})), mask);
  return add(mul(nll_reduced, 1.0 - eps),
             mul(reduce_rows(smooth, sample_weights, reduction, positions),
                 eps / static_cast<double>(classes)));
}

Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, const Tensor& weight,
                            Reduction reduction) {
  constexpr std::string_view op = "binary_cross_entropy";
  check_binary(op, input, target, {{"weight", weight}});
  const Tensor x = input.detach(), t = target.detach();
  const Tensor w = weight.defined() ? weight.detach() : Tensor();
  Tensor loss;
  {
    NoGradGuard no_grad;
    if (x.numel() > 0) {
      const double lo = min(x).item(), hi = max(x).item();
      CT_CHECK(lo >= 0.0 && hi <= 1.0,
               "binary_cross_entropy: expected input probabilities in [0, 1], got {}",
               lo >= 0.0 ? hi : lo);
    }
    // PyTorch's order: (t - 1) * max(log(1 - x), -100) - t * max(log(x), -100), then * weight.
    loss = times(
        sub(mul(sub(t, 1.0), clamp(log(sub(1.0, x)), -100.0)), mul(t, clamp(log(x), -100.0))), w);
  }
  // The inputs are saved as they are, so that a backward with create_graph differentiates the
  // gradient formulas below (ops that record) with respect to them.
  record(loss, op, {input, target}, {input, target, w},
         [](const Saved& s, const Tensor& g, const GradMask& need) {
           const Tensor& xs = s[0];
           const Tensor& ts = s[1];
           const Tensor& ws = s[2];
           std::vector<Tensor> grads(2);
           if (need[0])
             // PyTorch's floor is the float 1e-12 (9.9999999600e-13), in both dtypes.
             grads[0] = times(div(mul(g, sub(xs, ts)),
                                  clamp(mul(sub(1.0, xs), xs), static_cast<double>(1e-12f))),
                              ws);
           if (need[1]) grads[1] = times(mul(g, sub(log(sub(1.0, xs)), log(xs))), ws);
           return grads;
         });
  return reduce_losses(loss, reduction);
}

Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target,
                                        const Tensor& weight, const Tensor& pos_weight,
                                        Reduction reduction) {
  constexpr std::string_view op = "binary_cross_entropy_with_logits";
  check_binary(op, input, target, {{"weight", weight}, {"pos_weight", pos_weight}});
  const Tensor x = input.detach(), t = target.detach();
  const Tensor w = weight.defined() ? weight.detach() : Tensor();
  const Tensor p = pos_weight.defined() ? pos_weight.detach() : Tensor();
  Tensor loss;
  {
    NoGradGuard no_grad;
    // PyTorch's order: (1 - t) * x + [1 + (p - 1) * t] * (log(exp(-m) + exp(-x - m)) + m).
    const Tensor m = clamp(neg(x), 0.0);
    const Tensor lse = log(add(exp(neg(m)), exp(sub(neg(x), m))));
    const Tensor linear = mul(sub(1.0, t), x);
    loss = p.defined() ? add(linear, mul(add(mul(sub(p, 1.0), t), 1.0), add(lse, m)))
                       : add(add(linear, m), lse);
    loss = times(loss, w);
  }
  record(loss, op, {input, target}, {input, target, w, p},
         [](const Saved& s, const Tensor& g, const GradMask& need) {
           const Tensor& xs = s[0];
           const Tensor& ts = s[1];
           const Tensor& ws = s[2];
           const Tensor& ps = s[3];
           std::vector<Tensor> grads(2);
           if (need[0]) {
             Tensor d;
             if (ps.defined()) {
               const Tensor pt = mul(ps, ts);
               d = sub(mul(sub(add(pt, 1.0), ts), sigmoid(xs)), pt);
             } else {
               d = sub(sigmoid(xs), ts);
             }
             grads[0] = times(mul(d, g), ws);
           }
           if (need[1]) {
             // log_sigmoid(-x) - p * log_sigmoid(x) = p * log(1 + exp(-x)) - log(1 + exp(x)).
             const Tensor d =
                 ps.defined() ? sub(mul(ps, softplus_neg(xs)), softplus_neg(neg(xs))) : neg(xs);
             grads[1] = times(mul(d, g), ws);
           }
           return grads;
         });
  return reduce_losses(loss, reduction);
}

}  // namespace convtape
