// onnx::export_model op by op: the ONNX nodes and attributes each traced op becomes, the options
// that need more than one node (ceil_mode's last window, circular padding, a flipped kernel, a
// Resize to sizes under dynamic batch), and the shapes ONNX's shape inference finds for them.
#include <cmath>

#include "onnx/onnx_check.h"
#include "support/test_util.h"

using namespace convtape;
using namespace ct_onnx;
using Strings = std::vector<std::string>;
using Ints = std::vector<std::int64_t>;

namespace {

convtape::onnx::ExportOptions dynamic() {
  convtape::onnx::ExportOptions o;
  o.dynamic_batch = true;
  return o;
}

// The traced output's shape, as ONNX's shapes print.
std::string traced(nn::Module& m, const std::vector<Tensor>& inputs) {
  NoGradGuard no_grad;
  return to_string(m(inputs).shape());
}

// The values of a float32 initializer.
std::vector<float> float_values(const ::onnx::ModelProto& m, const std::string& name) {
  const auto& p = initializer(m, name);
  REQUIRE(p.data_type() == ::onnx::TensorProto_DataType_FLOAT);
  std::vector<float> v(p.raw_data().size() / sizeof(float));
  if (!v.empty()) std::memcpy(v.data(), p.raw_data().data(), p.raw_data().size());
  return v;
}

// linear on [N, 4, 6], then a product with a buffer.
class LinearThenMatmul : public nn::Module {
 public:
  LinearThenMatmul() {
    lin = register_module("lin", std::make_shared<nn::Linear>(6, 7));
    other = register_buffer("other", randn({7, 2}));
  }
  Tensor forward(const Tensor& x) override { return matmul((*lin)(x), other); }
  std::shared_ptr<nn::Linear> lin;
  Tensor other;
};

}  // namespace

TEST_CASE("onnx ops: max pooling with ceil_mode, padding and dilation", "[onnx]") {
  manual_seed(20);
  const Tensor x = randn({2, 3, 10, 10});
  SECTION("ceil_mode's last window: more high padding, floor mode") {
    auto m = fn([](const std::vector<Tensor>& in) {
      return max_pool2d(in[0], PoolOptions(3).stride(2).padding(1).ceil_mode(true));
    });
    const auto model = export_checked(*m, {x});
    CHECK(op_types(model) == Strings{"MaxPool"});
    const auto& p = node(model, "MaxPool");
    // 10 + 1 + 1 - 3 = 9 over stride 2: 5 windows floor, 6 ceil; the 6th starts at 9 < 10 + 1.
    CHECK(ints(p, "pads") == Ints{1, 1, 2, 2});
    CHECK(ints(p, "strides") == Ints{2, 2});
    CHECK_FALSE(has_attr(p, "ceil_mode"));
    CHECK(output_shape(model) == "[2, 3, 6, 6]");
    CHECK(output_shape(model) == traced(*m, {x}));
  }
  SECTION("ceil_mode where PyTorch drops the last window") {
    auto m = fn([](const std::vector<Tensor>& in) {
      return max_pool2d(in[0], PoolOptions(2).stride(2).padding(1).ceil_mode(true));
    });
    // 5 + 2 - 2 = 5 over 2: 3 windows floor, 4 ceil, but the 4th would start at 6 - 1 = 5, in the
    // high padding: PyTorch drops it, and the floor's 3 with the padding as given are the answer.
    const Tensor v = randn({2, 3, 5, 5});
    const auto model = export_checked(*m, {v});
    CHECK(ints(node(model, "MaxPool"), "pads") == Ints{1, 1, 1, 1});
    CHECK(output_shape(model) == "[2, 3, 3, 3]");
    CHECK(output_shape(model) == traced(*m, {v}));
  }
  SECTION("a dilated window whose extra padding is as wide as the kernel: -inf made real") {
    auto m = fn([](const std::vector<Tensor>& in) {
      return max_pool2d(in[0], PoolOptions(2).stride(2).dilation(2).padding(1).ceil_mode(true));
    });
    const auto model = export_checked(*m, {x});
    CHECK(op_types(model) == Strings{"Pad", "MaxPool"});
    const auto& pad = node(model, "Pad");
    CHECK(int64_values(model, pad.input(1)) == Ints{0, 0, 0, 0, 0, 0, 1, 1});
    CHECK(float_values(model, pad.input(2)) ==
          std::vector<float>{-std::numeric_limits<float>::infinity()});
    const auto& p = node(model, "MaxPool");
    CHECK(ints(p, "pads") == Ints{1, 1, 1, 1});
    CHECK(ints(p, "dilations") == Ints{2, 2});
    CHECK(output_shape(model) == traced(*m, {x}));
  }
  SECTION("3-d, per-side padding") {
    auto m = fn([](const std::vector<Tensor>& in) {
      using PadPairs = std::vector<std::pair<std::int64_t, std::int64_t>>;
      return max_pool3d(
          in[0], PoolOptions(Ints{2, 3, 2}).stride(1).padding(PadPairs{{0, 1}, {1, 0}, {1, 1}}));
    });
    const Tensor v = randn({1, 2, 4, 5, 6});
    const auto model = export_checked(*m, {v});
    CHECK(ints(node(model, "MaxPool"), "pads") == Ints{0, 1, 1, 1, 0, 1});
    CHECK(ints(node(model, "MaxPool"), "kernel_shape") == Ints{2, 3, 2});
    CHECK(output_shape(model) == traced(*m, {v}));
  }
}

