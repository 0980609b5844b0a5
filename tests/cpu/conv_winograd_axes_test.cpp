// The Winograd kernels of cpu/conv_winograd_axes.h against float64 direct loops on the same float32
// data, under every ISA path this CPU runs:
//   winograd_s2  forward, backward_data and backward_weight, both schemes (5x5 and 7x7 output
//                tiles, 10x10 and 14x14 data-gradient tiles), over channel counts 1 .. 400,
//                groups, batch 1 and > 1, paddings 0 .. 2 per side with high paddings that drop
//                the last input row, sizes below one tile and past several blocks, bias or none;
//   winograd_1d  forward, backward_data and backward_weight, kernels 3 and 5, channels 1 .. 400,
//                groups, lengths below one tile and past several blocks, paddings 0 .. k - 1;
//   winograd_kxk forward, backward_data and backward_weight, 5x5 and 7x7 kernels, the same sweep
//                with paddings 0 .. k - 1 per side;
// value ranges |v| ~ 1, ~ 1e3 and small integers; the weight gradients' determinism across thread
// counts; and every applies() rule.
//
// Accuracy contract: that of cpu/conv_winograd.h (tests/cpu/conv_winograd_test.cpp), with L the
// reduction length (taps C_g forward, taps K_g data gradient, N Ho Wo for the weight gradient) and
// P the largest product of operand magnitudes:
//   |r - e| <= kFactor * 1e-5 * sqrt(L) * P + 1e-4 * |e|.
// The 7x7 scheme's output transform multiplies by up to 64 (points 2 and -2 to the sixth power)
// and its weights by up to 32/45, so its products carry larger rounding errors than F(4x4, 3x3);
// the worst normalised error |r - e| / (1e-5 sqrt(L) P) over this sweep is printed with
// CT_WINOGRAD_REPORT=1 (about 1.05 forward, DATA7 data and 0.45 weight gradient for 7x7 tiles,
// 0.55, DATA5 and 0.42 for 5x5; at most 0.23 for the 1-D kernels; 1.13 for F(4x4, 5x5) and 1.73 for
// F(2x2, 7x7); worst over the AVX-512, AVX2 and baseline paths), and kFactor = 4, as for the
// stride-1 kernels, leaves headroom for other data.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <vector>

#include "core/settings.h"
#include "cpu/conv_plan.h"
#include "cpu/conv_winograd_axes.h"
#include "cpu/isa.h"
#include "support/test_util.h"
#include "support/winograd_contract.h"

using namespace convtape;
namespace s2 = convtape::cpu::winograd_s2;

using ct_test::max_abs;
using ct_test::normalised_error;
using ct_test::Range;
using ct_test::values;

