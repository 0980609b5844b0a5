// onnx::export_model on whole models: the Fashion-MNIST CNN, conv stacks of every rank, a
// transposed-conv decoder, a module of two inputs, dynamic batch. Every model is checked here by
// ONNX's checker and ONNX's strict shape inference, and its nodes, attributes, initializers and
// inferred shapes are compared with what the model does.
#include <filesystem>
#include <fstream>
#include <iterator>

#include <unistd.h>

#include "benchmarks/small_cnn.h"
#include "onnx/onnx_check.h"
#include "support/test_util.h"

using namespace convtape;
using namespace ct_onnx;
using Strings = std::vector<std::string>;
using Ints = std::vector<std::int64_t>;

namespace {

std::set<std::string> state_names(nn::Module& m, bool float_only) {
  std::set<std::string> names;
  for (const auto& [name, t] : m.state_dict())
    if (!float_only || t.is_floating_point()) names.insert(name);
  return names;
}

}  // namespace

TEST_CASE("onnx: the Fashion-MNIST CNN", "[onnx]") {
  manual_seed(1);
  auto model = ct_bench::small_cnn();
  model->train();
  const Tensor x = randn({2, 1, 28, 28});
  const auto m = export_checked(*model, {x});

  CHECK(op_types(m) == Strings{"Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool", "Flatten",
                               "Gemm", "Relu", "Gemm"});
  const auto& conv = node(m, "Conv", 1);
  CHECK(ints(conv, "kernel_shape") == Ints{3, 3});
  CHECK(ints(conv, "pads") == Ints{1, 1, 1, 1});
  CHECK(ints(conv, "strides") == Ints{1, 1});
  CHECK(ints(conv, "dilations") == Ints{1, 1});
  CHECK(int_attr(conv, "group") == 1);
  CHECK(conv.input(1) == "3.weight");
  CHECK(conv.input(2) == "3.bias");
  const auto& pool = node(m, "MaxPool");
  CHECK(ints(pool, "kernel_shape") == Ints{2, 2});
  CHECK(ints(pool, "strides") == Ints{2, 2});
  CHECK(ints(pool, "pads") == Ints{0, 0, 0, 0});
  CHECK_FALSE(has_attr(pool, "dilations"));
  CHECK(int_attr(node(m, "Flatten"), "axis") == 1);
  CHECK(int_attr(node(m, "Gemm"), "transB") == 1);
  CHECK(node(m, "Gemm", 1).input(1) == "9.weight");

  // Shapes: the graph's input and output, and what ONNX infers inside.
  REQUIRE(m.graph().input_size() == 1);
  CHECK(m.graph().input(0).name() == "input");
  CHECK(shape_text(m.graph().input(0).type()) == "[2, 1, 28, 28]");
  CHECK(m.graph().output(0).name() == "output");
  CHECK(output_shape(m) == "[2, 10]");
  CHECK(node_shape(m, "MaxPool", 1) == "[2, 64, 7, 7]");
  CHECK(node_shape(m, "Flatten") == "[2, 3136]");

  // Initializers: the state_dict's names and values, and no other.
  CHECK(initializer_names(m, false) == state_names(*model, false));
  CHECK(initializer_names(m, true).empty());
  for (const auto& [name, t] : model->named_parameters()) CHECK(holds(initializer(m, name), t));
  CHECK(m.opset_import(0).version() == 17);
  CHECK(m.opset_import(0).domain().empty());
  CHECK(m.ir_version() == 8);

  // The module's training flag is back.
  CHECK(model->is_training());
}

