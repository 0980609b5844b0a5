// Tests of Module's call operators: modules with several inputs (a custom two-input module, inside
// Sequential, in summary()), forward pre-hooks, forward hooks and backward hooks (order, removal,
// a handle that outlives its module), errors named after the failing layer, the default forward's
// errors, and Sequential built from modules of several types.
#include <memory>
#include <string>
#include <vector>

#include "support/test_util.h"

namespace {

using namespace convtape;
using ct_test::equal;

// out = a * w + b: a module with two inputs and one parameter.
class ScaleAdd : public nn::Module {
 public:
  ScaleAdd() { w = register_parameter("w", full({1}, 3.0)); }
  Tensor forward_inputs(const std::vector<Tensor>& in) override {
    CT_CHECK(in.size() == 2, "ScaleAdd: expected 2 inputs, got {}", in.size());
    return in[0] * w + in[1];
  }
  std::string type_name() const override { return "ScaleAdd"; }
  Tensor w;
};

// A two-level model: enc is a Sequential of a conv and a ReLU, head a Linear.
class Model : public nn::Module {
 public:
  Model() {
    enc = register_module("enc", std::make_shared<nn::Sequential>(
                                     std::make_shared<nn::Conv2d>(nn::Conv2dOptions(3, 4, 3)),
                                     std::make_shared<nn::ReLU>()));
    head = register_module("head", std::make_shared<nn::Linear>(4, 2));
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = (*enc)(x);
    return (*head)(mean(h, {2, 3}));
  }
  std::string type_name() const override { return "Model"; }
  std::shared_ptr<nn::Sequential> enc;
  std::shared_ptr<nn::Linear> head;
};

}  // namespace

TEST_CASE("Module: a module with two inputs, called directly, in Sequential and in summary()") {
  auto m = std::make_shared<ScaleAdd>();
  const Tensor a = tensor({1, 2}, {2});
  const Tensor b = tensor({10, 20}, {2});
  CHECK(equal((*m)(a, b), tensor({13, 26}, {2})));
  CHECK(equal((*m)({a, b}), tensor({13, 26}, {2})));

  // Sequential passes both inputs to its first module, then chains.
  auto seq = std::make_shared<nn::Sequential>(m, std::make_shared<nn::ReLU>());
  CHECK(equal((*seq)(a * -1.0, b * 0.0), tensor({0, 0}, {2})));
  CHECK(equal((*seq)(a, b), tensor({13, 26}, {2})));
  // Gradients reach the parameter through the two-input call.
  Tensor loss = sum((*seq)(a, b));
  loss.backward();
  CHECK(equal(m->w.grad(), tensor({3}, {1})));

  const std::string s = seq->summary({Shape{4, 2}, Shape{4, 2}});
  CHECK(s.find("Sequential summary: inputs [4, 2], [4, 2] (float32), output [4, 2]") !=
        std::string::npos);
  CHECK(s.find("0      ScaleAdd") != std::string::npos);
  CHECK(s.find("1      ReLU") != std::string::npos);

  // A two-input module called with one input, and the reverse.
  CHECK_THROWS_WITH((*m)(a), Catch::Contains("ScaleAdd: expected 2 inputs, got 1"));
  auto relu = std::make_shared<nn::ReLU>();
  CHECK_THROWS_WITH((*relu)(a, b),
                    Catch::Contains("ReLU: expected 1 input, got 2 of shapes [[2], [2]]"));
  CHECK_THROWS_WITH(seq->summary(std::vector<Shape>{}),
                    Catch::Contains("summary: expected at least one input shape, got none"));
}

TEST_CASE("Module: a module that defines no forward says so") {
  class Empty : public nn::Module {
    std::string type_name() const override { return "Empty"; }
  };
  auto e = std::make_shared<Empty>();
  CHECK_THROWS_WITH((*e)(zeros({2, 3})),
                    Catch::Contains("Empty: expected a module that overrides forward(x) for one "
                                    "input, got a call with one input of shape [2, 3]"));
}

TEST_CASE("Module: forward pre-hooks and forward hooks run in order and can be removed") {
  Model model;
  std::vector<std::string> log;
  auto pre =
      model.enc->register_forward_pre_hook([&](nn::Module& m, const std::vector<Tensor>& in) {
        log.push_back(m.type_name() + " pre " + to_string(in.at(0).shape()));
      });
  auto post = model.head->register_forward_hook(
      [&](nn::Module& m, const std::vector<Tensor>& in, const Tensor& out) {
        log.push_back(m.type_name() + " post " + to_string(in.at(0).shape()) + " -> " +
                      to_string(out.shape()));
      });
  const Tensor x = randn({2, 3, 6, 6});
  model(x);
  REQUIRE(log.size() == 2);
  CHECK(log[0] == "Sequential pre [2, 3, 6, 6]");
  CHECK(log[1] == "Linear post [2, 4] -> [2, 2]");

  pre.remove();
  pre.remove();  // twice is harmless
  model(x);
  REQUIRE(log.size() == 3);
  CHECK(log[2] == "Linear post [2, 4] -> [2, 2]");
  post.remove();
  model(x);
  CHECK(log.size() == 3);

  // A feature extractor: a forward hook keeps the conv's output.
  Tensor features;
  model.enc->at<nn::Conv2d>(0)->register_forward_hook(
      [&](nn::Module&, const std::vector<Tensor>&, const Tensor& out) { features = out; });
  model(x);
  CHECK(features.shape() == Shape{2, 4, 4, 4});

  // A handle outliving its module does nothing on remove().
  nn::Module::HookHandle late;
  {
    auto relu = std::make_shared<nn::ReLU>();
    late =
        relu->register_forward_hook([](nn::Module&, const std::vector<Tensor>&, const Tensor&) {});
  }
  late.remove();
  CHECK_THROWS_WITH(
      model.register_forward_hook(nullptr),
      Catch::Contains("register_forward_hook: expected a function, got an empty one"));
  CHECK_THROWS_WITH(
      model.register_forward_pre_hook(nullptr),
      Catch::Contains("register_forward_pre_hook: expected a function, got an empty one"));
  CHECK_THROWS_WITH(
      model.register_backward_hook(nullptr),
      Catch::Contains("register_backward_hook: expected a function, got an empty one"));
}