namespace {

constexpr double kFactor = 4.0;

using ct_test::Case;
using ct_test::check_deterministic;

// A 2-D geometry: kernel x kernel taps, stride `stride` (the stride-2 3x3 kernels by default).
ConvGeometry geometry(const Case& t, std::int64_t kernel = 3, std::int64_t stride = 2) {
  return ct_test::case_geometry(t, kernel, stride);
}

// Visits every (output, input, weight) index triple of the convolution.
template <class F>
void each_product(const ConvGeometry& g, F&& f) {
  const std::int64_t h = g.in[0], w = g.in[1], ho = g.out[0], wo = g.out[1];
  const std::int64_t cg = g.group_channels(), kg = g.group_out_channels();
  const std::int64_t kh = g.kernel[0], kw = g.kernel[1], sh = g.stride[0], sw = g.stride[1];
  for (std::int64_t n = 0; n < g.batch; ++n)
    for (std::int64_t k = 0; k < g.out_channels; ++k)
      for (std::int64_t c = 0; c < cg; ++c)
        for (std::int64_t oy = 0; oy < ho; ++oy)
          for (std::int64_t r = 0; r < kh; ++r) {
            const std::int64_t iy = sh * oy + r - g.pad_lo[0];
            if (iy < 0 || iy >= h) continue;
            for (std::int64_t ox = 0; ox < wo; ++ox)
              for (std::int64_t s = 0; s < kw; ++s) {
                const std::int64_t ix = sw * ox + s - g.pad_lo[1];
                if (ix < 0 || ix >= w) continue;
                f(((n * g.out_channels + k) * ho + oy) * wo + ox,
                  ((n * g.channels + k / kg * cg + c) * h + iy) * w + ix,
                  ((k * cg + c) * kh + r) * kw + s);
              }
          }
}

struct Worst {
  double forward[8] = {}, data[8] = {}, weight[8] = {};  // by tile edge
};

// The kernels under test: forward, the data gradient and the weight gradient.
struct Kernels {
  std::function<void(const float*, const float*, const float*, float*, const ConvGeometry&)>
      forward;
  std::function<void(const float*, const float*, float*, const ConvGeometry&)> data, weight;
};

const Kernels kS2{s2::forward, s2::backward_data, s2::backward_weight};
const Kernels kKxk{cpu::winograd_kxk::forward, cpu::winograd_kxk::backward_data,
                   cpu::winograd_kxk::backward_weight};

// data_tile: the data gradient's tile edge where it differs from tile; the data gradient is left
// out where data_tile is 0.
void check_case(const ConvGeometry& g, bool bias, int tile, const Kernels& kernels, Range range,
                std::mt19937& rng, Worst& worst, int data_tile = -1) {
  if (data_tile < 0) data_tile = tile;
  const std::int64_t cg = g.group_channels(), kg = g.group_out_channels();
  const std::int64_t taps = g.kernel_numel();
  const auto x = values(static_cast<std::size_t>(g.batch * g.channels * g.in_numel()), range, rng);
  const auto w = values(static_cast<std::size_t>(g.out_channels * cg * taps), range, rng);
  const auto b = values(static_cast<std::size_t>(g.out_channels), range, rng);
  const auto dy =
      values(static_cast<std::size_t>(g.batch * g.out_channels * g.out_numel()), range, rng);

  std::vector<double> y_ref(dy.size()), dx_ref(x.size(), 0.0), dw_ref(w.size(), 0.0);
  for (std::size_t i = 0; i < y_ref.size(); ++i)
    y_ref[i] = bias ? double(b[i / static_cast<std::size_t>(g.out_numel()) %
                               static_cast<std::size_t>(g.out_channels)])
                    : 0.0;
  each_product(g, [&](std::int64_t yi, std::int64_t xi, std::int64_t wi) {
    const auto ys = static_cast<std::size_t>(yi), xs = static_cast<std::size_t>(xi),
               ws = static_cast<std::size_t>(wi);
    y_ref[ys] += double(w[ws]) * double(x[xs]);
    dx_ref[xs] += double(w[ws]) * double(dy[ys]);
    dw_ref[ws] += double(dy[ys]) * double(x[xs]);
  });
  const double px = max_abs(x), pw = max_abs(w), pdy = max_abs(dy), pb = bias ? max_abs(b) : 0;
  for (const cpu::Isa path : cpu::available_isas()) {
    const cpu::IsaGuard guard(path);
    INFO("isa " << cpu::isa_name(path) << ", tile " << tile << ", " << cpu::to_string(g)
                << ", bias " << bias << ", range " << static_cast<int>(range));
    std::vector<float> y(dy.size(), NAN), dx(x.size(), NAN), dw(w.size(), NAN);
    kernels.forward(x.data(), w.data(), bias ? b.data() : nullptr, y.data(), g);
    kernels.weight(dy.data(), x.data(), dw.data(), g);
    const double ef = normalised_error(y, y_ref, double(taps * cg), std::max(px * pw, pb), kFactor);
    const double ew =
        normalised_error(dw, dw_ref, double(g.batch * g.out_numel()), pdy * px, kFactor);
    double ed = 0;
    if (kernels.data && data_tile > 0) {
      kernels.data(dy.data(), w.data(), dx.data(), g);
      ed = normalised_error(dx, dx_ref, double(taps * kg), pdy * pw, kFactor);
    }
    INFO("normalised errors: forward " << ef << ", data " << ed << ", weight " << ew);
    CHECK(ef <= kFactor);
    CHECK(ed <= kFactor);
    CHECK(ew <= kFactor);
    worst.forward[tile] = std::max(worst.forward[tile], ef);
    worst.data[data_tile] = std::max(worst.data[data_tile], ed);
    worst.weight[tile] = std::max(worst.weight[tile], ew);
  }
}

}  // namespace

