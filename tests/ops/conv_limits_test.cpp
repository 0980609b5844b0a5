// Extreme arguments for conv, conv_transpose, conv_general, correlate / convolve, the FlowNet
// correlation and the conv modules (issue 11): paddings, strides, dilations, output paddings,
// kernel sizes and groups up to 2^63 - 1.
// - A table of hand-picked cases: each either gives PyTorch's / JAX's exact output shape (and, for
//   small outputs, exact values, computed here by hand from the definition) or is refused with an
//   "<op>: expected ..." message naming the real values, never a wrapped number. Huge-but-valid
//   geometry (a stride of 2^62, a dilation of 2^61 whose kernel fits as one tap) must run fast.
// - A seeded sweep (the short version of the op-argument fuzzer): a few thousand argument sets
//   with magnitudes drawn from 0 to 2^63 - 1, each checked against an independent __int128
//   computation of the output shape: either an Error starting with the op's name and containing
//   "expected", or an output (or, for outputs too large to allocate, conv_output_shape) of exactly
//   that shape. Small outputs also run backward.
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/checked.h"
#include "support/test_util.h"

namespace {

using namespace convtape;
__extension__ typedef __int128 i128;  // GCC / Clang; -Wpedantic wants the marker

constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t k2_31 = std::int64_t{1} << 31;
constexpr std::int64_t k2_40 = std::int64_t{1} << 40;
constexpr std::int64_t k2_61 = std::int64_t{1} << 61;
constexpr std::int64_t k2_62 = std::int64_t{1} << 62;

// 1, 2, 3, ... in float64 (exact small integers).
Tensor iota(const Shape& shape) {
  const auto n = static_cast<double>(checked::numel(shape, "iota"));
  return reshape(arange(1.0, n + 1.0, 1.0, kFloat64), shape);
}

// A fresh leaf with t's values.
Tensor copy_leaf(const Tensor& t) {
  return t.detach().clone().requires_grad_(true);
}

std::vector<double> values(const Tensor& t) {
  return t.contiguous().to_vector<double>();
}

// ---- conv

TEST_CASE("conv: a padding of 2^63 - 1 is refused, naming the padding", "[conv][limits]") {
  const Tensor x = zeros({1, 2, 5, 5}), w = zeros({3, 2, 3, 3});
  CT_REQUIRE_ERROR(conv2d(x, w, {}, ConvOptions().padding(kMax)),
                   "conv2d: expected the padded input extent to fit in 64 bits, got input 5 + "
                   "padding (9223372036854775807, 9223372036854775807) in dim 0");
  CT_REQUIRE_ERROR(conv2d(x, w, {}, ConvOptions().padding({{0, kMax}, {0, 0}})),
                   "got input 5 + padding (0, 9223372036854775807) in dim 0");
  CT_REQUIRE_ERROR(conv2d(x, w, {}, ConvOptions().padding({{0, 0}, {k2_62, k2_62}})),
                   "got input 5 + padding (4611686018427387904, 4611686018427387904) in dim 1");
}

TEST_CASE("conv: a huge padding that fits gives a huge output, refused by its size",
          "[conv][limits]") {
  const Tensor x = zeros({1, 1, 3}), w = zeros({1, 1, 2});
  // padded 3 + 2^62, out 2^62 + 2: [1, 1, 2^62 + 2] has more bytes than any allocator gives.
  CT_REQUIRE_ERROR(conv1d(x, w, {}, ConvOptions().padding(k2_61)),
                   "conv1d: expected a tensor of at most 9223372036854775807 bytes, got shape [1, "
                   "1, 4611686018427387906]");
  REQUIRE(conv_output_shape({1, 1, 3}, {1, 1, 2}, ConvOptions().padding(k2_61)) ==
          Shape{1, 1, k2_62 + 2});
  // Two such dims: the element count itself overflows.
  CT_REQUIRE_ERROR(
      conv2d(zeros({1, 1, 3, 3}), zeros({1, 1, 2, 2}), {}, ConvOptions().padding(k2_61)),
      "conv2d: expected a shape whose element count fits in 64 bits, got [1, 1, "
      "4611686018427387906, 4611686018427387906]");
}

TEST_CASE("conv: strides of 2^31, 2^62 and 2^63 - 1 give one output position, quickly",
          "[conv][limits]") {
  // Every stride >= 3 gives the single window at the origin for in 5, kernel 3.
  const Tensor x = iota({2, 4, 5, 5}), w = iota({8, 4, 3, 3}), b = iota({8});
  for (const std::int64_t groups : {1, 2, 4}) {
    const Tensor wg = w.narrow(1, 0, 4 / groups).contiguous();
    const Tensor ref = conv2d(x, wg, b, ConvOptions().stride(3).groups(groups));
    REQUIRE(ref.shape() == Shape{2, 8, 1, 1});
    for (const std::int64_t s : {k2_31, k2_62, kMax}) {
      INFO("stride " << s << ", groups " << groups);
      const Tensor y = conv2d(x, wg, b, ConvOptions().stride(s).groups(groups));
      REQUIRE(ct_test::equal(y, ref));
      const Tensor y2 = conv2d(x, wg, b, ConvOptions().stride({s, 1}).groups(groups));
      REQUIRE(ct_test::equal(y2, conv2d(x, wg, b, ConvOptions().stride({3, 1}).groups(groups))));
    }
  }
  // 1-d and 3-d, and the gradients (the strided data gradient splits into stride phases).
  const Tensor x1 = ct_test::leaf({1, 3, 4}), w1 = ct_test::leaf({2, 3, 2});
  CT_REQUIRE_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        return conv1d(in[0], in[1], {}, ConvOptions().stride(k2_62));
      },
      (std::vector<Tensor>{x1, w1}));
  const Tensor x3 = ct_test::leaf({1, 2, 3, 3, 3}), w3 = ct_test::leaf({2, 2, 2, 2, 2});
  CT_REQUIRE_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        return conv3d(in[0], in[1], {}, ConvOptions().stride(k2_31));
      },
      (std::vector<Tensor>{x3, w3}));
}

