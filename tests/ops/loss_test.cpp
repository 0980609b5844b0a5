// Tests of ops/loss: softmax / log_softmax over different dims (rows sum to 1, agreement with a
// float64 reference, stability with logits around 1000), mse_loss, nll_loss and cross_entropy with
// every Reduction on hand-computed cases, cross_entropy's label smoothing and probability targets
// against their definitions, float64 gradchecks of the differentiable inputs, and the argument
// errors (labels out of range, float labels, ranks, batch sizes, shapes, label smoothing). The N-d
// forms, class weights, ignore_index and the binary cross-entropies: tests/ops/loss_nd_test.cpp.
#include <cmath>
#include <limits>
#include <vector>

#include "support/test_util.h"

namespace {

using namespace convtape;
using ct_test::allclose;
using ct_test::equal;
using ct_test::leaf;

Tensor f32(const std::vector<double>& v, const Shape& shape) {
  return tensor(v, shape);
}
Tensor labels(const std::vector<std::int64_t>& v) {
  return from_vector(v, {static_cast<std::int64_t>(v.size())});
}

// Softmax along `dim` computed with plain loops in double.
Tensor softmax_reference(const Tensor& x, std::int64_t dim, bool log) {
  const Shape& s = x.shape();
  const auto r = static_cast<std::int64_t>(s.size());
  const std::int64_t d = dim < 0 ? dim + r : dim;
  std::int64_t outer = 1, n = s[static_cast<std::size_t>(d)], inner = 1;
  for (std::int64_t i = 0; i < d; ++i) outer *= s[static_cast<std::size_t>(i)];
  for (std::int64_t i = d + 1; i < r; ++i) inner *= s[static_cast<std::size_t>(i)];
  auto v = x.to_vector<double>();
  std::vector<double> y(v.size());
  for (std::int64_t o = 0; o < outer; ++o)
    for (std::int64_t i = 0; i < inner; ++i) {
      auto at = [&](std::int64_t j) { return static_cast<std::size_t>((o * n + j) * inner + i); };
      double mx = -INFINITY;
      for (std::int64_t j = 0; j < n; ++j) mx = std::max(mx, v[at(j)]);
      double z = 0;
      for (std::int64_t j = 0; j < n; ++j) z += std::exp(v[at(j)] - mx);
      for (std::int64_t j = 0; j < n; ++j)
        y[at(j)] = log ? v[at(j)] - mx - std::log(z) : std::exp(v[at(j)] - mx) / z;
    }
  return tensor(y, s, x.dtype());
}

bool all_finite(const Tensor& t) {
  for (double v : t.to_vector<double>())
    if (!std::isfinite(v)) return false;
  return true;
}

}  // namespace

// ---------------------------------------------------------------- softmax / log_softmax

TEST_CASE("softmax: values sum to 1 along the dim and match a reference", "[ops][loss]") {
  const Tensor x = uniform({2, 3, 4}, -3, 3, kFloat64);
  for (std::int64_t dim : {0, 1, 2, -1, -2}) {
    INFO("dim " << dim);
    const Tensor y = softmax(x, dim);
    REQUIRE(y.shape() == x.shape());
    REQUIRE(allclose(y, softmax_reference(x, dim, false), 1e-12, 1e-14));
    REQUIRE(allclose(sum(y, {dim}), ones(sum(x, {dim}).shape(), kFloat64), 1e-12, 1e-12));
    REQUIRE(allclose(log_softmax(x, dim), softmax_reference(x, dim, true), 1e-12, 1e-12));
    REQUIRE(allclose(exp(log_softmax(x, dim)), y, 1e-12, 1e-14));
    for (double v : y.to_vector<double>()) REQUIRE((v > 0.0 && v < 1.0));
  }
  SECTION("float32") {
    const Tensor x32 = x.to(kFloat32);
    for (std::int64_t dim : {0, 1, 2}) {
      REQUIRE(softmax(x32, dim).dtype() == kFloat32);
      REQUIRE(
          allclose(softmax(x32, dim), softmax_reference(x, dim, false).to(kFloat32), 1e-5, 1e-6));
      REQUIRE(allclose(log_softmax(x32, dim), softmax_reference(x, dim, true).to(kFloat32), 1e-5,
                       1e-5));
    }
  }
  SECTION("non-contiguous input") {
    const Tensor xt = x.transpose(0, 2);  // [4, 3, 2]
    for (std::int64_t dim : {0, 1, 2})
      REQUIRE(
          allclose(softmax(xt, dim), softmax_reference(xt.contiguous(), dim, false), 1e-12, 1e-14));
  }
}

