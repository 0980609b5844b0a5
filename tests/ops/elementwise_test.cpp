// Tests of ops/elementwise: exact small-integer forwards (float32, compared with ==), the op
// harness (support/op_check.h: float64 gradcheck, float32 against float64, CUDA against the CPU)
// over plain and broadcast shapes (inputs kept away from kinks and domain edges), the documented
// gradients at kinks, and the argument errors on every device.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "support/op_check.h"

namespace {

using namespace convtape;
using ct_test::equal;
using ct_test::leaf;
using ct_test::OpCheck;

// float32 tensor of small integers (or dyadic fractions): every result below is exact.
Tensor f32(const std::vector<double>& v, const Shape& shape) {
  return tensor(v, shape);
}

// A float64 leaf with values in [low, high] kept at least `margin` from each kink.
Tensor leaf_avoiding(const Shape& shape, double low, double high, const std::vector<double>& kinks,
                     double margin = 0.05) {
  auto v = uniform(shape, low, high, kFloat64).to_vector<double>();
  for (auto& x : v)
    for (double k : kinks)
      if (std::abs(x - k) < margin) x = x < k ? k - margin : k + margin;
  return tensor(v, shape, kFloat64).requires_grad_(true);
}

// Shape pairs for binary ops: equal shapes, and broadcasting in each direction.
const std::vector<std::pair<Shape, Shape>> kBinaryShapes = {
    {{3, 4}, {3, 4}}, {{3, 1, 4}, {2, 1}}, {{}, {2, 3}}, {{2, 3}, {}},
    {{4}, {2, 3, 4}}, {{2, 1}, {1, 3}},    {{5}, {5}},   {{2, 3, 1}, {3, 4}},
};

std::string describe(const std::pair<Shape, Shape>& s) {
  return to_string(s.first) + " with " + to_string(s.second);
}

}  // namespace

// ---------------------------------------------------------------- binary ops: exact forwards

TEST_CASE("add, sub, mul, div: exact small-integer results", "[ops][elementwise]") {
  const Tensor a = f32({1, 2, 3, 4, 5, 6}, {2, 3});
  const Tensor b = f32({10, 20, 30}, {3});
  REQUIRE(equal(add(a, b), f32({11, 22, 33, 14, 25, 36}, {2, 3})));
  REQUIRE(equal(sub(a, b), f32({-9, -18, -27, -6, -15, -24}, {2, 3})));
  REQUIRE(equal(sub(b, a), f32({9, 18, 27, 6, 15, 24}, {2, 3})));
  REQUIRE(equal(mul(a, b), f32({10, 40, 90, 40, 100, 180}, {2, 3})));
  REQUIRE(equal(div(b, a), f32({10, 10, 10, 2.5, 4, 5}, {2, 3})));
  REQUIRE(add(a, b).dtype() == kFloat32);
}

