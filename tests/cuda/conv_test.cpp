// CUDA convolution (cuDNN for spatial ranks 1 to 3, direct kernels above) against the CPU backend,
// through the public ops: conv, conv1d/2d/3d, conv_transpose(1d/2d/3d), conv_general. Each case
// runs forward and backward on CPU and CUDA copies of the same inputs with one upstream gradient
// (the op harness, support/op_check.h) and compares the output and every gradient: float32 (TF32
// off) within rtol 1e-4 / atol 1e-5 (atol times the largest magnitude), float64 within 1e-11.
// Cases: groups and depthwise, stride, dilation, SAME / SAME_LOWER / VALID, per-side padding, input
// dilation, flipped kernels, transposed convolutions with output_padding, JAX layouts with feature
// and batch groups, spatial ranks 4 and 5 (direct kernels), empty batches, zero channels and
// zero-size inputs, and a seeded random sweep. Then float64 gradcheck on the GPU, bitwise-identical
// results in deterministic mode, the algorithm cache (one entry per new shape and pass, none on
// repeats), a zero workspace cap, TF32 on, and argument errors of the kernels themselves.
#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "cuda/conv.h"
#include "cuda/settings.h"
#include "support/op_check.h"

namespace {

using namespace convtape;
using Fn = std::function<Tensor(const std::vector<Tensor>&)>;
using ct_test::Pads;

const Device kGpu(DeviceType::CUDA, 0);  // named only: the main checks that it exists

// Restores the CUDA settings a test changes.
class SettingsGuard {
 public:
  SettingsGuard()
      : det_(cuda::deterministic()),
        tf32_(cuda::allow_tf32()),
        limit_(cuda::conv_workspace_limit()) {
    cuda::set_allow_tf32(false);
  }
  ~SettingsGuard() {
    cuda::set_deterministic(det_);
    cuda::set_allow_tf32(tf32_);
    cuda::set_conv_workspace_limit(limit_);
  }
  SettingsGuard(const SettingsGuard&) = delete;
  SettingsGuard& operator=(const SettingsGuard&) = delete;

 private:
  bool det_, tf32_;
  std::int64_t limit_;
};

// Inputs in [-1, 1] of `dtype` on the GPU, drawn once: index i of `shapes` is input i of fn.
std::vector<Tensor> gpu_inputs(const std::vector<Shape>& shapes, DType dtype, std::uint64_t seed) {
  Generator gen(seed);
  std::vector<Tensor> in;
  for (const Shape& shape : shapes)
    in.push_back(
        uniform(shape, -1.0, 1.0, kFloat64, &gen).to(dtype).to(kGpu).detach().requires_grad_());
  return in;
}

// Forward and backward on both devices in each of dtypes (inputs drawn in float64 and rounded for
// float32); every output and gradient compared within rtol 1e-4 / 1e-11 and an atol scaled by the
// expected tensor's largest magnitude: a float32 sum of n terms (the weight gradient sums N * out
// of them, 784 for "larger channels") is off by about 2^-24 sqrt(n) times its partial sums, which
// that magnitude bounds, on each device in its own order, so a fixed atol of 1e-5 fails elements
// near zero of a correct result.
void compare(const std::string& name, const Fn& fn, const std::vector<Shape>& shapes,
             const std::vector<DType>& dtypes, std::uint64_t seed = 1) {
  Generator gen(seed);
  std::vector<Tensor> in;
  for (const Shape& shape : shapes)
    in.push_back(uniform(shape, -1.0, 1.0, kFloat64, &gen).requires_grad_());
  ct_test::OpCheck(name, fn, in)
      .cuda_only()
      .dtypes(dtypes)
      .tolerance(kFloat32, {1e-4, 1e-5, true})
      .tolerance(kFloat64, {1e-11, 1e-11, true})
      .upstream_seed(seed + 17)
      .run();
}

void compare_both(const std::string& name, const Fn& fn, const std::vector<Shape>& shapes,
                  std::uint64_t seed = 1) {
  compare(name, fn, shapes, {kFloat32, kFloat64}, seed);
}

Fn conv_fn(const ConvOptions& o) {
  return [o](const std::vector<Tensor>& v) { return conv(v[0], v[1], v[2], o); };
}
Fn conv_nobias_fn(const ConvOptions& o) {
  return [o](const std::vector<Tensor>& v) { return conv(v[0], v[1], Tensor(), o); };
}
Fn transpose_fn(const ConvTransposeOptions& o) {
  return [o](const std::vector<Tensor>& v) { return conv_transpose(v[0], v[1], v[2], o); };
}

}  // namespace

