// Dropout and the channel dropouts: forward is ops/dropout's dropout(x, p, is_training()) or
// dropout1d / 2d / 3d. See dropout.h.
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

DropoutNd::DropoutNd(std::string name, Op op, double p, Generator* gen)
    : name_(std::move(name)), op_(op), p_(p), gen_(gen) {
  CT_CHECK(p >= 0.0 && p <= 1.0, "{}: expected p in [0, 1], got {}", name_, p);
}

Tensor DropoutNd::forward(const Tensor& x) {
  return op_(x, p_, is_training(), gen_);
}

std::string DropoutNd::extra_repr() const {
  return fmt::format("p={}", p_);
}

Dropout1d::Dropout1d(double p, Generator* gen) : DropoutNd("Dropout1d", &dropout1d, p, gen) {}
Dropout2d::Dropout2d(double p, Generator* gen) : DropoutNd("Dropout2d", &dropout2d, p, gen) {}
Dropout3d::Dropout3d(double p, Generator* gen) : DropoutNd("Dropout3d", &dropout3d, p, gen) {}

}  // namespace convtape::nn
