// Tests of optim/lr_scheduler: PyTorch 1.13 lr sequences (tests/golden/optim.txt) for StepLR,
// CosineAnnealingLR over more than two periods and ReduceLROnPlateau in each mode, threshold mode,
// cooldown, per-group min_lr and eps, on an SGD with two groups (lrs 0.1 and 0.03); state dict
// round trips that continue identically; load errors; argument errors.
#include "optim/lr_scheduler.h"

#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "optim/sgd.h"
#include "optim_test_util.h"

namespace {

using namespace convtape;
using namespace ct_optim_test;

// SGD over two one-element parameters, lrs 0.1 and 0.03 (the script's).
struct TwoGroups {
  Tensor p0 = zeros({1}, kFloat64).requires_grad_(true);
  Tensor p1 = zeros({1}, kFloat64).requires_grad_(true);
  optim::SGD opt{{optim::ParamGroup({p0}), optim::ParamGroup({p1}, {{"lr", 0.03}})},
                 optim::SGDOptions(0.1)};
};

std::vector<double> lrs(const optim::Optimizer& opt) {
  std::vector<double> v;
  for (const auto& g : opt.param_groups()) v.push_back(g.lr());
  return v;
}

void require_row(const std::vector<double>& got, const Tensor& table, std::int64_t row) {
  INFO("row " << row);
  REQUIRE(static_cast<std::int64_t>(got.size()) == table.size(1));
  for (std::int64_t g = 0; g < table.size(1); ++g)
    CHECK(got[static_cast<std::size_t>(g)] ==
          Approx(table.at<double>({row, g})).epsilon(1e-12).margin(1e-15));
}

std::unique_ptr<optim::LRScheduler> make_epoch_scheduler(const std::string& name,
                                                         optim::Optimizer& opt) {
  const auto& c = golden(name);
  if (name.starts_with("steplr"))
    return std::make_unique<optim::StepLR>(opt, static_cast<std::int64_t>(value(c, "step_size")),
                                           value(c, "gamma"));
  return std::make_unique<optim::CosineAnnealingLR>(
      opt, static_cast<std::int64_t>(value(c, "t_max")), value(c, "eta_min"));
}

optim::ReduceLROnPlateauOptions plateau_options(const ct_test::GoldenCase& c) {
  return optim::ReduceLROnPlateauOptions()
      .mode(value(c, "mode") == 0 ? optim::PlateauMode::Min : optim::PlateauMode::Max)
      .threshold_mode(value(c, "threshold_mode") == 0 ? optim::ThresholdMode::Rel
                                                      : optim::ThresholdMode::Abs)
      .factor(value(c, "factor"))
      .patience(static_cast<std::int64_t>(value(c, "patience")))
      .threshold(value(c, "threshold"))
      .cooldown(static_cast<std::int64_t>(value(c, "cooldown")))
      .eps(value(c, "eps"))
      .min_lr(c.at("min_lr").to_vector<double>());
}

}  // namespace

TEST_CASE("StepLR and CosineAnnealingLR: lr sequences match PyTorch",
          "[optim][scheduler][golden]") {
  for (const char* name : {"steplr", "steplr_one", "cosine", "cosine_zero_min"}) {
    DYNAMIC_SECTION(name) {
      const Tensor& table = golden(name).at("lr");
      TwoGroups t;
      auto sched = make_epoch_scheduler(name, t.opt);
      CHECK(sched->last_epoch() == 0);
      CHECK(sched->base_lrs() == std::vector<double>{0.1, 0.03});
      require_row(lrs(t.opt), table, 0);
      require_row(sched->last_lr(), table, 0);
      for (std::int64_t e = 1; e < table.size(0); ++e) {
        t.opt.step();
        sched->step();
        CHECK(sched->last_epoch() == e);
        require_row(lrs(t.opt), table, e);
        CHECK(sched->last_lr() == lrs(t.opt));
      }
    }
  }
}

