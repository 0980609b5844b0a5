// Correlation: FlowNet's cost volume as a layer, a module with two inputs.
//   forward(f1, f2): f1, f2 [N, C, H, W] -> [N, D*D, H', W'] = correlation(f1, f2, options), with
//   D = 2 * (max_displacement / stride2) + 1 and H', W' as in ops/correlation.h. No parameters.
// Called as m(f1, f2) (Module's call operator, with hooks and summary() observation); the
// single-input forward(x) throws.
#pragma once

#include <string>
#include <vector>

#include "modules/module.h"
#include "ops/correlation.h"

namespace convtape::nn {

class Correlation : public Module {
 public:
  explicit Correlation(const CorrelationOptions& options = {}) : options_(options) {}
  Tensor forward(const Tensor& x) override;
  Tensor forward_inputs(const std::vector<Tensor>& inputs) override;
  Tensor forward(const Tensor& f1, const Tensor& f2);
  std::string type_name() const override { return "Correlation"; }
  // "kernel_size=1, max_displacement=20, stride1=1, stride2=2, padding=20".
  std::string extra_repr() const override;
  const CorrelationOptions& options() const { return options_; }

 private:
  CorrelationOptions options_;
};

}  // namespace convtape::nn