TEST_CASE("conv: a huge padding with a huge stride reads only padding, and is fast",
          "[conv][limits]") {
  // padded 2^62 + 3, out (2^62 + 1) / 2^62 + 1 = 2; both windows lie in the padding.
  for (const std::int64_t channels : {1, 3}) {
    const Tensor x = ct_test::leaf({1, channels, 3}), w = ct_test::leaf({2, channels, 2});
    const Tensor b = ct_test::leaf({2});
    const auto opts = ConvOptions().padding(k2_61).stride(k2_62);
    const Tensor y = conv1d(x, w, b, opts);
    REQUIRE(y.shape() == Shape{1, 2, 2});
    REQUIRE(values(sum(y)) == values(sum(mul(b, 2.0))));
    const auto bv = values(b);
    REQUIRE(values(y) == std::vector<double>{bv[0], bv[0], bv[1], bv[1]});
    CT_REQUIRE_GRADCHECK(
        [opts](const std::vector<Tensor>& in) { return conv1d(in[0], in[1], in[2], opts); },
        (std::vector<Tensor>{x, w, b}));
  }
}

TEST_CASE("conv: a dilation of 2^40 or 2^61 whose kernel fits as one tap is fast and exact",
          "[conv][limits]") {
  SECTION("1-d: taps 2^40 apart, with a stride of 2^40") {
    // padded 4 + 2^41, dilated kernel 2^40 + 1, out 2; output 0 reads x[0] with tap 1, output 1
    // reads x[0] with tap 0 (its tap 1 lies past the input).
    const Tensor x = iota({1, 1, 4}), w = iota({1, 1, 2});
    const Tensor y = conv1d(x, w, {}, ConvOptions().dilation(k2_40).padding(k2_40).stride(k2_40));
    REQUIRE(y.shape() == Shape{1, 1, 2});
    REQUIRE(values(y) == std::vector<double>{1.0 * 2.0, 1.0 * 1.0});
  }
  SECTION("SAME with a dilation of 2^61: only the centre tap reads the input") {
    // JAX's SAME: out = in, total padding (in - 1) + 2^62 + 1 - in = 2^62, split evenly; taps at
    // o - 2^61, o and o + 2^61 of the input.
    for (const std::int64_t channels : {1, 2}) {
      const Tensor x = ct_test::leaf({1, channels, 3, 4}), w = ct_test::leaf({3, channels, 3, 3});
      const auto opts = ConvOptions().padding(PaddingKind::Same).dilation(k2_61);
      const Tensor y = conv2d(x, w, {}, opts);
      REQUIRE(y.shape() == Shape{1, 3, 3, 4});
      const Tensor centre = w.narrow(2, 1, 1).narrow(3, 1, 1).contiguous();
      REQUIRE(ct_test::allclose(y, conv2d(x, centre), 1e-12, 1e-12));
      CT_REQUIRE_GRADCHECK(
          [opts](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], {}, opts); },
          (std::vector<Tensor>{x, w}));
    }
  }
  SECTION("a dilated kernel past 2^63 - 1 is refused") {
    CT_REQUIRE_ERROR(conv1d(zeros({1, 1, 5}), zeros({1, 1, 3}), {},
                            ConvOptions().padding(PaddingKind::Same).dilation(k2_62)),
                     "conv1d: expected the dilated kernel extent dilation * (kernel - 1) + 1 to "
                     "fit in 64 bits, got 4611686018427387904 * (3 - 1) + 1 in dim 0");
    CT_REQUIRE_ERROR(conv1d(zeros({1, 1, 5}), zeros({1, 1, 2}), {}, ConvOptions().dilation(kMax)),
                     "got 9223372036854775807 * (2 - 1) + 1 in dim 0");
  }
}

TEST_CASE("conv: SAME padding with a huge stride is JAX's ceil(in / stride)", "[conv][limits]") {
  const Tensor x = iota({1, 2, 5, 5}), w = iota({3, 2, 3, 3});
  const Tensor origin = conv2d(x, w, {}, ConvOptions().stride(3));  // the window at (0, 0)
  for (const std::int64_t s : {std::int64_t{5}, k2_31, k2_62, kMax}) {
    INFO("stride " << s);
    // out = 1, total padding max(3 - 5, 0) = 0.
    for (const auto mode : {PaddingKind::Same, PaddingKind::SameLower}) {
      const Tensor y = conv2d(x, w, {}, ConvOptions().padding(mode).stride(s));
      REQUIRE(ct_test::equal(y, origin));
    }
  }
  // A kernel larger than the input: out 1, total padding 7 - 2 = 5, low 2 (SAME) or 3 (LOWER).
  const Tensor x1 = iota({1, 1, 2}), w1 = iota({1, 1, 7});
  REQUIRE(values(conv1d(x1, w1, {}, ConvOptions().padding(PaddingKind::Same).stride(kMax))) ==
          std::vector<double>{1 * 3.0 + 2 * 4.0});
  REQUIRE(values(conv1d(x1, w1, {}, ConvOptions().padding(PaddingKind::SameLower).stride(kMax))) ==
          std::vector<double>{1 * 4.0 + 2 * 5.0});
}

TEST_CASE("conv: input dilation past 2^63 - 1 is refused; 2^61 with a stride of 2^62 is exact",
          "[conv][limits]") {
  const Tensor x = iota({1, 1, 3}), w = full({1, 1, 1}, 2.0, kFloat64);
  CT_REQUIRE_ERROR(conv(x, w, {}, ConvOptions().input_dilation(k2_62)),
                   "conv: expected the dilated input extent (in - 1) * input_dilation + 1 to fit "
                   "in 64 bits, got (3 - 1) * 4611686018427387904 + 1 in dim 0");
  // x~ has x[0] at 0, x[1] at 2^61, x[2] at 2^62; outputs at 0 and 2^62.
  const Tensor y = conv(x, w, {}, ConvOptions().input_dilation(k2_61).stride(k2_62));
  REQUIRE(values(y) == std::vector<double>{2.0, 6.0});
  CT_REQUIRE_ERROR(conv(x, w, {}, ConvOptions().input_dilation(k2_61).padding(k2_62)),
                   "conv: expected the padded input extent to fit in 64 bits, got input 3 "
                   "(dilated 4611686018427387905) + padding (4611686018427387904, "
                   "4611686018427387904) in dim 0");
}

