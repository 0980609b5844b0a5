// Host tests of the CUDA convolution's device code and planning, without a GPU: the functors of
// cuda/conv_body.h run sequentially (support/host_launch.h) over CPU buffers, and cuDNN's part is
// played by the CPU kernels run on the geometry the plan hands to cuDNN.
// - The plan (cuda/conv_plan.h): over a seeded sweep of geometries (spatial ranks 1 to 3, groups
//   and depthwise, stride, dilation, input dilation, per-side and negative padding, SAME-style
//   asymmetric padding, conv_transpose's geometries with output_padding), the cuDNN geometry has
//   rank 2 or 3, no input dilation, symmetric padding whose output size is ours, and
//   conv(x~) / its adjoint gathered by ConvUnpad / the weight gradient on x~ equal the CPU
//   results of the original geometry exactly (small-integer data; negative padding, which the
//   front ends never build, against loops written from the definition).
// - ConvPad / ConvUnpad on worked examples, and adjointness <ConvPad x, v> = <x, ConvUnpad v>.
// - The direct kernels (forward, gathered data gradient, chunked weight gradient with its chunk
//   sum) against cpu::conv_* for spatial ranks 1 to 5, float32 and float64, real and integer data.
// - ConvAddBias, the weight-gradient split, the settings and the algorithm cache.
#include <algorithm>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

#include "cpu/conv.h"
#include "cuda/conv_body.h"
#include "cuda/conv_plan.h"
#include "cuda/settings.h"
#include "support/draw.h"
#include "support/host_launch.h"
#include "support/test_util.h"

