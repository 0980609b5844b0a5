// The CPU convolution plan (cpu/conv_plan.h) without running a convolution: which path each pass
// of representative shapes gets (pointwise, depthwise, implicit GEMM, im2col, the strided phase
// split and the transposed forward of the data gradient, the direct kernels for a huge padding or
// an input dilation, Winograd and the exact switch that rules it out), that the thread split
// covers the output, that the workspace stays bounded per thread where a column matrix would not,
// and what to_string prints. Every GEMM blocking this CPU runs is tried.
#include <algorithm>
#include <string>
#include <vector>

#include "cpu/conv_plan.h"
#include "cpu/conv_winograd.h"
#include "cpu/conv_winograd_axes.h"
#include "cpu/gemm_kernel.h"
#include "support/test_util.h"

using namespace convtape;
using cpu::ConvPass;
using cpu::ConvPath;
using cpu::ConvPlan;
using cpu::ConvTarget;

namespace {

// conv geometry with symmetric padding: out = (in' + 2 pad - dil (k - 1) - 1) / stride + 1, in' the
// input after input dilation.
struct Spec {
  std::int64_t n = 1, c = 1, k = 1, groups = 1;
  Shape in, kernel;
  std::int64_t stride = 1, pad = 0, dilation = 1, input_dilation = 1;
  bool exact = false;
};

ConvGeometry geometry(const Spec& s) {
  ConvGeometry g;
  g.batch = s.n;
  g.channels = s.c;
  g.out_channels = s.k;
  g.groups = s.groups;
  g.in = s.in;
  g.kernel = s.kernel;
  g.exact = s.exact;
  for (std::size_t d = 0; d < s.in.size(); ++d) {
    g.stride.push_back(s.stride);
    g.dilation.push_back(s.dilation);
    g.input_dilation.push_back(s.input_dilation);
    g.pad_lo.push_back(s.pad);
    const std::int64_t in = (s.in[d] - 1) * s.input_dilation + 1;
    g.out.push_back((in + 2 * s.pad - s.dilation * (s.kernel[d] - 1) - 1) / s.stride + 1);
  }
  return g;
}

template <class T>
ConvTarget target(const cpu::GemmKernel<T>& kern, int threads, bool exact = false) {
  ConvTarget t;
  t.dtype = std::is_same_v<T, float> ? DType::Float32 : DType::Float64;
  t.isa = cpu::parse_isa(kern.isa).value_or(cpu::Isa::portable);
  t.gemm = {kern.mr, kern.nr, kern.kc, kern.mc, kern.nc};
  t.threads = threads;
  t.team = threads;
  t.exact = exact;
  return t;
}

// One target per GEMM kernel this CPU runs, float32 and float64, 1 and 2 threads.
std::vector<ConvTarget> targets() {
  std::vector<ConvTarget> v;
  for (const auto* k : cpu::available_gemm_kernels<float>())
    for (int threads : {1, 2}) v.push_back(target(*k, threads));
  for (const auto* k : cpu::available_gemm_kernels<double>())
    for (int threads : {1, 2}) v.push_back(target(*k, threads));
  return v;
}

ConvTarget f32(int threads = 2, bool exact = false) {
  return target(*cpu::available_gemm_kernels<float>().front(), threads, exact);
}
ConvTarget f64(int threads = 2) {
  return target(*cpu::available_gemm_kernels<double>().front(), threads);
}

ConvPlan plan(const Spec& s, ConvPass pass, const ConvTarget& t) {
  return cpu::plan_conv(geometry(s), pass, t);
}

std::string describe(const ConvTarget& t) {
  return std::string(dtype_name(t.dtype)) + " " + cpu::isa_name(t.isa) + " threads " +
         std::to_string(t.threads);
}

constexpr double kMiB = 1024.0 * 1024.0;

}  // namespace

TEST_CASE("plan: a 1x1 stride-1 conv multiplies the input in place", "[conv][plan]") {
  const Spec s{4, 256, 64, 1, {28, 28}, {1, 1}};
  for (const ConvTarget& t : targets()) {
    INFO(describe(t));
    const ConvPlan fwd = plan(s, ConvPass::forward, t);
    CHECK(fwd.path == ConvPath::pointwise_gemm);
    // Tiles cover the 784 positions, and there are tasks for every planned thread.
    CHECK(fwd.tiles * fwd.tile >= 784);
    CHECK((fwd.tiles - 1) * fwd.tile < 784);
    CHECK(fwd.tasks == 4 * fwd.tiles);
    CHECK(fwd.tasks >= 2 * t.threads);
    // dx = W^T dy is itself a 1x1 forward conv of dy (channels swapped).
    const ConvPlan bd = plan(s, ConvPass::backward_data, t);
    REQUIRE(bd.path == ConvPath::transposed_forward);
    REQUIRE(bd.inner.size() == 1);
    CHECK(bd.inner[0].path == ConvPath::pointwise_gemm);
    CHECK(bd.inner[0].geometry.channels == 64);
    CHECK(bd.inner[0].geometry.out_channels == 256);
    const ConvPlan bw = plan(s, ConvPass::backward_weight, t);
    CHECK(bw.path == ConvPath::pointwise_gemm);
    CHECK(bw.parts == std::min<std::int64_t>(bw.tasks, t.threads));
  }
}

