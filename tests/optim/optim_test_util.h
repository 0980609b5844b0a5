// Helpers for the optimizer tests: the PyTorch golden file (tests/golden/optim.txt, written by
// scripts/make_optim_golden.py), its linear-regression problem, and a training loop that records
// the parameters after each step.
#pragma once

#include <string>
#include <vector>

#include "support/test_util.h"

namespace ct_optim_test {

using namespace convtape;

inline const ct_test::GoldenCase& golden(const std::string& name) {
  static const auto cases = ct_test::load_golden("optim.txt");
  const auto it = cases.find(name);
  if (it == cases.end()) throw std::runtime_error("optim.txt has no case " + name);
  return it->second;
}

inline double value(const ct_test::GoldenCase& c, const std::string& name) {
  return c.at(name).item();
}

// Fresh float64 leaves holding the problem's initial w [3, 4] and b [3].
struct Params {
  Tensor w, b;
};
inline Params initial_params(DType dtype = kFloat64) {
  const auto& p = golden("problem");
  return {p.at("w").to(dtype).clone().requires_grad_(true),
          p.at("b").to(dtype).clone().requires_grad_(true)};
}

// mse_loss(x @ w.T + b, y) on the golden data.
inline Tensor loss_of(const Params& p) {
  const auto& g = golden("problem");
  const Tensor x = g.at("x").to(p.w.dtype());
  const Tensor y = g.at("y").to(p.w.dtype());
  return mse_loss(add(matmul(x, p.w.t()), p.b), y);
}

struct Trajectory {
  std::vector<Tensor> w, b;
  std::vector<double> loss;
};

// steps x (zero_grad, loss, backward, step), recording the loss before and the parameters after
// each step.
inline Trajectory train(optim::Optimizer& opt, const Params& p, int steps) {
  Trajectory t;
  for (int s = 0; s < steps; ++s) {
    opt.zero_grad();
    const Tensor loss = loss_of(p);
    loss.backward();
    opt.step();
    t.loss.push_back(loss.item());
    t.w.push_back(p.w.detach().clone());
    t.b.push_back(p.b.detach().clone());
  }
  return t;
}

// Every step of t against the golden case's w, b and loss [STEPS, ...], relative 1e-12.
inline void require_matches_golden(const Trajectory& t, const ct_test::GoldenCase& c) {
  const Tensor& w = c.at("w");
  const Tensor& b = c.at("b");
  const Tensor& loss = c.at("loss");
  REQUIRE(static_cast<std::int64_t>(t.w.size()) == w.size(0));
  for (std::int64_t s = 0; s < w.size(0); ++s) {
    INFO("step " << s + 1);
    const auto i = static_cast<std::size_t>(s);
    CHECK(ct_test::allclose(t.w[i], w.narrow(0, s, 1).squeeze(0), 1e-12, 1e-14));
    CHECK(ct_test::allclose(t.b[i], b.narrow(0, s, 1).squeeze(0), 1e-12, 1e-14));
    CHECK(t.loss[i] == Approx(loss.at<double>({s})).epsilon(1e-12));
  }
}

}  // namespace ct_optim_test
