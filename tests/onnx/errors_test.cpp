// onnx::export_model refusing what ONNX cannot express, each case with the message that names the
// op, the option and the module; never a model that computes something else.
#include "onnx/onnx_check.h"
#include "support/test_util.h"

using namespace convtape;
using namespace ct_onnx;
using Ints = std::vector<std::int64_t>;

namespace {

std::string export_error(nn::Module& m, const std::vector<Tensor>& inputs,
                         const convtape::onnx::ExportOptions& options = {}) {
  try {
    convtape::onnx::export_model_bytes(m, inputs, options);
  } catch (const Error& e) {
    return e.message();
  }
  return "(no error)";
}

// conv -> the given function, so that the failing op runs in module '1'.
std::shared_ptr<nn::Sequential> after_conv(Fn::Body body) {
  return std::make_shared<nn::Sequential>(
      std::make_shared<nn::Conv2d>(nn::Conv2dOptions(2, 3, 3).padding(1)), fn(std::move(body)));
}

convtape::onnx::ExportOptions dynamic() {
  convtape::onnx::ExportOptions o;
  o.dynamic_batch = true;
  return o;
}

}  // namespace

TEST_CASE("onnx errors: an op without an ONNX form", "[onnx]") {
  manual_seed(10);
  const Tensor x = randn({2, 2, 5, 5});
  SECTION("a library op that records without a trace (a reduction)") {
    auto m = after_conv([](const std::vector<Tensor>& in) { return sum(in[0], {1}); });
    CHECK(export_error(*m, {x}) ==
          "onnx::export_model: expected ops that ONNX can express, got 'sum' in module '1' (Fn)");
  }
  SECTION("a custom op recorded on the tape") {
    auto m = after_conv([](const std::vector<Tensor>& in) {
      Tensor y;
      {
        NoGradGuard no_grad;
        y = mul(in[0], 3.0);
      }
      record(y, "triple", {in[0]}, {}, [](const Saved&, const Tensor& dy, const GradMask&) {
        return std::vector<Tensor>{mul(dy, 3.0)};
      });
      return y;
    });
    CHECK(export_error(*m, {x}) ==
          "onnx::export_model: expected ops that ONNX can express, got 'triple' in module '1' "
          "(Fn)");
  }
  SECTION("max_unpool (its indices have no ONNX form here)") {
    auto m = fn([](const std::vector<Tensor>& in) {
      const PoolWithIndices p = max_pool_with_indices(in[0], PoolOptions(2));
      return max_unpool2d(p.values, p.indices, PoolOptions(2));
    });
    CHECK(export_error(*m, {randn({2, 2, 4, 4})}) ==
          "onnx::export_model: expected ops that ONNX can express, got "
          "'max_unpool2d' in module '<root>' (Fn)");
  }
  SECTION("an unused op is no error") {
    auto m = after_conv([](const std::vector<Tensor>& in) {
      (void)sum(in[0]);
      return relu(in[0]);
    });
    CHECK(op_types(export_checked(*m, {x})) == std::vector<std::string>{"Conv", "Relu"});
  }
}

