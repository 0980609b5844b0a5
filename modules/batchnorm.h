// Batch normalisation (Ioffe & Szegedy 2015) over the channel dim 1, PyTorch's semantics:
//   BatchNorm1d  x [N, C] or [N, C, L]     BatchNorm2d  x [N, C, H, W]     BatchNorm3d  [N, C, D,
//   H, W] y = (x - mean) / sqrt(var + eps) * weight + bias        (weight, bias [C] when affine)
// Training (or track_running_stats false): mean and var are the batch's, over every dim but 1,
// var biased (divided by n = N * prod(spatial)); with track_running_stats the running statistics
// are updated outside autograd:
//   running_mean = (1 - momentum) * running_mean + momentum * mean
//   running_var  = (1 - momentum) * running_var  + momentum * var * n / (n - 1)   (unbiased)
//   num_batches_tracked += 1; a momentum of nullopt uses 1 / num_batches_tracked (a cumulative
//   average). Training needs n > 1.
// Eval with track_running_stats: mean and var are running_mean and running_var.
// Defaults: eps 1e-5, momentum 0.1, affine true (weight ones, bias zeros), track_running_stats
// true (buffers running_mean zeros, running_var ones, num_batches_tracked int64 0).
// Built from differentiable ops, so gradients flow to x, weight and bias in every mode.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "modules/module.h"

namespace convtape::nn {

class BatchNormOptions {
 public:
  explicit BatchNormOptions(std::int64_t num_features) : num_features_(num_features) {}

  BatchNormOptions& eps(double e) {
    eps_ = e;
    return *this;
  }
  BatchNormOptions& momentum(std::optional<double> m) {
    momentum_ = m;
    return *this;
  }
  BatchNormOptions& affine(bool on) {
    affine_ = on;
    return *this;
  }
  BatchNormOptions& track_running_stats(bool on) {
    track_running_stats_ = on;
    return *this;
  }

  std::int64_t num_features() const { return num_features_; }
  double eps() const { return eps_; }
  const std::optional<double>& momentum() const { return momentum_; }
  bool affine() const { return affine_; }
  bool track_running_stats() const { return track_running_stats_; }

 private:
  std::int64_t num_features_;
  double eps_ = 1e-5;
  std::optional<double> momentum_ = 0.1;
  bool affine_ = true;
  bool track_running_stats_ = true;
};

// Batch normalisation for inputs of rank min_rank..max_rank; BatchNorm1d / 2d / 3d fix them.
class BatchNormNd : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return name_; }
  // "32, eps=1e-05, momentum=0.1, affine=true, track_running_stats=true".
  std::string extra_repr() const override;
  // running_mean 0, running_var 1, num_batches_tracked 0.
  void reset_running_stats();
  // reset_running_stats(), weight 1, bias 0.
  void reset_parameters();

  const BatchNormOptions& options() const { return options_; }
  Tensor weight() const { return weight_; }  // undefined unless affine
  Tensor bias() const { return bias_; }
  Tensor running_mean() const { return running_mean_; }  // undefined unless tracking
  Tensor running_var() const { return running_var_; }
  Tensor num_batches_tracked() const { return num_batches_tracked_; }

 protected:
  BatchNormNd(const BatchNormOptions& options, std::string name, std::int64_t min_rank,
              std::int64_t max_rank, std::string layout);

  // Per-channel statistics of x over dims (every dim but 1), kept as [1, C, 1, ...]: the mean,
  // x - mean, the biased variance, and count, the number of values per channel they are over
  // (which the running variance's unbiasing uses). forward calls it wherever batch statistics are
  // used; SyncBatchNorm overrides it to reduce over every rank.
  struct Moments {
    Tensor mean, centred, var;
    std::int64_t count = 0;
  };
  virtual Moments batch_moments(const Tensor& x, const std::vector<std::int64_t>& dims);

 private:
  BatchNormOptions options_;
  std::string name_;
  std::int64_t min_rank_;
  std::int64_t max_rank_;
  std::string layout_;  // for error messages: "[N, C, H, W]"
  Tensor weight_, bias_;
  Tensor running_mean_, running_var_, num_batches_tracked_;
};

class BatchNorm1d : public BatchNormNd {
 public:
  explicit BatchNorm1d(const BatchNormOptions& options)
      : BatchNormNd(options, "BatchNorm1d", 2, 3, "[N, C] or [N, C, L]") {}
  explicit BatchNorm1d(std::int64_t num_features) : BatchNorm1d(BatchNormOptions(num_features)) {}
};
class BatchNorm2d : public BatchNormNd {
 public:
  explicit BatchNorm2d(const BatchNormOptions& options)
      : BatchNormNd(options, "BatchNorm2d", 4, 4, "[N, C, H, W]") {}
  explicit BatchNorm2d(std::int64_t num_features) : BatchNorm2d(BatchNormOptions(num_features)) {}
};
class BatchNorm3d : public BatchNormNd {
 public:
  explicit BatchNorm3d(const BatchNormOptions& options)
      : BatchNormNd(options, "BatchNorm3d", 5, 5, "[N, C, D, H, W]") {}
  explicit BatchNorm3d(std::int64_t num_features) : BatchNorm3d(BatchNormOptions(num_features)) {}
};

}  // namespace convtape::nn
