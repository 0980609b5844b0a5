// Gradient clipping with device-agnostic ops: one reduction per gradient brought to the host, then
// one in-place scale (norm) or one clamped copy (value) per gradient.
#include "optim/clip.h"

#include <cmath>

#include "core/autograd.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"

namespace convtape::optim {

namespace {

// ||g||_p, as PyTorch's torch.norm computes it per gradient.
double grad_norm(const Tensor& g, double p) {
  if (g.numel() == 0) return 0.0;
  if (std::isinf(p)) return max(abs(g)).item();
  if (p == 2.0) return std::sqrt(sum(mul(g, g)).item());
  if (p == 1.0) return sum(abs(g)).item();
  return std::pow(sum(pow(abs(g), p)).item(), 1.0 / p);
}

}  // namespace

double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type,
                       bool error_if_nonfinite) {
  CT_CHECK(max_norm >= 0.0, "clip_grad_norm_: expected max_norm >= 0, got {}", max_norm);
  CT_CHECK(norm_type > 0.0, "clip_grad_norm_: expected norm_type > 0 (or infinity), got {}",
           norm_type);
  NoGradGuard no_grad;
  std::vector<Tensor> grads;
  for (const Tensor& p : params) {
    CT_CHECK(p.defined(), "clip_grad_norm_: expected defined parameters, got an undefined one");
    const Tensor g = p.grad();
    if (g.defined()) grads.push_back(g);
  }
  if (grads.empty()) return 0.0;
  const bool inf_norm = std::isinf(norm_type);
  double total = 0.0;
  for (const Tensor& g : grads) {
    const double n = grad_norm(g, norm_type);
    total = inf_norm ? (std::isnan(n) || std::isnan(total) ? NAN : std::max(total, n))
                     : total + std::pow(n, norm_type);
  }
  if (!inf_norm) total = std::pow(total, 1.0 / norm_type);
  CT_CHECK(!error_if_nonfinite || std::isfinite(total),
           "clip_grad_norm_: expected a finite total norm of order {} of the gradients, got {}",
           norm_type, total);
  const double coef = max_norm / (total + 1e-6);
  // NaN or infinite norms make coef NaN or 0, which is applied: the gradients show the problem.
  if (!(coef >= 1.0))
    for (Tensor& g : grads) g.mul_(coef);
  return total;
}

void clip_grad_value_(const std::vector<Tensor>& params, double clip_value) {
  CT_CHECK(clip_value >= 0.0, "clip_grad_value_: expected clip_value >= 0, got {}", clip_value);
  NoGradGuard no_grad;
  for (const Tensor& p : params) {
    CT_CHECK(p.defined(), "clip_grad_value_: expected defined parameters, got an undefined one");
    Tensor g = p.grad();
    if (g.defined()) g.copy_(clamp(g, -clip_value, clip_value));
  }
}

}  // namespace convtape::optim
