// Tests of the dense-prediction losses of ops/loss: nll_loss and cross_entropy over [N, C],
// [N, C, H, W] and [N, C, D, H, W] (and unbatched [C]) with class weights, ignore_index and label
// smoothing, and binary_cross_entropy(_with_logits) with weight and pos_weight. Golden values from
// PyTorch 1.13 (tests/golden/loss.txt, scripts/make_loss_golden.py), the op harness over several
// shapes (float32 against float64, CUDA against the CPU, float64 gradchecks), exact small-integer
// cases, PyTorch's NaN where every target is ignored, and one test per error message.
#include <cmath>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/op_check.h"
#include "support/test_util.h"

namespace {

using namespace convtape;
using ct_test::equal;
using ct_test::OpCheck;
using ct_test::Tolerance;

Tensor i64(const std::vector<std::int64_t>& v, const Shape& shape) {
  return from_vector(v, shape);
}

// Labels in [0, classes) with every third position (from `offset`) set to ignore.
Tensor labels_with(const Shape& shape, std::int64_t classes, std::int64_t ignore,
                   std::int64_t offset = 0) {
  std::vector<std::int64_t> v = randint(0, classes, shape).to_vector<std::int64_t>();
  for (std::size_t i = static_cast<std::size_t>(offset); i < v.size(); i += 3) v[i] = ignore;
  return from_vector(v, shape);
}

// ---------------------------------------------------------------- golden values

using Inputs = ct_test::GoldenCase;

using ct_test::in;

struct Spec {
  std::vector<std::string> grads;  // inputs that require grad; the file has grad_<name> for each
  std::function<Tensor(const Inputs&)> fn;
};

Tensor lab(const Inputs& i) {
  return in(i, "labels").to(kInt64);
}

// Reductions, ignore_index and label_smoothing as scripts/make_loss_golden.py writes them.
const std::map<std::string, Spec>& specs() {
  using R = Reduction;
  static const std::map<std::string, Spec> table = {
      {"bce_weight_none",
       {{"x", "t"},
        [](const Inputs& i) {
          return binary_cross_entropy(in(i, "x"), in(i, "t"), in(i, "w"), R::None);
        }}},
      {"bce_weight_mean",
       {{"x", "t"},
        [](const Inputs& i) { return binary_cross_entropy(in(i, "x"), in(i, "t"), in(i, "w")); }}},
      {"bce_sum",
       {{"x", "t"},
        [](const Inputs& i) { return binary_cross_entropy(in(i, "x"), in(i, "t"), {}, R::Sum); }}},
      {"bce_edges",
       {{"x"},
        [](const Inputs& i) { return binary_cross_entropy(in(i, "x"), in(i, "t"), {}, R::None); }}},
      {"f32_bce_weight_mean",
       {{},
        [](const Inputs& i) { return binary_cross_entropy(in(i, "x"), in(i, "t"), in(i, "w")); }}},
      {"bcel_weight_pos_none",
       {{"x", "t"},
        [](const Inputs& i) {
          return binary_cross_entropy_with_logits(in(i, "x"), in(i, "t"), in(i, "w"), in(i, "p"),
                                                  R::None);
        }}},
      {"bcel_pos_mean",
       {{"x", "t"},
        [](const Inputs& i) {
          return binary_cross_entropy_with_logits(in(i, "x"), in(i, "t"), {}, in(i, "p"));
        }}},
      {"bcel_weight_sum",
       {{"x", "t"},
        [](const Inputs& i) {
          return binary_cross_entropy_with_logits(in(i, "x"), in(i, "t"), in(i, "w"), {}, R::Sum);
        }}},
      {"bcel_large_mean",
       {{"x", "t"},
        [](const Inputs& i) {
          return binary_cross_entropy_with_logits(in(i, "x"), in(i, "t"), {}, in(i, "p"));
        }}},
      {"f32_bcel_weight_pos_mean",
       {{},
        [](const Inputs& i) {
          return binary_cross_entropy_with_logits(in(i, "x"), in(i, "t"), in(i, "w"), in(i, "p"));
        }}},
      {"nll_2d_weight_ignore_mean",
       {{"x"},
        [](const Inputs& i) {
          return nll_loss(in(i, "x"), lab(i), NllLossOptions().weight(in(i, "w")));
        }}},
      {"nll_2d_weight_ignore_sum",
       {{"x"},
        [](const Inputs& i) {
          return nll_loss(in(i, "x"), lab(i),
                          NllLossOptions().weight(in(i, "w")).reduction(R::Sum));
        }}},
      {"nll_4d_weight_ignore_mean",
       {{"x"},
        [](const Inputs& i) {
          return nll_loss(in(i, "x"), lab(i), NllLossOptions().weight(in(i, "w")));
        }}},
      {"nll_4d_none",
       {{"x"}, [](const Inputs& i) { return nll_loss(in(i, "x"), lab(i), R::None); }}},
      {"nll_5d_weight_ignore1_mean",
       {{"x"},
        [](const Inputs& i) {
          return nll_loss(in(i, "x"), lab(i), NllLossOptions().weight(in(i, "w")).ignore_index(1));
        }}},
      {"nll_5d_weight_sum",
       {{"x"},
        [](const Inputs& i) {
          return nll_loss(in(i, "x"), lab(i),
                          NllLossOptions().weight(in(i, "w")).reduction(R::Sum));
        }}},
      {"f32_nll_4d_weight_ignore_mean",
       {{},
        [](const Inputs& i) {
          return nll_loss(in(i, "x"), lab(i), NllLossOptions().weight(in(i, "w")));
        }}},
      {"ce_2d_weight_ignore2_ls_mean",
       {{"x"},
        [](const Inputs& i) {
          return cross_entropy(
              in(i, "x"), lab(i),
              CrossEntropyOptions().weight(in(i, "w")).ignore_index(2).label_smoothing(0.2));
        }}},
      {"ce_4d_weight_ignore_ls_mean",
       {{"x"},
        [](const Inputs& i) {
          return cross_entropy(in(i, "x"), lab(i),
                               CrossEntropyOptions().weight(in(i, "w")).label_smoothing(0.1));
        }}},
      {"ce_4d_weight_ignore_ls_none",
       {{"x"},
        [](const Inputs& i) {
          return cross_entropy(
              in(i, "x"), lab(i),
              CrossEntropyOptions().weight(in(i, "w")).label_smoothing(0.1).reduction(R::None));
        }}},
      {"ce_4d_weight_ignore_ls_sum",
       {{"x"},
        [](const Inputs& i) {
          return cross_entropy(
              in(i, "x"), lab(i),
              CrossEntropyOptions().weight(in(i, "w")).label_smoothing(0.3).reduction(R::Sum));
        }}},
      {"ce_4d_ignore_mean",
       {{"x"}, [](const Inputs& i) { return cross_entropy(in(i, "x"), lab(i)); }}},
      {"ce_5d_weight_mean",
       {{"x"},
        [](const Inputs& i) {
          return cross_entropy(in(i, "x"), lab(i), CrossEntropyOptions().weight(in(i, "w")));
        }}},
      {"ce_prob_4d_weight_ls_mean",
       {{"x", "p"},
        [](const Inputs& i) {
          return cross_entropy(in(i, "x"), in(i, "p"),
                               CrossEntropyOptions().weight(in(i, "w")).label_smoothing(0.15));
        }}},
      {"ce_prob_3d_none",
       {{"x", "p"},
        [](const Inputs& i) { return cross_entropy(in(i, "x"), in(i, "p"), R::None); }}},
      {"ce_unbatched_weight_ls",
       {{"x"},
        [](const Inputs& i) {
          return cross_entropy(in(i, "x"), lab(i),
                               CrossEntropyOptions().weight(in(i, "w")).label_smoothing(0.1));
        }}},
      {"f32_ce_4d_weight_ignore_ls_mean",
       {{},
        [](const Inputs& i) {
          return cross_entropy(in(i, "x"), lab(i),
                               CrossEntropyOptions().weight(in(i, "w")).label_smoothing(0.1));
        }}},
  };
  return table;
}

// Largest |got - want| / max(|want|, 1e-3) over the elements: the figure the test bounds.
double rel_error(const Tensor& got, const Tensor& want) {
  const auto g = got.to(kFloat64).to_vector<double>(), w = want.to_vector<double>();
  double worst = 0;
  for (std::size_t k = 0; k < w.size(); ++k)
    worst = std::max(worst, std::abs(g[k] - w[k]) / std::max(std::abs(w[k]), 1e-3));
  return worst;
}

}  // namespace