TEST_CASE("plan: depthwise convs run the direct kernels, padded unless that costs too much",
          "[conv][plan]") {
  for (const ConvTarget& t : targets()) {
    INFO(describe(t));
    const Spec dw{16, 128, 128, 128, {28, 28}, {3, 3}, 1, 1};
    CHECK(plan(dw, ConvPass::forward, t).path == ConvPath::direct_padded);
    CHECK(plan(dw, ConvPass::backward_weight, t).path == ConvPath::direct_padded);
    // One output per channel: the data gradient is a depthwise forward conv with the flipped
    // kernel; with two outputs per channel, the adjoint loops.
    const ConvPlan bd = plan(dw, ConvPass::backward_data, t);
    REQUIRE(bd.path == ConvPath::transposed_forward);
    CHECK(bd.inner.at(0).path == ConvPath::direct_padded);
    Spec mult = dw;
    mult.k = 256;
    CHECK(plan(mult, ConvPass::backward_data, t).path == ConvPath::direct_padded);
    // A padding far beyond the input with a stride to match: windows mostly read zeros, so no
    // padded plane.
    Spec huge = dw;
    huge.in = {8, 8};
    huge.pad = 1000;
    huge.stride = 1000;
    for (ConvPass pass : {ConvPass::forward, ConvPass::backward_data, ConvPass::backward_weight})
      CHECK(plan(huge, pass, t).path == ConvPath::direct);
    // An input dilation: the direct kernels read the holes as zeros.
    Spec holes = dw;
    holes.input_dilation = 2;
    CHECK(plan(holes, ConvPass::forward, t).path == ConvPath::direct);
    // Five outputs per group are a GEMM again.
    Spec five = dw;
    five.k = 5 * 128;
    CHECK(plan(five, ConvPass::forward, t).path != ConvPath::direct_padded);
  }
}

TEST_CASE("plan: implicit GEMM while the padded sample fits and samples feed the threads",
          "[conv][plan]") {
  // float64 (or the exact switch), so that Winograd does not take the 3x3 stride-1 shapes.
  const ConvTarget t = f64(2);
  const Spec resnet{16, 64, 64, 1, {56, 56}, {3, 3}, 1, 1};
  const ConvPlan fwd = plan(resnet, ConvPass::forward, t);
  REQUIRE(fwd.path == ConvPath::implicit_gemm);
  CHECK(fwd.tasks == 16);
  CHECK(fwd.tile > 0);
  CHECK(fwd.tile <= t.gemm.nc);
  // Grid columns in whole panels, or (positions-major: the grid would waste 2 of every 58
  // columns) positions in whole row panels.
  CHECK(fwd.windows);
  CHECK(fwd.tile % t.gemm.mr == 0);
  CHECK(fwd.tile_rows > 0);
  CHECK(fwd.tile_rows <= t.gemm.kc);
  const ConvPlan bw = plan(resnet, ConvPass::backward_weight, t);
  CHECK(bw.path == ConvPath::implicit_gemm);
  CHECK(bw.parts == 2);
  // A strided conv splits into phases for the implicit GEMM too.
  Spec s2 = resnet;
  s2.k = 128;
  s2.stride = 2;
  const ConvPlan fwd2 = plan(s2, ConvPass::forward, t);
  CHECK(fwd2.path == ConvPath::implicit_gemm);
  // Its reduction slices are half as deep (every phase of a channel is read per slice): 576 rows
  // in slices of at most kc / 2, while the unit-stride conv's 576 rows take slices up to kc.
  CHECK(fwd2.tile_rows <= t.gemm.kc / 2);
  CHECK(fwd2.tile_rows == (576 + (576 + t.gemm.kc / 2 - 1) / (t.gemm.kc / 2) - 1) /
                              ((576 + t.gemm.kc / 2 - 1) / (t.gemm.kc / 2)));
  CHECK(fwd.tile_rows ==
        (576 + (576 + t.gemm.kc - 1) / t.gemm.kc - 1) / ((576 + t.gemm.kc - 1) / t.gemm.kc));
  // One sample for 8 planned threads, with work enough to share: the forward cuts the sample's
  // 64 output channels into equal blocks (about 2 tasks per thread, at most one per row panel); the
  // weight gradient, which sums over samples, feeds them im2col tiles instead.
  Spec one = resnet;
  one.n = 1;
  const ConvTarget t8 = f64(8);
  const ConvPlan wide = plan(one, ConvPass::forward, t8);
  CHECK(wide.path == ConvPath::implicit_gemm);
  const std::int64_t panels = (64 + t8.gemm.mr - 1) / t8.gemm.mr;
  CHECK(wide.channel_blocks == std::min<std::int64_t>(panels, 16));
  CHECK(wide.block_channels == (64 + wide.channel_blocks - 1) / wide.channel_blocks);
  CHECK(wide.channel_blocks * wide.block_channels >= 64);
  CHECK((wide.channel_blocks - 1) * wide.block_channels < 64);
  CHECK(wide.tasks == wide.channel_blocks);
  const ConvPlan wide_bw = plan(one, ConvPass::backward_weight, t8);
  CHECK(wide_bw.path == ConvPath::im2col_gemm);
  CHECK(wide_bw.tasks >= 16);
  // With samples enough for the threads, no cut.
  CHECK(plan(resnet, ConvPass::forward, t8).channel_blocks == 0);
  // A padded sample group past 6 MiB: im2col.
  Spec big = resnet;
  big.c = 512;
  big.in = {64, 64};
  CHECK(plan(big, ConvPass::forward, t).path == ConvPath::im2col_gemm);
  // An input dilation: im2col (the implicit grid has no holes).
  Spec holes = resnet;
  holes.input_dilation = 2;
  CHECK(plan(holes, ConvPass::forward, t).path == ConvPath::im2col_gemm);
  CHECK(plan(holes, ConvPass::backward_weight, t).path == ConvPath::im2col_gemm);
}

