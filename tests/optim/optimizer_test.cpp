// Tests of optim/optimizer (through SGD and Adam): zero_grad, parameters without a gradient,
// groups and their defaults, lr() / set_lr, add_param_group, the float32 path, parameter
// checks, and the state dict: its layout, a save / load / continue round trip that reproduces an
// uninterrupted run bit for bit, and every load error (with nothing changed by a failed load).
#include "optim/optimizer.h"

#include <vector>

#include "optim/adam.h"
#include "optim/sgd.h"
#include "optim_test_util.h"

namespace {

using namespace convtape;
using namespace ct_optim_test;

StateDict without(StateDict d, const std::string& name) {
  std::erase_if(d, [&](const auto& kv) { return kv.first == name; });
  return d;
}

StateDict replaced(StateDict d, const std::string& name, const Tensor& t) {
  for (auto& kv : d)
    if (kv.first == name) kv.second = t;
  return d;
}

bool has(const StateDict& d, const std::string& name) {
  for (const auto& kv : d)
    if (kv.first == name) return true;
  return false;
}

}  // namespace

TEST_CASE("Optimizer: zero_grad drops every gradient", "[optim]") {
  const Params p = initial_params();
  optim::SGD opt({p.w, p.b}, optim::SGDOptions(0.1));
  loss_of(p).backward();
  REQUIRE(p.w.grad().defined());
  REQUIRE(p.b.grad().defined());
  opt.zero_grad();
  CHECK_FALSE(p.w.grad().defined());
  CHECK_FALSE(p.b.grad().defined());
  opt.step();  // nothing to do
  CHECK(ct_test::equal(p.w, initial_params().w));
}

TEST_CASE("Optimizer: parameters without a gradient are skipped and keep no state", "[optim]") {
  const Params p = initial_params();
  Tensor unused = tensor({5, 6}, kFloat64).requires_grad_(true);
  Tensor frozen = tensor({7}, kFloat64);  // requires no grad
  optim::Adam adam({p.w, unused, p.b, frozen}, optim::AdamOptions(0.1));
  optim::SGD sgd({unused, frozen}, optim::SGDOptions(0.1).momentum(0.9));
  loss_of(p).backward();
  adam.step();
  sgd.step();
  CHECK(ct_test::equal(unused, tensor({5, 6}, kFloat64)));
  CHECK(ct_test::equal(frozen, tensor({7}, kFloat64)));
  CHECK(adam.state(unused).empty());
  CHECK(adam.state(frozen).empty());
  CHECK_FALSE(adam.state(p.w).empty());
  CHECK(sgd.state(unused).empty());
  const StateDict d = adam.state_dict();
  CHECK(has(d, "state.0.exp_avg"));
  CHECK_FALSE(has(d, "state.1.exp_avg"));
  CHECK(has(d, "state.2.exp_avg"));
  CHECK_FALSE(has(d, "state.3.step"));
}

TEST_CASE("Optimizer: groups, defaults, lr and add_param_group", "[optim]") {
  const Params p = initial_params();
  optim::SGD opt({optim::ParamGroup({p.w}), optim::ParamGroup({p.b}, {{"lr", 0.5}})},
                 optim::SGDOptions(0.1).momentum(0.9));
  CHECK(opt.name() == "SGD");
  CHECK(opt.defaults().at("momentum") == 0.9);
  CHECK(opt.param_groups()[0].options == opt.defaults());
  CHECK(opt.param_groups()[1].lr() == 0.5);
  CHECK(opt.param_groups()[1].get("momentum") == 0.9);
  CT_REQUIRE_ERROR(opt.lr(),
                   "SGD: expected one learning rate for all groups, got 0.1 in group 0 and 0.5 in "
                   "group 1");
  CT_REQUIRE_ERROR(opt.param_groups()[0].get("betas"),
                   "ParamGroup: expected a hyper-parameter 'betas', got only: dampening, lr, "
                   "momentum, nesterov, weight_decay");
  opt.set_lr(0.25);
  CHECK(opt.lr() == 0.25);
  CHECK(opt.param_groups()[1].lr() == 0.25);
  CT_REQUIRE_ERROR(opt.set_lr(-1), "SGD: expected lr >= 0, got -1");

  Tensor extra = zeros({2}, kFloat64).requires_grad_(true);
  opt.add_param_group(optim::ParamGroup({extra}, {{"weight_decay", 0.1}}));
  REQUIRE(opt.param_groups().size() == 3);
  CHECK(opt.param_groups()[2].get("weight_decay") == 0.1);
  CHECK(opt.param_groups()[2].lr() == 0.1);  // the defaults' lr, not set_lr's
  CT_REQUIRE_ERROR(opt.add_param_group(optim::ParamGroup({p.w})),
                   "SGD: expected each parameter once, got parameter 0 in param group 3 a second "
                   "time");
  CT_REQUIRE_ERROR(opt.add_param_group(optim::ParamGroup({extra.detach()}, {{"lr", -3}})),
                   "SGD: expected lr >= 0 in param group 3, got -3");
  CHECK(opt.param_groups().size() == 3);
}