TEST_CASE("losses: golden values from PyTorch 1.13", "[ops][loss][golden]") {
  const auto cases = ct_test::load_golden("loss.txt");
  REQUIRE(cases.size() == specs().size());
  double worst64 = 0, worst32 = 0;
  for (const auto& [name, data] : cases) {
    INFO("case " << name);
    const auto it = specs().find(name);
    REQUIRE(it != specs().end());
    const Spec& spec = it->second;
    const bool f32 = name.rfind("f32_", 0) == 0;
    Inputs inputs;
    for (const auto& [k, v] : data) {
      if (k == "out" || k == "g" || k.rfind("grad_", 0) == 0) continue;
      Tensor t = f32 && k != "labels" ? v.to(kFloat32) : v.clone();
      for (const auto& gname : spec.grads)
        if (gname == k) t.requires_grad_(true);
      inputs[k] = t;
    }
    const Tensor out = spec.fn(inputs);
    const Tensor& want = data.at("out");
    REQUIRE(out.shape() == want.shape());
    if (f32) {
      REQUIRE(out.dtype() == kFloat32);
      REQUIRE(ct_test::close(out.to(kFloat64), want, Tolerance{1e-5, 1e-6}));
      worst32 = std::max(worst32, rel_error(out, want));
      continue;
    }
    REQUIRE(ct_test::close(out, want, Tolerance{1e-12, 1e-13}));
    worst64 = std::max(worst64, rel_error(out, want));
    sum(mul(out, data.at("g"))).backward();
    for (const auto& gname : spec.grads) {
      INFO("grad_" << gname);
      const Tensor& gwant = data.at("grad_" + gname);
      REQUIRE(inputs.at(gname).grad().defined());
      REQUIRE(ct_test::close(inputs.at(gname).grad(), gwant, Tolerance{1e-11, 1e-12}));
      worst64 = std::max(worst64, rel_error(inputs.at(gname).grad(), gwant));
    }
  }
  INFO("worst relative error: float64 " << worst64 << ", float32 " << worst32);
  CHECK(worst64 < 1e-11);
  CHECK(worst32 < 1e-5);
}

