// Tests of modules/batchnorm: training normalises with the batch's biased statistics, running
// statistics against a hand computation over several steps (unbiased variance, momentum and the
// cumulative average of momentum none), eval with the running statistics, affine and
// track_running_stats off, BatchNorm1d on [N, C] and [N, C, L], 2d and 3d, float64 gradients in
// train and eval mode, state_dict entries, the printout, and the errors.
#include <cmath>
#include <vector>

#include "modules/module_check.h"
#include "support/test_util.h"

namespace {

using namespace convtape;
using ct_test::allclose;

// Per-channel mean and biased / unbiased variance of x [N, C, *S], written out with loops.
struct ChannelStats {
  std::vector<double> mean, biased, unbiased;
};

ChannelStats channel_stats(const Tensor& x) {
  const Tensor xd = x.to(kFloat64).contiguous();
  const std::vector<double> v = xd.to_vector<double>();
  const std::int64_t n = x.size(0), c = x.size(1), inner = x.numel() / (n * c);
  ChannelStats s;
  for (std::int64_t ch = 0; ch < c; ++ch) {
    double sum = 0, sq = 0;
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < inner; ++j)
        sum += v[static_cast<std::size_t>((i * c + ch) * inner + j)];
    const double count = static_cast<double>(n * inner);
    const double mean = sum / count;
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < inner; ++j) {
        const double d = v[static_cast<std::size_t>((i * c + ch) * inner + j)] - mean;
        sq += d * d;
      }
    s.mean.push_back(mean);
    s.biased.push_back(sq / count);
    s.unbiased.push_back(sq / (count - 1));
  }
  return s;
}

Tensor vec(const std::vector<double>& v) {
  return tensor(v, kFloat64);
}

TEST_CASE("BatchNorm: running statistics over three steps, by hand") {
  manual_seed(51);
  nn::BatchNorm2d bn(3);
  CHECK(bn.running_mean().to_vector<float>() == std::vector<float>{0, 0, 0});
  CHECK(bn.running_var().to_vector<float>() == std::vector<float>{1, 1, 1});
  CHECK(bn.num_batches_tracked().dtype() == kInt64);
  std::vector<double> rm{0, 0, 0}, rv{1, 1, 1};
  for (int step = 0; step < 3; ++step) {
    const Tensor x = randn({4, 3, 2, 5}) * (1.0 + step) + static_cast<double>(step);
    const Tensor y = bn(x);
    const ChannelStats s = channel_stats(x);
    for (std::size_t c = 0; c < 3; ++c) {
      rm[c] = 0.9 * rm[c] + 0.1 * s.mean[c];
      rv[c] = 0.9 * rv[c] + 0.1 * s.unbiased[c];
    }
    CHECK(allclose(bn.running_mean().to(kFloat64), vec(rm), 1e-5, 1e-6));
    CHECK(allclose(bn.running_var().to(kFloat64), vec(rv), 1e-5, 1e-6));
    CHECK(bn.num_batches_tracked().item() == step + 1);
    // The output is normalised with the batch's biased statistics.
    const ChannelStats out = channel_stats(y);
    for (std::size_t c = 0; c < 3; ++c) {
      CHECK(std::abs(out.mean[c]) < 1e-5);
      CHECK(out.biased[c] == Approx(s.biased[c] / (s.biased[c] + 1e-5)).epsilon(1e-4));
    }
  }
  // Eval: the running statistics, then weight and bias.
  {
    NoGradGuard no_grad;
    bn.weight().copy_(tensor({2, -1, 0.5}));
    bn.bias().copy_(tensor({1, 0, -3}));
  }
  bn.eval();
  const Tensor x = randn({2, 3, 2, 2});
  const std::vector<double> xv = x.to(kFloat64).to_vector<double>();
  const std::vector<double> w{2, -1, 0.5}, b{1, 0, -3};
  std::vector<double> expect(xv.size());
  for (std::size_t i = 0; i < xv.size(); ++i) {
    const std::size_t c = (i / 4) % 3;
    expect[i] = (xv[i] - rm[c]) / std::sqrt(rv[c] + 1e-5) * w[c] + b[c];
  }
  CHECK(allclose(bn(x).to(kFloat64), tensor(expect, x.shape(), kFloat64), 1e-5, 1e-5));
  const Tensor rm_before = bn.running_mean().clone();
  bn(x);
  CHECK(ct_test::equal(bn.running_mean(), rm_before));  // eval does not update
  CHECK(bn.num_batches_tracked().item() == 3);
}

