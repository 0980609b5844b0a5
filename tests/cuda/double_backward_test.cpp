// Second derivatives on the GPU against the CPU. For an op f, float64 inputs x (those that require
// grad are differentiated), a fixed random output gradient v and fixed random directions u (one
// per differentiated input), each device computes
//   g = autograd::grad(f(x), x, v, create_graph)      the first derivatives, on the tape
//   h = autograd::grad(g, (x, v), u)                   d<g, u>/dx and d<g, u>/dv
// from the same data; f(x), g and h on CUDA must live on the device and agree with the CPU's within
// rtol 1e-10 (atol 1e-12 times max(1, the largest |value|)), and some d<g, u>/dx must be non-zero
// on the CPU (ops linear in their input are squared so that their recorded gradient maps carry
// curvature). Ops: conv2d (groups, stride, dilation, padding, bias), conv_general with input
// dilation (1-D), conv3d, conv_transpose2d with output_padding, max_pool2d (distinct values),
// avg_pool2d without the padding in the divisor, adaptive average pooling, correlation,
// cross_entropy with class weights, ignore_index and label smoothing,
// binary_cross_entropy_with_logits, log_softmax, BatchNorm2d in training mode (the module moved to
// the device), layer_norm, bilinear interpolate, matmul, linear, topk, index_select, embedding,
// tanh, sigmoid, relu, pow and div. Then a float64 gradgradcheck of CUDA tensors, and a float32
// Hessian-vector product of a small CNN (autograd::hvp) on CUDA against the CPU within rtol 1e-3.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "support/op_check.h"

