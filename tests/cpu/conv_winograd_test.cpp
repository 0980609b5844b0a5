// The Winograd F(4x4, 3x3) kernels (cpu/conv_winograd.h) against float64 direct loops on the same
// float32 data: forward, backward_data and backward_weight, under every ISA path this CPU runs,
// over a sweep of channel counts (1 .. 128), groups, batch 1 and > 1, paddings 0 / 1 / 2 with
// asymmetric high padding, sizes that are not multiples of 4 or below 4, bias or none, and value
// ranges |v| ~ 1, ~ 1e3 and small integers; and applies()'s eligibility rule.
//
// Accuracy contract. Winograd is not exact even on small integers (G holds 1/6 and 1/24), so
// every result is compared with a tolerance. With L the reduction length of one output (9 C_g for
// forward, 9 K_g for the data gradient, N Ho Wo for the weight gradient) and P the largest
// product magnitude max|a| max|b| of its operands, the float32 result r and the float64
// reference e satisfy
//   |r - e| <= kFactor * 1e-5 * sqrt(L) * P + 1e-4 * |e|
// i.e. REFERENCE.md's float32 tolerance (rtol 1e-4, atol 1e-5 scaled with sqrt(L)), with atol
// taken relative to the operands' scale and widened by the measured Winograd factor kFactor.
// The transforms multiply values by up to 5 (B) and 8 (A) and sum up to 36 terms, so one product
// carries a larger rounding error than in a direct sum; the worst normalised error
// |r - e| / (1e-5 sqrt(L) P) measured over this sweep is printed with CT_WINOGRAD_REPORT=1
// (about 0.6 forward, 0.5 data gradient, 0.3 weight gradient on AVX-512), and kFactor = 4 leaves
// headroom for other paths and data.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "core/settings.h"
#include "cpu/conv_winograd.h"
#include "cpu/isa.h"
#include "support/test_util.h"
#include "support/winograd_contract.h"

using namespace convtape;
namespace wino = convtape::cpu::winograd;

using ct_test::max_abs;
using ct_test::normalised_error;
using ct_test::Range;
using ct_test::values;

