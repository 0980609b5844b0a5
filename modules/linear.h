// Linear: the affine layer y = x W^T + b of PyTorch's nn.Linear.
//   x [*, in_features] -> y [*, out_features]; weight [out_features, in_features], bias
//   [out_features] (LinearOptions(in, out).bias(false) drops it).
// Default initialisation (PyTorch's): weight kaiming_uniform(a = sqrt(5)), i.e. U(-b, b) with
// b = 1 / sqrt(in_features), bias U(-1 / sqrt(in_features), 1 / sqrt(in_features)); .init() and
// .bias_init() replace them (modules/init.h).
#pragma once

#include <cstdint>
#include <string>

#include "modules/init.h"
#include "modules/module.h"

namespace convtape::nn {

class LinearOptions {
 public:
  LinearOptions(std::int64_t in_features, std::int64_t out_features)
      : in_features_(in_features), out_features_(out_features) {}

  LinearOptions& bias(bool on) {
    bias_ = on;
    return *this;
  }
  LinearOptions& init(init::Scheme weight_init) {
    init_ = std::move(weight_init);
    return *this;
  }
  LinearOptions& bias_init(init::Scheme bias_init) {
    bias_init_ = std::move(bias_init);
    return *this;
  }

  std::int64_t in_features() const { return in_features_; }
  std::int64_t out_features() const { return out_features_; }
  bool bias() const { return bias_; }
  const init::Scheme& init() const { return init_; }
  const init::Scheme& bias_init() const { return bias_init_; }

 private:
  std::int64_t in_features_;
  std::int64_t out_features_;
  bool bias_ = true;
  init::Scheme init_ = init::Scheme::pytorch_default();
  init::Scheme bias_init_ = init::Scheme::fan_in_uniform();
};

class Linear : public Module {
 public:
  explicit Linear(const LinearOptions& options);
  Linear(std::int64_t in_features, std::int64_t out_features)
      : Linear(LinearOptions(in_features, out_features)) {}
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Linear"; }
  // "in_features=3136, out_features=128, bias=true".
  std::string extra_repr() const override;
  void reset_parameters(Generator* gen = nullptr);

  const LinearOptions& options() const { return options_; }
  Tensor weight() const { return weight_; }
  Tensor bias() const { return bias_; }  // undefined without bias

 private:
  LinearOptions options_;
  Tensor weight_;
  Tensor bias_;
};

}  // namespace convtape::nn