TEST_CASE("onnx ops: average pooling", "[onnx]") {
  manual_seed(21);
  const Tensor x = randn({2, 3, 10, 10});
  SECTION("padding counted, floor mode") {
    nn::Sequential m(std::make_shared<nn::AvgPool2d>(PoolOptions(3).stride(2).padding(1)));
    const auto model = export_checked(m, {x});
    const auto& p = node(model, "AveragePool");
    CHECK(int_attr(p, "count_include_pad") == 1);
    CHECK(ints(p, "pads") == Ints{1, 1, 1, 1});
    CHECK(output_shape(model) == "[2, 3, 5, 5]");
  }
  SECTION("ceil_mode's last window without counting padding") {
    nn::Sequential m(std::make_shared<nn::AvgPool2d>(
        PoolOptions(3).stride(2).padding(1).ceil_mode(true).count_include_pad(false)));
    const auto model = export_checked(m, {x});
    CHECK(op_types(model) == Strings{"AveragePool"});
    CHECK(int_attr(node(model, "AveragePool"), "count_include_pad") == 0);
    CHECK(ints(node(model, "AveragePool"), "pads") == Ints{1, 1, 2, 2});
    CHECK(output_shape(model) == "[2, 3, 6, 6]");
  }
  SECTION("ceil_mode's last window counting the padding: the padding made real") {
    nn::Sequential m(
        std::make_shared<nn::AvgPool2d>(PoolOptions(3).stride(2).padding(1).ceil_mode(true)));
    const auto model = export_checked(m, {x});
    CHECK(op_types(model) == Strings{"Pad", "AveragePool"});
    CHECK(int64_values(model, node(model, "Pad").input(1)) == Ints{0, 0, 1, 1, 0, 0, 1, 1});
    const auto& p = node(model, "AveragePool");
    // The last window reaches one past the padded input: that one does not count.
    CHECK(ints(p, "pads") == Ints{0, 0, 1, 1});
    CHECK(int_attr(p, "count_include_pad") == 0);
    CHECK(output_shape(model) == traced(m, {x}));
  }
  SECTION("adaptive pooling with windows of one size and stride") {
    auto m = fn([](const std::vector<Tensor>& in) {
      const Tensor avg = adaptive_avg_pool(in[0], {3});
      return add(avg, adaptive_max_pool(in[0], {3}));
    });
    const Tensor v = randn({2, 3, 7, 6});
    const auto model = export_checked(*m, {v});
    CHECK(op_types(model) == Strings{"AveragePool", "MaxPool", "Add"});
    // 7 -> 3: windows [0, 3) [2, 5) [4, 7); 6 -> 3: [0, 2) [2, 4) [4, 6).
    CHECK(ints(node(model, "AveragePool"), "kernel_shape") == Ints{3, 2});
    CHECK(ints(node(model, "AveragePool"), "strides") == Ints{2, 2});
    CHECK(ints(node(model, "MaxPool"), "kernel_shape") == Ints{3, 2});
    CHECK(output_shape(model) == "[2, 3, 3, 3]");
  }
  SECTION("global pooling") {
    auto m = fn([](const std::vector<Tensor>& in) {
      const Tensor avg = global_avg_pool(in[0]);
      return add(avg, adaptive_max_pool(in[0], {1}));
    });
    const auto model = export_checked(*m, {x});
    CHECK(op_types(model) == Strings{"GlobalAveragePool", "GlobalMaxPool", "Add"});
    CHECK(output_shape(model) == "[2, 3, 1, 1]");
  }
}