TEST_CASE("conv2d on CUDA matches the CPU: padding, stride, dilation, groups", "[cuda][conv]") {
  SettingsGuard settings;
  compare_both("3x3 padding 1", conv_fn(ConvOptions().padding(1)),
               {{2, 3, 8, 7}, {4, 3, 3, 3}, {4}});
  compare_both("stride 2, per-side padding",
               conv_fn(ConvOptions().stride(2).padding(Pads{{1, 0}, {2, 1}})),
               {{2, 3, 9, 8}, {5, 3, 3, 3}, {5}});
  compare_both("stride (2, 3), dilation (2, 1)",
               conv_fn(ConvOptions().stride({2, 3}).dilation({2, 1}).padding({2, 1})),
               {{2, 2, 11, 10}, {4, 2, 3, 2}, {4}});
  compare_both("groups 2", conv_fn(ConvOptions().groups(2).padding(1)),
               {{2, 4, 6, 6}, {6, 2, 3, 3}, {6}});
  compare_both("depthwise", conv_fn(ConvOptions().groups(8).padding(1)),
               {{2, 8, 7, 7}, {8, 1, 3, 3}, {8}});
  compare_both("depthwise multiplier 2, stride 2", conv_fn(ConvOptions().groups(4).stride(2)),
               {{2, 4, 9, 9}, {8, 1, 3, 3}, {8}});
  compare_both("1x1", conv_fn(ConvOptions()), {{3, 16, 5, 5}, {8, 16, 1, 1}, {8}});
  compare_both("no bias", conv_nobias_fn(ConvOptions().padding(2)), {{2, 3, 6, 6}, {2, 3, 5, 5}});
  compare_both("padding beyond the kernel", conv_fn(ConvOptions().padding({4, 3})),
               {{1, 2, 3, 4}, {3, 2, 2, 2}, {3}});
  compare_both("flipped kernel", conv_fn(ConvOptions().padding(1).flip_kernel()),
               {{2, 3, 6, 5}, {4, 3, 3, 2}, {4}});
  compare_both("larger channels", conv_fn(ConvOptions().padding(1)),
               {{4, 32, 14, 14}, {64, 32, 3, 3}, {64}});
}

TEST_CASE("SAME, SAME_LOWER and VALID padding on CUDA match the CPU", "[cuda][conv]") {
  SettingsGuard settings;
  for (const PaddingKind mode : {PaddingKind::Same, PaddingKind::SameLower, PaddingKind::Valid}) {
    const std::string name = mode == PaddingKind::Same        ? "SAME"
                             : mode == PaddingKind::SameLower ? "SAME_LOWER"
                                                              : "VALID";
    compare_both(name + " even kernel", conv_fn(ConvOptions().padding(mode)),
                 {{2, 3, 7, 6}, {4, 3, 4, 2}, {4}});
    compare_both(name + " stride 2", conv_fn(ConvOptions().padding(mode).stride(2)),
                 {{2, 3, 7, 8}, {4, 3, 3, 3}, {4}});
    compare_both(name + " dilation 2", conv_fn(ConvOptions().padding(mode).dilation(2)),
                 {{1, 2, 9, 9}, {3, 2, 3, 3}, {3}});
    compare_both(name + " 1-d", conv_fn(ConvOptions().padding(mode).stride(3)),
                 {{2, 3, 11}, {2, 3, 4}, {2}});
  }
}

