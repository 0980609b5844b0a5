// Correlation: the cost-volume layer, forward(f1, f2) = correlation(f1, f2). See correlation.h.
#include "modules/correlation.h"

namespace convtape::nn {

Tensor Correlation::forward(const Tensor& x) {
  CT_FAIL("Correlation: expected two inputs (forward(f1, f2)), got one of shape {}",
          x.defined() ? to_string(x.shape()) : std::string("undefined"));
}

Tensor Correlation::forward(const Tensor& f1, const Tensor& f2) {
  return correlation(f1, f2, options_);
}

Tensor Correlation::operator()(const Tensor& f1, const Tensor& f2) {
  Tensor y = forward(f1, f2);
  observe_output(y);
  return y;
}

std::string Correlation::extra_repr() const {
  const CorrelationOptions& o = options_;
  return fmt::format("kernel_size={}, max_displacement={}, stride1={}, stride2={}, padding={}",
                     o.kernel_size(), o.max_displacement(), o.stride1(), o.stride2(), o.padding());
}

}  // namespace convtape::nn