namespace {

using namespace convtape;
using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

const Device kGpu(DeviceType::CUDA, 0);  // named only: the main checks that it exists

// float64 on both devices: only the order of the sums differs.
const ct_test::Tolerance kTol{1e-10, 1e-12, true};

// The results of one device: f(x), g (one per differentiated input) and h (one per differentiated
// input, then the one of v); an undefined gradient is replaced by zeros.
struct Second {
  Tensor y;
  std::vector<Tensor> g, h;
};

Tensor or_zeros(const Tensor& t, const Tensor& like) {
  return t.defined() ? t.detach() : zeros(like.shape(), like.options().requires_grad(false));
}

// g and h of y = f(x) with respect to the leaves wrt, for the output gradient v and the
// directions u (on y's device).
Second second_derivatives(const Tensor& y, const std::vector<Tensor>& wrt, const Tensor& v,
                          const std::vector<Tensor>& u) {
  REQUIRE(y.requires_grad());
  const Tensor v_leaf = v.detach().requires_grad_(true);
  const std::vector<Tensor> g =
      autograd::grad({y}, wrt, {v_leaf}, {.create_graph = true, .allow_unused = true});
  std::vector<Tensor> outputs, directions;
  for (std::size_t k = 0; k < g.size(); ++k) {
    if (!g[k].defined()) continue;
    INFO("gradient of input " << k << " " << to_string(wrt[k].shape()));
    REQUIRE(g[k].requires_grad());  // on the tape: its backward formula recorded
    outputs.push_back(g[k]);
    directions.push_back(u[k]);
  }
  REQUIRE(!outputs.empty());
  std::vector<Tensor> with_v = wrt;
  with_v.push_back(v_leaf);
  const std::vector<Tensor> h = autograd::grad(outputs, with_v, directions, {.allow_unused = true});
  Second s;
  s.y = y.detach();
  for (std::size_t k = 0; k < wrt.size(); ++k) s.g.push_back(or_zeros(g[k], wrt[k]));
  for (std::size_t k = 0; k < with_v.size(); ++k) s.h.push_back(or_zeros(h[k], with_v[k]));
  return s;
}

// A CUDA result against the CPU's: on the device, within tol.
bool matches(const Tensor& on_gpu, const Tensor& on_cpu, const ct_test::Tolerance& tol = kTol) {
  if (on_gpu.device() != kGpu) {
    UNSCOPED_INFO("the result lives on " << on_gpu.device().str());
    return false;
  }
  return ct_test::close(on_gpu, on_cpu, tol);
}

double largest_abs(const Tensor& t) {
  return max(abs(t)).item();
}

void compare(const Second& gpu, const Second& cpu) {
  CHECK(matches(gpu.y, cpu.y));
  REQUIRE(gpu.g.size() == cpu.g.size());
  REQUIRE(gpu.h.size() == cpu.h.size());
  for (std::size_t k = 0; k < cpu.g.size(); ++k) {
    INFO("first derivative " << k);
    CHECK(matches(gpu.g[k], cpu.g[k]));
  }
  bool curvature = false;
  for (std::size_t k = 0; k < cpu.h.size(); ++k) {
    const bool of_v = k + 1 == cpu.h.size();
    INFO("second derivative with respect to "
         << (of_v ? std::string("v") : "input " + std::to_string(k)));
    CHECK(matches(gpu.h[k], cpu.h[k]));
    if (!of_v) curvature = curvature || largest_abs(cpu.h[k]) > 0.0;
  }
  CHECK(curvature);  // else the comparison of d<g, u>/dx proves nothing
}

// v for an output of y's shape and u for each of wrt, drawn in float64 on the CPU from seed.
struct Directions {
  Tensor v;
  std::vector<Tensor> u;
};

Directions draw_directions(const Tensor& y, const std::vector<Tensor>& wrt, std::uint64_t seed) {
  Generator gen(seed);
  Directions d;
  d.v = uniform(y.shape(), -1.0, 1.0, kFloat64, &gen);
  for (const Tensor& x : wrt) d.u.push_back(uniform(x.shape(), -1.0, 1.0, kFloat64, &gen));
  return d;
}

std::vector<Tensor> on(Device device, const std::vector<Tensor>& ts) {
  std::vector<Tensor> out;
  for (const Tensor& t : ts) out.push_back(t.to(device));
  return out;
}

// f on fresh copies of inputs (CPU tensors; floating ones float64) on device: the leaves that
// require grad where the input does.
struct Prepared {
  std::vector<Tensor> xs, wrt;
};

Prepared prepare(const std::vector<Tensor>& inputs, Device device) {
  Prepared p;
  for (const Tensor& t : inputs) {
    Tensor x = t.detach().to(device).detach();
    if (t.requires_grad()) {
      x.requires_grad_(true);
      p.wrt.push_back(x);
    }
    p.xs.push_back(x);
  }
  return p;
}

// The double backward of f at inputs on the GPU against the CPU.
void check(const std::string& name, const Fn& f, const std::vector<Tensor>& inputs,
           std::uint64_t seed = 1) {
  INFO(name);
  const Prepared cpu = prepare(inputs, Device::cpu());
  const Tensor y_cpu = f(cpu.xs);
  const Directions d = draw_directions(y_cpu, cpu.wrt, seed);
  const Second want = second_derivatives(y_cpu, cpu.wrt, d.v, d.u);
  const Prepared gpu = prepare(inputs, kGpu);
  const Tensor y_gpu = f(gpu.xs);
  REQUIRE(y_gpu.device() == kGpu);
  const Second got = second_derivatives(y_gpu, gpu.wrt, d.v.to(kGpu), on(kGpu, d.u));
  compare(got, want);
}

using ct_test::leaf;

Tensor constant(const Shape& shape, double low = -1.0, double high = 1.0) {
  return uniform(shape, low, high, kFloat64);
}

using ct_test::distinct;

Tensor i64(const std::vector<std::int64_t>& v, const Shape& shape) {
  return from_vector(v, shape);
}

Tensor square(const Tensor& t) {
  return mul(t, t);
}

}  // namespace