// ---------------------------------------------------------------- the op harness

TEST_CASE("nll_loss and cross_entropy: harness over ranks, weights and ignore_index",
          "[ops][loss][grad]") {
  struct Case {
    Shape x;  // [N, C, *] or [C]
    std::int64_t ignore;
    bool weight;
  };
  const std::vector<Case> cases = {{{5, 4}, -100, true},       {{2, 3, 3, 4}, -100, true},
                                   {{2, 3, 2, 2, 3}, 1, true}, {{2, 4, 5}, 255, false},
                                   {{6}, -100, true},          {{3, 2, 2, 2}, -100, false}};
  for (const Case& c : cases) {
    const bool unbatched = c.x.size() == 1;
    const std::int64_t classes = c.x[unbatched ? 0 : 1];
    Shape pos = unbatched ? Shape{} : c.x;
    if (!unbatched) pos.erase(pos.begin() + 1);
    // Unbatched: one label, not ignored. Otherwise every third position ignored (offset 1).
    const Tensor y = unbatched ? i64({2}, {}) : labels_with(pos, classes, c.ignore, 1);
    const Tensor w = c.weight ? uniform({classes}, 0.5, 2.0, kFloat64) : Tensor();
    for (Reduction r : {Reduction::None, Reduction::Mean, Reduction::Sum}) {
      for (double eps : {0.0, 0.2}) {
        const std::string desc = ct_test::str(c.x) + " ignore " + std::to_string(c.ignore) +
                                 " reduction " + std::to_string(static_cast<int>(r)) + " eps " +
                                 std::to_string(eps);
        INFO(desc);
        const std::int64_t ig = c.ignore;
        if (eps == 0.0)
          OpCheck("nll_loss " + desc,
                  [ig, r](const std::vector<Tensor>& v) {
                    return nll_loss(v[0], v[1],
                                    NllLossOptions().weight(v[2]).ignore_index(ig).reduction(r));
                  },
                  {ct_test::leaf(c.x, -3, 0), y, w})
              .run();
        OpCheck(
            "cross_entropy " + desc,
            [ig, r, eps](const std::vector<Tensor>& v) {
              return cross_entropy(
                  v[0], v[1],
                  CrossEntropyOptions().weight(v[2]).ignore_index(ig).reduction(r).label_smoothing(
                      eps));
            },
            {ct_test::leaf(c.x, -2, 2), y, w})
            .run();
      }
    }
  }
}

