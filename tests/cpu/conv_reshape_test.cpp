// The CPU paths that reshape a convolution into ones Winograd runs (cpu/conv_plan.h):
//   dilation_split (cpu/conv_dilated.cpp): a stride-1 conv with a dilated kernel as one undilated
//     conv per dilation phase;
//   depth_unfold (cpu/conv_unfold.cpp): a conv of rank >= 3 as a 2-D conv over its last two dims,
//     the leading dims' output positions in the batch and their taps in the channels;
//   kernel_split (cpu/conv_split.cpp): a 2-D conv with a 4..9 kernel as a 3x3 conv over 3x3
//     blocks of the kernel, each reading a shifted copy of the input.
// Tested:
//   - dilation_phase's algebra, by brute force over small 1-d and 2-d geometries: the output
//     phases partition the output, the input phases partition the input, and every tap of every
//     output reads, in its phase's undilated convolution, exactly the input value (or padding) the
//     dilated convolution reads; depth_unfold_2d's geometry;
//   - the plans take the paths for float32 convs whose reshaped parts plan Winograd, and not for
//     float64, under the exact switch, or where a part would not be Winograd;
//   - forward, data gradient and weight gradient against float64 (which runs the exact paths) on
//     the same data, under every ISA path this CPU runs: dilations 2, 3x2 and 1x2 with paddings
//     below, at and above the dilation and sizes that are not multiples of it; 3-d convs with
//     leading strides, dilations, kernels of 1 and asymmetric padding, and a 4-d conv; 5x5, 7x7,
//     4x6 and 5x3 kernels with same, valid and uneven padding; groups and bias; within Winograd's
//     accuracy contract (tests/cpu/conv_winograd_test.cpp): |r - e| <= 4e-5 sqrt(L) P + 1e-4 |e|, L
//     the reduction length and P the largest operand product.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "cpu/conv.h"
#include "cpu/conv_plan.h"
#include "cpu/gemm_kernel.h"
#include "cpu/isa.h"
#include "cpu/parallel.h"
#include "support/conv_target.h"
#include "support/test_util.h"

using namespace convtape;
using cpu::ConvPass;
using cpu::ConvPath;

namespace {

using ct_test::conv_geometry;  // per-side padding, out = (in + lo + hi - dil (k - 1) - 1) / s + 1

std::vector<float> values(std::int64_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = u(rng);
  return v;
}

Tensor tensor32(const std::vector<float>& v, const Shape& s) {
  return from_vector(v, s);
}

double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

// The largest |r - e| / (4e-5 sqrt(L) P + 1e-4 |e|) over the elements: at most 1 holds the
// contract.
double contract(const Tensor& r32, const Tensor& e64, double l, double p) {
  const auto r = r32.to_vector<double>(), e = e64.to_vector<double>();
  REQUIRE(r.size() == e.size());
  double worst = 0;
  for (std::size_t i = 0; i < r.size(); ++i)
    worst =
        std::max(worst, std::abs(r[i] - e[i]) / (4e-5 * std::sqrt(l) * p + 1e-4 * std::abs(e[i])));
  return worst;
}

}  // namespace