TEST_CASE("input dilation on CUDA matches the CPU", "[cuda][conv]") {
  SettingsGuard settings;
  compare_both("input dilation 2", conv_fn(ConvOptions().input_dilation(2)),
               {{2, 3, 5, 4}, {4, 3, 3, 3}, {4}});
  compare_both(
      "input dilation (2, 3), stride 2, padding",
      conv_fn(ConvOptions().input_dilation({2, 3}).stride(2).padding(Pads{{2, 1}, {0, 3}})),
      {{2, 2, 5, 4}, {3, 2, 3, 2}, {3}});
  compare_both("input and kernel dilation, groups",
               conv_fn(ConvOptions().input_dilation(2).dilation(2).groups(2).padding(1)),
               {{1, 4, 4, 5}, {4, 2, 2, 3}, {4}});
  compare_both("input dilation 3-d",
               conv_fn(ConvOptions().input_dilation({1, 2, 2}).padding(PaddingKind::Same)),
               {{1, 2, 3, 4, 3}, {2, 2, 2, 3, 2}, {2}});
}

TEST_CASE("conv1d and conv3d on CUDA match the CPU", "[cuda][conv]") {
  SettingsGuard settings;
  const auto c1 = [](const ConvOptions& o) {
    return Fn([o](const std::vector<Tensor>& v) { return conv1d(v[0], v[1], v[2], o); });
  };
  const auto c3 = [](const ConvOptions& o) {
    return Fn([o](const std::vector<Tensor>& v) { return conv3d(v[0], v[1], v[2], o); });
  };
  compare_both("conv1d", c1(ConvOptions().padding(2)), {{3, 4, 20}, {6, 4, 5}, {6}});
  compare_both("conv1d stride dilation groups",
               c1(ConvOptions().stride(2).dilation(3).groups(2).padding(Pads{{3, 1}})),
               {{2, 4, 17}, {6, 2, 3}, {6}});
  compare_both("conv3d", c3(ConvOptions().padding(1)), {{2, 3, 5, 6, 4}, {4, 3, 3, 3, 3}, {4}});
  compare_both("conv3d stride groups dilation",
               c3(ConvOptions().stride({1, 2, 2}).groups(3).dilation({2, 1, 1}).padding(1)),
               {{1, 6, 7, 6, 5}, {3, 2, 3, 2, 3}, {3}});
}

TEST_CASE("conv_transpose on CUDA matches the CPU", "[cuda][conv]") {
  SettingsGuard settings;
  compare_both("transpose2d stride 2", transpose_fn(ConvTransposeOptions().stride(2).padding(1)),
               {{2, 4, 5, 4}, {4, 3, 3, 3}, {3}});
  compare_both(
      "transpose2d output_padding",
      transpose_fn(ConvTransposeOptions().stride({2, 3}).padding({1, 0}).output_padding({1, 2})),
      {{2, 3, 4, 3}, {3, 2, 3, 3}, {2}});
  compare_both("transpose2d output_padding beyond stride (dilation)",
               transpose_fn(ConvTransposeOptions().stride(1).dilation(3).output_padding(2)),
               {{1, 2, 4, 4}, {2, 2, 2, 2}, {2}});
  compare_both("transpose2d groups", transpose_fn(ConvTransposeOptions().groups(2).stride(2)),
               {{2, 4, 3, 3}, {4, 3, 2, 2}, {6}});
  compare_both("transpose1d", Fn([](const std::vector<Tensor>& v) {
                 return conv_transpose1d(v[0], v[1], v[2],
                                         ConvTransposeOptions().stride(3).padding(2));
               }),
               {{2, 3, 7}, {3, 4, 5}, {4}});
  compare_both("transpose3d", Fn([](const std::vector<Tensor>& v) {
                 return conv_transpose3d(
                     v[0], v[1], v[2],
                     ConvTransposeOptions().stride(2).padding(1).output_padding({1, 0, 1}));
               }),
               {{1, 2, 3, 3, 2}, {2, 3, 3, 3, 3}, {3}});
}