TEST_CASE("binary ops broadcast both operands", "[ops][elementwise]") {
  SECTION("[3, 1] with [1, 2]") {
    const Tensor a = f32({1, 2, 3}, {3, 1});
    const Tensor b = f32({10, 20}, {1, 2});
    REQUIRE(equal(add(a, b), f32({11, 21, 12, 22, 13, 23}, {3, 2})));
    REQUIRE(equal(mul(a, b), f32({10, 20, 20, 40, 30, 60}, {3, 2})));
  }
  SECTION("scalar [] with [2, 3]") {
    const Tensor s = f32({2}, {});
    const Tensor m = f32({1, 2, 3, 4, 5, 6}, {2, 3});
    REQUIRE(equal(sub(s, m), f32({1, 0, -1, -2, -3, -4}, {2, 3})));
    REQUIRE(equal(sub(m, s), f32({-1, 0, 1, 2, 3, 4}, {2, 3})));
    REQUIRE(equal(div(m, s), f32({0.5, 1, 1.5, 2, 2.5, 3}, {2, 3})));
  }
  SECTION("[3, 1, 4] with [2, 1] gives [3, 2, 4]") {
    const Tensor a = arange(12).reshape({3, 1, 4});
    const Tensor b = f32({0, 100}, {2, 1});
    const Tensor y = add(a, b);
    REQUIRE(y.shape() == Shape{3, 2, 4});
    for (std::int64_t i = 0; i < 3; ++i)
      for (std::int64_t j = 0; j < 2; ++j)
        for (std::int64_t k = 0; k < 4; ++k)
          REQUIRE(y.at<float>({i, j, k}) == static_cast<float>(4 * i + k + 100 * j));
  }
  SECTION("non-contiguous operands") {
    const Tensor a = arange(6).reshape({2, 3}).transpose(0, 1);  // [[0, 3], [1, 4], [2, 5]]
    const Tensor b = f32({1, 2, 3, 4, 5, 6}, {3, 2});
    REQUIRE(!a.is_contiguous());
    REQUIRE(equal(mul(a, b), f32({0, 6, 3, 16, 10, 30}, {3, 2})));
  }
  SECTION("expanded (stride-0) operands") {
    const Tensor a = f32({1, 2, 3}, {3, 1}).expand({3, 4});
    const Tensor b = f32({10, 20, 30, 40}, {4}).expand({3, 4});
    const Tensor y = add(a, b);
    REQUIRE(y.is_contiguous());
    for (std::int64_t i = 0; i < 3; ++i)
      for (std::int64_t j = 0; j < 4; ++j)
        REQUIRE(y.at<float>({i, j}) == static_cast<float>(i + 1 + 10 * (j + 1)));
    REQUIRE(equal(neg(a), f32({-1, -1, -1, -1, -2, -2, -2, -2, -3, -3, -3, -3}, {3, 4})));
  }
  SECTION("large operands (the multi-threaded path)") {
    // [64, 1, 700] with [50, 1]: 2.24 million outputs, every one checked.
    const Tensor a = arange(64 * 700).reshape({64, 1, 700});
    const Tensor b = arange(50).reshape({50, 1}) * 65536.0;
    const Tensor y = add(a, b);
    REQUIRE(y.shape() == Shape{64, 50, 700});
    const auto v = y.to_vector<float>();
    std::size_t bad = 0;
    for (std::size_t i = 0; i < 64; ++i)
      for (std::size_t j = 0; j < 50; ++j)
        for (std::size_t k = 0; k < 700; ++k)
          bad += v[(i * 50 + j) * 700 + k] != static_cast<float>(i * 700 + k + j * 65536);
    REQUIRE(bad == 0);
    const auto e = exp(a.transpose(0, 2) * 0.0).to_vector<float>();
    REQUIRE(std::count(e.begin(), e.end(), 1.0f) == static_cast<std::ptrdiff_t>(e.size()));
  }
  SECTION("empty operands") {
    const Tensor y = add(zeros({0, 3}), zeros({3}));
    REQUIRE(y.shape() == Shape{0, 3});
  }
}

TEST_CASE("pow: tensor exponent and scalar exponent, exact", "[ops][elementwise]") {
  REQUIRE(equal(pow(f32({2, 3, 4, -2}, {4}), f32({3, 2, 0.5, 2}, {4})), f32({8, 9, 2, 4}, {4})));
  REQUIRE(equal(pow(f32({2, 3}, {2, 1}), f32({0, 1, 2}, {3})), f32({1, 2, 4, 1, 3, 9}, {2, 3})));
  const Tensor x = f32({-2, -1, 0, 1, 3}, {5});
  REQUIRE(equal(pow(x, 2.0), f32({4, 1, 0, 1, 9}, {5})));
  REQUIRE(equal(pow(x, 3.0), f32({-8, -1, 0, 1, 27}, {5})));
  REQUIRE(equal(pow(x, 0.0), f32({1, 1, 1, 1, 1}, {5})));
  REQUIRE(equal(pow(f32({1, 4, 16}, {3}), 0.5), f32({1, 2, 4}, {3})));
  REQUIRE(equal(pow(f32({1, 2, 4}, {3}), -1.0), f32({1, 0.5, 0.25}, {3})));
  REQUIRE(equal(x.pow(2.0), pow(x, 2.0)));
}

// ---------------------------------------------------------------- scalar forms and operators

