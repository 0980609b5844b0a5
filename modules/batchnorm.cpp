// Batch normalisation from differentiable ops (mean, sub, mul, sqrt, div), with the running
// statistics updated under NoGradGuard; the batch statistics come from batch_moments, which
// SyncBatchNorm overrides. See batchnorm.h for the maths.
#include "modules/batchnorm.h"

#include "core/autograd.h"
#include "core/trace.h"
#include "modules/init.h"
#include "ops/elementwise.h"
#include "ops/factory.h"
#include "ops/reduce.h"
#include "ops/shape.h"

namespace convtape::nn {

BatchNormNd::BatchNormNd(const BatchNormOptions& options, std::string name, std::int64_t min_rank,
                         std::int64_t max_rank, std::string layout)
    : options_(options),
      name_(std::move(name)),
      min_rank_(min_rank),
      max_rank_(max_rank),
      layout_(std::move(layout)) {
  const std::int64_t c = options.num_features();
  CT_CHECK(c > 0, "{}: expected num_features > 0, got {}", name_, c);
  CT_CHECK(options.eps() > 0.0, "{}: expected eps > 0, got {}", name_, options.eps());
  CT_CHECK(!options.momentum() || (*options.momentum() >= 0.0 && *options.momentum() <= 1.0),
           "{}: expected momentum in [0, 1], got {}", name_, options.momentum().value_or(0.0));
  if (options.affine()) {
    weight_ = register_parameter("weight", empty({c}));
    bias_ = register_parameter("bias", empty({c}));
  }
  if (options.track_running_stats()) {
    running_mean_ = register_buffer("running_mean", empty({c}));
    running_var_ = register_buffer("running_var", empty({c}));
    num_batches_tracked_ = register_buffer("num_batches_tracked", zeros({}, kInt64));
  }
  reset_parameters();
}

void BatchNormNd::reset_running_stats() {
  if (!options_.track_running_stats()) return;
  init::zeros_(running_mean_);
  init::ones_(running_var_);
  init::zeros_(num_batches_tracked_);
}

void BatchNormNd::reset_parameters() {
  reset_running_stats();
  if (!options_.affine()) return;
  init::ones_(weight_);
  init::zeros_(bias_);
}

Tensor BatchNormNd::forward(const Tensor& x) {
  // Traced as one op (core/trace.h): the ops it is made of are not reported on their own.
  trace::OpScope scope;
  const std::int64_t c = options_.num_features();
  CT_CHECK(x.defined(), "{}: expected an input tensor, got an undefined one", name_);
  CT_CHECK(x.dim() >= min_rank_ && x.dim() <= max_rank_, "{}: expected input {}, got {}", name_,
           layout_, to_string(x.shape()));
  CT_CHECK(x.size(1) == c, "{}: expected input with {} channels (dim 1), got {}", name_, c,
           to_string(x.shape()));
  std::vector<std::int64_t> dims{0};
  Shape per_channel{1, c};
  for (std::int64_t d = 2; d < x.dim(); ++d) {
    dims.push_back(d);
    per_channel.push_back(1);
  }
  const bool batch_stats = is_training() || !options_.track_running_stats();
  Tensor y;
  if (batch_stats) {
    const Moments moments = batch_moments(x, dims);
    const std::int64_t n = moments.count;
    const Tensor& mean = moments.mean;
    const Tensor& var = moments.var;
    y = div(moments.centred, sqrt(add(var, options_.eps())));
    if (is_training() && options_.track_running_stats()) {
      NoGradGuard no_grad;
      // With a fixed momentum the count is only bookkeeping: it is incremented where it lives,
      // without reading it back (on a GPU a read would wait for the device at every step).
      double m = 0.0;
      if (options_.momentum()) {
        num_batches_tracked_.copy_(add(num_batches_tracked_.to(kFloat64), 1.0));
        m = *options_.momentum();
      } else {
        const double count = num_batches_tracked_.item() + 1.0;
        num_batches_tracked_.fill_(count);
        m = 1.0 / count;
      }
      const double unbias = static_cast<double>(n) / static_cast<double>(n - 1);
      const Tensor batch_mean = reshape(mean.detach(), {c}).to(running_mean_.dtype());
      const Tensor batch_var = reshape(var.detach(), {c}).to(running_var_.dtype());
      running_mean_.copy_(add(mul(running_mean_, 1.0 - m), mul(batch_mean, m)));
      running_var_.copy_(add(mul(running_var_, 1.0 - m), mul(batch_var, m * unbias)));
    }
  } else {
    const Tensor mean = reshape(running_mean_, per_channel);
    const Tensor var = reshape(running_var_, per_channel);
    y = div(sub(x, mean), sqrt(add(var, options_.eps())));
  }
  if (options_.affine())
    y = add(mul(y, reshape(weight_, per_channel)), reshape(bias_, per_channel));
  // Inputs: x, weight, bias (undefined unless affine), running mean and variance (undefined
  // unless tracked); batch_stats: the batch's statistics normalised (training, or no running
  // statistics), which onnx/ cannot express.
  if (scope.recording())
    scope.emit("batch_norm", {x, weight_, bias_, running_mean_, running_var_}, y,
               {{"eps", options_.eps()},
                {"batch_stats", std::int64_t{batch_stats}},
                {"training", std::int64_t{is_training()}}});
  return y;
}

BatchNormNd::Moments BatchNormNd::batch_moments(const Tensor& x,
                                                const std::vector<std::int64_t>& dims) {
  const std::int64_t n = x.numel() / options_.num_features();
  CT_CHECK(!is_training() || n > 1,
           "{}: expected more than 1 value per channel in training, got input {}", name_,
           to_string(x.shape()));
  Moments m;
  m.mean = convtape::mean(x, dims, /*keepdim=*/true);
  m.centred = sub(x, m.mean);
  m.var = convtape::mean(mul(m.centred, m.centred), dims, /*keepdim=*/true);
  m.count = n;
  return m;
}

std::string BatchNormNd::extra_repr() const {
  const BatchNormOptions& o = options_;
  return fmt::format("{}, eps={}, momentum={}, affine={}, track_running_stats={}", o.num_features(),
                     o.eps(), o.momentum() ? fmt::format("{}", *o.momentum()) : std::string("none"),
                     o.affine(), o.track_running_stats());
}

}  // namespace convtape::nn