TEST_CASE("softmax: exact small cases", "[ops][loss]") {
  REQUIRE(equal(softmax(f32({0, 0, 0, 0}, {4}), 0), f32({0.25, 0.25, 0.25, 0.25}, {4})));
  REQUIRE(equal(softmax(f32({3, 3, 1, 1}, {2, 2}), 1), f32({0.5, 0.5, 0.5, 0.5}, {2, 2})));
  REQUIRE(equal(softmax(f32({3, 1, 3, 1}, {2, 2}), 0), f32({0.5, 0.5, 0.5, 0.5}, {2, 2})));
  REQUIRE(equal(log_softmax(f32({5, 5}, {2}), 0), f32({-std::log(2.0f), -std::log(2.0f)}, {2})));
  // A scalar is its own (single-element) distribution.
  REQUIRE(equal(softmax(f32({7}, {}), 0), f32({1}, {})));
  REQUIRE(equal(log_softmax(f32({7}, {}), -1), f32({0}, {})));
  // Empty tensors: nothing to normalise, no element read.
  REQUIRE(softmax(zeros({2, 0}), 1).shape() == Shape{2, 0});
  REQUIRE(log_softmax(zeros({0, 3}), 1).shape() == Shape{0, 3});
  REQUIRE(softmax(zeros({3, 0, 2}), 1).shape() == Shape{3, 0, 2});
  // A size-1 dim.
  REQUIRE(equal(softmax(f32({1, 2, 3}, {3, 1}), 1), f32({1, 1, 1}, {3, 1})));
}

TEST_CASE("softmax and log_softmax are stable with large logits", "[ops][loss]") {
  for (DType dt : {kFloat32, kFloat64}) {
    const Tensor x = tensor({1000, 1000, 1000, 0, -1000, 1000, 1000, 999}, {4, 2}, dt);
    const Tensor y = softmax(x, 1);
    const Tensor ly = log_softmax(x, 1);
    REQUIRE(all_finite(y));
    REQUIRE(all_finite(ly));
    REQUIRE(
        allclose(y,
                 tensor({0.5, 0.5, 1, 0, 0, 1, 1 / (1 + std::exp(-1.0)), 1 / (1 + std::exp(1.0))},
                        {4, 2}, dt),
                 1e-6, 1e-7));
    REQUIRE(allclose(ly,
                     tensor({-std::log(2.0), -std::log(2.0), 0, -1000, -2000, 0,
                             -std::log1p(std::exp(-1.0)), -1 - std::log1p(std::exp(-1.0))},
                            {4, 2}, dt),
                     1e-6, 1e-6));
  }
  // -inf logits get probability 0 (log-probability -inf) without disturbing the others.
  const double inf = std::numeric_limits<double>::infinity();
  const Tensor z = tensor({-inf, 0, 2, -inf}, {2, 2}, kFloat64);
  REQUIRE(equal(softmax(z, 1), tensor({0, 1, 1, 0}, {2, 2}, kFloat64)));
  REQUIRE(equal(log_softmax(z, 1), tensor({-inf, 0, 0, -inf}, {2, 2}, kFloat64)));
  // Large logits in backward too.
  const Tensor big = tensor({1000, 0, -1000}, {1, 3}, kFloat64).requires_grad_(true);
  cross_entropy(big, labels({1})).backward();
  REQUIRE(all_finite(big.grad()));
  REQUIRE(allclose(big.grad(), tensor({1, -1, 0}, {1, 3}, kFloat64), 1e-12, 1e-12));
}