TEST_CASE("conv: groups and shapes at the limits", "[conv][limits]") {
  CT_REQUIRE_ERROR(conv1d(zeros({1, 2, 3}), zeros({2, 1, 1}), {}, ConvOptions().groups(kMax)),
                   "conv1d: expected input channels divisible by groups, got C = 2, groups = "
                   "9223372036854775807");
  // Shape-level: channels near 2^63 (no tensor could hold them).
  CT_REQUIRE_ERROR(conv_output_shape({2, 4, 3}, {kMax, 4, 1}),
                   "conv: expected a shape whose element count fits in 64 bits, got [2, "
                   "9223372036854775807, 3]");
  REQUIRE(conv_output_shape({1, 4, 1}, {k2_62, 1, 1}, ConvOptions().groups(4)) ==
          Shape{1, k2_62, 1});
}

// ---- conv_transpose

TEST_CASE("conv_transpose: extreme strides, paddings and output paddings", "[conv][limits]") {
  const Tensor x = iota({1, 1, 3}), w = iota({1, 1, 2});
  // (3 - 1) * 2^62 overflows before the padding could crop it.
  CT_REQUIRE_ERROR(conv_transpose1d(x, w, {}, ConvTransposeOptions().stride(k2_62)),
                   "conv_transpose1d: expected the uncropped output extent (input - 1) * stride + "
                   "dilation * (kernel - 1) + output_padding + 1 to fit in 64 bits, got (3 - 1) * "
                   "4611686018427387904 + 1 * (2 - 1) + 0 + 1 in dim 0");
  // (2 - 1) * 2^62 + 2 fits; the output [1, 1, 2^62 + 2] is refused by its size.
  CT_REQUIRE_ERROR(conv_transpose1d(iota({1, 1, 2}), w, {}, ConvTransposeOptions().stride(k2_62)),
                   "conv_transpose1d: expected a tensor of at most");
  REQUIRE(conv_transpose_output_shape({1, 1, 2}, {1, 1, 2}, ConvTransposeOptions().stride(k2_62)) ==
          Shape{1, 1, k2_62 + 2});
  // Cropped back to 3 by a padding of 2^61 - 1 + ... : full = 2^62 + 2, len = full - 2 p = 4 for
  // p = 2^61 - 1. Both inputs' taps lie in the cropped-away padding: the output is the bias.
  const Tensor b = full({1}, 0.5, kFloat64);
  const Tensor y = conv_transpose1d(iota({1, 1, 2}), w, b,
                                    ConvTransposeOptions().stride(k2_62).padding(k2_61 - 1));
  REQUIRE(values(y) == std::vector<double>{0.5, 0.5, 0.5, 0.5});
  // The largest stride with an output_padding just below it: (1 - 1) * s + 1 + (2^63 - 2) = 2^63
  // - 1.
  REQUIRE(conv_transpose_output_shape(
              {1, 1, 1}, {1, 1, 1}, ConvTransposeOptions().stride(kMax).output_padding(kMax - 1)) ==
          Shape{1, 1, kMax});
  CT_REQUIRE_ERROR(conv_transpose1d(iota({1, 1, 1}), iota({1, 1, 2}), {},
                                    ConvTransposeOptions().stride(kMax).output_padding(kMax - 1)),
                   "expected the uncropped output extent");
  // A padding larger than the output: a negative size, named by the real values.
  CT_REQUIRE_ERROR(conv_transpose1d(x, w, {}, ConvTransposeOptions().padding(kMax)),
                   "conv_transpose1d: expected a positive output size, got a value below -2^63 in "
                   "dim 0: (input - 1) * stride - 2 * padding + dilation * (kernel - 1) + "
                   "output_padding + 1 = (3 - 1) * 1 - 2 * 9223372036854775807 + 1 * (2 - 1) + 0 + "
                   "1");
  CT_REQUIRE_ERROR(conv_transpose1d(x, w, {}, ConvTransposeOptions().padding(k2_61)),
                   "got -4611686018427387900 in dim 0");
  CT_REQUIRE_ERROR(conv_transpose1d(x, w, {}, ConvTransposeOptions().dilation(kMax)),
                   "conv_transpose1d: expected the dilated kernel extent");
  CT_REQUIRE_ERROR(
      conv_transpose1d(x, w, {}, ConvTransposeOptions().stride(2).output_padding(kMax)),
      "expected output_padding smaller than stride or dilation, got output_padding = "
      "9223372036854775807, stride = 2, dilation = 1 (dim 0)");
  // C_out = weight.size(1) * groups, shape-level (a real weight's C_in * C_out/groups bounds it).
  CT_REQUIRE_ERROR(
      conv_transpose_output_shape({1, 4, 1}, {4, k2_62, 1}, ConvTransposeOptions().groups(4)),
      "conv_transpose: expected the output channels C_out = weight.size(1) * groups to fit in 64 "
      "bits, got 4611686018427387904 * 4");
}

