// Exact results and gradients of ops/conv with small integers (|x| <= 4) against nested loops
// written from the definition (tests/support/conv_reference.h): y[n, k, o] = b[k] + sum_{c in
// group(k), r} x~[n, c, o * stride + r * dilation - pad_lo] * w[k, c, r], x~ being x dilated by
// the input dilation (holes and padding read as 0); dx, dw, db from the same triples.
// conv_transpose against its scatter definition, conv_general through its layout letters, and
// the padding-mode names.
#include <cstdint>
#include <vector>

#include "support/conv_reference.h"

using namespace ct_conv;

// ============================================================================ exact references

namespace {

// Forward and the three gradients of one conv against the loops, with small integers (exact in
// float32 and float64).
void check_conv_exact(const ConvSpec& c, Draw& d, DType dtype = kFloat32) {
  INFO(c.describe() << " (" << dtype_name(dtype) << ")");
  const auto g = c.geometry();
  REQUIRE(g.has_value());
  const Values xv = small_ints(c.x_shape(), d), wv = small_ints(c.w_shape(), d);
  const Values bv = c.bias ? small_ints(c.b_shape(), d) : Values{};
  const Tensor x = as_tensor(xv, c.x_shape(), true, dtype),
               w = as_tensor(wv, c.w_shape(), true, dtype);
  const Tensor b = c.bias ? as_tensor(bv, c.b_shape(), true, dtype) : Tensor();
  const Tensor y = c.apply(x, w, b);
  REQUIRE(y.shape() == g->y_shape());
  REQUIRE(y.dtype() == dtype);
  const Taps taps = conv_taps(*g);
  REQUIRE(values_of(y) == ref_forward(taps, xv, wv, bv, g->y_shape()));

  const Values dyv = small_ints(g->y_shape(), d);
  y.backward(as_tensor(dyv, g->y_shape(), false, dtype));
  const RefGrads r = ref_backward(taps, xv, wv, dyv, g->y_shape());
  REQUIRE(x.grad().shape() == x.shape());
  CHECK(values_of(x.grad()) == r.dx);
  CHECK(values_of(w.grad()) == r.dw);
  if (c.bias) CHECK(values_of(b.grad()) == r.db);
}

}  // namespace

TEST_CASE("conv: hand-picked cases equal the nested-loop reference exactly", "[ops][conv][exact]") {
  Draw d(31u);
  std::vector<ConvSpec> cases;
  {  // 1-d, plain
    ConvSpec c = spec({2, 3, 7}, {3}, 2);
    c.bias = true;
    cases.push_back(c);
  }
  {  // 1-d, stride 2, per-side padding, dilation 2, groups 2
    ConvSpec c = spec({1, 4, 9}, {3}, 4, 2);
    c.stride = {2};
    c.pads = {{2, 1}};
    c.dilation = {2};
    c.bias = true;
    cases.push_back(c);
  }
  {  // 1-d, input dilation 3 and a flipped kernel, through conv1d
    ConvSpec c = spec({1, 2, 4}, {2}, 3);
    c.input_dilation = {3};
    c.pads = {{1, 2}};
    c.flip = true;
    c.wrapper = 1;
    cases.push_back(c);
  }
  {  // 2-d, stride (2, 1), symmetric per-dim padding (1, 0), bias, through conv2d
    ConvSpec c = spec({2, 2, 5, 4}, {3, 2}, 3);
    c.stride = {2, 1};
    c.symmetric = true;
    c.pads = {{1, 1}, {0, 0}};
    c.bias = true;
    c.wrapper = 1;
    cases.push_back(c);
  }
  {  // 2-d depthwise, SAME, stride 2
    ConvSpec c = spec({1, 3, 6, 5}, {3, 3}, 3, 3);
    c.stride = {2};
    c.mode = PaddingKind::Same;
    cases.push_back(c);
  }
  {  // 2-d, SAME_LOWER with an even kernel, dilation (1, 2)
    ConvSpec c = spec({1, 2, 5, 6}, {2, 2}, 2);
    c.mode = PaddingKind::SameLower;
    c.dilation = {1, 2};
    c.bias = true;
    cases.push_back(c);
  }
  {  // 2-d, input dilation (2, 1), VALID, groups 2, flipped
    ConvSpec c = spec({2, 4, 3, 5}, {2, 3}, 2, 2);
    c.input_dilation = {2, 1};
    c.mode = PaddingKind::Valid;
    c.flip = true;
    cases.push_back(c);
  }
  {  // 2-d, 1x1 pointwise (the GEMM-only path), with and without groups
    cases.push_back(spec({2, 4, 3, 3}, {1, 1}, 3));
    ConvSpec c = spec({2, 4, 3, 3}, {1, 1}, 4, 2);
    c.bias = true;
    cases.push_back(c);
  }
  {  // 3-d, padding 1, stride (1, 2, 1), bias, through conv3d
    ConvSpec c = spec({1, 2, 4, 5, 3}, {3, 2, 2}, 2);
    c.symmetric = true;
    c.pads = {{1, 1}};
    c.stride = {1, 2, 1};
    c.bias = true;
    c.wrapper = 1;
    cases.push_back(c);
  }
  {  // 3-d, every option at once
    ConvSpec c = spec({2, 4, 3, 4, 3}, {2, 2, 2}, 2, 2);
    c.stride = {2, 1, 3};
    c.pads = {{0, 1}, {2, 0}, {1, 1}};
    c.dilation = {1, 2, 1};
    c.input_dilation = {2, 1, 2};
    c.flip = true;
    c.bias = true;
    cases.push_back(c);
  }
  {  // 4 spatial dims: conv itself is rank-generic
    ConvSpec c = spec({1, 2, 3, 3, 2, 3}, {2, 1, 2, 2}, 2);
    c.pads = {{1, 0}};
    c.bias = true;
    cases.push_back(c);
  }
  for (const ConvSpec& c : cases) check_conv_exact(c, d);
}

