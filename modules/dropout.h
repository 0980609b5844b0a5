// Dropout: inverted dropout as a layer (ops/dropout.h). In training mode each element is zeroed
// with probability p and the survivors are scaled by 1 / (1 - p); in eval mode the input passes
// through unchanged. Default p = 0.5. The mask is drawn from the given generator (not owned; it
// must outlive the module), or from the default generator (manual_seed) when none is given.
#pragma once

#include <string>

#include "core/random.h"
#include "modules/module.h"

namespace convtape::nn {

class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Dropout"; }
  std::string extra_repr() const override;  // "p=0.5"
  double p() const { return p_; }

 private:
  double p_;
  Generator* gen_;
};

}  // namespace convtape::nn