TEST_CASE("CosineAnnealingLR: reaches eta_min at T_max and base at 2 T_max", "[optim][scheduler]") {
  TwoGroups t;
  optim::CosineAnnealingLR sched(t.opt, 5, 0.01);
  for (int e = 1; e <= 5; ++e) sched.step();
  CHECK(lrs(t.opt) == std::vector<double>{0.01, 0.01});  // 1 + cos(pi) is exactly 0
  for (int e = 6; e <= 10; ++e) sched.step();
  CHECK(t.opt.param_groups()[0].lr() == Approx(0.1).epsilon(1e-12));
  CHECK(t.opt.param_groups()[1].lr() == Approx(0.03).epsilon(1e-12));
}

TEST_CASE("ReduceLROnPlateau: lr sequences match PyTorch", "[optim][scheduler][golden]") {
  for (const char* name :
       {"plateau_min_rel", "plateau_min_abs_cooldown", "plateau_max_rel", "plateau_max_abs_eps"}) {
    DYNAMIC_SECTION(name) {
      const auto& c = golden(name);
      const auto metrics = c.at("metric").to_vector<double>();
      TwoGroups t;
      optim::ReduceLROnPlateau sched(t.opt, plateau_options(c));
      CHECK(sched.last_lr() == std::vector<double>{0.1, 0.03});
      for (std::size_t e = 0; e < metrics.size(); ++e) {
        t.opt.step();
        sched.step(metrics[e]);
        CHECK(sched.last_epoch() == static_cast<std::int64_t>(e + 1));
        require_row(lrs(t.opt), c.at("lr"), static_cast<std::int64_t>(e));
        CHECK(sched.last_lr() == lrs(t.opt));
      }
    }
  }
}

TEST_CASE("ReduceLROnPlateau: counters, best and NaN metrics", "[optim][scheduler]") {
  TwoGroups t;
  optim::ReduceLROnPlateau sched(t.opt, optim::ReduceLROnPlateauOptions().patience(1).factor(0.5));
  CHECK(sched.best() == std::numeric_limits<double>::infinity());
  sched.step(1.0);
  CHECK(sched.best() == 1.0);
  CHECK(sched.num_bad_epochs() == 0);
  sched.step(std::nan(""));  // never an improvement
  CHECK(sched.num_bad_epochs() == 1);
  CHECK(sched.best() == 1.0);
  sched.step(1.0);                     // not better by the relative threshold
  CHECK(sched.num_bad_epochs() == 0);  // reduced, counter reset
  CHECK(lrs(t.opt) == std::vector<double>{0.05, 0.015});
}

TEST_CASE("LR schedulers: state dict round trips continue identically",
          "[optim][scheduler][state]") {
  SECTION("epoch schedulers") {
    for (const char* name : {"steplr", "cosine"}) {
      INFO(name);
      TwoGroups a, b;
      auto sa = make_epoch_scheduler(name, a.opt);
      auto sb = make_epoch_scheduler(name, b.opt);
      for (int e = 0; e < 7; ++e) sa->step();
      b.opt.load_state_dict(a.opt.state_dict());
      sb->load_state_dict(sa->state_dict());
      CHECK(sb->last_epoch() == 7);
      CHECK(sb->last_lr() == sa->last_lr());
      for (int e = 0; e < 15; ++e) {
        sa->step();
        sb->step();
        CHECK(lrs(b.opt) == lrs(a.opt));
      }
    }
    TwoGroups t;
    optim::StepLR s(t.opt, 4, 0.5);
    const StateDict d = s.state_dict();
    std::vector<std::string> names;
    for (const auto& [n, v] : d) {
      names.push_back(n);
      CHECK(v.dim() == 0);
      CHECK(v.dtype() == kFloat64);
    }
    CHECK(names == std::vector<std::string>{"last_epoch", "step_size", "gamma", "base_lrs.0",
                                            "base_lrs.1", "last_lr.0", "last_lr.1"});
    // Hyper-parameters come from the dict, as in PyTorch.
    TwoGroups u;
    optim::StepLR other(u.opt, 1, 0.9);
    other.load_state_dict(d);
    CHECK(other.step_size() == 4);
    CHECK(other.gamma() == 0.5);
  }
  SECTION("ReduceLROnPlateau") {
    const auto& c = golden("plateau_min_abs_cooldown");
    const auto metrics = c.at("metric").to_vector<double>();
    TwoGroups a, b;
    optim::ReduceLROnPlateau sa(a.opt, plateau_options(c));
    optim::ReduceLROnPlateau sb(b.opt);  // default options, replaced by the load
    for (std::size_t e = 0; e < 9; ++e) sa.step(metrics[e]);
    b.opt.load_state_dict(a.opt.state_dict());
    sb.load_state_dict(sa.state_dict());
    CHECK(sb.best() == sa.best());
    CHECK(sb.cooldown_counter() == sa.cooldown_counter());
    CHECK(sb.options().threshold_mode() == optim::ThresholdMode::Abs);
    for (std::size_t e = 9; e < metrics.size(); ++e) {
      sa.step(metrics[e]);
      sb.step(metrics[e]);
      CHECK(lrs(b.opt) == lrs(a.opt));
      CHECK(sb.num_bad_epochs() == sa.num_bad_epochs());
    }
  }
}