TEST_CASE("softmax and log_softmax: gradcheck over dims", "[ops][loss][grad]") {
  for (const Shape& shape : {Shape{5}, Shape{3, 4}, Shape{2, 3, 4}}) {
    const Tensor x = leaf(shape, -2, 2);
    // Weights make the Jacobian of a sum over a softmax non-zero.
    const Tensor w = uniform(shape, -1, 1, kFloat64);
    for (std::int64_t dim = -static_cast<std::int64_t>(shape.size());
         dim < static_cast<std::int64_t>(shape.size()); ++dim) {
      INFO(to_string(shape) << " dim " << dim);
      CT_REQUIRE_GRADCHECK([dim](const std::vector<Tensor>& v) { return softmax(v[0], dim); },
                           std::vector<Tensor>{x});
      CT_REQUIRE_GRADCHECK([dim](const std::vector<Tensor>& v) { return log_softmax(v[0], dim); },
                           std::vector<Tensor>{x});
      CT_REQUIRE_GRADCHECK(
          ([dim, w](const std::vector<Tensor>& v) { return sum(softmax(v[0], dim) * w); }),
          std::vector<Tensor>{x});
      CT_REQUIRE_GRADCHECK(
          ([dim, w](const std::vector<Tensor>& v) { return sum(log_softmax(v[0], dim) * w); }),
          std::vector<Tensor>{x});
    }
  }
  SECTION("non-contiguous input") {
    CT_REQUIRE_GRADCHECK([](const std::vector<Tensor>& v) { return log_softmax(v[0].t(), 1); },
                         std::vector<Tensor>{leaf({4, 3})});
  }
}

TEST_CASE("softmax and log_softmax of a single element have a zero gradient", "[ops][loss][grad]") {
  // log_softmax(x) = x - log(exp(x)) = 0 whatever x: its derivative is 0, as softmax's is.
  for (const Shape& shape : {Shape{}, Shape{1}, Shape{3, 1}}) {
    INFO(to_string(shape));
    Tensor x =
        tensor(std::vector<double>(static_cast<std::size_t>(numel(shape)), 2.0), shape, kFloat64)
            .requires_grad_(true);
    const std::int64_t dim = shape.empty() ? 0 : -1;
    sum(log_softmax(x, dim) * 3.0).backward();
    REQUIRE(equal(x.grad(), zeros(shape, kFloat64)));
    x.zero_grad();
    sum(softmax(x, dim) * 3.0).backward();
    REQUIRE(equal(x.grad(), zeros(shape, kFloat64)));
  }
}

// ---------------------------------------------------------------- mse_loss

TEST_CASE("mse_loss: exact values for each reduction", "[ops][loss]") {
  const Tensor input = f32({1, 2, 3, 4}, {2, 2});
  const Tensor target = f32({1, 0, 5, 8}, {2, 2});  // squared errors 0, 4, 4, 16
  REQUIRE(equal(mse_loss(input, target, Reduction::None), f32({0, 4, 4, 16}, {2, 2})));
  REQUIRE(equal(mse_loss(input, target, Reduction::Sum), f32({24}, {})));
  REQUIRE(equal(mse_loss(input, target, Reduction::Mean), f32({6}, {})));
  REQUIRE(equal(mse_loss(input, target), f32({6}, {})));  // Mean by default
  REQUIRE(equal(mse_loss(target, input, Reduction::Sum), f32({24}, {})));
  REQUIRE(equal(mse_loss(f32({3}, {}), f32({1}, {})), f32({4}, {})));
}

TEST_CASE("mse_loss: gradcheck of input and target", "[ops][loss][grad]") {
  for (Reduction r : {Reduction::None, Reduction::Mean, Reduction::Sum}) {
    INFO("reduction " << static_cast<int>(r));
    CT_REQUIRE_GRADCHECK([r](const std::vector<Tensor>& v) { return mse_loss(v[0], v[1], r); },
                         (std::vector<Tensor>{leaf({3, 4}), leaf({3, 4})}));
    CT_REQUIRE_GRADCHECK([r](const std::vector<Tensor>& v) { return mse_loss(v[0], v[1], r); },
                         (std::vector<Tensor>{leaf({5}), uniform({5}, -1, 1, kFloat64)}));
  }
  // d/dinput of the mean: 2 (input - target) / n.
  Tensor in = f32({1, 2, 3, 4}, {4}).requires_grad_(true);
  mse_loss(in, f32({0, 0, 5, 0}, {4})).backward();
  REQUIRE(equal(in.grad(), f32({0.5, 1, -1, 2}, {4})));
}