TEST_CASE("Optimizer: parameter checks", "[optim][errors]") {
  const Tensor w = zeros({2}, kFloat64).requires_grad_(true);
  CT_REQUIRE_ERROR(optim::SGD(std::vector<Tensor>{}, optim::SGDOptions(0.1)),
                   "SGD: expected at least one parameter, got an empty parameter list");
  CT_REQUIRE_ERROR(optim::Adam({optim::ParamGroup({})}),
                   "Adam: expected at least one parameter, got an empty parameter list");
  CT_REQUIRE_ERROR(optim::SGD({w, Tensor()}, optim::SGDOptions(0.1)),
                   "SGD: expected defined parameters, got an undefined one at position 1 in param "
                   "group 0");
  CT_REQUIRE_ERROR(optim::SGD({zeros({2}, kInt64)}, optim::SGDOptions(0.1)),
                   "SGD: expected floating-point parameters, got int64 at position 0");
  CT_REQUIRE_ERROR(optim::SGD({mul(w, 2.0)}, optim::SGDOptions(0.1)),
                   "SGD: expected leaf tensors as parameters, got the output of 'mul' at position "
                   "0 in param group 0");
  CT_REQUIRE_ERROR(optim::SGD({w, w}, optim::SGDOptions(0.1)),
                   "SGD: expected each parameter once, got parameter 1 in param group 0 a second "
                   "time");
  CT_REQUIRE_ERROR(
      optim::SGD({optim::ParamGroup({w}), optim::ParamGroup({w})}, optim::SGDOptions(0.1)),
      "got parameter 0 in param group 1 a second time");
  CT_REQUIRE_ERROR(optim::SGD({optim::ParamGroup({w}, {{"betas", 0.9}})}, optim::SGDOptions(0.1)),
                   "SGD: expected hyper-parameters among (dampening, lr, momentum, nesterov, "
                   "weight_decay), got 'betas' in param group 0");
}

TEST_CASE("Optimizer: the float32 path follows the float64 trajectory", "[optim]") {
  for (int which = 0; which < 3; ++which) {
    DYNAMIC_SECTION("optimizer " << which) {
      const char* name = which == 0 ? "sgd_all" : which == 1 ? "adam_amsgrad" : "adamw";
      const auto& c = golden(name);
      const Params p = initial_params(kFloat32);
      std::unique_ptr<optim::Optimizer> opt;
      if (which == 0)
        opt = std::make_unique<optim::SGD>(
            std::vector<Tensor>{p.w, p.b},
            optim::SGDOptions(value(c, "hp_lr")).momentum(0.7).nesterov(true).weight_decay(0.02));
      else if (which == 1)
        opt = std::make_unique<optim::Adam>(std::vector<Tensor>{p.w, p.b},
                                            optim::AdamOptions(0.05).amsgrad(true));
      else
        opt = std::make_unique<optim::AdamW>(std::vector<Tensor>{p.w, p.b},
                                             optim::AdamWOptions(0.05));
      const Trajectory t = train(*opt, p, 12);
      REQUIRE(p.w.dtype() == kFloat32);
      for (const auto& [key, buf] : opt->state(p.w).buffers) CHECK(buf.dtype() == kFloat32);
      CHECK(ct_test::allclose(t.w.back().to(kFloat64), c.at("w").narrow(0, 11, 1).squeeze(0), 1e-4,
                              1e-5));
      CHECK(ct_test::allclose(t.b.back().to(kFloat64), c.at("b").narrow(0, 11, 1).squeeze(0), 1e-4,
                              1e-5));
    }
  }
}