TEST_CASE("conv: random cases equal the nested-loop reference exactly, gradients included",
          "[ops][conv][exact]") {
  Draw d(9001u);
  for (int i = 0; i < 60; ++i)
    check_conv_exact(random_conv(d, static_cast<std::size_t>(1 + i % 3)), d);
}

TEST_CASE("conv: larger cases (several GEMM tiles and panels) equal the reference exactly",
          "[ops][conv][exact]") {
  // Enough output positions, output channels and reduction rows to cross the GEMM's panel and
  // cache-block edges (float32 AVX-512: kc 384, mc 128, nc 512; float64: kc 128, mc 96, nc 768)
  // and the data gradient's 256-row x 512-position tiles, in both dtypes.
  Draw d(555u);
  std::vector<ConvSpec> cases;
  {
    ConvSpec c = spec({1, 48, 12, 11}, {3, 3}, 20);  // 432 reduction rows
    c.symmetric = true;
    c.pads = {{1, 1}};
    c.bias = true;
    cases.push_back(c);
  }
  {
    ConvSpec c = spec({2, 3, 30, 20}, {2, 2}, 136);  // 136 output channels, 551 positions
    c.bias = true;
    cases.push_back(c);
  }
  {
    ConvSpec c = spec({1, 6, 70}, {5}, 12, 3);
    c.stride = {3};
    c.pads = {{4, 2}};
    c.dilation = {2};
    c.input_dilation = {2};
    cases.push_back(c);
  }
  {
    ConvSpec c = spec({1, 4, 9, 8, 10}, {3, 3, 3}, 6, 2);
    c.stride = {2, 1, 1};
    c.symmetric = true;
    c.pads = {{1, 1}};
    c.flip = true;
    cases.push_back(c);
  }
  {
    ConvSpec c = spec({2, 40, 7, 6}, {3, 3}, 40, 40);  // depthwise with many channels
    c.mode = PaddingKind::Same;
    cases.push_back(c);
  }
  {
    // Depthwise lines wider than one 64-byte vector (several blocks and a masked tail per line),
    // with channel multipliers 1 and 2, unit and strided last dims.
    ConvSpec c = spec({2, 3, 5, 37}, {3, 3}, 3, 3);
    c.pads = {{1, 1}, {1, 2}};
    c.bias = true;
    cases.push_back(c);
    c = spec({2, 3, 6, 41}, {2, 5}, 6, 3);
    c.stride = {1, 2};
    c.pads = {{0, 1}, {2, 2}};
    cases.push_back(c);
    c = spec({1, 2, 4, 19}, {3, 3}, 4, 2);
    c.mode = PaddingKind::Same;
    cases.push_back(c);
  }
  {
    // One input channel per group and 4 outputs per group (the direct kernels), with strides,
    // dilations and an input dilation along the last dim.
    ConvSpec c = spec({2, 3, 11, 9}, {3, 2}, 12, 3);
    c.stride = {2, 1};
    c.dilation = {1, 2};
    c.input_dilation = {1, 2};
    c.pads = {{1, 0}, {2, 1}};
    c.bias = true;
    cases.push_back(c);
  }
  {
    // One input channel per group but 5 outputs per group: the GEMM path.
    ConvSpec c = spec({2, 2, 9, 8}, {3, 3}, 10, 2);
    c.mode = PaddingKind::SameLower;
    c.stride = {1, 2};
    cases.push_back(c);
  }
  cases.push_back(spec({1, 1, 12, 10}, {2, 3}, 6));    // one input channel, GEMM path
  cases.push_back(spec({2, 16, 30, 30}, {1, 1}, 24));  // pointwise, 900 positions
  cases.push_back(spec({1, 400, 3, 3}, {1, 1}, 130));  // pointwise, long reduction
  for (const ConvSpec& c : cases) {
    check_conv_exact(c, d, kFloat32);
    check_conv_exact(c, d, kFloat64);
  }
}