TEST_CASE("double backward of convolutions on the GPU matches the CPU", "[cuda][gradgrad]") {
  manual_seed(1);
  check("conv2d: groups 2, stride (2, 1), dilation (1, 2), padding (1, 2), bias",
        [](const std::vector<Tensor>& in) {
          return conv2d(in[0], in[1], in[2],
                        ConvOptions()
                            .groups(2)
                            .stride(std::vector<std::int64_t>{2, 1})
                            .dilation(std::vector<std::int64_t>{1, 2})
                            .padding(std::vector<std::int64_t>{1, 2}));
        },
        {leaf({2, 4, 7, 6}), leaf({6, 2, 3, 3}), leaf({6})});
  check("conv_general 1-D: lhs dilation 2, rhs dilation 2, padding (2, 1)",
        [](const std::vector<Tensor>& in) {
          ConvGeneralOptions o;
          o.window_strides = {1};
          o.padding = {{2, 1}};
          o.lhs_dilation = {2};
          o.rhs_dilation = {2};
          o.dimension_numbers = {"NCH", "OIH", "NCH"};
          return conv_general(in[0], in[1], o);
        },
        {leaf({2, 3, 5}), leaf({4, 3, 3})});
  check("conv3d: stride 2, padding 1, bias",
        [](const std::vector<Tensor>& in) {
          return conv3d(in[0], in[1], in[2], ConvOptions().stride(2).padding(1));
        },
        {leaf({2, 2, 4, 5, 3}), leaf({3, 2, 2, 3, 2}), leaf({3})});
  check("conv_transpose2d: stride 2, padding 1, output_padding 1, groups 2, bias",
        [](const std::vector<Tensor>& in) {
          return conv_transpose2d(
              in[0], in[1], in[2],
              ConvTransposeOptions().stride(2).padding(1).output_padding(1).groups(2));
        },
        {leaf({2, 4, 3, 4}), leaf({4, 3, 3, 3}), leaf({6})});
  // One operand a constant: the gradient is linear in v alone, h is d/dv.
  manual_seed(2);
  const Tensor w = constant({3, 2, 3, 3});
  const Prepared cpu = prepare({leaf({1, 2, 5, 5})}, Device::cpu());
  const Tensor y_cpu = conv2d(cpu.xs[0], w, {}, ConvOptions().padding(1));
  const Directions d = draw_directions(y_cpu, cpu.wrt, 3);
  const Second want = second_derivatives(y_cpu, cpu.wrt, d.v, d.u);
  const Prepared gpu = prepare({cpu.xs[0]}, kGpu);
  REQUIRE(gpu.wrt.size() == 1);
  const Second got = second_derivatives(conv2d(gpu.xs[0], w.to(kGpu), {}, ConvOptions().padding(1)),
                                        gpu.wrt, d.v.to(kGpu), on(kGpu, d.u));
  CHECK(matches(got.y, want.y));
  CHECK(matches(got.g[0], want.g[0]));
  CHECK(matches(got.h[0], want.h[0]));  // zeros: g does not depend on x
  CHECK(matches(got.h[1], want.h[1]));
  CHECK(largest_abs(want.h[1]) > 0.0);
}

TEST_CASE("double backward of pooling, correlation and interpolate on the GPU matches the CPU",
          "[cuda][gradgrad]") {
  manual_seed(3);
  check("max_pool2d: kernel 3, stride 2, padding 1, squared",
        [](const std::vector<Tensor>& in) {
          return square(max_pool2d(in[0], PoolOptions(3).stride(2).padding(1)));
        },
        {distinct({2, 2, 6, 5}, 7)});
  check("avg_pool2d: kernel 3, stride 2, padding 1, count_include_pad false, squared",
        [](const std::vector<Tensor>& in) {
          return square(
              avg_pool2d(in[0], PoolOptions(3).stride(2).padding(1).count_include_pad(false)));
        },
        {leaf({2, 3, 5, 6})});
  check("adaptive_avg_pool to [3, 2] from [7, 5], squared",
        [](const std::vector<Tensor>& in) {
          return square(adaptive_avg_pool(in[0], {3, 2}));
        },
        {leaf({1, 2, 7, 5})});
  check("correlation: kernel 3, max_displacement 2, stride2 2, padding 2",
        [](const std::vector<Tensor>& in) {
          return correlation(
              in[0], in[1],
              CorrelationOptions().kernel_size(3).max_displacement(2).stride2(2).padding(2));
        },
        {leaf({2, 3, 5, 6}), leaf({2, 3, 5, 6})});
  check("correlation of one tensor with itself",
        [](const std::vector<Tensor>& in) {
          return correlation(in[0], in[0], CorrelationOptions().max_displacement(1));
        },
        {leaf({1, 2, 4, 4})});
  check("interpolate bilinear to [5, 7], squared",
        [](const std::vector<Tensor>& in) {
          return square(interpolate(in[0], InterpolateOptions().size({5, 7}).mode("bilinear")));
        },
        {leaf({1, 2, 3, 4})});
  check("interpolate bilinear, align_corners, to [4, 3], squared",
        [](const std::vector<Tensor>& in) {
          return square(interpolate(
              in[0], InterpolateOptions().size({4, 3}).mode("bilinear").align_corners(true)));
        },
        {leaf({2, 1, 3, 5})});
}

