// Dropout: inverted dropout as a layer (ops/dropout.h). In training mode each element is zeroed
// with probability p and the survivors are scaled by 1 / (1 - p); in eval mode the input passes
// through unchanged. Default p = 0.5. The mask is drawn from the given generator (not owned; it
// must outlive the module), or from the default generator (manual_seed) when none is given.
// Dropout1d / Dropout2d / Dropout3d zero whole channels instead (one draw per sample and channel,
// ops/dropout.h's dropout1d / dropout2d / dropout3d, with their input ranks): [N, C, L] or [C, L];
// [N, C, H, W] (a 3-d input is taken as [N, C, L], as PyTorch 1.13); [N, C, D, H, W] or
// [C, D, H, W]. Printouts "Dropout(p=0.5)", "Dropout2d(p=0.5)".
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

// The channel dropouts: one class, the op and the name fixed by Dropout1d / 2d / 3d.
class DropoutNd : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return name_; }
  std::string extra_repr() const override;  // "p=0.5"
  double p() const { return p_; }

 protected:
  using Op = Tensor (*)(const Tensor&, double, bool, Generator*);
  DropoutNd(std::string name, Op op, double p, Generator* gen);

 private:
  std::string name_;
  Op op_;
  double p_;
  Generator* gen_;
};

class Dropout1d : public DropoutNd {
 public:
  explicit Dropout1d(double p = 0.5, Generator* gen = nullptr);
};
class Dropout2d : public DropoutNd {
 public:
  explicit Dropout2d(double p = 0.5, Generator* gen = nullptr);
};
class Dropout3d : public DropoutNd {
 public:
  explicit Dropout3d(double p = 0.5, Generator* gen = nullptr);
};

}  // namespace convtape::nn