TEST_CASE("scalar forms: exact small-integer results", "[ops][elementwise]") {
  const Tensor a = f32({-3, 0, 2, 6}, {2, 2});
  REQUIRE(equal(add(a, 2.0), f32({-1, 2, 4, 8}, {2, 2})));
  REQUIRE(equal(sub(a, 2.0), f32({-5, -2, 0, 4}, {2, 2})));
  REQUIRE(equal(sub(2.0, a), f32({5, 2, 0, -4}, {2, 2})));
  REQUIRE(equal(mul(a, -3.0), f32({9, 0, -6, -18}, {2, 2})));
  REQUIRE(equal(div(a, 4.0), f32({-0.75, 0, 0.5, 1.5}, {2, 2})));
  const Tensor b = f32({1, 2, 3, -12}, {4});
  REQUIRE(equal(div(12.0, b), f32({12, 6, 4, -1}, {4})));
}

TEST_CASE("div by a scalar is a true division: exact quotients stay exact", "[ops][elementwise]") {
  // x * (1 / b) rounds twice: 49 * (1 / 49) is 0.9999999999999999 in float64, 1785 * (1 / 7) is
  // 255.00002 in float32. IEEE division gives the exact quotient.
  REQUIRE(div(tensor({49}, kFloat64), 49.0).item() == 1.0);
  REQUIRE(div(tensor({-1785}, kFloat32), 7.0).item() == -255.0);
  for (int b = 1; b <= 64; ++b) {
    std::vector<double> xs, qs;
    for (int q = -40; q <= 40; ++q) {
      xs.push_back(static_cast<double>(q * b));
      qs.push_back(static_cast<double>(q));
    }
    INFO("divisor " << b);
    REQUIRE(equal(div(tensor(xs, kFloat32), static_cast<double>(b)), tensor(qs, kFloat32)));
    REQUIRE(equal(div(tensor(xs, kFloat64), static_cast<double>(b)), tensor(qs, kFloat64)));
    REQUIRE(equal(tensor(xs, kFloat64) / static_cast<double>(b), tensor(qs, kFloat64)));
  }
}

TEST_CASE("operators match the named functions", "[ops][elementwise]") {
  const Tensor a = f32({1, -2, 3, 4}, {2, 2});
  const Tensor b = f32({2, 4}, {2});
  REQUIRE(equal(a + b, add(a, b)));
  REQUIRE(equal(a - b, sub(a, b)));
  REQUIRE(equal(a * b, mul(a, b)));
  REQUIRE(equal(a / b, div(a, b)));
  REQUIRE(equal(a + 1.0, f32({2, -1, 4, 5}, {2, 2})));
  REQUIRE(equal(1.0 + a, f32({2, -1, 4, 5}, {2, 2})));
  REQUIRE(equal(a - 1.0, f32({0, -3, 2, 3}, {2, 2})));
  REQUIRE(equal(1.0 - a, f32({0, 3, -2, -3}, {2, 2})));
  REQUIRE(equal(a * 2.0, f32({2, -4, 6, 8}, {2, 2})));
  REQUIRE(equal(2.0 * a, f32({2, -4, 6, 8}, {2, 2})));
  REQUIRE(equal(a / 2.0, f32({0.5, -1, 1.5, 2}, {2, 2})));
  REQUIRE(equal(8.0 / b, f32({4, 2}, {2})));
  REQUIRE(equal(-a, f32({-1, 2, -3, -4}, {2, 2})));
  REQUIRE(equal(-a, neg(a)));
}

// ---------------------------------------------------------------- unary ops: exact forwards

