// Test helper for modules: a float64 central-difference check of the gradients of a module with
// respect to its input and every parameter. The module's output y is weighted by fixed random
// tensors u (one per direction) and the gradient of L = sum(u * y) from the tape is compared,
// element by element, with (L(p + eps) - L(p - eps)) / (2 eps) for every element p of the input
// and of each parameter, perturbed in place. Criterion (PyTorch's, as ops/gradcheck):
// |analytic - numeric| <= atol + rtol * |numeric|; a check where every gradient is zero fails.
#pragma once

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "support/test_util.h"

namespace ct_test {

struct ModuleGradcheck {
  bool ok = false;
  std::string report;
};

// before() runs before every evaluation (e.g. to reseed a dropout generator).
inline ModuleGradcheck module_gradcheck(convtape::nn::Module& m, const convtape::Tensor& x,
                                        const std::function<void()>& before = {},
                                        int directions = 2, double eps = 1e-6, double atol = 1e-5,
                                        double rtol = 1e-3) {
  using namespace convtape;
  ModuleGradcheck r;
  Tensor xl = x.detach().to(kFloat64).contiguous().clone().requires_grad_(true);
  std::vector<std::string> names{"input"};
  std::vector<Tensor> checked{xl};
  for (auto& [name, p] : m.named_parameters()) {
    if (!p.requires_grad()) continue;
    if (p.dtype() != kFloat64 || !p.is_contiguous()) {
      r.report = "parameter " + name + " is not contiguous float64";
      return r;
    }
    names.push_back(name);
    checked.push_back(p);
  }
  Generator gen(1234);
  double worst = -1.0;
  bool any_nonzero = false;
  for (int d = 0; d < directions; ++d) {
    if (before) before();
    const Tensor y0 = m(xl);
    const Tensor u = uniform(y0.shape(), -1.0, 1.0, kFloat64, &gen);
    m.zero_grad();
    xl.zero_grad();
    sum(mul(y0, u)).backward();
    const auto loss = [&]() {
      NoGradGuard no_grad;
      if (before) before();
      return sum(mul(m(xl), u)).item();
    };
    for (std::size_t k = 0; k < checked.size(); ++k) {
      const Tensor& t = checked[k];
      const Tensor g = t.grad();
      const std::vector<double> analytic =
          g.defined() ? g.to_vector<double>()
                      : std::vector<double>(static_cast<std::size_t>(t.numel()), 0.0);
      double* p = t.data_ptr<double>();
      for (std::int64_t j = 0; j < t.numel(); ++j) {
        const double orig = p[j];
        p[j] = orig + eps;
        const double plus = loss();
        p[j] = orig - eps;
        const double minus = loss();
        p[j] = orig;
        const double numeric = (plus - minus) / (2 * eps);
        const double a = analytic[static_cast<std::size_t>(j)];
        if (a != 0.0 || numeric != 0.0) any_nonzero = true;
        const double excess = std::abs(a - numeric) - (atol + rtol * std::abs(numeric));
        if (excess > worst) {
          worst = excess;
          r.report = "worst: " + names[k] + " element " + std::to_string(j) + " analytic " +
                     std::to_string(a) + " numeric " + std::to_string(numeric);
        }
      }
    }
  }
  r.ok = any_nonzero && worst <= 0.0;
  if (!any_nonzero) r.report = "every gradient is zero";
  return r;
}

#define CT_REQUIRE_MODULE_GRADCHECK(...)                           \
  do {                                                             \
    const auto ct_mgc_ = ::ct_test::module_gradcheck(__VA_ARGS__); \
    INFO(ct_mgc_.report);                                          \
    REQUIRE(ct_mgc_.ok);                                           \
  } while (0)

}  // namespace ct_test