TEST_CASE("plan: the data gradient runs as forward convs of dy where it can", "[conv][plan]") {
  const ConvTarget t = f64(2);
  // Strided: one forward conv per stride phase, all of them over one padded copy of dy per
  // (sample, group) where every phase runs a GEMM and there are samples for the threads.
  const Spec s2{16, 64, 128, 1, {56, 56}, {3, 3}, 2, 1};
  const ConvPlan split = plan(s2, ConvPass::backward_data, t);
  CHECK(split.path == ConvPath::phase_implicit);
  CHECK(split.phases == 4);
  CHECK(split.tasks == 16);
  // Its layout: the phases' largest low padding (0: each phase skips the values in dx's low
  // padding) and reach past dy's 28 values (1).
  const cpu::PhaseLayout lay = cpu::phase_layout(geometry(s2));
  CHECK(lay.lo == Shape{0, 0});
  CHECK(lay.ext == Shape{29, 29});
  CHECK(lay.plane == 29 * 29);
  // A batch of one at 2 threads: the phases run one by one, each cutting its output channels.
  Spec one = s2;
  one.n = 1;
  CHECK(plan(one, ConvPass::backward_data, t).path == ConvPath::phase_split);
  CHECK(plan(one, ConvPass::backward_data, f64(1)).path == ConvPath::phase_implicit);
  Spec s3 = s2;
  s3.stride = 3;
  CHECK(plan(s3, ConvPass::backward_data, t).phases == 9);
  // A stride of 1000 on 56 values: only the phases that hold dx values (pad + in = 57 per dim),
  // too many to run over one copy.
  Spec far = s2;
  far.stride = 1000;
  far.in = {56, 56};
  const ConvPlan sparse = plan(far, ConvPass::backward_data, t);
  CHECK(sparse.path == ConvPath::phase_split);
  CHECK(sparse.phases == 57 * 57);
  // Input channels for fewer than two micro-kernel row panels (the phases' output channels): a
  // 7x7 stride-2 stem on 3 channels takes col2im.
  const Spec stem{1, 3, 64, 1, {224, 224}, {7, 7}, 2, 3};
  CHECK(plan(stem, ConvPass::backward_data, t).path == ConvPath::im2col_gemm);
  Spec narrow = s2;
  narrow.c = 2 * t.gemm.mr - 1;
  CHECK(plan(narrow, ConvPass::backward_data, t).path == ConvPath::im2col_gemm);
  narrow.c = 2 * t.gemm.mr;
  CHECK(plan(narrow, ConvPass::backward_data, t).path == ConvPath::phase_implicit);
  // A padding much larger than the input: the phases would compute padding, so col2im.
  Spec wide = s2;
  wide.in = {4, 4};
  wide.pad = 300;
  wide.kernel = {601, 601};
  const ConvPlan col2im = plan(wide, ConvPass::backward_data, t);
  CHECK(col2im.path == ConvPath::im2col_gemm);
  CHECK(col2im.channel_blocks * col2im.block_channels >= 64);
  CHECK(col2im.tasks == 16 * col2im.channel_blocks);
  // Unit stride: one forward conv with the flipped kernel, low padding dil (k - 1) - pad.
  const Spec s1{16, 64, 64, 1, {56, 56}, {5, 5}, 1, 1, 1};
  const ConvPlan tr = plan(s1, ConvPass::backward_data, t);
  REQUIRE(tr.path == ConvPath::transposed_forward);
  CHECK(tr.inner.at(0).geometry.pad_lo == Shape{3, 3});
  CHECK(tr.inner.at(0).path == ConvPath::implicit_gemm);
  // ... but not with a padding past the kernel's reach, nor an input dilation: col2im.
  Spec past = s1;
  past.pad = 5;
  CHECK(plan(past, ConvPass::backward_data, t).path == ConvPath::im2col_gemm);
  Spec holes = s1;
  holes.input_dilation = 2;
  CHECK(plan(holes, ConvPass::backward_data, t).path == ConvPath::im2col_gemm);
}