TEST_CASE("onnx ops: conv padding modes, a flipped kernel, JAX layouts", "[onnx]") {
  manual_seed(22);
  using PadPairs = std::vector<std::pair<std::int64_t, std::int64_t>>;
  SECTION("reflect, replicate, circular") {
    nn::Sequential m(
        std::make_shared<nn::Conv2d>(nn::Conv2dOptions(3, 4, 3).padding(2).padding_mode("reflect")),
        std::make_shared<nn::Conv2d>(
            nn::Conv2dOptions(4, 4, 3).padding(1).padding_mode("replicate")),
        std::make_shared<nn::Conv2d>(
            nn::Conv2dOptions(4, 4, 3).padding(PadPairs{{1, 2}, {2, 1}}).padding_mode("circular")));
    const Tensor x = randn({2, 3, 9, 10});
    const auto model = export_checked(m, {x}, dynamic());
    CHECK(op_types(model) == Strings{"Pad", "Conv", "Pad", "Conv", "Slice", "Slice", "Concat",
                                     "Slice", "Slice", "Concat", "Conv"});
    CHECK(string_attr(node(model, "Pad", 0), "mode") == "reflect");
    CHECK(int64_values(model, node(model, "Pad", 0).input(1)) == Ints{0, 0, 2, 2, 0, 0, 2, 2});
    CHECK(string_attr(node(model, "Pad", 1), "mode") == "edge");
    CHECK(ints(node(model, "Conv", 0), "pads") == Ints{0, 0, 0, 0});
    // Circular: H's last row before and first two after, then W's last two columns and first.
    const auto& low = node(model, "Slice", 0);
    CHECK(int64_values(model, low.input(1)) == Ints{-1});
    CHECK(int64_values(model, low.input(3)) == Ints{2});
    CHECK(int64_values(model, node(model, "Slice", 1).input(2)) == Ints{2});
    CHECK(int_attr(node(model, "Concat", 1), "axis") == 3);
    CHECK(output_shape(model) == "[batch, 4, 12, 13]");
    CHECK(node_shape(model, "Concat", 1) == "[batch, 4, 14, 15]");
  }
  SECTION("convolution with the kernel flipped") {
    const Tensor w = randn({5, 3, 2, 3});
    auto m = fn([w](const std::vector<Tensor>& in) {
      return conv2d(in[0], w, Tensor(),
                    ConvOptions().flip_kernel().padding(PadPairs{{1, 0}, {0, 2}}));
    });
    const Tensor x = randn({2, 3, 6, 7});
    const auto model = export_checked(*m, {x});
    CHECK(op_types(model) == Strings{"Slice", "Conv"});
    const auto& s = node(model, "Slice");
    CHECK(int64_values(model, s.input(1)) == Ints{-1, -1});
    CHECK(int64_values(model, s.input(3)) == Ints{2, 3});
    CHECK(int64_values(model, s.input(4)) == Ints{-1, -1});
    CHECK(holds(initializer(model, s.input(0)), w));
    CHECK(ints(node(model, "Conv"), "pads") == Ints{1, 0, 0, 2});
    CHECK(output_shape(model) == traced(*m, {x}));
  }
  SECTION("conv_general in NHWC / HWIO") {
    const Tensor w = randn({3, 3, 4, 5});
    ConvGeneralOptions o;
    o.dimension_numbers = {"NHWC", "HWIO", "NHWC"};
    o.padding_kind = PaddingKind::Same;
    o.window_strides = {2, 1};
    auto m = fn([w, o](const std::vector<Tensor>& in) { return conv_general(in[0], w, o); });
    const Tensor x = randn({2, 8, 9, 4});
    const auto model = export_checked(*m, {x}, dynamic());
    CHECK(op_types(model) == Strings{"Transpose", "Transpose", "Conv", "Transpose"});
    CHECK(ints(node(model, "Transpose", 0), "perm") == Ints{0, 3, 1, 2});
    CHECK(ints(node(model, "Transpose", 1), "perm") == Ints{3, 2, 0, 1});
    CHECK(ints(node(model, "Transpose", 2), "perm") == Ints{0, 2, 3, 1});
    CHECK(ints(node(model, "Conv"), "strides") == Ints{2, 1});
    CHECK(output_shape(model) == "[batch, 4, 9, 5]");
  }
}

