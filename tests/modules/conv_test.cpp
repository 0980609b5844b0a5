// Tests of modules/conv: the options builders (per-dim values, per-side pairs, "same" / "valid",
// checks), Conv1d / 2d / 3d and ConvTranspose1d / 2d / 3d against the ops they wrap and against
// the output-size formulas, float64 gradients of input, weight and bias, the printed settings,
// every PuzzleLib Conv2D example of the seed with its printed numbers (weights set by its
// customW), the groups example's weight shapes, the depthwise-separable block, and the errors;
// padding_mode (reflect, replicate, circular) against PyTorch 1.13 (tests/golden/resample.txt,
// scripts/make_resample_golden.py), its gradients, names and printed settings.
#include <memory>
#include <string>
#include <vector>

#include "modules/module_check.h"
#include "support/test_util.h"

namespace {

using namespace convtape;
using ct_test::equal;
using ct_test::Pads;

// The seed's customW(size): output map 0 the identity, map 1 the anti-diagonal -1, -2, ...
// (np.flip(np.diag(-arange(1, size + 1)), 1)), as a [2, 1, size, size] weight.
Tensor custom_w(std::int64_t size) {
  std::vector<double> v(static_cast<std::size_t>(2 * size * size), 0.0);
  for (std::int64_t i = 0; i < size; ++i) {
    v[static_cast<std::size_t>(i * size + i)] = 1.0;
    v[static_cast<std::size_t>(size * size + i * size + (size - 1 - i))] =
        -static_cast<double>(i + 1);
  }
  return tensor(v, {2, 1, size, size});
}

// The seed's data: arange(25) as [1, 1, 5, 5].
Tensor seed_data() {
  return arange(25.0).reshape({1, 1, 5, 5});
}

// PuzzleLib's Conv2D with the example's settings, weights set to customW(size).
Tensor puzzlelib_run(const nn::PuzzleLibConv& p) {
  nn::Conv2d conv(nn::Conv2dOptions::puzzlelib(p));
  {
    NoGradGuard no_grad;
    conv.weight().copy_(custom_w(p.size));
  }
  return conv(seed_data());
}

TEST_CASE("Conv options: per-dim values, padding forms, and their checks") {
  const auto o =
      nn::Conv2dOptions(4, 8, {3, 5}).stride(2).padding({1, 2}).dilation({1, 3}).groups(2);
  CHECK(o.rank() == 2);
  CHECK(o.kernel_size() == std::vector<std::int64_t>{3, 5});
  CHECK(o.stride() == std::vector<std::int64_t>{2, 2});
  CHECK(o.padding() == std::vector<std::pair<std::int64_t, std::int64_t>>{{1, 1}, {2, 2}});
  CHECK(o.dilation() == std::vector<std::int64_t>{1, 3});
  CHECK(o.groups() == 2);
  CHECK(o.bias());
  const auto sides = nn::Conv2dOptions(1, 1, 3).padding({{0, 1}, {2, 0}});
  CHECK(sides.padding() == std::vector<std::pair<std::int64_t, std::int64_t>>{{0, 1}, {2, 0}});
  CHECK(nn::Conv2dOptions(1, 1, 3).padding(0).padding_kind() == PaddingKind::Explicit);
  CHECK(nn::Conv2dOptions(1, 1, 3).padding("same").padding_kind() == PaddingKind::Same);
  CHECK(nn::Conv2dOptions(1, 1, 3).padding(std::string("VALID")).padding_kind() ==
        PaddingKind::Valid);
  CHECK(nn::Conv2dOptions(1, 1, 3).padding(PaddingKind::SameLower).padding_kind() ==
        PaddingKind::SameLower);

  CT_REQUIRE_ERROR(
      nn::Conv2dOptions(1, 1, {3, 3, 3}),
      "ConvNdOptions: expected kernel_size with 1 or 2 values (one per spatial dim), got 3");
  CT_REQUIRE_ERROR(nn::Conv2dOptions(1, 1, 3).stride(0), "ConvNdOptions: expected stride >= 1");
  CT_REQUIRE_ERROR(nn::Conv2dOptions(1, 1, 3).padding(-1), "ConvNdOptions: expected padding >= 0");
  CT_REQUIRE_ERROR(
      nn::Conv2dOptions(1, 1, 3).padding("full"),
      "ConvNdOptions: expected padding 'SAME', 'SAME_LOWER' or 'VALID' (any case), got 'full'");
  CT_REQUIRE_ERROR(nn::Conv2dOptions(1, 1, 3).dilation({1, 0}),
                   "ConvNdOptions: expected dilation >= 1, got [1, 0]");
  CT_REQUIRE_ERROR(nn::Conv2dOptions(1, 1, 3).groups(0), "ConvNdOptions: expected groups >= 1");
  CT_REQUIRE_ERROR(nn::Conv2d(nn::Conv2dOptions(3, 8, 3).groups(2)),
                   "Conv2d: expected in_channels and out_channels divisible by groups = 2, got 3 "
                   "and 8");
  CT_REQUIRE_ERROR(nn::Conv2d(nn::Conv3dOptions(3, 8, 3)),
                   "Conv2d: expected options of rank 2, got rank 3");
  CT_REQUIRE_ERROR(nn::Conv1d(nn::Conv1dOptions(0, 8, 3)),
                   "Conv1d: expected positive in_channels and out_channels, got 0 and 8");
}

TEST_CASE("Conv1d / Conv2d / Conv3d: parameters, output sizes and agreement with the op") {
  manual_seed(21);
  SECTION("Conv2d, strided, padded, dilated, grouped") {
    nn::Conv2d conv(
        nn::Conv2dOptions(4, 6, {3, 2}).stride({2, 1}).padding({1, 0}).dilation({1, 2}).groups(2));
    CHECK(conv.weight().shape() == Shape{6, 2, 3, 2});
    CHECK(conv.bias().shape() == Shape{6});
    CHECK(conv.type_name() == "Conv2d");
    const Tensor x = randn({2, 4, 9, 7});
    const Tensor y = conv(x);
    // H: floor((9 + 2 - 2 - 1) / 2) + 1 = 5; W: floor((7 - 2 - 1) / 1) + 1 = 5
    CHECK(y.shape() == Shape{2, 6, 5, 5});
    const Tensor ref =
        conv2d(x, conv.weight(), conv.bias(),
               ConvOptions().stride({2, 1}).padding({1, 0}).dilation({1, 2}).groups(2));
    CHECK(equal(y, ref));
    CHECK(conv.extra_repr() ==
          "4, 6, kernel_size=[3, 2], stride=[2, 1], padding=[1, 0], dilation=[1, 2], groups=2");
  }
  SECTION("Conv1d without bias, per-side padding") {
    nn::Conv1d conv(nn::Conv1dOptions(3, 5, 4).padding(Pads{{2, 1}}).bias(false));
    CHECK_FALSE(conv.bias().defined());
    CHECK(conv.parameters().size() == 1);
    const Tensor x = randn({2, 3, 10});
    const Tensor y = conv(x);
    CHECK(y.shape() == Shape{2, 5, 10});  // 10 + 3 - 4 + 1
    CHECK(equal(y, conv1d(x, conv.weight(), {}, ConvOptions().padding(Pads{{2, 1}}))));
    CHECK(conv.str() == "Conv1d(3, 5, kernel_size=[4], stride=[1], padding=[(2, 1)], bias=false)");
  }
  SECTION("Conv3d with 'same' padding keeps the size; 'valid' drops k - 1") {
    nn::Conv3d same(nn::Conv3dOptions(2, 3, 3).padding("same"));
    const Tensor x = randn({1, 2, 5, 6, 7});
    CHECK(same(x).shape() == Shape{1, 3, 5, 6, 7});
    CHECK(same.extra_repr() == "2, 3, kernel_size=[3, 3, 3], stride=[1, 1, 1], padding=same");
    nn::Conv3d valid(nn::Conv3dOptions(2, 3, {1, 2, 3}).padding("valid"));
    CHECK(valid(x).shape() == Shape{1, 3, 5, 5, 5});
    nn::Conv3d strided_same(nn::Conv3dOptions(2, 3, 3).stride(2).padding("same"));
    CHECK(strided_same(x).shape() == Shape{1, 3, 3, 3, 4});  // ceil(S / 2)
  }
  SECTION("exact() keeps a layer off Winograd: small integers give exact sums") {
    // 16 x 32 -> 32 channels, 3x3, stride 1, padding 1, 16x16: a float32 shape the CPU plan sends
    // to Winograd, whose transforms (with 1/6 and 1/24 in them) round small-integer sums.
    nn::Conv2d conv(nn::Conv2dOptions(32, 32, 3).padding(1).exact());
    CHECK(conv.options().exact());
    const ConvOptions op = conv.options().conv_options();
    CHECK(op.exact());
    CHECK(conv.extra_repr() ==
          "32, 32, kernel_size=[3, 3], stride=[1, 1], padding=[1, 1], exact=true");
    {
      NoGradGuard no_grad;
      conv.weight().copy_(randint(-2, 3, conv.weight().shape()).to(kFloat32));
      conv.bias().copy_(randint(-2, 3, {32}).to(kFloat32));
    }
    const Tensor x = randint(-4, 5, {16, 32, 16, 16}).to(kFloat32);
    const Tensor ref = conv2d(x.to(kFloat64), conv.weight().to(kFloat64), conv.bias().to(kFloat64),
                              ConvOptions().padding(1));
    CHECK(equal(conv(x).to(kFloat64), ref));
    nn::ConvTranspose2d up(nn::ConvTranspose2dOptions(32, 32, 3).padding(1).exact());
    const ConvTransposeOptions top = up.options().conv_transpose_options();
    CHECK(top.exact());
    CHECK(up.extra_repr().find("exact=true") != std::string::npos);
  }
  SECTION("a 4-d convolution through the rank-generic ConvNd") {
    nn::ConvNd conv(nn::ConvNdOptions(4, 1, 2, 2));
    CHECK(conv.type_name() == "Conv4d");
    CHECK(conv.weight().shape() == Shape{2, 1, 2, 2, 2, 2});
    const Tensor x = randn({1, 1, 3, 3, 3, 3});
    CHECK(equal(conv(x), convtape::conv(x, conv.weight(), conv.bias())));
  }
}

TEST_CASE("Conv: errors of wrong inputs come from the op") {
  nn::Conv2d conv(nn::Conv2dOptions(3, 4, 3));
  CT_REQUIRE_ERROR(conv(zeros({3, 8, 8})), "conv2d: expected input of rank 4");
  CT_REQUIRE_ERROR(conv(zeros({1, 2, 8, 8})), "conv2d");
  CT_REQUIRE_ERROR(conv(zeros({1, 3, 8, 8}, kFloat64)), "conv2d");
}

TEST_CASE("Conv: float64 gradients of input, weight and bias") {
  manual_seed(22);
  SECTION("Conv2d, stride 2, padding 1, groups 2") {
    nn::Conv2d conv(nn::Conv2dOptions(4, 2, 3).stride(2).padding(1).groups(2));
    conv.to(kFloat64);
    CT_REQUIRE_MODULE_GRADCHECK(conv, randn({2, 4, 5, 5}, kFloat64));
  }
  SECTION("Conv1d, dilation 2, no bias") {
    nn::Conv1d conv(nn::Conv1dOptions(2, 3, 3).dilation(2).bias(false));
    conv.to(kFloat64);
    CT_REQUIRE_MODULE_GRADCHECK(conv, randn({2, 2, 9}, kFloat64));
  }
  SECTION("Conv3d, 'same'") {
    nn::Conv3d conv(nn::Conv3dOptions(1, 2, 2).padding("same"));
    conv.to(kFloat64);
    CT_REQUIRE_MODULE_GRADCHECK(conv, randn({1, 1, 3, 3, 3}, kFloat64));
  }
  SECTION("ConvTranspose2d, stride 2, output_padding 1") {
    nn::ConvTranspose2d conv(
        nn::ConvTranspose2dOptions(2, 4, 3).stride(2).padding(1).output_padding(1).groups(2));
    conv.to(kFloat64);
    CT_REQUIRE_MODULE_GRADCHECK(conv, randn({1, 2, 3, 3}, kFloat64));
  }
}

TEST_CASE("ConvTranspose1d / 2d / 3d: shapes, the op, and inverting a conv's geometry") {
  manual_seed(23);
  nn::ConvTranspose2d up(
      nn::ConvTranspose2dOptions(4, 6, 3).stride(2).padding(1).output_padding(1).groups(2));
  CHECK(up.weight().shape() == Shape{4, 3, 3, 3});
  CHECK(up.type_name() == "ConvTranspose2d");
  const Tensor x = randn({2, 4, 5, 6});
  const Tensor y = up(x);
  // (S - 1) * 2 - 2 + 2 + 1 + 1 = 2 S
  CHECK(y.shape() == Shape{2, 6, 10, 12});
  CHECK(equal(y, conv_transpose2d(
                     x, up.weight(), up.bias(),
                     ConvTransposeOptions().stride(2).padding(1).output_padding(1).groups(2))));
  CHECK(up.extra_repr() ==
        "4, 6, kernel_size=[3, 3], stride=[2, 2], padding=[1, 1], output_padding=[1, 1], groups=2");

  // A stride-2 conv maps [*, 10, 12] to [*, 5, 6]; its transpose maps back.
  nn::Conv2d down(nn::Conv2dOptions(6, 4, 3).stride(2).padding(1));
  CHECK(down(y).shape() == x.shape());

  nn::ConvTranspose1d up1(nn::ConvTranspose1dOptions(2, 3, 4).stride(3).dilation(2).bias(false));
  CHECK(up1(randn({1, 2, 5})).shape() == Shape{1, 3, 19});  // 4 * 3 + 2 * 3 + 1
  nn::ConvTranspose3d up3(nn::ConvTranspose3dOptions(1, 2, 2).stride(2));
  CHECK(up3(randn({1, 1, 2, 3, 4})).shape() == Shape{1, 2, 4, 6, 8});

  CT_REQUIRE_ERROR(nn::ConvTranspose2d(nn::ConvTranspose2dOptions(2, 2, 3).output_padding(1)),
                   "ConvTranspose2d: expected output_padding smaller than stride or dilation");
  CT_REQUIRE_ERROR(nn::ConvTranspose2d(nn::ConvTranspose1dOptions(2, 2, 3)),
                   "ConvTranspose2d: expected options of rank 2, got rank 1");
  CT_REQUIRE_ERROR(nn::ConvTranspose2dOptions(2, 2, 3).padding({1, 1, 1}),
                   "ConvTransposeNdOptions: expected padding with 1 or 2 values");
}

TEST_CASE("PuzzleLib Conv2D: the seed's examples with their printed outputs") {
  manual_seed(24);
  SECTION("size 2") {
    const Tensor y = puzzlelib_run({.inmaps = 1, .outmaps = 2, .size = 2, .useBias = false});
    CHECK(equal(
        y, tensor({6,   8,   10,  12,  16,  18,  20,  22,  26,  28,  30,  32,  36,  38,  40,  42,
                   -11, -14, -17, -20, -26, -29, -32, -35, -41, -44, -47, -50, -56, -59, -62, -65},
                  {1, 2, 4, 4})));
  }
  SECTION("size 3") {
    const Tensor y = puzzlelib_run({.inmaps = 1, .outmaps = 2, .size = 3, .useBias = false});
    CHECK(equal(y, tensor({18, 21, 24, 33, 36, 39, 48, 51, 54, -44, -50, -56, -74, -80, -86, -104,
                           -110, -116},
                          {1, 2, 3, 3})));
  }
  SECTION("pad 1") {
    const Tensor y =
        puzzlelib_run({.inmaps = 1, .outmaps = 2, .size = 3, .pad = 1, .useBias = false});
    CHECK(equal(y, tensor({6,   8,   10,   12,   4,    16,   18,  21,  24,  12,  26,  33,  36,
                           39,  22,  36,   48,   51,   54,   32,  20,  36,  38,  40,  42,  0,
                           -17, -22, -27,  -32,  -11,  -44,  -50, -56, -57, -26, -74, -80, -86,
                           -82, -41, -104, -110, -116, -107, -56, -59, -62, -65, -48},
                          {1, 2, 5, 5})));
  }
  SECTION("pad (1, 0)") {
    const Tensor y =
        puzzlelib_run({.inmaps = 1, .outmaps = 2, .size = 3, .pad = {1, 0}, .useBias = false});
    CHECK(equal(
        y, tensor({8,   10,  12,  18,  21,  24,  33,  36,  39,  48,   51,   54,   36,  38,  40,
                   -17, -22, -27, -44, -50, -56, -74, -80, -86, -104, -110, -116, -59, -62, -65},
                  {1, 2, 5, 3})));
  }
  SECTION("stride 2") {
    const Tensor y =
        puzzlelib_run({.inmaps = 1, .outmaps = 2, .size = 2, .stride = 2, .useBias = false});
    CHECK(equal(y, tensor({6, 10, 26, 30, -11, -17, -41, -47}, {1, 2, 2, 2})));
  }
  SECTION("stride 2, pad 3") {
    const Tensor y = puzzlelib_run(
        {.inmaps = 1, .outmaps = 2, .size = 2, .stride = 2, .pad = 3, .useBias = false});
    // clang-format off
    CHECK(equal(y, tensor({0,   0,   0,   0, 0,
                           0,   0,   2,   4, 0,
                           0,  10,  18,  22, 0,
                           0,  20,  38,  42, 0,
                           0,   0,   0,   0, 0,

                           0,   0,   0,   0, 0,
                           0,   0,  -2,  -6, 0,
                           0,  -5, -29, -35, 0,
                           0, -15, -59, -65, 0,
                           0,   0,   0,   0, 0},
                          {1, 2, 5, 5})));
    // clang-format on
  }
  SECTION("stride (2, 4), pad 3") {
    const Tensor y = puzzlelib_run(
        {.inmaps = 1, .outmaps = 2, .size = 2, .stride = {2, 4}, .pad = 3, .useBias = false});
    CHECK(equal(y, tensor({0, 0, 0, 0, 2,  0, 0, 18,  0, 0, 38,  0, 0, 0, 0,
                           0, 0, 0, 0, -2, 0, 0, -29, 0, 0, -59, 0, 0, 0, 0},
                          {1, 2, 5, 3})));
  }
  SECTION("dilation 2") {
    const Tensor y =
        puzzlelib_run({.inmaps = 1, .outmaps = 2, .size = 2, .dilation = 2, .useBias = false});
    CHECK(equal(
        y, tensor({12, 14, 16, 22, 24, 26, 32, 34, 36, -22, -25, -28, -37, -40, -43, -52, -55, -58},
                  {1, 2, 3, 3})));
  }
  SECTION("dilation (3, 1)") {
    const Tensor y =
        puzzlelib_run({.inmaps = 1, .outmaps = 2, .size = 2, .dilation = {3, 1}, .useBias = false});
    CHECK(equal(y, tensor({16, 18, 20, 22, 26, 28, 30, 32, -31, -34, -37, -40, -46, -49, -52, -55},
                          {1, 2, 2, 4})));
  }
  SECTION("the positional form takes PuzzleLib's order") {
    nn::Conv2d conv(nn::Conv2dOptions::puzzlelib(1, 2, 2, /*stride=*/{2, 4}, /*pad=*/3,
                                                 /*dilation=*/1, /*wscale=*/1.0,
                                                 /*useBias=*/false));
    NoGradGuard no_grad;
    conv.weight().copy_(custom_w(2));
    CHECK(equal(
        conv(seed_data()),
        puzzlelib_run(
            {.inmaps = 1, .outmaps = 2, .size = 2, .stride = {2, 4}, .pad = 3, .useBias = false})));
  }
}

TEST_CASE("PuzzleLib Conv2D: parameters, defaults and the groups example") {
  manual_seed(25);
  // Bias on by default, zero-initialised, shaped [outmaps].
  nn::Conv2d with_bias(nn::Conv2dOptions::puzzlelib({.inmaps = 1, .outmaps = 2, .size = 2}));
  REQUIRE(with_bias.bias().defined());
  CHECK(with_bias.bias().to_vector<float>() == std::vector<float>{0.0f, 0.0f});
  // initscheme None: U(-sqrt(3 / fan_in), sqrt(3 / fan_in)), fan_in = 1 * 2 * 2.
  for (float v : with_bias.weight().to_vector<float>()) CHECK(std::abs(v) <= std::sqrt(0.75f));
  CHECK(with_bias.extra_repr() == "1, 2, kernel_size=[2, 2], stride=[1, 1]");

  nn::Conv2d g1(nn::Conv2dOptions::puzzlelib(
      {.inmaps = 16, .outmaps = 32, .size = 2, .initscheme = "gaussian", .groups = 1}));
  CHECK(g1.weight().shape() == Shape{32, 16, 2, 2});
  nn::Conv2d g4(nn::Conv2dOptions::puzzlelib(
      {.inmaps = 16, .outmaps = 32, .size = 2, .initscheme = "gaussian", .groups = 4}));
  CHECK(g4.weight().shape() == Shape{32, 4, 2, 2});
  CHECK(g4(randn({1, 16, 5, 5})).shape() == Shape{1, 32, 4, 4});
  // gaussian with wscale 1: N(0, 1) weights (128 * 4 draws: the std is near 1, not near 0.25).
  const auto w = g4.weight().to_vector<float>();
  double ss = 0;
  for (float v : w) ss += static_cast<double>(v) * v;
  CHECK(std::sqrt(ss / static_cast<double>(w.size())) == Approx(1.0).margin(0.15));

  CT_REQUIRE_ERROR(
      nn::Conv2d(
          nn::Conv2dOptions::puzzlelib({.inmaps = 16, .outmaps = 30, .size = 2, .groups = 4})),
      "Conv2d: expected in_channels and out_channels divisible by groups = 4, got 16 and 30");
  CT_REQUIRE_ERROR(nn::Conv2dOptions::puzzlelib(
                       {.inmaps = 1, .outmaps = 2, .size = 2, .initscheme = "orthogonal"}),
                   "Scheme::puzzlelib: expected initscheme");
}

TEST_CASE("PuzzleLib Conv2D: the depthwise-separable block builds and runs") {
  manual_seed(26);
  nn::Sequential seq;
  seq.push_back(
      "depthwise",
      std::make_shared<nn::Conv2d>(nn::Conv2dOptions::puzzlelib(
          {.inmaps = 3, .outmaps = 3, .size = 4, .initscheme = "gaussian", .groups = 3})));
  seq.push_back("pointwise",
                std::make_shared<nn::Conv2d>(nn::Conv2dOptions::puzzlelib(
                    {.inmaps = 3, .outmaps = 32, .size = 1, .initscheme = "gaussian"})));
  auto depthwise = std::dynamic_pointer_cast<nn::Conv2d>(seq["depthwise"]);
  auto pointwise = std::dynamic_pointer_cast<nn::Conv2d>(seq["pointwise"]);
  REQUIRE(depthwise);
  REQUIRE(pointwise);
  CHECK(depthwise->weight().shape() == Shape{3, 1, 4, 4});
  CHECK(pointwise->weight().shape() == Shape{32, 3, 1, 1});
  const Tensor data = randn({1, 3, 5, 5});
  const Tensor y = seq(data);
  CHECK(y.shape() == Shape{1, 32, 2, 2});
  // The block is the two convolutions in a row: depthwise (each map its own kernel), pointwise.
  const Tensor ref =
      conv2d(conv2d(data, depthwise->weight(), depthwise->bias(), ConvOptions().groups(3)),
             pointwise->weight(), pointwise->bias());
  CHECK(ct_test::allclose(y, ref, 1e-6, 1e-6));
  CHECK(seq.num_parameters() == 3 * 16 + 3 + 32 * 3 + 32);
  CHECK(seq.str() ==
        "Sequential(\n"
        "  (depthwise): Conv2d(3, 3, kernel_size=[4, 4], stride=[1, 1], groups=3)\n"
        "  (pointwise): Conv2d(3, 32, kernel_size=[1, 1], stride=[1, 1])\n"
        ")");
  // It trains: gradients reach both weights.
  sum(seq(data)).backward();
  CHECK(depthwise->weight().grad().defined());
  CHECK(pointwise->bias().grad().defined());
}

// ---- padding_mode (PyTorch's "zeros", "reflect", "replicate", "circular")

TEST_CASE("Conv padding_mode: options, names and the printed settings") {
  CHECK(nn::Conv2dOptions(1, 1, 3).padding_mode() == PadMode::Constant);
  CHECK(nn::Conv2dOptions(1, 1, 3).padding_mode("reflect").padding_mode() == PadMode::Reflect);
  CHECK(nn::Conv2dOptions(1, 1, 3).padding_mode("replicate").padding_mode() == PadMode::Replicate);
  CHECK(nn::Conv2dOptions(1, 1, 3).padding_mode(PadMode::Circular).padding_mode() ==
        PadMode::Circular);
  CHECK(nn::Conv2dOptions(1, 1, 3).padding_mode("circular").padding_mode("zeros").padding_mode() ==
        PadMode::Constant);
  // The padding kind and the padding mode are independent settings.
  const auto o = nn::Conv2dOptions(1, 1, 3).padding("same").padding_mode("reflect");
  CHECK(o.padding_kind() == PaddingKind::Same);
  CHECK(o.padding_mode() == PadMode::Reflect);
  // The op's options carry no padding: the layer pads first.
  CHECK(o.conv_options().padding_kind() == PaddingKind::Explicit);
  CHECK(o.conv_options().padding() == Pads{{0, 0}});
  CHECK(o.padding_for({5, 6}) == Pads{{1, 1}, {1, 1}});
  CHECK(nn::Conv2dOptions(1, 1, {3, 4}).padding("same").padding_for({5, 6}) ==
        Pads{{1, 1}, {1, 2}});
  CHECK(nn::Conv2dOptions(1, 1, {3, 4}).padding("same_lower").padding_for({5, 6}) ==
        Pads{{1, 1}, {2, 1}});
  CHECK(nn::Conv1dOptions(1, 1, 3).padding("valid").padding_for({5}) == Pads{{0, 0}});
  CHECK(nn::Conv1dOptions(1, 1, 3).padding(Pads{{2, 1}}).padding_for({5}) == Pads{{2, 1}});

  CHECK(nn::Conv2d(nn::Conv2dOptions(2, 3, 3).padding(1).padding_mode("reflect")).extra_repr() ==
        "2, 3, kernel_size=[3, 3], stride=[1, 1], padding=[1, 1], padding_mode=reflect");
  CHECK(nn::Conv1d(nn::Conv1dOptions(2, 3, 3).padding(2).bias(false).padding_mode("circular"))
            .extra_repr() ==
        "2, 3, kernel_size=[3], stride=[1], padding=[2], bias=false, padding_mode=circular");
  CHECK(nn::Conv2d(nn::Conv2dOptions(2, 3, 3).padding(1).padding_mode("zeros")).extra_repr() ==
        "2, 3, kernel_size=[3, 3], stride=[1, 1], padding=[1, 1]");

  CT_REQUIRE_ERROR(nn::Conv2dOptions(1, 1, 3).padding_mode("reflection"),
                   "ConvNdOptions: expected padding_mode 'zeros', 'reflect', 'replicate' or "
                   "'circular', got 'reflection'");
}

TEST_CASE("Conv padding_mode: matches PyTorch 1.13 (forward and gradients)") {
  int cases = 0;
  for (const auto& [name, c] : ct_test::load_golden("resample.txt")) {
    if (name.rfind("conv", 0) != 0) continue;
    INFO("case " << name);
    ++cases;
    const auto ints = [&](const std::string& key) {
      std::vector<std::int64_t> v;
      for (double d : c.at(key).to_vector<double>()) v.push_back(static_cast<std::int64_t>(d));
      return v;
    };
    const Tensor w = c.at("w");
    const std::int64_t rank = w.dim() - 2;
    auto o = nn::ConvNdOptions(rank, w.size(1), w.size(0), ints("opt_kernel"))
                 .stride(ints("opt_stride"))
                 .padding_mode(static_cast<PadMode>(ints("opt_mode").at(0)));
    if (c.count("opt_same"))
      o.padding("same");
    else
      o.padding(ints("opt_padding"));
    nn::ConvNd conv(o);
    conv.to(kFloat64);
    {
      NoGradGuard no_grad;
      conv.weight().copy_(w);
      conv.bias().copy_(c.at("b"));
    }
    const Tensor x = c.at("x").detach().requires_grad_(true);
    const Tensor y = conv(x);
    REQUIRE(y.shape() == c.at("out").shape());
    CHECK(ct_test::allclose(y, c.at("out"), 1e-12, 1e-12));
    y.backward(c.at("g"));
    CHECK(ct_test::allclose(x.grad(), c.at("grad_x"), 1e-12, 1e-12));
    CHECK(ct_test::allclose(conv.weight().grad(), c.at("grad_w"), 1e-12, 1e-12));
    CHECK(ct_test::allclose(conv.bias().grad(), c.at("grad_b"), 1e-12, 1e-12));
  }
  CHECK(cases >= 7);
}

TEST_CASE("Conv padding_mode: float64 gradients of input, weight and bias") {
  manual_seed(23);
  SECTION("Conv2d reflect, per-dim padding, stride 2") {
    nn::Conv2d conv(nn::Conv2dOptions(2, 2, 3).stride(2).padding({2, 1}).padding_mode("reflect"));
    conv.to(kFloat64);
    CT_REQUIRE_MODULE_GRADCHECK(conv, randn({1, 2, 5, 4}, kFloat64));
  }
  SECTION("Conv2d circular, 'same'") {
    nn::Conv2d conv(nn::Conv2dOptions(1, 2, {2, 3}).padding("same").padding_mode("circular"));
    conv.to(kFloat64);
    CT_REQUIRE_MODULE_GRADCHECK(conv, randn({2, 1, 3, 4}, kFloat64));
  }
  SECTION("Conv1d replicate") {
    nn::Conv1d conv(nn::Conv1dOptions(2, 1, 3).padding(2).padding_mode("replicate"));
    conv.to(kFloat64);
    CT_REQUIRE_MODULE_GRADCHECK(conv, randn({1, 2, 4}, kFloat64));
  }
}

TEST_CASE("Conv padding_mode: an input too small for the mode is refused by pad") {
  nn::Conv2d reflect(nn::Conv2dOptions(1, 1, 3).padding(2).padding_mode("reflect"));
  CT_REQUIRE_ERROR(reflect(zeros({1, 1, 2, 5})),
                   "pad: expected reflect widths smaller than the size 2 of dim 2 of shape [1, 1, "
                   "2, 5], got (2, 2)");
  nn::Conv1d circular(nn::Conv1dOptions(1, 1, 5).padding(3).padding_mode("circular"));
  CT_REQUIRE_ERROR(circular(zeros({1, 1, 2})),
                   "pad: expected circular widths no larger than the size 2 of dim 2");
}

}  // namespace