TEST_CASE("plan: Winograd takes float32 stride-1 3x3 convs with channels, unless exact",
          "[conv][plan][winograd]") {
  const Spec resnet{16, 64, 64, 1, {56, 56}, {3, 3}, 1, 1};
  const std::vector<ConvPass> passes{ConvPass::forward, ConvPass::backward_data,
                                     ConvPass::backward_weight};
  REQUIRE(cpu::winograd::applies(geometry(resnet)));
  for (const auto* k : cpu::available_gemm_kernels<float>()) {
    INFO(k->isa);
    for (ConvPass pass : passes) {
      const ConvPlan p = cpu::plan_conv(geometry(resnet), pass, target(*k, 2));
      CHECK(p.path == ConvPath::winograd);
      CHECK(p.tile == 4);
      CHECK(p.tiles == 14 * 14);
    }
  }
  for (ConvPass pass : passes) {
    INFO(cpu::pass_name(pass));
    // float64, the exact switch from the environment, and the option's exact: never.
    CHECK(plan(resnet, pass, f64()).path != ConvPath::winograd);
    const ConvPlan forced = plan(resnet, pass, f32(2, /*exact=*/true));
    CHECK(forced.exact);
    CHECK(forced.path != ConvPath::winograd);
    Spec option = resnet;
    option.exact = true;
    const ConvPlan by_option = plan(option, pass, f32());
    CHECK(by_option.exact);
    CHECK(by_option.path == forced.path);
  }
  // Eligible shapes only: stride 2, 5x5, 3-d, few channels, depthwise.
  Spec s2 = resnet;
  s2.stride = 2;
  Spec k5 = resnet;
  k5.kernel = {5, 5};
  Spec d3 = resnet;
  d3.in = {16, 16, 16};
  d3.kernel = {3, 3, 3};
  Spec narrow = resnet;
  narrow.c = 1;
  Spec dw = resnet;
  dw.groups = 64;
  for (const Spec& s : {s2, k5, d3, narrow, dw})
    for (ConvPass pass : passes) CHECK(plan(s, pass, f32()).path != ConvPath::winograd);
  // Batch 1 on a 14x14 plane is 16 tiles, one block: with two threads the exact paths (which
  // split output channels) take it; alone, Winograd still saves the multiplications.
  const Spec b1{1, 256, 256, 1, {14, 14}, {3, 3}, 1, 1};
  REQUIRE(cpu::winograd::applies(geometry(b1)));
  for (ConvPass pass : passes) {
    INFO(cpu::pass_name(pass));
    CHECK(plan(b1, pass, f32(1)).path == ConvPath::winograd);
    CHECK(plan(b1, pass, f32(2)).path != ConvPath::winograd);
    Spec b4 = b1;
    b4.n = 4;  // 64 tiles: a block per thread
    CHECK(plan(b4, pass, f32(2)).path == ConvPath::winograd);
    // Batch 1 on 28x28 (49 tiles): the forward and data gradient cut the block's output
    // channels across the threads; the weight gradient has no such cut.
    Spec b28 = b1;
    b28.c = b28.k = 128;
    b28.in = {28, 28};
    CHECK((plan(b28, pass, f32(2)).path == ConvPath::winograd) ==
          (pass != ConvPass::backward_weight));
  }
  // A strided 6x6 conv's data gradient splits into stride phases whose forward convs are 3x3:
  // Winograd runs them, unless exact (the phases carry the switch, in the target or geometry).
  Spec k6 = resnet;
  k6.kernel = {6, 6};
  k6.stride = 2;
  k6.pad = 2;
  // Exact, every phase runs a GEMM: all over one copy of dy; else the phases keep Winograd.
  CHECK(plan(k6, ConvPass::backward_data, f32(2)).path == ConvPath::phase_split);
  const ConvPlan phases = plan(k6, ConvPass::backward_data, f32(2, true));
  CHECK(phases.path == ConvPath::phase_implicit);
  CHECK(phases.target.exact);
  const cpu::PhaseConv phase = cpu::phase_conv(geometry(k6), {0, 0});
  REQUIRE_FALSE(phase.empty);
  CHECK(phase.g.kernel == Shape{3, 3});
  CHECK(cpu::plan_conv(phase.g, ConvPass::forward, f32()).path == ConvPath::winograd);
  CHECK(cpu::plan_conv(phase.g, ConvPass::forward, phases.target).path != ConvPath::winograd);
  k6.exact = true;
  CHECK(cpu::phase_conv(geometry(k6), {0, 0}).g.exact);
}