TEST_CASE("unary ops and activations: exact values", "[ops][elementwise]") {
  const Tensor x = f32({-2, -1, 0, 1, 2, 3}, {2, 3});
  REQUIRE(equal(neg(x), f32({2, 1, 0, -1, -2, -3}, {2, 3})));
  REQUIRE(equal(abs(x), f32({2, 1, 0, 1, 2, 3}, {2, 3})));
  REQUIRE(equal(relu(x), f32({0, 0, 0, 1, 2, 3}, {2, 3})));
  REQUIRE(equal(leaky_relu(x, 0.25), f32({-0.5, -0.25, 0, 1, 2, 3}, {2, 3})));
  REQUIRE(equal(leaky_relu(f32({-100, 5}, {2})), f32({-1, 5}, {2})));  // default slope 0.01
  REQUIRE(equal(clamp(x, -1, 2), f32({-1, -1, 0, 1, 2, 2}, {2, 3})));
  REQUIRE(equal(clamp(x, 0.5), f32({0.5, 0.5, 0.5, 1, 2, 3}, {2, 3})));
  REQUIRE(equal(clamp(x, -std::numeric_limits<double>::infinity(), 1),
                f32({-2, -1, 0, 1, 1, 1}, {2, 3})));
  REQUIRE(equal(clamp(x, 1, 1), f32({1, 1, 1, 1, 1, 1}, {2, 3})));
  REQUIRE(equal(sqrt(f32({0, 1, 4, 9, 16, 0.25}, {6})), f32({0, 1, 2, 3, 4, 0.5}, {6})));
  REQUIRE(equal(exp(f32({0}, {1})), f32({1}, {1})));
  REQUIRE(equal(log(f32({1}, {1})), f32({0}, {1})));
  REQUIRE(equal(sigmoid(f32({0}, {1})), f32({0.5}, {1})));
  REQUIRE(equal(tanh(f32({0}, {1})), f32({0}, {1})));
}

TEST_CASE("unary ops: values against the C library in float64", "[ops][elementwise]") {
  const Tensor x = tensor({-3, -0.5, 0.25, 1, 2.5}, kFloat64);
  const auto v = x.to_vector<double>();
  const auto ex = exp(x).to_vector<double>();
  const auto th = tanh(x).to_vector<double>();
  const auto sg = sigmoid(x).to_vector<double>();
  const auto lg = log(abs(x)).to_vector<double>();
  for (std::size_t i = 0; i < v.size(); ++i) {
    REQUIRE(ex[i] == Approx(std::exp(v[i])).epsilon(1e-14));
    REQUIRE(th[i] == Approx(std::tanh(v[i])).epsilon(1e-14));
    REQUIRE(sg[i] == Approx(1.0 / (1.0 + std::exp(-v[i]))).epsilon(1e-14));
    REQUIRE(lg[i] == Approx(std::log(std::abs(v[i]))).epsilon(1e-14));
  }
}

TEST_CASE("sigmoid and exp stay finite and saturate for large inputs", "[ops][elementwise]") {
  const Tensor s = sigmoid(f32({-1000, -100, 100, 1000}, {4}));
  const auto v = s.to_vector<float>();
  REQUIRE(v[0] == 0.0f);
  REQUIRE(v[1] >= 0.0f);
  REQUIRE(v[1] < 1e-40f);
  REQUIRE(v[2] == 1.0f);
  REQUIRE(v[3] == 1.0f);
  const auto t = tanh(f32({-1000, 1000}, {2})).to_vector<float>();
  REQUIRE(t[0] == -1.0f);
  REQUIRE(t[1] == 1.0f);
  REQUIRE(exp(f32({-1000}, {1})).item() == 0.0);
}

TEST_CASE("NaN passes through relu, clamp and abs", "[ops][elementwise]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Tensor x = tensor({nan, -1, 2}, kFloat64);
  REQUIRE(std::isnan(relu(x).to_vector<double>()[0]));
  REQUIRE(std::isnan(clamp(x, 0, 1).to_vector<double>()[0]));
  REQUIRE(std::isnan(abs(x).to_vector<double>()[0]));
  REQUIRE(std::isnan(leaky_relu(x).to_vector<double>()[0]));
  REQUIRE(clamp(x, 0, 1).to_vector<double>()[1] == 0.0);
  REQUIRE(clamp(x, 0, 1).to_vector<double>()[2] == 1.0);
}

// ---------------------------------------------------------------- gradients

