// Tests of modules/correlation: forward(f1, f2) and the two-input call operator against the op
// (FlowNetC's configuration and a strided one), gradients to both inputs, summary() seeing the
// two-input call, the printout, and the single-input error.
#include <vector>

#include "support/test_util.h"

namespace {

using namespace convtape;
using ct_test::equal;

TEST_CASE("Correlation: the cost volume of two inputs") {
  manual_seed(101);
  const Tensor f1 = randn({1, 8, 12, 10});
  const Tensor f2 = randn({1, 8, 12, 10});
  const auto o =
      CorrelationOptions().kernel_size(3).max_displacement(2).stride1(2).stride2(1).padding(3);
  nn::Correlation corr(o);
  CHECK(equal(corr(f1, f2), correlation(f1, f2, o)));
  CHECK(equal(corr.forward(f1, f2), correlation(f1, f2, o)));
  nn::Correlation flownet(CorrelationOptions::flownetc());
  CHECK(flownet(f1, f2).shape() == Shape{1, 441, 12, 10});
  CHECK(flownet.str() ==
        "Correlation(kernel_size=1, max_displacement=20, stride1=1, stride2=2, padding=20)");
  CHECK(flownet.parameters().empty());

  const Tensor a = ct_test::leaf({1, 2, 5, 5});
  const Tensor b = ct_test::leaf({1, 2, 5, 5});
  nn::Correlation small(CorrelationOptions().max_displacement(1).padding(1));
  CT_REQUIRE_GRADCHECK([&](const std::vector<Tensor>& in) { return small(in[0], in[1]); },
                       (std::vector<Tensor>{a, b}));
}

// A model that correlates the features of two halves of its input.
class Siamese : public nn::Module {
 public:
  Siamese() {
    conv = register_module("conv",
                           std::make_shared<nn::Conv2d>(nn::Conv2dOptions(1, 4, 3).padding(1)));
    corr = register_module("corr", std::make_shared<nn::Correlation>(
                                       CorrelationOptions().max_displacement(2).padding(2)));
  }
  Tensor forward(const Tensor& x) override {
    const Tensor a = (*conv)(narrow(x, 1, 0, 1));
    const Tensor b = (*conv)(narrow(x, 1, 1, 1));
    return (*corr)(a, b);
  }
  std::shared_ptr<nn::Conv2d> conv;
  std::shared_ptr<nn::Correlation> corr;
};

TEST_CASE("Correlation: inside a model and its summary; the single-input call is refused") {
  manual_seed(102);
  Siamese net;
  CHECK(net(randn({2, 2, 6, 6})).shape() == Shape{2, 25, 6, 6});
  const std::string text = net.summary({2, 2, 6, 6});
  INFO(text);
  CHECK(text.find("corr   Correlation  [2, 25, 6, 6]       0\n") != std::string::npos);
  // One row per call: the shared conv runs twice.
  const std::string conv_row = "conv   Conv2d       [2, 4, 6, 6]       40\n";
  CHECK(text.find(conv_row + conv_row) != std::string::npos);
  CHECK(text.rfind("Module summary: input [2, 2, 6, 6] (float32), output [2, 25, 6, 6]", 0) == 0);
  nn::Correlation corr;
  CT_REQUIRE_ERROR(corr(zeros({1, 2, 3, 3})),
                   "Correlation: expected two inputs (forward(f1, f2)), got one of shape "
                   "[1, 2, 3, 3]");
  CT_REQUIRE_ERROR(corr(zeros({1, 2, 3, 3}), zeros({1, 3, 3, 3})), "correlation");
}

}  // namespace