TEST_CASE(
    "conv / conv_transpose: an input with an empty spatial extent gives the bias, and "
    "its gradients",
    "[conv][limits]") {
  // Found by the ops fuzzer: the implicit-GEMM plan divided by the empty extent (SIGFPE) in the
  // data gradient of a transposed conv, which is a forward conv of dy.
  const Tensor x = zeros({4, 4, 0}, kFloat64).requires_grad_();
  const Tensor w = full({4, 3, 3}, 0.25, kFloat64).requires_grad_();
  const Tensor b = full({6}, 0.5, kFloat64).requires_grad_();
  const auto o = ConvTransposeOptions().stride(2).dilation(2).groups(2);
  Tensor y = conv_transpose1d(x, w, b, o);  // (0 - 1) * 2 + 2 * (3 - 1) + 1 = 3 outputs
  REQUIRE(y.shape() == Shape{4, 6, 3});
  REQUIRE(values(y) == std::vector<double>(72, 0.5));
  sum(y).backward();
  REQUIRE(x.grad().shape() == Shape{4, 4, 0});
  REQUIRE(values(w.grad()) == std::vector<double>(36, 0.0));
  REQUIRE(values(b.grad()) == std::vector<double>(6, 12.0));
  // The forward conv of an empty extent with enough padding to give outputs.
  const Tensor x2 = zeros({2, 4, 0}, kFloat64).requires_grad_();
  Tensor y2 = conv1d(x2, full({2, 2, 3}, 1.0, kFloat64), b.detach().narrow(0, 0, 2),
                     ConvOptions().padding(2).groups(2));
  REQUIRE(y2.shape() == Shape{2, 2, 2});
  REQUIRE(values(y2) == std::vector<double>(8, 0.5));
  sum(y2).backward();
  REQUIRE(x2.grad().shape() == Shape{2, 4, 0});
  // An empty batch with a padding of 2^61: the output [0, 2, 2^61 + 1] is empty, and no plan may
  // be sized from its geometry (found by the ops fuzzer: a 2^62-element workspace overflowed).
  const Tensor x3 = zeros({0, 1, 3}, kFloat64).requires_grad_();
  const Tensor w3 = full({2, 1, 3}, 1.0, kFloat64).requires_grad_();
  Tensor y3 = conv1d(x3, w3, {}, ConvOptions().stride(2).padding(k2_61));
  REQUIRE(y3.shape() == Shape{0, 2, k2_61 + 1});
  sum(y3).backward();
  REQUIRE(x3.grad().shape() == Shape{0, 1, 3});
  REQUIRE(values(w3.grad()) == std::vector<double>(6, 0.0));
}

TEST_CASE("conv_transpose: a huge stride with a live output and its gradients", "[conv][limits]") {
  // x [1, 2, 1], stride 2^40, kernel 3, output_padding 1, padding 1: full 3 + 1 = 4, len 2,
  // covering coordinates 1 and 2 of the one input's taps: y[o, j] = sum_c x[c] w[c, o, j + 1].
  const Tensor x = ct_test::leaf({1, 2, 1}), w = ct_test::leaf({2, 3, 3});
  const auto opts = ConvTransposeOptions().stride(k2_40).padding(1).output_padding(1);
  const Tensor y = conv_transpose1d(x, w, {}, opts);
  REQUIRE(y.shape() == Shape{1, 3, 2});
  const auto xv = values(x), wv = values(w), yv = values(y);
  for (int o = 0; o < 3; ++o)
    for (int j = 0; j < 2; ++j) {
      double want = 0;
      for (int c = 0; c < 2; ++c) want += xv[c] * wv[(c * 3 + o) * 3 + j + 1];
      REQUIRE(yv[o * 2 + j] == Approx(want).margin(1e-15));
    }
  CT_REQUIRE_GRADCHECK(
      [opts](const std::vector<Tensor>& in) { return conv_transpose1d(in[0], in[1], {}, opts); },
      (std::vector<Tensor>{x, w}));
  // With x of length 2 the same stride needs a padding that crops 2^40 away: all zeros.
  const auto crop = ConvTransposeOptions().stride(k2_40).padding(k2_40 / 2);
  const Tensor x2 = ct_test::leaf({1, 2, 2});
  const Tensor y2 = conv_transpose1d(x2, w, {}, crop);
  REQUIRE(y2.shape() == Shape{1, 3, 3});
  REQUIRE(values(y2) == std::vector<double>(9, 0.0));
  const Tensor w2 = copy_leaf(w);
  sum(conv_transpose1d(x2, w2, {}, crop)).backward();
  REQUIRE(values(x2.grad()) == std::vector<double>(4, 0.0));
  REQUIRE(values(w2.grad()) == std::vector<double>(18, 0.0));
}

// ---- conv_general

TEST_CASE("conv_general: extreme window strides, dilations and group counts", "[conv][limits]") {
  const Tensor lhs = iota({1, 5, 5, 2}), rhs = iota({3, 3, 2, 4});  // NHWC, HWIO
  ConvGeneralOptions o;
  o.dimension_numbers = {"NHWC", "HWIO", "NHWC"};
  o.window_strides = {k2_62, kMax};
  const Tensor y = conv_general(lhs, rhs, o);
  REQUIRE(y.shape() == Shape{1, 1, 1, 4});
  o.window_strides = {3, 3};
  REQUIRE(ct_test::equal(y, conv_general(lhs, rhs, o)));
  o.padding_kind = PaddingKind::Same;
  o.window_strides = {kMax, kMax};
  REQUIRE(ct_test::equal(conv_general(lhs, rhs, o), y));  // SAME: out 1, no padding
  o.padding_kind = PaddingKind::Explicit;
  o.padding = {{k2_62, k2_62}, {0, 0}};
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, o),
                   "conv_general: expected the padded input extent to fit in 64 bits");
  o.padding = {{-1, 0}, {0, 0}};  // negative padding crops, as JAX's does; all of it is refused
  {
    ConvGeneralOptions cropped = o;
    cropped.padding = {{0, 0}, {0, 0}};
    REQUIRE(ct_test::equal(conv_general(lhs, rhs, o),
                           conv_general(narrow(lhs, 1, 1, 4).contiguous(), rhs, cropped)));
  }
  for (const std::int64_t lo : {-kMax, std::numeric_limits<std::int64_t>::min()}) {
    o.padding = {{lo, 0}, {0, 0}};
    CT_REQUIRE_ERROR(conv_general(lhs, rhs, o),
                     "conv_general: expected negative padding to leave part of the (lhs dilated) "
                     "input");
  }
  o.padding.clear();
  o.window_strides.clear();
  o.lhs_dilation = {k2_62, 1};
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, o), "conv_general: expected the dilated input extent");
  o.lhs_dilation.clear();
  o.rhs_dilation = {1, kMax};
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, o), "conv_general: expected the dilated kernel extent");
  o.rhs_dilation.clear();
  o.feature_group_count = kMax;
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, o),
                   "conv_general: expected input channels divisible by groups");
  o.feature_group_count = 1;
  o.batch_group_count = kMax;
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, o),
                   "conv_general: expected the batch size divisible by batch_group_count");
}

