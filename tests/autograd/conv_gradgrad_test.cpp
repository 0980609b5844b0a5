// Second derivatives of ops/conv: a seeded float64 gradgradcheck sweep of conv (spatial ranks 1 to
// 3, groups including depthwise, strides, kernel and input dilation, symmetric / per-side / SAME /
// SAME_LOWER / VALID padding, bias, flipped kernels, conv1d/2d/3d), conv_transpose (stride,
// padding, output_padding, dilation, groups, bias, conv_transpose1d/2d/3d) and conv_general (JAX
// layouts, feature and batch groups, lhs / rhs dilation, negative padding), differentiating x
// only, w only, x and w, or x, w and b; and exact second and third derivatives of small-integer
// convolutions against the nested-loop reference of tests/support/conv_reference.h.
//
// A conv is bilinear in (x, w): d(dx)/dw and d(dw)/dx are convolutions of the output gradient, so
// every check that differentiates both x and w requires curvature (a non-zero derivative of the
// gradient with respect to the inputs); with one of them only, the gradient is linear in the
// output gradient v and constant in the input, and the check covers d/dv.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "support/conv_reference.h"

using namespace ct_conv;

namespace {

// Which operands a configuration differentiates; the others are constants.
enum class Wrt { X, W, XW, XWB };

const char* wrt_name(Wrt m) {
  switch (m) {
    case Wrt::X:
      return "d/dx";
    case Wrt::W:
      return "d/dw";
    case Wrt::XW:
      return "d/dx+dw";
    case Wrt::XWB:
      return "d/dx+dw+db";
  }
  return "?";
}

Wrt draw_wrt(Draw& d, bool bias) {
  return static_cast<Wrt>(d(0, bias ? 3 : 2));
}

// A float64 operand: a leaf that requires grad when differentiated, a constant otherwise.
Tensor operand(const Shape& shape, bool differentiated) {
  const Tensor t = leaf(shape);
  return differentiated ? t : t.detach();
}

// The element budget of one configuration: x, w and the output together. gradgradcheck compares
// the full Jacobian of the first gradient (inputs x, w and v; outputs dx and dw) when it has at
// most 20000 entries, which this keeps it to.
constexpr std::int64_t kBudget = 120;

bool tiny(const Shape& x, const Shape& w, const Shape& y) {
  return numel(x) + numel(w) + numel(y) <= kBudget;
}

bool any_above_one(const Shape& v) {
  return std::any_of(v.begin(), v.end(), [](std::int64_t e) { return e > 1; });
}

// gradgradcheck of fn at inputs, with curvature required when both x and w are differentiated;
// prints the configuration on failure. Returns 1 (one configuration checked).
int check_second(const std::string& description, Wrt wrt, const GradcheckFn& fn,
                 const std::vector<Tensor>& inputs, std::uint64_t seed) {
  INFO(description << ", " << wrt_name(wrt));
  GradgradcheckOptions o;
  o.seed = seed;
  o.require_curvature = wrt == Wrt::XW || wrt == Wrt::XWB;
  const GradcheckResult r = gradgradcheck(fn, inputs, o);
  INFO(r.report);
  CHECK(r.ok);
  return 1;
}

void print_summary(const std::map<std::string, int>& seen, int total) {
  std::ostringstream s;
  s << "conv gradgradcheck sweep: " << total << " configurations";
  for (const auto& [feature, count] : seen) s << "\n  " << feature << ": " << count;
  WARN(s.str());
}

}  // namespace

