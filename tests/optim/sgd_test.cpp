// Tests of optim/sgd: PyTorch 1.13 trajectories (tests/golden/optim.txt) for plain SGD, momentum,
// dampening, Nesterov, weight decay, all together and two param groups, replayed in float64 to
// 1e-12 relative; the first step's exact values; and every argument error.
#include "optim/sgd.h"

#include <vector>

#include "optim_test_util.h"

namespace {

using namespace convtape;
using namespace ct_optim_test;

optim::SGDOptions options_of(const ct_test::GoldenCase& c) {
  return optim::SGDOptions(value(c, "hp_lr"))
      .momentum(value(c, "hp_momentum"))
      .dampening(value(c, "hp_dampening"))
      .nesterov(value(c, "hp_nesterov") != 0.0)
      .weight_decay(value(c, "hp_weight_decay"));
}

}  // namespace

TEST_CASE("SGD: trajectories match PyTorch", "[optim][sgd][golden]") {
  for (const char* name : {"sgd_plain", "sgd_momentum", "sgd_dampening", "sgd_nesterov",
                           "sgd_weight_decay", "sgd_all"}) {
    DYNAMIC_SECTION(name) {
      const auto& c = golden(name);
      const Params p = initial_params();
      optim::SGD opt({p.w, p.b}, options_of(c));
      require_matches_golden(train(opt, p, 12), c);
    }
  }
}

TEST_CASE("SGD: two param groups with their own lr and momentum match PyTorch",
          "[optim][sgd][golden]") {
  const auto& c = golden("sgd_groups");
  const Params p = initial_params();
  optim::SGD opt({optim::ParamGroup({p.w}),
                  optim::ParamGroup(
                      {p.b}, {{"lr", value(c, "hp1_lr")}, {"momentum", value(c, "hp1_momentum")}})},
                 options_of(c));
  REQUIRE(opt.param_groups().size() == 2);
  CHECK(opt.param_groups()[0].lr() == value(c, "hp_lr"));
  CHECK(opt.param_groups()[1].lr() == value(c, "hp1_lr"));
  CHECK(opt.param_groups()[1].get("momentum") == value(c, "hp1_momentum"));
  CHECK(opt.param_groups()[1].get("dampening") == 0.0);  // from the defaults
  require_matches_golden(train(opt, p, 12), c);
}

TEST_CASE("SGD: exact small steps", "[optim][sgd]") {
  // p = [1, 2], grad = [4, -8] each step (loss = sum(p * [4, -8])); values are exact in binary.
  Tensor p = tensor({1, 2}, kFloat64).requires_grad_(true);
  const Tensor c = tensor({4, -8}, kFloat64);
  auto step = [&](optim::Optimizer& opt) {
    opt.zero_grad();
    sum(mul(p, c)).backward();
    opt.step();
  };
  SECTION("plain") {
    optim::SGD opt({p}, optim::SGDOptions(0.25));
    step(opt);
    CHECK(ct_test::equal(p, tensor({0, 4}, kFloat64)));
    CHECK(opt.state(p).empty());  // no momentum, no state
  }
  SECTION("momentum with dampening: first buffer is g, then m * b + (1 - d) * g") {
    optim::SGD opt({p}, optim::SGDOptions(0.25).momentum(0.5).dampening(0.5));
    step(opt);
    CHECK(ct_test::equal(opt.state(p).buffers.at("momentum_buffer"), tensor({4, -8}, kFloat64)));
    CHECK(ct_test::equal(p, tensor({0, 4}, kFloat64)));
    step(opt);  // b = 0.5 * [4, -8] + 0.5 * [4, -8] = [4, -8]
    CHECK(ct_test::equal(opt.state(p).buffers.at("momentum_buffer"), tensor({4, -8}, kFloat64)));
    CHECK(ct_test::equal(p, tensor({-1, 6}, kFloat64)));
  }
  SECTION("nesterov and weight decay") {
    optim::SGD opt({p}, optim::SGDOptions(0.125).momentum(0.5).nesterov(true).weight_decay(2));
    step(opt);  // g = [4, -8] + 2 * [1, 2] = [6, -4]; b = g; d = g + 0.5 b = [9, -6]
    CHECK(ct_test::equal(p, tensor({1 - 9.0 / 8, 2 + 6.0 / 8}, kFloat64)));
  }
}

TEST_CASE("SGD: argument errors", "[optim][sgd][errors]") {
  const Tensor w = zeros({2}, kFloat64).requires_grad_(true);
  CT_REQUIRE_ERROR(optim::SGD({w}, optim::SGDOptions(-0.1)), "SGD: expected lr >= 0, got -0.1");
  CT_REQUIRE_ERROR(optim::SGD({w}, optim::SGDOptions(0.1).momentum(-0.5)),
                   "SGD: expected momentum >= 0, got -0.5");
  CT_REQUIRE_ERROR(optim::SGD({w}, optim::SGDOptions(0.1).weight_decay(-1)),
                   "SGD: expected weight_decay >= 0, got -1");
  CT_REQUIRE_ERROR(optim::SGD({w}, optim::SGDOptions(0.1).nesterov(true)),
                   "SGD: expected momentum > 0 and dampening 0 with nesterov, got momentum 0 and "
                   "dampening 0");
  CT_REQUIRE_ERROR(
      optim::SGD({w}, optim::SGDOptions(0.1).momentum(0.9).dampening(0.1).nesterov(true)),
      "SGD: expected momentum > 0 and dampening 0 with nesterov, got momentum 0.9 "
      "and dampening 0.1");
  CT_REQUIRE_ERROR(optim::SGD({w}, optim::SGDOptions(NAN)), "SGD: expected lr >= 0, got nan");
  SECTION("in a group") {
    CT_REQUIRE_ERROR(
        optim::SGD({optim::ParamGroup({w}, {{"momentum", -1}})}, optim::SGDOptions(0.1)),
        "SGD: expected momentum >= 0 in param group 0, got -1");
    CT_REQUIRE_ERROR(optim::SGD({optim::ParamGroup({w}, {{"nesterov", 2}})},
                                optim::SGDOptions(0.1).momentum(0.9)),
                     "SGD: expected nesterov 0 or 1 in param group 0, got 2");
  }
  SECTION("written through param_groups(), caught by step") {
    optim::SGD opt({w}, optim::SGDOptions(0.1));
    opt.param_groups()[0].options["lr"] = -2;
    CT_REQUIRE_ERROR(opt.step(), "SGD: expected lr >= 0 in param group 0, got -2");
    opt.param_groups()[0].options["lr"] = 0.1;
    opt.param_groups()[0].options["nesterv"] = 1;
    CT_REQUIRE_ERROR(opt.step(), "got 'nesterv' in param group 0");
    opt.param_groups()[0].options.erase("nesterv");
    opt.param_groups()[0].options.erase("dampening");
    CT_REQUIRE_ERROR(opt.step(), "SGD: expected a hyper-parameter 'dampening' in param group 0");
  }
}