TEST_CASE("dilation_split: the phases partition output and input, and read what the conv reads",
          "[conv][dilated]") {
  int checked = 0;
  for (std::int64_t in : {4, 5, 7, 9})
    for (std::int64_t dil : {2, 3})
      for (std::int64_t k : {1, 2, 3})
        for (std::int64_t lo : {0, 1, 2, 3, 5})
          for (std::int64_t hi : {0, 1, 4}) {
            const ConvGeometry g = conv_geometry(1, 1, 1, 1, {in}, {k}, {dil}, {lo}, {hi});
            if (!cpu::dilation_split_ok(g)) continue;
            REQUIRE(cpu::dilation_phases(g) == dil);
            std::set<std::int64_t> outs, ins;
            for (std::int64_t ph = 0; ph < dil; ++ph) {
              const cpu::DilationPhase p = cpu::dilation_phase(g, ph);
              INFO("in " << in << " dil " << dil << " k " << k << " pad " << lo << "/" << hi
                         << " phase " << ph);
              REQUIRE(p.g.dilation[0] == 1);
              REQUIRE(p.g.stride[0] == 1);
              REQUIRE(p.g.pad_lo[0] >= 0);
              REQUIRE(p.g.in[0] >= 1);
              REQUIRE(p.g.out[0] >= 1);
              for (std::int64_t i = 0; i < p.g.in[0]; ++i)
                REQUIRE(ins.insert(p.b[0] + dil * i).second);
              for (std::int64_t m = 0; m < p.g.out[0]; ++m) {
                const std::int64_t j = p.a[0] + dil * m;
                REQUIRE(outs.insert(j).second);
                for (std::int64_t r = 0; r < k; ++r) {
                  const std::int64_t full = j + dil * r - lo;      // what the conv reads
                  const std::int64_t sub = m + r - p.g.pad_lo[0];  // what the phase conv reads
                  const bool full_in = full >= 0 && full < in;
                  const bool sub_in = sub >= 0 && sub < p.g.in[0];
                  REQUIRE(full_in == sub_in);
                  if (full_in) REQUIRE(full == p.b[0] + dil * sub);
                  ++checked;
                }
              }
            }
            REQUIRE(static_cast<std::int64_t>(outs.size()) == g.out[0]);
            REQUIRE(static_cast<std::int64_t>(ins.size()) == in);
            REQUIRE(*outs.rbegin() == g.out[0] - 1);
            REQUIRE(*ins.rbegin() == in - 1);
          }
  REQUIRE(checked > 1000);
  // Two dims: the last dim's phase varies fastest.
  const ConvGeometry g2 = conv_geometry(1, 1, 1, 1, {9, 8}, {3, 3}, {3, 2}, {3, 1}, {3, 1});
  REQUIRE(cpu::dilation_phases(g2) == 6);
  const cpu::DilationPhase p5 = cpu::dilation_phase(g2, 5);
  REQUIRE(p5.a == std::vector<std::int64_t>{2, 1});
  REQUIRE(p5.b == std::vector<std::int64_t>{2, 0});  // (2 - 3) mod 3, (1 - 1) mod 2
  REQUIRE(p5.g.pad_lo == Shape{1, 0});
}

TEST_CASE("dilation_split: planned for float32 dilated convs whose phases are Winograd",
          "[conv][dilated][plan]") {
  // The suite's dilated2 layer: four 28x28 phases of a 56x56 plane, each Winograd.
  const ConvGeometry g = conv_geometry(16, 64, 64, 1, {56, 56}, {3, 3}, {2, 2}, {2, 2}, {2, 2});
  for (const ConvPass pass :
       {ConvPass::forward, ConvPass::backward_data, ConvPass::backward_weight}) {
    const cpu::ConvPlan p = cpu::plan_conv(g, pass, ct_test::call_target(DType::Float32));
    INFO(cpu::to_string(p));
    REQUIRE(p.path == ConvPath::dilation_split);
    REQUIRE(p.phases == 4);
    REQUIRE(p.inner.size() == 4);
    for (const auto& in : p.inner) {
      REQUIRE(in.path == ConvPath::winograd);
      REQUIRE(in.geometry.in == Shape{28, 28});
      REQUIRE(in.geometry.dilation == Shape{1, 1});
    }
    REQUIRE(cpu::to_string(p).find("dilation_split") != std::string::npos);
    // Never for float64, under the exact switch, or when a phase would not be Winograd.
    REQUIRE(cpu::plan_conv(g, pass, ct_test::call_target(DType::Float64)).path !=
            ConvPath::dilation_split);
    REQUIRE(cpu::plan_conv(g, pass, ct_test::call_target(DType::Float32, true)).path !=
            ConvPath::dilation_split);
    ConvGeometry exact = g;
    exact.exact = true;
    REQUIRE(cpu::plan_conv(exact, pass, ct_test::call_target(DType::Float32)).path !=
            ConvPath::dilation_split);
    const ConvGeometry thin = conv_geometry(16, 8, 8, 1, {56, 56}, {3, 3}, {2, 2}, {2, 2}, {2, 2});
    REQUIRE(cpu::plan_conv(thin, pass, ct_test::call_target(DType::Float32)).path !=
            ConvPath::dilation_split);
    const ConvGeometry k5 = conv_geometry(16, 64, 64, 1, {56, 56}, {5, 5}, {2, 2}, {4, 4}, {4, 4});
    REQUIRE(cpu::plan_conv(k5, pass, ct_test::call_target(DType::Float32)).path !=
            ConvPath::dilation_split);
  }
  ConvGeometry strided = g;
  strided.stride = {2, 2};
  strided.out = {28, 28};
  REQUIRE_FALSE(cpu::dilation_split_ok(strided));
  // Fewer inputs or outputs than the dilation along a dim: some phase would be empty.
  REQUIRE_FALSE(
      cpu::dilation_split_ok(conv_geometry(1, 32, 32, 1, {2, 9}, {3, 3}, {3, 1}, {2, 1}, {2, 1})));
}