TEST_CASE(
    "conv second derivatives: seeded gradgradcheck sweep of conv, conv_transpose and "
    "conv_general",
    "[autograd][conv][gradgradcheck]") {
  manual_seed(1601);
  std::map<std::string, int> seen;  // configurations per feature
  int total = 0;
  std::uint64_t seed = 0;

  // ---- conv
  Draw dc(16010u);
  for (int i = 0; i < 150; ++i) {
    const std::size_t rank = static_cast<std::size_t>(1 + i % 3);
    ConvSpec c = random_conv(dc, rank);
    while (!tiny(c.x_shape(), c.w_shape(), c.geometry()->y_shape())) c = random_conv(dc, rank);
    const Wrt wrt = draw_wrt(dc, c.bias);
    seen["conv"]++;
    seen["rank " + std::to_string(c.rank())]++;
    seen[c.mode == PaddingKind::Explicit ? (c.symmetric ? "padding symmetric" : "padding per-side")
                                         : std::string("padding ") + mode_name(c.mode)]++;
    seen["groups"] += c.groups > 1 && c.groups < c.channels;
    seen["depthwise"] += c.groups > 1 && c.groups == c.channels;
    seen["stride"] += any_above_one(c.stride);
    seen["kernel dilation"] += any_above_one(c.dilation);
    seen["input dilation"] += any_above_one(c.input_dilation);
    seen["bias"] += c.bias;
    seen["flipped kernel"] += c.flip;
    seen["conv1d/2d/3d"] += c.wrapper;
    seen[wrt_name(wrt)]++;
    std::vector<Tensor> inputs{operand(c.x_shape(), wrt != Wrt::W),
                               operand(c.w_shape(), wrt != Wrt::X)};
    if (c.bias) inputs.push_back(operand(c.b_shape(), wrt == Wrt::XWB));
    total += check_second(
        c.describe(), wrt,
        [c](const std::vector<Tensor>& v) { return c.apply(v[0], v[1], c.bias ? v[2] : Tensor()); },
        inputs, seed++);
  }

  // ---- conv_transpose
  Draw dt(16020u);
  for (int i = 0; i < 90; ++i) {
    const std::size_t rank = static_cast<std::size_t>(1 + i % 3);
    TransposeSpec t = random_transpose(dt, rank);
    while (!tiny(t.x_shape(), t.w_shape(), t.y_shape())) t = random_transpose(dt, rank);
    const Wrt wrt = draw_wrt(dt, t.bias);
    seen["conv_transpose"]++;
    seen["conv_transpose rank " + std::to_string(t.rank())]++;
    seen["conv_transpose output_padding"] += std::any_of(
        t.output_padding.begin(), t.output_padding.end(), [](std::int64_t e) { return e > 0; });
    seen["conv_transpose groups"] += t.groups > 1;
    seen["conv_transpose stride"] += any_above_one(t.stride);
    seen["conv_transpose dilation"] += any_above_one(t.dilation);
    seen["conv_transpose padding"] +=
        std::any_of(t.padding.begin(), t.padding.end(), [](std::int64_t e) { return e > 0; });
    seen["conv_transpose bias"] += t.bias;
    seen["conv_transpose1d/2d/3d"] += t.ranked;
    seen[wrt_name(wrt)]++;
    std::vector<Tensor> inputs{operand(t.x_shape(), wrt != Wrt::W),
                               operand(t.w_shape(), wrt != Wrt::X)};
    if (t.bias) inputs.push_back(operand(t.b_shape(), wrt == Wrt::XWB));
    total += check_second(
        t.describe(), wrt,
        [t](const std::vector<Tensor>& v) { return t.apply(v[0], v[1], t.bias ? v[2] : Tensor()); },
        inputs, seed++);
  }

  // ---- conv_general (no bias)
  Draw dg(16030u);
  for (int i = 0; i < 120; ++i) {
    GeneralSpec c = random_general(dg);
    while (!tiny(c.lhs_shape(), c.rhs_shape(), c.geometry()->y_shape())) c = random_general(dg);
    const Wrt wrt = draw_wrt(dg, false);
    seen["conv_general"]++;
    seen["conv_general rank " + std::to_string(c.rank())]++;
    seen["conv_general non-NC* layout"] += std::string(c.layout.lhs).rfind("NC", 0) != 0 ||
                                           std::string(c.layout.out).rfind("NC", 0) != 0;
    seen["conv_general feature groups"] += c.fgc > 1;
    seen["conv_general batch groups"] += c.bgc > 1;
    seen["conv_general lhs dilation"] += any_above_one(c.lhs_dilation);
    seen["conv_general rhs dilation"] += any_above_one(c.rhs_dilation);
    seen["conv_general stride"] += any_above_one(c.strides);
    seen["conv_general negative padding"] += std::any_of(
        c.pads.begin(), c.pads.end(), [](const auto& lh) { return lh.first < 0 || lh.second < 0; });
    seen[c.mode == PaddingKind::Explicit ? "conv_general explicit padding"
                                         : std::string("conv_general ") + mode_name(c.mode)]++;
    seen[wrt_name(wrt)]++;
    const ConvGeneralOptions o = c.options();
    total += check_second(
        c.describe(), wrt,
        [o](const std::vector<Tensor>& v) { return conv_general(v[0], v[1], o); },
        {operand(c.lhs_shape(), wrt != Wrt::W), operand(c.rhs_shape(), wrt != Wrt::X)}, seed++);
  }

  print_summary(seen, total);
  REQUIRE(total >= 150);
  // Every feature of the brief drawn often enough to mean something.
  for (const char* feature : {"rank 1",
                              "rank 2",
                              "rank 3",
                              "groups",
                              "depthwise",
                              "stride",
                              "kernel dilation",
                              "input dilation",
                              "padding symmetric",
                              "padding per-side",
                              "padding SAME",
                              "padding SAME_LOWER",
                              "padding VALID",
                              "bias",
                              "flipped kernel",
                              "conv1d/2d/3d",
                              "conv_transpose rank 1",
                              "conv_transpose rank 2",
                              "conv_transpose rank 3",
                              "conv_transpose output_padding",
                              "conv_transpose groups",
                              "conv_transpose dilation",
                              "conv_transpose stride",
                              "conv_transpose bias",
                              "conv_general rank 3",
                              "conv_general non-NC* layout",
                              "conv_general feature groups",
                              "conv_general batch groups",
                              "conv_general lhs dilation",
                              "conv_general negative padding",
                              "d/dx",
                              "d/dw",
                              "d/dx+dw",
                              "d/dx+dw+db"}) {
    INFO(feature);
    CHECK(seen[feature] >= 5);
  }
}