TEST_CASE("add, sub, mul: gradcheck over broadcast shapes", "[ops][elementwise][grad]") {
  for (const auto& s : kBinaryShapes) {
    INFO(describe(s));
    const std::vector<Tensor> in = {leaf(s.first), leaf(s.second)};
    OpCheck(
        "add", [](const std::vector<Tensor>& x) { return add(x[0], x[1]); }, in)
        .run();
    OpCheck(
        "sub", [](const std::vector<Tensor>& x) { return sub(x[0], x[1]); }, in)
        .run();
    OpCheck(
        "mul", [](const std::vector<Tensor>& x) { return mul(x[0], x[1]); }, in)
        .run();
  }
}

TEST_CASE("div: gradcheck over broadcast shapes", "[ops][elementwise][grad]") {
  for (const auto& s : kBinaryShapes) {
    INFO(describe(s));
    // Denominators of either sign, away from 0.
    const Tensor b = leaf_avoiding(s.second, -2.0, 2.0, {0.0}, 0.5);
    OpCheck("div", [](const std::vector<Tensor>& x) { return div(x[0], x[1]); }, {leaf(s.first), b})
        .run();
  }
}

TEST_CASE("pow with a tensor exponent: gradcheck of base and exponent",
          "[ops][elementwise][grad]") {
  for (const auto& s : kBinaryShapes) {
    INFO(describe(s));
    const std::vector<Tensor> in = {leaf(s.first, 0.5, 2.0), leaf(s.second, -2.0, 2.0)};
    OpCheck(
        "pow", [](const std::vector<Tensor>& x) { return pow(x[0], x[1]); }, in)
        .run();
  }
  SECTION("only the base requires grad: negative bases with integer exponents") {
    const Tensor e = tensor({2, 3, 1, 4, 2, 3}, {2, 3}, kFloat64);
    OpCheck("pow, base only", [](const std::vector<Tensor>& x) { return pow(x[0], x[1]); },
            {leaf({2, 3}, -2.0, 2.0), e})
        .run();
  }
  SECTION("the base gradient stays finite at a = 0") {
    const Tensor a = tensor({0, 0, 2}, kFloat64).requires_grad_(true);
    const Tensor b = tensor({2, 1, 3}, kFloat64);
    sum(pow(a, b)).backward();
    REQUIRE(equal(a.grad(), tensor({0, 1, 12}, kFloat64)));
  }
}

TEST_CASE("pow with a scalar exponent: gradcheck", "[ops][elementwise][grad]") {
  for (double e : {2.0, 3.0, -1.0}) {
    INFO("exponent " << e);
    const Tensor x = leaf_avoiding({2, 3}, -2.0, 2.0, {0.0}, 0.3);
    OpCheck("pow scalar", [e](const std::vector<Tensor>& v) { return pow(v[0], e); }, {x}).run();
  }
  for (double e : {0.5, -1.5, 2.7}) {
    INFO("exponent " << e);
    OpCheck("pow scalar", [e](const std::vector<Tensor>& v) { return pow(v[0], e); },
            {leaf({3, 2}, 0.5, 2.0)})
        .run();
  }
  SECTION("exponent 0 gives a zero gradient") {
    const Tensor x = tensor({-1, 0, 2}, kFloat64).requires_grad_(true);
    sum(pow(x, 0.0)).backward();
    REQUIRE(equal(x.grad(), zeros({3}, kFloat64)));
  }
}