TEST_CASE("cross_entropy: harness with N-d probability targets", "[ops][loss][grad]") {
  for (const Shape& s : {Shape{4, 3}, Shape{2, 3, 4}, Shape{2, 4, 2, 3}, Shape{5}}) {
    const std::int64_t classes = s[s.size() == 1 ? 0 : 1];
    const Tensor w = uniform({classes}, 0.5, 2.0, kFloat64);
    for (Reduction r : {Reduction::None, Reduction::Mean, Reduction::Sum}) {
      INFO(ct_test::str(s) << " reduction " << static_cast<int>(r));
      OpCheck("cross_entropy probabilities " + ct_test::str(s),
              [r](const std::vector<Tensor>& v) {
                return cross_entropy(
                    v[0], v[1],
                    CrossEntropyOptions().weight(v[2]).reduction(r).label_smoothing(0.1));
              },
              {ct_test::leaf(s, -2, 2), ct_test::leaf(s, 0, 1), w})
          .run();
    }
  }
}

TEST_CASE("binary cross-entropies: harness over shapes, weights and reductions",
          "[ops][loss][grad]") {
  struct Case {
    Shape x, weight, pos_weight;  // weight / pos_weight {-1}: none
  };
  const std::vector<Case> cases = {{{7}, {-1}, {-1}},
                                   {{3, 4}, {4}, {4}},
                                   {{2, 3, 4, 5}, {3, 1, 1}, {5}},
                                   {{2, 3, 4}, {2, 3, 4}, {1}},
                                   {{}, {-1}, {}}};
  auto opt = [](const Shape& s, double lo, double hi) {
    return s == Shape{-1} ? Tensor() : uniform(s, lo, hi, kFloat64);
  };
  for (const Case& c : cases) {
    const Tensor w = opt(c.weight, 0.5, 2.0), p = opt(c.pos_weight, 0.5, 3.0);
    for (Reduction r : {Reduction::None, Reduction::Mean, Reduction::Sum}) {
      INFO(ct_test::str(c.x) << " reduction " << static_cast<int>(r));
      OpCheck(
          "binary_cross_entropy " + ct_test::str(c.x),
          [r](const std::vector<Tensor>& v) { return binary_cross_entropy(v[0], v[1], v[2], r); },
          {ct_test::leaf(c.x, 0.05, 0.95), ct_test::leaf(c.x, 0, 1), w})
          .run();
      OpCheck("binary_cross_entropy_with_logits " + ct_test::str(c.x),
              [r](const std::vector<Tensor>& v) {
                return binary_cross_entropy_with_logits(v[0], v[1], v[2], v[3], r);
              },
              {ct_test::leaf(c.x, -4, 4), ct_test::leaf(c.x, 0, 1), w, p})
          .run();
    }
  }
}

// ---------------------------------------------------------------- exact small-integer cases