namespace {

// All three passes of g against float64 under every ISA path; the forward and data gradient must
// plan `path`, the weight gradient `weight_path` (by default the same).
void check_against_float64(const ConvGeometry& g, bool bias, ConvPath path, std::mt19937& rng,
                           std::optional<ConvPath> weight_path = std::nullopt) {
  for (const ConvPass pass :
       {ConvPass::forward, ConvPass::backward_data, ConvPass::backward_weight}) {
    const cpu::ConvPlan p = cpu::plan_conv(g, pass, ct_test::call_target(DType::Float32));
    INFO(cpu::to_string(g) << " -> " << cpu::to_string(p));
    REQUIRE(p.path == (pass == ConvPass::backward_weight ? weight_path.value_or(path) : path));
  }
  Shape xs{g.batch, g.channels}, ws{g.out_channels, g.group_channels()},
      ys{g.batch, g.out_channels};
  xs.insert(xs.end(), g.in.begin(), g.in.end());
  ws.insert(ws.end(), g.kernel.begin(), g.kernel.end());
  ys.insert(ys.end(), g.out.begin(), g.out.end());
  const Tensor x = tensor32(values(numel(xs), rng), xs);
  const Tensor w = tensor32(values(numel(ws), rng), ws);
  const Tensor b = bias ? tensor32(values(g.out_channels, rng), {g.out_channels}) : Tensor();
  const Tensor dy = tensor32(values(numel(ys), rng), ys);
  const Tensor x64 = x.to(kFloat64), w64 = w.to(kFloat64), dy64 = dy.to(kFloat64);
  const Tensor b64 = bias ? b.to(kFloat64) : Tensor();
  const Tensor y_ref = cpu::conv_forward(x64, w64, b64, g);
  const Tensor dx_ref = cpu::conv_backward_data(dy64, w64, g);
  const Tensor dw_ref = cpu::conv_backward_weight(dy64, x64, g);
  const double mx = max_abs(x64.to_vector<double>()), mw = max_abs(w64.to_vector<double>()),
               mdy = max_abs(dy64.to_vector<double>());
  const double taps = double(g.kernel_numel());
  for (const cpu::Isa isa : cpu::available_isas()) {
    cpu::IsaGuard guard(isa);
    INFO("isa " << cpu::isa_name(isa) << ": " << cpu::to_string(g));
    const double fwd = contract(cpu::conv_forward(x, w, b, g), y_ref,
                                taps * double(g.group_channels()), mx * mw + (bias ? 1.0 : 0.0));
    const double data = contract(cpu::conv_backward_data(dy, w, g), dx_ref,
                                 taps * double(g.group_out_channels()), mdy * mw);
    const double weight = contract(cpu::conv_backward_weight(dy, x, g), dw_ref,
                                   double(g.batch * g.out_numel()), mdy * mx);
    INFO("worst normalised error: forward " << fwd << ", data " << data << ", weight " << weight);
    CHECK(fwd <= 1.0);
    CHECK(data <= 1.0);
    CHECK(weight <= 1.0);
    // The reshaped path's own result, not the float64 path's: Winograd rounds differently from
    // an exact float32 GEMM, so the two differ somewhere.
    CHECK(fwd > 0.0);
  }
}

}  // namespace