// ---------------------------------------------------------------- nll_loss / cross_entropy

TEST_CASE("nll_loss: exact values for each reduction", "[ops][loss]") {
  const Tensor lp = f32({-1, -2, -3, -4,  //
                         -5, -6, -7, -8,  //
                         -1, -1, -2, -4},
                        {3, 4});
  const Tensor y = labels({2, 0, 3});
  REQUIRE(equal(nll_loss(lp, y, Reduction::None), f32({3, 5, 4}, {3})));
  REQUIRE(equal(nll_loss(lp, y, Reduction::Sum), f32({12}, {})));
  REQUIRE(equal(nll_loss(lp, y, Reduction::Mean), f32({4}, {})));
  REQUIRE(equal(nll_loss(lp, y), f32({4}, {})));
  // Labels given as a strided view and from tensor(..., kInt64).
  const Tensor strided =
      from_vector(std::vector<std::int64_t>{2, 9, 0, 9, 3, 9}, {3, 2}).narrow(1, 0, 1).squeeze(1);
  REQUIRE(equal(nll_loss(lp, strided, Reduction::None), f32({3, 5, 4}, {3})));
  REQUIRE(equal(nll_loss(lp, tensor({1, 1, 1}, kInt64), Reduction::Sum), f32({9}, {})));
}

TEST_CASE("cross_entropy: exact and reference values for each reduction", "[ops][loss]") {
  // Equal logits: every sample's loss is log(C).
  const Tensor flat = zeros({2, 4}, kFloat64);
  REQUIRE(allclose(cross_entropy(flat, labels({1, 3}), Reduction::None),
                   full({2}, std::log(4.0), kFloat64), 1e-15, 0));
  REQUIRE(allclose(cross_entropy(flat, labels({1, 3}), Reduction::Sum),
                   full({}, 2 * std::log(4.0), kFloat64), 1e-15, 0));
  REQUIRE(
      allclose(cross_entropy(flat, labels({1, 3})), full({}, std::log(4.0), kFloat64), 1e-15, 0));
  // Logits [0, ln 3]: p = [1/4, 3/4].
  const Tensor z = tensor({0, std::log(3.0), std::log(3.0), 0}, {2, 2}, kFloat64);
  REQUIRE(allclose(cross_entropy(z, labels({1, 1}), Reduction::None),
                   tensor({std::log(4.0 / 3.0), std::log(4.0)}, kFloat64), 1e-14, 1e-15));
  // Agrees with nll_loss of log_softmax on random logits.
  const Tensor x = uniform({5, 7}, -3, 3, kFloat64);
  const Tensor y = randint(0, 7, {5});
  for (Reduction r : {Reduction::None, Reduction::Mean, Reduction::Sum})
    REQUIRE(equal(cross_entropy(x, y, r), nll_loss(log_softmax(x, 1), y, r)));
}

TEST_CASE("nll_loss and cross_entropy: gradcheck of the differentiable input",
          "[ops][loss][grad]") {
  const Tensor y = labels({0, 2, 1, 2});
  for (Reduction r : {Reduction::None, Reduction::Mean, Reduction::Sum}) {
    INFO("reduction " << static_cast<int>(r));
    CT_REQUIRE_GRADCHECK(([y, r](const std::vector<Tensor>& v) { return nll_loss(v[0], y, r); }),
                         std::vector<Tensor>{leaf({4, 3}, -3, 0)});
    CT_REQUIRE_GRADCHECK(
        ([y, r](const std::vector<Tensor>& v) { return cross_entropy(v[0], y, r); }),
        std::vector<Tensor>{leaf({4, 3}, -2, 2)});
    CT_REQUIRE_GRADCHECK(
        ([y, r](const std::vector<Tensor>& v) { return nll_loss(log_softmax(v[0], 1), y, r); }),
        std::vector<Tensor>{leaf({4, 3}, -2, 2)});
  }
  SECTION("non-contiguous logits") {
    CT_REQUIRE_GRADCHECK([y](const std::vector<Tensor>& v) { return cross_entropy(v[0].t(), y); },
                         std::vector<Tensor>{leaf({3, 4}, -2, 2)});
  }
}

