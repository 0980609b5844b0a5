// Resampling, PyTorch's F.interpolate: x [N, C, *S] (1, 2 or 3 spatial dims) -> y [N, C, *S'].
// S' is `size`, or floor(S * scale_factor) (exactly one of the two is given, once for every
// spatial dim or once per dim). Each spatial dim is resampled on its own (the modes are separable),
// output position o of a dim of input size in reading from the source coordinate
//   scale = 1 / scale_factor when scale_factor is given (and recompute_scale_factor is not set),
//           in / out otherwise; with align_corners, (in - 1) / (out - 1) (0 when out == 1)
//   nearest        src = min(floor(o * scale), in - 1)              (PyTorch's 'nearest')
//   nearest-exact  src = min(floor((o + 0.5) * scale), in - 1)      (PyTorch's 'nearest-exact')
//                  As PyTorch 1.13's CPU kernels: 'nearest' with 2 or 3 spatial dims copies a dim
//                  whose size does not change, reads o / 2 in a doubled dim and computes in
//                  float32 otherwise; 1-d 'nearest' and 'nearest-exact' compute in x's dtype.
//                  (PyTorch 2.x moved 3-d 'nearest' to the second rule; its CUDA kernels use the
//                  first one's float32 formula without the two special cases; PyTorch 1.13's
//                  1-d backward uses the first rule, so where the two differ - a scale factor
//                  near 1 or 2 that keeps or doubles the size - its gradient is not its
//                  forward's. Ours always is.)
//   linear         r = o * scale with align_corners, else max((o + 0.5) * scale - 0.5, 0);
//                  i0 = floor(r), i1 = min(i0 + 1, in - 1), l = r - i0:
//                  y[o] = (1 - l) x[i0] + l x[i1]; a dim whose size does not change is copied.
//                  'linear', 'bilinear' and 'trilinear' are this mode for 1, 2 and 3 spatial dims
//                  (each name only for its rank, as PyTorch).
// The scale, source coordinates and weights are computed on the host as PyTorch's CPU kernels do
// (in x's dtype, so the indices match PyTorch's exactly, on the CPU and CUDA alike); the resampling
// is index_select plus mul / add per dim, so it runs on the CPU and CUDA and is differentiable.
// nearest modes also take int64 tensors; linear modes need float32 or float64.
// align_corners applies to the linear modes only; setting it (true or false) with a nearest mode is
// an error, as in PyTorch, and it defaults to false.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace convtape {

enum class InterpolateMode { Nearest, NearestExact, Linear, Bilinear, Trilinear };

// A PyTorch-style builder: InterpolateOptions().scale_factor(2).mode("bilinear")
// .align_corners(true).
class InterpolateOptions {
 public:
  InterpolateOptions() = default;

  // The output's spatial size: one value for every dim, or one per dim.
  InterpolateOptions& size(std::int64_t s) { return size(std::vector<std::int64_t>{s}); }
  InterpolateOptions& size(std::vector<std::int64_t> s) {
    size_ = std::move(s);
    return *this;
  }
  // The multiplier of every spatial dim, or of each; the output size is floor(in * scale_factor).
  InterpolateOptions& scale_factor(double f) { return scale_factor(std::vector<double>{f}); }
  InterpolateOptions& scale_factor(std::vector<double> f) {
    scale_factor_ = std::move(f);
    return *this;
  }
  InterpolateOptions& mode(InterpolateMode m) {
    mode_ = m;
    return *this;
  }
  // "nearest", "nearest-exact", "linear", "bilinear" or "trilinear" (PyTorch's spellings).
  InterpolateOptions& mode(std::string_view name);
  InterpolateOptions& align_corners(bool on) {
    align_corners_ = on;
    return *this;
  }
  // true: the scale is in / out from the computed output size rather than 1 / scale_factor.
  InterpolateOptions& recompute_scale_factor(bool on) {
    recompute_scale_factor_ = on;
    return *this;
  }

  const std::vector<std::int64_t>& size() const { return size_; }
  const std::vector<double>& scale_factor() const { return scale_factor_; }
  InterpolateMode mode() const { return mode_; }
  const std::optional<bool>& align_corners() const { return align_corners_; }
  bool recompute_scale_factor() const { return recompute_scale_factor_; }

 private:
  std::vector<std::int64_t> size_;
  std::vector<double> scale_factor_;
  InterpolateMode mode_ = InterpolateMode::Nearest;
  std::optional<bool> align_corners_;
  bool recompute_scale_factor_ = false;
};

Tensor interpolate(const Tensor& x, const InterpolateOptions& options);

// The mode's name as PyTorch spells it, and back (op names the caller in the error).
const char* interpolate_mode_name(InterpolateMode mode);
InterpolateMode interpolate_mode_from_string(std::string_view name,
                                             std::string_view op = "interpolate");

}  // namespace convtape