TEST_CASE("Module: a backward hook sees the gradient of the module's output") {
  manual_seed(7);
  Model model;
  model.to(kFloat64);
  Tensor seen;
  int calls = 0;
  Tensor conv_out;
  auto conv = model.enc->at<nn::Conv2d>(0);
  conv->register_forward_hook(
      [&](nn::Module&, const std::vector<Tensor>&, const Tensor& out) { conv_out = out; });
  auto handle = conv->register_backward_hook([&](nn::Module& m, const Tensor& g) {
    CHECK(m.type_name() == "Conv2d");
    seen = g;
    ++calls;
  });
  const Tensor x = randn({2, 3, 6, 6}, kFloat64);
  // The conv's output gradient, computed independently: d loss / d conv_out through the rest.
  Tensor loss = sum(model(x) * tensor({1.0, -2.0}, {1, 2}, kFloat64));
  loss.backward();
  REQUIRE(calls == 1);
  REQUIRE(seen.shape() == Shape{2, 4, 4, 4});

  Tensor h = conv_out.detach();
  h.requires_grad_(true);
  Tensor loss2 = sum((*model.head)(mean(relu(h), {2, 3})) * tensor({1.0, -2.0}, {1, 2}, kFloat64));
  loss2.backward();
  CHECK(ct_test::allclose(seen, h.grad(), 1e-12, 1e-12));
  CHECK(max(abs(seen)).item() > 0.0);

  // No graph, no hook call; after remove(), none either.
  {
    NoGradGuard no_grad;
    model(x);
  }
  handle.remove();
  sum(model(x)).backward();
  CHECK(calls == 1);
}

TEST_CASE("Module: an error below the top module names the failing layer") {
  Model model;
  // Two input channels where the conv expects three.
  try {
    model(zeros({1, 2, 6, 6}));
    FAIL("expected an Error");
  } catch (const Error& e) {
    const std::string what = e.message();
    CHECK(what.find("[in module 'enc.0' (Conv2d)]") != std::string::npos);
    CHECK(what.rfind("conv", 0) == 0);  // still "<op>: expected ..., got ..." first
  }
  // The head fails: a feature count the Linear does not take.
  class BadHead : public Model {
   public:
    Tensor forward(const Tensor& x) override { return (*head)(x); }
  } bad;
  CHECK_THROWS_WITH(bad(zeros({2, 3})), Catch::Contains("[in module 'head' (Linear)]"));
  // The top module's own errors carry no suffix.
  auto m = std::make_shared<ScaleAdd>();
  try {
    (*m)(zeros({1}));
    FAIL("expected an Error");
  } catch (const Error& e) {
    CHECK(e.message() == "ScaleAdd: expected 2 inputs, got 1");
  }
  // An error caught inside a forward does not blame a later, unrelated failure on its layer.
  class Recovers : public nn::Module {
   public:
    Recovers() {
      a = register_module("a", std::make_shared<nn::Linear>(2, 2));
      b = register_module("b", std::make_shared<nn::Linear>(3, 3));
    }
    Tensor forward(const Tensor& x) override {
      try {
        (*a)(zeros({1, 5}));
      } catch (const Error&) {
      }
      return (*b)(x);
    }
    std::shared_ptr<nn::Linear> a, b;
  } rec;
  CHECK_THROWS_WITH(rec(zeros({1, 4})), Catch::Contains("[in module 'b' (Linear)]"));
}

TEST_CASE("Sequential: built from modules of several types without a braced list") {
  auto conv = std::make_shared<nn::Conv2d>(nn::Conv2dOptions(1, 2, 3));
  auto relu = std::make_shared<nn::ReLU>();
  nn::Sequential a(conv, relu);
  auto b = std::make_shared<nn::Sequential>(conv, relu, std::make_shared<nn::Flatten>());
  CHECK(a.size() == 2);
  CHECK(b->size() == 3);
  CHECK(a[0] == conv);
  CHECK(b->at<nn::Flatten>(2) != nullptr);
  CHECK((*b)(zeros({1, 1, 5, 5})).shape() == Shape{1, 18});
}