TEST_CASE("nll_loss and cross_entropy: gradients have the expected values", "[ops][loss][grad]") {
  Tensor lp = zeros({2, 3}).requires_grad_(true);
  nll_loss(lp, labels({2, 0}), Reduction::Sum).backward();
  REQUIRE(equal(lp.grad(), f32({0, 0, -1, -1, 0, 0}, {2, 3})));
  lp.zero_grad();
  nll_loss(lp, labels({2, 0}), Reduction::Mean).backward();
  REQUIRE(equal(lp.grad(), f32({0, 0, -0.5, -0.5, 0, 0}, {2, 3})));
  lp.zero_grad();
  nll_loss(lp, labels({1, 1}), Reduction::None).backward(f32({3, 4}, {2}));
  REQUIRE(equal(lp.grad(), f32({0, -3, 0, 0, -4, 0}, {2, 3})));

  // cross_entropy (mean): (softmax - one_hot) / N; with equal logits softmax is 1/4.
  Tensor logits = zeros({2, 4}).requires_grad_(true);
  cross_entropy(logits, labels({0, 3})).backward();
  REQUIRE(allclose(logits.grad(),
                   f32({-0.375, 0.125, 0.125, 0.125, 0.125, 0.125, 0.125, -0.375}, {2, 4}), 1e-6,
                   1e-7));
}

// ---------------------------------------------------------------- label smoothing, probabilities

namespace {

// Per-sample cross-entropy against an explicit target distribution, with loops in double.
std::vector<double> ce_reference(const Tensor& logits, const std::vector<std::vector<double>>& t) {
  const Tensor lp = softmax_reference(logits, 1, true);
  const std::int64_t n = logits.size(0), c = logits.size(1);
  std::vector<double> out;
  for (std::int64_t i = 0; i < n; ++i) {
    double acc = 0;
    for (std::int64_t j = 0; j < c; ++j)
      acc -= t[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)] * lp.at<double>({i, j});
    out.push_back(acc);
  }
  return out;
}

std::vector<std::vector<double>> smoothed_one_hot(const std::vector<std::int64_t>& y,
                                                  std::int64_t c, double eps) {
  std::vector<std::vector<double>> t;
  for (std::int64_t label : y) {
    std::vector<double> row(static_cast<std::size_t>(c), eps / static_cast<double>(c));
    row[static_cast<std::size_t>(label)] += 1 - eps;
    t.push_back(row);
  }
  return t;
}

}  // namespace

TEST_CASE("cross_entropy: label smoothing matches its definition", "[ops][loss]") {
  const Tensor x = uniform({5, 4}, -3, 3, kFloat64);
  const std::vector<std::int64_t> y = {0, 3, 1, 1, 2};
  for (double eps : {0.0, 0.1, 0.5, 1.0}) {
    INFO("eps " << eps);
    const auto ref = ce_reference(x, smoothed_one_hot(y, 4, eps));
    double total = 0;
    for (double v : ref) total += v;
    REQUIRE(allclose(cross_entropy(x, labels(y), Reduction::None, eps), tensor(ref, kFloat64),
                     1e-13, 1e-14));
    REQUIRE(allclose(cross_entropy(x, labels(y), Reduction::Sum, eps), full({}, total, kFloat64),
                     1e-13, 1e-14));
    REQUIRE(allclose(cross_entropy(x, labels(y), Reduction::Mean, eps),
                     full({}, total / 5, kFloat64), 1e-13, 1e-14));
  }
  // eps = 0 is the plain loss, bit for bit.
  REQUIRE(equal(cross_entropy(x, labels(y), Reduction::Mean, 0.0), cross_entropy(x, labels(y))));
  // Equal logits: every target distribution costs log(C).
  REQUIRE(allclose(cross_entropy(zeros({2, 4}, kFloat64), labels({1, 2}), Reduction::None, 0.3),
                   full({2}, std::log(4.0), kFloat64), 1e-15, 1e-15));
  // float32.
  REQUIRE(allclose(cross_entropy(x.to(kFloat32), labels(y), Reduction::Mean, 0.2),
                   cross_entropy(x, labels(y), Reduction::Mean, 0.2).to(kFloat32), 1e-5, 1e-6));
}

