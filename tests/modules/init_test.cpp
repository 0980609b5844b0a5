// Tests of modules/init: fans of linear and conv weights (PyTorch's rule), gains, the exact bound
// and std formulas of every initialiser, statistics of large draws with fixed seeds (tolerances
// several standard errors wide, so a wrong formula fails), determinism per generator, Scheme and
// its PuzzleLib mapping, the layers' documented defaults, and the errors.
#include <algorithm>
#include <cmath>
#include <vector>

#include "support/test_util.h"

namespace {

using namespace convtape;
namespace init = nn::init;

struct Stats {
  double mean = 0, std = 0, min = 0, max = 0;
};

Stats stats(const Tensor& t) {
  const std::vector<double> v = t.to(kFloat64).to_vector<double>();
  Stats s;
  for (double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  for (double x : v) s.std += (x - s.mean) * (x - s.mean);
  s.std = std::sqrt(s.std / static_cast<double>(v.size()));
  s.min = *std::min_element(v.begin(), v.end());
  s.max = *std::max_element(v.begin(), v.end());
  return s;
}

// U(-b, b) over n draws: every value inside, the extremes within 40 / n of b (missing that has
// probability e^-20), mean and std within five standard errors (std b / sqrt(3), whose sample
// value has standard error b / sqrt(15 n)).
void check_uniform_bound(const Tensor& t, double b) {
  const Stats s = stats(t);
  const double n = static_cast<double>(t.numel());
  INFO("bound " << b << " min " << s.min << " max " << s.max << " std " << s.std);
  CHECK(s.min >= -b);
  CHECK(s.max <= b);
  CHECK(s.max > (1.0 - 40.0 / n) * b);
  CHECK(s.min < -(1.0 - 40.0 / n) * b);
  CHECK(std::abs(s.mean) < 5.0 * b / std::sqrt(3.0 * n));
  CHECK(std::abs(s.std - b / std::sqrt(3.0)) < 5.0 * b / std::sqrt(15.0 * n));
}

// N(0, sd^2) over n draws: mean and std within five standard errors (sd / sqrt(n) and
// sd / sqrt(2 n)).
void check_normal_std(const Tensor& t, double sd) {
  const Stats s = stats(t);
  const double n = static_cast<double>(t.numel());
  INFO("std " << sd << " measured mean " << s.mean << " std " << s.std);
  CHECK(std::abs(s.mean) < 5.0 * sd / std::sqrt(n));
  CHECK(std::abs(s.std - sd) < 5.0 * sd / std::sqrt(2.0 * n));
}

TEST_CASE("init: fans follow PyTorch's rule for linear and conv weights") {
  const auto conv = init::calculate_fans(Shape{32, 16, 3, 3});
  CHECK(conv.fan_in == 144);
  CHECK(conv.fan_out == 288);
  const auto grouped = init::calculate_fans(Shape{32, 4, 2, 2});  // groups 4: C/groups = 4
  CHECK(grouped.fan_in == 16);
  CHECK(grouped.fan_out == 128);
  const auto lin = init::calculate_fans(zeros({10, 20}));
  CHECK(lin.fan_in == 20);
  CHECK(lin.fan_out == 10);
  const auto conv3 = init::calculate_fans(Shape{4, 2, 3, 5, 7});
  CHECK(conv3.fan_in == 210);
  CHECK(conv3.fan_out == 420);
  CHECK(init::select_fan(conv, init::FanMode::FanIn) == 144.0);
  CHECK(init::select_fan(conv, init::FanMode::FanOut) == 288.0);
  CHECK(init::select_fan(conv, init::FanMode::FanAvg) == 216.0);
  CT_REQUIRE_ERROR(init::calculate_fans(Shape{5}),
                   "calculate_fans: expected a weight of at least 2 dims ([out, in, *k]), got [5]");
}

TEST_CASE("init: calculate_gain") {
  for (const char* linear : {"linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                             "conv_transpose2d", "conv_transpose3d", "sigmoid"})
    CHECK(init::calculate_gain(linear) == 1.0);
  CHECK(init::calculate_gain("tanh") == 5.0 / 3.0);
  CHECK(init::calculate_gain("relu") == std::sqrt(2.0));
  CHECK(init::calculate_gain("leaky_relu") == std::sqrt(2.0 / (1.0 + 0.01 * 0.01)));
  CHECK(init::calculate_gain("leaky_relu", 0.2) == std::sqrt(2.0 / 1.04));
  CHECK(init::calculate_gain("leaky_relu", std::sqrt(5.0)) == Approx(std::sqrt(1.0 / 3.0)));
  CHECK(init::calculate_gain("selu") == 0.75);
  CT_REQUIRE_ERROR(init::calculate_gain("gelu"), "calculate_gain: expected linear, conv1d");
}

TEST_CASE("init: uniform_, normal_, constant_ with statistics from large draws") {
  Generator gen(11);
  Tensor t = empty({400, 500});
  init::uniform_(t, -0.5, 1.5, &gen);
  Stats s = stats(t);
  CHECK(s.min >= -0.5);
  CHECK(s.max < 1.5);
  CHECK(s.min < -0.49);
  CHECK(s.max > 1.49);
  CHECK(std::abs(s.mean - 0.5) < 0.01);
  CHECK(std::abs(s.std - 2.0 / std::sqrt(12.0)) < 0.005);

  init::normal_(t, 3.0, 2.0, &gen);
  s = stats(t);
  CHECK(std::abs(s.mean - 3.0) < 0.02);
  CHECK(std::abs(s.std - 2.0) < 0.02);

  // In place on a parameter that requires grad, grad mode on; the handle is returned.
  Tensor p = zeros({3, 4}, kFloat64).requires_grad_();
  CHECK(init::constant_(p, 2.5).same(p));
  CHECK(p.to_vector<double>() == std::vector<double>(12, 2.5));
  init::zeros_(p);
  CHECK(p.to_vector<double>() == std::vector<double>(12, 0.0));
  init::ones_(p);
  CHECK(p.to_vector<double>() == std::vector<double>(12, 1.0));
  CHECK(p.requires_grad());
  CHECK(init::normal_(p, 0.0, 1.0).same(p));

  CT_REQUIRE_ERROR(init::uniform_(zeros({2}, kInt64)),
                   "uniform_: expected a defined floating-point tensor, got int64");
  CT_REQUIRE_ERROR(init::normal_(Tensor()), "normal_: expected a defined floating-point tensor");
  CT_REQUIRE_ERROR(init::uniform_(zeros({2}), 1.0, 0.0), "uniform: expected low <= high");
  CT_REQUIRE_ERROR(init::normal_(zeros({2}), 0.0, -1.0), "normal: expected std >= 0");
}

TEST_CASE("init: xavier (Glorot) uniform and normal") {
  Generator gen(12);
  Tensor w = empty({128, 64, 3, 3});  // fan_in 576, fan_out 1152
  init::xavier_uniform_(w, 1.0, &gen);
  check_uniform_bound(w, std::sqrt(6.0 / 1728.0));
  init::xavier_uniform_(w, 2.0, &gen);
  check_uniform_bound(w, 2.0 * std::sqrt(6.0 / 1728.0));
  init::xavier_normal_(w, 1.0, &gen);
  check_normal_std(w, std::sqrt(2.0 / 1728.0));
  init::xavier_normal_(w, init::calculate_gain("tanh"), &gen);
  check_normal_std(w, 5.0 / 3.0 * std::sqrt(2.0 / 1728.0));
  Tensor lin = empty({300, 700}, kFloat64);
  init::xavier_uniform_(lin, 1.0, &gen);
  check_uniform_bound(lin, std::sqrt(6.0 / 1000.0));
}

TEST_CASE("init: kaiming (He) uniform and normal, fan modes and nonlinearities") {
  Generator gen(13);
  Tensor w = empty({128, 64, 3, 3});  // fan_in 576, fan_out 1152
  init::kaiming_uniform_(w, 0.0, init::FanMode::FanIn, "relu", &gen);
  check_uniform_bound(w, std::sqrt(6.0 / 576.0));
  init::kaiming_uniform_(w, 0.0, init::FanMode::FanOut, "relu", &gen);
  check_uniform_bound(w, std::sqrt(6.0 / 1152.0));
  // PyTorch's layer default: a = sqrt(5) gives exactly 1 / sqrt(fan_in).
  init::kaiming_uniform_(w, std::sqrt(5.0), init::FanMode::FanIn, "leaky_relu", &gen);
  check_uniform_bound(w, 1.0 / std::sqrt(576.0));
  // The default nonlinearity is leaky_relu with slope a = 0: gain sqrt(2).
  init::kaiming_uniform_(w, 0.0, init::FanMode::FanIn, "leaky_relu", &gen);
  check_uniform_bound(w, std::sqrt(6.0 / 576.0));
  init::kaiming_normal_(w, 0.0, init::FanMode::FanIn, "relu", &gen);
  check_normal_std(w, std::sqrt(2.0 / 576.0));
  init::kaiming_normal_(w, 0.0, init::FanMode::FanOut, "linear", &gen);
  check_normal_std(w, std::sqrt(1.0 / 1152.0));
  init::kaiming_normal_(w, 0.0, init::FanMode::FanAvg, "linear", &gen);
  check_normal_std(w, std::sqrt(1.0 / 864.0));
  init::kaiming_normal_(w, 0.0, init::FanMode::FanIn, "tanh", &gen);
  check_normal_std(w, 5.0 / 3.0 / std::sqrt(576.0));
  CT_REQUIRE_ERROR(init::kaiming_uniform_(zeros({3, 0})),
                   "kaiming_uniform_: expected a tensor with a positive fan_in");
}

TEST_CASE("init: one seed, one draw; the default generator follows manual_seed") {
  Generator a(99), b(99);
  const Tensor x = init::kaiming_normal_(empty({5, 7}), 0.0, init::FanMode::FanIn, "relu", &a);
  const Tensor y = init::kaiming_normal_(empty({5, 7}), 0.0, init::FanMode::FanIn, "relu", &b);
  CHECK(ct_test::equal(x, y));
  manual_seed(5);
  const Tensor u = init::xavier_uniform_(empty({5, 7}));
  manual_seed(5);
  const Tensor v = init::xavier_uniform_(empty({5, 7}));
  CHECK(ct_test::equal(u, v));
  CHECK_FALSE(ct_test::equal(u, x));
}

TEST_CASE("init: Scheme values apply the same formulas and print themselves") {
  Generator gen(14);
  Tensor w = empty({256, 64, 5});  // fan_in 320, fan_out 1280
  init::Scheme::xavier_uniform().apply(w, &gen);
  check_uniform_bound(w, std::sqrt(6.0 / 1600.0));
  init::Scheme::kaiming_normal(0.0, init::FanMode::FanOut, "relu").apply(w, &gen);
  check_normal_std(w, std::sqrt(2.0 / 1280.0));
  init::Scheme::pytorch_default().apply(w, &gen);
  check_uniform_bound(w, 1.0 / std::sqrt(320.0));
  // Fans given explicitly, as a layer does for its bias.
  Tensor bias = empty({100000});
  init::Scheme::fan_in_uniform().apply(bias, init::Fans{400, 10}, &gen);
  check_uniform_bound(bias, 0.05);
  init::Scheme::normal(1.0, 0.5).apply(bias, &gen);
  CHECK(std::abs(stats(bias).mean - 1.0) < 0.01);
  init::Scheme::constant(-2.0).apply(bias);
  CHECK(stats(bias).max == -2.0);

  CHECK(init::Scheme::pytorch_default().str() ==
        "kaiming_uniform(a=2.23607, mode=fan_in, nonlinearity=leaky_relu)");
  CHECK(init::Scheme::uniform(-1, 1).str() == "uniform(a=-1, b=1)");
  CHECK(init::Scheme::xavier_normal(2).str() == "xavier_normal(gain=2)");
  CHECK(init::Scheme::zeros().str() == "constant(0)");
  CT_REQUIRE_ERROR(init::Scheme::kaiming_uniform(0.0, init::FanMode::FanIn, "swish"),
                   "calculate_gain: expected linear");
  CT_REQUIRE_ERROR(init::Scheme::uniform(1, 0), "Scheme::uniform: expected a <= b");
}

TEST_CASE("init: PuzzleLib's schemes map onto the initialisers") {
  using K = init::Scheme::Kind;
  Generator gen(15);
  Tensor w = empty({64, 32, 4, 4});  // fan_in 512, fan_out 1024
  const auto xu = init::Scheme::puzzlelib("xavier_uniform");
  CHECK(xu.kind() == K::KaimingUniform);
  CHECK(xu.nonlinearity() == "linear");
  xu.apply(w, &gen);
  check_uniform_bound(w, std::sqrt(3.0 / 512.0));
  init::Scheme::puzzlelib({"xavier_uniform", "out"}).apply(w, &gen);
  check_uniform_bound(w, std::sqrt(3.0 / 1024.0));
  init::Scheme::puzzlelib({"xavier_uniform", "avg"}).apply(w, &gen);
  check_uniform_bound(w, std::sqrt(6.0 / 1536.0));  // Glorot's bound
  init::Scheme::puzzlelib("").apply(w, &gen);       // PuzzleLib's None
  check_uniform_bound(w, std::sqrt(3.0 / 512.0));
  init::Scheme::puzzlelib("xavier").apply(w, &gen);
  check_normal_std(w, std::sqrt(1.0 / 512.0));
  init::Scheme::puzzlelib("xavier_normal").apply(w, &gen);
  check_normal_std(w, std::sqrt(1.0 / 512.0));
  init::Scheme::puzzlelib("he").apply(w, &gen);
  check_normal_std(w, std::sqrt(2.0 / 512.0));
  init::Scheme::puzzlelib({"he", "out"}).apply(w, &gen);
  check_normal_std(w, std::sqrt(2.0 / 1024.0));
  // wscale enters only gaussian and uniform.
  init::Scheme::puzzlelib("gaussian", 0.3).apply(w, &gen);
  check_normal_std(w, 0.3);
  init::Scheme::puzzlelib("uniform", 0.3).apply(w, &gen);
  check_uniform_bound(w, 0.3);
  init::Scheme::puzzlelib("he", 100.0).apply(w, &gen);
  check_normal_std(w, std::sqrt(2.0 / 512.0));
  init::Scheme::puzzlelib("none").apply(w, &gen);
  CHECK(stats(w).max == 0.0);
  CHECK(stats(w).min == 0.0);
  CT_REQUIRE_ERROR(init::Scheme::puzzlelib("lecun"),
                   "Scheme::puzzlelib: expected initscheme 'xavier_uniform'");
  CT_REQUIRE_ERROR(init::Scheme::puzzlelib({"he", "both"}),
                   "Scheme::puzzlelib: expected factor 'in', 'out' or 'avg', got 'both'");
}

TEST_CASE("init: layer defaults are PyTorch's, and options replace them") {
  manual_seed(16);
  nn::Conv2d conv(nn::Conv2dOptions(64, 128, 3));  // fan_in 576
  check_uniform_bound(conv.weight(), 1.0 / 24.0);
  const Stats b = stats(conv.bias());
  CHECK(b.max <= 1.0 / 24.0);
  CHECK(b.min >= -1.0 / 24.0);
  CHECK(b.max - b.min > 1.5 / 24.0);  // 128 draws spread over the interval

  nn::Linear lin(400, 300);  // fan_in 400
  check_uniform_bound(lin.weight(), 0.05);
  CHECK(stats(lin.bias()).max <= 0.05);
  CHECK(stats(lin.bias()).min >= -0.05);

  // ConvTranspose: weight [C_in, C_out/groups, *k], fan_in = weight.size(1) * prod(k).
  nn::ConvTranspose2d up(nn::ConvTranspose2dOptions(256, 64, 4).groups(2));
  CHECK(up.weight().shape() == Shape{256, 32, 4, 4});
  check_uniform_bound(up.weight(), 1.0 / std::sqrt(512.0));

  nn::Conv2d he(nn::Conv2dOptions(64, 128, 3)
                    .init(init::Scheme::kaiming_normal(0.0, init::FanMode::FanOut, "relu"))
                    .bias_init(init::Scheme::constant(0.1)));
  check_normal_std(he.weight(), std::sqrt(2.0 / 1152.0));
  CHECK(stats(he.bias()).min == Approx(0.1));
  CHECK(stats(he.bias()).max == Approx(0.1));

  // reset_parameters draws again, from a given generator if any.
  Generator g1(3), g2(3);
  nn::Linear a(20, 10), c(20, 10);
  a.reset_parameters(&g1);
  c.reset_parameters(&g2);
  CHECK(ct_test::equal(a.weight(), c.weight()));
  CHECK(ct_test::equal(a.bias(), c.bias()));
}

}  // namespace