TEST_CASE("double backward of the losses and softmax on the GPU matches the CPU",
          "[cuda][gradgrad]") {
  manual_seed(4);
  const Tensor weight = tensor({0.5, 1.0, 2.0, 1.5}, kFloat64);
  for (const Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
    INFO("reduction " << static_cast<int>(r));
    check("cross_entropy: class weights, ignore_index 3, label_smoothing 0.1",
          [r](const std::vector<Tensor>& in) {
            return cross_entropy(
                in[0], in[1],
                CrossEntropyOptions().weight(in[2]).ignore_index(3).label_smoothing(0.1).reduction(
                    r));
          },
          {leaf({6, 4}, -2, 2), i64({1, 3, 0, 2, 3, 1}, {6}), weight});
  }
  check("cross_entropy of [N, C, H, W] logits: class weights, ignore_index 2",
        [](const std::vector<Tensor>& in) {
          return cross_entropy(in[0], in[1], CrossEntropyOptions().weight(in[2]).ignore_index(2));
        },
        {leaf({2, 3, 2, 2}, -2, 2), i64({0, 2, 1, 1, 2, 0, 1, 0}, {2, 2, 2}),
         tensor({1.0, 2.0, 0.5}, kFloat64)});
  check("binary_cross_entropy_with_logits: weight, pos_weight",
        [](const std::vector<Tensor>& in) {
          return binary_cross_entropy_with_logits(in[0], in[1], in[2], in[3], Reduction::Sum);
        },
        {leaf({4, 3}, -3, 3), leaf({4, 3}, 0, 1), tensor({0.5, 2.0, 1.0}, kFloat64),
         tensor({3.0, 0.5, 1.5}, kFloat64)});
  check(
      "binary_cross_entropy_with_logits, mean",
      [](const std::vector<Tensor>& in) { return binary_cross_entropy_with_logits(in[0], in[1]); },
      {leaf({5, 2}, -3, 3), leaf({5, 2}, 0, 1)});
  check("log_softmax over dim 1",
        [](const std::vector<Tensor>& in) { return log_softmax(in[0], 1); },
        {leaf({3, 5, 2}, -2, 2)});
  check("log_softmax over the last dim",
        [](const std::vector<Tensor>& in) { return log_softmax(in[0], -1); },
        {leaf({4, 6}, -2, 2)});
}

