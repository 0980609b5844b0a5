// nn::DistributedDataParallel under mpirun: W ranks with batch B each train to the same parameters
// as one process with batch W * B (same data, same seed), gradient buckets start their all-reduce
// during backward, no_sync accumulates, unused parameters and mismatched replicas are clear
// errors, and buffers stay consistent. The one-process reference runs in each rank's own process,
// on the full batch, beside the distributed model.
#include <catch2/catch.hpp>

#include <memory>

#include "core/autograd.h"
#include "core/random.h"
#include "dist/ddp.h"
#include "dist/sync_batchnorm.h"
#include "modules/activation.h"
#include "modules/batchnorm.h"
#include "modules/conv.h"
#include "modules/linear.h"
#include "modules/pool.h"
#include "modules/sequential.h"
#include "ops/elementwise.h"
#include "ops/factory.h"
#include "ops/loss.h"
#include "ops/reduce.h"
#include "ops/shape.h"
#include "optim/sgd.h"

using namespace convtape;

namespace {

std::shared_ptr<nn::Sequential> small_cnn(bool batchnorm) {
  auto m = std::make_shared<nn::Sequential>();
  m->push_back(std::make_shared<nn::Conv2d>(nn::Conv2dOptions(1, 4, 3).padding(1)));
  if (batchnorm) m->push_back(std::make_shared<nn::BatchNorm2d>(4));
  m->push_back(std::make_shared<nn::ReLU>());
  m->push_back(std::make_shared<nn::MaxPool2d>(2));
  m->push_back(std::make_shared<nn::Conv2d>(nn::Conv2dOptions(4, 6, 3).padding(1)));
  m->push_back(std::make_shared<nn::ReLU>());
  m->push_back(std::make_shared<nn::Flatten>());
  m->push_back(std::make_shared<nn::Linear>(6 * 4 * 4, 16));
  m->push_back(std::make_shared<nn::ReLU>());
  m->push_back(std::make_shared<nn::Linear>(16, 5));
  return m;
}

// Rows [begin, begin + n) of x.
Tensor rows(const Tensor& x, std::int64_t begin, std::int64_t n) {
  return narrow(x, 0, begin, n);
}

double max_abs_diff(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, max(abs(sub(a[i].detach(), b[i].detach()))).item());
  return worst;
}

double max_abs(const std::vector<Tensor>& a) {
  double worst = 0.0;
  for (const Tensor& t : a) worst = std::max(worst, max(abs(t.detach())).item());
  return worst;
}

// 20 steps of SGD with momentum: DDP with the rank's share of each batch against one model on
// the whole batch. Returns the largest parameter difference (relative to the largest parameter).
double train_both(bool batchnorm, DType dtype) {
  const int w = dist::world_size(), r = dist::rank();
  const std::int64_t local = 32, global = local * w;
  manual_seed(7);
  auto reference = small_cnn(batchnorm);
  // With BatchNorm, the replicas compute batch statistics over every rank's rows, as the single
  // process does over its whole batch.
  std::shared_ptr<nn::Module> replica = small_cnn(batchnorm);
  if (batchnorm) replica = nn::SyncBatchNorm::convert(replica);
  reference->to(dtype);
  replica->to(dtype);
  replica->load_state_dict(reference->state_dict());
  auto ddp = std::make_shared<nn::DistributedDataParallel>(
      replica,
      nn::DistributedDataParallelOptions().bucket_cap_mb(0.002).first_bucket_cap_mb(0.001));
  REQUIRE(ddp->bucket_names().size() > 2);  // several buckets, started one by one
  optim::SGD ref_sgd(reference->parameters(), optim::SGDOptions(0.05).momentum(0.9));
  optim::SGD sgd(ddp->parameters(), optim::SGDOptions(0.05).momentum(0.9));
  Generator data_gen(2024);  // the same batches on every rank
  for (int step = 0; step < 20; ++step) {
    const Tensor x = randn({global, 1, 8, 8}, dtype, &data_gen);
    const Tensor y = argmax(randn({global, 5}, dtype, &data_gen), 1);
    const Tensor ref_loss = cross_entropy((*reference)(x), y);
    ref_sgd.zero_grad();
    ref_loss.backward();
    ref_sgd.step();
    const Tensor loss = cross_entropy((*ddp)(rows(x, r * local, local)), rows(y, r * local, local));
    sgd.zero_grad();
    loss.backward();
    sgd.step();
  }
  if (batchnorm) {
    std::vector<Tensor> ref_stats, stats;
    for (const Tensor& b : reference->buffers()) ref_stats.push_back(b.to(kFloat64));
    for (const Tensor& b : replica->buffers()) stats.push_back(b.to(kFloat64));
    REQUIRE(max_abs_diff(ref_stats, stats) <=
            (dtype == kFloat32 ? 1e-4 : 1e-10) * max_abs(ref_stats));
  }
  return max_abs_diff(reference->parameters(), replica->parameters()) /
         max_abs(reference->parameters());
}

}  // namespace