TEST_CASE("conv_general on CUDA matches the CPU", "[cuda][conv]") {
  SettingsGuard settings;
  const auto general = [](ConvGeneralOptions o) {
    return Fn([o](const std::vector<Tensor>& v) { return conv_general(v[0], v[1], o); });
  };
  ConvGeneralOptions nhwc;
  nhwc.dimension_numbers = {"NHWC", "HWIO", "NHWC"};
  nhwc.padding_kind = PaddingKind::Same;
  nhwc.window_strides = {2, 1};
  compare_both("NHWC SAME stride", general(nhwc), {{2, 9, 8, 3}, {3, 3, 3, 4}});
  ConvGeneralOptions dil = nhwc;
  dil.padding_kind = PaddingKind::Explicit;
  dil.padding = {{2, 1}, {1, 2}};
  dil.lhs_dilation = {2, 2};
  dil.rhs_dilation = {1, 2};
  compare_both("lhs and rhs dilation", general(dil), {{1, 5, 4, 2}, {3, 2, 2, 3}});
  ConvGeneralOptions feature;
  feature.feature_group_count = 2;
  feature.padding = {{1, 1}, {0, 0}};
  compare_both("feature groups NCHW", general(feature), {{2, 4, 5, 5}, {6, 2, 3, 3}});
  ConvGeneralOptions batch;
  batch.batch_group_count = 2;
  compare_both("batch groups", general(batch), {{4, 3, 5, 5}, {4, 3, 2, 2}});
  ConvGeneralOptions one_d;
  one_d.dimension_numbers = {"NWC", "WIO", "NWC"};
  one_d.padding_kind = PaddingKind::Same;
  compare_both("1-d NWC SAME", general(one_d), {{1, 20, 2}, {3, 2, 2}});
}

TEST_CASE("spatial ranks 4 and 5 run the direct kernels and match the CPU", "[cuda][conv]") {
  SettingsGuard settings;
  compare_both("rank 4", conv_fn(ConvOptions().padding(1).stride({1, 2, 1, 2})),
               {{2, 3, 4, 3, 4, 3}, {2, 3, 2, 2, 3, 2}, {2}});
  compare_both("rank 4 groups dilation input dilation",
               conv_fn(ConvOptions()
                           .groups(2)
                           .dilation({1, 2, 1, 1})
                           .input_dilation({2, 1, 1, 1})
                           .padding(Pads{{1, 0}, {0, 1}, {2, 2}, {0, 0}})),
               {{1, 4, 3, 5, 3, 3}, {4, 2, 2, 2, 2, 1}, {4}});
  // Enough (sample, position) pairs for the chunked weight gradient.
  compare_both("rank 4 many positions", conv_fn(ConvOptions()),
               {{2, 1, 8, 8, 8, 8}, {1, 1, 2, 2, 2, 2}, {1}});
  compare_both("rank 5", conv_fn(ConvOptions().padding(1)),
               {{1, 2, 3, 2, 3, 2, 3}, {2, 2, 2, 2, 2, 2, 2}, {2}});
  compare_both("rank 4 transposed",
               transpose_fn(ConvTransposeOptions().stride(2).padding(1).output_padding(1)),
               {{1, 2, 2, 3, 2, 2}, {2, 2, 3, 2, 3, 2}, {2}});
}

TEST_CASE("empty batches, zero channels and zero-size inputs on CUDA match the CPU",
          "[cuda][conv]") {
  SettingsGuard settings;
  // No samples: an empty output, zero weight and bias gradients.
  compare_both("empty batch", conv_fn(ConvOptions().padding(1)), {{0, 3, 5, 5}, {4, 3, 3, 3}, {4}});
  // No input channels: the output is the bias alone.
  compare_both("zero channels", conv_fn(ConvOptions().padding(1)), {{2, 0, 5}, {3, 0, 3}, {3}});
  // A zero-size spatial dim with padding: every window reads only padding.
  compare_both("zero-size input", conv_fn(ConvOptions().padding(1)),
               {{2, 2, 0, 4}, {3, 2, 1, 1}, {3}});
  compare_both("transposed, zero-size input",
               transpose_fn(ConvTransposeOptions().stride(2).output_padding(1)),
               {{1, 2, 0, 3}, {2, 3, 2, 2}, {3}});
}