TEST_CASE("dilation_split: forward and gradients match float64 under every ISA path",
          "[conv][dilated]") {
  // Batches of 16 give every phase tiles enough to be Winograd under deterministic mode's planned
  // threads too.
  std::mt19937 rng(17);
  const Shape k3{3, 3};
  check_against_float64(conv_geometry(16, 32, 48, 1, {40, 36}, k3, {2, 2}, {2, 2}, {2, 2}), true,
                        ConvPath::dilation_split, rng);  // same padding
  check_against_float64(conv_geometry(16, 40, 32, 1, {37, 35}, k3, {2, 2}, {1, 2}, {2, 1}), false,
                        ConvPath::dilation_split, rng);  // odd sizes, uneven padding
  check_against_float64(conv_geometry(16, 32, 32, 1, {42, 39}, k3, {3, 2}, {3, 0}, {3, 2}), true,
                        ConvPath::dilation_split, rng);  // dilation 3 x 2
  check_against_float64(conv_geometry(16, 64, 64, 2, {30, 36}, k3, {1, 2}, {1, 2}, {1, 2}), true,
                        ConvPath::dilation_split, rng);  // groups, one dim dilated
}

TEST_CASE("depth_unfold: the 2-D conv of a 3-d or 4-d one", "[conv][unfold][plan]") {
  // The suite's conv3d layer.
  const ConvGeometry g =
      conv_geometry(4, 16, 32, 1, {16, 16, 16}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1});
  const auto u = cpu::depth_unfold_2d(g);
  REQUIRE(u);
  REQUIRE(u->batch == 4 * 16);
  REQUIRE(u->channels == 16 * 3);
  REQUIRE(u->out_channels == 32);
  REQUIRE(u->in == Shape{16, 16});
  REQUIRE(u->out == Shape{16, 16});
  REQUIRE(u->kernel == Shape{3, 3});
  REQUIRE(u->pad_lo == Shape{1, 1});
  for (const ConvPass pass :
       {ConvPass::forward, ConvPass::backward_data, ConvPass::backward_weight}) {
    const cpu::ConvPlan p = cpu::plan_conv(g, pass, ct_test::call_target(DType::Float32));
    INFO(cpu::to_string(p));
    REQUIRE(p.path == ConvPath::depth_unfold);
    REQUIRE(p.inner.size() == 1);
    REQUIRE(p.inner.front().path == ConvPath::winograd);
    REQUIRE(p.inner.front().geometry.channels == 48);
    REQUIRE(cpu::to_string(p).find("depth_unfold") != std::string::npos);
    REQUIRE(cpu::plan_conv(g, pass, ct_test::call_target(DType::Float64)).path !=
            ConvPath::depth_unfold);
    REQUIRE(cpu::plan_conv(g, pass, ct_test::call_target(DType::Float32, true)).path !=
            ConvPath::depth_unfold);
    // Too few channels for Winograd once unfolded (8 x 3 = 24), or last dims not 3x3 stride 1.
    const ConvGeometry thin =
        conv_geometry(4, 8, 32, 1, {16, 16, 16}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1});
    REQUIRE(cpu::plan_conv(thin, pass, ct_test::call_target(DType::Float32)).path !=
            ConvPath::depth_unfold);
    const ConvGeometry strided = conv_geometry(4, 16, 32, 1, {16, 16, 16}, {3, 3, 3}, {1, 1, 1},
                                               {1, 1, 1}, {1, 1, 1}, {1, 2, 2});
    REQUIRE(cpu::plan_conv(strided, pass, ct_test::call_target(DType::Float32)).path !=
            ConvPath::depth_unfold);
    // A leading kernel that would copy each input plane many times (bounded memory).
    const ConvGeometry deep =
        conv_geometry(4, 16, 32, 1, {32, 16, 16}, {15, 3, 3}, {1, 1, 1}, {7, 1, 1}, {7, 1, 1});
    REQUIRE(cpu::plan_conv(deep, pass, ct_test::call_target(DType::Float32)).path !=
            ConvPath::depth_unfold);
  }
  // Not for 2-d convs, nor with input dilation.
  REQUIRE_FALSE(
      cpu::depth_unfold_2d(conv_geometry(4, 64, 64, 1, {16, 16}, {3, 3}, {1, 1}, {1, 1}, {1, 1})));
  ConvGeometry dilated_input = g;
  dilated_input.input_dilation = {2, 1, 1};
  REQUIRE_FALSE(cpu::depth_unfold_2d(dilated_input));
  // Rank 4: two leading dims.
  const auto u4 = cpu::depth_unfold_2d(conv_geometry(2, 8, 32, 1, {4, 6, 12, 12}, {2, 2, 3, 3},
                                                     {1, 1, 1, 1}, {0, 1, 1, 1}, {0, 0, 1, 1}));
  REQUIRE(u4);
  REQUIRE(u4->batch == 2 * 3 * 6);
  REQUIRE(u4->channels == 8 * 4);
}