TEST_CASE("conv: medium random cases equal the reference exactly in both dtypes",
          "[ops][conv][exact]") {
  // Channels up to 12 and spatial sizes up to 18 / 15 / 12: several tiles per sample, channel
  // blocks in the data gradient, the direct kernels with channel multipliers, in float32 and
  // float64.
  Draw d(4711u);
  for (int i = 0; i < 24; ++i)
    check_conv_exact(random_conv(d, static_cast<std::size_t>(1 + i % 3), 3), d,
                     i % 2 ? kFloat64 : kFloat32);
}

namespace {

void check_transpose_exact(const TransposeSpec& t, Draw& d) {
  INFO(t.describe());
  const TransposeGeometry g = t.geometry();
  const Values xv = small_ints(t.x_shape(), d), wv = small_ints(t.w_shape(), d);
  const Values bv = t.bias ? small_ints(t.b_shape(), d) : Values{};
  const Tensor x = as_tensor(xv, t.x_shape(), true), w = as_tensor(wv, t.w_shape(), true);
  const Tensor b = t.bias ? as_tensor(bv, t.b_shape(), true) : Tensor();
  const Tensor y = t.apply(x, w, b);
  REQUIRE(y.shape() == t.y_shape());
  const Taps taps = transpose_taps(g);
  REQUIRE(values_of(y) == ref_forward(taps, xv, wv, bv, t.y_shape()));
  const Values dyv = small_ints(t.y_shape(), d);
  y.backward(as_tensor(dyv, t.y_shape()));
  const RefGrads r = ref_backward(taps, xv, wv, dyv, t.y_shape());
  CHECK(values_of(x.grad()) == r.dx);
  CHECK(values_of(w.grad()) == r.dw);
  if (t.bias) CHECK(values_of(b.grad()) == r.db);
}

}  // namespace

TEST_CASE("conv_transpose: forward and gradients equal the scatter definition exactly",
          "[ops][conv][exact]") {
  Draw d(271u);
  for (int i = 0; i < 45; ++i)
    check_transpose_exact(random_transpose(d, static_cast<std::size_t>(1 + i % 3)), d);
  // Larger: a 2x upsampling decoder layer and a grouped 3-d one.
  TransposeSpec up;
  up.batch = 2;
  up.in_channels = 24;
  up.out_channels = 16;
  up.in = {12, 10};
  up.kernel = {4, 4};
  up.stride = {2};
  up.padding = {1};
  up.bias = true;
  check_transpose_exact(up, d);
  // Output channels for the data gradient's phases over one copy of the input (two micro-kernel
  // row panels on every path), which adds the bias as it writes; with a 1x1 kernel three phases
  // in four hold no taps and are the bias alone.
  up.out_channels = 32;
  check_transpose_exact(up, d);
  up.kernel = {1, 1};
  up.padding = {0};
  check_transpose_exact(up, d);
  TransposeSpec g3;
  g3.in_channels = 6;
  g3.out_channels = 4;
  g3.groups = 2;
  g3.in = {3, 4, 5};
  g3.kernel = {3, 2, 3};
  g3.stride = {2, 3, 1};
  g3.padding = {1, 0, 2};
  g3.output_padding = {1, 2, 1};
  g3.dilation = {1, 1, 2};
  g3.ranked = true;
  check_transpose_exact(g3, d);
}