TEST_CASE("nll_loss: exact values with class weights and ignore_index", "[ops][loss]") {
  for (DType dt : {kFloat32, kFloat64}) {
    INFO(dtype_name(dt));
    const Tensor lp = tensor({-1, -2, -3, -4, -5, -6, -9, -8, -7, -1, -3, -1}, {4, 3}, dt);
    const Tensor y = i64({2, -100, 0, 1}, {4});
    const Tensor w = tensor({1, 2, 3}, {3}, dt);
    const auto o = [&] { return NllLossOptions().weight(w); };
    // Losses 3 * 3, ignored, 1 * 9, 2 * 3; the mean divides by 3 + 1 + 2.
    REQUIRE(equal(nll_loss(lp, y, o().reduction(Reduction::None)), tensor({9, 0, 9, 6}, {4}, dt)));
    REQUIRE(equal(nll_loss(lp, y, o().reduction(Reduction::Sum)), tensor({24}, {}, dt)));
    REQUIRE(equal(nll_loss(lp, y, o()), tensor({4}, {}, dt)));
    // Without weights: mean over the 3 positions not ignored.
    REQUIRE(equal(nll_loss(lp, y), tensor({5}, {}, dt)));
    // ignore_index inside [0, C): class 0 ignored, -100 is out of range then.
    REQUIRE(equal(nll_loss(lp, i64({2, 0, 0, 1}, {4}), o().ignore_index(0)), tensor({3}, {}, dt)));
    // The gradient: -w[y] / sum of weights on the labelled entries, 0 on ignored rows.
    Tensor x = lp.clone().requires_grad_(true);
    nll_loss(x, y, o().reduction(Reduction::Sum)).backward();
    REQUIRE(equal(x.grad(), tensor({0, 0, -3, 0, 0, 0, -1, 0, 0, 0, -2, 0}, {4, 3}, dt)));
    x.zero_grad();
    nll_loss(x, y, o()).backward();
    REQUIRE(
        equal(x.grad(), tensor({0, 0, -0.5, 0, 0, 0, -1.0 / 6, 0, 0, 0, -1.0 / 3, 0}, {4, 3}, dt)));
  }
  // [N, C, H, W]: the class dim is dim 1; positions keep their [N, H, W] order.
  const Tensor lp4 = tensor({-1, -2, -3, -4, -10, -20, -30, -40}, {1, 2, 2, 2}, kFloat64);
  const Tensor y4 = i64({0, 1, 1, -100}, {1, 2, 2});
  REQUIRE(equal(nll_loss(lp4, y4, Reduction::None), tensor({1, 20, 30, 0}, {1, 2, 2}, kFloat64)));
  REQUIRE(equal(nll_loss(lp4, y4), tensor({17}, {}, kFloat64)));
  // Unbatched [C] with a label [].
  REQUIRE(equal(nll_loss(tensor({-1, -2, -3}, {3}, kFloat64), i64({1}, {}), Reduction::None),
                tensor({2}, {}, kFloat64)));
}

TEST_CASE("binary cross-entropies: exact values", "[ops][loss]") {
  for (DType dt : {kFloat32, kFloat64}) {
    INFO(dtype_name(dt));
    // Probabilities 0 and 1: PyTorch clamps the logs at -100.
    const Tensor x = tensor({0, 1, 0, 1}, {4}, dt);
    const Tensor t = tensor({1, 0, 0, 1}, {4}, dt);
    REQUIRE(
        equal(binary_cross_entropy(x, t, {}, Reduction::None), tensor({100, 100, 0, 0}, {4}, dt)));
    REQUIRE(equal(binary_cross_entropy(x, t, tensor({3, 0.5, 1, 1}, {4}, dt), Reduction::Sum),
                  tensor({350}, {}, dt)));
    REQUIRE(equal(binary_cross_entropy(x, t), tensor({50}, {}, dt)));
    // Logits of magnitude 1000: the stable form gives exact zeros and magnitudes.
    const Tensor z = tensor({1000, -1000, -1000, 1000}, {2, 2}, dt);
    const Tensor zt = tensor({1, 0, 1, 0}, {2, 2}, dt);
    REQUIRE(equal(binary_cross_entropy_with_logits(z, zt, {}, {}, Reduction::None),
                  tensor({0, 0, 1000, 1000}, {2, 2}, dt)));
    // pos_weight [2] over the last dim weighs the positive terms: 3 * 1000 at (1, 0).
    REQUIRE(equal(binary_cross_entropy_with_logits(z, zt, tensor({2, 1}, {2, 1}, dt),
                                                   tensor({3, 5}, {2}, dt), Reduction::None),
                  tensor({0, 0, 3000, 1000}, {2, 2}, dt)));
    // dx = w * ((p t + 1 - t) sigmoid(x) - p t), exact at sigmoid(+-1000) = 1 / 0.
    Tensor zl = z.clone().requires_grad_(true);
    binary_cross_entropy_with_logits(zl, zt, {}, tensor({3, 5}, {2}, dt), Reduction::Sum)
        .backward();
    REQUIRE(equal(zl.grad(), tensor({0, 0, -3, 1}, {2, 2}, dt)));
    // BCE's gradient floor: w (x - t) / max(x (1 - x), 1e-12f) at x = 1, t = 0 (PyTorch's floor
    // is the float nearest 1e-12).
    Tensor xl = tensor({1, 0.5}, {2}, dt).requires_grad_(true);
    binary_cross_entropy(xl, tensor({0, 0.5}, {2}, dt), {}, Reduction::Sum).backward();
    REQUIRE(equal(xl.grad(), tensor({1.0 / static_cast<double>(1e-12f), 0}, {2}, dt)));
  }
}