TEST_CASE("onnx ops: elementwise and activations", "[onnx]") {
  manual_seed(23);
  const Tensor x = randn({2, 5});
  // One op per statement where two would be arguments of one call (their order is the
  // compiler's).
  auto m = fn([](const std::vector<Tensor>& in) {
    const Tensor& v = in[0];
    const Tensor a = mul(sigmoid(v), 3.0);
    const Tensor b = sub(1.5, tanh(v));
    Tensor y = div(add(a, b), 2.0);
    y = sub(y, div(1.0, add(abs(v), 1.0)));
    y = mul(y, leaky_relu(v, 0.25));
    y = add(y, sqrt(exp(neg(abs(v)))));
    y = div(y, pow(add(log(add(abs(v), 1.0)), 1.0), 2.0));
    y = sub(y, 0.5);
    y = add(y, pow(relu(v), v));
    const Tensor low = clamp(y, -0.5, 0.7);
    const Tensor high = clamp(y, 1.0, 0.5);
    return add(low, high);
  });
  const auto model = export_checked(*m, {x});
  CHECK(op_types(model) ==
        Strings{"Sigmoid",   "Mul", "Tanh", "Sub", "Add",  "Div",  "Abs", "Add",  "Div",  "Sub",
                "LeakyRelu", "Mul", "Abs",  "Neg", "Exp",  "Sqrt", "Add", "Abs",  "Add",  "Log",
                "Add",       "Pow", "Div",  "Sub", "Relu", "Pow",  "Add", "Clip", "Clip", "Add"});
  // Scalars are 0-d constants of x's dtype; rsub and rdiv put them first.
  const auto& rsub = node(model, "Sub", 0);
  CHECK(float_values(model, rsub.input(0)) == std::vector<float>{1.5f});
  CHECK(initializer(model, rsub.input(0)).dims_size() == 0);
  CHECK(float_values(model, node(model, "Div", 1).input(0)) == std::vector<float>{1.0f});
  CHECK(float_values(model, node(model, "Sub", 2).input(1)) == std::vector<float>{0.5f});
  CHECK(float_attr(node(model, "LeakyRelu"), "alpha") == 0.25f);
  const auto& clip = node(model, "Clip", 0);
  CHECK(float_values(model, clip.input(1)) == std::vector<float>{-0.5f});
  CHECK(float_values(model, clip.input(2)) == std::vector<float>{0.7f});
  // low > high: every element is high, as Clip(high, high) gives.
  const auto& flat = node(model, "Clip", 1);
  CHECK(float_values(model, flat.input(1)) == std::vector<float>{0.5f});
  CHECK(float_values(model, flat.input(2)) == std::vector<float>{0.5f});
  CHECK(output_shape(model) == "[2, 5]");

  auto open = fn([](const std::vector<Tensor>& in) { return clamp(in[0], 0.0); });
  const auto one_sided = export_checked(*open, {x});
  CHECK(node(one_sided, "Clip").input_size() == 2);  // no max
}