namespace {

constexpr double kFactor = 4.0;

using ct_test::Case;

// The stride-1 3x3 geometry of a case.
ConvGeometry geometry(const Case& t) {
  return ct_test::case_geometry(t, 3, 1);
}

// y[n, k, oy, ox] = sum_c,r,s w[k, c, r, s] x[n, g c, oy + r - pt, ox + s - pl] (+ b), float64,
// and the two adjoints.
struct Reference {
  const ConvGeometry& g;
  std::int64_t cg() const { return g.group_channels(); }
  std::int64_t kg() const { return g.group_out_channels(); }
  // Visits every (output, input, weight) index triple of the convolution.
  template <class F>
  void each(F&& f) const {
    const std::int64_t h = g.in[0], w = g.in[1], ho = g.out[0], wo = g.out[1];
    for (std::int64_t n = 0; n < g.batch; ++n)
      for (std::int64_t k = 0; k < g.out_channels; ++k) {
        const std::int64_t grp = k / kg();
        for (std::int64_t c = 0; c < cg(); ++c)
          for (std::int64_t oy = 0; oy < ho; ++oy)
            for (std::int64_t r = 0; r < 3; ++r) {
              const std::int64_t iy = oy + r - g.pad_lo[0];
              if (iy < 0 || iy >= h) continue;
              for (std::int64_t ox = 0; ox < wo; ++ox)
                for (std::int64_t s = 0; s < 3; ++s) {
                  const std::int64_t ix = ox + s - g.pad_lo[1];
                  if (ix < 0 || ix >= w) continue;
                  f(((n * g.out_channels + k) * ho + oy) * wo + ox,
                    ((n * g.channels + grp * cg() + c) * h + iy) * w + ix,
                    ((k * cg() + c) * 3 + r) * 3 + s);
                }
            }
      }
  }
};

struct Worst {
  double forward = 0, data = 0, weight = 0;
};

void check_case(const Case& t, Range range, std::mt19937& rng, Worst& worst) {
  const ConvGeometry g = geometry(t);
  const std::int64_t cg = g.group_channels(), kg = g.group_out_channels();
  const auto x = values(static_cast<std::size_t>(g.batch * g.channels * g.in_numel()), range, rng);
  const auto w = values(static_cast<std::size_t>(g.out_channels * cg * 9), range, rng);
  const auto b = values(static_cast<std::size_t>(g.out_channels), range, rng);
  const auto dy =
      values(static_cast<std::size_t>(g.batch * g.out_channels * g.out_numel()), range, rng);

  std::vector<double> y_ref(dy.size()), dx_ref(x.size(), 0.0), dw_ref(w.size(), 0.0);
  for (std::int64_t i = 0; i < static_cast<std::int64_t>(y_ref.size()); ++i)
    y_ref[static_cast<std::size_t>(i)] =
        t.bias ? double(b[static_cast<std::size_t>(i / g.out_numel() % g.out_channels)]) : 0.0;
  Reference{g}.each([&](std::int64_t yi, std::int64_t xi, std::int64_t wi) {
    const auto ys = static_cast<std::size_t>(yi), xs = static_cast<std::size_t>(xi),
               ws = static_cast<std::size_t>(wi);
    y_ref[ys] += double(w[ws]) * double(x[xs]);
    dx_ref[xs] += double(w[ws]) * double(dy[ys]);
    dw_ref[ws] += double(dy[ys]) * double(x[xs]);
  });
  const double px = max_abs(x), pw = max_abs(w), pdy = max_abs(dy), pb = t.bias ? max_abs(b) : 0;

  for (const cpu::Isa path : cpu::available_isas()) {
    const cpu::IsaGuard guard(path);
    INFO("isa " << cpu::isa_name(path) << ", N " << t.n << ", groups " << t.groups << ", C " << t.c
                << ", K " << t.k << ", " << t.h << "x" << t.w << ", pad " << t.pad_top << "/"
                << t.pad_left << "/" << t.pad_bottom << "/" << t.pad_right << ", bias " << t.bias
                << ", range " << static_cast<int>(range));
    std::vector<float> y(dy.size(), NAN), dx(x.size(), NAN), dw(w.size(), NAN);
    wino::forward(x.data(), w.data(), t.bias ? b.data() : nullptr, y.data(), g);
    wino::backward_data(dy.data(), w.data(), dx.data(), g);
    wino::backward_weight(dy.data(), x.data(), dw.data(), g);
    const double ef = normalised_error(y, y_ref, 9.0 * double(cg), std::max(px * pw, pb), kFactor);
    const double ed = normalised_error(dx, dx_ref, 9.0 * double(kg), pdy * pw, kFactor);
    const double ew =
        normalised_error(dw, dw_ref, double(g.batch * g.out_numel()), pdy * px, kFactor);
    INFO("normalised errors: forward " << ef << ", data " << ed << ", weight " << ew);
    CHECK(ef <= kFactor);
    CHECK(ed <= kFactor);
    CHECK(ew <= kFactor);
    worst.forward = std::max(worst.forward, ef);
    worst.data = std::max(worst.data, ed);
    worst.weight = std::max(worst.weight, ew);
  }
}

}  // namespace

TEST_CASE("winograd matches float64 direct loops over channels, sizes, paddings and ranges",
          "[conv][winograd]") {
  std::mt19937 rng(1234);
  Worst worst;
  const std::vector<Case> cases = {
      // N, groups, C, K, H, W, pad top/left/bottom/right, bias
      {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, false},      // one pixel
      {2, 1, 1, 32, 7, 5, 1, 1, 1, 1, true},      // C = 1 (fmnist_c1-like), W < 4 tiles
      {1, 1, 3, 5, 2, 3, 2, 2, 2, 2, true},       // H, W < 4, padding 2
      {3, 1, 16, 16, 8, 8, 1, 1, 1, 1, true},     // multiples of 4
      {1, 1, 17, 33, 13, 9, 0, 0, 0, 0, false},   // valid, odd sizes, K past a register tile
      {2, 1, 32, 64, 14, 14, 1, 1, 1, 1, true},   // fmnist_c2-like
      {1, 1, 64, 8, 11, 19, 2, 0, 1, 2, true},    // asymmetric padding
      {1, 1, 128, 24, 6, 10, 1, 2, 0, 1, false},  // long reduction
      {2, 2, 32, 48, 9, 12, 1, 1, 1, 1, true},    // groups
      {1, 4, 64, 64, 7, 7, 1, 1, 1, 1, false},    // 4 groups of 16
      {2, 8, 8, 8, 10, 10, 1, 1, 1, 1, true},     // depthwise-like groups
      {1, 1, 5, 7, 37, 70, 0, 1, 2, 1, true},     // wide: several tile runs and blocks per row
      {5, 1, 40, 40, 4, 4, 1, 1, 1, 1, false},    // batch > tiles
      {1, 1, 32, 96, 20, 20, 1, 1, 1, 1, true},   // one block, output channels cut in chunks
      {2, 1, 400, 16, 6, 6, 1, 1, 1, 1, false},   // the channel sum in slices on every path
  };
  for (const Case& t : cases)
    for (const Range range : {Range::Unit, Range::Large, Range::Integer})
      check_case(t, range, rng, worst);
  if (const char* report = std::getenv("CT_WINOGRAD_REPORT"); report && *report == '1')
    std::printf("winograd worst normalised error: forward %.3f, data %.3f, weight %.3f\n",
                worst.forward, worst.data, worst.weight);
}

