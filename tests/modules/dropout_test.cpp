// Tests of modules/dropout: training mode drops at rate p and keeps E[y] = x, eval mode is the
// identity, the generator given is the one used, float64 gradients with a fixed seed, and errors.
#include <cmath>
#include <vector>

#include "modules/module_check.h"
#include "support/test_util.h"

namespace {

using namespace convtape;
using ct_test::equal;

TEST_CASE("Dropout: statistics in training, identity in eval") {
  Generator gen(71);
  nn::Dropout drop(0.25, &gen);
  CHECK(drop.is_training());
  const std::int64_t n = 100000;
  const Tensor x = ones({n});
  const std::vector<float> y = drop(x).to_vector<float>();
  std::int64_t dropped = 0, other = 0;
  for (float v : y) {
    if (v == 0.0f)
      ++dropped;
    else if (v != static_cast<float>(1.0 / 0.75))
      ++other;
  }
  CHECK(other == 0);
  const double rate = static_cast<double>(dropped) / static_cast<double>(n);
  CHECK(std::abs(rate - 0.25) < 5 * std::sqrt(0.25 * 0.75 / static_cast<double>(n)));

  drop.eval();
  const Tensor z = randn({10, 10});
  CHECK(drop(z).same(z));
  drop.train();
  CHECK_FALSE(equal(drop(z), z));
  CHECK(drop.str() == "Dropout(p=0.25)");
  CHECK(nn::Dropout().p() == 0.5);
}

TEST_CASE("Dropout: the given generator decides the mask") {
  Generator a(5), b(5);
  nn::Dropout da(0.5, &a), db(0.5, &b);
  const Tensor x = randn({64});
  CHECK(equal(da(x), db(x)));
  CHECK(equal(da(x), db(x)));  // both generators advanced alike
  manual_seed(8);
  nn::Dropout dflt(0.5);
  const Tensor first = dflt(x);
  manual_seed(8);
  CHECK(equal(dflt(x), first));
}

TEST_CASE("Dropout: float64 gradients with a fixed seed") {
  Generator gen(72);
  nn::Dropout drop(0.4, &gen);
  CT_REQUIRE_MODULE_GRADCHECK(drop, randn({3, 7}, kFloat64), [&] { gen.seed(3); });
}

TEST_CASE("Dropout: errors") {
  CT_REQUIRE_ERROR(nn::Dropout(1.5), "Dropout: expected p in [0, 1], got 1.5");
  nn::Dropout drop;
  CT_REQUIRE_ERROR(drop(zeros({2}, kInt64)), "dropout: expected a floating-point tensor");
}

}  // namespace