TEST_CASE("class losses: every target ignored gives NaN for the mean, as PyTorch", "[ops][loss]") {
  const Tensor lp = log_softmax(uniform({3, 4}, -1, 1, kFloat64), 1);
  const Tensor none = i64({-100, -100, -100}, {3});
  const Tensor w = tensor({1, 2, 3, 4}, {4}, kFloat64);
  REQUIRE(std::isnan(nll_loss(lp, none).item()));
  REQUIRE(std::isnan(nll_loss(lp, none, NllLossOptions().weight(w)).item()));
  REQUIRE(equal(nll_loss(lp, none, Reduction::Sum), zeros({}, kFloat64)));
  REQUIRE(equal(nll_loss(lp, none, Reduction::None), zeros({3}, kFloat64)));
  REQUIRE(std::isnan(cross_entropy(lp, none).item()));
  REQUIRE(std::isnan(cross_entropy(lp, none, CrossEntropyOptions().label_smoothing(0.1)).item()));
  REQUIRE(std::isnan(
      cross_entropy(lp, none, CrossEntropyOptions().weight(w).label_smoothing(0.1)).item()));
  REQUIRE(equal(
      cross_entropy(lp, none, CrossEntropyOptions().label_smoothing(0.1).reduction(Reduction::Sum)),
      zeros({}, kFloat64)));
  // An [N, C, H, W] batch with every pixel ignored, and an empty batch.
  REQUIRE(std::isnan(
      cross_entropy(zeros({2, 3, 2, 2}, kFloat64), full({2, 2, 2}, -100, kInt64)).item()));
  REQUIRE(std::isnan(cross_entropy(zeros({0, 3}, kFloat64), i64({}, {0})).item()));
  REQUIRE(std::isnan(cross_entropy(zeros({0, 3}, kFloat64), zeros({0, 3}, kFloat64)).item()));
  // The gradient stays finite: nothing reaches the ignored rows.
  Tensor x = lp.clone().requires_grad_(true);
  nll_loss(x, none).backward();
  REQUIRE(equal(x.grad(), zeros({3, 4}, kFloat64)));
}