TEST_CASE("onnx errors: values computed outside the trace", "[onnx]") {
  manual_seed(11);
  const Tensor x = randn({2, 2, 5, 5});
  SECTION("a comparison's mask") {
    auto m = after_conv([](const std::vector<Tensor>& in) { return mul(in[0], gt(in[0], 0.0)); });
    CHECK_THAT(export_error(*m, {x}),
               Catch::StartsWith(
                   "onnx::export_model: expected values computed from the inputs to come from ops "
                   "that ONNX can express, got input 1 of 'mul' in module '1' (Fn) computed "
                   "outside the trace (by an op that records nothing, such as a comparison"));
  }
  SECTION("a detached input") {
    auto m = fn([](const std::vector<Tensor>& in) { return add(in[0], mul(in[0].detach(), 2.0)); });
    CHECK_THAT(export_error(*m, {x}),
               Catch::Contains("got input 0 of 'mul_scalar' in module '<root>' (Fn) computed "
                               "outside the trace"));
  }
  SECTION("a scalar read from the input") {
    auto m =
        fn([](const std::vector<Tensor>& in) { return mul(in[0], in[0].detach().max().item()); });
    CHECK(export_error(*m, {x}) ==
          "onnx::export_model: expected 'mul_scalar' in module '<root>' (Fn) to take the same "
          "scalar for other input values, got one that changes with them");
  }
  SECTION("control flow on input values") {
    auto m = fn([](const std::vector<Tensor>& in) {
      return in[0].detach().sum().item() > 0 ? relu(in[0]) : tanh(in[0]);
    });
    // The example's sum is positive; the second pass's values are another draw.
    Tensor positive = abs(x);
    Tensor negative = neg(abs(x));
    const std::string a = export_error(*m, {positive}), b = export_error(*m, {negative});
    CHECK_THAT(a + b, Catch::Contains("expected the same ops for other input values (no control "
                                      "flow on input values), got"));
  }
  SECTION("an output picked by input values") {
    auto m = fn([](const std::vector<Tensor>& in) {
      const Tensor r = relu(in[0]), s = sigmoid(in[0]);
      return in[0].detach().sum().item() > 0 ? r : s;
    });
    const std::string a = export_error(*m, {abs(x)}), b = export_error(*m, {neg(abs(x))});
    CHECK_THAT(a + b, Catch::Contains("expected the module's output to come from the same op for "
                                      "other input values, got the output of op #"));
  }
  SECTION("an operand picked by input values") {
    auto m = fn([](const std::vector<Tensor>& in) {
      return add(relu(in[0]), in[0].detach().sum().item() > 0 ? in[0] : in[1]);
    });
    const std::string a = export_error(*m, {abs(x), x}), b = export_error(*m, {neg(abs(x)), x});
    CHECK_THAT(a + b, Catch::Contains("expected input 1 of 'add' in module '<root>' (Fn) to read "
                                      "the same value for other input values, got graph input"));
  }
  SECTION("a module that runs only on its example values") {
    auto m = fn([](const std::vector<Tensor>& in) {
      CT_CHECK(in[0].detach().min().item() >= 0.0, "Positive: expected x >= 0, got a negative");
      return relu(in[0]);
    });
    CHECK_THAT(export_error(*m, {abs(x)}),
               Catch::StartsWith("onnx::export_model: expected the module to run on other input "
                                 "values too (the second pass, which checks that the graph does "
                                 "not depend on the example values), got: Positive: expected x >= "
                                 "0, got a negative"));
  }
}

TEST_CASE("onnx errors: options", "[onnx]") {
  manual_seed(12);
  auto m = fn([](const std::vector<Tensor>& in) { return relu(in[0]); });
  const Tensor x = randn({2, 3});
  convtape::onnx::ExportOptions o;
  o.opset = 12;
  CHECK(export_error(*m, {x}, o) == "onnx::export_model: expected opset 13 to 17, got 12");
  o.opset = 18;
  CHECK(export_error(*m, {x}, o) == "onnx::export_model: expected opset 13 to 17, got 18");
  o = {};
  o.input_names = {"a", "b"};
  CHECK(export_error(*m, {x}, o) ==
        "onnx::export_model: expected one input name per example input (1), got 2 names");
  o = {};
  o.output_names = {"y", "z"};
  CHECK(export_error(*m, {x}, o) ==
        "onnx::export_model: expected one output name (a module returns one tensor), got 2");
  o = {};
  o.input_names = {"a", "a"};
  CHECK(export_error(*m, {x, x}, o) ==
        "onnx::export_model: expected distinct input names, got 'a' twice");
  o = {};
  o.input_names = {"const_0"};
  CHECK(export_error(*m, {x}, o) ==
        "onnx::export_model: expected input names that are not empty and do not start with "
        "const_, got 'const_0'");
  o = {};
  o.output_names = {"input"};
  CHECK(export_error(*m, {x}, o) ==
        "onnx::export_model: expected an output name that is not empty, not an input's and does "
        "not start with const_, got 'input'");
  CHECK(export_error(*m, {}) ==
        "onnx::export_model: expected at least one example input, got none");
  CHECK(export_error(*m, {x, Tensor()}) ==
        "onnx::export_model: expected defined example inputs, got an undefined one at 1");
  o = {};
  o.dynamic_batch = true;
  CHECK(export_error(*m, {x, randn({3, 3})}, o) ==
        "onnx::export_model: expected inputs of one batch size (dim 0) with dynamic_batch, got "
        "[2, 3] and [3, 3]");
  // A module given an input count it does not take says so itself.
  nn::Sequential seq(std::make_shared<nn::ReLU>());
  CHECK_THAT(export_error(seq, {x, x}), Catch::Contains("expected 1 input, got 2"));
  auto none = fn([](const std::vector<Tensor>&) { return Tensor(); });
  CHECK(export_error(*none, {x}) ==
        "onnx::export_model: expected the module to return a tensor, got an undefined one");
}

