// Identities and shapes of ops/conv: grouped conv = cat of per-group convs, conv_transpose is
// the adjoint of conv, flipped kernels, partial gradient masks, strided views, empty batches and
// zero channels (the reference: tests/support/conv_reference.h).
#include <cstdint>
#include <vector>

#include "support/conv_reference.h"

using namespace ct_conv;

// ============================================================================ identities

TEST_CASE("conv: a grouped conv is the concatenation of per-group convs, exactly",
          "[ops][conv][groups]") {
  Draw d(88u);
  int checked = 0;
  while (checked < 24) {
    ConvSpec c = random_conv(d, static_cast<std::size_t>(1 + checked % 3));
    if (c.groups == 1) continue;
    ++checked;
    INFO(c.describe());
    const Values xv = small_ints(c.x_shape(), d), wv = small_ints(c.w_shape(), d),
                 bv = small_ints(c.b_shape(), d);
    const Tensor x = as_tensor(xv, c.x_shape(), true), w = as_tensor(wv, c.w_shape(), true),
                 b = as_tensor(bv, c.b_shape(), true);
    const Tensor y = c.apply(x, w, c.bias ? b : Tensor());

    ConvSpec one = c;
    one.groups = 1;
    one.channels = c.channels / c.groups;
    one.out_channels = c.out_channels / c.groups;
    const Tensor x2 = as_tensor(xv, c.x_shape(), true), w2 = as_tensor(wv, c.w_shape(), true),
                 b2 = as_tensor(bv, c.b_shape(), true);
    std::vector<Tensor> parts;
    for (std::int64_t j = 0; j < c.groups; ++j)
      parts.push_back(
          one.apply(narrow(x2, 1, j * one.channels, one.channels),
                    narrow(w2, 0, j * one.out_channels, one.out_channels),
                    c.bias ? narrow(b2, 0, j * one.out_channels, one.out_channels) : Tensor()));
    const Tensor y2 = cat(parts, 1);
    REQUIRE(equal(y, y2));

    const Tensor dy = as_tensor(small_ints(y.shape(), d), y.shape());
    y.backward(dy);
    y2.backward(dy);
    CHECK(equal(x.grad(), x2.grad()));
    CHECK(equal(w.grad(), w2.grad()));
    if (c.bias) CHECK(equal(b.grad(), b2.grad()));
  }
}

TEST_CASE("conv_transpose is the adjoint of conv: <conv(x, w), y> == <x, conv_transpose(y, w)>",
          "[ops][conv][transpose]") {
  manual_seed(104);
  Draw d(606u);
  int checked = 0;
  while (checked < 45) {
    // conv_transpose knows symmetric padding only, and no input dilation or flip.
    ConvSpec c = random_conv(d, static_cast<std::size_t>(1 + checked % 3));
    if (c.mode != PaddingKind::Explicit || !c.symmetric || c.flip) continue;
    c.input_dilation = {1};
    const auto g = c.geometry();
    if (!g) continue;
    ++checked;
    INFO(c.describe());
    const std::size_t s = c.rank();
    // output_padding restores the input size: in + 2p - dil (k - 1) - 1 - (out - 1) stride.
    Shape pad, out_pad;
    for (std::size_t i = 0; i < s; ++i) {
      pad.push_back(g->pad_lo[i]);
      out_pad.push_back(c.in[i] + 2 * g->pad_lo[i] - g->dilation[i] * (c.kernel[i] - 1) - 1 -
                        (g->out[i] - 1) * g->stride[i]);
    }
    const ConvTransposeOptions to = ConvTransposeOptions()
                                        .stride(g->stride)
                                        .padding(pad)
                                        .output_padding(out_pad)
                                        .dilation(g->dilation)
                                        .groups(c.groups);
    const Tensor x = uniform(c.x_shape(), -1, 1, kFloat64).requires_grad_(true);
    const Tensor w = uniform(c.w_shape(), -1, 1, kFloat64);
    const Tensor yv = uniform(g->y_shape(), -1, 1, kFloat64);
    const Tensor y = conv(x, w, {}, c.options());
    const Tensor xt = conv_transpose(yv, w, {}, to);
    REQUIRE(xt.shape() == x.shape());
    const double lhs = sum(mul(y, yv)).item(), rhs = sum(mul(x, xt)).item();
    CHECK(std::abs(lhs - rhs) <= 1e-12 * std::max(1.0, std::abs(lhs)));
    // The same statement through the tape: conv_transpose(y, w) is conv's data gradient.
    y.backward(yv);
    CHECK(ct_test::allclose(x.grad(), xt, 0.0, 1e-12));
  }
}

