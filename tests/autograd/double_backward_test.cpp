// The engine's second-order machinery: autograd::grad (values, no .grad touched, pruning,
// unused inputs, intermediate inputs), create_graph through elementwise ops and conv, and
// gradgradcheck failing where it must.
#include "support/test_util.h"

using namespace convtape;

TEST_CASE("grad returns gradients without touching .grad", "[autograd][grad]") {
  Tensor x = tensor({1.0, 2.0, 3.0}, {3}, kFloat64).requires_grad_(true);
  Tensor y = sum(mul(mul(x, x), x));  // sum x^3
  auto g = autograd::grad({y}, {x});
  REQUIRE(g.size() == 1);
  CHECK(g[0].to_vector<double>() == std::vector<double>{3.0, 12.0, 27.0});
  CHECK_FALSE(x.grad().defined());
  CHECK_FALSE(g[0].requires_grad());
}

TEST_CASE("grad with create_graph differentiates again", "[autograd][grad]") {
  Tensor x = tensor({1.0, 2.0, 3.0}, {3}, kFloat64).requires_grad_(true);
  Tensor y = sum(mul(mul(x, x), x));
  auto g = autograd::grad({y}, {x}, {}, {.create_graph = true});
  REQUIRE(g[0].requires_grad());
  const Tensor s = sum(g[0]);
  auto h = autograd::grad({s}, {x}, {}, {.retain_graph = true});  // d/dx sum 3x^2 = 6x
  CHECK(h[0].to_vector<double>() == std::vector<double>{6.0, 12.0, 18.0});
  // Third order through the same graph: d/dx sum 6x = 6.
  auto h2 = autograd::grad({s}, {x}, {}, {.create_graph = true});
  auto t = autograd::grad({sum(h2[0])}, {x});
  CHECK(t[0].to_vector<double>() == std::vector<double>{6.0, 6.0, 6.0});
}

TEST_CASE("backward with create_graph keeps .grad on the tape", "[autograd][grad]") {
  Tensor x = tensor({0.5, -1.0}, {2}, kFloat64).requires_grad_(true);
  Tensor y = sum(exp(mul(x, 2.0)));
  y.backward({}, false, /*create_graph=*/true);
  Tensor gx = x.grad();
  REQUIRE(gx.requires_grad());
  x.zero_grad();
  sum(gx).backward();  // d/dx sum 2 exp(2x) = 4 exp(2x)
  const auto v = x.grad().to_vector<double>();
  CHECK(v[0] == Approx(4 * std::exp(1.0)));
  CHECK(v[1] == Approx(4 * std::exp(-2.0)));
}

TEST_CASE("grad of intermediate tensors, unused inputs, errors", "[autograd][grad]") {
  Tensor x = tensor({1.0, 2.0}, {2}, kFloat64).requires_grad_(true);
  Tensor z = tensor({1.0, 2.0}, {2}, kFloat64).requires_grad_(true);
  Tensor h = mul(x, 3.0);
  Tensor y = sum(mul(h, h));
  auto g = autograd::grad({y}, {h, x});
  CHECK(g[0].to_vector<double>() == std::vector<double>{6.0, 12.0});
  CHECK(g[1].to_vector<double>() == std::vector<double>{18.0, 36.0});
  CHECK_THROWS_WITH(
      autograd::grad({sum(mul(x, x))}, {z}),
      Catch::Contains("grad: expected every input to be used") && Catch::Contains("allow_unused"));
  auto u = autograd::grad({sum(mul(x, x))}, {z, x}, {}, {.allow_unused = true});
  CHECK_FALSE(u[0].defined());
  CHECK(u[1].to_vector<double>() == std::vector<double>{2.0, 4.0});
  CHECK_THROWS_WITH(autograd::grad({sum(x)}, {x, x}),
                    Catch::Contains("grad: expected distinct inputs, got input 1 twice"));
  Tensor c = tensor({1.0}, {1}, kFloat64);
  CHECK_THROWS_WITH(autograd::grad({sum(x)}, {c}),
                    Catch::Contains("grad: expected inputs that require grad"));
  CHECK_THROWS_WITH(
      autograd::grad({mul(x, 2.0)}, {x}),
      Catch::Contains(
          "grad: expected a one-element tensor when no gradient is given, got shape [2]"));
  CHECK_THROWS_WITH(autograd::grad({mul(x, 2.0)}, {x}, {ones({3}, kFloat64)}),
                    Catch::Contains("grad: expected a gradient of shape [2]"));
  // A path through a mask only: reached, derivative zero.
  auto r = autograd::grad({sum(relu(mul(x, -1.0)))}, {x});
  CHECK(r[0].to_vector<double>() == std::vector<double>{0.0, 0.0});
}

