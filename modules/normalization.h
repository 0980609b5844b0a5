// Normalisation layers beside BatchNorm, PyTorch's semantics (ops/normalization.h has the maths):
//   LayerNorm(normalized_shape, eps = 1e-5, elementwise_affine = true, bias = true)
//       x [*, *normalized_shape]; parameters weight (ones) and bias (zeros) of normalized_shape
//       when elementwise_affine (bias only when bias is true).
//   GroupNorm(num_groups, num_channels, eps = 1e-5, affine = true)
//       x [N, C, *] with C = num_channels, divisible by num_groups; weight (ones) and bias (zeros)
//       [C] when affine.
//   InstanceNorm1d / 2d / 3d(num_features, eps = 1e-5, momentum = 0.1, affine = false,
//                            track_running_stats = false)
//       x [N, C, L] or unbatched [C, L] / [N, C, H, W] or [C, H, W] / [N, C, D, H, W] or
//       [C, D, H, W]. Statistics per sample and channel over the spatial dims, in training and
//       whenever running statistics are not tracked; with track_running_stats the buffers
//       running_mean (zeros), running_var (ones) and num_batches_tracked (int64 0; PyTorch never
//       increments it for instance norm, nor do we) are updated in training and used in eval.
//       weight (ones) and bias (zeros) [C] when affine.
// Parameter and buffer names are PyTorch's, so state dicts interoperate. Printouts follow this
// library's convention (BatchNorm's): "LayerNorm([3, 4], eps=1e-05, elementwise_affine=true)",
// "GroupNorm(2, 4, eps=1e-05, affine=true)",
// "InstanceNorm2d(3, eps=1e-05, momentum=0.1, affine=false, track_running_stats=false)".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "modules/module.h"

namespace convtape::nn {

class LayerNorm : public Module {
 public:
  explicit LayerNorm(std::vector<std::int64_t> normalized_shape, double eps = 1e-5,
                     bool elementwise_affine = true, bool bias = true);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "LayerNorm"; }
  std::string extra_repr() const override;
  // weight 1, bias 0.
  void reset_parameters();

  const std::vector<std::int64_t>& normalized_shape() const { return normalized_shape_; }
  double eps() const { return eps_; }
  bool elementwise_affine() const { return elementwise_affine_; }
  Tensor weight() const { return weight_; }  // undefined unless elementwise_affine
  Tensor bias() const { return bias_; }      // undefined unless elementwise_affine and bias

 private:
  std::vector<std::int64_t> normalized_shape_;
  double eps_;
  bool elementwise_affine_;
  Tensor weight_, bias_;
};

class GroupNorm : public Module {
 public:
  GroupNorm(std::int64_t num_groups, std::int64_t num_channels, double eps = 1e-5,
            bool affine = true);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "GroupNorm"; }
  std::string extra_repr() const override;
  void reset_parameters();

  std::int64_t num_groups() const { return num_groups_; }
  std::int64_t num_channels() const { return num_channels_; }
  double eps() const { return eps_; }
  bool affine() const { return affine_; }
  Tensor weight() const { return weight_; }  // undefined unless affine
  Tensor bias() const { return bias_; }

 private:
  std::int64_t num_groups_, num_channels_;
  double eps_;
  bool affine_;
  Tensor weight_, bias_;
};

// Instance normalisation for inputs of rank spatial + 2 (batched) or spatial + 1 (unbatched);
// InstanceNorm1d / 2d / 3d fix spatial.
class InstanceNormNd : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return name_; }
  std::string extra_repr() const override;
  // running_mean 0, running_var 1, num_batches_tracked 0.
  void reset_running_stats();
  // reset_running_stats(), weight 1, bias 0.
  void reset_parameters();

  std::int64_t num_features() const { return num_features_; }
  double eps() const { return eps_; }
  double momentum() const { return momentum_; }
  bool affine() const { return affine_; }
  bool track_running_stats() const { return track_running_stats_; }
  Tensor weight() const { return weight_; }  // undefined unless affine
  Tensor bias() const { return bias_; }
  Tensor running_mean() const { return running_mean_; }  // undefined unless tracking
  Tensor running_var() const { return running_var_; }
  Tensor num_batches_tracked() const { return num_batches_tracked_; }

 protected:
  InstanceNormNd(std::string name, std::int64_t spatial, std::int64_t num_features, double eps,
                 double momentum, bool affine, bool track_running_stats);

 private:
  std::string name_;
  std::int64_t spatial_;
  std::int64_t num_features_;
  double eps_, momentum_;
  bool affine_, track_running_stats_;
  Tensor weight_, bias_;
  Tensor running_mean_, running_var_, num_batches_tracked_;
};

class InstanceNorm1d : public InstanceNormNd {
 public:
  explicit InstanceNorm1d(std::int64_t num_features, double eps = 1e-5, double momentum = 0.1,
                          bool affine = false, bool track_running_stats = false)
      : InstanceNormNd("InstanceNorm1d", 1, num_features, eps, momentum, affine,
                       track_running_stats) {}
};
class InstanceNorm2d : public InstanceNormNd {
 public:
  explicit InstanceNorm2d(std::int64_t num_features, double eps = 1e-5, double momentum = 0.1,
                          bool affine = false, bool track_running_stats = false)
      : InstanceNormNd("InstanceNorm2d", 2, num_features, eps, momentum, affine,
                       track_running_stats) {}
};
class InstanceNorm3d : public InstanceNormNd {
 public:
  explicit InstanceNorm3d(std::int64_t num_features, double eps = 1e-5, double momentum = 0.1,
                          bool affine = false, bool track_running_stats = false)
      : InstanceNormNd("InstanceNorm3d", 3, num_features, eps, momentum, affine,
                       track_running_stats) {}
};

}  // namespace convtape::nn