TEST_CASE("class losses: N-d equals the [M, C] form with the class dim last", "[ops][loss]") {
  const Tensor x = uniform({2, 4, 3, 5}, -2, 2, kFloat64);
  const Tensor y = labels_with({2, 3, 5}, 4, -100);
  const Tensor w = uniform({4}, 0.5, 2, kFloat64);
  const Tensor rows = permute(x, {0, 2, 3, 1}).reshape({30, 4});
  const Tensor y1 = y.reshape({30});
  for (Reduction r : {Reduction::None, Reduction::Mean, Reduction::Sum}) {
    const auto o = CrossEntropyOptions().weight(w).reduction(r).label_smoothing(0.2);
    const Tensor nd = cross_entropy(x, y, o), flat = cross_entropy(rows, y1, o);
    REQUIRE(equal(r == Reduction::None ? nd.reshape({30}) : nd, flat));
  }
  // Unbatched [C] equals a batch of one.
  const Tensor v = uniform({5}, -2, 2, kFloat64);
  REQUIRE(equal(cross_entropy(v, i64({3}, {}), Reduction::None).reshape({1}),
                cross_entropy(v.reshape({1, 5}), i64({3}, {1}), Reduction::None)));
  // The old 2-D signatures keep their values: plain labels, no weight.
  const Tensor x2 = uniform({5, 7}, -3, 3, kFloat64);
  const Tensor y2 = randint(0, 7, {5});
  REQUIRE(equal(
      cross_entropy(x2, y2, Reduction::Sum, 0.1),
      cross_entropy(x2, y2, CrossEntropyOptions().reduction(Reduction::Sum).label_smoothing(0.1))));
  REQUIRE(equal(nll_loss(x2, y2), nll_loss(x2, y2, NllLossOptions())));
}

// ---------------------------------------------------------------- errors, one per message

TEST_CASE("class loss errors", "[ops][loss][errors]") {
  const Tensor lp = zeros({2, 3, 4, 5});
  const Tensor y = zeros({2, 4, 5}, kInt64);
  SECTION("labels of the wrong shape") {
    CT_REQUIRE_ERROR(nll_loss(lp, zeros({2, 4}, kInt64)),
                     "nll_loss: expected labels of shape [2, 4, 5] (log-probabilities [2, 3, 4, 5] "
                     "without the class dim), got [2, 4]");
    CT_REQUIRE_ERROR(cross_entropy(lp, zeros({2, 5, 4}, kInt64)),
                     "cross_entropy: expected labels of shape [2, 4, 5] (logits [2, 3, 4, 5]");
  }
  SECTION("labels of the wrong dtype") {
    CT_REQUIRE_ERROR(nll_loss(lp, zeros({2, 4, 5})),
                     "nll_loss: expected int64 labels, got float32");
  }
  SECTION("labels out of range, ignore_index excepted") {
    CT_REQUIRE_ERROR(nll_loss(zeros({3, 4}), i64({0, -100, 4}, {3})),
                     "nll_loss: expected labels in [0, 4), got 4 at position 2 (ignore_index = "
                     "-100)");
    // With ignore_index 255, -100 is an ordinary label, out of range; 255 is accepted.
    CT_REQUIRE_ERROR(cross_entropy(zeros({3, 4}), i64({255, -100, 0}, {3}),
                                   CrossEntropyOptions().ignore_index(255)),
                     "nll_loss: expected labels in [0, 4), got -100 at position 1 "
                     "(ignore_index = 255)");
    REQUIRE(equal(nll_loss(zeros({3, 4}), i64({255, 255, 255}, {3}),
                           NllLossOptions().ignore_index(255).reduction(Reduction::Sum)),
                  zeros({})));
    // N-d: the position is the flat one in the labels.
    CT_REQUIRE_ERROR(nll_loss(zeros({1, 2, 2, 2}), i64({0, 1, 1, 7}, {1, 2, 2})),
                     "got 7 at position 3");
  }
  SECTION("weight of the wrong size") {
    CT_REQUIRE_ERROR(nll_loss(lp, y, NllLossOptions().weight(ones({4}))),
                     "nll_loss: expected weight [C] with C = 3 for log-probabilities [2, 3, 4, 5], "
                     "got [4]");
    CT_REQUIRE_ERROR(cross_entropy(lp, y, CrossEntropyOptions().weight(ones({1, 3}))),
                     "cross_entropy: expected weight [C] with C = 3 for logits [2, 3, 4, 5], got "
                     "[1, 3]");
  }
  SECTION("weight of another dtype") {
    CT_REQUIRE_ERROR(nll_loss(lp, y, NllLossOptions().weight(ones({3}, kFloat64))),
                     "nll_loss: expected tensors of one dtype, got float32 and float64");
  }
  SECTION("weight that requires grad") {
    const Tensor w = ones({3}).requires_grad_(true);
    CT_REQUIRE_ERROR(nll_loss(lp, y, NllLossOptions().weight(w)),
                     "nll_loss: expected a weight that does not require grad (it is not "
                     "differentiable), got one that does");
    // Allowed with probability targets, where it is a plain product (as in PyTorch).
    REQUIRE_NOTHROW(cross_entropy(zeros({2, 3}), zeros({2, 3}), CrossEntropyOptions().weight(w)));
    NoGradGuard no_grad;
    REQUIRE_NOTHROW(nll_loss(lp, y, NllLossOptions().weight(w)));
  }
  SECTION("a scalar input") {
    CT_REQUIRE_ERROR(nll_loss(zeros({}), i64({0}, {})),
                     "nll_loss: expected log-probabilities [N, C, *] or [C], got []");
  }
  SECTION("ignore_index with probability targets") {
    CT_REQUIRE_ERROR(cross_entropy(lp, zeros({2, 3, 4, 5}), CrossEntropyOptions().ignore_index(0)),
                     "cross_entropy: expected ignore_index = -100 with class-probability targets "
                     "(it applies to class labels only), got 0");
  }
  SECTION("probability targets of the wrong shape") {
    CT_REQUIRE_ERROR(cross_entropy(lp, zeros({2, 3, 4})),
                     "cross_entropy: expected int64 labels [N, *] or class probabilities of the "
                     "logits' shape [2, 3, 4, 5], got float32 [2, 3, 4]");
  }
}

