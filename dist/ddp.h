// nn::DistributedDataParallel: data-parallel training of any module, one process per CPU socket or
// GPU. Each rank runs the same model on its own shard of the batch; after backward() every
// parameter's .grad holds the mean over ranks of the ranks' gradients, so every rank's optimizer
// takes the same step and the replicas stay identical.
//
//   dist::init();
//   auto ddp = std::make_shared<nn::DistributedDataParallel>(model);   // broadcasts rank 0's state
//   optim::SGD sgd(ddp->parameters(), ...);
//   loss = cross_entropy((*ddp)(x), y); sgd.zero_grad(); loss.backward(); sgd.step();
//
// How: at construction the ranks check that they hold the same parameters and buffers (names,
// shapes, dtypes; a mismatch is an error naming the first difference), then rank 0's values are
// broadcast. Trainable parameters are grouped into buckets in reverse registration order (the order
// in which backward produces their gradients): the first bucket holds up to first_bucket_cap_mb
// (1 MiB, as in PyTorch, so that communication starts early), the others up to bucket_cap_mb
// (25 MiB); a parameter larger than the cap is a bucket of its own. A hook on each parameter
// (autograd::register_post_accumulate_grad_hook) marks its gradient final; when every gradient of
// a bucket is, the bucket is copied into one flat buffer and its all-reduce (mean) is started
// asynchronously, while backward goes on computing the earlier layers' gradients. Buckets are
// started in bucket order on every rank (a bucket ready early waits for the ones before it), so the
// collectives pair up; buckets that become startable together go out as one collective. At the end
// of backward (autograd::queue_callback) the buckets are waited for and copied back into the
// gradients.
//
// Gradient accumulation: backward passes inside `auto guard = ddp.no_sync();` accumulate locally
// and communicate nothing; the first backward after the guard averages everything accumulated.
// A trainable parameter that gets no gradient in a backward (a branch not taken) is an error on
// that rank, unless find_unused_parameters(true): then its share counts as zero. Buffers
// (BatchNorm's running statistics) are broadcast from rank 0 at every forward in training mode
// (broadcast_buffers, on by default), so every replica evaluates with rank 0's; nn::SyncBatchNorm
// (dist/sync_batchnorm.h) computes the batch statistics over all ranks instead.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "dist/process_group.h"
#include "modules/module.h"

namespace convtape::nn {

class DistributedDataParallelOptions {
 public:
  DistributedDataParallelOptions& bucket_cap_mb(double mb) {
    bucket_cap_mb_ = mb;
    return *this;
  }
  DistributedDataParallelOptions& first_bucket_cap_mb(double mb) {
    first_bucket_cap_mb_ = mb;
    return *this;
  }
  DistributedDataParallelOptions& find_unused_parameters(bool on) {
    find_unused_parameters_ = on;
    return *this;
  }
  DistributedDataParallelOptions& broadcast_buffers(bool on) {
    broadcast_buffers_ = on;
    return *this;
  }
  // Off: every bucket is started at the end of backward (for measuring what overlap gains).
  DistributedDataParallelOptions& overlap(bool on) {
    overlap_ = on;
    return *this;
  }
  DistributedDataParallelOptions& process_group(dist::ProcessGroup* group) {
    group_ = group;
    return *this;
  }
  double bucket_cap_mb() const { return bucket_cap_mb_; }
  double first_bucket_cap_mb() const { return first_bucket_cap_mb_; }
  bool find_unused_parameters() const { return find_unused_parameters_; }
  bool broadcast_buffers() const { return broadcast_buffers_; }
  bool overlap() const { return overlap_; }
  dist::ProcessGroup* process_group() const { return group_; }  // null: the world group