TEST_CASE("LR schedulers: load_state_dict errors", "[optim][scheduler][state][errors]") {
  TwoGroups t;
  optim::CosineAnnealingLR s(t.opt, 10);
  s.step();
  const StateDict good = s.state_dict();
  auto replaced = [&](const std::string& name, const Tensor& v) {
    StateDict d = good;
    for (auto& kv : d)
      if (kv.first == name) kv.second = v;
    return d;
  };
  auto sc = [](double v) { return full({}, v, kFloat64); };
  const std::string op = "CosineAnnealingLR.load_state_dict: ";
  StateDict missing = good;
  missing.pop_back();
  CT_REQUIRE_ERROR(s.load_state_dict(missing), op + "expected an entry 'last_lr.1', got none");
  StateDict extra = good;
  extra.emplace_back("base_lrs.2", sc(0.1));
  CT_REQUIRE_ERROR(s.load_state_dict(extra),
                   op + "expected entries (base_lrs.0, base_lrs.1, eta_min, last_epoch, "
                        "last_lr.0, last_lr.1, t_max) for an optimizer with 2 param group(s), got "
                        "'base_lrs.2'");
  CT_REQUIRE_ERROR(s.load_state_dict(replaced("t_max", sc(0))),
                   "CosineAnnealingLR: expected a whole t_max >= 1 and below 2^63, got 0");
  CT_REQUIRE_ERROR(s.load_state_dict(replaced("t_max", sc(1e30))),
                   "CosineAnnealingLR: expected a whole t_max >= 1 and below 2^63, got 1e+30");
  CT_REQUIRE_ERROR(s.load_state_dict(replaced("last_epoch", sc(1.5))),
                   op + "expected an integer >= 0 and below 2^63 for entry 'last_epoch', got 1.5");
  CT_REQUIRE_ERROR(
      s.load_state_dict(replaced("last_epoch", sc(1e30))),
      op + "expected an integer >= 0 and below 2^63 for entry 'last_epoch', got 1e+30");
  CT_REQUIRE_ERROR(s.load_state_dict(replaced("base_lrs.1", sc(-0.1))),
                   op + "expected a finite lr >= 0 for entry 'base_lrs.1', got -0.1");
  CT_REQUIRE_ERROR(s.load_state_dict(replaced("eta_min", full({}, 0.0))),
                   op + "expected a 0-d float64 tensor for entry 'eta_min', got float32 []");
  CHECK(s.last_epoch() == 1);  // unchanged
  CHECK(s.t_max() == 10);

  optim::ReduceLROnPlateau p(t.opt);
  const StateDict pd = p.state_dict();
  StateDict bad = pd;
  for (auto& kv : bad)
    if (kv.first == "mode") kv.second = sc(2);
  CT_REQUIRE_ERROR(p.load_state_dict(bad),
                   "ReduceLROnPlateau.load_state_dict: expected 0 or 1 for entry 'mode', got 2");
  bad = pd;
  for (auto& kv : bad)
    if (kv.first == "factor") kv.second = sc(1.0);
  CT_REQUIRE_ERROR(p.load_state_dict(bad),
                   "ReduceLROnPlateau.load_state_dict: expected factor in [0, 1), got 1");
  bad = pd;
  for (auto& kv : bad)
    if (kv.first == "cooldown_counter") kv.second = sc(-1);
  CT_REQUIRE_ERROR(p.load_state_dict(bad),
                   "ReduceLROnPlateau.load_state_dict: expected an integer >= 0 and below 2^63 "
                   "for entry "
                   "'cooldown_counter', got -1");
  bad = pd;
  bad.erase(bad.begin() + 1);
  CT_REQUIRE_ERROR(p.load_state_dict(bad),
                   "ReduceLROnPlateau.load_state_dict: expected an entry 'best', got none");
  CHECK(p.options().factor() == 0.1);
}