TEST_CASE("ddp: W ranks x batch 32 give the parameters of 1 process x batch 32W after 20 steps") {
  const double rel32 = train_both(false, kFloat32);
  INFO("float32: largest difference " << rel32 << " of the largest parameter");
  REQUIRE(rel32 < 2e-5);
  const double rel64 = train_both(false, kFloat64);
  INFO("float64: " << rel64);
  REQUIRE(rel64 < 1e-12);
}

TEST_CASE("ddp: W ranks x batch 32 with SyncBatchNorm match 1 process x batch 32W with BatchNorm") {
  const double rel32 = train_both(true, kFloat32);
  INFO("float32: largest difference " << rel32 << " of the largest parameter");
  REQUIRE(rel32 < 1e-4);
  const double rel64 = train_both(true, kFloat64);
  INFO("float64: " << rel64);
  REQUIRE(rel64 < 1e-11);
}

TEST_CASE("ddp: every parameter's gradient is the mean of the ranks' gradients") {
  manual_seed(3);
  auto model = small_cnn(false);
  model->to(kFloat64);
  auto ddp = std::make_shared<nn::DistributedDataParallel>(model);
  const Tensor x = mul(randn({4, 1, 8, 8}, kFloat64), static_cast<double>(dist::rank() + 1));
  sum((*ddp)(x)).backward();
  for (const auto& [name, p] : ddp->module()->named_parameters()) {
    INFO(name);
    const Tensor all = dist::all_gather(p.grad());
    // Every rank holds the mean already, so the gathered copies are identical.
    for (int k = 0; k < dist::world_size(); ++k)
      REQUIRE(max(abs(sub(narrow(all, 0, k, 1).squeeze(0), p.grad()))).item() == 0.0);
  }
}

TEST_CASE("ddp: a bucket's all-reduce starts while backward still computes earlier layers") {
  manual_seed(5);
  auto model = small_cnn(false);
  // Tiny caps: the classifier's parameters form the first buckets, done long before the convs'.
  auto ddp = std::make_shared<nn::DistributedDataParallel>(
      model, nn::DistributedDataParallelOptions().bucket_cap_mb(0.001).first_bucket_cap_mb(0.0001));
  const auto names = ddp->bucket_names();
  REQUIRE(names.front().front() == "8.bias");  // the last layer's gradient comes first
  REQUIRE(names.back().back() == "0.weight");
  const Tensor x = randn({8, 1, 8, 8});
  sum((*ddp)(x)).backward();
  const auto& s = ddp->last_step();
  REQUIRE(s.started_in_backward.size() == names.size());
  // The first bucket's request was issued from a gradient hook, and the gradients of the convs
  // were computed after it: communication overlapped computation.
  REQUIRE(s.started_in_backward.front());
  REQUIRE(s.gradients_after_start.front() > 0);
  REQUIRE(s.gradients_after_start.back() == 0);
  REQUIRE(s.backward_seconds >= s.wait_seconds);

  auto off = std::make_shared<nn::DistributedDataParallel>(
      small_cnn(false),
      nn::DistributedDataParallelOptions().bucket_cap_mb(0.001).first_bucket_cap_mb(0.0001).overlap(
          false));
  sum((*off)(x)).backward();
  for (bool started : off->last_step().started_in_backward) REQUIRE_FALSE(started);
  for (int k : off->last_step().gradients_after_start) REQUIRE(k == 0);
}

