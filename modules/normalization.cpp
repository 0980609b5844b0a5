// LayerNorm, GroupNorm and InstanceNorm1d/2d/3d: parameters and buffers as PyTorch names them, and
// forward through ops/normalization's functions. See normalization.h.
#include "modules/normalization.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "modules/init.h"
#include "ops/factory.h"
#include "ops/normalization.h"
#include "ops/shape.h"

namespace convtape::nn {

namespace {

void check_eps(const std::string& name, double eps) {
  CT_CHECK(eps >= 0.0, "{}: expected eps >= 0, got {}", name, eps);
}

}  // namespace

// ---- LayerNorm

LayerNorm::LayerNorm(std::vector<std::int64_t> normalized_shape, double eps,
                     bool elementwise_affine, bool bias)
    : normalized_shape_(std::move(normalized_shape)),
      eps_(eps),
      elementwise_affine_(elementwise_affine) {
  CT_CHECK(
      !normalized_shape_.empty() && std::all_of(normalized_shape_.begin(), normalized_shape_.end(),
                                                [](std::int64_t d) { return d > 0; }),
      "LayerNorm: expected a non-empty normalized_shape of positive extents, got [{}]",
      fmt::join(normalized_shape_, ", "));
  check_eps("LayerNorm", eps);
  const Shape s(normalized_shape_.begin(), normalized_shape_.end());
  if (elementwise_affine_) {
    weight_ = register_parameter("weight", empty(s));
    if (bias) bias_ = register_parameter("bias", empty(s));
  }
  reset_parameters();
}

void LayerNorm::reset_parameters() {
  if (weight_.defined()) init::ones_(weight_);
  if (bias_.defined()) init::zeros_(bias_);
}

Tensor LayerNorm::forward(const Tensor& x) {
  return layer_norm(x, normalized_shape_, weight_, bias_, eps_);
}

std::string LayerNorm::extra_repr() const {
  return fmt::format("[{}], eps={}, elementwise_affine={}", fmt::join(normalized_shape_, ", "),
                     eps_, elementwise_affine_);
}

// ---- GroupNorm

GroupNorm::GroupNorm(std::int64_t num_groups, std::int64_t num_channels, double eps, bool affine)
    : num_groups_(num_groups), num_channels_(num_channels), eps_(eps), affine_(affine) {
  CT_CHECK(num_groups > 0 && num_channels > 0 && num_channels % num_groups == 0,
           "GroupNorm: expected num_channels > 0 divisible by num_groups > 0, got num_channels = "
           "{}, num_groups = {}",
           num_channels, num_groups);
  check_eps("GroupNorm", eps);
  if (affine_) {
    weight_ = register_parameter("weight", empty({num_channels}));
    bias_ = register_parameter("bias", empty({num_channels}));
  }
  reset_parameters();
}

void GroupNorm::reset_parameters() {
  if (!affine_) return;
  init::ones_(weight_);
  init::zeros_(bias_);
}

Tensor GroupNorm::forward(const Tensor& x) {
  // As PyTorch's, the channel count is checked through weight and bias (group_norm's message).
  return group_norm(x, num_groups_, weight_, bias_, eps_);
}

std::string GroupNorm::extra_repr() const {
  return fmt::format("{}, {}, eps={}, affine={}", num_groups_, num_channels_, eps_, affine_);
}

// ---- InstanceNorm1d / 2d / 3d

InstanceNormNd::InstanceNormNd(std::string name, std::int64_t spatial, std::int64_t num_features,
                               double eps, double momentum, bool affine, bool track_running_stats)
    : name_(std::move(name)),
      spatial_(spatial),
      num_features_(num_features),
      eps_(eps),
      momentum_(momentum),
      affine_(affine),
      track_running_stats_(track_running_stats) {
  CT_CHECK(num_features > 0, "{}: expected num_features > 0, got {}", name_, num_features);
  check_eps(name_, eps);
  CT_CHECK(momentum >= 0.0 && momentum <= 1.0, "{}: expected momentum in [0, 1], got {}", name_,
           momentum);
  if (affine_) {
    weight_ = register_parameter("weight", empty({num_features}));
    bias_ = register_parameter("bias", empty({num_features}));
  }
  if (track_running_stats_) {
    running_mean_ = register_buffer("running_mean", empty({num_features}));
    running_var_ = register_buffer("running_var", empty({num_features}));
    num_batches_tracked_ = register_buffer("num_batches_tracked", zeros({}, kInt64));
  }
  reset_parameters();
}

void InstanceNormNd::reset_running_stats() {
  if (!track_running_stats_) return;
  init::zeros_(running_mean_);
  init::ones_(running_var_);
  init::zeros_(num_batches_tracked_);
}

void InstanceNormNd::reset_parameters() {
  reset_running_stats();
  if (!affine_) return;
  init::ones_(weight_);
  init::zeros_(bias_);
}

Tensor InstanceNormNd::forward(const Tensor& x) {
  CT_CHECK(x.defined(), "{}: expected an input tensor, got an undefined one", name_);
  const std::int64_t unbatched_rank = spatial_ + 1;
  CT_CHECK(x.dim() == unbatched_rank || x.dim() == unbatched_rank + 1,
           "{}: expected {}D or {}D input (unbatched or batched), got {}D input {}", name_,
           unbatched_rank, unbatched_rank + 1, x.dim(), to_string(x.shape()));
  const std::int64_t feature_dim = x.dim() - unbatched_rank;
  // Without per-channel tensors a channel count other than num_features still works (PyTorch
  // warns); weight, bias or running statistics need it to match.
  CT_CHECK(x.size(feature_dim) == num_features_ || !(affine_ || track_running_stats_),
           "{}: expected input's size at dim={} to match num_features ({}), got {} (input {})",
           name_, feature_dim, num_features_, x.size(feature_dim), to_string(x.shape()));
  const bool use_input_stats = is_training() || !track_running_stats_;
  const Tensor batched = feature_dim == 0 ? unsqueeze(x, 0) : x;
  const Tensor y = instance_norm(batched, running_mean_, running_var_, weight_, bias_,
                                 use_input_stats, momentum_, eps_);
  return feature_dim == 0 ? squeeze(y, 0) : y;
}

std::string InstanceNormNd::extra_repr() const {
  return fmt::format("{}, eps={}, momentum={}, affine={}, track_running_stats={}", num_features_,
                     eps_, momentum_, affine_, track_running_stats_);
}

}  // namespace convtape::nn