TEST_CASE("conv_transpose accepts output_padding below the dilation even at stride 1",
          "[ops][conv][transpose]") {
  const Tensor x = as_tensor({1, 2, 3}, {1, 1, 3}), w = as_tensor({1, 1}, {1, 1, 2});
  // (3 - 1) * 1 - 0 + 2 * (2 - 1) + 1 + 1 = 6; the last position receives nothing.
  const Tensor y = conv_transpose1d(x, w, {}, ConvTransposeOptions().dilation(2).output_padding(1));
  REQUIRE(equal(y, as_tensor({1, 2, 4, 2, 3, 0}, {1, 1, 6})));
}

TEST_CASE("conv: flip_kernel is the cross-correlation with a mirrored kernel", "[ops][conv]") {
  Draw d(5u);
  const Tensor x = as_tensor(small_ints({2, 2, 5, 4}, d), {2, 2, 5, 4});
  const Tensor w = as_tensor(small_ints({3, 2, 3, 2}, d), {3, 2, 3, 2});
  const ConvOptions o = ConvOptions().padding(1).stride(2);
  ConvOptions flipped = o;
  flipped.flip_kernel();
  REQUIRE(equal(conv(x, w, {}, flipped), conv(x, flip(w, {2, 3}), {}, o)));
}

TEST_CASE("conv: only the gradients that are asked for, each exact", "[ops][conv][exact]") {
  Draw d(77u);
  ConvSpec c = spec({2, 4, 6, 5}, {3, 2}, 4, 2);
  c.stride = {2, 1};
  c.pads = {{1, 1}, {0, 1}};
  c.bias = true;
  const Geometry g = *c.geometry();
  const Values xv = small_ints(c.x_shape(), d), wv = small_ints(c.w_shape(), d),
               bv = small_ints(c.b_shape(), d), dyv = small_ints(g.y_shape(), d);
  const RefGrads r = ref_backward(conv_taps(g), xv, wv, dyv, g.y_shape());
  for (int mask = 1; mask < 8; ++mask) {
    INFO("x, w, b require grad: " << (mask & 1) << (mask >> 1 & 1) << (mask >> 2 & 1));
    const Tensor x = as_tensor(xv, c.x_shape(), mask & 1), w = as_tensor(wv, c.w_shape(), mask & 2),
                 b = as_tensor(bv, c.b_shape(), mask & 4);
    const Tensor y = conv(x, w, b, c.options());
    y.backward(as_tensor(dyv, g.y_shape()));
    CHECK(x.grad().defined() == bool(mask & 1));
    CHECK(w.grad().defined() == bool(mask & 2));
    CHECK(b.grad().defined() == bool(mask & 4));
    if (mask & 1) CHECK(values_of(x.grad()) == r.dx);
    if (mask & 2) CHECK(values_of(w.grad()) == r.dw);
    if (mask & 4) CHECK(values_of(b.grad()) == r.db);
  }
}