TEST_CASE("double backward of BatchNorm2d (training) and layer_norm on the GPU matches the CPU",
          "[cuda][gradgrad]") {
  manual_seed(5);
  {
    // Two modules with the same state, one moved to the device; x, weight and bias differentiated.
    nn::BatchNorm2d bn_cpu(nn::BatchNormOptions(3)), bn_gpu(nn::BatchNormOptions(3));
    for (nn::BatchNorm2d* bn : {&bn_cpu, &bn_gpu}) {
      bn->to(kFloat64);
      NoGradGuard off;
      bn->weight().copy_(linspace(0.5, 2.0, 3, kFloat64));
      bn->bias().copy_(linspace(-1.0, 1.0, 3, kFloat64));
    }
    bn_gpu.to(kGpu);
    REQUIRE(bn_gpu.weight().device() == kGpu);
    REQUIRE(bn_gpu.weight().requires_grad());
    const Tensor x = constant({4, 3, 3, 2});
    const Tensor x_cpu = x.detach().requires_grad_(true);
    const Tensor x_gpu = x.to(kGpu).detach().requires_grad_(true);
    const std::vector<Tensor> wrt_cpu{x_cpu, bn_cpu.weight(), bn_cpu.bias()};
    const std::vector<Tensor> wrt_gpu{x_gpu, bn_gpu.weight(), bn_gpu.bias()};
    const Tensor y_cpu = bn_cpu(x_cpu);
    const Directions d = draw_directions(y_cpu, wrt_cpu, 5);
    const Second want = second_derivatives(y_cpu, wrt_cpu, d.v, d.u);
    const Tensor y_gpu = bn_gpu(x_gpu);
    const Second got = second_derivatives(y_gpu, wrt_gpu, d.v.to(kGpu), on(kGpu, d.u));
    INFO("BatchNorm2d in training mode");
    compare(got, want);
    // The running statistics were updated alike.
    CHECK(matches(bn_gpu.running_mean(), bn_cpu.running_mean()));
    CHECK(matches(bn_gpu.running_var(), bn_cpu.running_var()));
  }
  check("layer_norm over [3, 4] with weight and bias",
        [](const std::vector<Tensor>& in) {
          return layer_norm(in[0], {3, 4}, in[1], in[2]);
        },
        {leaf({2, 3, 4}), leaf({3, 4}), leaf({3, 4})});
  check("layer_norm over [5], no affine, eps 1e-3",
        [](const std::vector<Tensor>& in) { return layer_norm(in[0], {5}, {}, {}, 1e-3); },
        {leaf({4, 5})});
}

TEST_CASE("double backward of matmul, linear, topk, index_select and embedding on the GPU",
          "[cuda][gradgrad]") {
  manual_seed(6);
  check("matmul [2, 3, 4] x [4, 5]",
        [](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); },
        {leaf({2, 3, 4}), leaf({4, 5})});
  check("matmul of a vector and a batch",
        [](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); },
        {leaf({4}), leaf({3, 4, 2})});
  check("linear with bias",
        [](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); },
        {leaf({2, 3, 4}), leaf({5, 4}), leaf({5})});
  check("tanh(linear) without bias",
        [](const std::vector<Tensor>& in) { return tanh(linear(in[0], in[1])); },
        {leaf({3, 4}), leaf({2, 4})});
  check("topk: k 3 of dim 1, squared",
        [](const std::vector<Tensor>& in) { return square(topk(in[0], 3, 1).values); },
        {distinct({4, 6}, 11)});
  check("topk: smallest 2 of dim 0, squared",
        [](const std::vector<Tensor>& in) { return square(topk(in[0], 2, 0, false).values); },
        {distinct({5, 3}, 12)});
  check("index_select with repeated indices, squared",
        [](const std::vector<Tensor>& in) { return square(index_select(in[0], 1, in[1])); },
        {leaf({3, 4, 2}), i64({2, 0, 2, 3, 2}, {5})});
  check("embedding with padding_idx 1, squared",
        [](const std::vector<Tensor>& in) { return square(embedding(in[0], in[1], 1)); },
        {i64({0, 1, 3, 3, 2, 4}, {2, 3}), leaf({5, 3})});
}

TEST_CASE("double backward of elementwise ops on the GPU matches the CPU", "[cuda][gradgrad]") {
  manual_seed(7);
  check("tanh", [](const std::vector<Tensor>& in) { return tanh(in[0]); }, {leaf({3, 4}, -2, 2)});
  check("sigmoid", [](const std::vector<Tensor>& in) { return sigmoid(in[0]); },
        {leaf({3, 4}, -3, 3)});
  check("relu times x", [](const std::vector<Tensor>& in) { return mul(relu(in[0]), in[1]); },
        {leaf({3, 4}), leaf({3, 4})});
  check("relu squared", [](const std::vector<Tensor>& in) { return square(relu(in[0])); },
        {leaf({3, 4})});
  check("pow of two tensors", [](const std::vector<Tensor>& in) { return pow(in[0], in[1]); },
        {leaf({3, 4}, 0.5, 2.0), leaf({3, 4}, -1.5, 1.5)});
  check("pow with exponent 3", [](const std::vector<Tensor>& in) { return pow(in[0], 3.0); },
        {leaf({2, 5})});
  check("div of two tensors", [](const std::vector<Tensor>& in) { return div(in[0], in[1]); },
        {leaf({3, 4}), leaf({3, 4}, 0.5, 2.0)});
  check("div with a broadcast divisor",
        [](const std::vector<Tensor>& in) { return div(in[0], in[1]); },
        {leaf({3, 4}), leaf({4}, 0.5, 2.0)});
}

