// Linear: y = matmul(x, W^T) + b, with the input's last dim checked first. See linear.h.
#include "modules/linear.h"

#include "ops/elementwise.h"
#include "ops/factory.h"
#include "ops/linalg.h"
#include "ops/shape.h"

namespace convtape::nn {

Linear::Linear(const LinearOptions& options) : options_(options) {
  CT_CHECK(options.in_features() > 0 && options.out_features() > 0,
           "Linear: expected positive in_features and out_features, got {} and {}",
           options.in_features(), options.out_features());
  weight_ = register_parameter("weight", empty({options.out_features(), options.in_features()}));
  if (options.bias()) bias_ = register_parameter("bias", empty({options.out_features()}));
  reset_parameters();
}

void Linear::reset_parameters(Generator* gen) {
  const init::Fans fans = init::calculate_fans(weight_);
  options_.init().apply(weight_, fans, gen);
  if (bias_.defined()) options_.bias_init().apply(bias_, fans, gen);
}

Tensor Linear::forward(const Tensor& x) {
  CT_CHECK(x.defined(), "linear: expected an input tensor, got an undefined one");
  CT_CHECK(x.dim() >= 1 && x.size(-1) == options_.in_features(),
           "linear: expected input with last dim {}, got {}", options_.in_features(),
           to_string(x.shape()));
  return linear(x, weight_, bias_);
}

std::string Linear::extra_repr() const {
  return fmt::format("in_features={}, out_features={}, bias={}", options_.in_features(),
                     options_.out_features(), options_.bias());
}

}  // namespace convtape::nn