TEST_CASE("conv_general: layouts and group counts equal the reference exactly",
          "[ops][conv][exact]") {
  Draw d(1234u);
  for (int i = 0; i < 40; ++i) {
    const GeneralSpec c = random_general(d);
    INFO(c.describe());
    const auto g = c.geometry();
    REQUIRE(g.has_value());
    const Values lv = small_ints(c.lhs_shape(), d), rv = small_ints(c.rhs_shape(), d);
    const Tensor lhs = as_tensor(lv, c.lhs_shape(), true), rhs = as_tensor(rv, c.rhs_shape(), true);
    const Tensor y = conv_general(lhs, rhs, c.options());
    // The reference works in [N, C, *spatial] / [O, I, *spatial], spatial dims in rhs order.
    const Values xc = relayout(lv, c.layout.lhs, c.lhs_shape(), c.lhs_canonical());
    const Values wc = relayout(rv, c.layout.rhs, c.rhs_shape(), c.rhs_canonical());
    const std::string out_canonical = "NC" + c.spatial();
    const Shape out_shape = reorder(out_canonical, g->y_shape(), c.layout.out);
    REQUIRE(y.shape() == out_shape);
    const Taps taps = conv_taps(*g);
    const Values yc = ref_forward(taps, xc, wc, {}, g->y_shape());
    REQUIRE(values_of(y) == relayout(yc, out_canonical, g->y_shape(), c.layout.out));

    const Values dyv = small_ints(out_shape, d);
    y.backward(as_tensor(dyv, out_shape));
    const RefGrads r = ref_backward(
        taps, xc, wc, relayout(dyv, c.layout.out, out_shape, out_canonical), g->y_shape());
    CHECK(values_of(lhs.grad()) ==
          relayout(r.dx, c.lhs_canonical(), c.lhs_canonical_shape(), c.layout.lhs));
    CHECK(values_of(rhs.grad()) ==
          relayout(r.dw, c.rhs_canonical(), c.rhs_canonical_shape(), c.layout.rhs));
  }
}

TEST_CASE("padding_kind_from_string maps JAX's names", "[ops][conv]") {
  CHECK(padding_kind_from_string("SAME") == PaddingKind::Same);
  CHECK(padding_kind_from_string("SAME_LOWER") == PaddingKind::SameLower);
  CHECK(padding_kind_from_string("VALID") == PaddingKind::Valid);
  // In any case, as the modules take them ("same" is PyTorch's spelling).
  CHECK(padding_kind_from_string("same") == PaddingKind::Same);
  CHECK(padding_kind_from_string("Same_Lower") == PaddingKind::SameLower);
  CHECK(padding_kind_from_string("valid") == PaddingKind::Valid);
}

