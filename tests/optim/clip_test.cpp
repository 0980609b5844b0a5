// Tests of optim/clip: clip_grad_norm_ (orders 2, 1, 3 and inf, clipped and not) and
// clip_grad_value_ against PyTorch 1.13 (tests/golden/optim.txt) in float64; exact small cases;
// parameters without a gradient; non-finite norms; float32; argument errors.
#include "optim/clip.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <vector>

#include "optim_test_util.h"

namespace {

using namespace convtape;
using namespace ct_optim_test;

std::vector<Tensor> params_with_grads(const ct_test::GoldenCase& c) {
  std::vector<Tensor> params;
  for (const char* g : {"g0", "g1", "g2"}) {
    Tensor p = zeros(c.at(g).shape(), kFloat64).requires_grad_(true);
    p.set_grad(c.at(g).clone());
    params.push_back(p);
  }
  return params;
}

}  // namespace

TEST_CASE("clip_grad_norm_ and clip_grad_value_ match PyTorch", "[optim][clip][golden]") {
  for (const char* name :
       {"clip_norm2", "clip_norm2_unclipped", "clip_norm_inf", "clip_norm1", "clip_norm3"}) {
    DYNAMIC_SECTION(name) {
      const auto& c = golden(name);
      const auto params = params_with_grads(c);
      double norm_type = value(c, "norm_type");
      if (norm_type >= 1e300) norm_type = std::numeric_limits<double>::infinity();
      const double total = optim::clip_grad_norm_(params, value(c, "max_norm"), norm_type);
      CHECK(total == Approx(value(c, "total")).epsilon(1e-12));
      for (std::size_t i = 0; i < 3; ++i)
        CHECK(ct_test::allclose(params[i].grad(), c.at(fmt::format("c{}", i)), 1e-12, 1e-15));
    }
  }
  SECTION("clip_value") {
    const auto& c = golden("clip_value");
    const auto params = params_with_grads(c);
    optim::clip_grad_value_(params, value(c, "clip_value"));
    for (std::size_t i = 0; i < 3; ++i)
      CHECK(ct_test::equal(params[i].grad(), c.at(fmt::format("c{}", i))));
  }
}

TEST_CASE("clip_grad_norm_: exact small cases", "[optim][clip]") {
  Tensor a = zeros({2}, kFloat64).requires_grad_(true);
  Tensor b = zeros({1}, kFloat64).requires_grad_(true);
  Tensor none = zeros({3}, kFloat64).requires_grad_(true);  // no gradient: skipped
  a.set_grad(tensor({3, 0}, kFloat64));
  b.set_grad(tensor({-4}, kFloat64));
  SECTION("norm 5 clipped to 1") {
    CHECK(optim::clip_grad_norm_({a, none, b}, 1.0) == 5.0);
    const double coef = 1.0 / (5.0 + 1e-6);
    CHECK(ct_test::equal(a.grad(), tensor({3 * coef, 0}, kFloat64)));
    CHECK(ct_test::equal(b.grad(), tensor({-4 * coef}, kFloat64)));
    CHECK_FALSE(none.grad().defined());
  }
  SECTION("below max_norm: untouched") {
    CHECK(optim::clip_grad_norm_({a, b}, 5.0) == 5.0);  // coef 5 / (5 + 1e-6) < 1 clips slightly
    CHECK(a.grad().at<double>({0}) < 3.0);
    a.set_grad(tensor({3, 0}, kFloat64));
    b.set_grad(tensor({-4}, kFloat64));
    CHECK(optim::clip_grad_norm_({a, b}, 6.0) == 5.0);
    CHECK(ct_test::equal(a.grad(), tensor({3, 0}, kFloat64)));
  }
  SECTION("inf and 1 norms") {
    CHECK(optim::clip_grad_norm_({a, b}, 100.0, std::numeric_limits<double>::infinity()) == 4.0);
    CHECK(optim::clip_grad_norm_({a, b}, 100.0, 1.0) == 7.0);
  }
  SECTION("no gradients at all") {
    CHECK(optim::clip_grad_norm_({none}, 1.0) == 0.0);
  }
  SECTION("the gradient is scaled in place, so every holder sees it") {
    const Tensor held = a.grad();
    optim::clip_grad_norm_({a, b}, 0.5);
    CHECK(held.at<double>({0}) == Approx(0.3).epsilon(1e-6));
  }
  SECTION("float32") {
    Tensor f = zeros({2}).requires_grad_(true);
    f.set_grad(tensor({6, 8}));
    CHECK(optim::clip_grad_norm_({f}, 2.0) == Approx(10.0));
    CHECK(ct_test::allclose(f.grad(), tensor({1.2f, 1.6f}), 1e-6, 1e-6));
    CHECK(f.grad().dtype() == kFloat32);
  }
}