// ---- signal

TEST_CASE("correlate / convolve: sizes at the limits", "[signal][limits]") {
  // An expanded (stride 0) operand of 2^61 elements: the full output 2^61 + 1 floats of 8 bytes
  // does not fit, and is refused under the op's name before anything is allocated.
  const Tensor big = expand(ones({1}, kFloat64), {k2_61});
  CT_REQUIRE_ERROR(correlate(big, ones({2}, kFloat64)),
                   "correlate: expected a tensor of at most 9223372036854775807 bytes, got shape "
                   "[2305843009213693953]");
  CT_REQUIRE_ERROR(convolve(big, ones({2}, kFloat64), "same"),
                   "convolve: expected a tensor of at most 9223372036854775807 bytes");
  const Tensor huge = expand(ones({1}, kFloat64), {kMax});
  CT_REQUIRE_ERROR(correlate(huge, ones({2}, kFloat64)),
                   "correlate: expected the full output extent n1 + n2 - 1 to fit in 64 bits, got "
                   "9223372036854775807 + 2 - 1 in dim 0");
  // 'valid' of a large and a small operand: a small output, computed.
  const Tensor mid = expand(ones({1}, kFloat64), {1000});
  REQUIRE(values(correlate(mid, ones({998}, kFloat64), "valid")) ==
          std::vector<double>{998.0, 998.0, 998.0});
}

// ---- correlation

TEST_CASE("correlation: extreme strides, paddings, displacements and kernel sizes",
          "[correlation][limits]") {
  const Tensor f1 = ct_test::leaf({1, 2, 5, 5}), f2 = ct_test::leaf({1, 2, 5, 5});
  SECTION("a huge stride1 gives one position") {
    const auto base = CorrelationOptions().max_displacement(1);
    const Tensor ref = correlation(f1, f2, CorrelationOptions(base).stride1(3));
    REQUIRE(ref.shape() == Shape{1, 9, 1, 1});
    for (const std::int64_t s : {k2_31, k2_62, kMax})
      REQUIRE(ct_test::equal(correlation(f1, f2, CorrelationOptions(base).stride1(s)), ref));
  }
  SECTION("a huge stride2 leaves one displacement") {
    const auto base = CorrelationOptions().max_displacement(1).kernel_size(3);
    const Tensor ref = correlation(f1, f2, CorrelationOptions(base).stride2(2));
    REQUIRE(ref.shape() == Shape{1, 1, 1, 1});
    for (const std::int64_t s : {k2_31, kMax})
      REQUIRE(ct_test::equal(correlation(f1, f2, CorrelationOptions(base).stride2(s)), ref));
  }
  SECTION("a padding and displacement of 2^40: one live displacement, the direct kernels") {
    // border 2^40, padded 5 + 2^41, out ceil(5 / 2^41) = 1 at input (0, 0); displacements of
    // +-2^40 leave the input, so only the centre one is non-zero: f1[:, 0, 0] . f2[:, 0, 0] / C.
    const auto opts =
        CorrelationOptions().padding(k2_40).max_displacement(k2_40).stride1(k2_40 * 2).stride2(
            k2_40);
    const Tensor y = correlation(f1, f2, opts);
    REQUIRE(y.shape() == Shape{1, 9, 1, 1});
    const auto a = values(f1), b = values(f2), yv = values(y);
    for (int e = 0; e < 9; ++e)
      REQUIRE(yv[static_cast<std::size_t>(e)] ==
              Approx(e == 4 ? (a[0] * b[0] + a[25] * b[25]) / 2 : 0.0).margin(1e-15));
    CT_REQUIRE_GRADCHECK(
        [opts](const std::vector<Tensor>& in) { return correlation(in[0], in[1], opts); },
        (std::vector<Tensor>{f1, f2}));
  }
  SECTION("the direct kernels agree with the padded ones where both apply") {
    // A padding of 130 on 5 x 5 maps takes the direct kernels (a padded plane of 265^2 values);
    // with padding 2 the padded ones run. Output centres sit at input rows oy + border - padding,
    // so rows 128 .. 130 of the first are rows 0 .. 2 of the second (input rows 1 .. 3); with dy
    // zero elsewhere, the gradients agree too.
    const auto small = CorrelationOptions().padding(2).max_displacement(2).kernel_size(3);
    const auto large = CorrelationOptions().padding(130).max_displacement(2).kernel_size(3);
    const Tensor a1 = copy_leaf(f1), a2 = copy_leaf(f2), b1 = copy_leaf(f1), b2 = copy_leaf(f2);
    const Tensor ys = correlation(a1, a2, small), yl = correlation(b1, b2, large);
    REQUIRE(ys.shape() == Shape{1, 25, 3, 3});
    REQUIRE(yl.shape() == Shape{1, 25, 259, 259});
    const Tensor crop = yl.narrow(2, 128, 3).narrow(3, 128, 3);
    REQUIRE(ct_test::allclose(crop, ys, 1e-12, 1e-12));
    const Tensor dy = ct_test::leaf({1, 25, 3, 3}).detach();
    sum(mul(ys, dy)).backward();
    sum(mul(crop, dy)).backward();
    REQUIRE(ct_test::allclose(b1.grad(), a1.grad(), 1e-12, 1e-12));
    REQUIRE(ct_test::allclose(b2.grad(), a2.grad(), 1e-12, 1e-12));
  }
  SECTION("refusals name the real values") {
    CT_REQUIRE_ERROR(correlation(f1, f2, CorrelationOptions().padding(kMax)),
                     "correlation: expected the padded extent input + 2 * padding to fit in 64 "
                     "bits, got 5 + 2 * 9223372036854775807");
    CT_REQUIRE_ERROR(correlation(f1, f2, CorrelationOptions().max_displacement(kMax)),
                     "correlation: expected twice the border 2 * (max_displacement + (kernel_size "
                     "- 1) / 2) to fit in 64 bits, got max_displacement = 9223372036854775807");
    CT_REQUIRE_ERROR(
        correlation(f1, f2, CorrelationOptions().max_displacement(k2_61).padding(k2_61)),
        "correlation: expected the displacement count (2 * (max_displacement / "
        "stride2) + 1)^2 to fit in 64 bits, got max_displacement = "
        "2305843009213693952, stride2 = 1");
    CT_REQUIRE_ERROR(
        correlation(f1, f2, CorrelationOptions().kernel_size((k2_31 << 1) + 1).padding(k2_31)),
        "correlation: expected the patch size kernel_size^2 * C to fit in 64 bits, "
        "got kernel_size = 4294967297, C = 2");
    CT_REQUIRE_ERROR(correlation(f1, f2, CorrelationOptions().kernel_size(kMax)),
                     "correlation: expected padded inputs larger than twice the border "
                     "(max_displacement + (kernel_size - 1) / 2 = 4611686018427387903), got padded "
                     "5 x 5");
    // Fits, but larger than the padded input.
    CT_REQUIRE_ERROR(
        correlation(f1, f2, CorrelationOptions().max_displacement(k2_40)),
        "correlation: expected padded inputs larger than twice the border "
        "(max_displacement + (kernel_size - 1) / 2 = 1099511627776), got padded 5 x 5");
    // A valid geometry with more output bytes than any allocator gives: one position (padding =
    // border - 2 on 5 x 5 maps), (2 * 2^30 + 1)^2 displacements.
    CT_REQUIRE_ERROR(
        correlation(f1, f2,
                    CorrelationOptions().padding(k2_40 - 2).max_displacement(k2_40).stride2(1024)),
        "correlation: expected a tensor of at most 9223372036854775807 bytes, got "
        "shape [1, 4611686022722355201, 1, 1]");
  }
}

