// Parameter-free layers: each forward is one op. See activation.h.
#include "modules/activation.h"

#include "ops/elementwise.h"
#include "ops/loss.h"
#include "ops/shape.h"

namespace convtape::nn {

Tensor ReLU::forward(const Tensor& x) {
  return relu(x);
}

Tensor LeakyReLU::forward(const Tensor& x) {
  return leaky_relu(x, negative_slope_);
}

std::string LeakyReLU::extra_repr() const {
  return fmt::format("negative_slope={}", negative_slope_);
}

Tensor Sigmoid::forward(const Tensor& x) {
  return sigmoid(x);
}

Tensor Tanh::forward(const Tensor& x) {
  return tanh(x);
}

Tensor Softmax::forward(const Tensor& x) {
  return softmax(x, dim_);
}

std::string Softmax::extra_repr() const {
  return fmt::format("dim={}", dim_);
}

Tensor LogSoftmax::forward(const Tensor& x) {
  return log_softmax(x, dim_);
}

std::string LogSoftmax::extra_repr() const {
  return fmt::format("dim={}", dim_);
}

Tensor Flatten::forward(const Tensor& x) {
  return flatten(x, start_dim_, end_dim_);
}

std::string Flatten::extra_repr() const {
  return fmt::format("start_dim={}, end_dim={}", start_dim_, end_dim_);
}

}  // namespace convtape::nn
