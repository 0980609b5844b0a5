// Every convolution example of the seed documents (/work/shared/seeds), with their numbers:
//   003 / 000  JAX's "Generalized convolutions" tutorial (English / Chinese): every
//              conv_general_dilated call, lax.conv / conv_with_general_padding, the dimension
//              numbers it prints, the transposed-convolution identity, the 1-D and 3-D demos and
//              the two signal-smoothing examples.
//   004        PuzzleLib's Conv2D page: every printed output, the groups weight shapes, the
//              depthwise-separable block.
//   002        mygrad's conv_nd docstring: outputs, x.grad and k.grad, the N-d shapes.
//   001        probml / d2l conv notebook: corr2d, edge detection, conv as a matrix, multiple
//              input and output channels, 1x1 conv, and the kernel-learning loop.
// The tutorial prints shapes and plots, not values: its outputs are compared with a direct float64
// convolution written here (naive_conv) and with sums, extremes and spot values taken from JAX
// 0.10 running the tutorial's code (written next to each check). Small-integer data makes the
// float32 results exact, so those comparisons use ==.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <utility>
#include <vector>

#include "support/test_util.h"

namespace {

using namespace convtape;
using ct_test::Pads;

Tensor f32(const std::vector<double>& values, const Shape& shape) {
  return tensor(values, shape, kFloat32);
}

void check_exact(const Tensor& got, const std::vector<double>& want, const Shape& shape) {
  INFO("got " << got);
  CHECK(ct_test::equal(got, f32(want, shape)));
}

std::int64_t product(const Shape& s, std::size_t from) {
  std::int64_t p = 1;
  for (std::size_t i = from; i < s.size(); ++i) p *= s[i];
  return p;
}

// Direct cross-correlation in float64, straight from the definition, for the reference values:
// x [N, C, *S], w [K, C, *R] -> y [N, K, *S'] with per-dim stride, (low, high) padding, input
// (lhs) dilation and kernel (rhs) dilation; groups = 1.
struct NaiveConv {
  std::vector<std::int64_t> stride, lhs_dilation, rhs_dilation;
  Pads pad;
};

NaiveConv naive_options(std::size_t spatial) {
  return {std::vector<std::int64_t>(spatial, 1), std::vector<std::int64_t>(spatial, 1),
          std::vector<std::int64_t>(spatial, 1), Pads(spatial, {0, 0})};
}

Tensor naive_conv(const Tensor& x, const Tensor& w, const NaiveConv& p) {
  const Shape xs = x.shape(), ws = w.shape();
  const std::size_t s = xs.size() - 2;
  REQUIRE(ws.size() == xs.size());
  REQUIRE(ws[1] == xs[1]);
  Shape ys{xs[0], ws[0]};
  for (std::size_t d = 0; d < s; ++d) {
    const std::int64_t in = (xs[2 + d] - 1) * p.lhs_dilation[d] + 1;
    const std::int64_t k = (ws[2 + d] - 1) * p.rhs_dilation[d] + 1;
    ys.push_back((in + p.pad[d].first + p.pad[d].second - k) / p.stride[d] + 1);
  }
  const auto xv = x.to_vector<double>(), wv = w.to_vector<double>();
  const std::int64_t channels = xs[1], in_sp = product(xs, 2), k_sp = product(ws, 2),
                     out_sp = product(ys, 2);
  std::vector<double> yv(static_cast<std::size_t>(numel(ys)), 0.0);
  std::vector<std::int64_t> o(s), r(s);
  const auto unravel = [s](std::int64_t flat, const Shape& dims, std::vector<std::int64_t>& idx) {
    for (std::size_t d = s; d-- > 0;) {
      idx[d] = flat % dims[2 + d];
      flat /= dims[2 + d];
    }
  };
  for (std::int64_t n = 0; n < xs[0]; ++n)
    for (std::int64_t k = 0; k < ws[0]; ++k)
      for (std::int64_t op = 0; op < out_sp; ++op) {
        unravel(op, ys, o);
        double acc = 0.0;
        for (std::int64_t rp = 0; rp < k_sp; ++rp) {
          unravel(rp, ws, r);
          std::int64_t idx = 0;
          bool inside = true;
          for (std::size_t d = 0; d < s && inside; ++d) {
            const std::int64_t q = o[d] * p.stride[d] + r[d] * p.rhs_dilation[d] - p.pad[d].first;
            inside = q >= 0 && q % p.lhs_dilation[d] == 0 && q / p.lhs_dilation[d] < xs[2 + d];
            idx = idx * xs[2 + d] + q / p.lhs_dilation[d];
          }
          if (!inside) continue;
          for (std::int64_t c = 0; c < channels; ++c)
            acc += xv[static_cast<std::size_t>((n * channels + c) * in_sp + idx)] *
                   wv[static_cast<std::size_t>((k * channels + c) * k_sp + rp)];
        }
        yv[static_cast<std::size_t>((n * ws[0] + k) * out_sp + op)] = acc;
      }
  return tensor(yv, ys, kFloat64);
}

// Summaries of a result, compared with the same numbers computed by JAX.
struct Summary {
  double sum = 0, sumsq = 0, sumabs = 0, min = 0, max = 0;
  std::int64_t nonzero = 0;
};

Summary summary(const Tensor& t) {
  const auto v = t.to_vector<double>();
  Summary s;
  s.min = *std::min_element(v.begin(), v.end());
  s.max = *std::max_element(v.begin(), v.end());
  for (double e : v) {
    s.sum += e;
    s.sumsq += e * e;
    s.sumabs += std::abs(e);
    s.nonzero += e != 0.0;
  }
  return s;
}

void check_summary(const Tensor& t, double sum, double sumsq, double sumabs, std::int64_t nonzero,
                   double min, double max) {
  const Summary s = summary(t);
  CHECK(s.sum == sum);
  CHECK(s.sumsq == sumsq);
  CHECK(s.sumabs == sumabs);
  CHECK(s.nonzero == nonzero);
  CHECK(s.min == min);
  CHECK(s.max == max);
}

// ---- JAX tutorial data
// img = zeros((1, 200, 198, 3)); img[0, x:x+10, y:y+10, k] = 1 with x = 30 + 60k, y = 20 + 60k.
Tensor jax_image() {
  std::vector<double> v(200 * 198 * 3, 0.0);
  for (std::int64_t k = 0; k < 3; ++k)
    for (std::int64_t x = 30 + 60 * k; x < 40 + 60 * k; ++x)
      for (std::int64_t y = 20 + 60 * k; y < 30 + 60 * k; ++y)
        v[static_cast<std::size_t>((x * 198 + y) * 3 + k)] = 1.0;
  return f32(v, {1, 200, 198, 3});
}

// HWIO [3, 3, 3, 3]: the diagonal edge kernel [[1, 1, 0], [1, 0, -1], [0, -1, -1]] for every
// (input, output) channel pair.
Tensor jax_kernel() {
  const double edge[3][3] = {{1, 1, 0}, {1, 0, -1}, {0, -1, -1}};
  std::vector<double> v;
  for (const auto& row : edge)
    for (double e : row)
      for (int io = 0; io < 9; ++io) v.push_back(e);
  return f32(v, {3, 3, 3, 3});
}

Tensor nhwc_to_nchw(const Tensor& t) {
  return permute(t, {0, 3, 1, 2}).contiguous();
}
Tensor hwio_to_oihw(const Tensor& t) {
  return permute(t, {3, 2, 0, 1}).contiguous();
}

ConvGeneralOptions nhwc_hwio(std::vector<std::int64_t> strides, PaddingKind mode) {
  ConvGeneralOptions o;
  o.window_strides = std::move(strides);
  o.padding_kind = mode;
  o.dimension_numbers = {"NHWC", "HWIO", "NHWC"};
  return o;
}

// The JAX call's result (NHWC) against the direct convolution of the same operands.
void check_against_naive(const Tensor& out_nhwc, const NaiveConv& p) {
  const Tensor want = naive_conv(nhwc_to_nchw(jax_image()), hwio_to_oihw(jax_kernel()), p);
  CHECK(ct_test::equal(nhwc_to_nchw(out_nhwc).to(kFloat64), want));
}

}  // namespace