TEST_CASE("Optimizer: state_dict layout", "[optim][state]") {
  const Params p = initial_params();
  optim::Adam opt({optim::ParamGroup({p.w}), optim::ParamGroup({p.b}, {{"amsgrad", 1}})},
                  optim::AdamOptions(0.05));
  train(opt, p, 2);
  const StateDict d = opt.state_dict();
  std::vector<std::string> names;
  for (const auto& [name, t] : d) names.push_back(name);
  const std::vector<std::string> expected = {"param_groups.0.num_params",
                                             "param_groups.0.amsgrad",
                                             "param_groups.0.beta1",
                                             "param_groups.0.beta2",
                                             "param_groups.0.eps",
                                             "param_groups.0.lr",
                                             "param_groups.0.weight_decay",
                                             "param_groups.1.num_params",
                                             "param_groups.1.amsgrad",
                                             "param_groups.1.beta1",
                                             "param_groups.1.beta2",
                                             "param_groups.1.eps",
                                             "param_groups.1.lr",
                                             "param_groups.1.weight_decay",
                                             "state.0.step",
                                             "state.0.exp_avg",
                                             "state.0.exp_avg_sq",
                                             "state.1.step",
                                             "state.1.exp_avg",
                                             "state.1.exp_avg_sq",
                                             "state.1.max_exp_avg_sq"};
  CHECK(names == expected);
  for (const auto& [name, t] : d) {
    INFO(name);
    if (name.ends_with("exp_avg") || name.ends_with("sq")) {
      CHECK(t.dtype() == kFloat64);
      CHECK(t.shape() == (name.starts_with("state.0") ? p.w.shape() : p.b.shape()));
    } else {
      CHECK(t.dim() == 0);
      CHECK(t.dtype() == kFloat64);
    }
  }
  CHECK(d[0].second.item() == 1);
  CHECK(d[14].second.item() == 2);  // state.0.step
  // A snapshot: later steps do not change it.
  const Tensor saved = d[15].second.clone();
  train(opt, p, 1);
  CHECK(ct_test::equal(d[15].second, saved));
}

TEST_CASE("Optimizer: save mid-run, load into a fresh optimizer, continue identically",
          "[optim][state]") {
  for (int which = 0; which < 3; ++which) {
    DYNAMIC_SECTION("optimizer " << which) {
      auto make = [which](const Params& p) -> std::unique_ptr<optim::Optimizer> {
        const std::vector<optim::ParamGroup> groups = {optim::ParamGroup({p.w}),
                                                       optim::ParamGroup({p.b}, {{"lr", 0.02}})};
        if (which == 0)
          return std::make_unique<optim::SGD>(groups, optim::SGDOptions(0.05).momentum(0.9));
        if (which == 1)
          return std::make_unique<optim::Adam>(groups, optim::AdamOptions(0.05).amsgrad(true));
        return std::make_unique<optim::AdamW>(groups, optim::AdamWOptions(0.05));
      };
      const Params a = initial_params();
      auto opt_a = make(a);
      const Trajectory whole = train(*opt_a, a, 10);

      const Params b = initial_params();
      auto opt_b = make(b);
      train(*opt_b, b, 4);
      const StateDict saved = opt_b->state_dict();
      // A fresh optimizer with other hyper-parameters: the dict's replace them.
      const Params c{b.w.detach().clone().requires_grad_(true),
                     b.b.detach().clone().requires_grad_(true)};
      auto opt_c = make(c);
      opt_c->set_lr(0.5);
      opt_c->load_state_dict(saved);
      CHECK(opt_c->param_groups()[1].lr() == 0.02);
      const Trajectory rest = train(*opt_c, c, 6);
      for (std::size_t s = 0; s < 6; ++s) {
        INFO("step " << s + 5);
        CHECK(ct_test::equal(rest.w[s], whole.w[s + 4]));
        CHECK(ct_test::equal(rest.b[s], whole.b[s + 4]));
      }
      // The loaded state is a copy: stepping opt_c left the dict alone.
      const StateDict again = opt_b->state_dict();
      REQUIRE(again.size() == saved.size());
      for (std::size_t i = 0; i < saved.size(); ++i)
        CHECK(ct_test::equal(saved[i].second, again[i].second));
    }
  }
}

