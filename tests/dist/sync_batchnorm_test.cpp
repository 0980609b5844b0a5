// Tests of dist/sync_batchnorm, run on every rank (mpirun -np 2): a full batch drawn identically
// on every rank is split by rows, rank r normalising its rows [offset_r, offset_r + n_r) with
// SyncBatchNorm; its output, input gradient (loss sum(y * g)), all-reduced weight and bias
// gradients and running statistics must equal BatchNorm's on the full batch (float64, 1e-12).
// Covers equal, unequal and empty local batches, [N, C], 3-d and rank-6 inputs, momentum nullopt,
// eval mode (no collective), convert() on a Sequential, and the errors.
#include <catch2/catch.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dist/process_group.h"
#include "dist/sync_batchnorm.h"
#include "support/test_util.h"

namespace {

using namespace convtape;
using ct_test::allclose;

constexpr double kTol = 1e-12;

// The rows of every rank: sizes[r] rows from offset(r).
struct Split {
  std::vector<std::int64_t> sizes;
  std::int64_t total() const {
    std::int64_t t = 0;
    for (auto s : sizes) t += s;
    return t;
  }
  std::int64_t offset(int rank) const {
    std::int64_t o = 0;
    for (int r = 0; r < rank; ++r) o += sizes[static_cast<std::size_t>(r)];
    return o;
  }
  std::int64_t mine() const { return sizes[static_cast<std::size_t>(dist::rank())]; }
  Tensor rows(const Tensor& full_batch) const {
    return full_batch.narrow(0, offset(dist::rank()), mine()).contiguous();
  }
};

// With two ranks the given sizes; otherwise total rows split as evenly as possible.
Split split(std::vector<std::int64_t> two_ranks) {
  const int w = dist::world_size();
  if (w == 2) return {std::move(two_ranks)};
  std::int64_t total = 0;
  for (auto s : two_ranks) total += s;
  Split s;
  for (int r = 0; r < w; ++r) s.sizes.push_back(total / w + (r < total % w ? 1 : 0));
  return s;
}

using Make = std::function<std::shared_ptr<nn::BatchNormNd>(const nn::BatchNormOptions&)>;

// Runs steps training steps of SyncBatchNorm on this rank's rows and of reference (made by
// make_ref, which sees the full batch, reshaped by to_ref) and compares everything.
void check_against_batchnorm(const Shape& shape, const Split& s, const nn::BatchNormOptions& o,
                             const Make& make_ref, std::uint64_t seed, int steps = 2,
                             const std::function<Tensor(const Tensor&)>& to_ref = {}) {
  const auto ref_input = [&](const Tensor& t) { return to_ref ? to_ref(t) : t; };
  REQUIRE(shape[0] == s.total());
  manual_seed(seed);
  const std::int64_t c = shape[1];
  auto ref = make_ref(o);
  auto sync = std::make_shared<nn::SyncBatchNorm>(o);
  ref->to(kFloat64);
  sync->to(kFloat64);
  if (o.affine()) {
    NoGradGuard no_grad;
    const Tensor w = randn({c}, kFloat64), b = randn({c}, kFloat64);
    for (auto* m :
         {static_cast<nn::BatchNormNd*>(ref.get()), static_cast<nn::BatchNormNd*>(sync.get())}) {
      m->weight().copy_(w);
      m->bias().copy_(b);
    }
  }
  for (int step = 0; step < steps; ++step) {
    INFO("step " << step << ", rank " << dist::rank() << " of " << dist::world_size());
    const Tensor x = randn(shape, kFloat64) * (1.0 + step) + 0.5 * step;
    const Tensor g = randn(shape, kFloat64);
    ref->zero_grad();
    sync->zero_grad();

    const Tensor xf = x.clone().requires_grad_(true);
    const Tensor yf = (*ref)(ref_input(xf));
    sum(mul(yf, ref_input(g))).backward();

    const Tensor xl = s.rows(x).requires_grad_(true);
    const Tensor yl = (*sync)(xl);
    REQUIRE(yl.shape() == xl.shape());
    sum(mul(yl, s.rows(g))).backward();

    CHECK(allclose(yl, s.rows(reshape(yf, shape)), kTol, kTol));
    CHECK(allclose(xl.grad(), s.rows(xf.grad()), kTol, kTol));
    if (o.affine()) {
      const Tensor dw = sync->weight().grad().clone(), db = sync->bias().grad().clone();
      dist::all_reduce(dw);
      dist::all_reduce(db);
      CHECK(allclose(dw, ref->weight().grad(), kTol, kTol));
      CHECK(allclose(db, ref->bias().grad(), kTol, kTol));
    }
    if (o.track_running_stats()) {
      CHECK(allclose(sync->running_mean(), ref->running_mean(), kTol, kTol));
      CHECK(allclose(sync->running_var(), ref->running_var(), kTol, kTol));
      CHECK(sync->num_batches_tracked().item() == ref->num_batches_tracked().item());
      CHECK(sync->num_batches_tracked().item() == step + 1);
    }
  }
}

const Make make_2d = [](const nn::BatchNormOptions& o) {
  return std::make_shared<nn::BatchNorm2d>(o);
};
const Make make_1d = [](const nn::BatchNormOptions& o) {
  return std::make_shared<nn::BatchNorm1d>(o);
};
const Make make_3d = [](const nn::BatchNormOptions& o) {
  return std::make_shared<nn::BatchNorm3d>(o);
};

TEST_CASE("SyncBatchNorm: equal local batches match BatchNorm2d on the full batch") {
  check_against_batchnorm({8, 3, 4, 5}, split({4, 4}), nn::BatchNormOptions(3), make_2d, 7101);
}

TEST_CASE("SyncBatchNorm: unequal and empty local batches") {
  SECTION("3 and 5 rows") {
    check_against_batchnorm({8, 3, 4, 5}, split({3, 5}), nn::BatchNormOptions(3), make_2d, 7102);
  }
  SECTION("0 and 8 rows, momentum nullopt (cumulative average), eps 1e-3") {
    check_against_batchnorm({8, 3, 4, 5}, split({0, 8}),
                            nn::BatchNormOptions(3).momentum(std::nullopt).eps(1e-3), make_2d, 7103,
                            3);
  }
  SECTION("5 and 2 rows, affine and tracking off") {
    check_against_batchnorm({7, 2, 3, 3}, split({5, 2}),
                            nn::BatchNormOptions(2).affine(false).track_running_stats(false),
                            make_2d, 7104);
  }
}

TEST_CASE("SyncBatchNorm: [N, C], 3-d and rank-6 inputs") {
  SECTION("[N, C] against BatchNorm1d") {
    check_against_batchnorm({8, 3}, split({4, 4}), nn::BatchNormOptions(3), make_1d, 7105);
  }
  SECTION("[N, C, L] against BatchNorm1d, 2 and 6 rows") {
    check_against_batchnorm({8, 4, 6}, split({2, 6}), nn::BatchNormOptions(4).momentum(0.3),
                            make_1d, 7106);
  }
  SECTION("[N, C, D, H, W] against BatchNorm3d") {
    check_against_batchnorm({6, 2, 3, 2, 4}, split({3, 3}), nn::BatchNormOptions(2), make_3d, 7107);
  }
  SECTION("rank 6 against BatchNorm1d on [N, C, prod(spatial)]") {
    check_against_batchnorm({4, 2, 2, 3, 1, 2}, split({1, 3}), nn::BatchNormOptions(2), make_1d,
                            7108, 2, [](const Tensor& t) {
                              return reshape(t, {4, 2, 12});
                            });
  }
}

TEST_CASE("SyncBatchNorm: eval mode is BatchNorm's and communicates nothing") {
  manual_seed(7109);
  const Split s = split({4, 4});
  for (const bool track : {true, false}) {
    INFO("track_running_stats " << track);
    const auto o = nn::BatchNormOptions(3).track_running_stats(track);
    auto ref = std::make_shared<nn::BatchNorm2d>(o);
    auto sync = std::make_shared<nn::SyncBatchNorm>(o);
    ref->to(kFloat64);
    sync->to(kFloat64);
    {
      NoGradGuard no_grad;
      const Tensor w = randn({3}, kFloat64), b = randn({3}, kFloat64);
      ref->weight().copy_(w);
      sync->weight().copy_(w);
      ref->bias().copy_(b);
      sync->bias().copy_(b);
      if (track) {
        const Tensor rm = randn({3}, kFloat64), rv = rand({3}, kFloat64) + 0.5;
        ref->running_mean().copy_(rm);
        sync->running_mean().copy_(rm);
        ref->running_var().copy_(rv);
        sync->running_var().copy_(rv);
      }
    }
    ref->eval();
    sync->eval();
    const Tensor x = randn({8, 3, 4, 5}, kFloat64);
    // Only rank 0 runs the eval forward (and backward), twice: a collective would go unanswered.
    if (dist::rank() == 0) {
      for (int i = 0; i < 2; ++i) {
        const Tensor xl = s.rows(x).requires_grad_(true);
        const Tensor xr = s.rows(x).requires_grad_(true);
        const Tensor yl = (*sync)(xl);
        const Tensor yr = (*ref)(xr);
        CHECK(ct_test::equal(yl, yr));
        sum(mul(yl, yl)).backward();
        sum(mul(yr, yr)).backward();
        CHECK(allclose(xl.grad(), xr.grad(), kTol, kTol));
      }
      if (track) CHECK(sync->num_batches_tracked().item() == 0);
    }
    dist::barrier();
  }
}

// A module that holds its child through a pointer of its own, which convert() cannot replace.
class Block : public nn::Module {
 public:
  Block() : bn_(register_module("bn", std::make_shared<nn::BatchNorm2d>(2))) {}
  Tensor forward(const Tensor& x) override { return (*bn_)(x); }
  std::string type_name() const override { return "Block"; }

