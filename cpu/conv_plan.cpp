// The CPU convolution plan (cpu/conv_plan.h): the path per pass, its tiles and thread split, and
// the scratch it will use, from the geometry and the machine side alone. The tile and split
// formulas are the ones the paths run with (they read them from the plan); the workspace mirrors
// each path's allocations: packed weights, per-thread GEMM packing buffers
// (kc x nc + mc x kc values, cpu/gemm_driver.h), padded copies, runs of output positions, partial
// sums of the weight gradient, and the inner plans of the data gradient's forward convolutions.
#include "cpu/conv_plan.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <limits>
#include <map>
#include <numeric>

#include "core/checked.h"
#include "cpu/conv_common.h"
#include "cpu/conv_winograd.h"
#include "cpu/conv_winograd_axes.h"

namespace convtape::cpu {

namespace {

constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();

// Saturating arithmetic on non-negative sizes: a workspace past int64 reads as INT64_MAX.
std::int64_t smul(std::int64_t a, std::int64_t b) {
  return checked::try_mul(a, b).value_or(kMax);
}
std::int64_t sadd(std::int64_t a, std::int64_t b) {
  return checked::try_add(a, b).value_or(kMax);
}

bool any_zero(const Shape& s) {
  return std::any_of(s.begin(), s.end(), [](std::int64_t v) { return v == 0; });
}

// The result, or every product it sums, is empty (the entry points then write the bias or zeros):
// no plan may be sized from such a geometry (a padding of 2^61 with batch 0 once sized a
// 2^62-element plane), nor divide by an empty extent.
bool is_empty(const ConvGeometry& g, ConvPass pass) {
  const bool x_empty = g.batch == 0 || g.channels == 0 || any_zero(g.in);
  const bool y_empty = g.batch == 0 || g.out_channels == 0 || any_zero(g.out);
  switch (pass) {
    case ConvPass::forward:
      return x_empty || y_empty;
    case ConvPass::backward_data:
      return x_empty || y_empty;
    case ConvPass::backward_weight:
      return x_empty || y_empty || g.group_channels() == 0 || any_zero(g.kernel);
  }
  return true;
}

// Values one thread's gemm_blocked(m, n, k) packs at most: a kc x nc panel of B, an mc x kc block
// of A, each cut to the product's extents.
std::int64_t gemm_values(const GemmBlocking& b, std::int64_t m, std::int64_t n, std::int64_t k) {
  if (m <= 0 || n <= 0 || k <= 0) return 0;
  const std::int64_t ncap = std::min(b.nc, checked::div_ceil(n, b.nr) * b.nr);
  const std::int64_t mcap = std::min(b.mc, checked::div_ceil(m, b.mr) * b.mr);
  const std::int64_t kcap = std::min(b.kc, k);
  return sadd(smul(kcap, ncap), smul(mcap, kcap));
}

// Bytes of the runs (cpu/conv_common.h) that `count` consecutive output positions split into:
// one per output line touched, at most count and at most count / out_last + 2.
std::int64_t run_bytes(const ConvGeometry& g, std::int64_t count) {
  const std::int64_t last = g.out.back();
  const std::int64_t runs = std::min(count, count / last + 2);
  return smul(runs, static_cast<std::int64_t>(sizeof(conv_detail::Run)));
}

// Threads that hold scratch while a path's loop of `tasks` runs: the team when it runs in
// parallel (an omp parallel region gives every member its buffers), else the caller.
std::int64_t holders(const ConvPlan& p, const ConvTarget& t, std::int64_t tasks) {
  return p.parallel && tasks > 1 ? std::max(t.team, 1) : 1;
}

// The implicit GEMM's padded grid sizes (cpu/conv_implicit.cpp, ImplicitGrid): per channel
// `plane` values over every stride phase a tap reads, `cols` grid columns per outer plane, `outer`
// planes.
struct GridSize {
  std::int64_t plane = 1, cols = 0, outer = 1;
  std::int64_t overrun = 0;  // zeros after the last plane for the shared-padding pitch
};
GridSize grid_size(const ConvGeometry& g) {
  GridSize z;
  const std::size_t s = g.in.size();
  std::int64_t pplane = 1, nphase = 1, last_ip = 0;
  for (std::size_t d = 0; d < s; ++d) {
    const std::int64_t ip = d + 1 == s ? implicit_pitch(g).pitch
                                       : g.out[d] + g.dilation[d] * (g.kernel[d] - 1) / g.stride[d];
    pplane = smul(pplane, ip);
    // The phases some tap reads, the only ones laid out: dil * r mod stride over r < k cycles
    // with period stride / gcd(dil, stride).
    nphase =
        smul(nphase, std::min(g.kernel[d], g.stride[d] / std::gcd(g.dilation[d], g.stride[d])));
    last_ip = ip;
  }
  z.plane = smul(nphase, pplane);
  z.overrun = implicit_pitch(g).overrun;
  z.cols = s == 1 ? g.out[0] : smul(g.out[s - 2], last_ip);
  for (std::size_t d = 0; d + 2 < s; ++d) z.outer = smul(z.outer, g.out[d]);
  return z;
}

// Winograd F(4x4, 3x3) (cpu/conv_winograd.cpp): 4x4 output tiles, ceil(out / 4) per dim and plane.
// Its scratch is bounded here from that file's blocking (its constants as of b64a1fe: a block of
// T tiles with T the larger of 1 MiB of V and M and 128 tiles, rounded down to 32; row blocks
// stretched up to 4 T tiles while V and M stay within 4 MiB; 32-tile padding plus 16): the
// transformed weights U (36 values per channel pair, output channels padded to the micro-kernel's
// rows, at most 32) and per thread V and M; the weight gradient adds V transposed and one dU per
// thread, and the reduction parts' copies of dw.
// Winograd hands blocks of at least 32 tiles to the team, over (sample, group, block); the forward
// and data gradient also cut a block's output channels into chunks when there are fewer blocks
// than threads (cpu/conv_winograd.cpp, run_pass), each chunk transforming the block's inputs
// again. A batch of one small plane is then one block whose weight transform (36 values per
// channel pair, 4x the weights, every call) outweighs its few tiles: measured at 2 threads,
// batch 1, AVX-512, Winograd with chunks against the implicit GEMM: 256 channels on 14x14 (16
// tiles) 1.04 / 0.73 ms, 512 on 7x7 (4 tiles) 3.6 / 1.1 ms, but 128 channels on 28x28 (49 tiles)
// 0.52 / 0.62 ms and 64 on 28x28 0.145 / 0.19 ms. So: tiles for the team, or for the forward and
// data gradient 32 tiles or more with 64 or more output channels per group to cut.
bool winograd_fills_team(const ConvGeometry& g, ConvPass pass, const ConvTarget& t) {
  if (t.threads <= 1) return true;
  const Shape& out = pass == ConvPass::backward_data ? g.in : g.out;
  const std::int64_t tiles = checked::div_ceil(out[0], 4) * checked::div_ceil(out[1], 4);
  const std::int64_t all = smul(smul(g.batch, g.groups), tiles);
  if (all >= smul(32, t.threads)) return true;
  const std::int64_t co =
      pass == ConvPass::backward_data ? g.group_channels() : g.group_out_channels();
  return pass != ConvPass::backward_weight && all >= 32 && co >= 64;
}

void plan_winograd(ConvPlan& p, const ConvTarget& t) {
  const ConvGeometry& g = p.geometry;
  p.path = ConvPath::winograd;
  p.parallel = true;  // its blocks of tiles go to the team whatever the work
  const Shape& out = p.pass == ConvPass::backward_data ? g.in : g.out;  // the pass's output
  p.tile = 4;
  p.tiles = checked::div_ceil(out[0], 4) * checked::div_ceil(out[1], 4);
  constexpr std::int64_t kXi = 36, kAlign = 32, kFloat = 4;
  constexpr std::int64_t kBlockBytes = 1 << 20, kStretchBytes = 4 << 20, kReuseTiles = 128;
  const bool data = p.pass == ConvPass::backward_data, weight = p.pass == ConvPass::backward_weight;
  const std::int64_t ci = data ? g.group_out_channels() : g.group_channels();
  const std::int64_t co = data ? g.group_channels() : g.group_out_channels();
  const auto round_up = [](std::int64_t a, std::int64_t b) { return checked::div_ceil(a, b) * b; };
  const std::int64_t kp = round_up(co, kAlign), cp = round_up(ci, kAlign);
  const std::int64_t per_tile = smul(kXi, sadd(smul(weight ? 2 : 1, ci), kp));
  const std::int64_t budget = std::max(kBlockBytes / smul(kFloat, per_tile), kReuseTiles);
  const std::int64_t tiles = std::max(kAlign, budget / kAlign * kAlign);
  const std::int64_t stretch =
      std::max(tiles, std::min(smul(4, tiles), kStretchBytes / smul(kFloat, per_tile)));
  const std::int64_t stride = sadd(round_up(stretch, kAlign), 16);
  std::int64_t per_thread = smul(smul(kXi, sadd(ci, kp)), stride);  // V and M
  std::int64_t shared = 0;
  if (weight) {
    per_thread = sadd(per_thread, smul(smul(kXi, cp), stride));               // V transposed
    per_thread = sadd(per_thread, smul(smul(g.groups * kXi, kp), cp));        // dU
    shared = smul(smul(std::max(t.threads - 1, 0), g.out_channels), ci * 9);  // parts' dw
  } else {
    shared = smul(smul(g.groups * kXi, kp), ci);  // U
  }
  const std::int64_t who = std::max(t.team, 1);
  p.workspace_bytes = smul(sadd(shared, smul(who, per_thread)), kFloat);
}

// Winograd by phases for stride-2 3x3 convs (cpu/conv_winograd_axes.cpp): every pass on the AVX2
// path, the forward and data gradient on the AVX-512 path, each where the channels are many
// enough. Measured at 2 threads against the exact paths on the same machine (Emerald Rapids, ms):
//   data gradient              AVX2 path            AVX-512 path
//   16, 64 -> 128, 56x56       9.4-10.7 vs 9.5-9.8  5.5-5.9 vs 5.5-6.0
//   16, 128 -> 256, 28x28      7.4-7.8 vs 8.9-9.5   5.2-5.3 vs 6.0-6.3
//   16, 128 -> 128, 56x56                           9.1-9.7 vs 12.6-13.2
//   16, 256 -> 256, 28x28      14.0-14.6 vs 19.3    8.9 vs 11.7 (padding 1; 0 and 2 alike)
//   forward / weight gradient  AVX2 path                       AVX-512 path
//   16, 64 -> 128, 56x56       7.30 / 8.21 vs 8.27 / 9.36      5.3 / 5.6 vs 4.6 / 5.5
//   16, 128 -> 256, 28x28      7.29 / 7.42 vs 8.22 / 9.53      4.9 / 6.2 vs 4.7 / 5.5
//   16, 128 -> 128, 56x56      13.7 / 16.9 vs 16.5 / 18.6      9.2 / 11.7 vs 9.8 / 11.1
//   16, 256 -> 256, 28x28      12.5 / 15.4 vs 16.5 / 18.8      8.2 / 12.2 vs 9.3 / 10.8
//   32, 256 -> 256, 28x28                                      15.2 / 22.1 vs 18.8 / 21.3
//   32, 192 -> 192, 28x28                                      9.4 / 12.7 vs 10.8 / 12.2
//   16, 256 -> 512, 28x28                                      16.3 / 27.7 vs 19.0 / 21.3
//   8, 384 -> 384, 56x56                                       36 / 52 vs 42 / 46
//   16, 512 -> 512, 28x28                                      39.9 / 66 vs 39.3 / 42
//   64, 512 -> 512, 14x14                                      34.5 / 62 vs 47 / 51
// On AVX2 the multiplications dominate. With twice the FMA width the AVX-512 GEMM paths reach the
// multiply peak with the operands they have, and Winograd's operands move through L3 (about
// 12 GB/s a core on this machine): (2 M + 1)^2 transformed values per M x M tile and channel (4.6
// per output, against one), paid for only by many channels' products (ci co / (ci + co) >= 96 for
// the forward; the data gradient's exact path, phase_implicit, runs further from the peak, so 64
// there, on both paths), and (M + 2)^2 transformed weights per channel pair, read by every block:
// at most 2 MiB of them per tile. On every path, at most 96 MiB of them (the workspace; 512 ->
// 512 takes 85 MiB). The weight gradient adds a transpose of V per class and is slower there.
// The baseline path's transforms are scalar (3x slower than its GEMM). Tiles for the team as for
// winograd.
bool winograd_s2_pays(const ConvGeometry& g, ConvPass pass, const ConvTarget& t) {
  const bool data = pass == ConvPass::backward_data;
  if (data ? !winograd_s2::applies_data(g) : !winograd_s2::applies(g)) return false;
  const std::int64_t ci = g.group_channels(), co = g.group_out_channels();
  const std::int64_t m = data ? winograd_s2::data_tile(g) : winograd_s2::tile(g);
  const std::int64_t tiles = data ? winograd_s2::data_tiles(g) : winograd_s2::tiles(g);
  const std::int64_t u_bytes = smul(smul(4 * (m + 2) * (m + 2), ci), co);  // per group
  if (smul(u_bytes, g.groups) > (std::int64_t{96} << 20)) return false;
  // ci co / (ci + co) at least 40 (applies), 64 for the data gradient, 96 for the AVX-512 forward.
  const std::int64_t need = data ? 64 : t.isa == Isa::avx512 ? 96 : 40;
  if (smul(ci, co) < smul(need, sadd(ci, co))) return false;
  if (t.isa == Isa::avx512) {
    if (pass == ConvPass::backward_weight) return false;
    if (u_bytes > smul(std::int64_t{2} << 20, smul(g.batch, tiles))) return false;
  } else if (t.isa != Isa::avx2) {
    return false;
  }
  if (t.threads <= 1) return true;
  return smul(smul(g.batch, g.groups), tiles) >= smul(32, t.threads);
}

// The scratch of cpu/conv_winograd_axes.cpp's passes, bounded from its blocking (a block of at most
// T tiles, T the larger of 1 MiB of V and M and 128 tiles, rounded up to 16): the transformed
// weights U (`classes` values per channel pair, output channels padded to at most 32) for a
// forward-type pass, with its threads' staging rows of one output channel and packed panels of V
// (24 KiB); per thread V and M (the weight gradient: dy's transform), and for the weight gradient
// V^T of one class (`most` slots of T tiles by input channels padded to 32), one dU and the parts'
// copies of dw. ci, co: the pass's input and output channels per group.
void plan_winograd_axes(ConvPlan& p, const ConvTarget& t, ConvPath path, std::int64_t tile,
                        std::int64_t tiles, std::int64_t points, std::int64_t classes,
                        std::int64_t most, std::int64_t ci, std::int64_t co) {
  const ConvGeometry& g = p.geometry;
  p.path = path;
  p.parallel = true;
  p.tile = tile;
  p.tiles = tiles;
  constexpr std::int64_t kAlign = 32, kFloat = 4, kBlockBytes = 1 << 20, kReuseTiles = 128,
                         kPanelBytes = 24576;
  const bool weight = p.pass == ConvPass::backward_weight;
  const auto round_up = [](std::int64_t a, std::int64_t b) { return checked::div_ceil(a, b) * b; };
  const std::int64_t kp = round_up(co, kAlign), cp = round_up(ci, kAlign);
  const std::int64_t per_tile = smul(points, sadd(smul(weight ? 2 : 1, ci), kp));
  const std::int64_t block =
      round_up(std::max(kBlockBytes / smul(kFloat, per_tile), kReuseTiles), 16);
  std::int64_t per_thread = smul(smul(points, sadd(ci, kp)), block);  // V and M (or dy's)
  std::int64_t shared = 0;
  if (weight) {
    per_thread = sadd(per_thread, smul(smul(most, cp), block));                       // V_q^T
    per_thread = sadd(per_thread, smul(g.groups * classes, sadd(smul(kp, cp), 16)));  // dU
    shared = smul(smul(std::max(t.threads - 1, 0), g.out_channels),
                  smul(ci, g.kernel_numel()));  // parts' dw
  } else {
    per_thread = sadd(per_thread, kPanelBytes / kFloat);                       // V_q's packed panel
    per_thread = sadd(per_thread, smul(classes, sadd(round_up(ci, 16), 16)));  // U's staging
    shared = smul(g.groups * classes, sadd(smul(kp, ci), 16));                 // U
  }
  const std::int64_t who = std::max(t.team, 1);
  p.workspace_bytes = smul(sadd(shared, smul(who, per_thread)), kFloat);
}

void plan_winograd_s2(ConvPlan& p, const ConvTarget& t) {
  const ConvGeometry& g = p.geometry;
  if (p.pass == ConvPass::backward_data) {
    const std::int64_t m = winograd_s2::data_tile(g);
    plan_winograd_axes(p, t, ConvPath::winograd_s2, m, winograd_s2::data_tiles(g),
                       (2 * m + 1) * (2 * m + 1), (m + 2) * (m + 2), m * m, g.group_out_channels(),
                       g.group_channels());
    return;
  }
  const std::int64_t m = winograd_s2::tile(g);
  plan_winograd_axes(p, t, ConvPath::winograd_s2, m, winograd_s2::tiles(g),
                     (2 * m + 1) * (2 * m + 1), (m + 2) * (m + 2), m * m, g.group_channels(),
                     g.group_out_channels());
}

// Winograd for 1-D stride-1 convs with kernel 3 or 5 (cpu/conv_winograd_axes.cpp): F(6, 3) or
// F(4, 5), 8 points per tile, every point its own class; all three passes (the data gradient is
// a forward-type pass from dy with the channels swapped). Measured at 2 threads against the exact
// paths on the same machine (Emerald Rapids, ms; forward / data / weight gradient, Winograd
// against exact):
//   64 -> 64, k 5, 32 x 1024:   AVX-512 2.40 / 2.35 / 2.26 vs 3.32 / 3.32 / 3.56,
//                               AVX2    4.57 / 4.45 / 4.75 vs 6.36 / 6.38 / 6.52
//   128 -> 128, k 3, 32 x 512:  AVX-512 3.19 / 3.06 / 2.71 vs 4.07 / 4.07 / 5.47,
//                               AVX2    5.25 / 5.15 / 5.18 vs 7.46 / 7.46 / 7.43
//   32 -> 32, k 3, 32 x 1024:   AVX-512 0.87 / 0.69 / 0.59 vs 0.70 / 0.69 / 0.72 (hence
//                               winograd_1d::applies' channel rule)
//   256 -> 256, k 3, 4 x 128:   AVX-512 0.61 / 0.66 / 0.45 vs 0.54 / 0.68 / 0.73 (88 tiles: the
//                               weight transform, every call, outweighs them)
// so with more than one thread, 64 tiles per thread or more.
bool winograd_1d_fills_team(const ConvGeometry& g, const ConvTarget& t) {
  if (t.threads <= 1) return true;
  return smul(smul(g.batch, g.groups), winograd_1d::tiles(g)) >= smul(64, t.threads);
}

// A stride-1 scheme's plan (winograd_1d, winograd_kxk): m x m tiles (m along a 1-D conv's line),
// `points` per tile, each its own class; the data gradient tiles dx with the channels swapped.
void plan_winograd_stride1(ConvPlan& p, const ConvTarget& t, ConvPath path, std::int64_t m,
                           std::int64_t points) {
  const ConvGeometry& g = p.geometry;
  const bool data = p.pass == ConvPass::backward_data;
  const std::int64_t ci = data ? g.group_out_channels() : g.group_channels();
  const std::int64_t co = data ? g.group_channels() : g.group_out_channels();
  std::int64_t tiles = 1;
  for (const std::int64_t n : data ? g.in : g.out) tiles = smul(tiles, checked::div_ceil(n, m));
  plan_winograd_axes(p, t, path, m, tiles, points, points, 1, ci, co);
}

void plan_winograd_1d(ConvPlan& p, const ConvTarget& t) {
  plan_winograd_stride1(p, t, ConvPath::winograd_1d, winograd_1d::tile(p.geometry), 8);
}

// Winograd F(4x4, 5x5) and F(2x2, 7x7) for 2-D stride-1 5x5 and 7x7 convs
// (cpu/conv_winograd_axes.cpp): 64 points per tile, every point its own class; all three passes.
bool winograd_kxk_fills_team(const ConvGeometry& g, const ConvTarget& t) {
  if (t.threads <= 1) return true;
  return smul(smul(g.batch, g.groups), winograd_kxk::tiles(g)) >= smul(32, t.threads);
}

void plan_winograd_kxk(ConvPlan& p, const ConvTarget& t) {
  plan_winograd_stride1(p, t, ConvPath::winograd_kxk, winograd_kxk::tile(p.geometry), 64);
}

void plan_direct(ConvPlan& p, const ConvTarget& t, std::size_t elem) {
  const ConvGeometry& g = p.geometry;
  p.path = padded_direct_ok(g) ? ConvPath::direct_padded : ConvPath::direct;
  p.tasks = p.pass == ConvPass::forward         ? g.batch * g.out_channels
            : p.pass == ConvPass::backward_data ? g.batch * g.channels
                                                : g.out_channels;
  const std::int64_t who = holders(p, t, p.tasks);
  if (p.path == ConvPath::direct_padded) {
    // One padded plane per thread, and the plane's row, line and tap offsets.
    std::int64_t rows = 1, lines = 1;
    for (std::size_t d = 0; d + 1 < g.in.size(); ++d) {
      rows = smul(rows, g.in[d]);
      lines = smul(lines, g.out[d]);
    }
    const std::int64_t tables = smul(sadd(sadd(rows, lines), g.kernel_numel()), 8);
    p.workspace_bytes = sadd(smul(who, smul(*padded_plane_size(g), elem)), tables);
  } else {
    p.workspace_bytes = smul(who, run_bytes(g, g.out_numel()));
  }
}

// Forward GEMM paths: implicit, pointwise or im2col, all with the weights packed once.
void plan_forward_gemm(ConvPlan& p, const ConvTarget& t, std::size_t elem) {
  const ConvGeometry& g = p.geometry;
  const GemmBlocking& b = t.gemm;
  const std::int64_t kg = g.group_out_channels(), rows = g.group_channels() * g.kernel_numel();
  const std::int64_t mpad = checked::div_ceil(kg, b.mr) * b.mr;
  const std::int64_t packed_w = smul(smul(g.groups, smul(mpad, rows)), elem);
  // The forward may cut a (sample, group) into blocks of output channels, so it needs no samples
  // for the threads (implicit_ok's last condition, which the weight gradient keeps) where there
  // are two row panels or more to cut.
  if (implicit_ok(g, elem, t.threads) ||
      (implicit_ok(g, elem, 1) && checked::div_ceil(kg, b.mr) > 1)) {
    p.path = ConvPath::implicit_gemm;
    const GridSize z = grid_size(g);
    p.tile = std::min(b.nc, checked::div_ceil(z.cols, b.nr) * b.nr);
    // A strided conv's reduction slice reads every stride phase of each of its channels (a 3x3
    // stride-2 window of 32 B columns touches about 24 cache lines per channel, a 7x7 unit-stride
    // one about 21): slices half as deep keep the window that the row pointers reach in L1
    // (measured: 5-10% on 3x3 stride 2 at 64 and 256 channels; no gain for unit stride).
    const bool strided =
        std::any_of(g.stride.begin(), g.stride.end(), [](std::int64_t v) { return v > 1; });
    const std::int64_t depth = strided ? std::max<std::int64_t>(b.kc / 2, 1) : b.kc;
    const std::int64_t slices = checked::div_ceil(rows, depth);
    p.tile_rows = checked::div_ceil(rows, slices);
    p.tasks = g.batch * g.groups;
    // Fewer (sample, group) pairs than planned threads (batch 1): each is cut into blocks of
    // output channels, one task per thread, each copying its sample itself (two per thread copied
    // twice as often: at 2 threads, batch 1, 256 channels on 14x14 0.73 -> 0.68 ms, a 7x7
    // stride-2 stem on 224x224 0.67 -> 0.63 ms). The blocks are equal, each packed by its task
    // from a row panel of its own, a last panel at most half full on the half-height kernel: 64
    // channels on 6-row panels are 32 + 32 (5 panels and a third of one each), where whole panels
    // made 36 + 28 (6 and 5 panels). Measured at 2 threads, batch 1, 32 -> 64 channels on 14x14,
    // with the packing moved into the tasks: AVX2 path 0.057 -> 0.051 ms, AVX-512 (8-row panels,
    // 32 + 32 either way) 0.040 -> 0.031 ms. Every output value is still one task's, with the
    // same slices: the sums do not depend on the cut.
    if (p.parallel && p.tasks < t.threads) {
      const std::int64_t panels = checked::div_ceil(kg, b.mr);
      const std::int64_t blocks = std::min(panels, checked::div_ceil(t.threads, p.tasks));
      if (blocks > 1) {
        p.block_channels = checked::div_ceil(kg, blocks);
        p.channel_blocks = checked::div_ceil(kg, p.block_channels);
        p.tasks *= p.channel_blocks;
      }
    }
    // The C tile holds a block of channels; a task of one block packs its weights itself.
    const bool blocked = p.channel_blocks > 0;
    const std::int64_t bpad = blocked ? checked::div_ceil(p.block_channels, b.mr) * b.mr : mpad;
    // Positions-major (windows): where the grid's computed columns (whole nr panels of each
    // tile, the columns past each output line included) exceed the output positions by 2% or
    // more and there are 4 or more panels of output channels to reuse each window across. The
    // micro-kernel's rows are then output positions, each through its own window pointer, so
    // nothing past the output is computed, and its columns output channels (the weights packed
    // as aligned B panels). Measured at 2 threads on 3x3 stride-2 convs of 14x14 outputs (224
    // grid columns for 196 positions): 256 channels 12.6 -> 10.6-12.1 ms forward on AVX-512 and
    // 24 -> 21 ms on AVX2, 128 channels even on AVX-512 and 15% faster on AVX2. Since its C tile
    // is transposed into y in register blocks (line::transpose_add), it is as fast as the grid
    // without waste (conv1d, 1024 positions: 3.35 ms either way) and faster with 4% (resnet_s2:
    // 5.16 -> 4.87 ms on AVX-512, 9.97 -> 9.46 ms on AVX2).
    const std::int64_t positions = g.out_numel();
    const std::int64_t computed = smul(
        z.outer, sadd(z.cols / p.tile * p.tile, checked::div_ceil(z.cols % p.tile, b.nr) * b.nr));
    if (p.channel_blocks == 0 && checked::div_ceil(kg, b.nr) >= 4 &&
        smul(computed, 100) >= smul(positions, 102)) {
      p.windows = true;
      const std::int64_t tiles = checked::div_ceil(positions, 256);
      p.tile = checked::div_ceil(checked::div_ceil(positions, tiles), b.mr) * b.mr;
      const std::int64_t wdepth = std::min<std::int64_t>(depth, 256);
      p.tile_rows = checked::div_ceil(rows, checked::div_ceil(rows, wdepth));
      const std::int64_t kgp = checked::div_ceil(kg, b.nr) * b.nr;
      const std::int64_t packed_b = smul(smul(g.groups, smul(kgp, rows)), elem);
      // Its copy: the phase-split grid's, or the input with its padding (cpu/conv_implicit.cpp,
      // WindowLayout), whichever the path takes; the larger bounds both.
      std::int64_t unsplit = 1;
      for (std::size_t d = 0; d < g.in.size(); ++d)
        unsplit = smul(unsplit, std::max(sadd(g.pad_lo[d], g.in[d]),
                                         sadd(smul(g.out[d] - 1, g.stride[d]),
                                              smul(g.dilation[d], g.kernel[d] - 1) + 1)));
      const std::int64_t padded =
          smul(g.group_channels(), std::max(sadd(z.plane, z.overrun), unsplit));
      const std::int64_t per_thread =
          sadd(smul(sadd(padded, smul(kgp, p.tile)), elem), smul(p.tile, sizeof(void*)));
      const std::int64_t tables = smul(sadd(sadd(rows, z.outer), positions), 8);
      p.workspace_bytes = sadd(sadd(packed_b, tables), smul(holders(p, t, p.tasks), per_thread));
      return;
    }
    // Per thread: the padded group with slack for the last tile, the C tile, the row pointers.
    const std::int64_t padded = sadd(smul(g.group_channels(), z.plane), p.tile + b.nr + z.overrun);
    const std::int64_t per_thread =
        sadd(smul(sadd(sadd(padded, smul(bpad, p.tile)), blocked ? smul(bpad, rows) : 0), elem),
             smul(rows, sizeof(void*)));
    const std::int64_t tables = smul(sadd(rows, z.outer), 8);
    p.workspace_bytes =
        sadd(sadd(blocked ? 0 : packed_w, tables), smul(holders(p, t, p.tasks), per_thread));
    return;
  }
  p.path = g.pointwise() ? ConvPath::pointwise_gemm : ConvPath::im2col_gemm;
  const std::int64_t positions = g.out_numel();
  p.tile = tile_width(positions, g.batch * g.groups, b.nc, t.threads);
  p.tiles = checked::div_ceil(positions, p.tile);
  p.tasks = g.batch * g.groups * p.tiles;
  std::int64_t per_thread = smul(gemm_values(b, kg, p.tile, rows), elem);
  if (p.path == ConvPath::im2col_gemm)
    per_thread = sadd(per_thread, run_bytes(g, std::min(b.nc, p.tile)));
  p.workspace_bytes = sadd(packed_w, smul(holders(p, t, p.tasks), per_thread));
}

// col2im's GEMM tile: rows of W^T by output positions (cpu/conv_im2col.cpp).
constexpr std::int64_t kCol2imRows = 256, kCol2imPositions = 512;

void plan_backward_data(ConvPlan& p, const ConvTarget& t, std::size_t elem) {
  const ConvGeometry& g = p.geometry;
  const std::int64_t cg = g.group_channels(), kg = g.group_out_channels(), rn = g.kernel_numel();
  const std::optional<ConvGeometry> transposed = transposed_as_forward(g);
  // With one output per input channel, the unit-stride data gradient is a depthwise forward
  // convolution with the flipped kernel (transposed_forward); other direct cases run the adjoint
  // loops.
  if (use_direct(g) && (kg != 1 || !transposed)) return plan_direct(p, t, elem);
  // The phases' convs have dx's channels per group as their output channels, the micro-kernel's
  // rows: with fewer than two row panels of them, col2im's GEMM (rows = channels x taps) runs
  // fuller. Measured at 2 threads on 3x3 stride-2 convs to 32 channels, data gradient phase split /
  // col2im: 3 channels (batch 1, 7x7 stem) 8.6 / 1.6 ms, 4 channels 0.42 / 0.28, 8 channels 0.61 /
  // 0.53, 16 channels 1.05 / 1.02, 32 channels 1.45 / 2.04.
  if (strided_split_ok(g) && cg >= 2 * t.gemm.mr) {
    p.path = ConvPath::phase_split;
    const std::size_t s = g.in.size();
    p.phases = 1;
    for (std::size_t d = 0; d < s; ++d) p.phases *= live_phases(g, d);  // bounded by the cover
    // The phases' outputs z and flipped sub-kernels share one buffer each, grown to the largest.
    std::int64_t z = 0, taps = 0, inner = 0;
    // The phases may run different paths (the 1x1 phase of a 3x3 stride-2 conv runs the pointwise
    // GEMM, the others the implicit GEMM), each growing its own per-thread buffers, which are
    // kept: the largest per kind of path, summed over the kinds.
    std::map<int, std::int64_t> inner_by_kind;
    // Whether every phase's conv runs a GEMM path (not Winograd: the 3x3 phases of a 6x6 stride-2
    // kernel keep it), and the widest phase grid in phase_implicit's layout.
    bool gemm_phases = p.phases <= kFusedPhases;
    const PhaseLayout lay = phase_layout(g);
    std::int64_t cols = 0, grid = 0, kept = 0;  // widest phase grid; all phases' grid columns
                                                // and values, per (sample, group)
    for (std::int64_t ph = 0; ph < p.phases; ++ph) {
      const PhaseConv pc = live_phase(g, ph);
      if (pc.empty) continue;
      z = std::max(z, pc.g.out_numel());
      taps = std::max(taps, pc.g.kernel_numel());
      const ConvPlan sub = plan_conv(pc.g, ConvPass::forward, t);
      const int kind = 2 * static_cast<int>(sub.path) + (sub.windows ? 1 : 0);
      inner_by_kind[kind] = std::max(inner_by_kind[kind], sub.workspace_bytes);
      gemm_phases = gemm_phases &&
                    (sub.path == ConvPath::implicit_gemm || sub.path == ConvPath::pointwise_gemm ||
                     sub.path == ConvPath::im2col_gemm);
      const std::int64_t pcols = s == 1 ? pc.g.out[0] : smul(pc.g.out[s - 2], lay.ext[s - 1]);
      cols = std::max(cols, pcols);
      std::int64_t outer = 1;
      for (std::size_t d = 0; d + 2 < s; ++d) outer = smul(outer, pc.g.out[d]);
      grid = sadd(grid, smul(outer, checked::div_ceil(pcols, t.gemm.nr) * t.gemm.nr));
      kept = sadd(kept, pc.g.out_numel());
    }
    // phase_implicit: one padded copy of dy per (sample, group) for every phase, each phase's GEMM
    // columns written straight into dx, instead of a padded copy per phase and the phase's values
    // scattered from a buffer z (which made a 4x4 stride-2 transposed conv 44% copies).
    const std::int64_t pairs = g.batch * g.groups;
    if (gemm_phases && smul(smul(kg, lay.plane), elem) <= kImplicitBytes &&
        (pairs >= t.threads || !p.parallel)) {
      p.path = ConvPath::phase_implicit;
      p.tasks = pairs;
      const GemmBlocking& b = t.gemm;
      p.tile = std::min(b.nc, checked::div_ceil(cols, b.nr) * b.nr);
      p.tile_rows = b.kc;
      std::int64_t mpad = checked::div_ceil(cg, b.mr) * b.mr;
      // Positions-major, as the forward (plan_forward_gemm): where the phases' grid columns
      // exceed their values by 2% or more and there are 4 or more panels of dx channels to reuse
      // each window across, the micro-kernel's rows are the phases' values, each through its own
      // window pointer. Measured at 2 threads, 3x3 stride 2, 256 channels on a 14x14 dy (224
      // grid columns per phase for 196 values): AVX2 path 19.9 -> 18.7 ms; AVX-512 11.45 ->
      // 11.5 ms (its kernel runs the grid's extra columns at no loss here, but the transposes and
      // strided writes cost as much).
      const std::int64_t cgp = checked::div_ceil(cg, b.nr) * b.nr;
      if (checked::div_ceil(cg, b.nr) >= 4 && smul(grid, 100) >= smul(kept, 102)) {
        p.windows = true;
        const std::int64_t tiles = checked::div_ceil(z, 256);
        p.tile = checked::div_ceil(checked::div_ceil(z, tiles), b.mr) * b.mr;
        p.tile_rows = std::min<std::int64_t>(b.kc, 256);
        mpad = cgp;
      }
      // Packed weights (every tap in exactly one phase) and the flipped kernel of one phase; per
      // thread the padded copy with its slack, the C tile (windows: and its transpose), the row
      // pointers and segments (windows: the window pointers; positions and runs are shared).
      const std::int64_t packed = smul(smul(smul(g.groups, mpad), smul(kg, rn)), elem);
      const std::int64_t flipped = smul(smul(smul(g.channels, kg), taps), elem);
      const std::int64_t padded = sadd(smul(kg, lay.plane), lay.ext[s - 1] + b.nr);
      const std::int64_t ctile = p.windows ? smul(p.tile, sadd(cgp, cg)) : smul(mpad, p.tile);
      const std::int64_t per_thread =
          sadd(smul(sadd(padded, ctile), elem), smul(sadd(smul(kg, taps), p.tile), 24));
      const std::int64_t shared = p.windows ? smul(sadd(kept, smul(2, g.in_numel())), 24) : 0;
      p.workspace_bytes =
          sadd(sadd(sadd(packed, flipped), shared), smul(holders(p, t, p.tasks), per_thread));
      return;
    }
    for (const auto& [kind, bytes] : inner_by_kind) inner = sadd(inner, bytes);
    p.workspace_bytes = sadd(smul(smul(g.batch * g.channels, z), elem),
                             sadd(smul(smul(g.channels * kg, taps), elem), inner));
    return;
  }
  if (transposed) {
    p.path = ConvPath::transposed_forward;
    p.inner.push_back(plan_conv(*transposed, ConvPass::forward, t));
    // The flipped, channel-swapped kernel.
    p.workspace_bytes =
        sadd(smul(smul(g.out_channels * cg, rn), elem), p.inner.front().workspace_bytes);
    return;
  }
  const std::int64_t positions = g.out_numel();
  if (g.pointwise()) {
    p.path = ConvPath::pointwise_gemm;  // dx[n, group] = W^T dy[n, group], straight into dx
    p.tasks = g.batch * g.groups;
    p.workspace_bytes =
        smul(holders(p, t, p.tasks), smul(gemm_values(t.gemm, cg, positions, kg), elem));
    return;
  }
  // col2im. Tasks own disjoint channel blocks of dx, so their scatters never collide.
  p.path = ConvPath::im2col_gemm;
  std::int64_t blocks = 1;
  while (g.batch * g.groups * blocks < 2 * t.threads && blocks < cg) ++blocks;
  p.block_channels = checked::div_ceil(cg, blocks);
  p.channel_blocks = checked::div_ceil(cg, p.block_channels);
  p.tasks = g.batch * g.groups * p.channel_blocks;
  p.tile = kCol2imPositions;
  p.tile_rows = kCol2imRows;
  const std::int64_t rows = cg * rn;
  const std::int64_t gemm =
      gemm_values(t.gemm, std::min(kCol2imRows, rows), std::min(kCol2imPositions, positions), kg);
  const std::int64_t per_thread = sadd(smul(sadd(gemm, kCol2imRows * kCol2imPositions), elem),
                                       run_bytes(g, std::min(kCol2imPositions, positions)));
  p.workspace_bytes = smul(holders(p, t, p.tasks), per_thread);
}

void plan_backward_weight(ConvPlan& p, const ConvTarget& t, std::size_t elem) {
  const ConvGeometry& g = p.geometry;
  if (use_direct(g)) return plan_direct(p, t, elem);
  const GemmBlocking& b = t.gemm;
  const std::int64_t cg = g.group_channels(), kg = g.group_out_channels();
  const std::int64_t rows = cg * g.kernel_numel(), positions = g.out_numel();
  // Reductions over samples and positions are cut into `parts` contiguous parts, each summed in
  // order into its own copy and the parts added in order: the cut depends on threads only.
  const auto parts_for = [&](std::int64_t tasks) {
    return p.parallel ? static_cast<int>(std::clamp<std::int64_t>(tasks, 1, t.threads)) : 1;
  };
  const auto part_holders = [&] {
    return p.parts > 1 ? std::min<std::int64_t>(p.parts, std::max(t.team, 1)) : 1;
  };
  if (implicit_ok(g, elem, t.threads)) {
    p.path = ConvPath::implicit_gemm;
    const GridSize z = grid_size(g);
    p.tasks = g.batch * g.groups;
    p.parts = parts_for(p.tasks);
    p.tile = std::min(b.kc, z.cols);  // grid columns per packed slice of dy~
    const std::int64_t grid = smul(z.outer, z.cols);
    const std::int64_t kgp = checked::div_ceil(kg, b.nr) * b.nr;
    // The parts' dw^T, the grid's output positions, the window offsets; per thread the spread
    // dy~, the padded group and one packed slice.
    const std::int64_t shared = sadd(smul(smul(p.parts, g.groups * rows * kg), elem),
                                     smul(sadd(sadd(grid, rows), z.outer), 8));
    const std::int64_t per_thread = smul(
        sadd(sadd(smul(kg, grid), sadd(smul(cg, z.plane), z.overrun)), smul(p.tile, kgp)), elem);
    p.workspace_bytes = sadd(shared, smul(part_holders(), per_thread));
    return;
  }
  p.path = g.pointwise() ? ConvPath::pointwise_gemm : ConvPath::im2col_gemm;
  p.tile = tile_width(positions, g.batch, 4096, t.threads);
  // Tiles shorter than one packed slice (few samples of a small plane, cut for the threads): every
  // tile's short reduction re-reads and re-writes dw (256 channels of 3x3 at 14x14, batch 1: 4
  // tiles of 49 positions, 1.13 ms). The threads take blocks of dw's columns instead, each summing
  // every sample and position (0.93 ms): no partial copies, and the same sums for any team. (A
  // batch-1 224x224 stem keeps its 3136-position tiles: 3 column blocks of 147 rows ran slower.)
  if (p.parallel && p.tile < b.kc && rows >= 2 * b.nr) {
    const std::int64_t blocks = std::min<std::int64_t>(2 * t.threads, rows / b.nr);
    p.block_channels = checked::div_ceil(checked::div_ceil(rows, blocks), b.nr) * b.nr;
    p.channel_blocks = checked::div_ceil(rows, p.block_channels);
    p.tasks = p.channel_blocks;
    p.tile = positions;
    p.tiles = 1;
    p.parts = 1;
    std::int64_t per_thread = smul(gemm_values(b, kg, p.block_channels, positions), elem);
    if (p.path == ConvPath::im2col_gemm) {
      const std::int64_t kc = std::min(b.kc, positions);
      per_thread = sadd(per_thread, sadd(run_bytes(g, kc), smul(kc, elem)));
    }
    p.workspace_bytes = smul(holders(p, t, p.tasks), per_thread);
    return;
  }
  p.tiles = checked::div_ceil(positions, p.tile);
  p.tasks = g.batch * p.tiles;
  p.parts = parts_for(p.tasks);
  const std::int64_t wsize = g.out_channels * rows;  // dw's size: fits
  std::int64_t per_thread = smul(gemm_values(b, kg, rows, p.tile), elem);
  if (p.path == ConvPath::im2col_gemm) {
    const std::int64_t kc = std::min(b.kc, p.tile);  // positions per packed panel
    per_thread = sadd(per_thread, sadd(run_bytes(g, kc), smul(kc, elem)));
  }
  p.workspace_bytes = sadd(smul(smul(p.parts - 1, wsize), elem), smul(part_holders(), per_thread));
}

std::string bytes_string(std::int64_t bytes) {
  if (bytes == kMax) return "unbounded";
  if (bytes < 1024) return fmt::format("{} B", bytes);
  const char* units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = static_cast<double>(bytes) / 1024;
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  return fmt::format("{:.1f} {}", v, units[u]);
}

std::string dims(const Shape& s) {
  return fmt::format("{}", fmt::join(s, "x"));
}

}  // namespace

std::int64_t pass_work(const ConvGeometry& g) {
  // batch * out_channels * out_numel is the output's element count, group_channels *
  // kernel_numel the weight's per output channel; their product saturates (it only picks the
  // thread count).
  return checked::try_mul(g.batch * g.out_channels * g.out_numel(),
                          g.group_channels() * g.kernel_numel())
      .value_or(kMax);
}

bool use_direct(const ConvGeometry& g) {
  return g.group_channels() == 1 && g.group_out_channels() <= 4;
}

std::optional<std::int64_t> padded_plane_size(const ConvGeometry& g) {
  std::optional<std::int64_t> size = 1;
  for (std::size_t d = 0; d < g.in.size() && size; ++d) {
    // Each extent is at most the padded extent the front end checked.
    const std::int64_t reach = (g.out[d] - 1) * g.stride[d] + g.dilation[d] * (g.kernel[d] - 1) + 1;
    size = checked::try_mul(*size, std::max(g.in[d] + g.pad_lo[d], reach));
  }
  return size;
}

bool padded_direct_ok(const ConvGeometry& g) {
  for (std::size_t d = 0; d < g.in.size(); ++d)
    if (g.input_dilation[d] != 1) return false;
  const auto size = padded_plane_size(g);
  // An input and an output plane's sizes fit (the tensors exist).
  return size && *size / 4 <= g.in_numel() + g.out_numel() + 16384;
}

bool implicit_ok(const ConvGeometry& g, std::size_t elem, int threads) {
  if (use_direct(g) || g.pointwise() || g.group_channels() == 0) return false;
  // The buffer's size in checked arithmetic: a huge stride makes as many phases, and an unchecked
  // product once wrapped to a small value here and sent ImplicitGrid looping over 2^62 phases.
  std::optional<std::int64_t> padded = g.group_channels() * static_cast<std::int64_t>(elem);
  for (std::size_t d = 0; d < g.in.size() && padded; ++d) {
    if (g.input_dilation[d] != 1) return false;
    // Every stride phase of the dim, each as long as the output plus the kernel's reach in it;
    // out + reach / stride <= padded extent / stride + 2 fits.
    const std::int64_t phase = g.out[d] + g.dilation[d] * (g.kernel[d] - 1) / g.stride[d];
    const auto extent = checked::try_mul(g.stride[d], phase);
    padded = extent ? checked::try_mul(*padded, *extent) : std::nullopt;
  }
  return padded && *padded <= kImplicitBytes &&
         (g.batch * g.groups >= threads || pass_work(g) < kParallelWork);
}

ImplicitPitch implicit_pitch(const ConvGeometry& g) {
  const std::size_t d = g.in.size() - 1;
  // The implicit path runs only where this sum fits (implicit_ok checks the padded size).
  const std::int64_t ip = g.out[d] + g.dilation[d] * (g.kernel[d] - 1) / g.stride[d];
  const std::int64_t lo = g.pad_lo[d], in = g.in[d];
  if (g.in.size() < 2 || g.stride[d] != 1 || lo < 0 || lo + in > ip) return {ip, 0};
  // Output columns j < out of a line must not reach the next line's columns either.
  const std::int64_t pitch = std::max({lo + in, ip - lo, g.out[d]});
  return {pitch, ip - pitch};
}

std::int64_t tile_width(std::int64_t positions, std::int64_t per_sample_tasks,
                        std::int64_t preferred, int threads) {
  std::int64_t tiles = std::max<std::int64_t>(checked::div_ceil(positions, preferred), 1);
  // An empty batch has no tasks to spread (and nothing to divide by). per_sample_tasks * tiles is
  // at most batch * groups * positions, below the output's element count.
  if (per_sample_tasks > 0 && per_sample_tasks * tiles < 2 * threads)
    tiles = std::min(positions, checked::div_ceil(2 * threads, per_sample_tasks));
  return std::max<std::int64_t>(checked::div_ceil(positions, std::max<std::int64_t>(tiles, 1)), 1);
}

std::optional<ConvGeometry> transposed_as_forward(const ConvGeometry& g) {
  ConvGeometry t;
  t.batch = g.batch;
  t.channels = g.out_channels;
  t.out_channels = g.channels;
  t.groups = g.groups;
  t.in = g.out;
  t.out = g.in;
  t.kernel = g.kernel;
  t.dilation = g.dilation;
  t.stride = g.stride;
  t.input_dilation = g.input_dilation;
  t.exact = g.exact;
  for (std::size_t d = 0; d < g.in.size(); ++d) {
    const std::int64_t lo = g.dilation[d] * (g.kernel[d] - 1) - g.pad_lo[d];
    if (g.stride[d] != 1 || g.input_dilation[d] != 1 || lo < 0) return std::nullopt;
    t.pad_lo.push_back(lo);
  }
  if (g.channels == 0 || g.out_channels == 0) return std::nullopt;
  return t;
}

std::int64_t live_phases(const ConvGeometry& g, std::size_t d) {
  return std::min(g.stride[d], g.pad_lo[d] + g.in[d]);  // pad_lo + in <= padded extent: fits
}

bool strided_split_ok(const ConvGeometry& g) {
  bool strided = false;
  std::optional<std::int64_t> covered = 1;
  for (std::size_t d = 0; d < g.in.size(); ++d) {
    if (g.input_dilation[d] != 1) return false;
    strided = strided || g.stride[d] > 1;
    if (covered) covered = checked::try_mul(*covered, g.pad_lo[d] + g.in[d]);
  }
  return strided && g.channels > 0 && g.out_channels > 0 && g.batch > 0 && covered &&
         *covered / 4 <= g.in_numel() + 16384;
}

std::optional<PhaseDim> phase_dim(const ConvGeometry& g, std::size_t d, std::int64_t a) {
  const std::int64_t st = g.stride[d], dil = g.dilation[d], k = g.kernel[d];
  std::int64_t r0 = 0;
  while (r0 < k && (dil * r0) % st != a) ++r0;
  const std::int64_t last = g.pad_lo[d] + g.in[d] - 1 - a;  // largest padded u - a in dx
  if (r0 == k || last < 0) return std::nullopt;
  const std::int64_t gcd = std::gcd(dil, st), rstep = st / gcd;
  const std::int64_t taps = (k - 1 - r0) / rstep + 1, e0 = (dil * r0 - a) / st;
  // Phase values m < skip land in dx's low padding (i = st m + a - pad_lo < 0): the phase's
  // conv starts at m = skip instead, where its low padding allows (6% fewer multiply-adds for a
  // 3x3 stride-2 'same' conv).
  const std::int64_t lo = e0 + (taps - 1) * (dil / gcd), off = a - g.pad_lo[d];
  std::int64_t skip = off >= 0 ? 0 : checked::div_ceil(-off, st);
  if (skip > lo || skip > last / st) skip = 0;
  return PhaseDim{r0, rstep, skip, taps, dil / gcd, lo - skip, last / st + 1 - skip};
}

PhaseConv phase_conv(const ConvGeometry& g, const std::vector<std::int64_t>& a) {
  PhaseConv p;
  p.a = a;
  p.g.batch = g.batch;
  p.g.channels = g.out_channels;
  p.g.out_channels = g.channels;
  p.g.groups = g.groups;
  p.g.in = g.out;
  p.g.exact = g.exact;
  for (std::size_t d = 0; d < g.in.size(); ++d) {
    const std::optional<PhaseDim> pd = phase_dim(g, d, a[d]);
    if (!pd) {
      p.empty = true;
      return p;
    }
    p.first.push_back(pd->first);
    p.step.push_back(pd->step);
    p.skip.push_back(pd->skip);
    p.g.kernel.push_back(pd->taps);
    p.g.dilation.push_back(pd->dilation);
    p.g.pad_lo.push_back(pd->pad_lo);
    p.g.out.push_back(pd->out);
    p.g.stride.push_back(1);
    p.g.input_dilation.push_back(1);
  }
  return p;
}

PhaseConv live_phase(const ConvGeometry& g, std::int64_t index) {
  std::vector<std::int64_t> a(g.in.size());
  for (std::size_t d = a.size(); d-- > 0;) {
    a[d] = index % live_phases(g, d);
    index /= live_phases(g, d);
  }
  return phase_conv(g, a);
}

PhaseLayout phase_layout(const ConvGeometry& g) {
  PhaseLayout l;
  const std::size_t s = g.in.size();
  l.lo.assign(s, 0);
  l.ext.assign(s, 0);
  for (std::size_t d = 0; d < s; ++d) {
    std::int64_t hi = 0;
    for (std::int64_t a = 0; a < live_phases(g, d); ++a) {
      const std::optional<PhaseDim> pd = phase_dim(g, d, a);
      if (!pd) continue;
      l.lo[d] = std::max(l.lo[d], pd->pad_lo);
      // The last value's window ends at m' + dilation (taps - 1) - pad_lo (dy coordinates).
      hi = std::max(hi, pd->out - 1 + pd->dilation * (pd->taps - 1) - pd->pad_lo - (g.out[d] - 1));
    }
    l.ext[d] = sadd(sadd(l.lo[d], g.out[d]), hi);
    l.plane = d == 0 ? l.ext[d] : smul(l.plane, l.ext[d]);
  }
  return l;
}

bool dilation_split_ok(const ConvGeometry& g) {
  bool dilated = false;
  for (std::size_t d = 0; d < g.in.size(); ++d) {
    if (g.stride[d] != 1 || g.input_dilation[d] != 1 || g.dilation[d] < 1) return false;
    if (g.in[d] < g.dilation[d] || g.out[d] < g.dilation[d]) return false;
    dilated = dilated || g.dilation[d] > 1;
  }
  return dilated && g.batch > 0 && g.channels > 0 && g.out_channels > 0;
}

std::int64_t dilation_phases(const ConvGeometry& g) {
  std::int64_t n = 1;
  for (const std::int64_t d : g.dilation) n = smul(n, d);
  return n;
}

DilationPhase dilation_phase(const ConvGeometry& g, std::int64_t index) {
  DilationPhase p;
  p.g = g;
  const std::size_t s = g.in.size();
  p.a.resize(s);
  p.b.resize(s);
  p.d = g.dilation;
  for (std::size_t d = s; d-- > 0;) {
    const std::int64_t dil = g.dilation[d];
    const std::int64_t a = index % dil;
    index /= dil;
    // a - pad_lo = dil * q + b with 0 <= b < dil (floor division for a negative a - pad_lo).
    const std::int64_t diff = a - g.pad_lo[d];
    const std::int64_t q = diff >= 0 ? diff / dil : -checked::div_ceil(-diff, dil);
    p.a[d] = a;
    p.b[d] = diff - dil * q;
    p.g.in[d] = checked::div_ceil(g.in[d] - p.b[d], dil);
    p.g.out[d] = checked::div_ceil(g.out[d] - a, dil);
    p.g.pad_lo[d] = -q;
    p.g.dilation[d] = 1;
  }
  return p;
}

namespace {

// dilation_split when every phase's undilated conv plans Winograd (the GEMM paths gain nothing
// from the split: they read a dilated window as cheaply as a dense one). Scratch: one phase's
// gathered operands and result, the weight gradient's per-phase dw, and the largest inner plan's.
bool plan_dilation_split(ConvPlan& p, const ConvTarget& t, std::size_t elem) {
  const ConvGeometry& g = p.geometry;
  const std::int64_t phases = dilation_phases(g);
  std::int64_t in = 0, out = 0, inner = 0;
  for (std::int64_t ph = 0; ph < phases; ++ph) {
    const DilationPhase dp = dilation_phase(g, ph);
    ConvPlan sub = plan_conv(dp.g, p.pass, t);
    if (sub.path != ConvPath::winograd) {
      p.inner.clear();
      return false;
    }
    in = std::max(in, smul(g.batch * g.channels, dp.g.in_numel()));
    out = std::max(out, smul(g.batch * g.out_channels, dp.g.out_numel()));
    inner = std::max(inner, sub.workspace_bytes);
    p.inner.push_back(std::move(sub));
  }
  p.path = ConvPath::dilation_split;
  p.phases = phases;
  p.parallel = true;
  const std::int64_t dw = p.pass == ConvPass::backward_weight
                              ? smul(g.out_channels, g.group_channels() * g.kernel_numel())
                              : 0;
  p.workspace_bytes = sadd(smul(sadd(sadd(in, out), dw), elem), inner);
  return true;
}

}  // namespace

std::optional<ConvGeometry> depth_unfold_2d(const ConvGeometry& g) {
  const std::size_t s = g.in.size();
  if (s < 3 || g.batch <= 0 || g.channels <= 0 || g.out_channels <= 0) return std::nullopt;
  for (std::size_t d = 0; d < s; ++d)
    if (g.input_dilation[d] != 1) return std::nullopt;
  ConvGeometry u;
  std::optional<std::int64_t> batch = g.batch, channels = g.channels;
  for (std::size_t d = 0; d + 2 < s; ++d) {
    if (batch) batch = checked::try_mul(*batch, g.out[d]);
    if (channels) channels = checked::try_mul(*channels, g.kernel[d]);
  }
  if (!batch || !channels) return std::nullopt;
  u.batch = *batch;
  u.channels = *channels;
  u.out_channels = g.out_channels;
  u.groups = g.groups;
  u.exact = g.exact;
  for (std::size_t d = s - 2; d < s; ++d) {
    u.in.push_back(g.in[d]);
    u.out.push_back(g.out[d]);
    u.kernel.push_back(g.kernel[d]);
    u.stride.push_back(g.stride[d]);
    u.dilation.push_back(g.dilation[d]);
    u.input_dilation.push_back(1);
    u.pad_lo.push_back(g.pad_lo[d]);
  }
  return u;
}

std::optional<ConvGeometry> kernel_split_3x3(const ConvGeometry& g) {
  if (g.in.size() != 2 || g.batch <= 0 || g.channels <= 0 || g.out_channels <= 0)
    return std::nullopt;
  bool larger = false;
  std::int64_t blocks = 1;
  for (std::size_t d = 0; d < 2; ++d) {
    if (g.stride[d] != 1 || g.dilation[d] != 1 || g.input_dilation[d] != 1) return std::nullopt;
    if (g.kernel[d] < 3 || g.kernel[d] > 9 || g.out[d] < 1) return std::nullopt;
    larger = larger || g.kernel[d] > 3;
    blocks *= checked::div_ceil(g.kernel[d], 3);
  }
  if (!larger) return std::nullopt;
  const std::optional<std::int64_t> channels = checked::try_mul(g.channels, blocks);
  if (!channels) return std::nullopt;
  ConvGeometry u = g;
  u.channels = *channels;
  u.kernel = {3, 3};
  u.pad_lo = {0, 0};
  u.in = {g.out[0] + 2, g.out[1] + 2};
  return u;
}

namespace {

// kernel_split when the 3x3 conv plans Winograd, while the split input stays within 12 times the
// operands (9 blocks of a 7x7 kernel over planes 2 wider than the output). Scratch: the split
// input, the split kernel (and its gradient), and the inner plan's.
bool plan_kernel_split(ConvPlan& p, const ConvTarget& t, std::size_t elem) {
  const ConvGeometry& g = p.geometry;
  const std::optional<ConvGeometry> u = kernel_split_3x3(g);
  if (!u) return false;
  // The weight gradient of 9 blocks (7x7) ran slower split than on the GEMM paths (64 channels at
  // 28x28: 15.3 against 13.1 ms at 2 threads), 4 blocks (5x5) as fast or faster.
  if (p.pass == ConvPass::backward_weight && u->channels > 4 * g.channels) return false;
  const std::int64_t split = smul(smul(g.batch, u->channels), u->in_numel());
  const std::int64_t operands =
      sadd(smul(g.batch * g.channels, g.in_numel()), smul(g.batch * g.out_channels, g.out_numel()));
  if (split > smul(12, operands)) return false;
  ConvPlan sub = plan_conv(*u, p.pass, t);
  if (sub.path != ConvPath::winograd) return false;
  p.path = ConvPath::kernel_split;
  p.parallel = true;
  const std::int64_t wsplit = smul(g.out_channels, smul(u->group_channels(), 9));
  p.workspace_bytes = sadd(smul(sadd(split, smul(2, wsplit)), elem), sub.workspace_bytes);
  p.inner.push_back(std::move(sub));
  return true;
}

// depth_unfold when the 2-D conv plans Winograd (the GEMM paths already read the leading dims'
// windows in place). Scratch: the unfolded operand and the 2-D conv's other operand or result
// (dy' or y'), and the inner plan's.
bool plan_depth_unfold(ConvPlan& p, const ConvTarget& t, std::size_t elem) {
  const ConvGeometry& g = p.geometry;
  const std::optional<ConvGeometry> u = depth_unfold_2d(g);
  if (!u) return false;
  ConvPlan sub = plan_conv(*u, p.pass, t);
  if (sub.path != ConvPath::winograd) return false;
  p.path = ConvPath::depth_unfold;
  p.parallel = true;
  const std::int64_t unfolded = smul(smul(u->batch, u->channels), u->in_numel());
  const std::int64_t other = smul(smul(u->batch, u->out_channels), u->out_numel());
  // The unfolded operand holds each input plane once per leading tap that reads it: bounded to a
  // few times the operands, so that a long or strided leading kernel does not multiply memory.
  const std::int64_t operands =
      sadd(smul(g.batch * g.channels, g.in_numel()), smul(g.batch * g.out_channels, g.out_numel()));
  if (unfolded > smul(4, operands)) return false;
  p.workspace_bytes = sadd(smul(sadd(unfolded, other), elem), sub.workspace_bytes);
  p.inner.push_back(std::move(sub));
  return true;
}

}  // namespace

ConvPlan plan_conv(const ConvGeometry& g, ConvPass pass, const ConvTarget& target) {
  ConvPlan p;
  p.pass = pass;
  p.geometry = g;
  p.target = target;
  p.exact = target.exact || g.exact;
  if (is_empty(g, pass)) return p;  // ConvPath::empty
  const std::size_t elem = dtype_size(target.dtype);
  p.parallel = pass_work(g) >= kParallelWork;
  // Fewer multiplications than any exact path, for every pass of the shapes it applies to (its own
  // measured cost model); float32 only, and never under the exact switch.
  if (target.dtype == DType::Float32 && !p.exact && winograd::applies(g) &&
      winograd_fills_team(g, pass, target)) {
    plan_winograd(p, target);
    return p;
  }
  if (target.dtype == DType::Float32 && !p.exact && winograd_1d::applies(g) &&
      winograd_1d_fills_team(g, target)) {
    plan_winograd_1d(p, target);
    return p;
  }
  if (target.dtype == DType::Float32 && !p.exact && winograd_kxk::applies(g) &&
      winograd_kxk_fills_team(g, target)) {
    plan_winograd_kxk(p, target);
    return p;
  }
  if (target.dtype == DType::Float32 && !p.exact && winograd_s2_pays(g, pass, target)) {
    plan_winograd_s2(p, target);
    return p;
  }
  if (target.dtype == DType::Float32 && !p.exact && dilation_split_ok(g) &&
      plan_dilation_split(p, target, elem))
    return p;
  if (target.dtype == DType::Float32 && !p.exact && g.in.size() >= 3 &&
      plan_depth_unfold(p, target, elem))
    return p;
  if (target.dtype == DType::Float32 && !p.exact && g.in.size() == 2 &&
      plan_kernel_split(p, target, elem))
    return p;
  switch (pass) {
    case ConvPass::forward:
      if (use_direct(g)) {
        plan_direct(p, target, elem);
      } else {
        plan_forward_gemm(p, target, elem);
      }
      break;
    case ConvPass::backward_data:
      plan_backward_data(p, target, elem);
      break;
    case ConvPass::backward_weight:
      plan_backward_weight(p, target, elem);
      break;
  }
  return p;
}

const char* pass_name(ConvPass pass) {
  switch (pass) {
    case ConvPass::forward:
      return "forward";
    case ConvPass::backward_data:
      return "backward_data";
    case ConvPass::backward_weight:
      return "backward_weight";
  }
  return "forward";
}

const char* path_name(ConvPath path) {
  switch (path) {
    case ConvPath::empty:
      return "empty";
    case ConvPath::winograd:
      return "winograd";
    case ConvPath::winograd_s2:
      return "winograd_s2";
    case ConvPath::winograd_1d:
      return "winograd_1d";
    case ConvPath::winograd_kxk:
      return "winograd_kxk";
    case ConvPath::direct_padded:
      return "direct_padded";
    case ConvPath::direct:
      return "direct";
    case ConvPath::implicit_gemm:
      return "implicit_gemm";
    case ConvPath::pointwise_gemm:
      return "pointwise_gemm";
    case ConvPath::im2col_gemm:
      return "im2col_gemm";
    case ConvPath::transposed_forward:
      return "transposed_forward";
    case ConvPath::phase_split:
      return "phase_split";
    case ConvPath::phase_implicit:
      return "phase_implicit";
    case ConvPath::dilation_split:
      return "dilation_split";
    case ConvPath::depth_unfold:
      return "depth_unfold";
    case ConvPath::kernel_split:
      return "kernel_split";
  }
  return "empty";
}

std::string to_string(const ConvPlan& plan) {
  std::string s =
      fmt::format("{} {} {} threads={}", path_name(plan.path), dtype_name(plan.target.dtype),
                  isa_name(plan.target.isa), plan.target.threads);
  if (plan.exact) s += " exact";
  if (plan.parallel) s += " parallel";
  const auto field = [&s](const char* name, std::int64_t v) {
    if (v != 0) s += fmt::format(" {}={}", name, v);
  };
  field("tasks", plan.tasks);
  field("tile", plan.tile);
  field("tiles", plan.tiles);
  field("tile_rows", plan.tile_rows);
  field("channel_blocks", plan.channel_blocks);
  field("block_channels", plan.block_channels);
  if (plan.parts > 1) field("parts", plan.parts);
  field("phases", plan.phases);
  if (plan.windows) s += " windows";
  s += " workspace=" + bytes_string(plan.workspace_bytes);
  for (const ConvPlan& in : plan.inner)
    s += fmt::format(" [{} {}: {}]", pass_name(in.pass), to_string(in.geometry), to_string(in));
  return s;
}

std::string to_string(const ConvGeometry& g) {
  std::string s = fmt::format(
      "N={} C={} K={} groups={} in={} out={} kernel={} stride={} "
      "dilation={} input_dilation={} pad_lo={}",
      g.batch, g.channels, g.out_channels, g.groups, dims(g.in), dims(g.out), dims(g.kernel),
      dims(g.stride), dims(g.dilation), dims(g.input_dilation), dims(g.pad_lo));
  if (g.exact) s += " exact";
  return s;
}

}  // namespace convtape::cpu