TEST_CASE(
    "plan: strided 3x3 convs with channels take Winograd by phases on AVX2, and on AVX-512 "
    "forward and data gradient with many channels",
    "[conv][plan][winograd]") {
  const Spec c256{16, 256, 256, 1, {28, 28}, {3, 3}, 2, 1};   // 14x14: 7x7 tiles, 2x2 each
  const Spec resnet{16, 64, 128, 1, {56, 56}, {3, 3}, 2, 1};  // 28x28: 4x4 tiles of 7x7
  REQUIRE(cpu::winograd_s2::applies(geometry(c256)));
  REQUIRE(cpu::winograd_s2::applies(geometry(resnet)));
  REQUIRE(cpu::winograd_s2::applies_data(geometry(c256)));
  for (const auto* k : cpu::available_gemm_kernels<float>()) {
    const ConvTarget t = target(*k, 2);
    INFO(k->isa);
    for (ConvPass pass : {ConvPass::forward, ConvPass::backward_data, ConvPass::backward_weight}) {
      INFO(cpu::pass_name(pass));
      // Measured (cpu/conv_plan.cpp): ci co / (ci + co) of 40 or more on AVX2, 64 for the data
      // gradient on both paths, 96 for the AVX-512 forward, never the AVX-512 weight gradient.
      const bool data = pass == ConvPass::backward_data;
      const auto takes = [&](double harmonic) {
        if (t.isa == cpu::Isa::avx2) return harmonic >= (data ? 64 : 40);
        if (t.isa == cpu::Isa::avx512 && pass != ConvPass::backward_weight)
          return harmonic >= (data ? 64 : 96);
        return false;
      };
      const ConvPlan p = plan(c256, pass, t);
      CHECK((p.path == ConvPath::winograd_s2) == takes(128));
      CHECK((plan(resnet, pass, t).path == ConvPath::winograd_s2) == takes(64.0 * 128 / 192));
      // 192 channels (192 * 192 = 96 * 384), 128 -> 256 (85.3); on AVX-512 512 -> 512 with 16
      // tiles would read 5.3 MiB of transformed weights per tile (with 64 tiles 1.3 MiB: yes),
      // 1024 -> 1024 hold 340 MiB of them (on any path).
      Spec c192 = c256, c128 = c256, c512 = c256, c1024 = c256;
      c192.c = c192.k = 192;
      c128.c = 128;
      c512.c = c512.k = 512;
      c1024.n = 64;
      c1024.c = c1024.k = 1024;
      CHECK((plan(c192, pass, t).path == ConvPath::winograd_s2) == takes(96));
      CHECK((plan(c128, pass, t).path == ConvPath::winograd_s2) == takes(128.0 * 256 / 384));
      CHECK((plan(c512, pass, t).path == ConvPath::winograd_s2) == takes(256));
      CHECK(plan(c1024, pass, t).path != ConvPath::winograd_s2);
      c512.n = 4;
      CHECK((plan(c512, pass, target(*k, 1)).path == ConvPath::winograd_s2) ==
            (t.isa == cpu::Isa::avx2));
      if (p.path != ConvPath::winograd_s2) continue;
      CHECK(p.tile == 7);
      CHECK(p.tiles == 4);
      CHECK(p.parallel);
      CHECK(p.workspace_bytes > 0);
      CHECK(cpu::to_string(p).find("winograd_s2") != std::string::npos);
      // float64 and the exact switch: never.
      ConvTarget t64 = target(*cpu::available_gemm_kernels<double>().front(), 2);
      t64.isa = t.isa;
      CHECK(plan(c256, pass, t64).path != ConvPath::winograd_s2);
      CHECK(plan(c256, pass, target(*k, 2, /*exact=*/true)).path != ConvPath::winograd_s2);
      Spec option = c256;
      option.exact = true;
      CHECK(plan(option, pass, t).path != ConvPath::winograd_s2);
      // Batch 1 (4 tiles) does not feed two threads; alone it still saves multiplications on
      // AVX2 (on AVX-512 its 4 tiles would read 5 MiB of transformed weights each).
      Spec b1 = c256;
      b1.n = 1;
      CHECK(plan(b1, pass, t).path != ConvPath::winograd_s2);
      CHECK((plan(b1, pass, target(*k, 1)).path == ConvPath::winograd_s2) ==
            (t.isa == cpu::Isa::avx2));
      // The data gradient needs one padding parity on both axes.
      if (data) {
        Spec mixed = c256;
        mixed.in = {28, 29};
        ConvGeometry g = geometry(mixed);
        g.pad_lo = {1, 0};
        CHECK(cpu::plan_conv(g, pass, t).path != ConvPath::winograd_s2);
      }
    }
  }
}

TEST_CASE("plan: 1-D convs with kernel 3 or 5 and channels take 1-D Winograd, unless exact",
          "[conv][plan][winograd]") {
  const Spec conv1d{32, 64, 64, 1, {1024}, {5}, 1, 2};  // the suite's row
  const Spec k3{32, 128, 128, 1, {512}, {3}, 1, 1};
  REQUIRE(cpu::winograd_1d::applies(geometry(conv1d)));
  for (const auto* k : cpu::available_gemm_kernels<float>()) {
    const ConvTarget t = target(*k, 2);
    INFO(k->isa);
    for (ConvPass pass : {ConvPass::forward, ConvPass::backward_data, ConvPass::backward_weight}) {
      INFO(cpu::pass_name(pass));
      const ConvPlan p = plan(conv1d, pass, t);
      CHECK(p.path == ConvPath::winograd_1d);
      CHECK(p.tile == 4);
      CHECK(p.tiles == 256);
      CHECK(p.workspace_bytes > 0);
      CHECK(cpu::to_string(p).find("winograd_1d") != std::string::npos);
      const ConvPlan p3 = plan(k3, pass, t);
      CHECK(p3.path == ConvPath::winograd_1d);
      CHECK(p3.tile == 6);
      // float64, the exact switch, too few channels, and too few tiles for two threads: never.
      CHECK(plan(conv1d, pass, f64()).path != ConvPath::winograd_1d);
      CHECK(plan(conv1d, pass, target(*k, 2, /*exact=*/true)).path != ConvPath::winograd_1d);
      Spec narrow = conv1d;
      narrow.c = narrow.k = 32;
      CHECK(plan(narrow, pass, t).path != ConvPath::winograd_1d);
      Spec short_batch{4, 256, 256, 1, {128}, {3}, 1, 1};  // 88 tiles
      CHECK(plan(short_batch, pass, t).path != ConvPath::winograd_1d);
      CHECK(plan(short_batch, pass, target(*k, 1)).path == ConvPath::winograd_1d);
    }
  }
}

