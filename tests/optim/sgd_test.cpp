// Tests of optim/sgd: PyTorch 1.13 trajectories (tests/golden/optim.txt) for plain SGD, momentum,
// dampening, Nesterov, weight decay, all together and two param groups, replayed in float64 to
// 1e-12 relative; the first step's exact values; the fused step (backend::sgd_step_) against an
// unfused float64 reference in plain loops, for every option, both floating dtypes and sizes 0, 1,
// odd and split across threads, bit for bit against the unfused tensor ops it replaces, and with ==
// where every value is exact by construction; strided parameters and gradients; the step as an
// in-place change; and every argument error.
#include "optim/sgd.h"

#include <cmath>
#include <cstdint>
#include <string>
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

// The unfused step in float64, one plain loop per step: the fused kernel's reference.
struct ReferenceSgd {
  std::vector<double> p, buf;  // buf is empty until the first step with momentum

  void step(const std::vector<double>& g, const optim::SGDOptions& o) {
    const bool first = buf.empty();
    if (o.momentum() != 0.0 && first) buf.resize(p.size());
    for (std::size_t i = 0; i < p.size(); ++i) {
      double d = g[i];
      if (o.weight_decay() != 0.0) d = d + o.weight_decay() * p[i];
      if (o.momentum() != 0.0) {
        buf[i] = first ? d : o.momentum() * buf[i] + (1.0 - o.dampening()) * d;
        d = o.nesterov() ? d + o.momentum() * buf[i] : buf[i];
      }
      p[i] = p[i] - o.lr() * d;
    }
  }
};

struct FusedCase {
  std::string name;
  optim::SGDOptions options;
};