// ================================================================================================
// JAX: "Generalized convolutions in JAX" (seeds 003 English, 000 Chinese)
// ================================================================================================

TEST_CASE("seeds/jax: lax.conv and lax.conv_with_general_padding (NCHW image, OIHW kernel)",
          "[seeds][jax]") {
  const Tensor img = nhwc_to_nchw(jax_image());
  // lax.conv(transpose(img, [0,3,1,2]), transpose(kernel, [3,2,0,1]), (1, 1), 'SAME')
  const Tensor w = hwio_to_oihw(jax_kernel());
  const Tensor same = conv2d(img, w, {}, ConvOptions().padding(PaddingKind::Same));
  CHECK(same.shape() == Shape{1, 3, 200, 198});  // "out shape:  (1, 3, 200, 198)"
  NaiveConv p = naive_options(2);
  p.pad = {{1, 1}, {1, 1}};
  CHECK(ct_test::equal(same.to(kFloat64), naive_conv(img, w, p)));
  // JAX: sum 0, sum of squares 2664, sum of |.| 1332, 684 nonzeros, min -3, max 3.
  check_summary(same, 0, 2664, 1332, 684, -3, 3);
  // The same call through conv_general with NCHW / OIHW / NCHW dimension numbers.
  ConvGeneralOptions o;
  o.window_strides = {1, 1};
  o.padding_kind = PaddingKind::Same;
  o.dimension_numbers = {"NCHW", "OIHW", "NCHW"};
  CHECK(ct_test::equal(conv_general(img, w, o), same));

  // lax.conv_with_general_padding(..., transpose(kernel, [2,3,0,1]) "IOHW", (1, 1),
  // ((2,2),(2,2)), (1,1), (1,1)): the helper reads rhs as OIHW whatever the comment says.
  const Tensor w_iohw = permute(jax_kernel(), {2, 3, 0, 1}).contiguous();
  const Tensor padded = conv2d(img, w_iohw, {}, ConvOptions().padding(Pads{{2, 2}, {2, 2}}));
  CHECK(padded.shape() == Shape{1, 3, 202, 200});  // "out shape:  (1, 3, 202, 200)"
  p.pad = {{2, 2}, {2, 2}};
  CHECK(ct_test::equal(padded.to(kFloat64), naive_conv(img, w_iohw, p)));
  check_summary(padded, 0, 2664, 1332, 684, -3, 3);
}

TEST_CASE("seeds/jax: conv_general_dilated with NHWC / HWIO / NHWC", "[seeds][jax]") {
  const Tensor img = jax_image(), kernel = jax_kernel();
  NaiveConv p = naive_options(2);

  SECTION("SAME padding, no stride, no dilation -> (1, 200, 198, 3)") {
    const Tensor out = conv_general(img, kernel, nhwc_hwio({1, 1}, PaddingKind::Same));
    CHECK(out.shape() == Shape{1, 200, 198, 3});
    p.pad = {{1, 1}, {1, 1}};
    check_against_naive(out, p);
    check_summary(out, 0, 2664, 1332, 684, -3, 3);
  }
  SECTION("VALID padding, no stride, no dilation -> (1, 198, 196, 3)") {
    const Tensor out = conv_general(img, kernel, nhwc_hwio({1, 1}, PaddingKind::Valid));
    CHECK(out.shape() == Shape{1, 198, 196, 3});  // "DIFFERENT from above!"
    check_against_naive(out, p);
    check_summary(out, 0, 2664, 1332, 684, -3, 3);
  }
  SECTION("SAME padding, 2,2 stride, no dilation -> (1, 100, 99, 3)") {
    const Tensor out = conv_general(img, kernel, nhwc_hwio({2, 2}, PaddingKind::Same));
    CHECK(out.shape() == Shape{1, 100, 99, 3});  // "half the size of above"
    // SAME with stride 2: total padding max((out-1)*2 + 3 - in, 0) = 1 in both dims, low 0.
    p.stride = {2, 2};
    p.pad = {{0, 1}, {0, 1}};
    check_against_naive(out, p);
    check_summary(out, 0, 684, 342, 180, -2, 3);
  }
  SECTION("VALID padding, no stride, rhs (kernel) dilation 12 -> (1, 176, 174, 3)") {
    auto o = nhwc_hwio({1, 1}, PaddingKind::Valid);
    o.rhs_dilation = {12, 12};
    const Tensor out = conv_general(img, kernel, o);
    CHECK(out.shape() == Shape{1, 176, 174, 3});
    p.rhs_dilation = {12, 12};
    check_against_naive(out, p);
    check_summary(out, 240, 5160, 5160, 5160, -1, 1);
  }
  SECTION("VALID padding ((0,0),(0,0)), lhs (input) dilation 2 -> (1, 397, 393, 3)") {
    auto o = nhwc_hwio({1, 1}, PaddingKind::Explicit);
    o.padding = {{0, 0}, {0, 0}};
    o.lhs_dilation = {2, 2};
    const Tensor out = conv_general(img, kernel, o);
    CHECK(out.shape() == Shape{1, 397, 393, 3});  // "larger than original!"
    p.lhs_dilation = {2, 2};
    check_against_naive(out, p);
    check_summary(out, 0, 702, 702, 702, -1, 1);
  }
}