TEST_CASE("conv_general: negative padding crops the lhs-dilated input as JAX does",
          "[ops][conv][exact]") {
  // Values from jax.lax.conv_general_dilated (JAX 0.10.2, float64), scripts/jax_conv_cases.py:
  // x = [1..6] as [1, 1, 6], w = [1, 2, 3] as [1, 1, 3].
  const Tensor x = arange(1.0, 7.0, 1.0, kFloat64).reshape({1, 1, 6});
  const Tensor w = tensor({1, 2, 3}, {1, 1, 3}, kFloat64);
  const auto run = [&](std::pair<std::int64_t, std::int64_t> pad, std::int64_t lhs_dilation) {
    ConvGeneralOptions o;
    o.dimension_numbers = {"NCH", "OIH", "NCH"};
    o.padding = {pad};
    o.lhs_dilation = {lhs_dilation};
    return conv_general(x, w, o);
  };
  CHECK(ct_test::equal(run({-1, -2}, 1), tensor({20}, {1, 1, 1}, kFloat64)));
  CHECK(ct_test::equal(run({-1, -1}, 1), tensor({20, 26}, {1, 1, 2}, kFloat64)));
  CHECK(ct_test::equal(run({-1, 2}, 2),
                       tensor({4, 11, 6, 15, 8, 19, 10, 23, 12, 6}, {1, 1, 10}, kFloat64)));
  CHECK(ct_test::equal(run({-3, -4}, 2), tensor({6, 15}, {1, 1, 2}, kFloat64)));
  CHECK(ct_test::equal(run({2, -5}, 3),
                       tensor({3, 2, 1, 6, 4, 2, 9, 6, 3, 12, 8}, {1, 1, 11}, kFloat64)));
  // 2-d: strides (2, 1), pads ((-1, 1), (1, -2)), lhs dilation (2, 1), rhs dilation (1, 2).
  const Tensor x2 = arange(1.0, 21.0, 1.0, kFloat64).reshape({1, 1, 4, 5});
  const Tensor w2 = tensor({1, 0, 2, -1}, {1, 1, 2, 2}, kFloat64);
  ConvGeneralOptions o2;
  o2.window_strides = {2, 1};
  o2.padding = {{-1, 1}, {1, -2}};
  o2.lhs_dilation = {2, 1};
  o2.rhs_dilation = {1, 2};
  CHECK(ct_test::equal(conv_general(x2, w2, o2),
                       tensor({-7, 4, -12, 9, -17, 14}, {1, 1, 3, 2}, kFloat64)));
  // The gradient reaches only the elements the crop keeps: run({-1, -2}, 1) reads x[1..3].
  Tensor xg = x.detach();
  xg.requires_grad_(true);
  ConvGeneralOptions o;
  o.dimension_numbers = {"NCH", "OIH", "NCH"};
  o.padding = {{-1, -2}};
  sum(conv_general(xg, w, o)).backward();
  CHECK(ct_test::equal(xg.grad(), tensor({0, 1, 2, 3, 0, 0}, {1, 1, 6}, kFloat64)));
  // A crop that keeps nothing, or only dilation holes, is refused.
  o.padding = {{-4, -2}};
  CT_REQUIRE_ERROR(conv_general(x, w, o),
                   "conv_general: expected negative padding to leave part of the (lhs dilated) "
                   "input, got padding (-4, -2) for an extent of 6 in dim 0");
  o.padding = {{-1, -9}};
  o.lhs_dilation = {2};
  CT_REQUIRE_ERROR(conv_general(x, w, o),
                   "conv_general: expected negative padding to keep at least one input element, "
                   "got padding (-1, -9)");
}

TEST_CASE(
    "conv_general refuses string padding with lhs dilation, as JAX; conv's SAME uses the "
    "dilated extent",
    "[ops][conv]") {
  ConvGeneralOptions o;
  o.dimension_numbers = {"NCH", "OIH", "NCH"};
  o.padding_kind = PaddingKind::Same;
  o.lhs_dilation = {2};
  CT_REQUIRE_ERROR(conv_general(zeros({1, 1, 6}), zeros({1, 1, 1}), o),
                   "conv_general: expected explicit padding with lhs_dilation (as JAX, which "
                   "refuses SAME / VALID for a transposed convolution: give the pads, or use "
                   "conv_transpose), got SAME padding with lhs_dilation [2]");
  o.padding_kind = PaddingKind::Valid;
  CT_REQUIRE_ERROR(conv_general(zeros({1, 1, 6}), zeros({1, 1, 1}), o),
                   "got VALID padding with lhs_dilation [2]");
  o.lhs_dilation = {1};
  o.padding_kind = PaddingKind::Same;
  CHECK(conv_general(zeros({1, 1, 6}), zeros({1, 1, 3}), o).shape() == Shape{1, 1, 6});
  // conv: SAME on the input-dilated extent in' = (6 - 1) * 2 + 1 = 11: ceil(11 / 2) = 6 outputs
  // with pads (1, 1) for a kernel of 3 at stride 2.
  const Tensor y = conv(ones({1, 1, 6}, kFloat64), ones({1, 1, 3}, kFloat64), {},
                        ConvOptions().stride(2).input_dilation(2).padding(PaddingKind::Same));
  // The dilated, padded input is 0 1 0 1 0 1 0 1 0 1 0 1 0: windows at 0, 2, ..., 10.
  CHECK(ct_test::equal(y, tensor({1, 1, 1, 1, 1, 1}, {1, 1, 6}, kFloat64)));
  CHECK(conv(zeros({1, 1, 6}), zeros({1, 1, 1}), {},
             ConvOptions().stride(2).input_dilation(2).padding(PaddingKind::Same))
            .shape() == Shape{1, 1, 6});
}