TEST_CASE("winograd_s2 matches float64 direct loops over channels, sizes, paddings and ranges",
          "[conv][winograd]") {
  std::mt19937 rng(4321);
  Worst worst;
  const std::vector<Case> cases = {
      // N, groups, C, K, H, W, pad top/left/bottom/right, bias        output, tile
      {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, false},       // 1x1, 5
      {2, 1, 3, 5, 5, 7, 1, 1, 1, 1, true},        // 3x4, 5
      {2, 1, 16, 24, 28, 28, 1, 1, 1, 1, true},    // 14x14, 7: whole tiles
      {1, 1, 17, 33, 21, 19, 0, 0, 0, 0, false},   // 10x9, 5: valid, odd sizes
      {3, 1, 32, 40, 13, 13, 1, 1, 0, 0, true},    // 6x6, 7: low padding only
      {2, 2, 32, 48, 20, 20, 1, 1, 1, 1, true},    // 10x10, 5: groups
      {1, 1, 64, 8, 14, 30, 2, 0, 1, 2, true},     // 8x15, 7: asymmetric padding
      {1, 1, 24, 16, 15, 15, 1, 1, 0, 0, false},   // 7x7, 7: the last input row unread
      {1, 1, 400, 16, 10, 10, 1, 1, 1, 1, false},  // 5x5, 5: the channel sum in slices
      {5, 1, 40, 40, 4, 4, 1, 1, 1, 1, false},     // 2x2, 5: batch > tiles
      {1, 1, 8, 8, 60, 60, 1, 1, 1, 1, true},      // 30x30, 5: several blocks
      {16, 1, 8, 12, 14, 14, 1, 1, 1, 1, true},    // 7x7, 7: lanes across samples
      {2, 1, 24, 16, 29, 27, 2, 2, 2, 2, false},   // 16x15, 7: padding 2, odd sizes
      {1, 1, 16, 24, 30, 31, 0, 0, 1, 1, true},    // 15x15, 5: padding 0 below, 1 above
      {2, 2, 20, 12, 40, 40, 1, 1, 1, 1, false},   // 20x20, 5: 10x10 data tiles, groups
      {1, 1, 12, 20, 18, 17, 1, 0, 1, 1, true},    // 9x9: padding parities differ
  };
  for (const Case& t : cases)
    for (const Range range : {Range::Unit, Range::Large, Range::Integer}) {
      const ConvGeometry g = geometry(t);
      // The data gradient needs one padding parity on both axes (one scheme per parity).
      const bool data = t.pad_top % 2 == t.pad_left % 2;
      check_case(g, t.bias, s2::tile(g), kS2, range, rng, worst, data ? s2::data_tile(g) : 0);
    }
  if (const char* report = std::getenv("CT_WINOGRAD_REPORT"); report && *report == '1')
    for (int m : {5, 7})
      std::printf(
          "winograd_s2 %dx%d tiles, worst normalised error: forward %.3f, data (%dx%d tiles) "
          "%.3f, weight %.3f\n",
          m, m, worst.forward[m], 2 * m, 2 * m, worst.data[m], worst.weight[m]);
}

TEST_CASE(
    "winograd_s2's weight gradient is bit-identical across thread counts in deterministic "
    "mode",
    "[conv][winograd][deterministic]") {
  const DeterministicGuard det(true);
  std::mt19937 rng(11);
  for (const Case& t : {Case{4, 1, 16, 24, 30, 30, 1, 1, 1, 1, false},
                        Case{6, 1, 16, 8, 28, 28, 1, 1, 1, 1, false}}) {
    const ConvGeometry g = geometry(t);
    INFO("tile " << s2::tile(g));
    check_deterministic(
        g, [&](const float* dy, const float* x, float* dw) { s2::backward_weight(dy, x, dw, g); },
        rng);
  }
}