// The tutorial: "transposed conv = 180deg kernel rotation plus LHS dilation", padding
// ((2, 1), (2, 1)), and "The following is equivalent to tensorflow:
// tf.nn.conv2d_transpose(img, kernel, (N,2*H,2*W,C), (1,2,2,1))". TensorFlow's conv2d_transpose
// is the gradient of conv2d(z, kernel, strides 2, SAME) with respect to z [N, 2H, 2W, C]; ours is
// conv_transpose2d with stride 2, whose output (2H + 1 rows here) the SAME rule crops by one on the
// high side.
TEST_CASE("seeds/jax: transposed convolution = rotated kernel + lhs dilation", "[seeds][jax]") {
  const Tensor img = jax_image(), kernel = jax_kernel();
  // kernel_rot = rot90(rot90(kernel, axes=(0,1)), axes=(0,1))
  const Tensor kernel_rot = rot90(rot90(kernel, 1, {0, 1}), 1, {0, 1});
  auto o = nhwc_hwio({1, 1}, PaddingKind::Explicit);
  o.padding = {{2, 1}, {2, 1}};
  o.lhs_dilation = {2, 2};
  const Tensor out = conv_general(img, kernel_rot, o);
  CHECK(out.shape() ==
        Shape{1, 400, 396, 3});  // "out shape:  (1, 400, 396, 3) <-- transposed_conv"
  NaiveConv p = naive_options(2);
  p.pad = {{2, 1}, {2, 1}};
  p.lhs_dilation = {2, 2};
  CHECK(ct_test::equal(nhwc_to_nchw(out).to(kFloat64),
                       naive_conv(nhwc_to_nchw(img), hwio_to_oihw(kernel_rot), p)));
  check_summary(out, 0, 702, 702, 702, -1, 1);

  const Tensor img_nchw = nhwc_to_nchw(img);
  // TensorFlow's definition: the vector-Jacobian product of the strided SAME convolution.
  Tensor z = zeros({1, 3, 400, 396}).requires_grad_(true);
  const Tensor y =
      conv2d(z, hwio_to_oihw(kernel), {}, ConvOptions().stride(2).padding(PaddingKind::Same));
  REQUIRE(y.shape() == Shape{1, 3, 200, 198});
  y.backward(img_nchw);
  CHECK(ct_test::equal(z.grad(), nhwc_to_nchw(out)));
  // convtape's conv_transpose2d, weight [C_in, C_out, kh, kw] = the forward conv's [K, C, kh, kw].
  const Tensor t =
      conv_transpose2d(img_nchw, hwio_to_oihw(kernel), {}, ConvTransposeOptions().stride(2));
  REQUIRE(t.shape() == Shape{1, 3, 401, 397});
  CHECK(ct_test::equal(narrow(narrow(t, 2, 0, 400), 3, 0, 396).contiguous(), nhwc_to_nchw(out)));
}

// The tutorial's kernel is the same for every (I, O) pair, which hides which of I and O the
// rotation must swap. With an arbitrary kernel the identity needs the rotated kernel's I and O
// exchanged as well (the transpose of the convolution maps output channels back to inputs).
TEST_CASE("seeds/jax: the transposed-convolution identity with an arbitrary kernel",
          "[seeds][jax]") {
  manual_seed(3);
  const Tensor img = randint(-4, 5, {2, 7, 6, 3}).to(kFloat32);     // NHWC
  const Tensor kernel = randint(-4, 5, {3, 3, 2, 3}).to(kFloat32);  // HWIO, I = 2, O = 3
  // Transposed: input channels are the kernel's O (3), outputs its I (2).
  const Tensor rot_swapped = permute(rot90(kernel, 2, {0, 1}), {0, 1, 3, 2}).contiguous();
  auto o = nhwc_hwio({1, 1}, PaddingKind::Explicit);
  o.padding = {{2, 1}, {2, 1}};
  o.lhs_dilation = {2, 2};
  const Tensor out = conv_general(img, rot_swapped, o);
  REQUIRE(out.shape() == Shape{2, 14, 12, 2});

  Tensor z = zeros({2, 2, 14, 12}).requires_grad_(true);
  conv2d(z, hwio_to_oihw(kernel), {}, ConvOptions().stride(2).padding(PaddingKind::Same))
      .backward(nhwc_to_nchw(img));
  CHECK(ct_test::equal(z.grad(), nhwc_to_nchw(out)));
  const Tensor t = conv_transpose2d(nhwc_to_nchw(img), hwio_to_oihw(kernel), {},
                                    ConvTransposeOptions().stride(2));
  REQUIRE(t.shape() == Shape{2, 2, 15, 13});
  CHECK(ct_test::equal(narrow(narrow(t, 2, 0, 14), 3, 0, 12).contiguous(), nhwc_to_nchw(out)));
}