TEST_CASE("conv and conv_transpose read strided views like their contiguous copies",
          "[ops][conv]") {
  Draw d(99u);
  // x as a transposed view of [N, H, C, W], w as every other filter of a larger weight.
  const Tensor xs = as_tensor(small_ints({2, 5, 3, 6}, d), {2, 5, 3, 6}, true);
  const Tensor ws = as_tensor(small_ints({8, 3, 3, 2}, d), {8, 3, 3, 2}, true);
  const Tensor x = transpose(xs, 1, 2), w = slice(ws, 0, 0, 8, 2);
  REQUIRE_FALSE(x.is_contiguous());
  REQUIRE_FALSE(w.is_contiguous());
  const Tensor xc = as_tensor(values_of(x), x.shape(), true);
  const Tensor wc = as_tensor(values_of(w), w.shape(), true);
  const ConvOptions o = ConvOptions().padding(1).stride({1, 2});
  const Tensor y = conv(x, w, {}, o), yc = conv(xc, wc, {}, o);
  REQUIRE(equal(y, yc));
  // A non-contiguous upstream gradient as well.
  const Shape ys = y.shape();
  const Tensor dy = transpose(as_tensor(small_ints(ys, d), {ys[0], ys[1], ys[3], ys[2]}), 2, 3);
  REQUIRE_FALSE(dy.is_contiguous());
  y.backward(dy);
  yc.backward(dy.contiguous());
  CHECK(equal(transpose(xs.grad(), 1, 2), xc.grad()));
  CHECK(equal(slice(ws.grad(), 0, 0, 8, 2), wc.grad()));
  CHECK(equal(slice(ws.grad(), 0, 1, 8, 2), zeros(wc.shape())));

  const Tensor w2 = as_tensor(small_ints({3, 2, 2, 2}, d), {3, 2, 2, 2});
  const ConvTransposeOptions to = ConvTransposeOptions().stride(2).padding(1);
  const Tensor t = conv_transpose(x, w2, {}, to), tc = conv_transpose(xc, w2, {}, to);
  REQUIRE(t.shape() == Shape{2, 2, 8, 10});
  REQUIRE(equal(t, tc));
}

TEST_CASE("conv: an empty batch gives an empty result and zero weight gradients", "[ops][conv]") {
  // Through the GEMM path, the pointwise path, the direct (depthwise) path, conv_transpose and
  // conv_general's batch groups; none may divide by the empty batch.
  const auto rg = TensorOptions().dtype(kFloat64).requires_grad(true);
  struct Case {
    Shape x, w, y;
    std::int64_t groups;
  };
  for (const Case& c :
       {Case{{0, 2, 5}, {3, 2, 3}, {0, 3, 5}, 1}, Case{{0, 2, 5}, {3, 2, 1}, {0, 3, 7}, 1},
        Case{{0, 2, 4, 4}, {4, 1, 3, 3}, {0, 4, 4, 4}, 2}}) {
    INFO("x " << to_string(c.x) << ", w " << to_string(c.w));
    const Tensor x = zeros(c.x, rg), w = ones(c.w, rg), b = ones({c.w[0]}, rg);
    const Tensor y = conv(x, w, b, ConvOptions().padding(1).groups(c.groups));
    REQUIRE(y.shape() == c.y);
    sum(y).backward();
    CHECK(x.grad().shape() == x.shape());
    CHECK(equal(w.grad(), zeros(c.w, kFloat64)));
    CHECK(equal(b.grad(), zeros({c.w[0]}, kFloat64)));
  }
  const Tensor x = zeros({0, 2, 3}, rg), w = ones({2, 3, 2}, rg);
  const Tensor y = conv_transpose(x, w, {}, ConvTransposeOptions().stride(2));
  REQUIRE(y.shape() == Shape{0, 3, 6});
  sum(y).backward();
  CHECK(x.grad().shape() == x.shape());
  CHECK(equal(w.grad(), zeros({2, 3, 2}, kFloat64)));
  ConvGeneralOptions o;
  o.batch_group_count = 2;
  CHECK(conv_general(zeros({0, 2, 3, 3}), ones({2, 2, 2, 2}), o).shape() == Shape{0, 2, 2, 2});
}

TEST_CASE("conv: zero input channels sum to the bias, with empty input gradients", "[ops][conv]") {
  const auto rg = TensorOptions().dtype(kFloat64).requires_grad(true);
  for (std::int64_t k : {1, 3}) {  // pointwise and im2col paths
    INFO("kernel " << k);
    const Tensor x = zeros({2, 0, 5}, rg), w = zeros({2, 0, k}, rg);
    const Tensor b = tensor({1, -2}, kFloat64).requires_grad_(true);
    const Tensor y = conv(x, w, b, ConvOptions().padding((k - 1) / 2));
    REQUIRE(y.shape() == Shape{2, 2, 5});
    CHECK(equal(y, expand(reshape(b.detach(), {1, 2, 1}), {2, 2, 5}).contiguous()));
    sum(y).backward();
    CHECK(x.grad().shape() == x.shape());
    CHECK(w.grad().shape() == w.shape());
    CHECK(equal(b.grad(), tensor({10, 10}, kFloat64)));
  }
}