TEST_CASE("scalar forms and operators: gradcheck", "[ops][elementwise][grad]") {
  using Fn = Tensor (*)(const Tensor&);
  const std::vector<std::pair<const char*, Fn>> fns = {
      {"add(x, 2.5)", [](const Tensor& x) { return add(x, 2.5); }},
      {"sub(x, 1.5)", [](const Tensor& x) { return sub(x, 1.5); }},
      {"sub(1.5, x)", [](const Tensor& x) { return sub(1.5, x); }},
      {"mul(x, -3)", [](const Tensor& x) { return mul(x, -3.0); }},
      {"div(x, 4)", [](const Tensor& x) { return div(x, 4.0); }},
      {"div(x, -0.3)", [](const Tensor& x) { return div(x, -0.3); }},
      {"div(2, x)", [](const Tensor& x) { return div(2.0, x); }},
      {"x + 2", [](const Tensor& x) { return x + 2.0; }},
      {"2 + x", [](const Tensor& x) { return 2.0 + x; }},
      {"x - 2", [](const Tensor& x) { return x - 2.0; }},
      {"2 - x", [](const Tensor& x) { return 2.0 - x; }},
      {"x * 3", [](const Tensor& x) { return x * 3.0; }},
      {"3 * x", [](const Tensor& x) { return 3.0 * x; }},
      {"x / 2", [](const Tensor& x) { return x / 2.0; }},
      {"2 / x", [](const Tensor& x) { return 2.0 / x; }},
      {"-x", [](const Tensor& x) { return -x; }},
      {"x * x + x / 3 - 1", [](const Tensor& x) { return x * x + x / 3.0 - 1.0; }},
  };
  for (const Shape& shape : {Shape{}, Shape{5}, Shape{2, 3}}) {
    // Positive inputs away from 0 so that 2 / x stays smooth.
    const Tensor x = leaf(shape, 0.5, 2.0);
    for (const auto& [name, fn] : fns) {
      OpCheck(name + (" on " + to_string(shape)),
              [fn](const std::vector<Tensor>& v) { return fn(v[0]); }, {x})
          .run();
    }
  }
}

TEST_CASE("tensor operators: gradcheck with broadcasting", "[ops][elementwise][grad]") {
  const std::vector<Tensor> in = {leaf({3, 1, 4}), leaf_avoiding({2, 1}, -2.0, 2.0, {0.0}, 0.5)};
  OpCheck(
      "a + b", [](const std::vector<Tensor>& x) { return x[0] + x[1]; }, in)
      .run();
  OpCheck(
      "a - b", [](const std::vector<Tensor>& x) { return x[0] - x[1]; }, in)
      .run();
  OpCheck(
      "a * b", [](const std::vector<Tensor>& x) { return x[0] * x[1]; }, in)
      .run();
  OpCheck(
      "a / b", [](const std::vector<Tensor>& x) { return x[0] / x[1]; }, in)
      .run();
  // The same tensor on both sides: gradients from both uses are summed.
  OpCheck(
      "a * a - a / b", [](const std::vector<Tensor>& x) { return x[0] * x[0] - x[0] / x[1]; }, in)
      .run();
}

TEST_CASE("unary ops and activations: gradcheck", "[ops][elementwise][grad]") {
  using Fn = Tensor (*)(const Tensor&);
  struct Case {
    const char* name;
    Fn fn;
    double low, high;
    std::vector<double> kinks;
  };
  const std::vector<Case> cases = {
      {"neg", [](const Tensor& x) { return neg(x); }, -2, 2, {}},
      {"exp", [](const Tensor& x) { return exp(x); }, -2, 2, {}},
      {"log", [](const Tensor& x) { return log(x); }, 0.2, 3, {}},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, 0.2, 3, {}},
      {"abs", [](const Tensor& x) { return abs(x); }, -2, 2, {0.0}},
      {"relu", [](const Tensor& x) { return relu(x); }, -2, 2, {0.0}},
      {"leaky_relu", [](const Tensor& x) { return leaky_relu(x); }, -2, 2, {0.0}},
      {"leaky_relu(0.2)", [](const Tensor& x) { return leaky_relu(x, 0.2); }, -2, 2, {0.0}},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, -4, 4, {}},
      {"tanh", [](const Tensor& x) { return tanh(x); }, -2, 2, {}},
      {"clamp(-0.5, 0.5)", [](const Tensor& x) { return clamp(x, -0.5, 0.5); }, -1, 1, {-0.5, 0.5}},
      {"clamp(low only)", [](const Tensor& x) { return clamp(x, 0.1); }, -1, 1, {0.1}},
      {"clamp(high only)",
       [](const Tensor& x) { return clamp(x, -std::numeric_limits<double>::infinity(), 0.3); },
       -1,
       1,
       {0.3}},
  };
  for (const Shape& shape : {Shape{}, Shape{7}, Shape{3, 4}, Shape{2, 1, 3}}) {
    for (const auto& c : cases) {
      const std::string name = c.name + (" on " + to_string(shape));
      // A scalar input could land on the flat side of relu / clamp: give it a value on the slope.
      Tensor x = shape.empty() ? tensor({0.3 * c.high}, {}, kFloat64).requires_grad_(true)
                               : leaf_avoiding(shape, c.low, c.high, c.kinks);
      if (shape.empty() && std::string(c.name) == "clamp(high only)")
        x = tensor({0.0}, {}, kFloat64).requires_grad_(true);
      OpCheck(name, [fn = c.fn](const std::vector<Tensor>& v) { return fn(v[0]); }, {x}).run();
    }
  }
}