TEST_CASE("a seeded sweep of convolutions on CUDA matches the CPU", "[cuda][conv][slow]") {
  SettingsGuard settings;
  std::mt19937 rng(2024);
  const auto draw = [&](std::int64_t lo, std::int64_t hi) {
    return lo + static_cast<std::int64_t>(rng() % static_cast<std::uint32_t>(hi - lo + 1));
  };
  int ran = 0;
  for (int iter = 0; iter < 200 && ran < 60; ++iter) {
    const std::int64_t s = draw(1, 3), groups = draw(1, 3), n = draw(1, 3);
    const std::int64_t c = groups * draw(1, 3), k = groups * draw(1, 3);
    Shape xs{n, c}, ws{k, c / groups}, stride, dilation, in_dil;
    Pads pads;
    bool fits = true;
    for (std::int64_t d = 0; d < s; ++d) {
      const std::int64_t in = draw(1, 9), ker = draw(1, 4);
      stride.push_back(draw(1, 3));
      dilation.push_back(draw(1, 2));
      in_dil.push_back(draw(0, 3) == 0 ? 2 : 1);
      pads.emplace_back(draw(0, 3), draw(0, 3));
      const std::int64_t padded =
          (in - 1) * in_dil.back() + 1 + pads.back().first + pads.back().second;
      fits = fits && padded >= dilation.back() * (ker - 1) + 1;
      xs.push_back(in);
      ws.push_back(ker);
    }
    if (!fits) continue;
    const ConvOptions o =
        ConvOptions().stride(stride).dilation(dilation).input_dilation(in_dil).padding(pads).groups(
            groups);
    const DType dtype = iter % 2 ? kFloat32 : kFloat64;
    compare("sweep case " + std::to_string(iter) + ": x " + to_string(xs) + " w " + to_string(ws),
            conv_fn(o), {xs, ws, {k}}, {dtype}, static_cast<std::uint64_t>(iter));
    ++ran;
  }
  CHECK(ran == 60);
}

TEST_CASE("float64 gradcheck of the convolutions on CUDA", "[cuda][conv][gradcheck]") {
  SettingsGuard settings;
  const auto cuda_leaf = [](const Shape& shape) {
    return ct_test::leaf(shape).detach().to(kGpu).requires_grad_();
  };
  CT_REQUIRE_GRADCHECK(
      conv_fn(ConvOptions().stride(2).padding(Pads{{1, 0}, {0, 2}}).groups(2)),
      (std::vector<Tensor>{cuda_leaf({2, 4, 5, 4}), cuda_leaf({4, 2, 3, 2}), cuda_leaf({4})}));
  CT_REQUIRE_GRADCHECK(
      conv_fn(ConvOptions().input_dilation(2).dilation(2).padding(1)),
      (std::vector<Tensor>{cuda_leaf({1, 2, 4, 3}), cuda_leaf({3, 2, 2, 2}), cuda_leaf({3})}));
  CT_REQUIRE_GRADCHECK(conv_fn(ConvOptions().padding(PaddingKind::Same)),
                       (std::vector<Tensor>{cuda_leaf({1, 2, 3, 4, 3}), cuda_leaf({2, 2, 2, 3, 2}),
                                            cuda_leaf({2})}));
  CT_REQUIRE_GRADCHECK(
      transpose_fn(ConvTransposeOptions().stride(2).padding(1).output_padding(1)),
      (std::vector<Tensor>{cuda_leaf({1, 3, 3, 3}), cuda_leaf({3, 2, 3, 3}), cuda_leaf({2})}));
  CT_REQUIRE_GRADCHECK(conv_fn(ConvOptions().padding(1)),
                       (std::vector<Tensor>{cuda_leaf({1, 2, 3, 2, 3, 2}),
                                            cuda_leaf({2, 2, 2, 2, 2, 2}), cuda_leaf({2})}));
  ConvGeneralOptions o;
  o.dimension_numbers = {"NWC", "WIO", "NWC"};
  o.lhs_dilation = {2};
  o.padding = {{2, 1}};
  CT_REQUIRE_GRADCHECK(
      Fn([o](const std::vector<Tensor>& v) { return conv_general(v[0], v[1], o); }),
      (std::vector<Tensor>{cuda_leaf({2, 6, 3}), cuda_leaf({3, 3, 2})}));
}