TEST_CASE("plan: 5x5 and 7x7 convs with channels take Winograd F(4x4, 5x5) / F(2x2, 7x7)",
          "[conv][plan][winograd]") {
  const Spec k5{16, 96, 128, 1, {14, 14}, {5, 5}, 1, 2};  // the bench's k5_96_128
  REQUIRE(cpu::winograd_kxk::applies(geometry(k5)));
  for (const auto* k : cpu::available_gemm_kernels<float>()) {
    const ConvTarget t = target(*k, 2);
    INFO(k->isa);
    for (ConvPass pass : {ConvPass::forward, ConvPass::backward_data, ConvPass::backward_weight}) {
      INFO(cpu::pass_name(pass));
      const ConvPlan p = plan(k5, pass, t);
      CHECK(p.path == ConvPath::winograd_kxk);
      CHECK(p.tile == 4);
      CHECK(p.tiles == 16);
      CHECK(p.workspace_bytes > 0);
      CHECK(plan(k5, pass, f64()).path != ConvPath::winograd_kxk);
      CHECK(plan(k5, pass, target(*k, 2, /*exact=*/true)).path != ConvPath::winograd_kxk);
      Spec narrow = k5;
      narrow.c = narrow.k = 16;
      CHECK(plan(narrow, pass, t).path != ConvPath::winograd_kxk);
      Spec b1 = k5;  // 16 tiles: too few for two threads
      b1.n = 1;
      CHECK(plan(b1, pass, t).path != ConvPath::winograd_kxk);
      CHECK(plan(b1, pass, target(*k, 1)).path == ConvPath::winograd_kxk);
      const ConvPlan p7 = plan(Spec{16, 64, 64, 1, {28, 28}, {7, 7}, 1, 3}, pass, t);  // k7_64
      CHECK(p7.path == ConvPath::winograd_kxk);
      CHECK(p7.tile == 2);
      CHECK(p7.tiles == 196);
    }
  }
}

TEST_CASE("plan: the workspace stays a few MiB per thread where a column matrix would not",
          "[conv][plan]") {
  // 64 channels of 192 x 192, 3 x 3: the column matrix would be 85 MB (float32).
  const Spec big{1, 64, 64, 1, {192, 192}, {3, 3}, 1, 1};
  const double columns = 64.0 * 9 * 192 * 192 * 4;
  for (bool exact : {true, false})
    for (int threads : {1, 2, 8}) {
      const ConvTarget t = f32(threads, exact);
      for (ConvPass pass :
           {ConvPass::forward, ConvPass::backward_data, ConvPass::backward_weight}) {
        const ConvPlan p = plan(big, pass, t);
        INFO(cpu::pass_name(pass) << " threads " << threads << ": " << cpu::to_string(p));
        CHECK(p.workspace_bytes > 0);
        CHECK(double(p.workspace_bytes) <= 8.0 * kMiB * threads);
        CHECK(double(p.workspace_bytes) / threads < columns / 8);
      }
    }
  // The per-thread buffers scale with the team, the packed weights do not.
  const Spec im2col{1, 64, 64, 1, {192, 192}, {3, 3}, 1, 1, 1, 2};  // input dilation: im2col
  const ConvPlan one = plan(im2col, ConvPass::forward, f32(1));
  const ConvPlan four = plan(im2col, ConvPass::forward, f32(4));
  REQUIRE(one.path == ConvPath::im2col_gemm);
  REQUIRE(four.path == ConvPath::im2col_gemm);
  CHECK(four.workspace_bytes > one.workspace_bytes);
  CHECK(four.workspace_bytes < 4 * one.workspace_bytes);
  // The weight gradient's parts each hold a copy of dw.
  const ConvPlan bw1 = plan(im2col, ConvPass::backward_weight, f32(1));
  const ConvPlan bw2 = plan(im2col, ConvPass::backward_weight, f32(2));
  CHECK(bw2.parts == 2);
  CHECK(bw2.workspace_bytes - bw1.workspace_bytes >= 64 * 64 * 9 * 4);
  // float64 values take twice the bytes of the same plan in float32.
  const ConvPlan f = plan(im2col, ConvPass::forward, f32(1));
  const ConvPlan d = plan(im2col, ConvPass::forward, f64(1));
  CHECK(d.workspace_bytes > f.workspace_bytes);
}

TEST_CASE("plan: empty operands plan nothing, whatever the padding", "[conv][plan]") {
  Spec s{0, 4, 8, 1, {10}, {3}, 1, std::int64_t{1} << 61};
  for (ConvPass pass : {ConvPass::forward, ConvPass::backward_data, ConvPass::backward_weight}) {
    const ConvPlan p = plan(s, pass, f32());
    CHECK(p.path == ConvPath::empty);
    CHECK(p.workspace_bytes == 0);
  }
  // An empty spatial input: no implicit grid is sized from it.
  Spec flat{2, 4, 8, 1, {0}, {1}};
  CHECK(plan(flat, ConvPass::forward, f32()).path == ConvPath::empty);
  CHECK(plan(flat, ConvPass::backward_weight, f32()).path == ConvPath::empty);
}