TEST_CASE("cross_entropy: probability targets", "[ops][loss]") {
  const Tensor x = uniform({3, 5}, -2, 2, kFloat64);
  const Tensor p = softmax(uniform({3, 5}, -1, 1, kFloat64), 1);
  std::vector<std::vector<double>> rows(3);
  for (std::int64_t i = 0; i < 3; ++i)
    for (std::int64_t j = 0; j < 5; ++j)
      rows[static_cast<std::size_t>(i)].push_back(p.at<double>({i, j}));
  for (double eps : {0.0, 0.25}) {
    INFO("eps " << eps);
    auto t = rows;
    for (auto& r : t)
      for (auto& v : r) v = v * (1 - eps) + eps / 5;
    const auto ref = ce_reference(x, t);
    REQUIRE(
        allclose(cross_entropy(x, p, Reduction::None, eps), tensor(ref, kFloat64), 1e-13, 1e-14));
    REQUIRE(allclose(cross_entropy(x, p, Reduction::Sum, eps),
                     full({}, ref[0] + ref[1] + ref[2], kFloat64), 1e-13, 1e-14));
    REQUIRE(allclose(cross_entropy(x, p, Reduction::Mean, eps),
                     full({}, (ref[0] + ref[1] + ref[2]) / 3, kFloat64), 1e-13, 1e-14));
  }
  // One-hot probabilities give the label loss.
  const Tensor one_hot = tensor({0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0}, {3, 5}, kFloat64);
  for (double eps : {0.0, 0.3})
    REQUIRE(allclose(cross_entropy(x, one_hot, Reduction::Mean, eps),
                     cross_entropy(x, labels({1, 4, 0}), Reduction::Mean, eps), 1e-14, 1e-15));
}

TEST_CASE("cross_entropy: gradcheck with label smoothing and probability targets",
          "[ops][loss][grad]") {
  const Tensor y = labels({0, 2, 1, 2});
  for (Reduction r : {Reduction::None, Reduction::Mean, Reduction::Sum}) {
    for (double eps : {0.1, 0.7}) {
      INFO("reduction " << static_cast<int>(r) << " eps " << eps);
      CT_REQUIRE_GRADCHECK(
          ([y, r, eps](const std::vector<Tensor>& v) { return cross_entropy(v[0], y, r, eps); }),
          std::vector<Tensor>{leaf({4, 3}, -2, 2)});
      // Both the logits and the target probabilities are differentiable.
      CT_REQUIRE_GRADCHECK(
          ([r, eps](const std::vector<Tensor>& v) { return cross_entropy(v[0], v[1], r, eps); }),
          (std::vector<Tensor>{leaf({4, 3}, -2, 2), leaf({4, 3}, 0, 1)}));
    }
  }
}

// ---------------------------------------------------------------- errors