TEST_CASE("deterministic mode gives bitwise-identical results run to run", "[cuda][conv]") {
  SettingsGuard settings;
  cuda::set_deterministic(true);
  cuda::clear_conv_algorithm_cache();
  // Large enough for cuDNN's atomics-based gradient algorithms to be candidates.
  for (const DType dtype : {kFloat32, kFloat64}) {
    INFO((dtype == kFloat32 ? "float32" : "float64"));
    std::vector<std::vector<Tensor>> runs;
    for (int run = 0; run < 2; ++run) {
      const std::vector<Tensor> in = gpu_inputs({{8, 32, 28, 28}, {64, 32, 3, 3}, {64}}, dtype, 5);
      const Tensor y = conv(in[0], in[1], in[2], ConvOptions().stride(2).padding(1));
      Generator gen(9);
      y.backward(uniform(y.shape(), -1.0, 1.0, dtype, &gen).to(kGpu));
      runs.push_back(
          {y.detach().cpu(), in[0].grad().cpu(), in[1].grad().cpu(), in[2].grad().cpu()});
    }
    for (std::size_t i = 0; i < runs[0].size(); ++i) {
      INFO("tensor " << i);
      CHECK(ct_test::equal(runs[0][i], runs[1][i]));
    }
  }
}

TEST_CASE("the algorithm cache grows once per new shape and pass", "[cuda][conv]") {
  SettingsGuard settings;
  cuda::clear_conv_algorithm_cache();
  REQUIRE(cuda::conv_algorithm_cache_size() == 0);
  const Tensor x = randn({2, 3, 8, 8}, TensorOptions(kFloat32).device(kGpu));
  const Tensor w = randn({4, 3, 3, 3}, TensorOptions(kFloat32).device(kGpu));
  {
    NoGradGuard no_grad;
    (void)conv2d(x, w, Tensor(), ConvOptions().padding(1));
    CHECK(cuda::conv_algorithm_cache_size() == 1);
    (void)conv2d(x, w, Tensor(), ConvOptions().padding(1));
    CHECK(cuda::conv_algorithm_cache_size() == 1);
    // Another input size, then another geometry on the same tensors: one new entry each.
    const Tensor x2 = randn({2, 3, 9, 8}, TensorOptions(kFloat32).device(kGpu));
    (void)conv2d(x2, w, Tensor(), ConvOptions().padding(1));
    CHECK(cuda::conv_algorithm_cache_size() == 2);
    (void)conv2d(x, w, Tensor(), ConvOptions().stride(2));
    CHECK(cuda::conv_algorithm_cache_size() == 3);
    // float64 and the deterministic flag are part of the key.
    (void)conv2d(x.to(kFloat64), w.to(kFloat64), Tensor(), ConvOptions().padding(1));
    CHECK(cuda::conv_algorithm_cache_size() == 4);
    cuda::set_deterministic(!cuda::deterministic());
    (void)conv2d(x, w, Tensor(), ConvOptions().padding(1));
    CHECK(cuda::conv_algorithm_cache_size() == 5);
  }
  // Backward adds the data- and weight-gradient passes once.
  const Tensor xg = x.detach().requires_grad_(), wg = w.detach().requires_grad_();
  for (int i = 0; i < 2; ++i) {
    const Tensor y = conv2d(xg, wg, Tensor(), ConvOptions().padding(1));
    y.sum().backward();
    CHECK(cuda::conv_algorithm_cache_size() == 7);
  }
  // cuDNN offered an algorithm for every one of these shapes (none fell back to direct kernels).
  for (const cuda::ConvAlgorithm& a : cuda::conv_algorithm_cache().choices())
    CHECK(a.algo != cuda::kConvDirect);
  cuda::clear_conv_algorithm_cache();
  CHECK(cuda::conv_algorithm_cache_size() == 0);
}

