// Tests of modules/sequential: construction from a list and from named pairs, push_back by
// position and by name, indexing and typed access, the chained forward (against calling the
// children by hand), the empty identity, and the errors.
#include <memory>
#include <string>
#include <vector>

#include "support/test_util.h"

namespace {

using namespace convtape;
using ct_test::equal;

TEST_CASE("Sequential: names, indexing and the chained forward") {
  manual_seed(91);
  auto lin1 = std::make_shared<nn::Linear>(4, 6);
  auto act = std::make_shared<nn::ReLU>();
  auto lin2 = std::make_shared<nn::Linear>(6, 2);
  nn::Sequential seq{lin1, act, lin2};
  CHECK(seq.size() == 3);
  CHECK_FALSE(seq.empty());
  CHECK(seq[0].get() == lin1.get());
  CHECK(seq["2"].get() == lin2.get());
  CHECK(seq.at<nn::Linear>(2).get() == lin2.get());
  std::vector<std::string> names;
  for (const auto& [name, t] : seq.named_parameters()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"});
  const Tensor x = randn({5, 4});
  CHECK(equal(seq(x), (*lin2)((*act)((*lin1)(x)))));
  CHECK(seq.forward(x).shape() == Shape{5, 2});

  auto extra = seq.push_back(std::make_shared<nn::Sigmoid>());
  CHECK(seq.named_children().back().first == "3");
  CHECK(extra->type_name() == "Sigmoid");
  CHECK(equal(seq(x), sigmoid((*lin2)((*act)((*lin1)(x))))));
  CHECK(seq.sequence().size() == 4);
}

TEST_CASE("Sequential: named children, nesting, and the empty identity") {
  manual_seed(92);
  auto features = std::make_shared<nn::Sequential>(nn::NamedModules{
      {"conv1", std::make_shared<nn::Conv2d>(nn::Conv2dOptions(1, 2, 3).padding(1))},
      {"pool", std::make_shared<nn::MaxPool2d>(2)}});
  nn::Sequential model;
  model.push_back("features", features);
  model.push_back("flatten", std::make_shared<nn::Flatten>());
  model.push_back("classifier", std::make_shared<nn::Linear>(8, 3));
  std::vector<std::string> names;
  for (const auto& [name, t] : model.named_parameters()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"features.conv1.weight", "features.conv1.bias",
                                          "classifier.weight", "classifier.bias"});
  CHECK(model(randn({2, 1, 4, 4})).shape() == Shape{2, 3});
  CHECK(model["features"].get() == features.get());

  nn::Sequential empty;
  const Tensor x = randn({3});
  CHECK(empty.empty());
  CHECK(equal(empty(x), x));
  CHECK(empty.str() == "Sequential()");
}

TEST_CASE("Sequential: errors") {
  nn::Sequential seq{std::make_shared<nn::ReLU>()};
  CT_REQUIRE_ERROR(seq[1], "Sequential: expected index < 1, got 1");
  CT_REQUIRE_ERROR(seq["conv"], "Sequential: expected the name of a child, got 'conv'");
  CT_REQUIRE_ERROR(seq.at<nn::Linear>(0),
                   "Sequential: expected child 0 to be of the requested type, got ReLU");
  CT_REQUIRE_ERROR(seq.push_back("0", std::make_shared<nn::ReLU>()),
                   "register_module: expected a new name, got '0'");
  CT_REQUIRE_ERROR(seq.push_back(nullptr), "register_module: expected a module for '1'");
  CHECK(seq.size() == 1);  // nothing half-added
}

}  // namespace