TEST_CASE("plan: huge but valid geometry plans without overflow", "[conv][plan]") {
  // A 1-d conv padded by 2^40 on each side with a stride of 2^40 (3 outputs): direct for
  // depthwise, im2col otherwise, and a workspace that does not grow with the padding.
  const std::int64_t pad = std::int64_t{1} << 40;
  const Spec dw{1, 2, 2, 2, {5}, {3}, pad, pad};
  const ConvPlan p = plan(dw, ConvPass::forward, f32());
  CHECK(p.path == ConvPath::direct);
  CHECK(p.workspace_bytes < 1024 * 1024);
  const Spec dense{1, 2, 3, 1, {5}, {3}, pad, pad};
  const ConvPlan q = plan(dense, ConvPass::forward, f32());
  CHECK(q.path == ConvPath::im2col_gemm);
  CHECK(double(q.workspace_bytes) <= 8.0 * kMiB * 2);
  // A stride of 2^62: one output position, no phase loop over 2^62 phases.
  const Spec far{1, 16, 3, 1, {5}, {3}, std::int64_t{1} << 62, 0};
  const ConvPlan r = plan(far, ConvPass::backward_data, f32());
  CHECK(r.path == ConvPath::phase_implicit);
  CHECK(r.phases == 5);
  CHECK(r.workspace_bytes < 1024 * 1024);
  // With 3 input channels (fewer than two row panels) col2im runs it, as cheaply.
  const Spec far3{1, 3, 3, 1, {5}, {3}, std::int64_t{1} << 62, 0};
  const ConvPlan r3 = plan(far3, ConvPass::backward_data, f32());
  CHECK(r3.path == ConvPath::im2col_gemm);
  CHECK(r3.workspace_bytes < 1024 * 1024);
}

TEST_CASE("plan: to_string names the path, type, ISA, split, workspace and inner plan",
          "[conv][plan]") {
  const ConvTarget t = f32(2, true);
  const Spec s{16, 64, 64, 1, {56, 56}, {3, 3}, 1, 1};
  const ConvPlan fwd = plan(s, ConvPass::forward, t);
  const std::string text = cpu::to_string(fwd);
  INFO(text);
  CHECK(text.rfind("implicit_gemm float32 ", 0) == 0);
  CHECK(text.find(cpu::isa_name(t.isa)) != std::string::npos);
  CHECK(text.find("threads=2") != std::string::npos);
  CHECK(text.find(" exact") != std::string::npos);
  CHECK(text.find(" parallel") != std::string::npos);
  CHECK(text.find("tasks=16") != std::string::npos);
  CHECK(text.find("tile_rows=") != std::string::npos);
  CHECK(text.find("workspace=") != std::string::npos);
  CHECK(text.find("iB") != std::string::npos);
  const std::string bd = cpu::to_string(plan(s, ConvPass::backward_data, t));
  INFO(bd);
  CHECK(bd.rfind("transposed_forward ", 0) == 0);
  CHECK(bd.find("[forward N=16 C=64 K=64 groups=1 in=56x56 out=56x56 kernel=3x3 stride=1x1 "
                "dilation=1x1 input_dilation=1x1 pad_lo=1x1: implicit_gemm") != std::string::npos);
  Spec option = s;
  option.exact = true;
  CHECK(cpu::to_string(geometry(option)) ==
        "N=16 C=64 K=64 groups=1 in=56x56 out=56x56 kernel=3x3 stride=1x1 dilation=1x1 "
        "input_dilation=1x1 pad_lo=1x1 exact");
  CHECK(cpu::to_string(plan(Spec{0, 1, 1, 1, {4}, {1}}, ConvPass::forward, t)) ==
        std::string("empty float32 ") + cpu::isa_name(t.isa) + " threads=2 exact workspace=0 B");
  const std::string wino = cpu::to_string(plan(s, ConvPass::forward, f32(2)));
  CHECK(wino.rfind("winograd float32 ", 0) == 0);
  CHECK(wino.find("tile=4 tiles=196") != std::string::npos);
  CHECK(std::string(cpu::path_name(ConvPath::phase_split)) == "phase_split");
  CHECK(std::string(cpu::path_name(ConvPath::phase_implicit)) == "phase_implicit");
  CHECK(std::string(cpu::pass_name(ConvPass::backward_weight)) == "backward_weight");
}

