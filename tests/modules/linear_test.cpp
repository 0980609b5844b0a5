// Tests of modules/linear: y = x W^T + b by hand with small integers (exact), batched leading
// dims and 1-d inputs, no bias, float64 gradients of input, weight and bias, the printout, and the
// errors.
#include <vector>

#include "modules/module_check.h"
#include "support/test_util.h"

namespace {

using namespace convtape;
using ct_test::equal;

TEST_CASE("Linear: y = x W^T + b, exactly, for 2-d, batched and 1-d inputs") {
  nn::Linear lin(3, 2);
  CHECK(lin.weight().shape() == Shape{2, 3});
  CHECK(lin.bias().shape() == Shape{2});
  {
    NoGradGuard no_grad;
    lin.weight().copy_(tensor({1, 2, 3, -1, 0, 4}, {2, 3}));
    lin.bias().copy_(tensor({10, -20}));
  }
  const Tensor x = tensor({1, 1, 1, 2, -1, 0}, {2, 3});
  // [1, 1, 1]: 1 + 2 + 3 + 10 = 16, -1 + 0 + 4 - 20 = -17; [2, -1, 0]: 2 - 2 + 10 = 10, -2 - 20
  CHECK(equal(lin(x), tensor({16, -17, 10, -22}, {2, 2})));
  const Tensor batched = lin(x.reshape({2, 1, 3}).expand({2, 4, 3}));
  CHECK(batched.shape() == Shape{2, 4, 2});
  CHECK(batched.to_vector<float>()[15] == -22.0f);  // [1, 3, 1]
  CHECK(equal(lin(tensor({1, 1, 1})), tensor({16, -17})));

  nn::Linear no_bias(nn::LinearOptions(3, 2).bias(false));
  CHECK_FALSE(no_bias.bias().defined());
  CHECK(no_bias.parameters().size() == 1);
  {
    NoGradGuard no_grad;
    no_bias.weight().copy_(lin.weight());
  }
  CHECK(equal(no_bias(x), tensor({6, 3, 0, -2}, {2, 2})));
  CHECK(no_bias.str() == "Linear(in_features=3, out_features=2, bias=false)");
}

TEST_CASE("Linear: float64 gradients of input, weight and bias") {
  manual_seed(31);
  nn::Linear lin(4, 3);
  lin.to(kFloat64);
  CT_REQUIRE_MODULE_GRADCHECK(lin, randn({5, 4}, kFloat64));
  CT_REQUIRE_MODULE_GRADCHECK(lin, randn({2, 3, 4}, kFloat64));
  nn::Linear no_bias(nn::LinearOptions(4, 2).bias(false));
  no_bias.to(kFloat64);
  CT_REQUIRE_MODULE_GRADCHECK(no_bias, randn({3, 4}, kFloat64));
}

TEST_CASE("Linear: errors") {
  nn::Linear fc(3136, 128);
  CT_REQUIRE_ERROR(fc(zeros({1, 64, 7, 7})),
                   "linear: expected input with last dim 3136, got [1, 64, 7, 7]");
  CT_REQUIRE_ERROR(fc(Tensor()), "linear: expected an input tensor, got an undefined one");
  CT_REQUIRE_ERROR(fc(zeros({2, 3136}, kFloat64)), "linear: expected tensors of one dtype");
  CT_REQUIRE_ERROR(nn::Linear(0, 3),
                   "Linear: expected positive in_features and out_features, got 0 and 3");
}

}  // namespace