// lax.conv_dimension_numbers prints where each of N, C and the spatial dims sit:
// NHWC/HWIO/NHWC -> lhs_spec=(0, 3, 1, 2), rhs_spec=(3, 2, 0, 1), out_spec=(0, 3, 1, 2);
// NWC/WIO/NWC -> (0, 2, 1), (2, 1, 0), (0, 2, 1); NHWDC/HWDIO/NHWDC -> (0, 4, 1, 2, 3),
// (4, 3, 0, 1, 2), (0, 4, 1, 2, 3). Permuting by those specs turns conv_general into plain conv.
TEST_CASE("seeds/jax: dimension numbers are the printed permutations", "[seeds][jax]") {
  manual_seed(4);
  struct Layout {
    ConvDimensionNumbers dn;
    std::vector<std::int64_t> lhs_spec, rhs_spec, out_spec;
    Shape lhs, rhs;
  };
  const std::vector<Layout> layouts = {
      {{"NHWC", "HWIO", "NHWC"},
       {0, 3, 1, 2},
       {3, 2, 0, 1},
       {0, 3, 1, 2},
       {2, 6, 5, 3},
       {3, 2, 3, 4}},
      {{"NWC", "WIO", "NWC"}, {0, 2, 1}, {2, 1, 0}, {0, 2, 1}, {2, 9, 2}, {3, 2, 2}},
      {{"NHWDC", "HWDIO", "NHWDC"},
       {0, 4, 1, 2, 3},
       {4, 3, 0, 1, 2},
       {0, 4, 1, 2, 3},
       {1, 5, 4, 6, 1},
       {3, 3, 3, 1, 2}},
  };
  for (const auto& l : layouts) {
    INFO(l.dn.lhs << " " << l.dn.rhs << " " << l.dn.out);
    const Tensor lhs = randint(-4, 5, l.lhs).to(kFloat32);
    const Tensor rhs = randint(-4, 5, l.rhs).to(kFloat32);
    ConvGeneralOptions o;
    o.padding_kind = PaddingKind::Same;
    o.dimension_numbers = l.dn;
    const Tensor out = conv_general(lhs, rhs, o);
    const Tensor plain = conv(permute(lhs, l.lhs_spec), permute(rhs, l.rhs_spec), {},
                              ConvOptions().padding(PaddingKind::Same));
    CHECK(ct_test::equal(permute(out, l.out_spec).contiguous(), plain));
  }
}

TEST_CASE("seeds/jax: 1-D convolution, NWC / WIO / NWC, SAME", "[seeds][jax]") {
  // kernel = array([[[1, 0, -1], [-1, 0, 1]], [[1, 1, 1], [-1, -1, -1]]]).transpose([2, 1, 0])
  const Tensor oiw = f32({1, 0, -1, -1, 0, 1, 1, 1, 1, -1, -1, -1}, {2, 2, 3});
  const Tensor kernel = permute(oiw, {2, 1, 0}).contiguous();
  // data[0, x:x+30, k] = 1 with x = 35i + 30 + 60k, i, k in {0, 1}
  std::vector<double> v(200 * 2, 0.0);
  for (std::int64_t i = 0; i < 2; ++i)
    for (std::int64_t k = 0; k < 2; ++k)
      for (std::int64_t x = 35 * i + 30 + 60 * k; x < 35 * i + 60 + 60 * k; ++x)
        v[static_cast<std::size_t>(x * 2 + k)] = 1.0;
  const Tensor data = f32(v, {1, 200, 2});
  CHECK(data.shape() == Shape{1, 200, 2});  // "in shapes: (1, 200, 2) (3, 2, 2)"
  CHECK(kernel.shape() == Shape{3, 2, 2});

  ConvGeneralOptions o;
  o.window_strides = {1};
  o.padding_kind = PaddingKind::Same;
  o.dimension_numbers = {"NWC", "WIO", "NWC"};
  const Tensor out = conv_general(data, kernel, o);
  CHECK(out.shape() == Shape{1, 200, 2});  // "out shape:  (1, 200, 2)"
  NaiveConv p = naive_options(1);
  p.pad = {{1, 1}};
  CHECK(ct_test::equal(permute(out, {0, 2, 1}).contiguous().to(kFloat64),
                       naive_conv(permute(data, {0, 2, 1}).contiguous(), oiw, p)));
  // JAX: sum 0, sum of squares 974, sum of |.| 346, 134 nonzeros, in [-3, 3]; a few rows.
  check_summary(out, 0, 974, 346, 134, -3, 3);
  check_exact(narrow(out, 1, 29, 3).contiguous(), {-1, 1, -1, 2, 0, 3}, {1, 3, 2});
  check_exact(narrow(out, 1, 59, 2).contiguous(), {1, 2, 1, 1}, {1, 2, 2});
  check_exact(narrow(out, 1, 154, 3).contiguous(), {-1, -2, -1, -1, 0, 0}, {1, 3, 2});
}

TEST_CASE("seeds/jax: 3-D convolution, NHWDC / HWDIO / NHWDC, SAME", "[seeds][jax]") {
  const std::vector<double> k3 = {0,  0, 0,  0, 1, 0, 0, 0, 0, 0, -1, 0, -1, 0,
                                  -1, 0, -1, 0, 0, 0, 0, 0, 1, 0, 0,  0, 0};
  const Tensor kernel = f32(k3, {3, 3, 3, 1, 1});
  // data = sin(2 pi x) cos(2 pi y) cos(2 pi z) on np.mgrid[0:1:30j, 0:1:30j, 0:1:30j]
  const double pi = std::acos(-1.0);
  std::vector<double> v;
  for (int i = 0; i < 30; ++i)
    for (int j = 0; j < 30; ++j)
      for (int k = 0; k < 30; ++k)
        v.push_back(std::sin(2 * pi * i / 29.0) * std::cos(2 * pi * j / 29.0) *
                    std::cos(2 * pi * k / 29.0));
  const Tensor data = f32(v, {1, 30, 30, 30, 1});

  ConvGeneralOptions o;
  o.window_strides = {1, 1, 1};
  o.padding_kind = PaddingKind::Same;
  o.dimension_numbers = {"NHWDC", "HWDIO", "NHWDC"};
  const Tensor out = conv_general(data, kernel, o);
  CHECK(out.shape() == Shape{1, 30, 30, 30, 1});  // "out shape:  (1, 30, 30, 30, 1)"
  NaiveConv p = naive_options(3);
  p.pad = {{1, 1}, {1, 1}, {1, 1}};
  const Tensor want =
      naive_conv(reshape(data, {1, 1, 30, 30, 30}), reshape(kernel, {1, 1, 3, 3, 3}), p);
  CHECK(ct_test::allclose(reshape(out, {1, 1, 30, 30, 30}), want, 1e-5, 1e-6));
  // JAX (float32 data): spot values, the sum of squares 10851.0335 and the extremes +-1.927577.
  const struct {
    std::vector<std::int64_t> at;
    double value;
  } spots[] = {{{0, 0, 0, 0, 0}, 0.2149704396724701},
               {{0, 1, 2, 3, 0}, -0.3033759891986847},
               {{0, 15, 7, 22, 0}, 0.0006189814303070307},
               {{0, 29, 29, 29, 0}, -0.21497096121311188},
               {{0, 10, 0, 5, 0}, -0.37863245606422424}};
  for (const auto& s : spots) CHECK(std::abs(out.at<float>(s.at) - s.value) <= 2e-6);
  const Summary sm = summary(out);
  CHECK(std::abs(sm.sumsq - 10851.033545330774) <= 1e-5 * 10851.0);
  CHECK(std::abs(sm.max - 1.927577018737793) <= 2e-6);
  CHECK(std::abs(sm.min + 1.9275771379470825) <= 2e-6);
}