TEST_CASE("depth_unfold: forward and gradients match float64 under every ISA path",
          "[conv][unfold]") {
  // Samples x leading outputs x tiles >= 256: Winograd under deterministic mode's threads too.
  std::mt19937 rng(23);
  const Shape one{1, 1, 1};
  check_against_float64(
      conv_geometry(4, 16, 32, 1, {8, 12, 12}, {3, 3, 3}, one, {1, 1, 1}, {1, 1, 1}), true,
      ConvPath::depth_unfold, rng);  // the suite's layer, smaller
  check_against_float64(
      conv_geometry(4, 12, 32, 1, {17, 12, 12}, {3, 3, 3}, one, {1, 1, 1}, {1, 1, 1}, {2, 1, 1}),
      false, ConvPath::depth_unfold, rng);  // depth stride 2
  check_against_float64(
      conv_geometry(4, 32, 64, 2, {9, 12, 11}, {3, 3, 3}, {2, 1, 1}, {2, 1, 0}, {1, 1, 2}), true,
      ConvPath::depth_unfold, rng);  // depth dilation 2, groups, asymmetric padding
  check_against_float64(
      conv_geometry(4, 32, 32, 1, {8, 12, 12}, {1, 3, 3}, one, {0, 1, 1}, {0, 1, 1}), true,
      ConvPath::depth_unfold, rng);  // depth kernel 1
  check_against_float64(conv_geometry(2, 8, 32, 1, {4, 6, 12, 12}, {2, 2, 3, 3}, {1, 1, 1, 1},
                                      {0, 1, 1, 1}, {0, 0, 1, 1}),
                        false, ConvPath::depth_unfold, rng);  // 4-d
}