TEST_CASE("binary cross-entropy errors", "[ops][loss][errors]") {
  const Tensor x = full({2, 3}, 0.5);
  SECTION("target of another shape") {
    CT_REQUIRE_ERROR(binary_cross_entropy(x, zeros({3})),
                     "binary_cross_entropy: expected target of the input's shape [2, 3], got [3]");
    CT_REQUIRE_ERROR(binary_cross_entropy_with_logits(x, zeros({3, 2})),
                     "binary_cross_entropy_with_logits: expected target of the input's shape "
                     "[2, 3], got [3, 2]");
  }
  SECTION("target of another dtype") {
    CT_REQUIRE_ERROR(
        binary_cross_entropy(x, zeros({2, 3}, kFloat64)),
        "binary_cross_entropy: expected tensors of one dtype, got float32 and float64");
  }
  SECTION("weight not broadcastable to the input") {
    CT_REQUIRE_ERROR(binary_cross_entropy(x, x, ones({2})),
                     "binary_cross_entropy: expected weight broadcastable to the input's shape "
                     "[2, 3], got [2]");
    // Broadcasting that would grow the output is refused too (PyTorch: in-place mul fails).
    CT_REQUIRE_ERROR(binary_cross_entropy_with_logits(x, x, ones({2, 2, 3})),
                     "binary_cross_entropy_with_logits: expected weight broadcastable to the "
                     "input's shape [2, 3], got [2, 2, 3]");
  }
  SECTION("pos_weight of the wrong size") {
    CT_REQUIRE_ERROR(binary_cross_entropy_with_logits(x, x, {}, ones({4})),
                     "binary_cross_entropy_with_logits: expected pos_weight broadcastable to the "
                     "input's shape [2, 3], got [4]");
  }
  SECTION("weights that require grad") {
    CT_REQUIRE_ERROR(binary_cross_entropy_with_logits(x, x, {}, ones({3}).requires_grad_(true)),
                     "binary_cross_entropy_with_logits: expected a pos_weight that does not "
                     "require grad (it is not differentiable), got one that does");
  }
  SECTION("probabilities outside [0, 1]") {
    CT_REQUIRE_ERROR(binary_cross_entropy(tensor({0.5, 1.5}, {2}), zeros({2})),
                     "binary_cross_entropy: expected input probabilities in [0, 1], got 1.5");
    CT_REQUIRE_ERROR(binary_cross_entropy(tensor({-0.25, 0.5}, {2}), zeros({2})),
                     "expected input probabilities in [0, 1], got -0.25");
    CT_REQUIRE_ERROR(binary_cross_entropy(tensor({0.5, NAN}, {2}), zeros({2})),
                     "expected input probabilities in [0, 1], got nan");
  }
}