TEST_CASE("unary ops on a non-contiguous input: gradcheck", "[ops][elementwise][grad]") {
  const Tensor x = leaf_avoiding({3, 4}, 0.2, 2.0, {});
  OpCheck("log of a transposed view",
          [](const std::vector<Tensor>& v) { return log(v[0].transpose(0, 1)); }, {x})
      .run();
  OpCheck("tanh of a transposed view",
          [](const std::vector<Tensor>& v) { return tanh(v[0].transpose(0, 1)) * v[0].t(); }, {x})
      .run();
}

TEST_CASE("gradients at kinks follow the documented conventions", "[ops][elementwise][grad]") {
  SECTION("abs and relu: 0 at 0") {
    Tensor x = tensor({-2, 0, 3}, kFloat64).requires_grad_(true);
    sum(abs(x)).backward();
    REQUIRE(equal(x.grad(), tensor({-1, 0, 1}, kFloat64)));
    x.zero_grad();
    sum(relu(x)).backward();
    REQUIRE(equal(x.grad(), tensor({0, 0, 1}, kFloat64)));
    x.zero_grad();
    sum(leaky_relu(x, 0.25)).backward();
    REQUIRE(equal(x.grad(), tensor({0.25, 0.25, 1}, kFloat64)));
  }
  SECTION("clamp passes the gradient where low <= x <= high, bounds included") {
    const Tensor x = tensor({-2, -1, 0, 2, 3}, kFloat64).requires_grad_(true);
    sum(clamp(x, -1, 2)).backward();
    REQUIRE(equal(x.grad(), tensor({0, 1, 1, 1, 0}, kFloat64)));
  }
}

TEST_CASE("float32 gradients: exact small-integer values", "[ops][elementwise][grad]") {
  const Tensor a = f32({1, 2, 3, 4, 5, 6}, {2, 3}).requires_grad_(true);
  const Tensor b = f32({2, -1, 4}, {3}).requires_grad_(true);
  sum(mul(a, b) + a - b).backward();
  REQUIRE(a.grad().dtype() == kFloat32);
  REQUIRE(equal(a.grad(), f32({3, 0, 5, 3, 0, 5}, {2, 3})));
  REQUIRE(equal(b.grad(), f32({3, 5, 7}, {3})));  // column sums of a, minus 2
}

// ---------------------------------------------------------------- errors

