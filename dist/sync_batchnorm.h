// nn::SyncBatchNorm: batch normalisation whose training statistics are those of the global batch,
// every rank's input together (data-parallel training with small per-rank batches). Input
// x [N, C, *spatial] of any rank >= 2 (N may differ between ranks, 0 included); per channel, with
// sums over every dim but 1 on this rank and S over ranks (dist::all_reduce_sum, on the tape):
//   n    = S(N * prod(spatial))                         (all-reduced on the CPU, an int64)
//   mean = S(sum(x)) / n
//   var  = S(sum((x - mean)^2)) / n                     (a second pass, for accuracy)
//   y    = (x - mean) / sqrt(var + eps) * weight + bias
// Autograd gives the exact gradient of the global computation: the backward of each S all-reduces
// the statistics' gradients, so every rank must run backward too (its collectives pair up with
// the other ranks'). Options, parameters, buffers, the running statistics' update (momentum, the
// unbiased variance with the global n, num_batches_tracked, momentum nullopt's cumulative
// average), state_dict and printout are BatchNormNd's. Eval mode is BatchNorm's exactly and
// communicates nothing (running statistics, or this rank's batch without track_running_stats, as
// PyTorch's SyncBatchNorm). With one rank the result equals BatchNorm's.
//
// Training forward runs three collectives on the world group (count, sum, squared deviations), so
// every rank must call it the same number of times; the input checks (rank >= 2, C channels) throw
// before any collective, and a global n <= 1 throws on every rank after the first.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "modules/batchnorm.h"

namespace convtape::nn {

class SyncBatchNorm : public BatchNormNd {
 public:
  explicit SyncBatchNorm(const BatchNormOptions& options);
  explicit SyncBatchNorm(std::int64_t num_features)
      : SyncBatchNorm(BatchNormOptions(num_features)) {}

  // module with every BatchNorm1d / 2d / 3d of its tree replaced by a SyncBatchNorm with the same
  // options and copies of its parameter and buffer values (dtype, device, requires_grad and
  // training flag kept); a BatchNorm reached twice becomes one SyncBatchNorm. A Sequential holding
  // a replaced module is rebuilt (same names and order, same training flag); a module with
  // nothing to replace is returned as it is (the same pointer). A BatchNorm under any other
  // module with children is an error: such a module may call its child through a pointer of its
  // own, which a replacement could not reach, so build it with SyncBatchNorm instead.
  static std::shared_ptr<Module> convert(std::shared_ptr<Module> module);

 protected:
  Moments batch_moments(const Tensor& x, const std::vector<std::int64_t>& dims) override;
};

}  // namespace convtape::nn
