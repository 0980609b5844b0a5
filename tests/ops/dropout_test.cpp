// Tests of ops/dropout: the mask's values (0 or 1 / (1 - p)) and keep rate over a large draw,
// E[y] = x, the gradient (dy times the same mask; float64 gradcheck with a fixed seed), the
// identity cases (training off, p = 0), p = 1, determinism per generator, and the errors; the
// channel dropouts (feature_dropout, dropout1d / 2d / 3d): each channel all zero or all scaled,
// the zeroed fraction near p, the mask one draw per (sample, channel) in row-major order, the
// unbatched forms, the gradient, and their errors.
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

// For x of ones viewed as [rows, inner]: each row must be all 0 or all 1 / (1 - p); returns the
// number of zero rows, or -1 if some row is mixed or holds another value.
std::int64_t zero_rows(const Tensor& y, std::int64_t rows, double p) {
  const std::vector<double> v = y.to(kFloat64).contiguous().to_vector<double>();
  const std::size_t inner = v.size() / static_cast<std::size_t>(rows);
  std::int64_t zeroed = 0;
  for (std::size_t r = 0; r < static_cast<std::size_t>(rows); ++r) {
    const double first = v[r * inner];
    if (first != 0.0 && first != static_cast<double>(static_cast<float>(1.0 / (1.0 - p))))
      return -1;
    for (std::size_t i = 0; i < inner; ++i)
      if (v[r * inner + i] != first) return -1;
    zeroed += first == 0.0 ? 1 : 0;
  }
  return zeroed;
}

TEST_CASE("dropout2d: whole channels zeroed at rate p, the rest scaled by 1 / (1 - p)") {
  Generator gen(63);
  const double p = 0.3;
  const std::int64_t n = 40, c = 500;
  const Tensor y = dropout2d(ones({n, c, 3, 4}), p, true, &gen);
  const std::int64_t zeroed = zero_rows(y, n * c, p);
  REQUIRE(zeroed >= 0);
  const double rate = static_cast<double>(zeroed) / static_cast<double>(n * c);
  CHECK(std::abs(rate - p) < 5 * std::sqrt(p * (1 - p) / static_cast<double>(n * c)));
  // The mask is dropout_mask over [N, C, 1, 1], drawn from the same point of the stream.
  gen.seed(5);
  const Tensor x = randn({3, 4, 2, 2});
  const Tensor got = dropout2d(x, 0.5, true, &gen);
  gen.seed(5);
  CHECK(equal(got, x * dropout_mask({3, 4, 1, 1}, 0.5, kFloat32, &gen)));
  // Eval and p = 0 are the identity; p = 1 zeroes everything.
  CHECK(dropout2d(x, 0.5, false).same(x));
  CHECK(dropout2d(x, 0.0, true).same(x));
  CHECK(equal(dropout2d(x, 1.0, true), zeros({3, 4, 2, 2})));
  // As PyTorch 1.13, a 3-d input is [N, C, L]: rows of dim 1 within each sample.
  CHECK(zero_rows(dropout2d(ones({6, 50, 7}), 0.5, true, &gen), 300, 0.5) >= 0);
}

TEST_CASE("dropout1d and dropout3d: batched and unbatched channels") {
  Generator gen(64);
  SECTION("dropout1d [N, C, L] and [C, L]") {
    CHECK(zero_rows(dropout1d(ones({4, 30, 5}), 0.5, true, &gen), 120, 0.5) >= 0);
    const std::int64_t zeroed = zero_rows(dropout1d(ones({200, 6}), 0.5, true, &gen), 200, 0.5);
    CHECK(zeroed > 50);  // rows of the unbatched [C, L] are its channels
    CHECK(zeroed < 150);
    gen.seed(2);
    const Tensor x = randn({3, 4});
    const Tensor got = dropout1d(x, 0.25, true, &gen);
    gen.seed(2);
    CHECK(equal(got, x * dropout_mask({3, 1}, 0.25, kFloat32, &gen)));
  }
  SECTION("dropout3d [N, C, D, H, W] and [C, D, H, W]") {
    CHECK(zero_rows(dropout3d(ones({2, 40, 2, 2, 3}), 0.4, true, &gen), 80, 0.4) >= 0);
    gen.seed(3);
    const Tensor x = randn({5, 2, 1, 3});
    const Tensor got = dropout3d(x, 0.5, true, &gen);
    CHECK(got.shape() == x.shape());
    gen.seed(3);
    CHECK(equal(got, x * dropout_mask({5, 1, 1, 1}, 0.5, kFloat32, &gen)));
  }
}

TEST_CASE("feature_dropout: the gradient is dy times the channel mask; gradcheck") {
  Generator gen(65);
  const Tensor x = ct_test::leaf({2, 3, 4});
  gen.seed(11);
  const Tensor y = feature_dropout(x, 0.5, true, &gen);
  CHECK(y.grad_fn_name() == "feature_dropout");
  gen.seed(11);
  const Tensor mask = dropout_mask({2, 3, 1}, 0.5, kFloat64, &gen);
  const Tensor dy = randn({2, 3, 4}, kFloat64);
  y.backward(dy);
  CHECK(equal(x.grad(), dy * mask));
  CT_REQUIRE_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        gen.seed(13);
        return dropout2d(in[0], 0.4, true, &gen);
      },
      std::vector<Tensor>{ct_test::leaf({3, 4, 2, 2})});
  CT_REQUIRE_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        gen.seed(14);
        return dropout1d(in[0], 0.4, true, &gen);
      },
      std::vector<Tensor>{ct_test::leaf({6, 3})});
}

TEST_CASE("channel dropout: errors") {
  CT_REQUIRE_ERROR(dropout1d(ones({2, 3, 4, 5}), 0.5),
                   "dropout1d: expected input [N, C, L] or unbatched [C, L] (2 or 3 dims), got "
                   "[2, 3, 4, 5]");
  CT_REQUIRE_ERROR(dropout1d(ones({4}), 0.5, false), "dropout1d: expected input [N, C, L]");
  CT_REQUIRE_ERROR(dropout2d(ones({4}), 0.5),
                   "dropout2d: expected input [N, C, *] with at least 2 dims, got [4]");
  CT_REQUIRE_ERROR(feature_dropout(ones({4}), 0.5), "feature_dropout: expected input [N, C, *]");
  CT_REQUIRE_ERROR(dropout3d(ones({2, 2}), 1.5), "dropout3d: expected p in [0, 1], got 1.5");
  CT_REQUIRE_ERROR(dropout2d(zeros({2, 2}, kInt64), 0.5),
                   "dropout2d: expected a floating-point tensor");
  // As PyTorch: no rank check outside training or at p = 1.
  CHECK(dropout2d(ones({4}), 0.5, false).shape() == Shape{4});
  CHECK(equal(dropout2d(ones({4}), 1.0), zeros({4})));
}

}  // namespace