// ---- modules

TEST_CASE("conv modules: option setters and layer sizes at the limits", "[conv][limits]") {
  CT_REQUIRE_ERROR(nn::ConvNdOptions(k2_40, 1, 1, 1), "ConvNdOptions: expected rank 1 to 8, got");
  CT_REQUIRE_ERROR(nn::ConvTransposeNdOptions(kMax, 1, 1, 1),
                   "ConvTransposeNdOptions: expected rank 1 to 8, got 9223372036854775807");
  CT_REQUIRE_ERROR(nn::Conv2d(nn::Conv2dOptions(k2_40, k2_40, k2_31)),
                   "Conv2d: expected a shape whose element count fits in 64 bits, got "
                   "[1099511627776, 1099511627776, 2147483648, 2147483648]");
  CT_REQUIRE_ERROR(nn::Conv1d(nn::Conv1dOptions(1 << 20, 1 << 20, 1 << 22)),
                   "Conv1d: expected a tensor of at most");
  CT_REQUIRE_ERROR(nn::ConvTranspose1d(nn::ConvTranspose1dOptions(k2_40, k2_40, k2_40)),
                   "ConvTranspose1d: expected a shape whose element count fits in 64 bits");
  // Valid extreme options reach the op, which gives its answer.
  nn::Conv2d layer(nn::Conv2dOptions(2, 3, 3).stride(kMax).padding("same"));
  REQUIRE(layer(zeros({1, 2, 5, 5})).shape() == Shape{1, 3, 1, 1});
  nn::Conv1d padded(nn::Conv1dOptions(1, 1, 2).padding(kMax));
  CT_REQUIRE_ERROR(padded(zeros({1, 1, 3})), "conv1d: expected the padded input extent");
}

// ---- seeded sweep

// Magnitudes spread over every bit length, with the edges (0, 1, 2^k, 2^k +- 1, 2^63 - 1) often.
class Wide {
 public:
  explicit Wide(std::uint64_t seed) : rng_(seed) {}
  std::int64_t small(std::int64_t lo, std::int64_t hi) {
    return lo + static_cast<std::int64_t>(rng_() % static_cast<std::uint64_t>(hi - lo + 1));
  }
  // A value >= lo (lo in {0, 1}); now and then lo - 1 to reach the sign checks.
  std::int64_t value(std::int64_t lo) {
    switch (small(0, 9)) {
      case 0:
        return lo - small(0, 1);
      case 1:
      case 2:
      case 3:
        return small(lo, 4);
      case 4:
        return kMax - small(0, 2);
      default: {
        const int bits = static_cast<int>(small(2, 62));
        const std::int64_t p = std::int64_t{1} << bits;
        return std::max<std::int64_t>(lo, p + small(-2, 2));
      }
    }
  }

 private:
  std::mt19937_64 rng_;
};

bool fits(i128 v) {
  return v >= std::numeric_limits<std::int64_t>::min() && v <= kMax;
}

// The output shape from the definition in 128-bit arithmetic, or nullopt where the op must refuse.
// Every check that the op makes on these arguments is restated here.
std::optional<Shape> expected_shape(const Shape& shape, std::size_t item) {
  i128 n = 1;
  for (const auto d : shape) {
    n *= d;
    if (n > kMax) return std::nullopt;
  }
  if (n * static_cast<i128>(item) > kMax) return std::nullopt;
  return shape;
}

