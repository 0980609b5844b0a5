// Adam and AdamW, in PyTorch's formulation. Per parameter p with gradient g, at step t = 1, 2, ...:
//   Adam:  g = g + weight_decay * p            (L2 penalty folded into the gradient)
//   AdamW: p = p * (1 - lr * weight_decay)     (decoupled weight decay)
//   m = beta1 * m + (1 - beta1) * g
//   v = beta2 * v + (1 - beta2) * g * g
//   v_max = max(v_max, v)                      (amsgrad; the denominator then uses v_max)
//   p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// Hyper-parameter names: lr, beta1, beta2, eps, weight_decay, amsgrad (0 or 1). State: step,
// exp_avg, exp_avg_sq, and max_exp_avg_sq with amsgrad. AdamW's weight decay defaults to 0.01.
#pragma once

#include <vector>

#include "optim/optimizer.h"

namespace convtape::optim {

namespace detail {

// The options of Adam and AdamW, which differ only in weight decay's default; setters return the
// derived type so that AdamOptions cannot be passed to AdamW by mistake.
template <class Derived>
class AdamOptionsBase {
 public:
  explicit AdamOptionsBase(double lr, double weight_decay) : lr_(lr), weight_decay_(weight_decay) {}

  Derived& lr(double v) {
    lr_ = v;
    return self();
  }
  Derived& betas(double beta1, double beta2) {
    beta1_ = beta1;
    beta2_ = beta2;
    return self();
  }
  Derived& eps(double v) {
    eps_ = v;
    return self();
  }
  Derived& weight_decay(double v) {
    weight_decay_ = v;
    return self();
  }
  Derived& amsgrad(bool v) {
    amsgrad_ = v;
    return self();
  }

  double lr() const { return lr_; }
  double beta1() const { return beta1_; }
  double beta2() const { return beta2_; }
  double eps() const { return eps_; }
  double weight_decay() const { return weight_decay_; }
  bool amsgrad() const { return amsgrad_; }

  Hyper to_hyper() const {
    return {{"lr", lr_},
            {"beta1", beta1_},
            {"beta2", beta2_},
            {"eps", eps_},
            {"weight_decay", weight_decay_},
            {"amsgrad", amsgrad_ ? 1.0 : 0.0}};
  }

 private:
  Derived& self() { return static_cast<Derived&>(*this); }

  double lr_;
  double beta1_ = 0.9;
  double beta2_ = 0.999;
  double eps_ = 1e-8;
  double weight_decay_;
  bool amsgrad_ = false;
};

// The step shared by Adam and AdamW.
class AdamBase : public Optimizer {
 public:
  void step() override;

 protected:
  AdamBase(std::string name, Hyper defaults, bool decoupled)
      : Optimizer(std::move(name), std::move(defaults)), decoupled_(decoupled) {}
  void check_hyper(const Hyper& hyper, const std::string& where) const override;
  StateLayout state_layout(const Hyper& hyper) const override;

 private:
  bool decoupled_;
};

}  // namespace detail

class AdamOptions : public detail::AdamOptionsBase<AdamOptions> {
 public:
  explicit AdamOptions(double lr = 1e-3) : AdamOptionsBase(lr, 0.0) {}
};

class AdamWOptions : public detail::AdamOptionsBase<AdamWOptions> {
 public:
  explicit AdamWOptions(double lr = 1e-3) : AdamOptionsBase(lr, 1e-2) {}
};

class Adam : public detail::AdamBase {
 public:
  explicit Adam(std::vector<Tensor> params, const AdamOptions& options = AdamOptions());
  // Groups' options override any of options' values.
  Adam(std::vector<ParamGroup> groups, const AdamOptions& options = AdamOptions());
};

class AdamW : public detail::AdamBase {
 public:
  explicit AdamW(std::vector<Tensor> params, const AdamWOptions& options = AdamWOptions());
  AdamW(std::vector<ParamGroup> groups, const AdamWOptions& options = AdamWOptions());
};

}  // namespace convtape::optim