namespace {

using namespace convtape;
using ct_test::equal;
using cuda::ConvPlan;

using ct_test::Draw;

Shape cat(Shape a, const Shape& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

using ct_test::str;

std::string describe(const ConvGeometry& g) {
  return "N " + std::to_string(g.batch) + " C " + std::to_string(g.channels) + " K " +
         std::to_string(g.out_channels) + " groups " + std::to_string(g.groups) + " in " +
         str(g.in) + " out " + str(g.out) + " kernel " + str(g.kernel) + " stride " +
         str(g.stride) + " dilation " + str(g.dilation) + " input dilation " +
         str(g.input_dilation) + " pad_lo " + str(g.pad_lo);
}

Shape x_shape(const ConvGeometry& g) {
  return cat({g.batch, g.channels}, g.in);
}
Shape y_shape(const ConvGeometry& g) {
  return cat({g.batch, g.out_channels}, g.out);
}
Shape w_shape(const ConvGeometry& g) {
  return cat({g.out_channels, g.group_channels()}, g.kernel);
}

// The per-dim description of one convolution before resolution.
struct Dim {
  std::int64_t in, kernel, stride = 1, dilation = 1, input_dilation = 1, pad_lo = 0, pad_hi = 0;
};

// Resolves per-side padding (either side may be negative) as the front end's formula does; false
// when the dilated kernel does not fit.
bool make_geometry(ConvGeometry& g, std::int64_t n, std::int64_t c, std::int64_t k,
                   std::int64_t groups, const std::vector<Dim>& dims) {
  g = ConvGeometry{};
  g.batch = n;
  g.channels = c;
  g.out_channels = k;
  g.groups = groups;
  for (const Dim& d : dims) {
    const std::int64_t padded = (d.in - 1) * d.input_dilation + 1 + d.pad_lo + d.pad_hi;
    const std::int64_t span = d.dilation * (d.kernel - 1) + 1;
    if (padded < span) return false;
    g.in.push_back(d.in);
    g.kernel.push_back(d.kernel);
    g.stride.push_back(d.stride);
    g.dilation.push_back(d.dilation);
    g.input_dilation.push_back(d.input_dilation);
    g.pad_lo.push_back(d.pad_lo);
    g.out.push_back((padded - span) / d.stride + 1);
  }
  return true;
}

// conv_transpose's geometry as ops/conv.cpp builds it: the transposed input (size `in` per dim)
// plays dy, the transposed output (the returned in) plays x. False for a non-positive size.
bool make_transpose_geometry(ConvGeometry& g, std::int64_t n, std::int64_t cin,
                             std::int64_t cout_per_group, std::int64_t groups,
                             const std::vector<Dim>& dims, const Shape& output_padding) {
  g = ConvGeometry{};
  g.batch = n;
  g.channels = cout_per_group * groups;
  g.out_channels = cin;
  g.groups = groups;
  for (std::size_t i = 0; i < dims.size(); ++i) {
    const Dim& d = dims[i];
    const std::int64_t len =
        (d.in - 1) * d.stride - 2 * d.pad_lo + d.dilation * (d.kernel - 1) + output_padding[i] + 1;
    if (len < 1) return false;
    g.in.push_back(len);
    g.out.push_back(d.in);
    g.kernel.push_back(d.kernel);
    g.stride.push_back(d.stride);
    g.dilation.push_back(d.dilation);
    g.input_dilation.push_back(1);
    g.pad_lo.push_back(d.pad_lo);
  }
  return true;
}

// Values in [-4, 4]: every sum in these tests is then exact in float32 and float64.
Tensor ints(const Shape& shape, DType dtype, Draw& draw) {
  std::vector<double> v(static_cast<std::size_t>(numel(shape)));
  for (double& e : v) e = static_cast<double>(draw(-4, 4));
  return tensor(v, shape, dtype);
}

Tensor reals(const Shape& shape, DType dtype, Draw& draw) {
  std::vector<double> v(static_cast<std::size_t>(numel(shape)));
  for (double& e : v) e = static_cast<double>(draw(-100000, 100000)) / 50000.0;
  return tensor(v, shape, dtype);
}

// Calls f(x index, w index, y index) for every product the convolution sums, from the definition
// (x~[t] with t = o * stride + r * dilation - pad_lo, read where t is a multiple of the input
// dilation inside the input).
template <class F>
void for_each_tap(const ConvGeometry& g, F&& f) {
  const std::size_t s = g.in.size();
  const std::int64_t cg = g.group_channels(), kg = g.group_out_channels();
  const std::int64_t in_n = g.in_numel(), out_n = g.out_numel(), k_n = g.kernel_numel();
  std::vector<std::int64_t> o(s), r(s);
  for (std::int64_t n = 0; n < g.batch; ++n)
    for (std::int64_t k = 0; k < g.out_channels; ++k)
      for (std::int64_t p = 0; p < out_n; ++p) {
        std::int64_t rem = p;
        for (std::size_t d = s; d-- > 0;) {
          o[d] = rem % g.out[d];
          rem /= g.out[d];
        }
        for (std::int64_t rf = 0; rf < k_n; ++rf) {
          rem = rf;
          for (std::size_t d = s; d-- > 0;) {
            r[d] = rem % g.kernel[d];
            rem /= g.kernel[d];
          }
          std::int64_t xin = 0;
          bool inside = true;
          for (std::size_t d = 0; d < s && inside; ++d) {
            const std::int64_t t = o[d] * g.stride[d] + r[d] * g.dilation[d] - g.pad_lo[d];
            const std::int64_t di = g.input_dilation[d];
            inside = t >= 0 && t % di == 0 && t / di < g.in[d];
            xin = xin * g.in[d] + t / di;
          }
          if (!inside) continue;
          const std::int64_t c0 = (k / kg) * cg;
          for (std::int64_t ci = 0; ci < cg; ++ci)
            f((n * g.channels + c0 + ci) * in_n + xin, (k * cg + ci) * k_n + rf,
              (n * g.out_channels + k) * out_n + p);
        }
      }
}

struct Results {
  Tensor y, dx, dw;
};

// y (with bias), dx and dw from the definition, accumulated in double (exact for small integers).
Results reference_loops(const ConvGeometry& g, const Tensor& x, const Tensor& w, const Tensor& b,
                        const Tensor& dy) {
  const auto xv = x.to_vector<double>(), wv = w.to_vector<double>(), dyv = dy.to_vector<double>();
  std::vector<double> y(static_cast<std::size_t>(numel(y_shape(g))), 0.0), dx(xv.size(), 0.0),
      dw(wv.size(), 0.0);
  for_each_tap(g, [&](std::int64_t xi, std::int64_t wi, std::int64_t yi) {
    const auto xu = static_cast<std::size_t>(xi), wu = static_cast<std::size_t>(wi),
               yu = static_cast<std::size_t>(yi);
    y[yu] += xv[xu] * wv[wu];
    dx[xu] += dyv[yu] * wv[wu];
    dw[wu] += dyv[yu] * xv[xu];
  });
  if (b.defined()) {
    const auto bv = b.to_vector<double>();
    for (std::size_t i = 0; i < y.size(); ++i)
      y[i] += bv[static_cast<std::size_t>((static_cast<std::int64_t>(i) / g.out_numel()) %
                                          g.out_channels)];
  }
  const DType t = x.dtype();
  return {tensor(y, y_shape(g), t), tensor(dx, x_shape(g), t), tensor(dw, w_shape(g), t)};
}

Results reference_cpu(const ConvGeometry& g, const Tensor& x, const Tensor& w, const Tensor& b,
                      const Tensor& dy) {
  return {cpu::conv_forward(x, w, b, g), cpu::conv_backward_data(dy, w, g),
          cpu::conv_backward_weight(dy, x, g)};
}

bool front_end_geometry(const ConvGeometry& g) {
  return std::all_of(g.pad_lo.begin(), g.pad_lo.end(), [](std::int64_t p) { return p >= 0; });
}

// x~ = ConvPad(x) run on the host, as [N, C, *P].
Tensor host_pad(const ConvPlan& plan, const ConvGeometry& g, const Tensor& x) {
  const Shape padded(plan.pad.padded, plan.pad.padded + plan.pad.s);
  Tensor xt = Tensor::empty_cpu(cat({g.batch, g.channels}, padded), x.dtype());
  dispatch_floating(x.dtype(), [&]<class T>() {
    ct_test::run_on_host(xt.numel(), cuda::ConvPad<T>{x.data_ptr<T>(), xt.data_ptr<T>(), plan.pad});
  });
  return xt;
}

// dx = ConvUnpad(dx~) run on the host.
Tensor host_unpad(const ConvPlan& plan, const ConvGeometry& g, const Tensor& dxt) {
  Tensor dx = Tensor::empty_cpu(x_shape(g), dxt.dtype());
  dispatch_floating(dxt.dtype(), [&]<class T>() {
    ct_test::run_on_host(dx.numel(),
                         cuda::ConvUnpad<T>{dxt.data_ptr<T>(), dx.data_ptr<T>(), plan.pad});
  });
  return dx;
}

// What the CUDA backend computes for g through cuDNN, with the CPU kernels in cuDNN's place: the
// plan's geometry on x~ (or x), the adjoint gathered back, the bias added afterwards.
Results through_plan(const ConvPlan& plan, const ConvGeometry& g, const Tensor& x, const Tensor& w,
                     const Tensor& b, const Tensor& dy) {
  const ConvGeometry& c = plan.cudnn;
  const Tensor xt = plan.materialise ? host_pad(plan, g, x) : x;
  const Tensor xc = xt.reshape(x_shape(c)), wc = w.reshape(w_shape(c)),
               dyc = dy.reshape(y_shape(c));
  Tensor y = cpu::conv_forward(xc, wc, Tensor(), c).reshape(y_shape(g));
  if (b.defined()) {
    dispatch_floating(y.dtype(), [&]<class T>() {
      ct_test::run_on_host(y.numel(), cuda::ConvAddBias<T>{y.data_ptr<T>(), b.data_ptr<T>(),
                                                           g.out_channels, g.out_numel()});
    });
  }
  const Tensor dxt = cpu::conv_backward_data(dyc, wc, c).reshape(xt.shape());
  const Tensor dx = plan.materialise ? host_unpad(plan, g, dxt) : dxt;
  const Tensor dw = cpu::conv_backward_weight(dyc, xc, c).reshape(w_shape(g));
  return {y, dx, dw};
}

// The plan's promises about the geometry it hands to cuDNN.
void check_cudnn_geometry(const ConvPlan& plan, const ConvGeometry& g) {
  const ConvGeometry& c = plan.cudnn;
  const std::size_t s = g.in.size(), lift = s == 1 ? 1 : 0;
  REQUIRE(!plan.direct);
  CHECK(plan.lifted == (s == 1));
  REQUIRE(c.in.size() == std::max<std::size_t>(s, 2));
  for (const Shape* v : {&c.out, &c.kernel, &c.stride, &c.dilation, &c.input_dilation, &c.pad_lo})
    REQUIRE(v->size() == c.in.size());
  CHECK(c.batch == g.batch);
  CHECK(c.channels == g.channels);
  CHECK(c.out_channels == g.out_channels);
  CHECK(c.groups == g.groups);
  for (std::size_t d = 0; d < c.in.size(); ++d) {
    CHECK(c.input_dilation[d] == 1);
    CHECK(c.pad_lo[d] >= 0);
    CHECK(cuda::cudnn_out_size(c.in[d], c.pad_lo[d], c.kernel[d], c.stride[d], c.dilation[d]) ==
          c.out[d]);
  }
  if (lift) {
    CHECK(c.in[0] == 1);
    CHECK(c.out[0] == 1);
    CHECK(c.kernel[0] == 1);
  }
  for (std::size_t d = 0; d < s; ++d) {
    CHECK(c.out[d + lift] == g.out[d]);
    CHECK(c.kernel[d + lift] == g.kernel[d]);
    CHECK(c.stride[d + lift] == g.stride[d]);
    CHECK(c.dilation[d + lift] == g.dilation[d]);
  }
  // x~ is built only when cuDNN could not run x as it is.
  bool expressible = true;
  for (std::size_t d = 0; d < s; ++d)
    expressible = expressible && g.input_dilation[d] == 1 && g.pad_lo[d] >= 0 &&
                  cuda::cudnn_out_size(g.in[d], g.pad_lo[d], g.kernel[d], g.stride[d],
                                       g.dilation[d]) == g.out[d];
  CHECK(plan.materialise == !expressible);
  if (!plan.materialise) {
    for (std::size_t d = 0; d < s; ++d) {
      CHECK(c.in[d + lift] == g.in[d]);
      CHECK(c.pad_lo[d + lift] == g.pad_lo[d]);
    }
  }
  CHECK(plan.batch_chunk == g.batch);  // small tensors: one cuDNN call
}

// Draws one dim of a convolution (possibly with negative or asymmetric padding).
Dim draw_dim(Draw& draw, bool negative_pads) {
  Dim d;
  d.in = draw(1, 7);
  d.kernel = draw(1, 3);
  d.stride = draw(1, 3);
  d.dilation = draw(1, 2);
  d.input_dilation = draw.one_in(3) ? draw(2, 3) : 1;
  const std::int64_t lo_min = negative_pads ? -2 : 0;
  d.pad_lo = draw(lo_min, 3);
  d.pad_hi = draw.one_in(2) ? d.pad_lo : draw(lo_min, 3);
  return d;
}

// SAME / SAME_LOWER (JAX): out = ceil(in / stride), the odd unit of padding on one side.
Dim same_dim(Draw& draw, bool lower) {
  Dim d;
  d.in = draw(1, 7);
  d.kernel = draw(1, 4);
  d.stride = draw(1, 3);
  d.dilation = draw(1, 2);
  const std::int64_t out = (d.in + d.stride - 1) / d.stride;
  const std::int64_t total =
      std::max<std::int64_t>((out - 1) * d.stride + (d.kernel - 1) * d.dilation + 1 - d.in, 0);
  d.pad_lo = lower ? total - total / 2 : total / 2;
  d.pad_hi = total - d.pad_lo;
  return d;
}

}  // namespace

TEST_CASE("the plan runs every rank 1-3 geometry as a symmetric-padding cuDNN convolution",
          "[cuda][conv][plan]") {
  Draw draw(20240611);
  int checked = 0, materialised = 0, direct_on_x = 0, lifted = 0, negative = 0, transposed = 0;
  for (int iter = 0; iter < 1000 && checked < 600; ++iter) {
    const std::int64_t s = draw(1, 3);
    const int kind = static_cast<int>(draw(0, 5));  // 0-2 explicit, 3 negative, 4 SAME, 5 transpose
    const std::int64_t groups = draw(1, 3);
    const bool depthwise = draw.one_in(4);
    const std::int64_t cg = depthwise ? 1 : draw(1, 2), kg = draw(1, 2);
    const std::int64_t n = draw(1, 2);
    std::vector<Dim> dims;
    ConvGeometry g;
    bool ok = false;
    if (kind == 5) {
      Shape out_pad;
      for (std::int64_t d = 0; d < s; ++d) {
        Dim dim;
        dim.in = draw(1, 5);
        dim.kernel = draw(1, 3);
        dim.stride = draw(1, 3);
        dim.dilation = draw(1, 2);
        dim.pad_lo = draw(0, 2);
        dims.push_back(dim);
        const std::int64_t limit = std::max(dim.stride, dim.dilation);
        out_pad.push_back(draw(0, limit - 1));
      }
      ok = make_transpose_geometry(g, n, kg * groups, cg, groups, dims, out_pad);
    } else {
      for (std::int64_t d = 0; d < s; ++d)
        dims.push_back(kind == 4 ? same_dim(draw, draw.one_in(2)) : draw_dim(draw, kind == 3));
      ok = make_geometry(g, n, cg * groups, kg * groups, groups, dims);
    }
    if (!ok) continue;
    const DType dtype = draw.one_in(2) ? kFloat32 : kFloat64;
    INFO(describe(g) << (dtype == kFloat32 ? " float32" : " float64"));
    const ConvPlan plan = cuda::plan_conv(g);
    check_cudnn_geometry(plan, g);

    const Tensor x = ints(x_shape(g), dtype, draw), w = ints(w_shape(g), dtype, draw);
    const Tensor b = draw.one_in(2) ? ints({g.out_channels}, dtype, draw) : Tensor();
    const Tensor dy = ints(y_shape(g), dtype, draw);
    const bool front_end = front_end_geometry(g);
    const Results want =
        front_end ? reference_cpu(g, x, w, b, dy) : reference_loops(g, x, w, b, dy);
    const Results got = through_plan(plan, g, x, w, b, dy);
    CHECK(equal(got.y, want.y));
    CHECK(equal(got.dx, want.dx));
    CHECK(equal(got.dw, want.dw));

    ++checked;
    materialised += plan.materialise;
    direct_on_x += !plan.materialise;
    lifted += plan.lifted;
    negative += !front_end;
    transposed += kind == 5;
  }
  INFO("checked " << checked << ", materialised " << materialised << ", on x " << direct_on_x
                  << ", lifted " << lifted << ", negative padding " << negative << ", transposed "
                  << transposed);
  CHECK(checked >= 500);
  CHECK(materialised >= 60);
  CHECK(direct_on_x >= 60);
  CHECK(lifted >= 50);
  CHECK(negative >= 20);
  CHECK(transposed >= 30);
}

TEST_CASE("the loop reference agrees with the CPU kernels", "[cuda][conv][plan]") {
  // The sweep above trusts reference_loops for negative padding; here it meets cpu::conv_* on
  // geometries both accept.
  Draw draw(7);
  int checked = 0;
  while (checked < 40) {
    const std::int64_t s = draw(1, 3), groups = draw(1, 2);
    std::vector<Dim> dims;
    for (std::int64_t d = 0; d < s; ++d) dims.push_back(draw_dim(draw, false));
    ConvGeometry g;
    if (!make_geometry(g, 2, 2 * groups, groups * draw(1, 2), groups, dims)) continue;
    INFO(describe(g));
    const Tensor x = ints(x_shape(g), kFloat64, draw), w = ints(w_shape(g), kFloat64, draw);
    const Tensor b = ints({g.out_channels}, kFloat64, draw), dy = ints(y_shape(g), kFloat64, draw);
    const Results a = reference_loops(g, x, w, b, dy), c = reference_cpu(g, x, w, b, dy);
    CHECK(equal(a.y, c.y));
    CHECK(equal(a.dx, c.dx));
    CHECK(equal(a.dw, c.dw));
    ++checked;
  }
}

TEST_CASE("the plan on named cases", "[cuda][conv][plan]") {
  ConvGeometry g;
  SECTION("3x3, padding 1: cuDNN runs x itself") {
    REQUIRE(make_geometry(g, 2, 3, 4, 1, {{8, 3, 1, 1, 1, 1, 1}, {6, 3, 1, 1, 1, 1, 1}}));
    const ConvPlan p = cuda::plan_conv(g);
    CHECK_FALSE(p.direct);
    CHECK_FALSE(p.materialise);
    CHECK_FALSE(p.lifted);
    CHECK(p.cudnn.pad_lo == Shape{1, 1});
    CHECK(p.cudnn.in == Shape{8, 6});
    CHECK(p.cudnn.out == Shape{8, 6});
  }
  SECTION("high padding that changes nothing cuDNN sees: pad (1, 2), stride 2, in 5") {
    REQUIRE(make_geometry(g, 1, 1, 1, 1, {{5, 3, 2, 1, 1, 1, 2}}));
    CHECK(g.out == Shape{3});
    const ConvPlan p = cuda::plan_conv(g);
    CHECK_FALSE(p.materialise);
    CHECK(p.lifted);
    CHECK(p.cudnn.in == Shape{1, 5});
    CHECK(p.cudnn.pad_lo == Shape{0, 1});
  }
  SECTION("pad (1, 0) with stride 2: cuDNN would give one more output, so x~ is built") {
    REQUIRE(make_geometry(g, 1, 1, 1, 1, {{5, 3, 2, 1, 1, 1, 0}}));
    CHECK(g.out == Shape{2});
    const ConvPlan p = cuda::plan_conv(g);
    CHECK(p.materialise);
    CHECK(p.pad.padded[0] == 5);  // (2 - 1) * 2 + 3
    CHECK(p.pad.pad_lo[0] == 1);
    CHECK(p.cudnn.in == Shape{1, 5});
    CHECK(p.cudnn.pad_lo == Shape{0, 0});
  }
  SECTION("SAME with an even kernel pads more above than below") {
    REQUIRE(make_geometry(g, 1, 2, 2, 1, {{6, 4, 1, 1, 1, 1, 2}, {6, 4, 1, 1, 1, 1, 2}}));
    CHECK(g.out == Shape{6, 6});
    const ConvPlan p = cuda::plan_conv(g);
    CHECK(p.materialise);
    CHECK(p.cudnn.in == Shape{9, 9});
  }
  SECTION("input dilation 2: x~ holds the holes") {
    REQUIRE(make_geometry(g, 1, 1, 1, 1, {{4, 3, 1, 1, 2, 0, 0}, {4, 3, 1, 1, 1, 0, 0}}));
    CHECK(g.out == Shape{5, 2});
    const ConvPlan p = cuda::plan_conv(g);
    CHECK(p.materialise);
    CHECK(p.cudnn.in == Shape{7, 4});
    CHECK(p.cudnn.input_dilation == Shape{1, 1});
  }
  SECTION("negative low padding crops x~") {
    REQUIRE(make_geometry(g, 1, 1, 1, 1, {{6, 2, 1, 1, 1, -2, 0}}));
    CHECK(g.out == Shape{3});
    const ConvPlan p = cuda::plan_conv(g);
    CHECK(p.materialise);
    CHECK(p.pad.padded[0] == 4);
    CHECK(p.pad.pad_lo[0] == -2);
  }
  SECTION("spatial rank 4 and above runs the direct kernels") {
    REQUIRE(make_geometry(g, 1, 1, 1, 1, {{3, 2}, {3, 2}, {3, 2}, {3, 2}}));
    CHECK(cuda::plan_conv(g).direct);
  }
  SECTION("a sample beyond cuDNN's int sizes runs the direct kernels") {
    REQUIRE(make_geometry(g, 1, 2, 1, 1, {{1 << 15, 1}, {1 << 15, 1}}));
    CHECK(cuda::plan_conv(g).direct);
  }
  SECTION("a batch beyond cuDNN's int sizes runs in slices") {
    REQUIRE(make_geometry(g, 5000, 4, 4, 1, {{512, 3, 1, 1, 1, 1, 1}, {512, 3, 1, 1, 1, 1, 1}}));
    const ConvPlan p = cuda::plan_conv(g);
    CHECK_FALSE(p.direct);
    CHECK(p.batch_chunk == 2147483647 / (4 * 512 * 512));
    CHECK(p.batch_chunk * 4 * 512 * 512 <= 2147483647);
  }
}

TEST_CASE("ConvPad crops and fills, ConvUnpad is its adjoint", "[cuda][conv]") {
  // x = [1, 2, 3] dilated by 2 is [1, 0, 2, 0, 3]; with pad_lo = -1 and P = 4, x~ starts at
  // dilated coordinate 1: [0, 2, 0, 3].
  cuda::ConvPadDims d;
  d.s = 1;
  d.rows = 1;
  d.in[0] = 3;
  d.padded[0] = 4;
  d.input_dilation[0] = 2;
  d.pad_lo[0] = -1;
  d.in_numel = 3;
  d.padded_numel = 4;
  const std::vector<double> x{1, 2, 3};
  std::vector<double> xt(4, -7.0);
  ct_test::run_on_host(4, cuda::ConvPad<double>{x.data(), xt.data(), d});
  CHECK(xt == std::vector<double>{0, 2, 0, 3});
  const std::vector<double> dxt{10, 20, 30, 40};
  std::vector<double> dx(3, -7.0);
  ct_test::run_on_host(3, cuda::ConvUnpad<double>{dxt.data(), dx.data(), d});
  CHECK(dx == std::vector<double>{0, 20, 40});

  // Padding on both sides, in two dims, two rows: x [2, 2, 2] -> x~ [2, 3, 4] with pad_lo (1, 0)
  // and input dilation (1, 2).
  cuda::ConvPadDims e;
  e.s = 2;
  e.rows = 2;
  e.in[0] = 2;
  e.in[1] = 2;
  e.padded[0] = 3;
  e.padded[1] = 4;
  e.input_dilation[0] = 1;
  e.input_dilation[1] = 2;
  e.pad_lo[0] = 1;
  e.pad_lo[1] = 0;
  e.in_numel = 4;
  e.padded_numel = 12;
  const std::vector<double> x2{1, 2, 3, 4, 5, 6, 7, 8};
  std::vector<double> xt2(24, -7.0);
  ct_test::run_on_host(24, cuda::ConvPad<double>{x2.data(), xt2.data(), e});
  CHECK(xt2 == std::vector<double>{0, 0, 0, 0, 1, 0, 2, 0, 3, 0, 4, 0,  //
                                   0, 0, 0, 0, 5, 0, 6, 0, 7, 0, 8, 0});

  // <ConvPad x, v> = <x, ConvUnpad v> over random geometries, negative padding included.
  Draw draw(99);
  for (int iter = 0; iter < 50; ++iter) {
    cuda::ConvPadDims p;
    p.s = static_cast<int>(draw(1, 3));
    p.rows = draw(1, 3);
    for (int i = 0; i < p.s; ++i) {
      p.in[i] = draw(1, 5);
      p.input_dilation[i] = draw(1, 3);
      p.pad_lo[i] = draw(-3, 3);
      p.padded[i] = draw(1, 12);
      p.in_numel *= p.in[i];
      p.padded_numel *= p.padded[i];
    }
    std::vector<double> xs(static_cast<std::size_t>(p.rows * p.in_numel)),
        vs(static_cast<std::size_t>(p.rows * p.padded_numel));
    for (double& v : xs) v = static_cast<double>(draw(-9, 9));
    for (double& v : vs) v = static_cast<double>(draw(-9, 9));
    std::vector<double> pxs(vs.size()), uvs(xs.size());
    ct_test::run_on_host(static_cast<std::int64_t>(vs.size()),
                         cuda::ConvPad<double>{xs.data(), pxs.data(), p});
    ct_test::run_on_host(static_cast<std::int64_t>(xs.size()),
                         cuda::ConvUnpad<double>{vs.data(), uvs.data(), p});
    double lhs = 0, rhs = 0;
    for (std::size_t i = 0; i < vs.size(); ++i) lhs += pxs[i] * vs[i];
    for (std::size_t i = 0; i < xs.size(); ++i) rhs += xs[i] * uvs[i];
    CHECK(lhs == rhs);
  }
}

TEST_CASE("a wrong padding in the plan is caught", "[cuda][conv][plan]") {
  // The sweep's comparisons can fail: shifting x~ by one element changes the result.
  ConvGeometry g;
  REQUIRE(make_geometry(g, 1, 2, 2, 1, {{6, 3, 1, 1, 2, 1, 2}, {5, 2, 2, 1, 1, 0, 1}}));
  ConvPlan plan = cuda::plan_conv(g);
  REQUIRE(plan.materialise);
  Draw draw(3);
  const Tensor x = ints(x_shape(g), kFloat64, draw), w = ints(w_shape(g), kFloat64, draw);
  const Tensor dy = ints(y_shape(g), kFloat64, draw);
  const Results want = reference_cpu(g, x, w, Tensor(), dy);
  CHECK(equal(through_plan(plan, g, x, w, Tensor(), dy).y, want.y));
  plan.pad.pad_lo[0] += 1;
  const Results wrong = through_plan(plan, g, x, w, Tensor(), dy);
  CHECK_FALSE(equal(wrong.y, want.y));
  CHECK_FALSE(equal(wrong.dx, want.dx));
  CHECK_FALSE(equal(wrong.dw, want.dw));
}

namespace {

// The direct kernels run on the host.
Results run_direct(const ConvGeometry& g, const Tensor& x, const Tensor& w, const Tensor& b,
                   const Tensor& dy, const cuda::WeightGradSplit& split) {
  const cuda::ConvDims d = cuda::conv_dims(g);
  Tensor y = Tensor::empty_cpu(y_shape(g), x.dtype());
  Tensor dx = Tensor::empty_cpu(x_shape(g), x.dtype());
  Tensor dw = Tensor::empty_cpu(w_shape(g), x.dtype());
  dispatch_floating(x.dtype(), [&]<class T>() {
    ct_test::run_on_host(
        y.numel(),
        cuda::ConvForwardDirect<T>{x.data_ptr<T>(), w.data_ptr<T>(),
                                   b.defined() ? b.data_ptr<T>() : nullptr, y.data_ptr<T>(), d});
    ct_test::run_on_host(dx.numel(), cuda::ConvBackwardDataDirect<T>{
                                         dy.data_ptr<T>(), w.data_ptr<T>(), dx.data_ptr<T>(), d});
    if (split.chunks == 1) {
      ct_test::run_on_host(dw.numel(),
                           cuda::ConvBackwardWeightDirect<T>{dy.data_ptr<T>(), x.data_ptr<T>(),
                                                             dw.data_ptr<T>(), d, split.chunk_len});
    } else {
      std::vector<T> partial(static_cast<std::size_t>(split.chunks * dw.numel()));
      ct_test::run_on_host(split.chunks * dw.numel(),
                           cuda::ConvBackwardWeightDirect<T>{dy.data_ptr<T>(), x.data_ptr<T>(),
                                                             partial.data(), d, split.chunk_len});
      ct_test::run_on_host(dw.numel(), cuda::ConvChunkSum<T>{partial.data(), dw.data_ptr<T>(),
                                                             split.chunks, dw.numel()});
    }
  });
  return {y, dx, dw};
}

}  // namespace

TEST_CASE("the direct kernels match the CPU convolution in every rank", "[cuda][conv][direct]") {
  Draw draw(424242);
  int checked = 0, chunked = 0, rank4 = 0;
  for (int iter = 0; iter < 400 && checked < 160; ++iter) {
    const std::int64_t s = iter % 5 == 4 ? 5 : draw(1, 4);
    const std::int64_t groups = draw(1, 2), cg = draw(1, 2), kg = draw(1, 2), n = draw(1, 2);
    std::vector<Dim> dims;
    for (std::int64_t d = 0; d < s; ++d) {
      Dim dim = draw_dim(draw, false);
      if (s >= 4) {  // keep the high ranks small
        dim.in = draw(1, 4);
        dim.kernel = draw(1, 2);
      }
      dims.push_back(dim);
    }
    ConvGeometry g;
    if (!make_geometry(g, n, cg * groups, kg * groups, groups, dims)) continue;
    const DType dtype = iter % 2 ? kFloat32 : kFloat64;
    const bool integer = draw.one_in(2);
    INFO(describe(g) << (dtype == kFloat32 ? " float32" : " float64")
                     << (integer ? " integers" : " reals"));
    auto make = [&](const Shape& shape) {
      return integer ? ints(shape, dtype, draw) : reals(shape, dtype, draw);
    };
    const Tensor x = make(x_shape(g)), w = make(w_shape(g)), dy = make(y_shape(g));
    const Tensor b = draw.one_in(2) ? make({g.out_channels}) : Tensor();
    // Small split parameters make most cases run several weight-gradient chunks.
    const cuda::WeightGradSplit split = cuda::weight_grad_split(cuda::conv_dims(g), 64, 3);
    const Results got = run_direct(g, x, w, b, dy, split);
    const Results want = reference_cpu(g, x, w, b, dy);
    if (integer) {
      CHECK(equal(got.y, want.y));
      CHECK(equal(got.dx, want.dx));
      CHECK(equal(got.dw, want.dw));
    } else {
      const double tol = dtype == kFloat32 ? 1e-5 : 1e-12;
      CHECK(ct_test::allclose(got.y, want.y, tol, tol));
      CHECK(ct_test::allclose(got.dx, want.dx, tol, tol));
      CHECK(ct_test::allclose(got.dw, want.dw, tol, tol));
    }
    ++checked;
    chunked += split.chunks > 1;
    rank4 += s >= 4;
  }
  INFO("checked " << checked << ", chunked weight gradients " << chunked << ", rank >= 4 "
                  << rank4);
  CHECK(checked >= 150);
  CHECK(chunked >= 40);
  CHECK(rank4 >= 30);
}

TEST_CASE("the direct kernels with negative padding follow the definition",
          "[cuda][conv][direct]") {
  Draw draw(5150);
  int checked = 0;
  while (checked < 60) {
    const std::int64_t s = draw(1, 4), groups = draw(1, 2);
    std::vector<Dim> dims;
    for (std::int64_t d = 0; d < s; ++d) {
      Dim dim = draw_dim(draw, true);
      if (s == 4) dim.in = draw(1, 4);
      dims.push_back(dim);
    }
    ConvGeometry g;
    if (!make_geometry(g, 2, groups * draw(1, 2), groups, groups, dims)) continue;
    INFO(describe(g));
    const Tensor x = ints(x_shape(g), kFloat64, draw), w = ints(w_shape(g), kFloat64, draw);
    const Tensor b = ints({g.out_channels}, kFloat64, draw), dy = ints(y_shape(g), kFloat64, draw);
    const Results got = run_direct(g, x, w, b, dy, cuda::weight_grad_split(cuda::conv_dims(g)));
    const Results want = reference_loops(g, x, w, b, dy);
    CHECK(equal(got.y, want.y));
    CHECK(equal(got.dx, want.dx));
    CHECK(equal(got.dw, want.dw));
    ++checked;
  }
}

TEST_CASE("ConvAddBias adds b[k] to every position of channel k", "[cuda][conv]") {
  Draw draw(11);
  for (const DType dtype : {kFloat32, kFloat64}) {
    const Tensor y = reals({3, 4, 2, 5}, dtype, draw), b = reals({4}, dtype, draw);
    const Tensor want = add(y, b.reshape({1, 4, 1, 1}));
    Tensor got = y.clone();
    dispatch_floating(dtype, [&]<class T>() {
      ct_test::run_on_host(got.numel(),
                           cuda::ConvAddBias<T>{got.data_ptr<T>(), b.data_ptr<T>(), 4, 10});
    });
    CHECK(equal(got, want));
  }
}

TEST_CASE("the weight-gradient split covers every (sample, position) pair once",
          "[cuda][conv][direct]") {
  cuda::ConvDims d;
  d.s = 1;
  d.groups = 1;
  d.channels = 1;
  d.kernel_numel = 1;
  for (const std::int64_t pairs : {0, 1, 1000, 1024, 1025, 5000, 1 << 20, 12345678}) {
    for (const std::int64_t wn : {1, 7, 4096, 65536, 1 << 20}) {
      d.batch = 1;
      d.out_numel = pairs;
      d.out_channels = wn;
      const cuda::WeightGradSplit split = cuda::weight_grad_split(d);
      INFO("pairs " << pairs << ", weight elements " << wn);
      CHECK(split.chunks >= 1);
      CHECK(split.chunks * split.chunk_len >= pairs);
      CHECK((split.chunks - 1) * split.chunk_len < std::max<std::int64_t>(pairs, 1));
      if (wn >= 65536 || pairs <= 1024) CHECK(split.chunks == 1);
      if (split.chunks > 1) {
        CHECK(split.chunk_len >= 1024);
        CHECK(split.chunks * wn <= 65536);
      }
    }
  }
  d.batch = 4;
  d.out_numel = 1 << 18;
  d.out_channels = 9;
  CHECK(cuda::weight_grad_split(d).chunks > 1000);  // a 3x3 depthwise-like kernel spreads out
}

TEST_CASE("CUDA settings parse their environment values and round-trip", "[cuda][settings]") {
  using cuda::detail::parse_flag;
  using cuda::detail::parse_mib;
  CHECK(parse_flag("1", false));
  CHECK(parse_flag("TRUE", false));
  CHECK(parse_flag("on", false));
  CHECK_FALSE(parse_flag("0", true));
  CHECK_FALSE(parse_flag("off", true));
  CHECK_FALSE(parse_flag("", true));
  CHECK(parse_flag("maybe", true));
  CHECK_FALSE(parse_flag(nullptr, false));
  CHECK(parse_mib("256", 0) == 256LL << 20);
  CHECK(parse_mib("0", 5) == 0);
  CHECK(parse_mib("-3", 5) == 5);
  CHECK(parse_mib("12x", 5) == 5);
  CHECK(parse_mib(nullptr, 5) == 5);

  const bool det = cuda::deterministic(), tf32 = cuda::allow_tf32();
  const std::int64_t limit = cuda::conv_workspace_limit();
  cuda::set_deterministic(!det);
  CHECK(cuda::deterministic() == !det);
  cuda::set_deterministic(det);
  cuda::set_allow_tf32(!tf32);
  CHECK(cuda::allow_tf32() == !tf32);
  cuda::set_allow_tf32(tf32);
  cuda::set_conv_workspace_limit(123);
  CHECK(cuda::conv_workspace_limit() == 123);
  cuda::set_conv_workspace_limit(-5);
  CHECK(cuda::conv_workspace_limit() == 0);
  cuda::set_conv_workspace_limit(limit);
  CHECK(cuda::conv_workspace_limit() == limit);
}

TEST_CASE("the algorithm cache keeps the first choice per key and is thread-safe",
          "[cuda][settings]") {
  cuda::ConvAlgorithmCache cache;
  CHECK(cache.size() == 0);
  CHECK_FALSE(cache.find({1, 2, 3}).has_value());
  CHECK(cache.insert({1, 2, 3}, {4, 3, 1024}).algo == 4);
  CHECK(cache.insert({1, 2, 3}, {5, 0, 0}).algo == 4);  // the first answer stays
  CHECK(cache.find({1, 2, 3})->workspace == 1024);
  CHECK_FALSE(cache.find({1, 2}).has_value());
  CHECK(cache.size() == 1);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&cache, t] {
      for (std::int64_t i = 0; i < 200; ++i) {
        cache.insert({i % 150, 7}, {t, 0, 0});
        (void)cache.find({i, 7});
        (void)cache.size();
      }
    });
  for (auto& th : threads) th.join();
  CHECK(cache.size() == 151);
  cache.clear();
  CHECK(cache.size() == 0);

  // The process-wide cache behind clear_conv_algorithm_cache / conv_algorithm_cache_size.
  cuda::clear_conv_algorithm_cache();
  CHECK(cuda::conv_algorithm_cache_size() == 0);
  cuda::conv_algorithm_cache().insert({9}, {});
  CHECK(cuda::conv_algorithm_cache_size() == 1);
  cuda::clear_conv_algorithm_cache();
  CHECK(cuda::conv_algorithm_cache_size() == 0);
}