std::optional<Shape> expect_conv(const Shape& x, const Shape& w, const std::vector<i128>& st,
                                 const std::vector<std::pair<i128, i128>>& pad, int mode,
                                 const std::vector<i128>& dil, const std::vector<i128>& di,
                                 std::int64_t groups, bool* too_big) {
  const std::size_t s = x.size() - 2;
  if (groups < 1 || x[1] % groups != 0 || w[1] != x[1] / groups || w[0] % groups != 0)
    return std::nullopt;
  Shape out{x[0], w[0]};
  for (std::size_t d = 0; d < s; ++d) {
    if (st[d] < 1 || dil[d] < 1 || di[d] < 1) return std::nullopt;
    const i128 in = x[d + 2], k = w[d + 2];
    const i128 dk = dil[d] * (k - 1) + 1, in_eff = in == 0 ? 0 : (in - 1) * di[d] + 1;
    if (!fits(dk) || !fits(in_eff)) return std::nullopt;
    i128 lo = pad[d].first, hi = pad[d].second;
    if (mode == 1) {
      lo = hi = 0;
    } else if (mode >= 2) {
      // SAME on the input-dilated extent.
      const i128 o = (in_eff + st[d] - 1) / st[d];
      const i128 total = std::max<i128>((o - 1) * st[d] + dk - in_eff, 0);
      lo = mode == 2 ? total / 2 : total - total / 2;
      hi = total - lo;
    } else if (lo < 0 || hi < 0) {
      return std::nullopt;
    }
    const i128 padded = in_eff + lo + hi;
    if (!fits(padded) || padded < dk) return std::nullopt;
    out.push_back(static_cast<std::int64_t>((padded - dk) / st[d] + 1));
  }
  auto r = expected_shape(out, 8);
  *too_big = r && checked::numel(out, "test") > 4096;
  return r;
}

std::string first_words(const std::string& msg, std::size_t n) {
  return msg.substr(0, std::min(n, msg.size()));
}

// Runs op() and checks it against `want`: an Error "<name>: expected ..." where want is empty,
// else a tensor of that shape.
template <class F>
void check_case(const std::string& name, const std::optional<Shape>& want, F&& op) {
  try {
    const Tensor y = op();
    INFO(name << " gave " << to_string(y.shape()));
    REQUIRE(want.has_value());
    REQUIRE(y.shape() == *want);
  } catch (const Error& e) {
    INFO(name << " refused: " << e.message());
    REQUIRE_FALSE(want.has_value());
    REQUIRE(first_words(e.message(), name.size() + 2) == name + ": ");
    REQUIRE(e.message().find("expected") != std::string::npos);
  }
}

