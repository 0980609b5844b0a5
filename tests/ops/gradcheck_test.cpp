// gradcheck itself: it passes correct gradients, catches wrong ones in both modes, refuses
// all-zero checks, and reports where it failed.
#include "support/test_util.h"

using namespace convtape;

namespace {
// x * 2 on the tape with a deliberately wrong backward (3 * dy), to prove gradcheck can fail.
Tensor wrong_double(const Tensor& x) {
  Tensor y = mul(x.detach(), 2.0);
  record(y, "wrong_double", {x}, {}, [](const Saved&, const Tensor& dy, const GradMask&) {
    return std::vector<Tensor>{mul(dy, 3.0)};
  });
  return y;
}
}  // namespace

TEST_CASE("gradcheck accepts correct gradients", "[gradcheck]") {
  const auto fn = [](const std::vector<Tensor>& in) { return tanh(matmul(in[0], in[1])); };
  const auto r = gradcheck(fn, {ct_test::leaf({3, 4}), ct_test::leaf({4, 2})});
  INFO(r.report);
  CHECK(r.ok);
  CHECK(r.report.find("full Jacobian 6 x 20") != std::string::npos);
}

TEST_CASE("gradcheck catches a wrong backward", "[gradcheck]") {
  const auto fn = [](const std::vector<Tensor>& in) { return wrong_double(in[0]); };
  const auto r = gradcheck(fn, {ct_test::leaf({2, 2})});
  CHECK_FALSE(r.ok);
  CHECK(r.report.find("input 0 (shape [2, 2])") != std::string::npos);
  CHECK(r.report.find("analytic 3, numeric 2") != std::string::npos);
  GradcheckOptions o;
  o.max_jacobian_entries = 1;  // force random directions
  const auto rr = gradcheck(fn, {ct_test::leaf({8, 8})}, o);
  CHECK_FALSE(rr.ok);
  CHECK(rr.report.find("random direction") != std::string::npos);
}

TEST_CASE("gradcheck uses random directions for large problems", "[gradcheck]") {
  GradcheckOptions o;
  o.max_jacobian_entries = 10;
  const auto fn = [](const std::vector<Tensor>& in) { return sigmoid(in[0]) * in[1]; };
  const auto r = gradcheck(fn, {ct_test::leaf({20, 10}), ct_test::leaf({10})}, o);
  INFO(r.report);
  CHECK(r.ok);
  CHECK(r.report.find("random directions") != std::string::npos);
}

TEST_CASE("gradcheck fails when every gradient is zero", "[gradcheck]") {
  const auto fn = [](const std::vector<Tensor>& in) { return relu(in[0]); };
  const auto r = gradcheck(fn, {uniform({5}, -2.0, -1.0, kFloat64).requires_grad_()});
  CHECK_FALSE(r.ok);
  CHECK(r.report.find("every analytic and numeric gradient is zero") != std::string::npos);
}

TEST_CASE("gradcheck checks only inputs that require grad and refuses bad setups", "[gradcheck]") {
  const Tensor labels = from_vector(std::vector<std::int64_t>{1, 0, 2}, {3});
  const auto fn = [](const std::vector<Tensor>& in) { return cross_entropy(in[0], in[1]); };
  CT_REQUIRE_GRADCHECK(fn, (std::vector<Tensor>{ct_test::leaf({3, 4}), labels}));
  CT_REQUIRE_ERROR(gradcheck(fn, {ones({3, 4}, kFloat64), labels}),
                   "gradcheck: expected at least one input that requires grad");
  CT_REQUIRE_ERROR(gradcheck(fn, {ones({3, 4}).requires_grad_(), labels}),
                   "gradcheck: expected float64 inputs, got float32 for input 0");
}