TEST_CASE("kernel_split: a 5x5 or 7x7 conv as a 3x3 one over kernel blocks",
          "[conv][split][plan]") {
  // 16x64x28x28 -> 64, 7x7 'same': 9 blocks, planes of 30x30, no padding.
  const ConvGeometry g7 = conv_geometry(16, 64, 64, 1, {28, 28}, {7, 7}, {1, 1}, {3, 3}, {3, 3});
  const auto u = cpu::kernel_split_3x3(g7);
  REQUIRE(u);
  REQUIRE(u->channels == 64 * 9);
  REQUIRE(u->kernel == Shape{3, 3});
  REQUIRE(u->in == Shape{30, 30});
  REQUIRE(u->out == Shape{28, 28});
  REQUIRE(u->pad_lo == Shape{0, 0});
  // Square 7x7 kernels with channels run Winograd F(2x2, 7x7) directly (cpu/conv_winograd_axes.h);
  // a 7x5 kernel splits into 6 blocks.
  REQUIRE(cpu::plan_conv(g7, ConvPass::forward, ct_test::call_target(DType::Float32)).path ==
          ConvPath::winograd_kxk);
  const ConvGeometry g = conv_geometry(16, 64, 64, 1, {28, 28}, {7, 5}, {1, 1}, {3, 2}, {3, 2});
  REQUIRE(cpu::kernel_split_3x3(g)->channels == 64 * 6);
  REQUIRE(cpu::kernel_split_3x3(conv_geometry(1, 8, 8, 1, {9, 9}, {5, 3}, {1, 1}, {2, 1}, {2, 1}))
              ->channels == 16);
  for (const ConvPass pass : {ConvPass::forward, ConvPass::backward_data}) {
    const cpu::ConvPlan p = cpu::plan_conv(g, pass, ct_test::call_target(DType::Float32));
    INFO(cpu::to_string(p));
    REQUIRE(p.path == ConvPath::kernel_split);
    REQUIRE(p.inner.front().path == ConvPath::winograd);
    REQUIRE(cpu::plan_conv(g, pass, ct_test::call_target(DType::Float64)).path !=
            ConvPath::kernel_split);
    REQUIRE(cpu::plan_conv(g, pass, ct_test::call_target(DType::Float32, true)).path !=
            ConvPath::kernel_split);
  }
  // The weight gradient of 6 blocks stays on the GEMM paths; of 2 blocks it splits.
  REQUIRE(cpu::plan_conv(g, ConvPass::backward_weight, ct_test::call_target(DType::Float32)).path !=
          ConvPath::kernel_split);
  const ConvGeometry k53 = conv_geometry(16, 32, 64, 1, {28, 28}, {5, 3}, {1, 1}, {2, 1}, {2, 1});
  REQUIRE(
      cpu::plan_conv(k53, ConvPass::backward_weight, ct_test::call_target(DType::Float32)).path ==
      ConvPath::kernel_split);
  // Square 5x5 kernels with channels run Winograd F(4x4, 5x5) directly (cpu/conv_winograd_axes.h).
  const ConvGeometry k5 = conv_geometry(16, 32, 64, 1, {28, 28}, {5, 5}, {1, 1}, {2, 2}, {2, 2});
  for (const ConvPass pass :
       {ConvPass::forward, ConvPass::backward_data, ConvPass::backward_weight})
    REQUIRE(cpu::plan_conv(k5, pass, ct_test::call_target(DType::Float32)).path ==
            ConvPath::winograd_kxk);
  // Not 3x3 (Winograd itself), kernels past 9, strides, dilations, other ranks.
  REQUIRE_FALSE(
      cpu::kernel_split_3x3(conv_geometry(1, 8, 8, 1, {9, 9}, {3, 3}, {1, 1}, {1, 1}, {1, 1})));
  REQUIRE_FALSE(
      cpu::kernel_split_3x3(conv_geometry(1, 8, 8, 1, {19, 19}, {11, 11}, {1, 1}, {5, 5}, {5, 5})));
  REQUIRE_FALSE(cpu::kernel_split_3x3(
      conv_geometry(1, 8, 8, 1, {19, 19}, {5, 5}, {1, 1}, {2, 2}, {2, 2}, {2, 2})));
  REQUIRE_FALSE(
      cpu::kernel_split_3x3(conv_geometry(1, 8, 8, 1, {19, 19}, {5, 5}, {2, 1}, {2, 2}, {2, 2})));
  REQUIRE_FALSE(cpu::kernel_split_3x3(conv_geometry(1, 8, 8, 1, {19}, {5}, {1}, {2}, {2})));
}

TEST_CASE("kernel_split: forward and gradients match float64 under every ISA path",
          "[conv][split]") {
  // Samples x 4x4 tiles >= 256: Winograd under deterministic mode's threads too.
  std::mt19937 rng(29);
  const Shape one{1, 1};
  check_against_float64(conv_geometry(16, 16, 32, 1, {16, 18}, {5, 5}, one, {2, 2}, {2, 2}), true,
                        ConvPath::kernel_split, rng);  // 5x5 same
  check_against_float64(conv_geometry(16, 8, 32, 1, {20, 21}, {7, 7}, one, {3, 3}, {3, 3}), false,
                        ConvPath::kernel_split, rng, ConvPath::implicit_gemm);  // 7x7 same
  check_against_float64(conv_geometry(16, 16, 32, 1, {19, 20}, {4, 6}, one, {0, 3}, {2, 1}), true,
                        ConvPath::kernel_split, rng);  // 4x6, uneven padding
  check_against_float64(conv_geometry(16, 32, 64, 2, {20, 17}, {5, 3}, one, {0, 1}, {0, 1}), true,
                        ConvPath::kernel_split, rng);  // 5x3 valid rows, groups
}
