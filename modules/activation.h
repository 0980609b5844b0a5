// Parameter-free layers, each a thin module around one op (shapes pass through unless noted):
//   ReLU         max(x, 0)
//   LeakyReLU    x if x >= 0, else negative_slope * x (default slope 0.01)
//   Sigmoid      1 / (1 + exp(-x))
//   Tanh         tanh(x)
//   Softmax      exp(x) / sum(exp(x)) along dim        LogSoftmax  its log, computed stably
//   Flatten      dims start_dim..end_dim merged into one: [N, C, H, W] -> [N, C*H*W] by default
//                (start_dim 1, end_dim -1)
//   Identity     x itself
#pragma once

#include <cstdint>
#include <string>

#include "modules/module.h"

namespace convtape::nn {

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "ReLU"; }
};

class LeakyReLU : public Module {
 public:
  explicit LeakyReLU(double negative_slope = 0.01) : negative_slope_(negative_slope) {}
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "LeakyReLU"; }
  std::string extra_repr() const override;
  double negative_slope() const { return negative_slope_; }

 private:
  double negative_slope_;
};

class Sigmoid : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Sigmoid"; }
};

class Tanh : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Tanh"; }
};

class Softmax : public Module {
 public:
  explicit Softmax(std::int64_t dim) : dim_(dim) {}
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Softmax"; }
  std::string extra_repr() const override;
  std::int64_t dim() const { return dim_; }

 private:
  std::int64_t dim_;
};

class LogSoftmax : public Module {
 public:
  explicit LogSoftmax(std::int64_t dim) : dim_(dim) {}
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "LogSoftmax"; }
  std::string extra_repr() const override;
  std::int64_t dim() const { return dim_; }

 private:
  std::int64_t dim_;
};

class Flatten : public Module {
 public:
  explicit Flatten(std::int64_t start_dim = 1, std::int64_t end_dim = -1)
      : start_dim_(start_dim), end_dim_(end_dim) {}
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Flatten"; }
  std::string extra_repr() const override;

 private:
  std::int64_t start_dim_;
  std::int64_t end_dim_;
};

class Identity : public Module {
 public:
  Tensor forward(const Tensor& x) override { return x; }
  std::string type_name() const override { return "Identity"; }
};

}  // namespace convtape::nn