const std::vector<FusedCase>& fused_cases() {
  static const std::vector<FusedCase> cases = {
      {"plain", optim::SGDOptions(0.1)},
      {"weight decay", optim::SGDOptions(0.1).weight_decay(0.01)},
      {"momentum", optim::SGDOptions(0.1).momentum(0.9)},
      {"momentum and dampening", optim::SGDOptions(0.05).momentum(0.9).dampening(0.25)},
      {"nesterov", optim::SGDOptions(0.1).momentum(0.9).nesterov(true)},
      {"nesterov and weight decay",
       optim::SGDOptions(0.1).momentum(0.8).nesterov(true).weight_decay(0.02)},
      {"dampening and weight decay",
       optim::SGDOptions(0.2).momentum(0.5).dampening(0.5).weight_decay(0.1)},
  };
  return cases;
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

TEST_CASE("SGD: the fused step matches the unfused float64 reference", "[optim][sgd][fused]") {
  // 2^18 + 3 elements: at cpu/optim.cpp's threshold for splitting the pass across threads, and
  // not a multiple of any vector width.
  for (const DType dt : {kFloat32, kFloat64}) {
    for (const std::int64_t n :
         {std::int64_t{0}, std::int64_t{1}, std::int64_t{37}, (std::int64_t{1} << 18) + 3}) {
      for (const auto& c : fused_cases()) {
        INFO(dtype_name(dt) << ", n " << n << ", " << c.name);
        manual_seed(static_cast<std::uint64_t>(n) + 17);
        Tensor p = uniform({n}, -1, 1, dt).requires_grad_(true);
        ReferenceSgd ref{p.to_vector<double>(), {}};
        optim::SGD opt({p}, c.options);
        // float32 rounds each of some ten operations per step to 2^-24 relative, over three steps.
        const double rtol = dt == kFloat64 ? 1e-14 : 1e-5, atol = dt == kFloat64 ? 1e-15 : 1e-6;
        for (int step = 0; step < 3; ++step) {
          const Tensor g = uniform({n}, -2, 2, dt);
          p.set_grad(g);
          opt.step();
          ref.step(g.to_vector<double>(), c.options);
          INFO("step " << step + 1);
          REQUIRE(p.dtype() == dt);
          CHECK(ct_test::allclose(p.detach().to(kFloat64), from_vector(ref.p, {n}), rtol, atol));
          if (c.options.momentum() != 0.0) {
            const Tensor& buf = opt.state(p).buffers.at("momentum_buffer");
            REQUIRE(buf.dtype() == dt);
            CHECK(ct_test::allclose(buf.to(kFloat64), from_vector(ref.buf, {n}), rtol, atol));
          } else {
            CHECK(opt.state(p).empty());
          }
        }
      }
    }
  }
}

TEST_CASE("SGD: the fused step gives the bits of the unfused tensor ops", "[optim][sgd][fused]") {
  // The step optim/sgd.cpp ran before the kernel, op by op (core/kernel_args.h's SgdStep promises
  // the same roundings).
  auto unfused = [](Tensor& p, const Tensor& g, Tensor& buf, const optim::SGDOptions& o) {
    NoGradGuard no_grad;
    Tensor d = o.weight_decay() != 0.0 ? add(g, mul(p, o.weight_decay())) : g;
    if (o.momentum() != 0.0) {
      if (!buf.defined()) {
        buf = d.clone();
      } else {
        buf.mul_(o.momentum()).add_(d, 1.0 - o.dampening());
      }
      d = o.nesterov() ? add(d, mul(buf, o.momentum())) : buf;
    }
    p.add_(d, -o.lr());
  };
  for (const DType dt : {kFloat32, kFloat64}) {
    for (const std::int64_t n : {std::int64_t{37}, (std::int64_t{1} << 18) + 3}) {
      for (const auto& c : fused_cases()) {
        INFO(dtype_name(dt) << ", n " << n << ", " << c.name);
        manual_seed(static_cast<std::uint64_t>(n) + 29);
        Tensor p = uniform({n}, -1, 1, dt).requires_grad_(true);
        Tensor q = p.detach().clone(), buf;
        optim::SGD opt({p}, c.options);
        for (int step = 0; step < 3; ++step) {
          const Tensor g = uniform({n}, -2, 2, dt);
          p.set_grad(g);
          opt.step();
          unfused(q, g, buf, c.options);
          INFO("step " << step + 1);
          CHECK(ct_test::equal(p.detach(), q));
          if (c.options.momentum() != 0.0)
            CHECK(ct_test::equal(opt.state(p).buffers.at("momentum_buffer"), buf));
        }
      }
    }
  }
}

TEST_CASE("SGD: the fused step is exact where every value is exact by construction",
          "[optim][sgd][fused]") {
  // lr, momentum, dampening and weight decay are powers of two (or 0) and the parameters and
  // gradients small multiples of 1/4, so that every intermediate of two steps is a dyadic rational
  // of a few bits: exact in float32 and float64 alike, and so equal (==) to the reference.
  const std::vector<double> p0 = {1, 2, -3, 0.5, 4, -0.25, 0};
  const std::vector<double> g1 = {4, -8, 2, 0.25, 0, 1, -0.5};
  const std::vector<double> g2 = {-2, 1, 0.5, -4, 8, 0.75, 3};
  const Shape shape = {7};
  const std::vector<FusedCase> cases = {
      {"plain", optim::SGDOptions(0.5)},
      {"weight decay", optim::SGDOptions(0.5).weight_decay(0.25)},
      {"momentum", optim::SGDOptions(0.5).momentum(0.5)},
      {"momentum and dampening", optim::SGDOptions(0.5).momentum(0.5).dampening(0.5)},
      {"nesterov and weight decay",
       optim::SGDOptions(0.5).momentum(0.5).nesterov(true).weight_decay(0.25)},
  };
  for (const DType dt : {kFloat32, kFloat64}) {
    for (const auto& c : cases) {
      INFO(dtype_name(dt) << ", " << c.name);
      Tensor p = from_vector(p0, shape).to(dt).requires_grad_(true);
      ReferenceSgd ref{p0, {}};
      optim::SGD opt({p}, c.options);
      for (const auto* g : {&g1, &g2}) {
        p.set_grad(from_vector(*g, shape).to(dt));
        opt.step();
        ref.step(*g, c.options);
        for (const double v : ref.p) REQUIRE(static_cast<double>(static_cast<float>(v)) == v);
        CHECK(ct_test::equal(p.detach(), from_vector(ref.p, shape).to(dt)));
        if (c.options.momentum() != 0.0)
          CHECK(ct_test::equal(opt.state(p).buffers.at("momentum_buffer"),
                               from_vector(ref.buf, shape).to(dt)));
      }
    }
  }
  SECTION("by hand: momentum 0.5, dampening 0.5, lr 0.5") {
    // Step 1: b = g1 = [4, -8, ...], p = p0 - 0.5 b = [-1, 6, ...]. Step 2: b = 0.5 b + 0.5 g2 =
    // [1, -3.5, ...], p = [-1.5, 7.75, ...].
    Tensor p = from_vector(p0, shape).to(kFloat32).requires_grad_(true);
    optim::SGD opt({p}, optim::SGDOptions(0.5).momentum(0.5).dampening(0.5));
    p.set_grad(from_vector(g1, shape).to(kFloat32));
    opt.step();
    CHECK(p.at<float>({0}) == -1.0f);
    CHECK(p.at<float>({1}) == 6.0f);
    p.set_grad(from_vector(g2, shape).to(kFloat32));
    opt.step();
    CHECK(opt.state(p).buffers.at("momentum_buffer").at<float>({1}) == -3.5f);
    CHECK(p.at<float>({0}) == -1.5f);
    CHECK(p.at<float>({1}) == 7.75f);
  }
}

TEST_CASE("SGD: strided parameters and gradients step like contiguous ones",
          "[optim][sgd][fused]") {
  const optim::SGDOptions o = optim::SGDOptions(0.1).momentum(0.9).weight_decay(0.01);
  for (const DType dt : {kFloat32, kFloat64}) {
    INFO(dtype_name(dt));
    manual_seed(5);
    // A transposed view made a leaf: the step goes through a contiguous copy and writes back into
    // the view's storage.
    const Tensor base = uniform({4, 6}, -1, 1, dt);
    Tensor p = base.t().requires_grad_(true);
    REQUIRE_FALSE(p.is_contiguous());
    Tensor q = p.detach().contiguous().requires_grad_(true);
    optim::SGD strided({p}, o), contiguous({q}, o);
    for (int step = 0; step < 2; ++step) {
      const Tensor g = uniform({4, 6}, -1, 1, dt).t();  // a strided gradient as well
      p.set_grad(g);
      q.set_grad(g.contiguous());
      strided.step();
      contiguous.step();
      CHECK(ct_test::equal(p.detach().contiguous(), q.detach()));
      CHECK(ct_test::equal(base.t().contiguous(), q.detach()));
      CHECK(ct_test::equal(strided.state(p).buffers.at("momentum_buffer"),
                           contiguous.state(q).buffers.at("momentum_buffer")));
    }
  }
}

TEST_CASE("SGD: a step is an in-place change that backward through a stale graph reports",
          "[optim][sgd][fused]") {
  Tensor p = tensor({1, 2}, kFloat64).requires_grad_(true);
  const Tensor loss = sum(mul(p, p));  // saves p
  optim::SGD opt({p}, optim::SGDOptions(0.5));
  p.set_grad(tensor({1, 1}, kFloat64));
  opt.step();
  CHECK(ct_test::equal(p.detach(), tensor({0.5, 1.5}, kFloat64)));
  CT_REQUIRE_ERROR(loss.backward(), "modified in place");
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