TEST_CASE("BatchNorm: momentum, cumulative average, affine and tracking off") {
  manual_seed(52);
  SECTION("momentum 0.5") {
    nn::BatchNorm1d bn(nn::BatchNormOptions(2).momentum(0.5));
    const Tensor x = tensor({1, 10, 3, 20, 5, 60}, {3, 2});
    bn(x);
    // channel 0: 1, 3, 5 (mean 3, unbiased var 4); channel 1: 10, 20, 60 (mean 30, var 700)
    CHECK(allclose(bn.running_mean(), tensor({1.5, 15}), 1e-6, 1e-6));
    CHECK(allclose(bn.running_var(), tensor({2.5, 350.5}), 1e-6, 1e-4));
  }
  SECTION("momentum none: the cumulative average") {
    nn::BatchNorm1d bn(nn::BatchNormOptions(2).momentum(std::nullopt));
    std::vector<Tensor> batches{randn({5, 2, 3}), randn({5, 2, 3}) + 2.0, randn({5, 2, 3}) * 3.0};
    std::vector<double> mean_sum{0, 0}, var_sum{0, 0};
    for (const auto& x : batches) {
      bn(x);
      const ChannelStats s = channel_stats(x);
      for (std::size_t c = 0; c < 2; ++c) {
        mean_sum[c] += s.mean[c];
        var_sum[c] += s.unbiased[c];
      }
    }
    CHECK(allclose(bn.running_mean().to(kFloat64), vec({mean_sum[0] / 3, mean_sum[1] / 3}), 1e-5,
                   1e-6));
    CHECK(
        allclose(bn.running_var().to(kFloat64), vec({var_sum[0] / 3, var_sum[1] / 3}), 1e-5, 1e-6));
    CHECK(bn.extra_repr() == "2, eps=1e-05, momentum=none, affine=true, track_running_stats=true");
  }
  SECTION("affine off: no parameters") {
    nn::BatchNorm2d bn(nn::BatchNormOptions(4).affine(false));
    CHECK(bn.parameters().empty());
    CHECK_FALSE(bn.weight().defined());
    const Tensor y = bn(randn({3, 4, 2, 2}) * 5.0 + 1.0);
    for (double m : channel_stats(y).mean) CHECK(std::abs(m) < 1e-5);
  }
  SECTION("tracking off: no buffers, batch statistics in eval too") {
    nn::BatchNorm2d bn(nn::BatchNormOptions(2).track_running_stats(false));
    CHECK(bn.buffers().empty());
    CHECK_FALSE(bn.running_mean().defined());
    bn.eval();
    const Tensor x = randn({3, 2, 2, 2}) * 4.0 + 7.0;
    const Tensor in_eval = bn(x);
    for (double m : channel_stats(in_eval).mean) CHECK(std::abs(m) < 1e-5);
    bn.train();
    CHECK(ct_test::equal(bn(x), in_eval));
  }
}

TEST_CASE("BatchNorm: shapes of 1d, 2d and 3d inputs and the state dict") {
  manual_seed(53);
  nn::BatchNorm1d bn1(4);
  CHECK(bn1(randn({8, 4})).shape() == Shape{8, 4});
  CHECK(bn1(randn({8, 4, 5})).shape() == Shape{8, 4, 5});
  nn::BatchNorm3d bn3(2);
  CHECK(bn3(randn({2, 2, 3, 3, 3})).shape() == Shape{2, 2, 3, 3, 3});
  std::vector<std::string> names;
  for (const auto& [name, t] : bn3.state_dict()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"weight", "bias", "running_mean", "running_var",
                                          "num_batches_tracked"});
  CHECK(bn3.str() ==
        "BatchNorm3d(2, eps=1e-05, momentum=0.1, affine=true, track_running_stats=true)");
}

TEST_CASE("BatchNorm: float64 gradients of input, weight and bias, train and eval") {
  manual_seed(54);
  nn::BatchNorm2d bn(3);
  bn.to(kFloat64);
  {
    NoGradGuard no_grad;
    bn.weight().copy_(tensor({1.5, -0.5, 2.0}));
    bn.bias().copy_(tensor({0.1, 0.2, -0.3}));
  }
  CT_REQUIRE_MODULE_GRADCHECK(bn, randn({3, 3, 2, 2}, kFloat64));
  nn::BatchNorm1d bn1(2);
  bn1.to(kFloat64);
  CT_REQUIRE_MODULE_GRADCHECK(bn1, randn({4, 2}, kFloat64));
  CT_REQUIRE_MODULE_GRADCHECK(bn1, randn({2, 2, 3}, kFloat64));
  bn.eval();
  CT_REQUIRE_MODULE_GRADCHECK(bn, randn({2, 3, 2, 2}, kFloat64));
}

TEST_CASE("BatchNorm: errors") {
  nn::BatchNorm2d bn(3);
  CT_REQUIRE_ERROR(bn(zeros({2, 3, 4})), "BatchNorm2d: expected input [N, C, H, W], got [2, 3, 4]");
  CT_REQUIRE_ERROR(bn(zeros({2, 4, 2, 2})),
                   "BatchNorm2d: expected input with 3 channels (dim 1), got [2, 4, 2, 2]");
  CT_REQUIRE_ERROR(bn(zeros({1, 3, 1, 1})),
                   "BatchNorm2d: expected more than 1 value per channel in training, got input "
                   "[1, 3, 1, 1]");
  bn.eval();
  CHECK(bn(zeros({1, 3, 1, 1})).shape() == Shape{1, 3, 1, 1});
  nn::BatchNorm1d bn1(3);
  CT_REQUIRE_ERROR(bn1(zeros({2, 3, 4, 5})),
                   "BatchNorm1d: expected input [N, C] or [N, C, L], got [2, 3, 4, 5]");
  CT_REQUIRE_ERROR(nn::BatchNorm1d(0), "BatchNorm1d: expected num_features > 0, got 0");
  CT_REQUIRE_ERROR(nn::BatchNorm2d(nn::BatchNormOptions(2).momentum(1.5)),
                   "BatchNorm2d: expected momentum in [0, 1], got 1.5");
  CT_REQUIRE_ERROR(nn::BatchNorm2d(nn::BatchNormOptions(2).eps(0)),
                   "BatchNorm2d: expected eps > 0, got 0");
}

}  // namespace