TEST_CASE(
    "winograd_s2 applies to 2-D stride-2 3x3 convolutions with padding 0..2 and enough "
    "channels",
    "[conv][winograd]") {
  // The strided suite rows: resnet_s2 (64 -> 128 on 56x56) and c256_s2 (256 on 28x28).
  CHECK(s2::applies(geometry(Case{16, 1, 64, 128, 56, 56, 1, 1, 1, 1, true})));
  CHECK(s2::applies(geometry(Case{16, 1, 256, 256, 28, 28, 1, 1, 1, 1, true})));
  CHECK(s2::applies(geometry(Case{1, 1, 128, 128, 20, 20, 0, 0, 0, 0, true})));
  CHECK(s2::applies(geometry(Case{1, 1, 128, 128, 19, 20, 2, 0, 1, 2, true})));
  CHECK(s2::applies(geometry(Case{16, 2, 128, 256, 28, 28, 1, 1, 1, 1, true})));
  // 14x14 and 28x28 outputs take 7x7 tiles, 10x10 5x5 ones.
  CHECK(s2::tile(geometry(Case{16, 1, 256, 256, 28, 28, 1, 1, 1, 1, true})) == 7);
  CHECK(s2::tile(geometry(Case{16, 1, 64, 128, 56, 56, 1, 1, 1, 1, true})) == 7);
  CHECK(s2::tile(geometry(Case{16, 1, 64, 128, 20, 20, 1, 1, 1, 1, true})) == 5);
  CHECK(s2::tiles(geometry(Case{16, 1, 64, 128, 20, 20, 1, 1, 1, 1, true})) == 4);
  // Too few channels to pay for the transforms: 64 -> 64, 32 -> 64.
  CHECK_FALSE(s2::applies(geometry(Case{16, 1, 64, 64, 56, 56, 1, 1, 1, 1, true})));
  CHECK_FALSE(s2::applies(geometry(Case{16, 1, 32, 64, 112, 112, 1, 1, 1, 1, true})));
  CHECK_FALSE(s2::applies(geometry(Case{16, 4, 256, 256, 28, 28, 1, 1, 1, 1, true})));
  // Outputs whose tiles waste the saving: 3x3 (one 5x5 tile: 121 products for 81 direct).
  CHECK_FALSE(s2::applies(geometry(Case{16, 1, 256, 256, 6, 6, 1, 1, 1, 1, true})));
  // Padding beyond 2.
  CHECK_FALSE(s2::applies(geometry(Case{1, 1, 128, 128, 20, 20, 3, 1, 1, 1, true})));
  // Other convolutions.
  ConvGeometry g = geometry(Case{16, 1, 256, 256, 28, 28, 1, 1, 1, 1, true});
  g.stride = {1, 2};
  CHECK_FALSE(s2::applies(g));
  g = geometry(Case{16, 1, 256, 256, 28, 28, 1, 1, 1, 1, true});
  g.dilation = {2, 2};
  CHECK_FALSE(s2::applies(g));
  g = geometry(Case{16, 1, 256, 256, 28, 28, 1, 1, 1, 1, true});
  g.kernel = {5, 5};
  CHECK_FALSE(s2::applies(g));
  // The data gradient: 2M x 2M tiles of dx (28x28 and 56x56: 14x14 tiles; 40x40: 10x10), one
  // padding parity on both axes, tiles that keep the saving.
  const ConvGeometry c256 = geometry(Case{16, 1, 256, 256, 28, 28, 1, 1, 1, 1, true});
  CHECK(s2::applies_data(c256));
  CHECK(s2::data_tile(c256) == 7);
  CHECK(s2::data_tiles(c256) == 4);
  CHECK(s2::data_tile(geometry(Case{16, 1, 64, 128, 56, 56, 1, 1, 1, 1, true})) == 7);
  CHECK(s2::data_tile(geometry(Case{16, 1, 64, 128, 40, 40, 1, 1, 1, 1, true})) == 5);
  CHECK(s2::data_tiles(geometry(Case{16, 1, 64, 128, 40, 40, 1, 1, 1, 1, true})) == 16);
  CHECK(s2::applies_data(geometry(Case{1, 1, 128, 128, 20, 20, 0, 0, 0, 0, true})));
  CHECK(s2::applies_data(geometry(Case{1, 1, 128, 128, 19, 20, 2, 0, 1, 2, true})));
  CHECK_FALSE(s2::applies_data(geometry(Case{1, 1, 128, 128, 20, 20, 1, 0, 1, 1, true})));
  CHECK_FALSE(s2::applies_data(geometry(Case{16, 1, 64, 64, 56, 56, 1, 1, 1, 1, true})));
  // 3x3 outputs of a 6x6 input: one 10x10 data tile, 121 products against 81.
  CHECK_FALSE(s2::applies_data(geometry(Case{16, 1, 256, 256, 6, 6, 1, 1, 1, 1, true})));
}