// "y_smooth = jnp.convolve(y, window, mode='same')" with window = ones(10) / 10 on 500 points of
// linspace(0, 10): a true (flipped) convolution whose 'same' crop keeps the extra tap on the low
// side for an even window, which is our SAME_LOWER. The tutorial adds random noise from its own
// PRNG; the noise-free signal sin(x) is used here and compared with numpy.convolve.
TEST_CASE("seeds/jax: 1-D smoothing, jnp.convolve mode='same'", "[seeds][jax]") {
  std::vector<double> y;
  for (int i = 0; i < 500; ++i) y.push_back(std::sin(10.0 * i / 499.0));
  const Tensor signal = f32(y, {1, 1, 500});
  const Tensor window = full({1, 1, 10}, 0.1);
  const Tensor smooth =
      conv1d(signal, window, {}, ConvOptions().flip_kernel().padding(PaddingKind::SameLower));
  REQUIRE(smooth.shape() == Shape{1, 1, 500});
  // numpy.convolve(sin(linspace(0, 10, 500)), ones(10) / 10, 'same')
  const std::pair<std::int64_t, double> numpy[] = {
      {0, 0.020026670006978158}, {1, 0.030029951434291626},  {4, 0.07197061392447926},
      {5, 0.08990905945316967},  {250, -0.9573364803583919}, {494, -0.447681725740643},
      {495, -0.465473218481137}, {499, -0.3006149229692488}};
  for (const auto& [i, want] : numpy) {
    INFO("index " << i);
    CHECK(std::abs(smooth.at<float>({0, 0, i}) - want) <= 1e-6);
  }
  CHECK(std::abs(smooth.sum().item() - 92.25642549413399) <= 1e-4);
}

// "smooth_image = jsp.signal.convolve(noisy_image, window, mode='same')" with the 7x7 Gaussian
// window norm.pdf(x) * norm.pdf(x[:, None]), x = linspace(-3, 3, 7), on scipy's 768x1024 face.
// The photograph and the noise are not in the seed; a constant image shows the shape and where
// the zero padding falls (interior: the window's sum, 0.99945879; corner: its lower-right quarter).
TEST_CASE("seeds/jax: 2-D Gaussian smoothing, jax.scipy.signal.convolve mode='same'",
          "[seeds][jax]") {
  const double pi = std::acos(-1.0);
  std::vector<double> pdf, win;
  for (int i = 0; i < 7; ++i) pdf.push_back(std::exp(-0.5 * (i - 3) * (i - 3)) / std::sqrt(2 * pi));
  for (double a : pdf)
    for (double b : pdf) win.push_back(a * b);
  const Tensor window = f32(win, {1, 1, 7, 7});
  const Tensor image = ones({1, 1, 768, 1024});
  const Tensor smooth =
      conv2d(image, window, {}, ConvOptions().flip_kernel().padding(PaddingKind::Same));
  REQUIRE(smooth.shape() == Shape{1, 1, 768, 1024});
  CHECK(std::abs(smooth.at<float>({0, 0, 400, 500}) - 0.9994587918263369) <= 1e-6);
  double quarter = 0;
  for (int i = 3; i < 7; ++i)
    for (int j = 3; j < 7; ++j)
      quarter += pdf[static_cast<std::size_t>(i)] * pdf[static_cast<std::size_t>(j)];
  CHECK(std::abs(smooth.at<float>({0, 0, 0, 0}) - quarter) <= 1e-6);
  CHECK(std::abs(smooth.at<float>({0, 0, 767, 1023}) - quarter) <= 1e-6);
}

// ================================================================================================
// PuzzleLib Conv2D (seed 004): data = arange(25).reshape(1, 1, 5, 5), two output maps with
// customW(size): w1 = the identity, w2 = the anti-diagonal -1, -2, ..., -size; no bias.
// ================================================================================================

namespace {

Tensor puzzle_data() {
  return arange(25.0).reshape({1, 1, 5, 5});
}

Tensor custom_w(std::int64_t size) {
  std::vector<double> v(static_cast<std::size_t>(2 * size * size), 0.0);
  for (std::int64_t i = 0; i < size; ++i) {
    v[static_cast<std::size_t>(i * size + i)] = 1.0;
    v[static_cast<std::size_t>(size * size + i * size + (size - 1 - i))] = -(i + 1.0);
  }
  return f32(v, {2, 1, size, size});
}

}  // namespace

TEST_CASE("seeds/puzzlelib: customW and the basic example (size 2)", "[seeds][puzzlelib]") {
  check_exact(custom_w(2), {1, 0, 0, 1, 0, -1, -2, 0}, {2, 1, 2, 2});
  const Tensor out = conv2d(puzzle_data(), custom_w(2));
  check_exact(out, {6,   8,   10,  12,  16,  18,  20,  22,  26,  28,  30,  32,  36,  38,  40,  42,
                    -11, -14, -17, -20, -26, -29, -32, -35, -41, -44, -47, -50, -56, -59, -62, -65},
              {1, 2, 4, 4});
}