 private:
  double bucket_cap_mb_ = 25.0;
  double first_bucket_cap_mb_ = 1.0;
  bool find_unused_parameters_ = false;
  bool broadcast_buffers_ = true;
  bool overlap_ = true;
  dist::ProcessGroup* group_ = nullptr;
};

class DistributedDataParallel : public Module {
 public:
  explicit DistributedDataParallel(std::shared_ptr<Module> module,
                                   DistributedDataParallelOptions options = {});
  ~DistributedDataParallel() override;

  Tensor forward(const Tensor& x) override;
  // Switching to eval mode also broadcasts rank 0's buffers (when broadcast_buffers), so that
  // every replica evaluates with the same running statistics. Every rank must call it.
  void train(bool on = true) override;
  std::string type_name() const override { return "DistributedDataParallel"; }
  std::string extra_repr() const override;

  // The wrapped module (save its state_dict: the same names as without DDP).
  const std::shared_ptr<Module>& module() const { return module_; }
  dist::ProcessGroup& process_group() const { return *group_; }

  // While a guard lives, backward communicates nothing (gradients accumulate locally).
  class NoSyncGuard {
   public:
    explicit NoSyncGuard(DistributedDataParallel& ddp) : ddp_(ddp), previous_(ddp.no_sync_) {
      ddp.no_sync_ = true;
    }
    ~NoSyncGuard() { ddp_.no_sync_ = previous_; }
    NoSyncGuard(const NoSyncGuard&) = delete;
    NoSyncGuard& operator=(const NoSyncGuard&) = delete;

   private:
    DistributedDataParallel& ddp_;
    bool previous_;
  };
  [[nodiscard]] NoSyncGuard no_sync() { return NoSyncGuard(*this); }

  // The buckets, as lists of parameter names (bucket 0 is started first).
  std::vector<std::vector<std::string>> bucket_names() const;

  // What the last synchronised backward did, for tests and benchmarks.
  struct StepStats {
    // Per bucket: how many parameter gradients became final after the bucket's all-reduce was
    // started (> 0: communication overlapped gradient computation), and whether it was started
    // from inside backward (a hook) rather than at its end.
    std::vector<int> gradients_after_start;
    std::vector<bool> started_in_backward;
    double wait_seconds = 0.0;      // blocked at the end of backward waiting for the buckets
    double backward_seconds = 0.0;  // from the first gradient hook to the end of backward
  };
  const StepStats& last_step() const { return stats_; }

 private:
  // Buckets of one dtype and device are consecutive ranges of one buffer, so that buckets ready at
  // the same time (every bucket, without overlap) go out as one collective.
  struct Bucket {
    std::vector<std::size_t> params;    // indices into params_
    std::vector<std::int64_t> offsets;  // element offsets into flat
    std::int64_t numel = 0;
    std::size_t buffer = 0;  // index into buffers_
    std::int64_t start = 0;  // element offset of flat in its buffer
    Tensor flat;
    std::size_t pending = 0;
    bool started = false;
    dist::Work work;
  };

  void check_replicas_agree();
  void build_buckets();
  void on_gradient_ready(std::size_t index);
  void start_ready_buckets(bool in_backward);
  void fill_bucket(std::size_t b);
  void finish_backward();
  void reset_step();
  void broadcast_buffers();

  std::shared_ptr<Module> module_;
  DistributedDataParallelOptions options_;
  dist::ProcessGroup* group_;
  std::vector<std::string> names_;  // trainable parameters
  std::vector<Tensor> params_;
  std::vector<std::size_t> bucket_of_;
  std::vector<Bucket> buckets_;
  std::vector<Tensor> buffers_;
  std::vector<autograd::HookHandle> hooks_;
  // Per-step state.
  std::vector<bool> ready_;
  std::size_t next_bucket_ = 0;
  bool armed_ = false;  // a backward of this step has queued finish_backward
  bool no_sync_ = false;
  std::int64_t ready_count_ = 0;
  std::vector<std::int64_t> ready_at_start_;
  double first_hook_ = 0.0;
  StepStats stats_;
};

}  // namespace convtape::nn