TEST_CASE("onnx ops: softmax, matrix products, dtypes", "[onnx]") {
  manual_seed(24);
  SECTION("softmax and log_softmax keep their axis") {
    nn::Sequential m(std::make_shared<nn::Softmax>(1), std::make_shared<nn::LogSoftmax>(-1));
    const auto model = export_checked(m, {randn({2, 3, 4})});
    CHECK(op_types(model) == Strings{"Softmax", "LogSoftmax"});
    CHECK(int_attr(node(model, "Softmax"), "axis") == 1);
    CHECK(int_attr(node(model, "LogSoftmax"), "axis") == 2);
  }
  SECTION("linear on a 3-d input, matmul") {
    LinearThenMatmul m;
    const Tensor x = randn({2, 4, 6});
    const auto model = export_checked(m, {x}, dynamic());
    CHECK(op_types(model) == Strings{"Transpose", "MatMul", "Add", "MatMul"});
    CHECK(node(model, "Transpose").input(0) == "lin.weight");
    CHECK(node(model, "Add").input(1) == "lin.bias");
    CHECK(node(model, "MatMul", 1).input(1) == "other");
    CHECK(output_shape(model) == "[batch, 4, 2]");
  }
  SECTION("float64 models, a conversion to float64, copies") {
    nn::Sequential m(
        fn([](const std::vector<Tensor>& in) { return in[0].to(kFloat64).contiguous().clone(); }),
        std::make_shared<nn::Linear>(3, 2));
    m.to(kFloat64);
    const auto model = export_checked(m, {randn({4, 3})});
    CHECK(op_types(model) == Strings{"Cast", "Gemm"});
    CHECK(node(model, "Gemm").input(1) == "1.weight");
    CHECK(int_attr(node(model, "Cast"), "to") == ::onnx::TensorProto_DataType_DOUBLE);
    CHECK(model.graph().output(0).type().tensor_type().elem_type() ==
          ::onnx::TensorProto_DataType_DOUBLE);
    CHECK(output_shape(model) == "[4, 2]");
  }
  SECTION("a module that returns its input") {
    auto m = fn([](const std::vector<Tensor>& in) { return in[0].clone(); });
    const auto model = export_checked(*m, {randn({2, 3})});
    CHECK(op_types(model) == Strings{"Identity"});
    CHECK(node(model, "Identity").input(0) == "input");
    CHECK(output_shape(model) == "[2, 3]");
  }
}

TEST_CASE("onnx ops: shape ops", "[onnx]") {
  manual_seed(25);
  auto m = fn([](const std::vector<Tensor>& in) {
    const Tensor& x = in[0];                                     // [N, 4, 6, 5]
    const Tensor p = permute(x, {0, 2, 3, 1});                   // [N, 6, 5, 4]
    const Tensor s = narrow(slice(p, 1, 1, 6, 2), 2, 1, 3);      // [N, 3, 3, 4]
    const Tensor e = expand(unsqueeze(s, 1), {-1, 2, 3, 3, 4});  // [N, 2, 3, 3, 4]
    const Tensor r = squeeze(unsqueeze(flatten(e, 2), 3), 3);    // [N, 2, 36]
    const Tensor f = flip(r, {2});
    const Tensor g = index_select(f, 2, from_vector(Ints{0, 5, 3}, {3}));
    return stack({g, narrow(f, 2, 0, 3)}, 0);  // [2, N, 2, 3]
  });
  const Tensor x = randn({2, 4, 6, 5});
  const auto model = export_checked(*m, {x}, dynamic());
  CHECK(op_types(model) == Strings{"Transpose", "Slice", "Slice", "Unsqueeze", "Expand", "Reshape",
                                   "Unsqueeze", "Squeeze", "Slice", "Gather", "Slice", "Unsqueeze",
                                   "Unsqueeze", "Concat"});
  const auto& sl = node(model, "Slice", 0);
  CHECK(int64_values(model, sl.input(1)) == Ints{1});
  CHECK(int64_values(model, sl.input(2)) == Ints{6});
  CHECK(int64_values(model, sl.input(3)) == Ints{1});
  CHECK(int64_values(model, sl.input(4)) == Ints{2});
  // The batch stays symbolic: 1 in Expand's target, 0 in Reshape's.
  CHECK(int64_values(model, node(model, "Expand").input(1)) == Ints{1, 2, 3, 3, 4});
  CHECK(int64_values(model, node(model, "Reshape").input(1)) == Ints{0, 2, 36});
  CHECK(int64_values(model, node(model, "Slice", 2).input(2)) ==
        Ints{std::numeric_limits<std::int64_t>::min()});
  CHECK(int_attr(node(model, "Gather"), "axis") == 2);
  CHECK(int64_values(model, node(model, "Gather").input(1)) == Ints{0, 5, 3});
  CHECK(int_attr(node(model, "Concat"), "axis") == 0);
  CHECK(node_shape(model, "Expand") == "[batch, 2, 3, 3, 4]");
  CHECK(output_shape(model) == "[2, batch, 2, 3]");
}