TEST_CASE("clip_grad_norm_: non-finite norms", "[optim][clip]") {
  Tensor a = zeros({2}, kFloat64).requires_grad_(true);
  a.set_grad(tensor({NAN, 1}, kFloat64));
  CT_REQUIRE_ERROR(optim::clip_grad_norm_({a}, 1.0, 2.0, true),
                   "clip_grad_norm_: expected a finite total norm of order 2 of the gradients, got "
                   "nan");
  CHECK(a.grad().at<double>({1}) == 1.0);  // the error changed nothing
  CHECK(std::isnan(optim::clip_grad_norm_({a}, 1.0)));
  CHECK(std::isnan(a.grad().at<double>({1})));  // as PyTorch: NaN spreads to every gradient
  a.set_grad(tensor({INFINITY, 1}, kFloat64));
  CHECK(std::isinf(optim::clip_grad_norm_({a}, 1.0, std::numeric_limits<double>::infinity())));
  CHECK(a.grad().at<double>({1}) == 0.0);
}

TEST_CASE("clip_grad_value_: exact cases", "[optim][clip]") {
  Tensor a = zeros({4}, kFloat64).requires_grad_(true);
  Tensor none = zeros({1}).requires_grad_(true);
  a.set_grad(tensor({-3, -0.5, 0.5, 3}, kFloat64));
  optim::clip_grad_value_({a, none}, 1.0);
  CHECK(ct_test::equal(a.grad(), tensor({-1, -0.5, 0.5, 1}, kFloat64)));
  CHECK_FALSE(none.grad().defined());
  optim::clip_grad_value_({a}, 0.0);
  CHECK(ct_test::equal(a.grad(), zeros({4}, kFloat64)));
}

TEST_CASE("clipping: argument errors", "[optim][clip][errors]") {
  Tensor a = zeros({2}, kFloat64).requires_grad_(true);
  CT_REQUIRE_ERROR(optim::clip_grad_norm_({a}, -1.0),
                   "clip_grad_norm_: expected max_norm >= 0, got -1");
  CT_REQUIRE_ERROR(optim::clip_grad_norm_({a}, 1.0, 0.0),
                   "clip_grad_norm_: expected norm_type > 0 (or infinity), got 0");
  CT_REQUIRE_ERROR(optim::clip_grad_norm_({a}, 1.0, NAN),
                   "clip_grad_norm_: expected norm_type > 0 (or infinity), got nan");
  CT_REQUIRE_ERROR(optim::clip_grad_norm_({Tensor()}, 1.0),
                   "clip_grad_norm_: expected defined parameters, got an undefined one");
  CT_REQUIRE_ERROR(optim::clip_grad_value_({a}, -0.5),
                   "clip_grad_value_: expected clip_value >= 0, got -0.5");
  CT_REQUIRE_ERROR(optim::clip_grad_value_({Tensor()}, 0.5),
                   "clip_grad_value_: expected defined parameters, got an undefined one");
}
