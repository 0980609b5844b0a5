// Upsample: ops/resample's interpolate as a layer (PyTorch's nn.Upsample), x [N, C, *S] ->
// y [N, C, *S'] with S' the given size or floor(S * scale_factor), mode "nearest" (default),
// "nearest-exact", "linear" (1 spatial dim), "bilinear" (2) or "trilinear" (3), align_corners for
// the linear modes. Its options are interpolate's: Upsample(UpsampleOptions().scale_factor(2)
// .mode("bilinear").align_corners(true)). No parameters, the same in training and eval mode.
#pragma once

#include <string>

#include "modules/module.h"
#include "ops/resample.h"

namespace convtape::nn {

using UpsampleOptions = InterpolateOptions;

class Upsample : public Module {
 public:
  // Refuses options with both or neither of size and scale_factor, and align_corners with a
  // nearest mode; the rest is checked against the input by interpolate.
  explicit Upsample(const UpsampleOptions& options);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Upsample"; }
  // PyTorch's: "scale_factor=2.0, mode='nearest'", "size=(4, 6), mode='bilinear'".
  std::string extra_repr() const override;
  const UpsampleOptions& options() const { return options_; }

 private:
  UpsampleOptions options_;
};

}  // namespace convtape::nn