TEST_CASE("conv / conv_transpose / correlation / signal: a seeded sweep of extreme arguments",
          "[conv][limits][sweep]") {
  Wide r(0x11c0417);
  int ran = 0, refused_checked = 0, shape_only = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    const int s = static_cast<int>(r.small(1, 3));
    const int which = static_cast<int>(r.small(0, 9));
    INFO("iteration " << iter << ", op " << which << ", rank " << s);
    if (which <= 4) {  // conv
      const std::int64_t groups = r.small(0, 9) == 0 ? r.value(1) : r.small(1, 2);
      const std::int64_t cg = r.small(1, 2), kg = r.small(1, 2);
      const std::int64_t g = std::max<std::int64_t>(std::min<std::int64_t>(groups, 2), 1);
      Shape x{r.small(1, 2), cg * g}, w{kg * g, cg};
      for (int d = 0; d < s; ++d) x.push_back(r.small(1, 5));
      for (int d = 0; d < s; ++d) w.push_back(r.small(1, 3));
      std::vector<i128> st, dil, di;
      std::vector<std::pair<i128, i128>> pad;
      std::vector<std::int64_t> st64, dil64, di64;
      std::vector<std::pair<std::int64_t, std::int64_t>> pad64;
      for (int d = 0; d < s; ++d) {
        st64.push_back(r.value(1));
        dil64.push_back(r.small(0, 2) == 0 ? r.value(1) : 1);
        di64.push_back(r.small(0, 4) == 0 ? r.value(1) : 1);
        const std::int64_t lo = r.value(0);
        pad64.emplace_back(lo, r.small(0, 1) ? lo : r.value(0));
        st.push_back(st64.back());
        dil.push_back(dil64.back());
        di.push_back(di64.back());
        pad.emplace_back(pad64.back().first, pad64.back().second);
      }
      const int mode = static_cast<int>(r.small(0, 4)) % 4;  // explicit twice as often
      ConvOptions o;
      o.stride(st64).dilation(dil64).input_dilation(di64).groups(groups);
      if (mode == 0)
        o.padding(pad64);
      else
        o.padding(mode == 1   ? PaddingKind::Valid
                  : mode == 2 ? PaddingKind::Same
                              : PaddingKind::SameLower);
      bool too_big = false;
      const auto want = expect_conv(x, w, st, pad, mode, dil, di, groups, &too_big);
      if (too_big) {
        // Too large to compute here: the shape function answers for the op.
        REQUIRE(conv_output_shape(x, w, o) == *want);
        ++shape_only;
        continue;
      }
      const Tensor xt = ct_test::leaf(x), wt = ct_test::leaf(w);
      check_case("conv", want, [&] { return conv(xt, wt, {}, o); });
      if (want && iter % 4 == 0) {
        sum(conv(xt, wt, {}, o)).backward();
        REQUIRE(xt.grad().shape() == x);
        REQUIRE(wt.grad().shape() == w);
      }
      want ? ++ran : ++refused_checked;
    } else if (which <= 6) {  // conv_transpose
      const std::int64_t groups = r.small(1, 2);
      Shape x{1, groups * r.small(1, 2)}, w{x[1], r.small(1, 2)};
      for (int d = 0; d < s; ++d) x.push_back(r.small(1, 4));
      for (int d = 0; d < s; ++d) w.push_back(r.small(1, 3));
      std::vector<std::int64_t> st, pad, opad, dil;
      std::optional<Shape> want;
      Shape out{x[0], w[1] * groups};
      bool ok = true;
      for (int d = 0; d < s; ++d) {
        st.push_back(r.value(1));
        pad.push_back(r.value(0));
        dil.push_back(r.small(0, 2) == 0 ? r.value(1) : 1);
        const std::int64_t most = std::max(st.back(), dil.back());
        opad.push_back(r.small(0, 2) == 0 ? r.value(0) : r.small(0, 1) ? most - 1 : 0);
        const i128 k = w[static_cast<std::size_t>(d) + 2], in = x[static_cast<std::size_t>(d) + 2];
        const i128 dk = static_cast<i128>(dil.back()) * (k - 1) + 1;
        const i128 full = (in - 1) * st.back() + dk + opad.back();
        const i128 len = full - 2 * static_cast<i128>(pad.back());
        ok = ok && st.back() >= 1 && dil.back() >= 1 && pad.back() >= 0 && opad.back() >= 0 &&
             (opad.back() < st.back() || opad.back() < dil.back()) && fits(dk) && fits(full) &&
             len >= 1;
        if (ok) out.push_back(static_cast<std::int64_t>(len));
      }
      if (ok) want = expected_shape(out, 8);
      const auto o =
          ConvTransposeOptions().stride(st).padding(pad).output_padding(opad).dilation(dil).groups(
              groups);
      if (want && checked::numel(*want, "test") > 4096) {
        REQUIRE(conv_transpose_output_shape(x, w, o) == *want);
        ++shape_only;
        continue;
      }
      const Tensor xt = ct_test::leaf(x), wt = ct_test::leaf(w);
      check_case("conv_transpose", want, [&] { return conv_transpose(xt, wt, {}, o); });
      if (want && iter % 2 == 0) {
        sum(conv_transpose(xt, wt, {}, o)).backward();
        REQUIRE(xt.grad().shape() == x);
      }
      want ? ++ran : ++refused_checked;
    } else if (which <= 8) {  // correlation
      const std::int64_t c = r.small(1, 2), h = r.small(1, 5), wd = r.small(1, 5);
      const std::int64_t k = r.small(0, 3) == 0 ? r.value(1) : 2 * r.small(0, 1) + 1;
      const std::int64_t md = r.small(0, 1) ? r.value(0) : r.small(0, 2);
      const std::int64_t s1 = r.value(1), s2 = r.value(1);
      const std::int64_t pad = r.small(0, 1) ? r.value(0) : (r.small(0, 1) ? md : 0);
      std::optional<Shape> want;
      if (k >= 1 && k % 2 == 1 && md >= 0 && s1 >= 1 && s2 >= 1 && pad >= 0) {
        const i128 rad = (k - 1) / 2, border = static_cast<i128>(md) + rad;
        const i128 hp = h + 2 * static_cast<i128>(pad), wp = wd + 2 * static_cast<i128>(pad);
        const i128 grid = 2 * static_cast<i128>(md / s2) + 1;
        const auto ceil_div = [](i128 a, i128 b) { return a <= 0 ? i128(0) : (a + b - 1) / b; };
        const i128 ho = ceil_div(hp - 2 * border, s1), wo = ceil_div(wp - 2 * border, s1);
        if (fits(2 * border) && fits(hp) && fits(wp) && fits(grid) && fits(grid * grid) &&
            fits(static_cast<i128>(k) * k * c) && ho >= 1 && wo >= 1)
          want = expected_shape({1, static_cast<std::int64_t>(grid * grid),
                                 static_cast<std::int64_t>(ho), static_cast<std::int64_t>(wo)},
                                8);
      }
      if (want && checked::numel(*want, "test") > 4096) continue;  // too large to run here
      const Tensor f1 = ct_test::leaf({1, c, h, wd}), f2 = ct_test::leaf({1, c, h, wd});
      const auto o =
          CorrelationOptions().kernel_size(k).max_displacement(md).stride1(s1).stride2(s2).padding(
              pad);
      check_case("correlation", want, [&] { return correlation(f1, f2, o); });
      if (want && iter % 2 == 0) {
        sum(correlation(f1, f2, o)).backward();
        REQUIRE(f1.grad().shape() == f1.shape());
        REQUIRE(f2.grad().shape() == f2.shape());
      }
      want ? ++ran : ++refused_checked;
    } else {  // correlate / convolve
      Shape a, b, out;
      const int mode = static_cast<int>(r.small(0, 2));
      bool a_larger = true, b_larger = true;
      for (int d = 0; d < s; ++d) {
        a.push_back(r.small(1, 5));
        b.push_back(r.small(1, 5));
        a_larger = a_larger && a.back() >= b.back();
        b_larger = b_larger && b.back() >= a.back();
        out.push_back(mode == 0 ? a.back() + b.back() - 1
                      : mode == 1
                          ? a.back()
                          : std::max(a.back(), b.back()) - std::min(a.back(), b.back()) + 1);
      }
      const std::optional<Shape> want =
          mode == 2 && !a_larger && !b_larger ? std::nullopt : std::optional<Shape>(out);
      const char* names[] = {"full", "same", "valid"};
      const bool conv_flip = r.small(0, 1) == 1;
      check_case(conv_flip ? "convolve" : "correlate", want, [&] {
        return conv_flip ? convolve(ct_test::leaf(a), ct_test::leaf(b), names[mode])
                         : correlate(ct_test::leaf(a), ct_test::leaf(b), names[mode]);
      });
      want ? ++ran : ++refused_checked;
    }
  }
  INFO("ran " << ran << ", refused " << refused_checked << ", shape only " << shape_only);
  // The draws must reach all three outcomes often, or the sweep proves little.
  CHECK(ran > 300);
  CHECK(refused_checked > 300);
  CHECK(shape_only > 30);
}

}  // namespace