// ============================================================================ exact values
//
// With y = conv(x, w) summing x[xi] * w[wi] into y[yi] over the taps (xi, wi, yi), and an output
// gradient v: dx = sum v[yi] w[wi] into xi, dw = sum v[yi] x[xi] into wi. For constants c and e,
//   d/dw <dx, c> = sum c[xi] v[yi] into wi  (the reference's dw with x := c)
//   d/dv <dx, c> = sum c[xi] w[wi] into yi  (the reference's forward with x := c)
//   d/dx <dw, c> = sum v[yi] c[wi] into xi  (the reference's dx with w := c)
//   d/dv <dw, c> = sum x[xi] c[wi] into yi  (the reference's forward with w := c)
// and one order further, d/dv <d/dw <dx, c>, e> = sum c[xi] e[wi] into yi. Small-integer data
// keeps every value exact in float64, so they are compared with ==.

namespace {

struct Exact {
  std::string what;
  Taps taps;
  Shape x_shape, w_shape, y_shape;
  std::function<Tensor(const Tensor&, const Tensor&)> apply;
};

void check_exact_second(const Exact& e, Draw& d) {
  INFO(e.what);
  const Values xv = small_ints(e.x_shape, d), wv = small_ints(e.w_shape, d);
  const Values vv = small_ints(e.y_shape, d), cx = small_ints(e.x_shape, d);
  const Values cw = small_ints(e.w_shape, d), ew = small_ints(e.w_shape, d);
  const Tensor x = as_tensor(xv, e.x_shape, true, kFloat64);
  const Tensor w = as_tensor(wv, e.w_shape, true, kFloat64);
  const Tensor v = as_tensor(vv, e.y_shape, true, kFloat64);
  const Tensor y = e.apply(x, w);
  REQUIRE(y.shape() == e.y_shape);
  CHECK(values_of(y) == ref_forward(e.taps, xv, wv, {}, e.y_shape));

  const auto g = autograd::grad({y}, {x, w}, {v}, {.create_graph = true});
  REQUIRE(g[0].requires_grad());
  REQUIRE(g[1].requires_grad());
  const RefGrads first = ref_backward(e.taps, xv, wv, vv, e.y_shape);
  CHECK(values_of(g[0]) == first.dx);
  CHECK(values_of(g[1]) == first.dw);

  // Second order through dx: with respect to w and v (x does not reach dx).
  const Tensor c = as_tensor(cx, e.x_shape, false, kFloat64);
  const auto hx = autograd::grad({sum(mul(g[0], c))}, {x, w, v}, {},
                                 {.create_graph = true, .allow_unused = true});
  CHECK_FALSE(hx[0].defined());
  CHECK(values_of(hx[1]) == ref_backward(e.taps, cx, wv, vv, e.y_shape).dw);
  CHECK(values_of(hx[2]) == ref_forward(e.taps, cx, wv, {}, e.y_shape));

  // Second order through dw: with respect to x and v.
  const Tensor cwt = as_tensor(cw, e.w_shape, false, kFloat64);
  const auto hw = autograd::grad({sum(mul(g[1], cwt))}, {x, w, v}, {},
                                 {.retain_graph = true, .allow_unused = true});
  CHECK(values_of(hw[0]) == ref_backward(e.taps, xv, cw, vv, e.y_shape).dx);
  CHECK_FALSE(hw[1].defined());
  CHECK(values_of(hw[2]) == ref_forward(e.taps, xv, cw, {}, e.y_shape));

  // Third order: d/dv <d/dw <dx, c>, e>.
  REQUIRE(hx[1].requires_grad());
  const Tensor et = as_tensor(ew, e.w_shape, false, kFloat64);
  const auto t = autograd::grad({sum(mul(hx[1], et))}, {v});
  CHECK(values_of(t[0]) == ref_forward(e.taps, cx, ew, {}, e.y_shape));
}

}  // namespace

