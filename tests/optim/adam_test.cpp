// Tests of optim/adam: PyTorch 1.13 trajectories (tests/golden/optim.txt) of Adam (betas, eps,
// amsgrad, weight decay, two groups) and AdamW (weight decay, amsgrad), replayed in float64 to
// 1e-12 relative; the first step's closed form; AdamW's default weight decay; argument errors.
#include "optim/adam.h"

#include <cmath>
#include <vector>

#include "optim_test_util.h"

namespace {

using namespace convtape;
using namespace ct_optim_test;

template <class Options>
Options options_of(const ct_test::GoldenCase& c) {
  return Options(value(c, "hp_lr"))
      .betas(value(c, "hp_beta1"), value(c, "hp_beta2"))
      .eps(value(c, "hp_eps"))
      .weight_decay(value(c, "hp_weight_decay"))
      .amsgrad(value(c, "hp_amsgrad") != 0.0);
}

}  // namespace

TEST_CASE("Adam: trajectories match PyTorch", "[optim][adam][golden]") {
  for (const char* name : {"adam", "adam_betas_eps", "adam_amsgrad", "adam_weight_decay",
                           "adam_amsgrad_weight_decay"}) {
    DYNAMIC_SECTION(name) {
      const auto& c = golden(name);
      const Params p = initial_params();
      optim::Adam opt({p.w, p.b}, options_of<optim::AdamOptions>(c));
      require_matches_golden(train(opt, p, 12), c);
      CHECK(opt.state(p.w).scalars.at("step") == 12);
      CHECK(opt.state(p.w).buffers.count("max_exp_avg_sq") == (value(c, "hp_amsgrad") ? 1u : 0u));
    }
  }
}

TEST_CASE("Adam: two param groups match PyTorch", "[optim][adam][golden]") {
  const auto& c = golden("adam_groups");
  const Params p = initial_params();
  optim::Adam opt({optim::ParamGroup({p.w}),
                   optim::ParamGroup({p.b}, {{"lr", value(c, "hp1_lr")},
                                             {"weight_decay", value(c, "hp1_weight_decay")}})},
                  options_of<optim::AdamOptions>(c));
  require_matches_golden(train(opt, p, 12), c);
}

TEST_CASE("AdamW: trajectories match PyTorch", "[optim][adam][golden]") {
  for (const char* name : {"adamw", "adamw_strong_decay", "adamw_amsgrad"}) {
    DYNAMIC_SECTION(name) {
      const auto& c = golden(name);
      const Params p = initial_params();
      optim::AdamW opt({p.w, p.b}, options_of<optim::AdamWOptions>(c));
      require_matches_golden(train(opt, p, 12), c);
    }
  }
}

TEST_CASE("Adam and AdamW: defaults and the first step", "[optim][adam]") {
  CHECK(optim::AdamOptions().lr() == 1e-3);
  CHECK(optim::AdamOptions().weight_decay() == 0.0);
  CHECK(optim::AdamWOptions().weight_decay() == 0.01);
  CHECK(optim::AdamWOptions(0.5).beta1() == 0.9);
  CHECK(optim::AdamWOptions(0.5).beta2() == 0.999);
  CHECK(optim::AdamWOptions(0.5).eps() == 1e-8);
  CHECK_FALSE(optim::AdamOptions().amsgrad());

  // Step 1: m / (1 - b1) = g and sqrt(v / (1 - b2)) = |g|, so p moves by lr * g / (|g| + eps).
  Tensor p = tensor({1, -2, 3}, kFloat64).requires_grad_(true);
  const Tensor c = tensor({0.5, -4, 2}, kFloat64);
  SECTION("Adam") {
    optim::Adam opt({p}, optim::AdamOptions(0.1).eps(0));
    sum(mul(p, c)).backward();
    opt.step();
    CHECK(ct_test::allclose(p, tensor({0.9, -1.9, 2.9}, kFloat64), 1e-15, 1e-15));
  }
  SECTION("AdamW decays p by (1 - lr * wd) first") {
    optim::AdamW opt({p}, optim::AdamWOptions(0.1).eps(0).weight_decay(0.5));
    sum(mul(p, c)).backward();
    opt.step();
    CHECK(
        ct_test::allclose(p, tensor({0.95 - 0.1, -1.9 + 0.1, 2.85 - 0.1}, kFloat64), 1e-15, 1e-15));
  }
}

TEST_CASE("Adam and AdamW: argument errors", "[optim][adam][errors]") {
  const Tensor w = zeros({2}, kFloat64).requires_grad_(true);
  CT_REQUIRE_ERROR(optim::Adam({w}, optim::AdamOptions(-1)), "Adam: expected lr >= 0, got -1");
  CT_REQUIRE_ERROR(optim::Adam({w}, optim::AdamOptions().eps(-1e-8)),
                   "Adam: expected eps >= 0, got -1e-08");
  CT_REQUIRE_ERROR(optim::Adam({w}, optim::AdamOptions().betas(1.0, 0.9)),
                   "Adam: expected beta1 in [0, 1), got 1");
  CT_REQUIRE_ERROR(optim::Adam({w}, optim::AdamOptions().betas(0.9, -0.1)),
                   "Adam: expected beta2 in [0, 1), got -0.1");
  CT_REQUIRE_ERROR(optim::Adam({w}, optim::AdamOptions().weight_decay(-0.1)),
                   "Adam: expected weight_decay >= 0, got -0.1");
  CT_REQUIRE_ERROR(optim::AdamW({w}, optim::AdamWOptions().betas(0.9, 1.5)),
                   "AdamW: expected beta2 in [0, 1), got 1.5");
  CT_REQUIRE_ERROR(optim::AdamW({optim::ParamGroup({w}, {{"amsgrad", 0.5}})}),
                   "AdamW: expected amsgrad 0 or 1 in param group 0, got 0.5");
  CT_REQUIRE_ERROR(optim::Adam({optim::ParamGroup({w}, {{"momentum", 0.9}})}),
                   "Adam: expected hyper-parameters among (amsgrad, beta1, beta2, eps, lr, "
                   "weight_decay), got 'momentum' in param group 0");
}

TEST_CASE("Adam: amsgrad switched on after the first step starts its maximum from zero",
          "[optim][adam]") {
  Tensor p = tensor({1, 2}, kFloat64).requires_grad_(true);
  optim::Adam opt({p}, optim::AdamOptions(0.1));
  sum(mul(p, p)).backward();
  opt.step();
  CHECK(opt.state(p).buffers.count("max_exp_avg_sq") == 0);
  opt.param_groups()[0].options["amsgrad"] = 1;
  opt.zero_grad();
  sum(mul(p, p)).backward();
  opt.step();
  CHECK(ct_test::equal(opt.state(p).buffers.at("max_exp_avg_sq"),
                       opt.state(p).buffers.at("exp_avg_sq")));
}