TEST_CASE("onnx errors: convolution options", "[onnx]") {
  manual_seed(13);
  const Tensor x = randn({2, 2, 5, 5});
  const Tensor w = randn({3, 2, 3, 3});
  auto m = fn([w](const std::vector<Tensor>& in) {
    return conv2d(in[0], w, Tensor(), ConvOptions().input_dilation(Ints{2, 1}));
  });
  CHECK(export_error(*m, {x}) ==
        "onnx::export_model: expected a convolution without input (lhs) dilation (ONNX's Conv "
        "has none), got input_dilation [2, 1] in 'conv2d' in module '<root>' (Fn)");
  ConvGeneralOptions g;
  g.lhs_dilation = {2, 2};
  g.padding = {{1, 1}};
  auto general = fn([w, g](const std::vector<Tensor>& in) { return conv_general(in[0], w, g); });
  CHECK_THAT(export_error(*general, {x}),
             Catch::EndsWith("got input_dilation [2, 2] in 'conv_general' in module '<root>' "
                             "(Fn)"));
}

namespace {

// A block whose BatchNorm stays in training mode whatever the caller asks (a frozen-statistics
// trick gone wrong, say).
class StubbornBlock : public nn::Module {
 public:
  StubbornBlock() { bn = register_module("bn", std::make_shared<nn::BatchNorm2d>(2)); }
  void train(bool on) override {
    nn::Module::train(on);
    bn->train(true);
  }
  Tensor forward(const Tensor& x) override { return (*bn)(x); }
  std::string type_name() const override { return "StubbornBlock"; }
  std::shared_ptr<nn::BatchNorm2d> bn;
};

}  // namespace

TEST_CASE("onnx errors: BatchNorm with batch statistics", "[onnx]") {
  manual_seed(14);
  const Tensor x = randn({4, 2, 3, 3});
  nn::Sequential training(std::make_shared<StubbornBlock>());
  CHECK(export_error(training, {x}) ==
        "onnx::export_model: expected BatchNorm that normalises with its running statistics, in "
        "eval mode (ONNX's BatchNormalization in inference form), got batch statistics in "
        "training mode in 'batch_norm' in module '0.bn' (BatchNorm2d)");
  nn::Sequential untracked(
      std::make_shared<nn::BatchNorm2d>(nn::BatchNormOptions(2).track_running_stats(false)));
  CHECK(export_error(untracked, {x}) ==
        "onnx::export_model: expected BatchNorm that normalises with its running statistics, in "
        "eval mode (ONNX's BatchNormalization in inference form), got batch statistics "
        "(track_running_stats=false) in 'batch_norm' in module '0' (BatchNorm2d)");
  // The module's own modes are back after the failed export.
  CHECK(training.is_training());
}