TEST_CASE("conv second and third derivatives: exact small-integer values against the reference",
          "[autograd][conv]") {
  Draw d(16040u);
  std::vector<Exact> cases;
  {
    // 2-D, groups 2, stride (2, 1), per-side padding, kernel dilation (1, 2).
    ConvSpec c = spec({2, 4, 5, 6}, {2, 2}, 6, 2);
    c.stride = {2, 1};
    c.pads = {{1, 0}, {0, 2}};
    c.dilation = {1, 2};
    const Geometry g = *c.geometry();
    cases.push_back({c.describe(), conv_taps(g), c.x_shape(), c.w_shape(), g.y_shape(),
                     [c](const Tensor& x, const Tensor& w) { return c.apply(x, w, {}); }});
  }
  {
    // 1-D depthwise, input dilation 2, SAME padding, flipped kernel.
    ConvSpec c = spec({1, 3, 5}, {3}, 3, 3);
    c.input_dilation = {2};
    c.mode = PaddingKind::Same;
    c.flip = true;
    const Geometry g = *c.geometry();
    cases.push_back({c.describe(), conv_taps(g), c.x_shape(), c.w_shape(), g.y_shape(),
                     [c](const Tensor& x, const Tensor& w) { return c.apply(x, w, {}); }});
  }
  {
    // 3-D, stride 2, symmetric padding 1.
    ConvSpec c = spec({1, 2, 3, 4, 3}, {2, 2, 2}, 2);
    c.stride = {2};
    c.symmetric = true;
    c.pads = {{1, 1}};
    const Geometry g = *c.geometry();
    cases.push_back({c.describe(), conv_taps(g), c.x_shape(), c.w_shape(), g.y_shape(),
                     [c](const Tensor& x, const Tensor& w) { return c.apply(x, w, {}); }});
  }
  {
    // conv_transpose2d: stride (2, 3), padding (1, 0), output_padding (1, 2), dilation (2, 1),
    // groups 2.
    TransposeSpec t;
    t.batch = 1;
    t.in_channels = 4;
    t.out_channels = 2;
    t.groups = 2;
    t.in = {3, 2};
    t.kernel = {2, 3};
    t.stride = {2, 3};
    t.padding = {1, 0};
    t.output_padding = {1, 2};
    t.dilation = {2, 1};
    t.ranked = true;
    cases.push_back({t.describe(), transpose_taps(t.geometry()), t.x_shape(), t.w_shape(),
                     t.y_shape(),
                     [t](const Tensor& x, const Tensor& w) { return t.apply(x, w, {}); }});
  }
  {
    // conv_general in NCHW / OIHW / NCHW with negative padding (crops) and lhs dilation.
    GeneralSpec c;
    c.layout = {"NCHW", "OIHW", "NCHW"};
    c.batch = 2;
    c.channels = 2;
    c.out_features = 3;
    c.in = {4, 3};
    c.kernel = {2, 2};
    c.strides = {1, 2};
    c.lhs_dilation = {2, 1};
    c.pads = {{-1, 1}, {1, -1}};
    const Geometry g = *c.geometry();
    const ConvGeneralOptions o = c.options();
    cases.push_back({c.describe(), conv_taps(g), c.lhs_shape(), c.rhs_shape(), g.y_shape(),
                     [o](const Tensor& x, const Tensor& w) { return conv_general(x, w, o); }});
  }
  for (const Exact& e : cases) check_exact_second(e, d);
}

TEST_CASE("conv second derivatives: the bias gradient is linear in v and constant in x and w",
          "[autograd][conv]") {
  // db = sum of v over the batch and spatial dims: d/dv <db, c> = c broadcast, d/dx and d/dw of
  // it are zero (unused).
  const Tensor x = tensor({1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, {1, 2, 3}, kFloat64).requires_grad_(true);
  const Tensor w = tensor({1.0, -1.0, 2.0, 0.0}, {2, 2, 1}, kFloat64).requires_grad_(true);
  const Tensor b = tensor({0.5, -0.5}, {2}, kFloat64).requires_grad_(true);
  const Tensor v =
      tensor({1.0, 2.0, 3.0, -1.0, -2.0, -3.0}, {1, 2, 3}, kFloat64).requires_grad_(true);
  const Tensor y = conv1d(x, w, b);
  const auto g = autograd::grad({y}, {x, w, b}, {v}, {.create_graph = true});
  CHECK(g[2].to_vector<double>() == std::vector<double>{6.0, -6.0});
  const Tensor c = tensor({10.0, 100.0}, {2}, kFloat64);
  const auto h = autograd::grad({sum(mul(g[2], c))}, {x, w, v}, {}, {.allow_unused = true});
  CHECK_FALSE(h[0].defined());
  CHECK_FALSE(h[1].defined());
  CHECK(h[2].to_vector<double>() == std::vector<double>{10.0, 10.0, 10.0, 100.0, 100.0, 100.0});
}