TEST_CASE("ddp: no_sync accumulates locally; the next backward averages the accumulated sum") {
  manual_seed(9);
  auto reference = small_cnn(false);
  reference->to(kFloat64);
  auto model = small_cnn(false);
  model->to(kFloat64);
  model->load_state_dict(reference->state_dict());
  auto ddp = std::make_shared<nn::DistributedDataParallel>(model);
  const int w = dist::world_size();
  Generator gen(11);
  std::vector<Tensor> xs;
  for (int k = 0; k < 3 * w; ++k) xs.push_back(randn({2, 1, 8, 8}, kFloat64, &gen));
  // Micro-batches k = 3r, 3r + 1 under no_sync, 3r + 2 synchronised, on rank r.
  {
    auto guard = ddp->no_sync();
    for (int k = 0; k < 2; ++k)
      sum((*ddp)(xs[static_cast<std::size_t>(3 * dist::rank() + k)])).backward();
    // Nothing was communicated: the gradients are this rank's alone.
  }
  sum((*ddp)(xs[static_cast<std::size_t>(3 * dist::rank() + 2)])).backward();
  for (const Tensor& x : xs) sum((*reference)(x)).backward();
  std::vector<Tensor> expected, got;
  for (const Tensor& p : reference->parameters()) expected.push_back(div(p.grad(), w));
  for (const Tensor& p : model->parameters()) got.push_back(p.grad());
  REQUIRE(max_abs_diff(expected, got) < 1e-12 * std::max(1.0, max_abs(expected)));
}

TEST_CASE("ddp: an unused parameter is an error, unless the user says it may happen") {
  // Two heads; the second is never used.
  struct TwoHeads : nn::Module {
    std::shared_ptr<nn::Linear> a = register_module("a", std::make_shared<nn::Linear>(3, 2));
    std::shared_ptr<nn::Linear> b = register_module("b", std::make_shared<nn::Linear>(3, 2));
    Tensor forward(const Tensor& x) override { return (*a)(x); }
  };
  manual_seed(1);
  auto strict = std::make_shared<nn::DistributedDataParallel>(std::make_shared<TwoHeads>());
  REQUIRE_THROWS_WITH(sum((*strict)(randn({4, 3}))).backward(),
                      Catch::Contains("DistributedDataParallel: expected a gradient for every "
                                      "trainable parameter in backward(), got none for 'b.weight', "
                                      "'b.bias' on rank"));
  auto lenient = std::make_shared<nn::DistributedDataParallel>(
      std::make_shared<TwoHeads>(),
      nn::DistributedDataParallelOptions().find_unused_parameters(true));
  const Tensor x = randn({4, 3});
  sum((*lenient)(x)).backward();
  auto* heads = dynamic_cast<TwoHeads*>(lenient->module().get());
  REQUIRE(max(abs(heads->b->weight().grad())).item() == 0.0);
  REQUIRE(max(abs(heads->a->weight().grad())).item() > 0.0);
  // The next step works as usual.
  lenient->zero_grad();
  sum((*lenient)(x)).backward();
  REQUIRE(max(abs(heads->a->weight().grad())).item() > 0.0);
}

TEST_CASE("ddp: replicas with different parameters are refused at construction") {
  if (dist::world_size() < 2) return;
  auto mine = std::make_shared<nn::Linear>(4, 3 + dist::rank());
  REQUIRE_THROWS_WITH(
      nn::DistributedDataParallel(mine),
      Catch::Contains("DistributedDataParallel: expected the same parameters and buffers on every "
                      "rank, got parameter 'weight' [3, 4] float32 on rank 0 and parameter "
                      "'weight' [4, 4] float32 on rank 1"));
  REQUIRE_THROWS_WITH(
      nn::DistributedDataParallel(std::make_shared<nn::Linear>(4, 3),
                                  nn::DistributedDataParallelOptions().bucket_cap_mb(0)),
      Catch::Contains("expected bucket_cap_mb to be a positive number of MiB"));
}

TEST_CASE("ddp: rank 0's parameters and buffers reach every replica; eval() agrees on buffers") {
  manual_seed(static_cast<std::uint64_t>(100 + dist::rank()));  // different initialisations
  auto model = small_cnn(true);
  auto ddp = std::make_shared<nn::DistributedDataParallel>(model);
  for (const Tensor& p : model->parameters()) {
    const Tensor all = dist::all_gather(p.detach());
    for (int k = 0; k < dist::world_size(); ++k)
      REQUIRE(max(abs(sub(narrow(all, 0, k, 1), narrow(all, 0, 0, 1)))).item() == 0.0);
  }
  // Training forwards update each rank's running statistics from its own batch.
  (*ddp)(mul(randn({4, 1, 8, 8}), static_cast<double>(dist::rank() + 1)));
  ddp->eval();
  for (const Tensor& b : model->buffers()) {
    const Tensor all = dist::all_gather(b.detach());
    for (int k = 0; k < dist::world_size(); ++k)
      REQUIRE(max(abs(sub(narrow(all, 0, k, 1).to(kFloat64), narrow(all, 0, 0, 1).to(kFloat64))))
                  .item() == 0.0);
  }
  REQUIRE_FALSE(model->is_training());
}