 private:
  std::shared_ptr<nn::BatchNorm2d> bn_;
};

TEST_CASE("SyncBatchNorm::convert") {
  manual_seed(7110);
  SECTION("a Sequential of Conv2d, BatchNorm2d, ReLU") {
    auto conv = std::make_shared<nn::Conv2d>(nn::Conv2dOptions(3, 4, 3).padding(1));
    auto bn = std::make_shared<nn::BatchNorm2d>(nn::BatchNormOptions(4).momentum(0.2));
    auto model = std::make_shared<nn::Sequential>(
        std::initializer_list<std::shared_ptr<nn::Module>>{conv, bn, std::make_shared<nn::ReLU>()});
    model->to(kFloat64);
    (*model)(randn({4, 3, 5, 5}, kFloat64));  // running statistics away from their defaults
    {
      NoGradGuard no_grad;
      bn->weight().copy_(randn({4}, kFloat64));
      bn->bias().copy_(randn({4}, kFloat64));
    }
    bn->bias().requires_grad_(false);
    model->eval();
    const StateDict before = model->state_dict();

    const std::shared_ptr<nn::Module> converted = nn::SyncBatchNorm::convert(model);
    REQUIRE(converted != model);
    auto seq = std::dynamic_pointer_cast<nn::Sequential>(converted);
    REQUIRE(seq != nullptr);
    REQUIRE(seq->size() == 3);
    CHECK(seq->at<nn::Conv2d>(0) == conv);
    auto sync = seq->at<nn::SyncBatchNorm>(1);
    CHECK(sync->type_name() == "SyncBatchNorm");
    CHECK(sync->options().momentum() == 0.2);
    CHECK(sync->weight().dtype() == kFloat64);
    CHECK(sync->weight().requires_grad());
    CHECK_FALSE(sync->bias().requires_grad());
    CHECK_FALSE(converted->is_training());
    CHECK_FALSE(sync->is_training());
    CHECK(converted->str() == "Sequential(\n  (0): " + conv->str() +
                                  "\n  (1): SyncBatchNorm(4, eps=1e-05, momentum=0.2, affine=true, "
                                  "track_running_stats=true)\n  (2): ReLU()\n)");
    // The same entries, names and values; the original model is untouched.
    const StateDict after = converted->state_dict();
    REQUIRE(after.size() == before.size());
    for (std::size_t i = 0; i < after.size(); ++i) {
      INFO(after[i].first);
      CHECK(after[i].first == before[i].first);
      CHECK(ct_test::equal(after[i].second, before[i].second));
    }
    CHECK(model->at<nn::BatchNorm2d>(1) == bn);
    CHECK(sync->num_batches_tracked().item() == 1);

    // Eval: the same output as the original (no collective).
    const Tensor x = randn({2, 3, 5, 5}, kFloat64);
    CHECK(ct_test::equal((*converted)(x), (*model)(x)));
    // Training: works on every rank, and with one step's statistics over both ranks' batches.
    converted->train();
    const Tensor xt = randn({3, 3, 5, 5}, kFloat64).requires_grad_(true);
    const Tensor y = (*converted)(xt);
    CHECK(y.shape() == Shape{3, 4, 5, 5});
    sum(y).backward();
    CHECK(xt.grad().defined());
    CHECK(sync->num_batches_tracked().item() == 2);
  }
  SECTION("nested Sequentials, a shared BatchNorm, and modules left as they are") {
    auto bn = std::make_shared<nn::BatchNorm1d>(3);
    auto inner = std::make_shared<nn::Sequential>(
        std::initializer_list<std::shared_ptr<nn::Module>>{bn, std::make_shared<nn::ReLU>()});
    auto outer = std::make_shared<nn::Sequential>();
    outer->push_back("block", inner);
    outer->push_back("again", bn);
    auto converted = std::dynamic_pointer_cast<nn::Sequential>(nn::SyncBatchNorm::convert(outer));
    REQUIRE(converted != nullptr);
    auto new_inner = std::dynamic_pointer_cast<nn::Sequential>((*converted)["block"]);
    REQUIRE(new_inner != nullptr);
    CHECK(new_inner != inner);
    CHECK(new_inner->at<nn::SyncBatchNorm>(0) == converted->at<nn::SyncBatchNorm>(1));
    CHECK(converted->parameters().size() == 2);

    auto relu = std::make_shared<nn::ReLU>();
    CHECK(nn::SyncBatchNorm::convert(relu) == relu);
    auto sync = std::make_shared<nn::SyncBatchNorm>(3);
    CHECK(nn::SyncBatchNorm::convert(sync) == sync);
    auto top = nn::SyncBatchNorm::convert(std::make_shared<nn::BatchNorm3d>(5));
    CHECK(top->type_name() == "SyncBatchNorm");
    CHECK(top->named_parameters().size() == 2);
  }
  SECTION("errors") {
    CT_REQUIRE_ERROR(nn::SyncBatchNorm::convert(nullptr),
                     "SyncBatchNorm::convert: expected a module, got nullptr");
    auto model = std::make_shared<nn::Sequential>(
        std::initializer_list<std::shared_ptr<nn::Module>>{std::make_shared<Block>()});
    CT_REQUIRE_ERROR(nn::SyncBatchNorm::convert(model),
                     "expected BatchNorm layers only inside Sequential containers, got "
                     "BatchNorm2d '0.bn' inside a Block");
  }
}

TEST_CASE("SyncBatchNorm: errors") {
  nn::SyncBatchNorm bn(3);
  // Input checks throw on every rank before any collective.
  CT_REQUIRE_ERROR(bn(randn({3})), "SyncBatchNorm: expected input [N, C, *spatial], got [3]");
  CT_REQUIRE_ERROR(bn(randn({2, 4, 5})),
                   "SyncBatchNorm: expected input with 3 channels (dim 1), got [2, 4, 5]");
  CT_REQUIRE_ERROR(bn(Tensor()), "SyncBatchNorm: expected an input tensor, got an undefined one");
  CT_REQUIRE_ERROR(nn::SyncBatchNorm(0), "SyncBatchNorm: expected num_features > 0, got 0");
  // One value per channel over all ranks: every rank learns it from the all-reduced count.
  const Tensor x = randn({dist::rank() == 0 ? 1 : 0, 3});
  CT_REQUIRE_ERROR(bn(x),
                   "SyncBatchNorm: expected more than 1 value per channel over all ranks "
                   "in training, got 1");
  CHECK(bn.num_batches_tracked().item() == 0);
  // Eval with one value per channel is fine (running statistics), as for BatchNorm.
  bn.eval();
  CHECK(bn(randn({1, 3, 2})).shape() == Shape{1, 3, 2});
}

}  // namespace