TEST_CASE("onnx errors: pooling options", "[onnx]") {
  manual_seed(15);
  const Tensor x = randn({2, 3, 5, 5});
  nn::Sequential uneven(std::make_shared<nn::AdaptiveAvgPool2d>(Shape{3}));
  CHECK(export_error(uneven, {x}) ==
        "onnx::export_model: expected adaptive pooling whose windows have one size and one stride "
        "(ONNX has no adaptive pooling), got windows [0, 2) [1, 4) [3, 5) for input size 5 and "
        "output size 3 in spatial dim 0 in 'adaptive_avg_pool' in module '0' (AdaptiveAvgPool2d)");
  // 5 -> 2 is windows [0, 3) [2, 5), a pooling of kernel 3 and stride 2; 5 -> 3 is not.
  nn::Sequential uneven_max(std::make_shared<nn::AdaptiveMaxPool2d>(Shape{2, 3}));
  CHECK_THAT(export_error(uneven_max, {x}),
             Catch::Contains("got windows [0, 2) [1, 4) [3, 5) for input size 5 and output size 3 "
                             "in spatial dim 1 in 'adaptive_max_pool' in module '0' "
                             "(AdaptiveMaxPool2d)"));
  nn::Sequential divisor(std::make_shared<nn::AvgPool2d>(PoolOptions(2).divisor_override(3)));
  CHECK(export_error(divisor, {x}) ==
        "onnx::export_model: expected average pooling without divisor_override (ONNX's "
        "AveragePool divides by the window), got divisor_override 3 in 'avg_pool2d' in module "
        "'0' (AvgPool2d)");
}

TEST_CASE("onnx errors: dropout that draws a mask, softmax of a scalar, clamp to NaN", "[onnx]") {
  manual_seed(16);
  const Tensor x = randn({2, 3});
  auto drop = fn([](const std::vector<Tensor>& in) { return dropout(in[0], 0.5, true); });
  CHECK(export_error(*drop, {x}) ==
        "onnx::export_model: expected no dropout mask (dropout in eval mode is the identity; a "
        "drawn mask has no ONNX form), got a mask drawn with p = 0.5 in 'dropout' in module "
        "'<root>' (Fn)");
  auto drop2d = fn([](const std::vector<Tensor>& in) { return dropout2d(in[0], 0.25, true); });
  CHECK_THAT(export_error(*drop2d, {randn({2, 3, 4, 4})}),
             Catch::EndsWith("got a mask drawn with p = 0.25 in 'dropout2d' in module '<root>' "
                             "(Fn)"));
  auto soft0 = fn([](const std::vector<Tensor>& in) { return softmax(squeeze(in[0]), 0); });
  CHECK(export_error(*soft0, {randn({1, 1})}) ==
        "onnx::export_model: expected a softmax over a tensor with dims (ONNX's Softmax needs an "
        "axis), got a 0-d tensor in 'softmax' in module '<root>' (Fn)");
  auto nan_clamp = fn([](const std::vector<Tensor>& in) {
    return clamp(in[0], 0.0, std::numeric_limits<double>::quiet_NaN());
  });
  CHECK(export_error(*nan_clamp, {x}) ==
        "onnx::export_model: expected clamp bounds that are numbers, got low = 0, high = nan in "
        "'clamp' in module '<root>' (Fn)");
}

