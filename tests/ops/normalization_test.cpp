// Tests of ops/normalization: layer_norm, group_norm and instance_norm against PyTorch 1.13
// (tests/golden/norm.txt, scripts/make_norm_golden.py: outputs, gradients of x, weight and bias,
// running statistics after the call), the op harness over several shapes (float32 against float64,
// CUDA against CPU, float64 gradcheck), exact small-integer cases, and one test per error message.
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "ops/normalization.h"
#include "support/op_check.h"
#include "support/test_util.h"

namespace {

using namespace convtape;
using ct_test::leaf;
using ct_test::OpCheck;
using Inputs = ct_test::GoldenCase;

using ct_test::in;

// The differentiable inputs of a case (grad_<name> in the file), its function, and the constants
// it updates in place (new_<name> in the file). Scalars as in scripts/make_norm_golden.py.
struct Spec {
  std::vector<std::string> grads;
  std::function<Tensor(const Inputs&)> fn;
  std::vector<std::string> updated = {};
};

Tensor instance(const Inputs& i, bool affine, bool use_input_stats, double momentum) {
  return instance_norm(in(i, "x"), in(i, "rm"), in(i, "rv"), affine ? in(i, "w") : Tensor(),
                       affine ? in(i, "b") : Tensor(), use_input_stats, momentum, 1e-5);
}

const std::map<std::string, Spec>& specs() {
  using V = std::vector<std::string>;
  static const std::map<std::string, Spec> table = {
      {"layer_norm_1d",
       {V{"x", "w", "b"},
        [](const Inputs& i) { return layer_norm(in(i, "x"), {5}, in(i, "w"), in(i, "b"), 1e-5); }}},
      {"layer_norm_2d",
       {V{"x", "w", "b"},
        [](const Inputs& i) {
          return layer_norm(in(i, "x"), {3, 4}, in(i, "w"), in(i, "b"), 1e-5);
        }}},
      {"layer_norm_1d_plain",
       {V{"x"}, [](const Inputs& i) { return layer_norm(in(i, "x"), {6}); }}},
      {"layer_norm_2d_plain",
       {V{"x"},
        [](const Inputs& i) {
          return layer_norm(in(i, "x"), {2, 3}, {}, {}, 1e-3);
        }}},
      {"layer_norm_weight_only",
       {V{"x", "w"}, [](const Inputs& i) { return layer_norm(in(i, "x"), {4}, in(i, "w")); }}},
      {"group_norm_g1",
       {V{"x", "w", "b"},
        [](const Inputs& i) { return group_norm(in(i, "x"), 1, in(i, "w"), in(i, "b")); }}},
      {"group_norm_g2",
       {V{"x", "w", "b"},
        [](const Inputs& i) { return group_norm(in(i, "x"), 2, in(i, "w"), in(i, "b")); }}},
      {"group_norm_g4",
       {V{"x", "w", "b"},
        [](const Inputs& i) { return group_norm(in(i, "x"), 4, in(i, "w"), in(i, "b")); }}},
      {"group_norm_plain", {V{"x"}, [](const Inputs& i) { return group_norm(in(i, "x"), 3); }}},
      {"group_norm_2d_input",
       {V{"x", "w", "b"},
        [](const Inputs& i) { return group_norm(in(i, "x"), 2, in(i, "w"), in(i, "b")); }}},
      {"instance_norm_1d", {V{"x"}, [](const Inputs& i) { return instance_norm(in(i, "x")); }}},
      {"instance_norm_2d_affine",
       {V{"x", "w", "b"},
        [](const Inputs& i) { return instance_norm(in(i, "x"), {}, {}, in(i, "w"), in(i, "b")); }}},
      {"instance_norm_3d", {V{"x"}, [](const Inputs& i) { return instance_norm(in(i, "x")); }}},
      {"instance_norm_1d_track",
       {V{"x"}, [](const Inputs& i) { return instance(i, false, true, 0.1); }, V{"rm", "rv"}}},
      {"instance_norm_2d_track",
       {V{"x", "w", "b"}, [](const Inputs& i) { return instance(i, true, true, 0.3); },
        V{"rm", "rv"}}},
      {"instance_norm_3d_track",
       {V{"x"}, [](const Inputs& i) { return instance(i, false, true, 0.1); }, V{"rm", "rv"}}},
      {"instance_norm_1d_eval",
       {V{"x"}, [](const Inputs& i) { return instance(i, false, false, 0.1); }, V{"rm", "rv"}}},
      {"instance_norm_2d_eval",
       {V{"x", "w", "b"}, [](const Inputs& i) { return instance(i, true, false, 0.1); },
        V{"rm", "rv"}}},
      {"instance_norm_3d_eval",
       {V{"x"}, [](const Inputs& i) { return instance(i, false, false, 0.1); }, V{"rm", "rv"}}},
  };
  return table;
}

bool is_output(const std::string& name) {
  return name == "out" || name == "g" || name.rfind("grad_", 0) == 0 || name.rfind("new_", 0) == 0;
}

TEST_CASE("normalization: golden values from PyTorch", "[golden]") {
  const auto golden = ct_test::load_golden("norm.txt");
  std::set<std::string> in_file, in_test;
  for (const auto& [name, c] : golden)
    if (name.rfind("embedding", 0) != 0) in_file.insert(name);
  for (const auto& [name, s] : specs()) in_test.insert(name);
  CHECK(in_file == in_test);
  for (const auto& [name, spec] : specs()) {
    DYNAMIC_SECTION(name) {
      const ct_test::GoldenCase& c = golden.at(name);
      Inputs inputs;
      for (const auto& [k, t] : c)
        if (!is_output(k)) inputs[k] = t.clone();
      for (const auto& k : spec.grads) inputs.at(k).requires_grad_(true);
      const Tensor out = spec.fn(inputs);
      CHECK(ct_test::allclose(out, c.at("out"), 1e-7, 1e-10));
      out.backward(c.at("g"));
      for (const auto& k : spec.grads) {
        INFO("gradient of " << k);
        REQUIRE(inputs.at(k).grad().defined());
        CHECK(ct_test::allclose(inputs.at(k).grad(), c.at("grad_" + k), 1e-7, 1e-10));
      }
      for (const auto& k : spec.updated) {
        INFO("updated " << k);
        CHECK(ct_test::allclose(inputs.at(k), c.at("new_" + k), 1e-12, 1e-14));
      }
    }
  }
}

TEST_CASE("layer_norm: op harness over 1 and 2 trailing dims", "[ops][grad]") {
  manual_seed(151);
  OpCheck("layer_norm, 1 dim, affine",
          [](const std::vector<Tensor>& v) { return layer_norm(v[0], {5}, v[1], v[2]); },
          {leaf({3, 5}), leaf({5}), leaf({5})})
      .run();
  OpCheck("layer_norm, 2 dims, affine",
          [](const std::vector<Tensor>& v) {
            return layer_norm(v[0], {3, 4}, v[1], v[2], 1e-3);
          },
          {leaf({2, 2, 3, 4}), leaf({3, 4}), leaf({3, 4})})
      .run();
  OpCheck("layer_norm, whole tensor, plain",
          [](const std::vector<Tensor>& v) {
            return layer_norm(v[0], {2, 3});
          },
          {leaf({2, 3})})
      .run();
}

TEST_CASE("group_norm: op harness over group counts and ranks", "[ops][grad]") {
  manual_seed(152);
  for (std::int64_t g : {1, 2, 6}) {
    INFO("groups " << g);
    OpCheck("group_norm",
            [g](const std::vector<Tensor>& v) { return group_norm(v[0], g, v[1], v[2]); },
            {leaf({2, 6, 3}), leaf({6}), leaf({6})})
        .run();
  }
  OpCheck("group_norm, 4-d, plain",
          [](const std::vector<Tensor>& v) { return group_norm(v[0], 2, {}, {}, 1e-3); },
          {leaf({2, 4, 2, 3})})
      .run();
}

TEST_CASE("instance_norm: op harness, input and running statistics", "[ops][grad]") {
  manual_seed(153);
  OpCheck("instance_norm 1d",
          [](const std::vector<Tensor>& v) { return instance_norm(v[0], {}, {}, v[1], v[2]); },
          {leaf({2, 3, 5}), leaf({3}), leaf({3})})
      .run();
  OpCheck("instance_norm 3d", [](const std::vector<Tensor>& v) { return instance_norm(v[0]); },
          {leaf({2, 2, 2, 3, 2})})
      .run();
  // Running statistics as constants (the tolerance of float32 reflects the variance's rounding).
  const Tensor rm = uniform({3}, -1.0, 1.0, kFloat64), rv = uniform({3}, 0.5, 1.5, kFloat64);
  OpCheck("instance_norm 2d, running statistics",
          [](const std::vector<Tensor>& v) {
            return instance_norm(v[0], v[3], v[4], v[1], v[2], /*use_input_stats=*/false);
          },
          {leaf({2, 3, 2, 2}), leaf({3}), leaf({3}), rm, rv})
      .run();
}

TEST_CASE("normalization: exact small-integer cases", "[ops]") {
  // Rows (1, 3, 1, 3) and (0, 4, 0, 4): means 2, biased variances 1 and 4; eps 0.
  const Tensor x = tensor({1, 3, 1, 3, 0, 4, 0, 4}, {2, 4});
  CHECK(ct_test::equal(layer_norm(x, {4}, {}, {}, 0.0),
                       tensor({-1, 1, -1, 1, -1, 1, -1, 1}, {2, 4})));
  CHECK(ct_test::equal(layer_norm(x, {4}, tensor({1, 2, 3, 4}), tensor({0, 0, 1, 1}), 0.0),
                       tensor({-1, 2, -2, 5, -1, 2, -2, 5}, {2, 4})));
  // Normalising over [2, 4] at once: mean 2, variance 2.5.
  CHECK(ct_test::allclose(layer_norm(x, {2, 4}, {}, {}, 0.0), (x - 2.0) / std::sqrt(2.5), 1e-6,
                          1e-6));
  // group_norm with 2 groups of 2 channels: [N=1, C=4, L=2]; group 0 holds (1, 3, 1, 3).
  const Tensor g = tensor({1, 3, 1, 3, 0, 4, 0, 4}, {1, 4, 2});
  CHECK(ct_test::equal(group_norm(g, 2, tensor({1, 1, 2, 2}), tensor({0, 1, 0, 1}), 0.0),
                       tensor({-1, 1, 0, 2, -2, 2, -1, 3}, {1, 4, 2})));
  // instance_norm on [1, 2, 4] with running statistics (0, 0), (1, 1), momentum 0.5: the batch
  // means 2, 2 and unbiased variances 4/3, 16/3.
  Tensor rm = zeros({2}), rv = ones({2});
  const Tensor y =
      instance_norm(tensor({1, 3, 1, 3, 0, 4, 0, 4}, {1, 2, 4}), rm, rv, {}, {}, true, 0.5, 0.0);
  CHECK(ct_test::equal(y, tensor({-1, 1, -1, 1, -1, 1, -1, 1}, {1, 2, 4})));
  CHECK(ct_test::allclose(rm, tensor({1, 1}), 1e-7, 0));
  CHECK(ct_test::allclose(rv, tensor({0.5 + 2.0 / 3.0, 0.5 + 8.0 / 3.0}), 1e-6, 0));
  // The running statistics are averaged over the batch: two samples with means 1 and 3.
  Tensor rm2 = zeros({1}), rv2 = zeros({1});
  instance_norm(tensor({0, 2, 2, 4}, {2, 1, 2}), rm2, rv2, {}, {}, true, 1.0, 0.0);
  CHECK(ct_test::equal(rm2, tensor({2})));
  CHECK(ct_test::equal(rv2, tensor({2})));  // each unbiased variance is 2
  // Without input statistics the running ones normalise, and stay.
  CHECK(ct_test::equal(
      instance_norm(tensor({3, 5}, {1, 1, 2}), tensor({1}), tensor({4}), {}, {}, false, 0.1, 0.0),
      tensor({1, 2}, {1, 1, 2})));
}

TEST_CASE("layer_norm: errors", "[ops][errors]") {
  const Tensor x = ones({2, 3});
  CT_REQUIRE_ERROR(layer_norm(x, {}), "layer_norm: expected a non-empty normalized_shape, got []");
  CT_REQUIRE_ERROR(layer_norm(x, {4}),
                   "layer_norm: expected input of shape [*, 4] (normalized_shape [4]), got [2, 3]");
  CT_REQUIRE_ERROR(layer_norm(x, {1, 2, 3}), "expected input of shape [*, 1, 2, 3]");
  CT_REQUIRE_ERROR(layer_norm(x, {3}, ones({2})),
                   "layer_norm: expected weight of shape [3] (normalized_shape), got [2]");
  CT_REQUIRE_ERROR(layer_norm(x, {3}, {}, ones({3, 1})),
                   "layer_norm: expected bias of shape [3] (normalized_shape), got [3, 1]");
  CT_REQUIRE_ERROR(layer_norm(zeros({2, 3}, kInt64), {3}),
                   "layer_norm: expected a floating-point tensor");
  CT_REQUIRE_ERROR(layer_norm(x, {3}, ones({3}, kFloat64)),
                   "layer_norm: expected tensors of one dtype");
  CT_REQUIRE_ERROR(layer_norm(Tensor(), {3}), "layer_norm: expected a defined input tensor");
}

TEST_CASE("group_norm: errors", "[ops][errors]") {
  CT_REQUIRE_ERROR(group_norm(ones({3}), 1), "group_norm: expected input [N, C, *], got [3]");
  CT_REQUIRE_ERROR(group_norm(ones({2, 3}), 2),
                   "group_norm: expected num_groups > 0 dividing the channels C = 3, got "
                   "num_groups = 2 (input [2, 3])");
  CT_REQUIRE_ERROR(group_norm(ones({2, 4}), 0), "got num_groups = 0");
  CT_REQUIRE_ERROR(group_norm(ones({2, 4, 3}), 2, ones({3})),
                   "group_norm: expected weight of shape [4] (the channels of the input), got [3]");
  CT_REQUIRE_ERROR(group_norm(ones({2, 4, 3}), 2, {}, ones({5})),
                   "group_norm: expected bias of shape [4]");
}

TEST_CASE("instance_norm: errors", "[ops][errors]") {
  const Tensor x = ones({2, 3, 4});
  CT_REQUIRE_ERROR(instance_norm(ones({3})), "instance_norm: expected input [N, C, *], got [3]");
  CT_REQUIRE_ERROR(instance_norm(x, zeros({3})),
                   "instance_norm: expected running_mean and running_var both given or both none, "
                   "got only running_mean");
  CT_REQUIRE_ERROR(instance_norm(x, {}, {}, {}, {}, false),
                   "instance_norm: expected running_mean and running_var when use_input_stats is "
                   "false, got none");
  CT_REQUIRE_ERROR(instance_norm(ones({2, 3, 1})),
                   "instance_norm: expected more than 1 spatial value per channel when using "
                   "input statistics, got input [2, 3, 1]");
  CT_REQUIRE_ERROR(instance_norm(ones({2, 3})), "more than 1 spatial value");
  CT_REQUIRE_ERROR(instance_norm(x, zeros({4}), ones({4})),
                   "instance_norm: expected running_mean of shape [3] (the channels of the input), "
                   "got [4]");
  CT_REQUIRE_ERROR(instance_norm(x, {}, {}, ones({2})),
                   "instance_norm: expected weight of shape [3]");
  CT_REQUIRE_ERROR(instance_norm(x, zeros({3}, kFloat64), ones({3}, kFloat64)),
                   "instance_norm: expected tensors of one dtype");
}

}  // namespace