TEST_CASE("elementwise errors", "[ops][elementwise][errors]") {
  // On every available device (support/op_check.h moves the inputs there).
  const auto unary = [](Tensor (*f)(const Tensor&)) {
    return [f](const std::vector<Tensor>& v) { return f(v[0]); };
  };
  const auto binary = [](Tensor (*f)(const Tensor&, const Tensor&)) {
    return [f](const std::vector<Tensor>& v) { return f(v[0], v[1]); };
  };
  const Tensor a = zeros({2, 3});
  SECTION("non-broadcastable shapes") {
    ct_test::check_errors(
        "broadcasting",
        {{binary(add), {a, zeros({4})}, "add: expected broadcastable shapes"},
         {binary(sub), {a, zeros({3, 3})}, "sub: expected broadcastable shapes"},
         {binary(mul), {zeros({3, 1, 4}), zeros({2, 3})}, "mul: expected broadcastable shapes"},
         {binary(div), {a, zeros({2})}, "div: expected broadcastable shapes"},
         {binary(pow), {a, zeros({2, 2})}, "pow: expected broadcastable shapes"},
         {[](const std::vector<Tensor>& v) { return v[0] + v[1]; },
          {a, zeros({5})},
          "[2, 3] and [5]"}});
  }
  SECTION("mismatched dtypes") {
    ct_test::check_errors(
        "dtypes", {{binary(add),
                    {a, zeros({2, 3}, kFloat64)},
                    "add: expected tensors of one dtype, got float32 and float64"},
                   {binary(mul),
                    {zeros({3}, kFloat64), a},
                    "mul: expected tensors of one dtype, got float64 and float32"},
                   {binary(pow), {a, zeros({3}, kFloat64)}, "pow: expected tensors of one dtype"}});
  }
  SECTION("int64 input to a float op") {
    const Tensor i = zeros({2, 3}, kInt64);
    ct_test::check_errors(
        "int64 inputs", {{unary(exp), {i}, "exp: expected a floating-point tensor"},
                         {unary(relu), {i}, "relu: expected a floating-point tensor"},
                         {binary(add), {i, i}, "add: expected a floating-point tensor"},
                         {binary(add),
                          {a, i},
                          "add: expected a floating-point tensor (float32 or float64), got int64"},
                         {[](const std::vector<Tensor>& v) { return mul(v[0], 2.0); },
                          {i},
                          "mul: expected a floating-point tensor"},
                         {[](const std::vector<Tensor>& v) { return div(2.0, v[0]); },
                          {i},
                          "div: expected a floating-point tensor"},
                         {[](const std::vector<Tensor>& v) { return clamp(v[0], 0, 1); },
                          {i},
                          "clamp: expected a floating-point tensor"}});
  }
  SECTION("undefined tensor") {
    ct_test::check_errors("undefined inputs",
                          {{binary(add), {Tensor(), a}, "add: expected a defined input tensor"},
                           {binary(mul), {a, Tensor()}, "mul: expected a defined input tensor"},
                           {unary(neg), {Tensor()}, "neg: expected a defined input tensor"},
                           {unary(sigmoid), {Tensor()}, "sigmoid: expected a defined input tensor"},
                           {[](const std::vector<Tensor>& v) { return sub(1.0, v[0]); },
                            {Tensor()},
                            "sub: expected a defined input tensor"}});
  }
}

TEST_CASE("clamp with NaN bounds or low > high follows PyTorch", "[ops][elementwise]") {
  // torch 1.13: clamp([1, 2], nan, nan) == clamp([1, 2], nan, 1.5) == clamp([1, 2], 1.5, nan)
  // == [nan, nan]; clamp([1, 2, nan], 3, 0) == [0, 0, nan]; every gradient is 0.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const Tensor x = tensor({1, 2, inf, -inf, nan}, kFloat64);
  for (const auto& [low, high] : std::vector<std::pair<double, double>>{
           {nan, nan}, {nan, 1.5}, {1.5, nan}, {nan, inf}, {-inf, nan}}) {
    INFO("low = " << low << ", high = " << high);
    for (double v : clamp(x, low, high).to_vector<double>()) REQUIRE(std::isnan(v));
    for (double v : clamp(x.to(kFloat32), low, high).to_vector<double>()) REQUIRE(std::isnan(v));
    const Tensor w = tensor({1, 2, 3}, kFloat64).requires_grad_();
    sum(clamp(w, low, high)).backward();
    REQUIRE(equal(w.grad(), zeros({3}, kFloat64)));
  }
  const auto hi = clamp(x, 3, 0).to_vector<double>();
  REQUIRE(hi[0] == 0.0);
  REQUIRE(hi[1] == 0.0);
  REQUIRE(hi[2] == 0.0);
  REQUIRE(hi[3] == 0.0);
  REQUIRE(std::isnan(hi[4]));
  const Tensor w = tensor({1, 2, 3}, kFloat64).requires_grad_();
  sum(clamp(w, 3, 1)).backward();
  REQUIRE(equal(w.grad(), zeros({3}, kFloat64)));
  // Equal bounds: the value is the bound, the gradient passes only at x == bound.
  const Tensor v = tensor({1, 2, 3}, kFloat64).requires_grad_();
  sum(clamp(v, 2, 2)).backward();
  REQUIRE(equal(v.grad(), tensor({0, 1, 0}, kFloat64)));
}
