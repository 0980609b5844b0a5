// Tests of modules/dropout: training mode drops at rate p and keeps E[y] = x, eval mode is the
// identity, the generator given is the one used, float64 gradients with a fixed seed, and errors;
// Dropout1d / 2d / 3d: whole channels zeroed or scaled at rate p, unbatched inputs, eval, the
// printouts and their errors.
#include <algorithm>
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

TEST_CASE("Dropout2d: whole channels at rate p, identity in eval") {
  Generator gen(73);
  const double p = 0.4;
  nn::Dropout2d drop(p, &gen);
  const std::int64_t n = 50, c = 400;
  const std::vector<float> y = drop(ones({n, c, 2, 3})).to_vector<float>();
  const float keep = static_cast<float>(1.0 / (1.0 - p));
  std::int64_t zeroed = 0, mixed = 0;
  for (std::int64_t ch = 0; ch < n * c; ++ch) {
    const auto first = y.begin() + ch * 6;
    const bool all_zero = std::all_of(first, first + 6, [](float v) { return v == 0.0f; });
    const bool all_kept = std::all_of(first, first + 6, [&](float v) { return v == keep; });
    zeroed += all_zero ? 1 : 0;
    mixed += all_zero || all_kept ? 0 : 1;
  }
  CHECK(mixed == 0);
  const double rate = static_cast<double>(zeroed) / static_cast<double>(n * c);
  CHECK(std::abs(rate - p) < 5 * std::sqrt(p * (1 - p) / static_cast<double>(n * c)));
  drop.eval();
  const Tensor z = randn({2, 3, 4, 4});
  CHECK(drop(z).same(z));
  CHECK(drop.str() == "Dropout2d(p=0.4)");
  CHECK(nn::Dropout2d().p() == 0.5);
}

TEST_CASE("Dropout1d / Dropout3d: batched and unbatched, the generator's mask") {
  Generator a(9), b(9);
  nn::Dropout1d d1(0.5, &a);
  const Tensor x = randn({4, 6});  // unbatched [C, L]: rows are channels
  const Tensor y = d1(x);
  CHECK(equal(y, x * dropout_mask({4, 1}, 0.5, kFloat32, &b)));
  const Tensor batched = randn({2, 4, 6});
  CHECK(equal(d1(batched), batched * dropout_mask({2, 4, 1}, 0.5, kFloat32, &b)));
  CHECK(d1.str() == "Dropout1d(p=0.5)");
  nn::Dropout3d d3(0.25, &a);
  const Tensor v = randn({3, 2, 2, 2});  // unbatched [C, D, H, W]
  const Tensor w = d3(v);
  CHECK(equal(w, v * dropout_mask({3, 1, 1, 1}, 0.25, kFloat32, &b)));
  CHECK(d3(randn({2, 3, 2, 2, 2})).shape() == Shape{2, 3, 2, 2, 2});
  CHECK(d3.str() == "Dropout3d(p=0.25)");
  d3.eval();
  CHECK(d3(v).same(v));
}

TEST_CASE("Dropout2d: float64 gradients with a fixed seed") {
  Generator gen(74);
  nn::Dropout2d drop(0.5, &gen);
  CT_REQUIRE_MODULE_GRADCHECK(drop, randn({2, 4, 2, 2}, kFloat64), [&] { gen.seed(4); });
}

TEST_CASE("Dropout1d / 2d / 3d: errors") {
  CT_REQUIRE_ERROR(nn::Dropout2d(-0.5), "Dropout2d: expected p in [0, 1], got -0.5");
  CT_REQUIRE_ERROR(nn::Dropout1d(2), "Dropout1d: expected p in [0, 1], got 2");
  nn::Dropout1d d1;
  CT_REQUIRE_ERROR(d1(zeros({2, 3, 4, 5})), "dropout1d: expected input [N, C, L] or unbatched");
  nn::Dropout2d d2;
  CT_REQUIRE_ERROR(d2(zeros({5})), "dropout2d: expected input [N, C, *] with at least 2 dims");
}

}  // namespace
