// Tests of modules/activation: each layer against its op (and exact small values), Flatten's
// dims, the printouts, gradients through the layers, and the op errors surfacing unchanged.
#include <vector>

#include "support/test_util.h"

namespace {

using namespace convtape;
using ct_test::equal;

TEST_CASE("Activations: each layer is its op") {
  manual_seed(81);
  const Tensor x = randn({3, 4, 5});
  CHECK(equal(nn::ReLU()(x), relu(x)));
  CHECK(equal(nn::LeakyReLU()(x), leaky_relu(x, 0.01)));
  CHECK(equal(nn::LeakyReLU(0.2)(x), leaky_relu(x, 0.2)));
  CHECK(equal(nn::Sigmoid()(x), sigmoid(x)));
  CHECK(equal(nn::Tanh()(x), tanh(x)));
  CHECK(equal(nn::Softmax(1)(x), softmax(x, 1)));
  CHECK(equal(nn::LogSoftmax(-1)(x), log_softmax(x, -1)));
  CHECK(nn::Identity()(x).same(x));
  const Tensor s = tensor({-2, 0, 3});
  CHECK(equal(nn::ReLU()(s), tensor({0, 0, 3})));
  CHECK(equal(nn::LeakyReLU(0.5)(s), tensor({-1, 0, 3})));
  CHECK(equal(nn::Softmax(0)(tensor({1, 1, 1, 1})), tensor({0.25, 0.25, 0.25, 0.25})));
}

TEST_CASE("Flatten: start_dim 1 by default, any range") {
  const Tensor x = zeros({2, 3, 4, 5});
  CHECK(nn::Flatten()(x).shape() == Shape{2, 60});
  CHECK(nn::Flatten(0)(x).shape() == Shape{120});
  CHECK(nn::Flatten(1, 2)(x).shape() == Shape{2, 12, 5});
  CHECK(nn::Flatten(-2)(x).shape() == Shape{2, 3, 20});
  const Tensor a = arange(6.0).reshape({1, 2, 3});
  CHECK(equal(nn::Flatten()(a), arange(6.0).reshape({1, 6})));
}

TEST_CASE("Activations: printouts, gradients, errors") {
  CHECK(nn::ReLU().str() == "ReLU()");
  CHECK(nn::LeakyReLU(0.2).str() == "LeakyReLU(negative_slope=0.2)");
  CHECK(nn::Softmax(1).str() == "Softmax(dim=1)");
  CHECK(nn::LogSoftmax(0).str() == "LogSoftmax(dim=0)");
  CHECK(nn::Flatten().str() == "Flatten(start_dim=1, end_dim=-1)");
  CHECK(nn::Sigmoid().type_name() == "Sigmoid");
  CHECK(nn::Tanh().parameters().empty());

  auto chain = std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Tanh>(), std::make_shared<nn::LeakyReLU>(0.1),
      std::make_shared<nn::Sigmoid>(), std::make_shared<nn::Flatten>(),
      std::make_shared<nn::LogSoftmax>(1)});
  CT_REQUIRE_GRADCHECK([&](const std::vector<Tensor>& in) { return (*chain)(in[0]); },
                       std::vector<Tensor>{ct_test::leaf({2, 3, 2})});

  CT_REQUIRE_ERROR(nn::Softmax(3)(zeros({2, 2})), "softmax");
  CT_REQUIRE_ERROR(nn::Flatten(2)(zeros({2})), "flatten");
}

}  // namespace