TEST_CASE("a zero workspace cap and TF32 still give correct convolutions", "[cuda][conv]") {
  SettingsGuard settings;
  cuda::set_conv_workspace_limit(0);
  cuda::clear_conv_algorithm_cache();
  compare_both("no workspace", conv_fn(ConvOptions().padding(1).stride(2)),
               {{4, 16, 15, 15}, {32, 16, 3, 3}, {32}});
  compare_both("no workspace, dilated, input dilation",
               conv_fn(ConvOptions().dilation(2).input_dilation(2).padding(1)),
               {{2, 4, 6, 6}, {8, 4, 3, 3}, {8}});
  CHECK(cuda::conv_algorithm_cache_size() == 12);  // 2 shapes x 2 dtypes x 3 passes
  for (const cuda::ConvAlgorithm& a : cuda::conv_algorithm_cache().choices()) {
    CHECK(a.algo != cuda::kConvDirect);
    CHECK(a.workspace == 0);
  }
  cuda::set_conv_workspace_limit(std::int64_t{1} << 30);
  // TF32 rounds products to a 10-bit mantissa: only a loose comparison holds.
  cuda::set_allow_tf32(true);
  const Tensor x = uniform({4, 16, 12, 12}, -1, 1), w = uniform({32, 16, 3, 3}, -1, 1);
  const Tensor y_cpu = conv2d(x, w, Tensor(), ConvOptions().padding(1));
  const Tensor y_gpu = conv2d(x.to(kGpu), w.to(kGpu), Tensor(), ConvOptions().padding(1));
  CHECK(ct_test::allclose(y_gpu.cpu(), y_cpu, 1e-2, 2e-2));
}

TEST_CASE("the CUDA convolution kernels check their arguments", "[cuda][conv]") {
  ConvGeometry g;
  g.batch = 1;
  g.channels = 2;
  g.out_channels = 3;
  g.in = {5};
  g.out = {3};
  g.kernel = {3};
  g.stride = {1};
  g.dilation = {1};
  g.input_dilation = {1};
  g.pad_lo = {0};
  const TensorOptions on_gpu = TensorOptions(kFloat32).device(kGpu);
  const Tensor x = zeros({1, 2, 5}, on_gpu), w = zeros({3, 2, 3}, on_gpu);
  CHECK(cuda::conv_forward(x, w, Tensor(), g).shape() == Shape{1, 3, 3});
  CT_REQUIRE_ERROR(cuda::conv_forward(x, zeros({3, 2, 2}, on_gpu), Tensor(), g),
                   "conv: expected weight of shape [3, 2, 3] for this geometry, got [3, 2, 2]");
  CT_REQUIRE_ERROR(cuda::conv_forward(x.cpu(), w, Tensor(), g),
                   "conv: expected input on a CUDA device, got one on cpu");
  CT_REQUIRE_ERROR(cuda::conv_forward(x, w.to(kFloat64), Tensor(), g),
                   "conv: expected weight of dtype float32, got float64");
  CT_REQUIRE_ERROR(cuda::conv_forward(x, w, zeros({2}, on_gpu), g),
                   "conv: expected bias of shape [3]");
  CT_REQUIRE_ERROR(cuda::conv_backward_weight(zeros({1, 3, 3}, on_gpu), x.transpose(1, 2), g),
                   "conv: expected input of shape [1, 2, 5]");
}