TEST_CASE("onnx ops: interpolate as Resize", "[onnx]") {
  manual_seed(26);
  const Tensor x = randn({2, 3, 5, 6});
  const auto resize = [&](const InterpolateOptions& o, const convtape::onnx::ExportOptions& e) {
    auto m = fn([o](const std::vector<Tensor>& in) { return interpolate(in[0], o); });
    const auto model = export_checked(*m, {x}, e);
    REQUIRE(op_types(model).back() == "Resize");
    return model;
  };
  SECTION("nearest by a scale factor") {
    const auto model = resize(InterpolateOptions().scale_factor(2.0), {});
    const auto& r = node(model, "Resize");
    CHECK(string_attr(r, "mode") == "nearest");
    CHECK(string_attr(r, "coordinate_transformation_mode") == "asymmetric");
    CHECK(string_attr(r, "nearest_mode") == "floor");
    CHECK(r.input(1).empty());
    CHECK(float_values(model, r.input(2)) == std::vector<float>{1, 1, 2, 2});
    CHECK(output_shape(model) == "[2, 3, 10, 12]");
  }
  SECTION("nearest-exact to a size") {
    const auto model = resize(InterpolateOptions().size(Ints{7, 4}).mode("nearest-exact"), {});
    const auto& r = node(model, "Resize");
    CHECK(string_attr(r, "coordinate_transformation_mode") == "half_pixel");
    CHECK(string_attr(r, "nearest_mode") == "round_prefer_ceil");
    REQUIRE(r.input_size() == 4);
    CHECK(int64_values(model, r.input(3)) == Ints{2, 3, 7, 4});
    CHECK(output_shape(model) == "[2, 3, 7, 4]");
  }
  SECTION("bilinear, align_corners, to a size under dynamic batch") {
    const auto model = resize(
        InterpolateOptions().size(Ints{9, 11}).mode("bilinear").align_corners(true), dynamic());
    CHECK(op_types(model) == Strings{"Shape", "Slice", "Concat", "Resize"});
    const auto& r = node(model, "Resize");
    CHECK(string_attr(r, "mode") == "linear");
    CHECK(string_attr(r, "coordinate_transformation_mode") == "align_corners");
    CHECK(int64_values(model, node(model, "Concat").input(1)) == Ints{9, 11});
    CHECK(output_shape(model) == "[batch, 3, 9, 11]");
  }
  SECTION("a scale factor whose float32 product is not plainly the size") {
    // floor(5 * 1.4) = 7, but the float32 1.4 is below 1.4: 5 * 1.4f is 6.99999988 exactly (7
    // only once rounded to float32). The factor sets the coordinates, so it stays a scale: the
    // next float32 up, whose product is plainly 7. 6 * 1.4f is plainly 8.
    const auto model = resize(InterpolateOptions().scale_factor(1.4).mode("bilinear"), {});
    const auto& r = node(model, "Resize");
    REQUIRE(r.input_size() == 3);
    CHECK(float_values(model, r.input(2)) ==
          std::vector<float>{1, 1, std::nextafter(1.4f, 2.0f), 1.4f});
    CHECK(output_shape(model) == "[2, 3, 7, 8]");
  }
}