TEST_CASE("plan: implicit GEMM lines share their padding along a unit-stride last dim",
          "[conv][plan]") {
  // 7x7 'same' on 28 columns: lines of 28 values with 3 zeros between them suffice (a read past a
  // line's end lands in the next line's left padding), instead of 28 + 6.
  const cpu::ImplicitPitch same =
      cpu::implicit_pitch(geometry({1, 4, 4, 1, {28, 28}, {7, 7}, 1, 3}));
  CHECK(same.pitch == 31);
  CHECK(same.overrun == 3);
  // No padding: nothing to share, the pitch is the input row.
  const cpu::ImplicitPitch valid = cpu::implicit_pitch(geometry({1, 4, 4, 1, {20, 20}, {5, 5}}));
  CHECK(valid.pitch == 20);
  CHECK(valid.overrun == 0);
  // Strided along the last dim: the phase extent, out + dil (k - 1) / stride = 28 + 1.
  const cpu::ImplicitPitch strided =
      cpu::implicit_pitch(geometry({1, 4, 4, 1, {56, 56}, {3, 3}, 2, 1}));
  CHECK(strided.pitch == 29);
  CHECK(strided.overrun == 0);
  // 1-d: one line, no pitch to shrink.
  CHECK(cpu::implicit_pitch(geometry({1, 4, 4, 1, {100}, {5}, 1, 2})).pitch == 104);
  // A padding wider than the kernel's reach: the output line (1 + 4 = 5 columns from 1 input and
  // padding 2 per side, 1x1 kernel) bounds the pitch from below, not only the padded data.
  ConvGeometry wide = geometry({1, 2, 2, 1, {3, 1}, {1, 1}, 1, 2});
  REQUIRE(wide.out.back() == 5);
  const cpu::ImplicitPitch w = cpu::implicit_pitch(wide);
  CHECK(w.pitch >= wide.out.back());
  CHECK(w.pitch >= wide.pad_lo.back() + wide.in.back());
  // The plan's tile covers at most the grid's 28 lines of 31 columns, rounded up to the kernel.
  const ConvTarget t = f32(2, true);
  const ConvPlan p = plan({16, 64, 64, 1, {28, 28}, {7, 7}, 1, 3}, ConvPass::forward, t);
  REQUIRE(p.path == ConvPath::implicit_gemm);
  CHECK(p.tile <= (28 * 31 + t.gemm.nr - 1) / t.gemm.nr * t.gemm.nr);
}

TEST_CASE("plan: the implicit forward runs positions-major where the grid would waste columns",
          "[conv][plan]") {
  for (ConvTarget t : targets()) {
    t.exact = true;  // these strided shapes take Winograd by phases on the AVX2 path otherwise
    INFO(describe(t));
    // 3x3 stride 2 at 256 channels, 14x14 outputs: the grid computes 15-column lines in whole
    // panels, 224 or more columns for 196 positions, and there are 8+ panels of channels.
    const ConvPlan wide = plan({16, 256, 256, 1, {28, 28}, {3, 3}, 2, 1}, ConvPass::forward, t);
    INFO(cpu::to_string(wide));
    REQUIRE(wide.path == ConvPath::implicit_gemm);
    CHECK(wide.windows);
    CHECK(wide.tile % t.gemm.mr == 0);
    CHECK(wide.tile >= 196);  // one tile holds a sample's positions
    CHECK(cpu::to_string(wide).find(" windows") != std::string::npos);
    // 3x3 stride 2 at 128 channels, 28x28 outputs: 29-column lines, 4% wasted, 4+ panels.
    const ConvPlan s2 = plan({16, 64, 128, 1, {56, 56}, {3, 3}, 2, 1}, ConvPass::forward, t);
    CHECK(s2.windows == (128 / t.gemm.nr >= 4));
    // Not where the grid wastes nothing (1024 positions of a 1-d conv) ...
    const ConvPlan line = plan({32, 64, 64, 1, {1024}, {5}, 1, 2}, ConvPass::forward, t);
    CHECK_FALSE(line.windows);
    // ... nor with few panels of output channels to share each window across ...
    const ConvPlan narrow = plan({16, 256, 24, 1, {28, 28}, {3, 3}, 2, 1}, ConvPass::forward, t);
    CHECK_FALSE(narrow.windows);
    // ... nor for batch 1 cut into blocks of output channels (with threads to cut for), nor
    // outside the forward.
    const ConvPlan one = plan({1, 256, 256, 1, {28, 28}, {3, 3}, 2, 1}, ConvPass::forward, t);
    if (t.threads > 1) CHECK_FALSE(one.windows);
    CHECK_FALSE(
        plan({16, 256, 256, 1, {28, 28}, {3, 3}, 2, 1}, ConvPass::backward_weight, t).windows);
  }
}

TEST_CASE("plan: a few-sample weight gradient cuts dw's columns instead of short position tiles",
          "[conv][plan]") {
  for (const ConvTarget& t : targets()) {
    if (t.threads < 2) continue;
    INFO(describe(t));
    // Batch 1, 256 channels of 3x3 at 14x14: 196 positions would be cut into tiles of 49.
    const ConvPlan b1 =
        plan({1, 256, 256, 1, {14, 14}, {3, 3}, 1, 1, 1, 1, true}, ConvPass::backward_weight, t);
    INFO(cpu::to_string(b1));
    REQUIRE(b1.path == ConvPath::im2col_gemm);
    CHECK(b1.channel_blocks > 1);
    CHECK(b1.tasks == b1.channel_blocks);
    CHECK(b1.parts == 1);
    CHECK(b1.tile == 196);
    CHECK(b1.block_channels % t.gemm.nr == 0);
    CHECK(b1.channel_blocks * b1.block_channels >= 256 * 9);
    // A batch-1 224x224 stem keeps long position tiles.
    const ConvPlan stem =
        plan({1, 3, 64, 1, {224, 224}, {7, 7}, 2, 3, 1, 1, true}, ConvPass::backward_weight, t);
    CHECK(stem.channel_blocks == 0);
    CHECK(stem.tile >= t.gemm.kc);
  }
}