TEST_CASE("seeds/puzzlelib: size, pad, stride and dilation examples", "[seeds][puzzlelib]") {
  const Tensor data = puzzle_data();
  SECTION("size=3") {
    check_exact(
        conv2d(data, custom_w(3)),
        {18, 21, 24, 33, 36, 39, 48, 51, 54, -44, -50, -56, -74, -80, -86, -104, -110, -116},
        {1, 2, 3, 3});
  }
  SECTION("size=3, pad=1 (the padded map as printed)") {
    std::vector<double> padded(49, 0.0);
    for (int i = 0; i < 5; ++i)
      for (int j = 0; j < 5; ++j) padded[static_cast<std::size_t>((i + 1) * 7 + j + 1)] = i * 5 + j;
    check_exact(pad(data, {{1, 1}, {1, 1}}), padded, {1, 1, 7, 7});
    const Tensor out = conv2d(data, custom_w(3), {}, ConvOptions().padding(1));
    check_exact(out, {6,   8,   10,   12,   4,    16,   18,  21,  24,  12,  26,  33,  36,
                      39,  22,  36,   48,   51,   54,   32,  20,  36,  38,  40,  42,  0,
                      -17, -22, -27,  -32,  -11,  -44,  -50, -56, -57, -26, -74, -80, -86,
                      -82, -41, -104, -110, -116, -107, -56, -59, -62, -65, -48},
                {1, 2, 5, 5});
    CHECK(ct_test::equal(conv2d(pad(data, {{1, 1}, {1, 1}}), custom_w(3)), out));
  }
  SECTION("size=3, pad=(1, 0)") {
    check_exact(
        conv2d(data, custom_w(3), {}, ConvOptions().padding(std::vector<std::int64_t>{1, 0})),
        {8,   10,  12,  18,  21,  24,  33,  36,  39,  48,   51,   54,   36,  38,  40,
         -17, -22, -27, -44, -50, -56, -74, -80, -86, -104, -110, -116, -59, -62, -65},
        {1, 2, 5, 3});
  }
  SECTION("size=2, stride=2") {
    check_exact(conv2d(data, custom_w(2), {}, ConvOptions().stride(2)),
                {6, 10, 26, 30, -11, -17, -41, -47}, {1, 2, 2, 2});
  }
  SECTION("size=2, stride=2, pad=3") {
    check_exact(
        conv2d(data, custom_w(2), {}, ConvOptions().stride(2).padding(3)),
        {0, 0, 0, 0, 0, 0, 0, 2,  4,  0, 0, 10, 18,  22,  0, 0, 20,  38,  42,  0, 0, 0, 0, 0, 0,
         0, 0, 0, 0, 0, 0, 0, -2, -6, 0, 0, -5, -29, -35, 0, 0, -15, -59, -65, 0, 0, 0, 0, 0, 0},
        {1, 2, 5, 5});
  }
  SECTION("size=2, stride=(2, 4), pad=3") {
    check_exact(conv2d(data, custom_w(2), {},
                       ConvOptions().stride(std::vector<std::int64_t>{2, 4}).padding(3)),
                {0, 0, 0, 0, 2,  0, 0, 18,  0, 0, 38,  0, 0, 0, 0,
                 0, 0, 0, 0, -2, 0, 0, -29, 0, 0, -59, 0, 0, 0, 0},
                {1, 2, 5, 3});
  }
  SECTION("size=2, dilation=2") {
    check_exact(conv2d(data, custom_w(2), {}, ConvOptions().dilation(2)),
                {12, 14, 16, 22, 24, 26, 32, 34, 36, -22, -25, -28, -37, -40, -43, -52, -55, -58},
                {1, 2, 3, 3});
  }
  SECTION("size=2, dilation=(3, 1)") {
    check_exact(
        conv2d(data, custom_w(2), {}, ConvOptions().dilation(std::vector<std::int64_t>{3, 1})),
        {16, 18, 20, 22, 26, 28, 30, 32, -31, -34, -37, -40, -46, -49, -52, -55}, {1, 2, 2, 4});
  }
}

// "from the first inmaps/groups = 4 input maps come outmaps/groups = 8 output maps, and the same
// for the remaining fours": W (32, 16, 2, 2) with groups=1, (32, 4, 2, 2) with groups=4.
TEST_CASE("seeds/puzzlelib: groups", "[seeds][puzzlelib]") {
  manual_seed(5);
  const Tensor x = randn({1, 16, 5, 5});
  const Tensor w1 = randn({32, 16, 2, 2}), b = randn({32});
  CHECK(conv2d(x, w1, b).shape() == Shape{1, 32, 4, 4});
  const Tensor w4 = randn({32, 4, 2, 2});
  const Tensor out = conv2d(x, w4, b, ConvOptions().groups(4));
  REQUIRE(out.shape() == Shape{1, 32, 4, 4});
  for (std::int64_t g = 0; g < 4; ++g) {
    INFO("group " << g);
    const Tensor alone =
        conv2d(narrow(x, 1, 4 * g, 4).contiguous(), narrow(w4, 0, 8 * g, 8).contiguous(),
               narrow(b, 0, 8 * g, 8).contiguous());
    CHECK(ct_test::allclose(narrow(out, 1, 8 * g, 8).contiguous(), alone, 1e-5, 1e-6));
  }
  // A weight laid out for groups=1 is refused with groups=4, and the other way round.
  CT_REQUIRE_ERROR(conv2d(x, w1, b, ConvOptions().groups(4)),
                   "= 16 * 4 = 64, got input [1, 16, 5, 5] with C = 16");
  CT_REQUIRE_ERROR(conv2d(x, w4, b), "= 4 * 1 = 4, got input [1, 16, 5, 5] with C = 16");
}

// Depthwise separable block: Conv2D(3, 3, size=4, groups=3) then Conv2D(3, 32, size=1), with bias
// (useBias defaults to True); W shapes (3, 1, 4, 4) and (32, 3, 1, 1); data randn(1, 3, 5, 5).
TEST_CASE("seeds/puzzlelib: depthwise separable block", "[seeds][puzzlelib]") {
  manual_seed(6);
  const Tensor data = randn({1, 3, 5, 5});
  const Tensor dw = randn({3, 1, 4, 4}), db = randn({3});
  const Tensor pw = randn({32, 3, 1, 1}), pb = randn({32});
  const Tensor mid = conv2d(data, dw, db, ConvOptions().groups(3));
  REQUIRE(mid.shape() == Shape{1, 3, 2, 2});
  for (std::int64_t c = 0; c < 3; ++c) {
    INFO("map " << c);
    const Tensor alone = conv2d(narrow(data, 1, c, 1).contiguous(),
                                narrow(dw, 0, c, 1).contiguous(), narrow(db, 0, c, 1).contiguous());
    CHECK(ct_test::allclose(narrow(mid, 1, c, 1).contiguous(), alone, 1e-5, 1e-6));
  }
  const Tensor out = conv2d(mid, pw, pb);
  REQUIRE(out.shape() == Shape{1, 32, 2, 2});
  // Pointwise = a matrix product over the channels at every pixel.
  const Tensor mm = add(matmul(reshape(pw, {32, 3}), reshape(mid, {3, 4})), reshape(pb, {32, 1}));
  CHECK(ct_test::allclose(reshape(out, {32, 4}), mm, 1e-5, 1e-6));
}

// ================================================================================================
// mygrad conv_nd (seed 002)
// ================================================================================================