TEST_CASE("LR schedulers: argument errors", "[optim][scheduler][errors]") {
  TwoGroups t;
  CT_REQUIRE_ERROR(optim::StepLR(t.opt, 0),
                   "StepLR: expected a whole step_size >= 1 and below 2^63, got 0");
  CT_REQUIRE_ERROR(optim::StepLR(t.opt, 2, 0.0), "StepLR: expected a finite gamma > 0, got 0");
  CT_REQUIRE_ERROR(optim::CosineAnnealingLR(t.opt, 0),
                   "CosineAnnealingLR: expected a whole t_max >= 1");
  CT_REQUIRE_ERROR(optim::CosineAnnealingLR(t.opt, 5, -1.0),
                   "CosineAnnealingLR: expected a finite eta_min >= 0, got -1");
  using O = optim::ReduceLROnPlateauOptions;
  CT_REQUIRE_ERROR(optim::ReduceLROnPlateau(t.opt, O().factor(1.0)),
                   "ReduceLROnPlateau: expected factor in [0, 1), got 1");
  CT_REQUIRE_ERROR(optim::ReduceLROnPlateau(t.opt, O().patience(-1)),
                   "ReduceLROnPlateau: expected patience >= 0, got -1");
  CT_REQUIRE_ERROR(optim::ReduceLROnPlateau(t.opt, O().threshold(-0.1)),
                   "ReduceLROnPlateau: expected a finite threshold >= 0, got -0.1");
  CT_REQUIRE_ERROR(optim::ReduceLROnPlateau(t.opt, O().cooldown(-2)),
                   "ReduceLROnPlateau: expected cooldown >= 0, got -2");
  CT_REQUIRE_ERROR(optim::ReduceLROnPlateau(t.opt, O().eps(-1)),
                   "ReduceLROnPlateau: expected eps >= 0, got -1");
  CT_REQUIRE_ERROR(optim::ReduceLROnPlateau(t.opt, O().min_lr({0.1, 0.2, 0.3})),
                   "ReduceLROnPlateau: expected one min_lr or one per param group (2), got 3");
  CT_REQUIRE_ERROR(optim::ReduceLROnPlateau(t.opt, O().min_lr(-0.5)),
                   "ReduceLROnPlateau: expected finite min_lr values >= 0, got -0.5");
  SECTION("groups added after the scheduler") {
    optim::StepLR s(t.opt, 2);
    optim::ReduceLROnPlateau p(t.opt);
    t.opt.add_param_group(optim::ParamGroup({zeros({1}, kFloat64)}));
    CT_REQUIRE_ERROR(s.step(), "StepLR: expected the optimizer's 2 param group(s), got 3");
    CT_REQUIRE_ERROR(p.step(1.0), "ReduceLROnPlateau: expected the optimizer's 2 param group(s)");
  }
}