TEST_CASE("Optimizer: load_state_dict errors leave the optimizer unchanged", "[optim][state]") {
  const Params p = initial_params();
  optim::SGD src({optim::ParamGroup({p.w}), optim::ParamGroup({p.b}, {{"lr", 0.02}})},
                 optim::SGDOptions(0.05).momentum(0.9));
  train(src, p, 2);
  const StateDict good = src.state_dict();

  const Params q = initial_params();
  optim::SGD dst({optim::ParamGroup({q.w}), optim::ParamGroup({q.b})},
                 optim::SGDOptions(0.3).momentum(0.9));
  train(dst, q, 1);
  const StateDict before = dst.state_dict();
  const std::string op = "SGD.load_state_dict: ";

  CT_REQUIRE_ERROR(dst.load_state_dict(without(good, "param_groups.1.lr")),
                   op + "expected an entry 'param_groups.1.lr', got none");
  CT_REQUIRE_ERROR(dst.load_state_dict(without(good, "param_groups.0.num_params")),
                   op + "expected an entry 'param_groups.0.num_params', got none");
  const Tensor w_buf = good[12].second;  // state.0.momentum_buffer
  REQUIRE(good[12].first == "state.0.momentum_buffer");
  auto with = [&](std::string name, Tensor t) {
    StateDict d = good;
    d.emplace_back(std::move(name), std::move(t));
    return d;
  };
  auto s = [](double v) { return full({}, v, kFloat64); };

  SECTION("missing entries") {
    CT_REQUIRE_ERROR(dst.load_state_dict(without(good, "param_groups.1.lr")),
                     op + "expected an entry 'param_groups.1.lr', got none");
    CT_REQUIRE_ERROR(dst.load_state_dict(without(good, "param_groups.0.num_params")),
                     op + "expected an entry 'param_groups.0.num_params', got none");
  }
  SECTION("group and parameter counts") {
    CT_REQUIRE_ERROR(dst.load_state_dict(replaced(good, "param_groups.0.num_params", s(2))),
                     op + "expected 1 parameter(s) in param group 0, got 2 (entry "
                          "'param_groups.0.num_params')");
    optim::SGD one({q.w, q.b}, optim::SGDOptions(0.1));
    CT_REQUIRE_ERROR(dst.load_state_dict(one.state_dict()),
                     op + "expected a state dict of 2 param group(s), got 1");
    CT_REQUIRE_ERROR(dst.load_state_dict(with("param_groups.2.lr", s(0.1))),
                     op + "expected a state dict of 2 param group(s), got 3");
    CT_REQUIRE_ERROR(dst.load_state_dict(with("state.2.momentum_buffer", w_buf)),
                     op + "expected state of parameters 0..1, got entry 'state.2.momentum_buffer'");
  }
  SECTION("hyper-parameters") {
    CT_REQUIRE_ERROR(dst.load_state_dict(with("param_groups.0.betas", s(0.9))),
                     op + "expected hyper-parameters among (dampening, lr, momentum, nesterov, "
                          "weight_decay), got entry 'param_groups.0.betas'");
    CT_REQUIRE_ERROR(dst.load_state_dict(replaced(good, "param_groups.1.momentum", s(-1))),
                     "SGD: expected momentum >= 0 in entries 'param_groups.1.*', got -1");
    CT_REQUIRE_ERROR(
        dst.load_state_dict(replaced(good, "param_groups.0.lr", full({1}, 0.1, kFloat64))),
        op + "expected a 0-d float64 tensor for entry 'param_groups.0.lr', got float64 [1]");
    CT_REQUIRE_ERROR(dst.load_state_dict(replaced(good, "param_groups.0.lr", full({}, 0.1))),
                     op + "expected a 0-d float64 tensor for entry 'param_groups.0.lr', got "
                          "float32 []");
  }
  SECTION("state entries") {
    CT_REQUIRE_ERROR(dst.load_state_dict(with("state.0.exp_avg", w_buf)),
                     op + "expected state entries (momentum_buffer) together for parameter 0 "
                          "(param group 0), got (exp_avg, momentum_buffer)");
    // Momentum 0 keeps no buffer, so a dict with one is inconsistent.
    CT_REQUIRE_ERROR(dst.load_state_dict(replaced(good, "param_groups.0.momentum", s(0))),
                     op + "expected state entries () together for parameter 0 (param group 0), "
                          "got (momentum_buffer)");
    CT_REQUIRE_ERROR(dst.load_state_dict(replaced(good, "state.0.momentum_buffer", q.b.detach())),
                     op + "expected float64 [3, 4] (the parameter's) for entry "
                          "'state.0.momentum_buffer', got float64 [3]");
    CT_REQUIRE_ERROR(
        dst.load_state_dict(replaced(good, "state.0.momentum_buffer", w_buf.to(kFloat32))),
        op + "expected float64 [3, 4] (the parameter's) for entry 'state.0.momentum_buffer', got "
             "float32 [3, 4]");
  }
  SECTION("names") {
    CT_REQUIRE_ERROR(dst.load_state_dict(with("state.x.momentum_buffer", w_buf)),
                     op + "expected entries 'state.<i>.<name>', got 'state.x.momentum_buffer'");
    CT_REQUIRE_ERROR(dst.load_state_dict(with("state.0.", w_buf)),
                     op + "expected entries 'state.<i>.<name>', got 'state.0.'");
    CT_REQUIRE_ERROR(dst.load_state_dict(with("param_groups.lr", s(1))),
                     op + "expected entries 'param_groups.<g>.<name>', got 'param_groups.lr'");
    CT_REQUIRE_ERROR(dst.load_state_dict(with("momentum", s(1))),
                     op + "expected entries 'param_groups.*' and 'state.*', got 'momentum'");
    CT_REQUIRE_ERROR(dst.load_state_dict(with("param_groups.0.lr", s(1))),
                     op + "expected unique entry names, got 'param_groups.0.lr' twice");
    CT_REQUIRE_ERROR(dst.load_state_dict(with("state.1.momentum_buffer", Tensor())),
                     op + "expected a defined tensor for entry 'state.1.momentum_buffer'");
  }
  // Nothing changed by any failed load.
  const StateDict after = dst.state_dict();
  REQUIRE(after.size() == before.size());
  for (std::size_t i = 0; i < after.size(); ++i) {
    CHECK(after[i].first == before[i].first);
    CHECK(ct_test::equal(after[i].second, before[i].second));
  }
}