TEST_CASE("seeds/mygrad: square wave * constant kernel, and its gradients", "[seeds][mygrad]") {
  // x = zeros((1, 1, 16)); x[..., 5:11] = 1; k = ones((1, 1, 5))
  std::vector<double> xv(16, 0.0);
  std::fill(xv.begin() + 5, xv.begin() + 11, 1.0);
  Tensor x = f32(xv, {1, 1, 16}).requires_grad_(true);
  Tensor k = ones({1, 1, 5}).requires_grad_(true);
  const Tensor y = conv1d(x, k, {}, ConvOptions().stride(1));
  check_exact(y.detach(), {0, 1, 2, 3, 4, 5, 5, 4, 3, 2, 1, 0}, {1, 1, 12});
  y.sum().backward();
  check_exact(x.grad(), {1, 2, 3, 4, 5, 5, 5, 5, 5, 5, 5, 5, 4, 3, 2, 1}, {1, 1, 16});
  check_exact(k.grad(), {6, 6, 6, 6, 6}, {1, 1, 5});
}

TEST_CASE("seeds/mygrad: 2-D and 3-D shapes", "[seeds][mygrad]") {
  manual_seed(7);
  // x = rand(10, 3, 32, 32); k = rand(5, 3, 2, 2); conv_nd(x, k, stride=2).shape
  const Tensor x = rand({10, 3, 32, 32}), k = rand({5, 3, 2, 2});
  const Tensor y = conv(x, k, {}, ConvOptions().stride(2));
  CHECK(y.shape() == Shape{10, 5, 16, 16});
  NaiveConv p = naive_options(2);
  p.stride = {2, 2};
  CHECK(ct_test::allclose(y, naive_conv(x, k, p), 1e-5, 1e-6));

  // x = rand(1, 1, 10, 12, 10); "shape-(F=2, C=1, Wx=3, Wy=1, Wz=2)" -> (1, 2, 8, 12, 9). The
  // docstring's code says rand(2, 1, 3, 1, 32), a typo: a 32-wide kernel cannot fit Z = 10, and
  // the printed shape is that of the commented (3, 1, 2) kernel.
  const Tensor x3 = rand({1, 1, 10, 12, 10});
  const Tensor k3 = rand({2, 1, 3, 1, 2});
  const Tensor y3 = conv(x3, k3, {}, ConvOptions().stride(1));
  CHECK(y3.shape() == Shape{1, 2, 8, 12, 9});
  CHECK(ct_test::allclose(y3, naive_conv(x3, k3, naive_options(3)), 1e-5, 1e-6));
  CT_REQUIRE_ERROR(conv(x3, rand({2, 1, 3, 1, 32}), {}, ConvOptions().stride(1)),
                   "no larger than the padded input");
}

// The meerkat example: an (H, W, 3) RGB image treated as a batch of three greyscale images
// (3, 1, H, W), convolved with the 3x3 edge-detection kernel [[-1,-1,-1], [-1,8,-1], [-1,-1,-1]],
// then squeezed and transposed back to (H', W', 3). The photograph is not in the seed; a synthetic
// image with one bright rectangle per channel stands in for it.
TEST_CASE("seeds/mygrad: edge detection on each colour channel", "[seeds][mygrad]") {
  const std::int64_t h = 24, w = 30;
  std::vector<double> rgb(static_cast<std::size_t>(h * w * 3), 0.0);
  for (std::int64_t c = 0; c < 3; ++c)
    for (std::int64_t i = 4 + 2 * c; i < 14 + 2 * c; ++i)
      for (std::int64_t j = 5 + 3 * c; j < 20 + 3 * c; ++j)
        rgb[static_cast<std::size_t>((i * w + j) * 3 + c)] = 1.0;
  const Tensor img = f32(rgb, {h, w, 3});
  const Tensor x = unsqueeze(permute(img, {2, 0, 1}), 1).contiguous();  // (3, 1, H, W)
  const Tensor kernel = f32({-1, -1, -1, -1, 8, -1, -1, -1, -1}, {1, 1, 3, 3});
  const Tensor processed =
      conv(x, kernel, {}, ConvOptions().stride(std::vector<std::int64_t>{1, 1}));
  REQUIRE(processed.shape() == Shape{3, 1, h - 2, w - 2});
  const Tensor hwc = permute(squeeze(processed), {1, 2, 0});
  CHECK(hwc.shape() == Shape{h - 2, w - 2, 3});
  CHECK(ct_test::equal(processed.to(kFloat64), naive_conv(x, kernel, naive_options(2))));
  // Flat regions give 0, an inner corner of a rectangle 8 - 3 = 5, an edge 8 - 5 = 3.
  CHECK(hwc.at<float>({0, 0, 0}) == 0.0f);
  CHECK(hwc.at<float>({8, 10, 0}) == 0.0f);  // inside channel 0's rectangle
  CHECK(hwc.at<float>({3, 4, 0}) == 5.0f);   // its top-left corner pixel (4, 5)
  CHECK(hwc.at<float>({3, 8, 0}) == 3.0f);   // its top edge
}

// ================================================================================================
// probml / d2l conv notebook (seed 001)
// ================================================================================================

namespace {

// corr2d(X, K) for a 2-D X and K: one image, one channel.
Tensor corr2d(const Tensor& x, const Tensor& k) {
  return squeeze(conv2d(unsqueeze(unsqueeze(x, 0), 0), unsqueeze(unsqueeze(k, 0), 0)));
}

// X = ones((6, 8)); X[:, 2:6] = 0
Tensor stripe_image() {
  std::vector<double> v;
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 8; ++j) v.push_back(j >= 2 && j < 6 ? 0.0 : 1.0);
  return f32(v, {6, 8});
}

}  // namespace

TEST_CASE("seeds/d2l: corr2d", "[seeds][d2l]") {
  const Tensor x = f32({0, 1, 2, 3, 4, 5, 6, 7, 8}, {3, 3});
  const Tensor k = f32({0, 1, 2, 3}, {2, 2});
  check_exact(corr2d(x, k), {19, 25, 37, 43}, {2, 2});
}

TEST_CASE("seeds/d2l: edge detection with [[1, -1]]", "[seeds][d2l]") {
  const Tensor x = stripe_image();
  check_exact(x, {1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1,
                  1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1},
              {6, 8});
  const Tensor k = f32({1, -1}, {1, 2});
  std::vector<double> want;
  for (int i = 0; i < 6; ++i) want.insert(want.end(), {0, 1, 0, 0, 0, -1, 0});
  check_exact(corr2d(x, k), want, {6, 7});
  // "It fails to detect horizontal edges": corr2d(X.T, K) is all zeros, shape (8, 5).
  check_exact(corr2d(transpose(x, 0, 1).contiguous(), k), std::vector<double>(40, 0.0), {8, 5});
}