TEST_CASE("onnx errors: dynamic batch", "[onnx]") {
  manual_seed(17);
  const Tensor x = randn({2, 3});
  SECTION("a constant of the batch's shape") {
    auto m = fn([](const std::vector<Tensor>& in) { return add(in[0], ones(in[0].shape())); });
    CHECK(export_error(*m, {x}, dynamic()) ==
          "onnx::export_model: expected tensors that do not follow the batch size to come from "
          "ops that ONNX can express (dynamic_batch), got input 1 of 'add' in module '<root>' "
          "(Fn) of shape [2, 3] at one batch size and [3, 3] at another, made outside the trace");
    CHECK_NOTHROW(convtape::onnx::export_model_bytes(*m, {x}));  // a fixed batch is fine
  }
  SECTION("control flow on the batch size") {
    auto m = fn([](const std::vector<Tensor>& in) {
      return in[0].size(0) == 2 ? relu(in[0]) : sigmoid(in[0]);
    });
    CHECK(export_error(*m, {x}, dynamic()) ==
          "onnx::export_model: expected the same ops for other input values and another batch "
          "size (no control flow on input values), got 'relu' in module '<root>' (Fn) and "
          "'sigmoid' in module '<root>' (Fn) as op #0");
  }
  SECTION("a reshape that spreads the batch over two dims") {
    auto m = fn([](const std::vector<Tensor>& in) {
      const Tensor g = matmul(in[0], transpose(in[0], 0, 1));  // [N, N]
      const std::int64_t n = in[0].size(0);
      return reshape(reshape(g, {n * n}), {n, n});
    });
    CHECK(export_error(*m, {x}, dynamic()) ==
          "onnx::export_model: expected a reshape that keeps the batch size in one dim of its "
          "target (dynamic_batch), got [4] to [2, 2] (and [9] to [3, 3] at another batch size) "
          "in 'reshape' in module '<root>' (Fn)");
  }
  SECTION("an expand to the batch size") {
    const Tensor row = randn({1, 3});
    auto m = fn([row](const std::vector<Tensor>& in) {
      return add(in[0], expand(row, {in[0].size(0), 3}));
    });
    CHECK(export_error(*m, {x}, dynamic()) ==
          "onnx::export_model: expected an expand that broadcasts only dims of a fixed size "
          "(dynamic_batch), got [1, 3] to [2, 3] (and [1, 3] to [3, 3] at another batch size) in "
          "'expand' in module '<root>' (Fn)");
  }
}

TEST_CASE("onnx errors: a reshape to an empty shape at opset 13", "[onnx]") {
  manual_seed(18);
  auto m = fn([](const std::vector<Tensor>& in) { return reshape(in[0], {0, 6}); });
  const Tensor x = randn({2, 0, 3});
  convtape::onnx::ExportOptions o;
  o.opset = 13;
  CHECK(export_error(*m, {x}, o) ==
        "onnx::export_model: expected a reshape to a shape without zero extents at opset 13 "
        "(opset 14's allowzero), got target [0, 6] in 'reshape' in module '<root>' (Fn)");
  o.opset = 14;
  const auto model = export_checked(*m, {x}, o);
  CHECK(int_attr(node(model, "Reshape"), "allowzero") == 1);
  CHECK(output_shape(model) == "[0, 6]");
  // With dynamic_batch, a kept batch dim (0 in ONNX's target) and a zero extent cannot meet.
  auto keep = fn([](const std::vector<Tensor>& in) {
    return reshape(in[0], {in[0].size(0), 3, 0});
  });
  o.dynamic_batch = true;
  CHECK(export_error(*keep, {x}, o) ==
        "onnx::export_model: expected a reshape that keeps the batch size without zero extents "
        "(dynamic_batch), got target [2, 3, 0] in 'reshape' in module '<root>' (Fn)");
}

TEST_CASE("onnx errors: a scale factor whose output size ONNX cannot reproduce", "[onnx]") {
  // floor(3 * 4194304.7) = 12582914; near 2^22 float32 values lie 0.5 apart, so 3 * scale steps by
  // 1.5 (12582912, 12582913.5, 12582915, ...) and no float32 scale gives 12582914.
  manual_seed(19);
  auto m = fn([](const std::vector<Tensor>& in) {
    return interpolate(in[0], InterpolateOptions().scale_factor(4194304.7));
  });
  CHECK(export_error(*m, {zeros({1, 1, 3})}) ==
        "onnx::export_model: expected a scale factor whose output size ONNX's Resize computes "
        "alike, got scale_factor 4194304.7 for input size 3 and output size 12582914 in spatial "
        "dim 0 in 'interpolate' in module '<root>' (Fn)");
}