TEST_CASE("conv second derivatives: grad of the input gradient with respect to the weight",
          "[autograd][conv]") {
  // y = conv(x, w), L = sum(y); dL/dx = Data(1, w). d/dw sum(dL/dx * c) with c = ones counts, for
  // each weight tap, the number of (input, output) pairs it connects.
  Tensor x = ones({1, 1, 4}, kFloat64).requires_grad_(true);
  Tensor w = tensor({1.0, 2.0}, {1, 1, 2}, kFloat64).requires_grad_(true);
  Tensor y = conv1d(x, w);
  auto gx = autograd::grad({sum(y)}, {x}, {}, {.create_graph = true});
  CHECK(gx[0].to_vector<double>() == std::vector<double>{1.0, 3.0, 3.0, 2.0});
  auto gw = autograd::grad({sum(gx[0])}, {w});
  CHECK(gw[0].to_vector<double>() == std::vector<double>{3.0, 3.0});
}

TEST_CASE("gradgradcheck passes real second derivatives and fails wrong or vacuous ones",
          "[autograd][gradgradcheck]") {
  const auto smooth = [](const std::vector<Tensor>& in) { return tanh(mul(in[0], in[1])); };
  auto r = gradgradcheck(smooth, {ct_test::leaf({3}), ct_test::leaf({3})});
  INFO(r.report);
  CHECK(r.ok);
  // A backward that is right to first order but not recorded: its second derivative is missing.
  const auto unrecorded = [](const std::vector<Tensor>& in) {
    Tensor x = in[0];
    Tensor y = mul(mul(x.detach(), x.detach()), 1.0);
    record(y, "square_no_graph", {x}, {x}, [](const Saved& s, const Tensor& dy, const GradMask&) {
      NoGradGuard off;
      return std::vector<Tensor>{mul(mul(dy, s[0]), 2.0)};
    });
    return y;
  };
  CHECK(gradcheck(unrecorded, {ct_test::leaf({3})}).ok);
  auto bad = gradgradcheck(unrecorded, {ct_test::leaf({3})});
  CHECK_FALSE(bad.ok);
  CHECK(bad.report.find("gradient of input 0 (shape [3]) is not on the tape") != std::string::npos);
  // A linear function of one input has no curvature: refused when curvature is required.
  const auto linear = [](const std::vector<Tensor>& in) { return mul(in[0], 3.0); };
  CHECK(gradgradcheck(linear, {ct_test::leaf({3})}).ok);
  GradgradcheckOptions o;
  o.require_curvature = true;
  auto flat = gradgradcheck(linear, {ct_test::leaf({3})}, o);
  CHECK_FALSE(flat.ok);
  CHECK(flat.report.find("every second derivative with respect to the inputs is zero") !=
        std::string::npos);
}

TEST_CASE("autograd::backward of several outputs sums their vector-Jacobian products",
          "[autograd][grad]") {
  Tensor x = tensor({1.0, 2.0}, {2}, kFloat64).requires_grad_(true);
  Tensor a = mul(x, x), b = mul(x, 3.0);
  autograd::backward({a, b}, {ones({2}, kFloat64), tensor({1.0, -1.0}, {2}, kFloat64)});
  CHECK(x.grad().to_vector<double>() == std::vector<double>{5.0, 1.0});
  Tensor c = mul(x, x), d = mul(x, 3.0);
  CHECK_THROWS_WITH(
      autograd::backward({c, d}, {ones({2}, kFloat64)}),
      Catch::Contains("backward: expected one output gradient per output (2), got 1"));
  CHECK_THROWS_WITH(autograd::backward({c, d}),
                    Catch::Contains("backward: expected a one-element tensor when no gradient is "
                                    "given, got shape [2] for output 0"));
  CHECK_THROWS_WITH(autograd::backward({c, d}, {ones({2}, kFloat64), ones({3}, kFloat64)}),
                    Catch::Contains("backward: expected a gradient of shape [2] (float64, cpu) for "
                                    "output 1, got [3]"));
  CHECK_THROWS_WITH(autograd::backward({}), Catch::Contains("backward: expected at least one "
                                                            "output, got none"));
  CHECK_THROWS_WITH(autograd::grad({}, {x}), Catch::Contains("grad: expected at least one output"));
  CHECK_THROWS_WITH(autograd::grad({sum(c)}, {}),
                    Catch::Contains("grad: expected at least one input, got none"));
  CHECK_THROWS_WITH(autograd::grad({sum(c)}, {Tensor()}),
                    Catch::Contains("grad: expected defined inputs, got an undefined input 0"));
  CHECK_THROWS_WITH(autograd::grad({ones({1}, kFloat64)}, {x}),
                    Catch::Contains("grad: expected outputs that require grad, got output 0"));
}

TEST_CASE("a graph freed by grad without retain_graph cannot run again", "[autograd][grad]") {
  Tensor x = tensor({1.0, 2.0}, {2}, kFloat64).requires_grad_(true);
  Tensor y = sum(mul(x, x));
  autograd::grad({y}, {x});
  CHECK_THROWS_WITH(autograd::grad({y}, {x}),
                    Catch::Contains("expected a graph that is still alive, got one freed"));
}