TEST_CASE("winograd's weight gradient is bit-identical across thread counts in deterministic mode",
          "[conv][winograd][deterministic]") {
  const DeterministicGuard det(true);
  std::mt19937 rng(7);
  const ConvGeometry g = geometry(Case{4, 1, 16, 24, 30, 30, 1, 1, 1, 1, false});
  ct_test::check_deterministic(
      g, [&](const float* dy, const float* x, float* dw) { wino::backward_weight(dy, x, dw, g); },
      rng);
}

TEST_CASE("winograd applies to 2-D stride-1 3x3 convolutions with padding 0..2 and enough channels",
          "[conv][winograd]") {
  const Case base{16, 1, 64, 64, 56, 56, 1, 1, 1, 1, true};
  CHECK(wino::applies(geometry(base)));
  CHECK(wino::applies(geometry(Case{64, 1, 32, 64, 14, 14, 1, 1, 1, 1, true})));
  CHECK(wino::applies(geometry(Case{16, 1, 256, 256, 14, 14, 1, 1, 1, 1, true})));
  CHECK(wino::applies(geometry(Case{1, 1, 64, 64, 10, 10, 0, 0, 0, 0, true})));
  CHECK(wino::applies(geometry(Case{1, 1, 64, 64, 10, 10, 2, 0, 1, 2, true})));
  // fmnist_c1: one input channel cannot pay for the transforms; nor can 16 on either side.
  CHECK_FALSE(wino::applies(geometry(Case{64, 1, 1, 32, 28, 28, 1, 1, 1, 1, true})));
  CHECK_FALSE(wino::applies(geometry(Case{16, 1, 16, 64, 28, 28, 1, 1, 1, 1, true})));
  CHECK_FALSE(wino::applies(geometry(Case{16, 1, 64, 16, 28, 28, 1, 1, 1, 1, true})));
  CHECK_FALSE(wino::applies(geometry(Case{16, 4, 64, 64, 28, 28, 1, 1, 1, 1, true})));
  CHECK(wino::applies(geometry(Case{16, 2, 64, 128, 28, 28, 1, 1, 1, 1, true})));
  // Outputs whose 4x4 tiles waste too much: 5x5 (4 tiles for 25 outputs) and 9x9.
  CHECK_FALSE(wino::applies(geometry(Case{16, 1, 64, 64, 5, 5, 1, 1, 1, 1, true})));
  CHECK_FALSE(wino::applies(geometry(Case{16, 1, 64, 64, 9, 9, 1, 1, 1, 1, true})));
  // Depthwise and small groups.
  CHECK_FALSE(wino::applies(geometry(Case{16, 128, 128, 128, 28, 28, 1, 1, 1, 1, true})));
  // Padding beyond 2 on either side: the data gradient would need a negative padding.
  CHECK_FALSE(wino::applies(geometry(Case{1, 1, 64, 64, 10, 10, 3, 1, 1, 1, true})));
  CHECK_FALSE(wino::applies(geometry(Case{1, 1, 64, 64, 10, 10, 1, 1, 3, 1, true})));
  ConvGeometry g = geometry(base);
  g.stride = {2, 1};
  g.out = {28, 56};
  CHECK_FALSE(wino::applies(g));
  g = geometry(base);
  g.dilation = {2, 2};
  g.out = {54, 54};
  CHECK_FALSE(wino::applies(g));
  g = geometry(base);
  g.input_dilation = {1, 2};
  CHECK_FALSE(wino::applies(g));
  g = geometry(base);
  g.kernel = {3, 5};
  g.out = {56, 54};
  CHECK_FALSE(wino::applies(g));
  g = geometry(base);  // 1-D and 3-D
  g.in = {56};
  g.out = {56};
  g.kernel = {3};
  g.stride = g.dilation = g.input_dilation = g.pad_lo = {1};
  CHECK_FALSE(wino::applies(g));
  g = geometry(base);
  g.in = g.out = {8, 8, 8};
  g.kernel = {3, 3, 3};
  g.stride = g.dilation = g.input_dilation = {1, 1, 1};
  g.pad_lo = {1, 1, 1};
  CHECK_FALSE(wino::applies(g));
}