TEST_CASE("float64 gradgradcheck of CUDA tensors", "[cuda][gradgrad][gradcheck]") {
  manual_seed(8);
  GradgradcheckOptions o;
  o.require_curvature = true;
  const auto on_gpu = [](const Tensor& t) { return t.to(kGpu).detach().requires_grad_(true); };
  const std::vector<Tensor> conv_inputs{on_gpu(constant({1, 2, 4, 4})),
                                        on_gpu(constant({2, 1, 3, 3})), on_gpu(constant({2}))};
  for (const Tensor& t : conv_inputs) REQUIRE(t.device() == kGpu);
  const auto conv = [](const std::vector<Tensor>& in) {
    return conv2d(in[0], in[1], in[2], ConvOptions().groups(2).stride(2).padding(1));
  };
  const GradcheckResult r = gradgradcheck(conv, conv_inputs, o);
  INFO(r.report);
  CHECK(r.ok);
  const std::vector<Tensor> ce_inputs{on_gpu(uniform({3, 4}, -2, 2, kFloat64)),
                                      i64({2, 0, 3}, {3}).to(kGpu)};
  const GradcheckResult c = gradgradcheck(
      [](const std::vector<Tensor>& in) {
        return cross_entropy(in[0], in[1], CrossEntropyOptions().label_smoothing(0.1));
      },
      ce_inputs, o);
  INFO(c.report);
  CHECK(c.ok);
}

TEST_CASE("float32 Hessian-vector product of a small CNN on the GPU matches the CPU",
          "[cuda][gradgrad][hvp]") {
  manual_seed(9);
  // conv 3x3 (1 -> 4) -> relu -> max_pool 2 -> linear (36 -> 5) -> cross_entropy, as a function of
  // its four parameters; the images and labels are fixed.
  const Tensor images = uniform({3, 1, 6, 6}, -1, 1, kFloat32);
  const Tensor labels = i64({0, 4, 2}, {3});
  const std::vector<Tensor> params{
      uniform({4, 1, 3, 3}, -0.5, 0.5, kFloat32), uniform({4}, -0.1, 0.1, kFloat32),
      uniform({5, 36}, -0.3, 0.3, kFloat32), uniform({5}, -0.1, 0.1, kFloat32)};
  std::vector<Tensor> v;
  for (const Tensor& p : params) v.push_back(uniform(p.shape(), -1, 1, kFloat32));
  const auto loss_on = [](const Tensor& x, const Tensor& y) {
    return [x, y](const std::vector<Tensor>& p) {
      const Tensor h =
          max_pool2d(relu(conv2d(x, p[0], p[1], ConvOptions().padding(1))), PoolOptions(2));
      return cross_entropy(linear(flatten(h, 1), p[2], p[3]), y);
    };
  };
  const autograd::Derivative want = autograd::hvp(loss_on(images, labels), params, v);
  const autograd::Derivative got =
      autograd::hvp(loss_on(images.to(kGpu), labels.to(kGpu)), on(kGpu, params), on(kGpu, v));
  const ct_test::Tolerance loose{1e-3, 1e-4, true};
  CHECK(matches(got.output, want.output, loose));
  REQUIRE(got.derivatives.size() == params.size());
  for (std::size_t k = 0; k < params.size(); ++k) {
    INFO("H v of parameter " << k);
    CHECK(matches(got.derivatives[k], want.derivatives[k], loose));
    CHECK(largest_abs(want.derivatives[k]) > 0.0);
  }
}