TEST_CASE("loss errors", "[ops][loss][errors]") {
  const Tensor lp = zeros({3, 4});
  SECTION("label out of range") {
    CT_REQUIRE_ERROR(nll_loss(lp, labels({0, 4, 1})),
                     "nll_loss: expected labels in [0, 4), got 4 at position 1");
    CT_REQUIRE_ERROR(nll_loss(lp, labels({0, 1, -1})),
                     "nll_loss: expected labels in [0, 4), got -1 at position 2 (ignore_index = "
                     "-100)");
    CT_REQUIRE_ERROR(cross_entropy(lp, labels({7, 0, 0})), "expected labels in [0, 4), got 7");
  }
  SECTION("float labels") {
    CT_REQUIRE_ERROR(nll_loss(lp, tensor({0, 1, 2})),
                     "nll_loss: expected int64 labels, got float32");
    CT_REQUIRE_ERROR(cross_entropy(lp, tensor({0, 1, 2}, kFloat64)),
                     "cross_entropy: expected int64 labels [N, *] or class probabilities of the "
                     "logits' shape [3, 4], got float64 [3]");
    CT_REQUIRE_ERROR(cross_entropy(lp, zeros({3, 4}, kFloat64)),
                     "cross_entropy: expected tensors of one dtype");
  }
  SECTION("wrong ranks") {
    CT_REQUIRE_ERROR(nll_loss(zeros({}), from_vector(std::vector<std::int64_t>{0}, {})),
                     "nll_loss: expected log-probabilities [N, C, *] or [C], got []");
    CT_REQUIRE_ERROR(cross_entropy(zeros({}), from_vector(std::vector<std::int64_t>{0}, {})),
                     "cross_entropy: expected logits [N, C, *] or [C], got []");
    // Unbatched [C] takes labels [], N-d [N, C, d] takes [N, d].
    CT_REQUIRE_ERROR(nll_loss(zeros({4}), labels({0})),
                     "nll_loss: expected labels of shape [] (log-probabilities [4] without the "
                     "class dim), got [1]");
    CT_REQUIRE_ERROR(cross_entropy(zeros({2, 3, 4}), labels({0, 1})),
                     "cross_entropy: expected labels of shape [2, 4] (logits [2, 3, 4] without "
                     "the class dim), got [2]");
    CT_REQUIRE_ERROR(nll_loss(lp, from_vector(std::vector<std::int64_t>{0, 1, 2}, {3, 1})),
                     "nll_loss: expected labels of shape [3] (log-probabilities [3, 4]");
    CT_REQUIRE_ERROR(nll_loss(lp, from_vector(std::vector<std::int64_t>{1}, {})),
                     "expected labels of shape [3]");
  }
  SECTION("mismatched N") {
    CT_REQUIRE_ERROR(
        nll_loss(lp, labels({0, 1})),
        "nll_loss: expected labels of shape [3] (log-probabilities [3, 4] without the class "
        "dim), got [2]");
    CT_REQUIRE_ERROR(cross_entropy(lp, labels({0, 1, 2, 3})), "expected labels of shape [3]");
  }
  SECTION("label smoothing outside [0, 1]") {
    CT_REQUIRE_ERROR(cross_entropy(lp, labels({0, 1, 2}), Reduction::Mean, -0.1),
                     "cross_entropy: expected label_smoothing in [0, 1], got -0.1");
    CT_REQUIRE_ERROR(cross_entropy(lp, labels({0, 1, 2}), Reduction::Sum, 1.5),
                     "cross_entropy: expected label_smoothing in [0, 1], got 1.5");
    CT_REQUIRE_ERROR(cross_entropy(lp, zeros({3, 4}), Reduction::Mean, NAN),
                     "cross_entropy: expected label_smoothing in [0, 1], got nan");
    CT_REQUIRE_ERROR(cross_entropy(lp, Tensor(), Reduction::Mean, 0.1),
                     "cross_entropy: expected a defined labels tensor");
  }
  SECTION("mse shape and dtype mismatch") {
    CT_REQUIRE_ERROR(mse_loss(zeros({2, 3}), zeros({3})),
                     "mse_loss: expected input and target of one shape, got [2, 3] and [3]");
    CT_REQUIRE_ERROR(mse_loss(zeros({2, 3}), zeros({3, 2})),
                     "mse_loss: expected input and target of one shape");
    CT_REQUIRE_ERROR(mse_loss(zeros({3}), zeros({3}, kFloat64)),
                     "mse_loss: expected tensors of one dtype");
  }
  SECTION("softmax dims, dtypes and undefined inputs") {
    CT_REQUIRE_ERROR(softmax(lp, 2), "softmax: expected dim in [-2, 2), got 2");
    CT_REQUIRE_ERROR(log_softmax(lp, -3), "log_softmax: expected dim in [-2, 2), got -3");
    CT_REQUIRE_ERROR(softmax(zeros({3}, kInt64), 0), "softmax: expected a floating-point tensor");
    CT_REQUIRE_ERROR(nll_loss(zeros({3, 4}, kInt64), labels({0, 1, 2})),
                     "nll_loss: expected a floating-point tensor");
    CT_REQUIRE_ERROR(nll_loss(lp, Tensor()), "nll_loss: expected a defined labels tensor");
    CT_REQUIRE_ERROR(cross_entropy(Tensor(), labels({0})),
                     "cross_entropy: expected a defined input tensor");
  }
}
