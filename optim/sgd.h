// Stochastic gradient descent with momentum, dampening, Nesterov momentum and L2 weight decay, in
// PyTorch's formulation. Per parameter p with gradient g (buffer b created on p's first step):
//   g = g + weight_decay * p
//   b = g on the first step, then b = momentum * b + (1 - dampening) * g     (momentum != 0)
//   g = nesterov ? g + momentum * b : b                                      (momentum != 0)
//   p = p - lr * g
// Hyper-parameter names (for ParamGroup options and the state dict): lr, momentum, dampening,
// nesterov (0 or 1), weight_decay. State: momentum_buffer, once momentum != 0.
#pragma once

#include <vector>

#include "optim/optimizer.h"

namespace convtape::optim {

class SGDOptions {
 public:
  explicit SGDOptions(double lr) : lr_(lr) {}

  SGDOptions& lr(double v) {
    lr_ = v;
    return *this;
  }
  SGDOptions& momentum(double v) {
    momentum_ = v;
    return *this;
  }
  SGDOptions& dampening(double v) {
    dampening_ = v;
    return *this;
  }
  SGDOptions& nesterov(bool v) {
    nesterov_ = v;
    return *this;
  }
  SGDOptions& weight_decay(double v) {
    weight_decay_ = v;
    return *this;
  }

  double lr() const { return lr_; }
  double momentum() const { return momentum_; }
  double dampening() const { return dampening_; }
  bool nesterov() const { return nesterov_; }
  double weight_decay() const { return weight_decay_; }

  // The named form (ParamGroup options) and back; from_hyper expects every name.
  Hyper to_hyper() const;
  static SGDOptions from_hyper(const Hyper& h);

 private:
  double lr_;
  double momentum_ = 0.0;
  double dampening_ = 0.0;
  bool nesterov_ = false;
  double weight_decay_ = 0.0;
};

class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, const SGDOptions& options);
  // Groups' options override any of options' values.
  SGD(std::vector<ParamGroup> groups, const SGDOptions& options);

  void step() override;

 protected:
  void check_hyper(const Hyper& hyper, const std::string& where) const override;
  StateLayout state_layout(const Hyper& hyper) const override;
};

}  // namespace convtape::optim