// ---------------------------------------------------------------------------------------------
// 1-D: F(6, 3) and F(4, 5), forward, data gradient and weight gradient.

namespace {

namespace w1 = convtape::cpu::winograd_1d;

struct Line {
  std::int64_t n, groups, c, k, len, kernel, pad_lo, pad_hi;
  bool bias;
};

ConvGeometry line_geometry(const Line& t) {
  ConvGeometry g;
  g.batch = t.n;
  g.channels = t.c;
  g.out_channels = t.k;
  g.groups = t.groups;
  g.in = {t.len};
  g.out = {t.len + t.pad_lo + t.pad_hi - t.kernel + 1};
  g.kernel = {t.kernel};
  g.stride = {1};
  g.dilation = {1};
  g.input_dilation = {1};
  g.pad_lo = {t.pad_lo};
  return g;
}

struct LineWorst {
  double forward[8] = {}, data[8] = {}, weight[8] = {};  // by kernel size
};

void check_line(const Line& t, Range range, std::mt19937& rng, LineWorst& worst) {
  const ConvGeometry g = line_geometry(t);
  const std::int64_t cg = g.group_channels(), kg = g.group_out_channels();
  const std::int64_t len = t.len, out = g.out[0], taps = t.kernel;
  const auto x = values(static_cast<std::size_t>(g.batch * g.channels * len), range, rng);
  const auto w = values(static_cast<std::size_t>(g.out_channels * cg * taps), range, rng);
  const auto b = values(static_cast<std::size_t>(g.out_channels), range, rng);
  const auto dy = values(static_cast<std::size_t>(g.batch * g.out_channels * out), range, rng);
  std::vector<double> y_ref(dy.size()), dx_ref(x.size(), 0.0), dw_ref(w.size(), 0.0);
  for (std::int64_t n = 0; n < g.batch; ++n)
    for (std::int64_t k = 0; k < g.out_channels; ++k)
      for (std::int64_t o = 0; o < out; ++o) {
        const auto yi = static_cast<std::size_t>((n * g.out_channels + k) * out + o);
        y_ref[yi] = t.bias ? double(b[static_cast<std::size_t>(k)]) : 0.0;
        for (std::int64_t c = 0; c < cg; ++c)
          for (std::int64_t r = 0; r < taps; ++r) {
            const std::int64_t i = o + r - t.pad_lo;
            if (i < 0 || i >= len) continue;
            const auto xi = static_cast<std::size_t>((n * g.channels + k / kg * cg + c) * len + i);
            const auto wi = static_cast<std::size_t>((k * cg + c) * taps + r);
            y_ref[yi] += double(w[wi]) * double(x[xi]);
            dx_ref[xi] += double(w[wi]) * double(dy[yi]);
            dw_ref[wi] += double(dy[yi]) * double(x[xi]);
          }
      }
  const double px = max_abs(x), pw = max_abs(w), pdy = max_abs(dy), pb = t.bias ? max_abs(b) : 0;
  for (const cpu::Isa path : cpu::available_isas()) {
    const cpu::IsaGuard guard(path);
    INFO("isa " << cpu::isa_name(path) << ", kernel " << t.kernel << ", N " << t.n << ", groups "
                << t.groups << ", C " << t.c << ", K " << t.k << ", length " << t.len << ", pad "
                << t.pad_lo << "/" << t.pad_hi << ", bias " << t.bias << ", range "
                << static_cast<int>(range));
    std::vector<float> y(dy.size(), NAN), dx(x.size(), NAN), dw(w.size(), NAN);
    w1::forward(x.data(), w.data(), t.bias ? b.data() : nullptr, y.data(), g);
    w1::backward_data(dy.data(), w.data(), dx.data(), g);
    w1::backward_weight(dy.data(), x.data(), dw.data(), g);
    const double ef = normalised_error(y, y_ref, double(taps * cg), std::max(px * pw, pb), kFactor);
    const double ed = normalised_error(dx, dx_ref, double(taps * kg), pdy * pw, kFactor);
    const double ew = normalised_error(dw, dw_ref, double(g.batch * out), pdy * px, kFactor);
    INFO("normalised errors: forward " << ef << ", data " << ed << ", weight " << ew);
    CHECK(ef <= kFactor);
    CHECK(ed <= kFactor);
    CHECK(ew <= kFactor);
    const auto at = static_cast<std::size_t>(t.kernel);
    worst.forward[at] = std::max(worst.forward[at], ef);
    worst.data[at] = std::max(worst.data[at], ed);
    worst.weight[at] = std::max(worst.weight[at], ew);
  }
}

}  // namespace

