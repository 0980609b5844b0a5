// Golden-value tests against PyTorch 1.13: tests/golden/ops.txt, written by scripts/make_golden.py.
// Each float64 case recomputes the forward from the stored inputs, compares it with torch's "out",
// then backpropagates the stored upstream gradient g (so the gradients are those of sum(out * g))
// and compares every "grad_<input>". float64 agrees to rounding: rtol 1e-7, atol 1e-10. Cases named
// "f32_*" are forward-only, computed by torch in float32: rtol 1e-4, atol 1e-5 (REFERENCE.md).
// Scalar arguments (exponents, slopes, dims, pad widths) are written here and in the script alike.
#include <functional>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/test_util.h"

namespace {

using namespace convtape;
using Inputs = ct_test::GoldenCase;

struct Spec {
  std::vector<std::string> grads;  // inputs that require grad; the file holds grad_<name> for each
  std::function<Tensor(const Inputs&)> fn;
};

using ct_test::in;

// Integer arguments are stored as float values.
Tensor as_int64(const Inputs& inputs, const std::string& name) {
  return in(inputs, name).to(kInt64);
}

const std::map<std::string, Spec>& specs() {
  static const std::map<std::string, Spec> table = {
      // elementwise binary, with broadcasting
      {"add_bcast", {{"a", "b"}, [](const Inputs& i) { return add(in(i, "a"), in(i, "b")); }}},
      {"sub_bcast", {{"a", "b"}, [](const Inputs& i) { return sub(in(i, "a"), in(i, "b")); }}},
      {"mul_bcast", {{"a", "b"}, [](const Inputs& i) { return mul(in(i, "a"), in(i, "b")); }}},
      {"div_bcast", {{"a", "b"}, [](const Inputs& i) { return div(in(i, "a"), in(i, "b")); }}},
      {"pow_tensor", {{"a", "b"}, [](const Inputs& i) { return pow(in(i, "a"), in(i, "b")); }}},
      {"pow_scalar", {{"a"}, [](const Inputs& i) { return pow(in(i, "a"), 2.5); }}},
      // elementwise unary and activations
      {"exp", {{"x"}, [](const Inputs& i) { return exp(in(i, "x")); }}},
      {"log", {{"x"}, [](const Inputs& i) { return log(in(i, "x")); }}},
      {"sqrt", {{"x"}, [](const Inputs& i) { return sqrt(in(i, "x")); }}},
      {"abs", {{"x"}, [](const Inputs& i) { return abs(in(i, "x")); }}},
      {"relu", {{"x"}, [](const Inputs& i) { return relu(in(i, "x")); }}},
      {"leaky_relu", {{"x"}, [](const Inputs& i) { return leaky_relu(in(i, "x"), 0.2); }}},
      {"sigmoid", {{"x"}, [](const Inputs& i) { return sigmoid(in(i, "x")); }}},
      {"tanh", {{"x"}, [](const Inputs& i) { return tanh(in(i, "x")); }}},
      {"clamp", {{"x"}, [](const Inputs& i) { return clamp(in(i, "x"), -0.5, 0.7); }}},
      // reductions
      {"sum_dims_keepdim",
       {{"x"},
        [](const Inputs& i) {
          return sum(in(i, "x"), {0, 2}, true);
        }}},
      {"sum_last", {{"x"}, [](const Inputs& i) { return sum(in(i, "x"), {-1}); }}},
      {"mean_dim", {{"x"}, [](const Inputs& i) { return mean(in(i, "x"), {1}); }}},
      {"mean_dims_keepdim",
       {{"x"},
        [](const Inputs& i) {
          return mean(in(i, "x"), {1, 2}, true);
        }}},
      {"max_dim", {{"x"}, [](const Inputs& i) { return max(in(i, "x"), {1}); }}},
      {"max_dim_keepdim", {{"x"}, [](const Inputs& i) { return max(in(i, "x"), {0}, true); }}},
      // matmul
      {"matmul_2d", {{"a", "b"}, [](const Inputs& i) { return matmul(in(i, "a"), in(i, "b")); }}},
      {"matmul_batched",
       {{"a", "b"}, [](const Inputs& i) { return matmul(in(i, "a"), in(i, "b")); }}},
      {"matmul_vec", {{"a", "b"}, [](const Inputs& i) { return matmul(in(i, "a"), in(i, "b")); }}},
      // softmax and losses
      {"softmax", {{"x"}, [](const Inputs& i) { return softmax(in(i, "x"), 1); }}},
      {"log_softmax", {{"x"}, [](const Inputs& i) { return log_softmax(in(i, "x"), -1); }}},
      {"mse_loss", {{"a", "b"}, [](const Inputs& i) { return mse_loss(in(i, "a"), in(i, "b")); }}},
      {"mse_loss_sum",
       {{"a", "b"},
        [](const Inputs& i) { return mse_loss(in(i, "a"), in(i, "b"), Reduction::Sum); }}},
      {"cross_entropy",
       {{"x"}, [](const Inputs& i) { return cross_entropy(in(i, "x"), as_int64(i, "labels")); }}},
      {"cross_entropy_none",
       {{"x"},
        [](const Inputs& i) {
          return cross_entropy(in(i, "x"), as_int64(i, "labels"), Reduction::None);
        }}},
      {"nll_loss",
       {{"x"},
        [](const Inputs& i) {
          return nll_loss(in(i, "x"), as_int64(i, "labels"), Reduction::Sum);
        }}},
      {"cross_entropy_smooth",
       {{"x"},
        [](const Inputs& i) {
          return cross_entropy(in(i, "x"), as_int64(i, "labels"), Reduction::Mean, 0.1);
        }}},
      {"cross_entropy_smooth_sum",
       {{"x"},
        [](const Inputs& i) {
          return cross_entropy(in(i, "x"), as_int64(i, "labels"), Reduction::Sum, 0.25);
        }}},
      {"cross_entropy_smooth_none",
       {{"x"},
        [](const Inputs& i) {
          return cross_entropy(in(i, "x"), as_int64(i, "labels"), Reduction::None, 0.3);
        }}},
      {"cross_entropy_probs",
       {{"x", "p"}, [](const Inputs& i) { return cross_entropy(in(i, "x"), in(i, "p")); }}},
      {"cross_entropy_probs_smooth_none",
       {{"x", "p"},
        [](const Inputs& i) {
          return cross_entropy(in(i, "x"), in(i, "p"), Reduction::None, 0.2);
        }}},
      {"cross_entropy_probs_sum",
       {{"x", "p"},
        [](const Inputs& i) { return cross_entropy(in(i, "x"), in(i, "p"), Reduction::Sum); }}},
      // shape ops
      {"permute_reshape",
       {{"x"},
        [](const Inputs& i) {
          return reshape(permute(in(i, "x"), {2, 0, 1}), {4, 6});
        }}},
      {"cat",
       {{"a", "b", "c"},
        [](const Inputs& i) {
          return cat({in(i, "a"), in(i, "b"), in(i, "c")}, 1);
        }}},
      // F.pad(x, (1, 2, 0, 3), value=0.5): its flat list runs from the last dim backwards; ours
      // holds (low, high) pairs for the trailing dims in dim order.
      {"pad",
       {{"x"},
        [](const Inputs& i) {
          return pad(in(i, "x"), {{0, 3}, {1, 2}}, 0.5);
        }}},
      {"flip",
       {{"x"},
        [](const Inputs& i) {
          return flip(in(i, "x"), {0, 2});
        }}},
      {"rot90_k1",
       {{"x"},
        [](const Inputs& i) {
          return rot90(in(i, "x"), 1, {1, 2});
        }}},
      {"rot90_k3",
       {{"x"},
        [](const Inputs& i) {
          return rot90(in(i, "x"), -1, {2, 0});
        }}},
      {"rot90_k2",
       {{"x"},
        [](const Inputs& i) {
          return rot90(in(i, "x"), 2, {0, 1});
        }}},
      {"index_select",
       {{"x"}, [](const Inputs& i) { return index_select(in(i, "x"), 1, as_int64(i, "index")); }}},
      // float32, forward only
      {"f32_matmul", {{}, [](const Inputs& i) { return matmul(in(i, "a"), in(i, "b")); }}},
      {"f32_softmax", {{}, [](const Inputs& i) { return softmax(in(i, "x"), -1); }}},
      {"f32_sigmoid_tanh",
       {{}, [](const Inputs& i) { return mul(sigmoid(in(i, "x")), tanh(in(i, "x"))); }}},
      {"f32_exp_log", {{}, [](const Inputs& i) { return add(exp(in(i, "x")), log(in(i, "x"))); }}},
      {"f32_sum_mean",
       {{}, [](const Inputs& i) { return add(sum(in(i, "x"), {1}), mean(in(i, "x"), {1})); }}},
      {"f32_cross_entropy",
       {{}, [](const Inputs& i) { return cross_entropy(in(i, "x"), as_int64(i, "labels")); }}},
  };
  return table;
}

const std::map<std::string, ct_test::GoldenCase>& golden() {
  static const auto cases = ct_test::load_golden("ops.txt");
  return cases;
}

bool is_f32(const std::string& name) {
  return name.rfind("f32_", 0) == 0;
}

bool is_output(const std::string& name) {
  return name == "out" || name == "g" || name.rfind("grad_", 0) == 0;
}

void check_f64(const ct_test::GoldenCase& golden_case, const Spec& spec) {
  Inputs inputs;
  for (const auto& [name, t] : golden_case)
    if (!is_output(name))
      inputs[name] = t.clone();  // fresh leaves: the cached file stays untouched
  std::set<std::string> expected_grads;
  for (const auto& name : spec.grads) {
    REQUIRE(inputs.count(name) == 1);
    inputs[name].requires_grad_(true);
    expected_grads.insert("grad_" + name);
  }
  std::set<std::string> stored_grads;
  for (const auto& [name, t] : golden_case)
    if (name.rfind("grad_", 0) == 0) stored_grads.insert(name);
  REQUIRE(stored_grads == expected_grads);

  const Tensor out = spec.fn(inputs);
  REQUIRE(out.dtype() == kFloat64);
  CHECK(ct_test::allclose(out, golden_case.at("out"), 1e-7, 1e-10));
  out.backward(golden_case.at("g"));
  for (const auto& name : spec.grads) {
    INFO("gradient of " << name);
    const Tensor grad = in(inputs, name).grad();
    REQUIRE(grad.defined());
    CHECK(ct_test::allclose(grad, golden_case.at("grad_" + name), 1e-7, 1e-10));
  }
}

void check_f32(const ct_test::GoldenCase& golden_case, const Spec& spec) {
  REQUIRE(spec.grads.empty());
  Inputs inputs;
  for (const auto& [name, t] : golden_case)
    if (!is_output(name)) inputs[name] = t.to(kFloat32);
  const Tensor out = spec.fn(inputs);
  REQUIRE(out.dtype() == kFloat32);
  CHECK(ct_test::allclose(out, golden_case.at("out"), 1e-4, 1e-5));
}

}  // namespace

TEST_CASE("golden: the file and this test cover the same cases", "[golden]") {
  std::set<std::string> in_file, in_test;
  for (const auto& [name, c] : golden()) in_file.insert(name);
  for (const auto& [name, s] : specs()) in_test.insert(name);
  CHECK(in_file == in_test);
  CHECK(in_file.size() >= 25);
}

TEST_CASE("golden: forward and backward match PyTorch", "[golden]") {
  for (const auto& [name, spec] : specs()) {
    DYNAMIC_SECTION(name) {
      const auto it = golden().find(name);
      REQUIRE(it != golden().end());
      if (is_f32(name))
        check_f32(it->second, spec);
      else
        check_f64(it->second, spec);
    }
  }
}
