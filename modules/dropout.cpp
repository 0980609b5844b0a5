// Dropout: forward is ops/dropout's dropout(x, p, is_training()). See dropout.h.
#include "modules/dropout.h"

#include "ops/dropout.h"

namespace convtape::nn {

Dropout::Dropout(double p, Generator* gen) : p_(p), gen_(gen) {
  CT_CHECK(p >= 0.0 && p <= 1.0, "Dropout: expected p in [0, 1], got {}", p);
}

Tensor Dropout::forward(const Tensor& x) {
  return dropout(x, p_, is_training(), gen_);
}

std::string Dropout::extra_repr() const {
  return fmt::format("p={}", p_);
}

}  // namespace convtape::nn