TEST_CASE("winograd_1d matches float64 direct loops over channels, lengths, paddings and ranges",
          "[conv][winograd]") {
  std::mt19937 rng(8765);
  LineWorst worst;
  const std::vector<Line> cases = {
      // N, groups, C, K, length, kernel, pad lo/hi, bias
      {1, 1, 1, 1, 1, 3, 1, 1, false},      // one output
      {2, 1, 3, 5, 7, 5, 2, 2, true},       // shorter than two tiles
      {3, 1, 16, 24, 64, 3, 1, 1, true},    // whole F(6, 3) tiles and a partial one
      {2, 1, 17, 33, 61, 5, 0, 0, false},   // valid, odd sizes, K past a register tile
      {1, 1, 64, 8, 50, 5, 4, 1, true},     // asymmetric padding up to k - 1
      {1, 1, 24, 16, 40, 3, 0, 2, false},   // padding on the high side only
      {2, 2, 32, 48, 45, 5, 2, 2, true},    // groups
      {1, 1, 400, 16, 30, 3, 1, 1, false},  // the channel sum in slices
      {16, 1, 8, 12, 9, 5, 2, 2, true},     // lanes across samples
      {1, 1, 8, 8, 2000, 3, 1, 1, true},    // several blocks
  };
  for (const Line& t : cases)
    for (const Range range : {Range::Unit, Range::Large, Range::Integer})
      check_line(t, range, rng, worst);
  if (const char* report = std::getenv("CT_WINOGRAD_REPORT"); report && *report == '1')
    for (int k : {3, 5})
      std::printf(
          "winograd_1d kernel %d, worst normalised error: forward %.3f, data %.3f, weight "
          "%.3f\n",
          k, worst.forward[k], worst.data[k], worst.weight[k]);
}

TEST_CASE(
    "winograd_1d's weight gradient is bit-identical across thread counts in deterministic "
    "mode",
    "[conv][winograd][deterministic]") {
  const DeterministicGuard det(true);
  std::mt19937 rng(13);
  for (const Line& t :
       {Line{4, 1, 16, 24, 300, 3, 1, 1, false}, Line{6, 1, 16, 8, 250, 5, 2, 2, false}}) {
    const ConvGeometry g = line_geometry(t);
    INFO("kernel " << t.kernel);
    check_deterministic(
        g, [&](const float* dy, const float* x, float* dw) { w1::backward_weight(dy, x, dw, g); },
        rng);
  }
}