// kernel2matrix(K) for K = [[1, 2], [3, 4]] on a 3x3 input: the 4x9 matrix W with
// corr2d(X, K) = (W @ X.reshape(-1)).reshape(2, 2). Its columns are the convolution of the unit
// images, and W^T is the transposed convolution.
TEST_CASE("seeds/d2l: convolution as matrix multiplication", "[seeds][d2l]") {
  const Tensor k = f32({1, 2, 3, 4}, {1, 1, 2, 2});
  std::vector<double> wm(4 * 9, 0.0);
  for (std::int64_t j = 0; j < 9; ++j) {
    std::vector<double> e(9, 0.0);
    e[static_cast<std::size_t>(j)] = 1.0;
    const auto col = conv2d(f32(e, {1, 1, 3, 3}), k).to_vector<double>();
    for (std::size_t i = 0; i < 4; ++i) wm[i * 9 + static_cast<std::size_t>(j)] = col[i];
  }
  const std::vector<double> printed = {1, 2, 0, 3, 4, 0, 0, 0, 0, 0, 1, 2, 0, 3, 4, 0, 0, 0,
                                       0, 0, 0, 1, 2, 0, 3, 4, 0, 0, 0, 0, 0, 1, 2, 0, 3, 4};
  CHECK(wm == printed);
  const Tensor w = f32(printed, {4, 9});
  const Tensor x = arange(9.0).reshape({1, 1, 3, 3});
  const Tensor y = conv2d(x, k);
  check_exact(y, {27, 37, 57, 67}, {1, 1, 2, 2});
  CHECK(ct_test::equal(reshape(matmul(w, reshape(x, {9})), {1, 1, 2, 2}), y));
  const Tensor g = f32({1, -2, 3, 4}, {1, 1, 2, 2});
  CHECK(ct_test::equal(conv_transpose2d(g, k),
                       reshape(matmul(transpose(w, 0, 1), reshape(g, {4})), {1, 1, 3, 3})));
}

// The kernel-learning loop: Conv(1, kernel (1, 2), no padding, no bias) fitted to Y = corr2d(X,
// [[1, -1]]) by 10 full-batch steps of gradient descent, lr 3e-2, on sum((conv(X) - Y)^2). The
// notebook prints the losses at steps 2, 4, ..., 10 (19.368, 5.172, 1.655, 0.600, 0.233) and the
// learned kernel [[1.0312853, -0.93357116]]; its initial kernel comes from flax's random init and
// is not printed. The loop is linear in the kernel, so running it backwards from the printed final
// kernel gives the start: [-0.06909117, 0.97912502]. From there the five printed losses are an
// independent check of ours.
TEST_CASE("seeds/d2l: learning the edge kernel reproduces the printed losses", "[seeds][d2l]") {
  const Tensor x = reshape(stripe_image(), {1, 1, 6, 8});
  const Tensor y = conv2d(x, f32({1, -1}, {1, 1, 1, 2}));
  REQUIRE(y.shape() == Shape{1, 1, 6, 7});  // "(6, 7)"
  Tensor k = f32({-0.06909117, 0.97912502}, {1, 1, 1, 2}).requires_grad_(true);
  const double printed[] = {19.368, 5.172, 1.655, 0.600, 0.233};
  for (int i = 0; i < 10; ++i) {
    const Tensor loss = mse_loss(conv2d(x, k), y, Reduction::Sum);
    const double l = loss.item();
    loss.backward();
    {
      NoGradGuard no_grad;
      k.add_(k.grad(), -3e-2);
    }
    k.zero_grad();
    if ((i + 1) % 2 == 0) {
      INFO("batch " << i + 1 << ", loss " << l);
      CHECK(std::abs(l - printed[i / 2]) <= 5e-4);
    }
  }
  const auto learned = k.to_vector<double>();
  CHECK(std::abs(learned[0] - 1.0312853) <= 1e-5);
  CHECK(std::abs(learned[1] + 0.93357116) <= 1e-5);
}

TEST_CASE("seeds/d2l: multiple input channels", "[seeds][d2l]") {
  // X (2, 3, 3), K (2, 2, 2): corr2d_multi_in sums the per-channel correlations.
  const Tensor x = f32({0, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 2, 3, 3});
  const Tensor k = f32({0, 1, 2, 3, 1, 2, 3, 4}, {1, 2, 2, 2});
  check_exact(conv2d(x, k), {56, 72, 104, 120}, {1, 1, 2, 2});
}

// K = stack((K, K + 1, K + 2)): (3, 2, 2, 2) -> out (3, 2, 2). The notebook prints the shapes; the
// values are those of the d2l book, where this example prints them.
TEST_CASE("seeds/d2l: multiple output channels", "[seeds][d2l]") {
  const Tensor x = f32({0, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 2, 3, 3});
  const Tensor k = f32({0, 1, 2, 3, 1, 2, 3, 4}, {1, 2, 2, 2});
  const Tensor k3 = cat({k, add(k, 1.0), add(k, 2.0)}, 0);
  CHECK(k3.shape() == Shape{3, 2, 2, 2});
  check_exact(squeeze(conv2d(x, k3), 0), {56, 72, 104, 120, 76, 100, 148, 172, 96, 128, 192, 224},
              {3, 2, 2});
}

// corr2d_multi_in_out_1x1: a 1x1 convolution is the matrix K (c_o, c_i) times X (c_i, h*w). The
// notebook draws X (3, 3, 3) and K (2, 3, 1, 1) from a truncated normal and asserts
// |Y1 - Y2|.sum() < 1e-6 with Y2.shape == (2, 3, 3); its draws are not printed, ours are seeded.
TEST_CASE("seeds/d2l: 1x1 convolution is a matrix product", "[seeds][d2l]") {
  manual_seed(8);
  const Tensor x = randn({3, 3, 3}), k = randn({2, 3, 1, 1});
  const Tensor y1 = reshape(matmul(reshape(k, {2, 3}), reshape(x, {3, 9})), {2, 3, 3});
  const Tensor y2 = squeeze(conv2d(unsqueeze(x, 0), k), 0);
  CHECK(y2.shape() == Shape{2, 3, 3});
  CHECK(abs(sub(y1, y2)).sum().item() < 1e-6);
}
