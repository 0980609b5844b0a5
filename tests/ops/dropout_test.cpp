// Tests of ops/dropout: the mask's values (0 or 1 / (1 - p)) and keep rate over a large draw,
// E[y] = x, the gradient (dy times the same mask; float64 gradcheck with a fixed seed), the
// identity cases (training off, p = 0), p = 1, determinism per generator, and the errors.
#include <algorithm>
#include <cmath>
#include <vector>

#include "support/test_util.h"

namespace {

using namespace convtape;
using ct_test::equal;

TEST_CASE("dropout: kept values are scaled by 1 / (1 - p), the rest are zero, at rate p") {
  Generator gen(61);
  const double p = 0.3;
  const std::int64_t n = 200000;
  const Tensor x = ones({n}, kFloat64) * 2.0;
  const std::vector<double> y = dropout(x, p, true, &gen).to_vector<double>();
  std::int64_t zeros_seen = 0, other = 0;
  double sum = 0;
  for (double v : y) {
    if (v == 0.0)
      ++zeros_seen;
    else if (v != 2.0 / 0.7)
      ++other;
    sum += v;
  }
  CHECK(other == 0);
  // The dropped fraction within five standard errors of p; E[y] = x likewise.
  const double rate = static_cast<double>(zeros_seen) / static_cast<double>(n);
  const double se = std::sqrt(p * (1 - p) / static_cast<double>(n));
  CHECK(std::abs(rate - p) < 5 * se);
  const double mean = sum / static_cast<double>(n);
  CHECK(std::abs(mean - 2.0) < 5 * 2.0 / 0.7 * se);

  const Tensor m = dropout_mask({1000}, 0.5, kFloat32, &gen);
  const std::vector<float> mv = m.to_vector<float>();
  CHECK(std::all_of(mv.begin(), mv.end(), [](float v) { return v == 0.0f || v == 2.0f; }));
  CHECK(std::count(mv.begin(), mv.end(), 0.0f) > 400);
  CHECK(std::count(mv.begin(), mv.end(), 2.0f) > 400);
}

TEST_CASE("dropout: the gradient is dy times the mask; gradcheck with a fixed seed") {
  Generator gen(62);
  const Tensor x = ct_test::leaf({4, 5});
  gen.seed(7);
  const Tensor y = dropout(x, 0.4, true, &gen);
  CHECK(y.grad_fn_name() == "dropout");
  gen.seed(7);
  const Tensor mask = dropout_mask({4, 5}, 0.4, kFloat64, &gen);
  const Tensor dy = randn({4, 5}, kFloat64);
  y.backward(dy);
  CHECK(equal(x.grad(), dy * mask));
  CHECK(equal(y, x.detach() * mask));

  CT_REQUIRE_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        gen.seed(9);
        return dropout(in[0], 0.5, true, &gen);
      },
      std::vector<Tensor>{ct_test::leaf({3, 4, 5})});
}

TEST_CASE("dropout: identity outside training and for p = 0, zeros for p = 1") {
  const Tensor x = ct_test::leaf({3, 4});
  CHECK(dropout(x, 0.5, false).same(x));
  CHECK(dropout(x, 0.0, true).same(x));
  const Tensor y = dropout(x, 1.0, true);
  CHECK(equal(y, zeros({3, 4}, kFloat64)));
  sum(y).backward();
  CHECK(equal(x.grad(), zeros({3, 4}, kFloat64)));
  // One seed, one mask.
  manual_seed(3);
  const Tensor a = dropout(ones({50}), 0.5);
  manual_seed(3);
  const Tensor b = dropout(ones({50}), 0.5);
  CHECK(equal(a, b));
}

TEST_CASE("dropout: errors") {
  CT_REQUIRE_ERROR(dropout(ones({2}), 1.5), "dropout: expected p in [0, 1], got 1.5");
  CT_REQUIRE_ERROR(dropout(ones({2}), -0.1), "dropout: expected p in [0, 1], got -0.1");
  CT_REQUIRE_ERROR(dropout(zeros({2}, kInt64), 0.5), "dropout: expected a floating-point tensor");
  CT_REQUIRE_ERROR(dropout(Tensor(), 0.5), "dropout");
  CT_REQUIRE_ERROR(dropout_mask({2}, 0.5, kInt64), "dropout_mask: expected a floating dtype");
}

}  // namespace