TEST_CASE("winograd_1d applies to 1-D stride-1 convolutions with kernel 3 or 5 and enough channels",
          "[conv][winograd]") {
  // The suite's conv1d row: 64 -> 64, kernel 5, length 1024.
  CHECK(w1::applies(line_geometry(Line{32, 1, 64, 64, 1024, 5, 2, 2, true})));
  CHECK(w1::applies(line_geometry(Line{32, 1, 128, 128, 512, 3, 1, 1, true})));
  CHECK(w1::applies(line_geometry(Line{1, 1, 64, 64, 100, 5, 4, 0, true})));
  CHECK(w1::applies(line_geometry(Line{8, 2, 128, 256, 100, 3, 0, 0, false})));
  CHECK(w1::tile(line_geometry(Line{32, 1, 64, 64, 1024, 5, 2, 2, true})) == 4);
  CHECK(w1::tile(line_geometry(Line{32, 1, 64, 64, 1024, 3, 1, 1, true})) == 6);
  CHECK(w1::tiles(line_geometry(Line{32, 1, 64, 64, 1024, 5, 2, 2, true})) == 256);
  // Too few channels: 32 -> 32 ran no faster.
  CHECK_FALSE(w1::applies(line_geometry(Line{32, 1, 32, 32, 1024, 5, 2, 2, true})));
  CHECK_FALSE(w1::applies(line_geometry(Line{32, 4, 128, 128, 1024, 3, 1, 1, true})));
  // Outputs too short to fill a tile: 2 outputs of kernel 3 (8 products for 6 direct).
  CHECK_FALSE(w1::applies(line_geometry(Line{32, 1, 64, 64, 4, 3, 0, 0, true})));
  // Padding past k - 1, other kernels, 2-D.
  CHECK_FALSE(w1::applies(line_geometry(Line{32, 1, 64, 64, 100, 3, 3, 0, true})));
  CHECK_FALSE(w1::applies(line_geometry(Line{32, 1, 64, 64, 100, 7, 3, 3, true})));
  CHECK_FALSE(w1::applies(line_geometry(Line{32, 1, 64, 64, 100, 1, 0, 0, true})));
  ConvGeometry g = line_geometry(Line{32, 1, 64, 64, 1024, 5, 2, 2, true});
  g.stride = {2};
  g.out = {512};
  CHECK_FALSE(w1::applies(g));
  g = line_geometry(Line{32, 1, 64, 64, 1024, 5, 2, 2, true});
  g.dilation = {2};
  g.out = {1020};
  CHECK_FALSE(w1::applies(g));
  CHECK_FALSE(w1::applies(geometry(Case{16, 1, 256, 256, 28, 28, 1, 1, 1, 1, true})));
}

TEST_CASE("winograd_kxk matches float64 direct loops over channels, sizes, paddings and ranges",
          "[conv][winograd]") {
  std::mt19937 rng(2468);
  Worst worst;
  // N, groups, C, K, H, W, pad top/left/bottom/right, bias; the outputs for kernel 5 / kernel 7
  const std::vector<Case> k5 = {
      {1, 1, 1, 1, 1, 1, 2, 2, 2, 2, false},      // 1x1
      {2, 1, 3, 5, 6, 7, 2, 2, 2, 2, true},       // 6x7: under two tiles
      {2, 1, 16, 24, 14, 14, 2, 2, 2, 2, true},   // 14x14
      {1, 1, 17, 33, 21, 19, 0, 0, 0, 0, false},  // 17x15: valid, odd sizes
      {1, 1, 64, 8, 12, 20, 4, 0, 1, 3, true},    // 13x19: asymmetric padding up to 4
      {2, 2, 32, 48, 16, 16, 2, 2, 2, 2, true},   // groups
      {1, 1, 400, 16, 8, 8, 2, 2, 2, 2, false},   // the channel sum in slices
      {16, 1, 8, 12, 6, 6, 2, 2, 2, 2, true},     // lanes across samples
      {1, 1, 8, 8, 60, 60, 2, 2, 2, 2, true},     // several blocks
  };
  const std::vector<Case> k7 = {
      {1, 1, 1, 1, 1, 1, 3, 3, 3, 3, false},      // 1x1
      {2, 1, 16, 24, 14, 14, 3, 3, 3, 3, true},   // 14x14
      {1, 1, 17, 33, 21, 18, 0, 0, 0, 0, false},  // 15x12: valid, odd sizes
      {1, 1, 40, 8, 12, 15, 6, 0, 1, 5, true},    // 13x15: asymmetric padding up to 6
      {2, 2, 32, 48, 9, 9, 3, 3, 3, 3, true},     // groups
      {16, 1, 8, 12, 5, 5, 3, 3, 3, 3, true},     // lanes across samples
      {1, 1, 8, 8, 40, 40, 3, 3, 3, 3, true},     // several blocks
  };
  for (const Range range : {Range::Unit, Range::Large, Range::Integer}) {
    for (const Case& t : k5) check_case(geometry(t, 5, 1), t.bias, 4, kKxk, range, rng, worst);
    for (const Case& t : k7) check_case(geometry(t, 7, 1), t.bias, 2, kKxk, range, rng, worst);
  }
  if (const char* report = std::getenv("CT_WINOGRAD_REPORT"); report && *report == '1')
    for (int m : {4, 2})
      std::printf(
          "winograd_kxk %dx%d tiles, worst normalised error: forward %.3f, data %.3f, "
          "weight %.3f\n",
          m, m, worst.forward[m], worst.data[m], worst.weight[m]);
}