TEST_CASE("onnx: export_model writes the same bytes to a file", "[onnx]") {
  manual_seed(2);
  auto model = ct_bench::small_cnn();
  model->eval();
  const Tensor x = randn({3, 1, 28, 28});
  const std::string bytes = convtape::onnx::export_model_bytes(*model, {x});
  const auto dir =
      std::filesystem::temp_directory_path() / ("ct_onnx_export_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "cnn.onnx").string();
  convtape::onnx::export_model(*model, {x}, path);
  std::ifstream in(path, std::ios::binary);
  const std::string written((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::filesystem::remove_all(dir);
  CHECK(written == bytes);
  CHECK(output_shape(checked_model(written)) == "[3, 10]");
  CHECK_FALSE(model->is_training());
}

namespace {

using PadPairs = std::vector<std::pair<std::int64_t, std::int64_t>>;

// Each child of a Sequential run in turn: the shape after every layer, as text.
std::vector<std::string> layer_shapes(nn::Sequential& seq, Tensor x) {
  std::vector<std::string> shapes;
  NoGradGuard no_grad;
  for (const auto& child : seq.children()) {
    x = (*child)(x);
    shapes.push_back(to_string(x.shape()));
  }
  return shapes;
}

// "[2, 8, 19]" from an inferred "[2, 8, 19]" (the two spell shapes alike).
void check_conv_shapes(const ::onnx::ModelProto& m, const std::vector<std::string>& shapes,
                       const std::vector<int>& conv_layers) {
  for (std::size_t k = 0; k < conv_layers.size(); ++k)
    CHECK(node_shape(m, "Conv", static_cast<int>(k)) ==
          shapes[static_cast<std::size_t>(conv_layers[k])]);
}

}  // namespace

TEST_CASE("onnx: 1-d convs with groups, dilation, stride, per-side and same padding", "[onnx]") {
  manual_seed(3);
  nn::Sequential seq(
      std::make_shared<nn::Conv1d>(
          nn::Conv1dOptions(4, 8, 3).groups(2).dilation(2).padding(PadPairs{{1, 2}})),
      std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Conv1d>(nn::Conv1dOptions(8, 8, 5).stride(2).groups(4).padding("same")),
      std::make_shared<nn::Conv1d>(nn::Conv1dOptions(8, 6, 3).stride(3).dilation(2).bias(false)));
  const Tensor x = randn({2, 4, 37});
  const auto m = export_checked(seq, {x});
  CHECK(op_types(m) == Strings{"Conv", "Relu", "Conv", "Conv"});
  const auto& c0 = node(m, "Conv", 0);
  CHECK(ints(c0, "pads") == Ints{1, 2});
  CHECK(ints(c0, "dilations") == Ints{2});
  CHECK(int_attr(c0, "group") == 2);
  // "same" at stride 2 over 36 positions (kernel 5): 18 outputs, padding 17 * 2 + 5 - 36 = 3 in
  // all, the odd unit high.
  const auto& c1 = node(m, "Conv", 1);
  CHECK(ints(c1, "pads") == Ints{1, 2});
  CHECK(ints(c1, "strides") == Ints{2});
  CHECK(int_attr(c1, "group") == 4);
  const auto& c2 = node(m, "Conv", 2);
  CHECK(ints(c2, "strides") == Ints{3});
  CHECK(ints(c2, "dilations") == Ints{2});
  CHECK(c2.input_size() == 2);  // no bias
  check_conv_shapes(m, layer_shapes(seq, x), {0, 2, 3});
  CHECK(output_shape(m) == "[2, 6, 5]");
}

TEST_CASE("onnx: 2-d convs with per-dim options and same / same_lower padding", "[onnx]") {
  manual_seed(4);
  nn::Sequential seq(
      std::make_shared<nn::Conv2d>(nn::Conv2dOptions(4, 8, Ints{3, 5})
                                       .groups(4)
                                       .dilation(Ints{2, 1})
                                       .padding(PadPairs{{1, 2}, {0, 3}})),
      std::make_shared<nn::Conv2d>(
          nn::Conv2dOptions(8, 12, 3).stride(Ints{2, 3}).groups(2).padding("same")),
      std::make_shared<nn::Conv2d>(nn::Conv2dOptions(12, 6, 4).padding("same_lower")),
      std::make_shared<nn::Conv2d>(nn::Conv2dOptions(6, 6, Ints{1, 3})
                                       .stride(2)
                                       .dilation(Ints{1, 3})
                                       .padding(PadPairs{{0, 1}})));
  const Tensor x = randn({2, 4, 19, 23});
  const auto m = export_checked(seq, {x});
  CHECK(op_types(m) == Strings{"Conv", "Conv", "Conv", "Conv"});
  CHECK(ints(node(m, "Conv", 0), "pads") == Ints{1, 0, 2, 3});
  CHECK(ints(node(m, "Conv", 0), "kernel_shape") == Ints{3, 5});
  CHECK(ints(node(m, "Conv", 0), "dilations") == Ints{2, 1});
  CHECK(ints(node(m, "Conv", 1), "strides") == Ints{2, 3});
  // same_lower with an even kernel: the odd padding unit goes low.
  CHECK(ints(node(m, "Conv", 2), "pads") == Ints{2, 2, 1, 1});
  CHECK(ints(node(m, "Conv", 3), "pads") == Ints{0, 0, 1, 1});  // (0, 1) in both dims
  check_conv_shapes(m, layer_shapes(seq, x), {0, 1, 2, 3});
}

TEST_CASE("onnx: 3-d convs, a depthwise one among them", "[onnx]") {
  manual_seed(5);
  nn::Sequential seq(
      std::make_shared<nn::Conv3d>(nn::Conv3dOptions(4, 8, 3)
                                       .groups(2)
                                       .dilation(Ints{1, 2, 1})
                                       .padding(PadPairs{{1, 0}, {2, 1}, {0, 1}})),
      std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Conv3d>(
          nn::Conv3dOptions(8, 8, Ints{3, 2, 3}).stride(Ints{1, 2, 2}).groups(8).padding("same")),
      std::make_shared<nn::Conv3d>(nn::Conv3dOptions(8, 4, 2).stride(2)));
  const Tensor x = randn({2, 4, 7, 9, 8});
  const auto m = export_checked(seq, {x});
  CHECK(ints(node(m, "Conv", 0), "pads") == Ints{1, 2, 0, 0, 1, 1});
  CHECK(int_attr(node(m, "Conv", 1), "group") == 8);
  CHECK(ints(node(m, "Conv", 1), "kernel_shape") == Ints{3, 2, 3});
  check_conv_shapes(m, layer_shapes(seq, x), {0, 2, 3});
}

TEST_CASE("onnx: a decoder of transposed convs, BatchNorm2d and Upsample", "[onnx]") {
  manual_seed(6);
  auto bn = std::make_shared<nn::BatchNorm2d>(6);
  nn::Sequential seq(
      std::make_shared<nn::ConvTranspose2d>(
          nn::ConvTranspose2dOptions(8, 6, 3).stride(2).padding(1).output_padding(1)),
      bn, std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Upsample>(nn::UpsampleOptions().scale_factor(2.0).mode("bilinear")),
      std::make_shared<nn::ConvTranspose2d>(nn::ConvTranspose2dOptions(6, 4, Ints{3, 2})
                                                .stride(Ints{1, 2})
                                                .groups(2)
                                                .dilation(Ints{2, 1})
                                                .output_padding(Ints{0, 1})));
  // Running statistics away from their initial values.
  seq.train();
  for (int i = 0; i < 3; ++i) {
    NoGradGuard no_grad;
    seq(randn({4, 8, 5, 6}));
  }
  seq.eval();
  const Tensor x = randn({2, 8, 5, 6});
  const auto m = export_checked(seq, {x});
  CHECK(op_types(m) ==
        Strings{"ConvTranspose", "BatchNormalization", "Relu", "Resize", "ConvTranspose"});
  const auto& t0 = node(m, "ConvTranspose", 0);
  CHECK(ints(t0, "strides") == Ints{2, 2});
  CHECK(ints(t0, "pads") == Ints{1, 1, 1, 1});
  CHECK(ints(t0, "output_padding") == Ints{1, 1});
  const auto& t1 = node(m, "ConvTranspose", 1);
  CHECK(int_attr(t1, "group") == 2);
  CHECK(ints(t1, "dilations") == Ints{2, 1});
  CHECK(ints(t1, "output_padding") == Ints{0, 1});
  CHECK(ints(t1, "kernel_shape") == Ints{3, 2});
  const auto& b = node(m, "BatchNormalization");
  CHECK(Strings(b.input().begin(), b.input().end()) ==
        Strings{node(m, "ConvTranspose", 0).output(0), "1.weight", "1.bias", "1.running_mean",
                "1.running_var"});
  CHECK(float_attr(b, "epsilon") == static_cast<float>(1e-5));
  CHECK(holds(initializer(m, "1.running_var"), bn->running_var()));
  const auto& r = node(m, "Resize");
  CHECK(string_attr(r, "mode") == "linear");
  CHECK(string_attr(r, "coordinate_transformation_mode") == "half_pixel");
  const auto shapes = layer_shapes(seq, x);
  CHECK(node_shape(m, "ConvTranspose", 0) == shapes[0]);
  CHECK(node_shape(m, "Resize") == shapes[3]);
  CHECK(output_shape(m) == shapes[4]);
  // Every float entry of the state_dict is an initializer; num_batches_tracked is read by nothing.
  CHECK(initializer_names(m, false) == state_names(seq, true));

  // Every opset from 13 (the IR version that came with it).
  for (const std::int64_t opset : {13, 14, 15, 16}) {
    convtape::onnx::ExportOptions o;
    o.opset = opset;
    o.dynamic_batch = true;
    const auto older = export_checked(seq, {x}, o);
    CHECK(older.opset_import(0).version() == opset);
    CHECK(older.ir_version() == (opset >= 15 ? 8 : 7));
    CHECK(op_types(older) == op_types(m));
    CHECK(output_shape(older) == "[batch, 4, 24, 49]");
  }
}

namespace {

// Two inputs a [N, 3, H, W] and b [N, 5, H, W], joined by cat, with a residual add.
class SkipJoin : public nn::Module {
 public:
  SkipJoin() {
    conv_a = register_module("conv_a",
                             std::make_shared<nn::Conv2d>(nn::Conv2dOptions(3, 8, 3).padding(1)));
    conv_b = register_module("conv_b", std::make_shared<nn::Conv2d>(nn::Conv2dOptions(5, 8, 1)));
    mix = register_module(
        "mix", std::make_shared<nn::Conv2d>(nn::Conv2dOptions(16, 8, 3).padding("same")));
  }
  Tensor forward_inputs(const std::vector<Tensor>& in) override {
    const Tensor a = (*conv_a)(in.at(0));
    return add((*mix)(cat({relu(a), (*conv_b)(in.at(1))}, 1)), a);
  }
  std::string type_name() const override { return "SkipJoin"; }
  std::shared_ptr<nn::Conv2d> conv_a, conv_b, mix;
};

}  // namespace

TEST_CASE("onnx: a module of two inputs with cat and a skip connection", "[onnx]") {
  manual_seed(7);
  SkipJoin model;
  const Tensor a = randn({2, 3, 12, 12}), b = randn({2, 5, 12, 12});
  const auto m = export_checked(model, {a, b});
  CHECK(op_types(m) == Strings{"Conv", "Relu", "Conv", "Concat", "Conv", "Add"});
  REQUIRE(m.graph().input_size() == 2);
  CHECK(m.graph().input(0).name() == "input0");
  CHECK(m.graph().input(1).name() == "input1");
  CHECK(node(m, "Conv", 1).input(0) == "input1");
  CHECK(int_attr(node(m, "Concat"), "axis") == 1);
  const auto& add_node = node(m, "Add");
  CHECK(add_node.input(0) == node(m, "Conv", 2).output(0));
  CHECK(add_node.input(1) == node(m, "Conv", 0).output(0));
  CHECK(node(m, "Conv", 0).name().rfind("conv_a/", 0) == 0);  // nodes named by their module
  CHECK(output_shape(m) == "[2, 8, 12, 12]");
  CHECK(initializer_names(m, false) == state_names(model, false));

  convtape::onnx::ExportOptions options;
  options.input_names = {"image", "condition"};
  options.output_names = {"features"};
  const auto named = export_checked(model, {a, b}, options);
  CHECK(named.graph().input(1).name() == "condition");
  CHECK(named.graph().output(0).name() == "features");
  CHECK(node(named, "Conv", 1).input(0) == "condition");
}

TEST_CASE("onnx: dynamic batch keeps dim 0 symbolic", "[onnx]") {
  manual_seed(8);
  convtape::onnx::ExportOptions options;
  options.dynamic_batch = true;
  SECTION("the CNN") {
    auto model = ct_bench::small_cnn();
    const auto m = export_checked(*model, {randn({3, 1, 28, 28})}, options);
    CHECK(shape_text(m.graph().input(0).type()) == "[batch, 1, 28, 28]");
    CHECK(output_shape(m) == "[batch, 10]");
    CHECK(node_shape(m, "Flatten") == "[batch, 3136]");
  }
  SECTION("reshapes that keep or merge the batch, a resize to a size") {
    auto model = fn([](const std::vector<Tensor>& in) {
      const Tensor& x = in[0];  // [N, 4, 6, 6]
      const Tensor kept = reshape(x, {x.size(0), 4, 36});
      const Tensor merged = reshape(kept, {x.size(0) * 4, 36});
      const Tensor back = view(merged, {x.size(0), 4, 6, 6});
      return interpolate(back, InterpolateOptions().size(9));
    });
    const auto m = export_checked(*model, {randn({2, 4, 6, 6})}, options);
    CHECK(op_types(m) ==
          Strings{"Reshape", "Reshape", "Reshape", "Shape", "Slice", "Concat", "Resize"});
    CHECK(int64_values(m, node(m, "Reshape", 0).input(1)) == Ints{0, 4, 36});
    CHECK(int64_values(m, node(m, "Reshape", 1).input(1)) == Ints{-1, 36});
    CHECK(int64_values(m, node(m, "Reshape", 2).input(1)) == Ints{-1, 4, 6, 6});
    CHECK(output_shape(m) == "[batch, 4, 9, 9]");
  }
  SECTION("two inputs") {
    SkipJoin model;
    const auto m = export_checked(model, {randn({4, 3, 12, 12}), randn({4, 5, 12, 12})}, options);
    CHECK(shape_text(m.graph().input(1).type()) == "[batch, 5, 12, 12]");
    CHECK(output_shape(m) == "[batch, 8, 12, 12]");
  }
}