TEST_CASE("Optimizer: a dict without a parameter's state clears it", "[optim][state]") {
  const Params p = initial_params();
  optim::SGD opt({p.w, p.b}, optim::SGDOptions(0.1).momentum(0.5));
  train(opt, p, 1);
  REQUIRE_FALSE(opt.state(p.b).empty());
  opt.load_state_dict(without(opt.state_dict(), "state.1.momentum_buffer"));
  CHECK(opt.state(p.b).empty());
  CHECK_FALSE(opt.state(p.w).empty());
}

TEST_CASE("Adam: load_state_dict checks its step counts and state sets", "[optim][state]") {
  const Params p = initial_params();
  optim::Adam opt({p.w, p.b}, optim::AdamOptions(0.1));
  train(opt, p, 1);
  const StateDict good = opt.state_dict();
  const std::string op = "Adam.load_state_dict: ";
  CT_REQUIRE_ERROR(opt.load_state_dict(replaced(good, "state.1.step", full({}, -1, kFloat64))),
                   op + "expected a finite count >= 0 for entry 'state.1.step', got -1");
  CT_REQUIRE_ERROR(opt.load_state_dict(without(good, "state.0.step")),
                   op + "expected state entries (exp_avg, exp_avg_sq, step) together for "
                        "parameter 0 (param group 0), got (exp_avg, exp_avg_sq)");
  // amsgrad on in the dict needs max_exp_avg_sq too.
  CT_REQUIRE_ERROR(
      opt.load_state_dict(replaced(good, "param_groups.0.amsgrad", full({}, 1, kFloat64))),
      op + "expected state entries (exp_avg, exp_avg_sq, max_exp_avg_sq, step) "
           "together for parameter 0");
  opt.load_state_dict(good);
  CHECK(opt.state(p.w).scalars.at("step") == 1);
}