TEST_CASE("winograd_kxk applies to 2-D stride-1 5x5 and 7x7 convolutions with channels",
          "[conv][winograd]") {
  namespace wk = convtape::cpu::winograd_kxk;
  // The extra bench rows k5_32_64 (32 -> 64 on 28x28), k5_96_128 (96 -> 128 on 14x14) and k7_64
  // (64 -> 64 on 28x28).
  CHECK(wk::applies(geometry(Case{16, 1, 32, 64, 28, 28, 2, 2, 2, 2, true}, 5, 1)));
  CHECK(wk::applies(geometry(Case{16, 1, 96, 128, 14, 14, 2, 2, 2, 2, true}, 5, 1)));
  CHECK(wk::applies(geometry(Case{16, 1, 64, 64, 28, 28, 3, 3, 3, 3, true}, 7, 1)));
  CHECK(wk::applies(geometry(Case{1, 1, 64, 64, 20, 20, 4, 0, 1, 3, true}, 5, 1)));
  CHECK(wk::tile(geometry(Case{16, 1, 96, 128, 14, 14, 2, 2, 2, 2, true}, 5, 1)) == 4);
  CHECK(wk::tiles(geometry(Case{16, 1, 96, 128, 14, 14, 2, 2, 2, 2, true}, 5, 1)) == 16);
  CHECK(wk::tile(geometry(Case{16, 1, 64, 64, 28, 28, 3, 3, 3, 3, true}, 7, 1)) == 2);
  CHECK(wk::tiles(geometry(Case{16, 1, 64, 64, 28, 28, 3, 3, 3, 3, true}, 7, 1)) == 196);
  // Too few channels (16 -> 16), outputs that waste their tiles (5x5 outputs: 4 tiles of 4x4).
  CHECK_FALSE(wk::applies(geometry(Case{16, 1, 16, 16, 28, 28, 2, 2, 2, 2, true}, 5, 1)));
  CHECK_FALSE(wk::applies(geometry(Case{16, 1, 64, 64, 5, 5, 2, 2, 2, 2, true}, 5, 1)));
  // Padding past k - 1, stride 2, other kernels.
  CHECK_FALSE(wk::applies(geometry(Case{16, 1, 64, 64, 20, 20, 5, 2, 2, 2, true}, 5, 1)));
  CHECK_FALSE(wk::applies(geometry(Case{16, 1, 64, 64, 28, 28, 2, 2, 2, 2, true}, 5, 2)));
  CHECK_FALSE(wk::applies(geometry(Case{16, 1, 64, 64, 28, 28, 1, 1, 1, 1, true}, 3, 1)));
  CHECK_FALSE(wk::applies(geometry(Case{16, 1, 64, 64, 28, 28, 4, 4, 4, 4, true}, 9, 1)));
  ConvGeometry g = geometry(Case{16, 1, 64, 64, 28, 28, 3, 2, 3, 2, true}, 7, 1);
  g.kernel = {7, 5};
  g.out = {28, 28};
  CHECK_FALSE(wk::applies(g));
}
