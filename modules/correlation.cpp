// Correlation: the cost-volume layer, forward(f1, f2) = correlation(f1, f2). See correlation.h.
#include "modules/correlation.h"

namespace convtape::nn {

Tensor Correlation::forward(const Tensor& x) {
  CT_FAIL("Correlation: expected two inputs (forward(f1, f2)), got one of shape {}",
          x.defined() ? to_string(x.shape()) : std::string("undefined"));
}

Tensor Correlation::forward_inputs(const std::vector<Tensor>& inputs) {
  if (inputs.size() == 1) return forward(inputs[0]);
  CT_CHECK(inputs.size() == 2, "Correlation: expected two inputs (forward(f1, f2)), got {}",
           inputs.size());
  return forward(inputs[0], inputs[1]);
}

Tensor Correlation::forward(const Tensor& f1, const Tensor& f2) {
  return correlation(f1, f2, options_);
}

std::string Correlation::extra_repr() const {
  const CorrelationOptions& o = options_;
  return fmt::format("kernel_size={}, max_displacement={}, stride1={}, stride2={}, padding={}",
                     o.kernel_size(), o.max_displacement(), o.stride1(), o.stride2(), o.padding());
}

}  // namespace convtape::nn
