// The CPU convolution plan: one pure function that, from a resolved geometry, the pass (forward,
// data gradient, weight gradient) and the machine side (element type, ISA path and its GEMM
// blocking, the threads the sums are cut for, the exact switch), picks the path that runs the pass,
// its tiles and thread split, and the scratch memory it will use. Nothing here touches data, reads
// the environment or allocates a tensor, so the choice is unit-tested without running a
// convolution (tests/cpu/conv_plan_test.cpp) and printed per call under CONVTAPE_CONV_VERBOSE=1
// (cpu/conv.cpp). The paths, each in its own file:
//   empty               an operand or the result has no elements: the result is the bias or zeros
//   winograd            float32 F(4x4, 3x3) for stride-1 3x3 2-D convs (cpu/conv_winograd.h),
//                       never under the exact switch (ConvOptions::exact, CONVTAPE_CONV_EXACT=1)
//   winograd_s2         float32 stride-2 3x3 2-D convs by phases, F(5, 2) or F(7, 2) on the even
//                       phase (cpu/conv_winograd_axes.h), every pass (the data gradient by
//                       output phases, one padding parity on both axes) on the AVX2 path with
//                       enough channels and tiles, the forward and data gradient on the AVX-512
//                       path with many channels; never under the exact switch
//   winograd_1d         float32 stride-1 1-D convs with kernel 3 or 5, F(6, 3) or F(4, 5)
//                       (cpu/conv_winograd_axes.h), every pass; never under the exact switch
//   winograd_kxk        float32 stride-1 5x5 and 7x7 2-D convs, F(4x4, 5x5) and F(2x2, 7x7)
//                       (cpu/conv_winograd_axes.h), every pass; never under the exact switch
//   direct_padded       C / groups == 1 with at most 4 outputs per group (depthwise): per plane on
//                       a zero-padded copy, bounds-free strided loops (cpu/conv_depthwise.cpp)
//   direct              the same convs when the padded plane would be much larger than the data
//                       (huge padding, stride or dilation) or the input is dilated: loops over
//                       the taps that land inside the input, work = output x taps
//   implicit_gemm       unit- or small-stride convs without input dilation whose padded, phase-
//                       split sample fits 6 MiB: the micro-kernel reads the padded copy through
//                       one row pointer per column-matrix row (cpu/conv_implicit.cpp); with fewer
//                       samples than threads the forward splits output channels instead; where
//                       the grid would compute many columns past the output, the forward runs
//                       positions-major (`windows`)
//   pointwise_gemm      1x1, unit stride, no padding: the input is the GEMM operand itself
//   im2col_gemm         everything else: a tile of output positions unfolded straight into the
//                       packed GEMM panel, col2im for the data gradient (cpu/conv_im2col.cpp)
//   transposed_forward  data gradient of a unit-stride conv: dx = a unit-stride forward conv of dy
//                       with the flipped, channel-swapped kernel; `inner` is that conv's plan
//   phase_split         data gradient of a strided conv with two micro-kernel row panels or
//                       more of input channels per group: one unit-stride forward conv of dy per
//                       stride phase of dx (cpu/conv_adjoint.cpp), each planned when it runs
//   phase_implicit      the same data gradient where every phase's conv would run a GEMM path and
//                       there are (sample, group) pairs for the threads: per pair one padded copy
//                       of dy that every phase's implicit GEMM reads, each phase's columns written
//                       straight into dx every stride-th value (cpu/conv_phase.cpp); `phases`
//                       counts the live phases
//   dilation_split      a stride-1 conv with a dilated kernel, float32: one undilated conv per
//                       dilation phase (cpu/conv_dilated.cpp), taken when every phase plans
//                       Winograd, so that dilated 3x3 layers get its fewer multiplications;
//                       `inner` holds the phases' plans in phase order
//   depth_unfold        a float32 conv of rank 3 or more whose last two dims are 3x3, stride 1:
//                       the leading dims' taps unfolded into channels, making it one 2-D conv
//                       over (sample, leading output position) that Winograd runs
//                       (cpu/conv_unfold.cpp); taken only when that conv plans Winograd; `inner`
//                       holds its plan
//   kernel_split        a float32 2-D stride-1 conv with kernels of 4 to 9 (5x5, 7x7): the kernel
//                       cut into 3x3 blocks, each reading a shifted copy of the input, making it
//                       one 3x3 conv over blocks x channels that Winograd runs
//                       (cpu/conv_split.cpp); taken only when that conv plans Winograd; `inner`
//                       holds its plan
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/kernel_args.h"
#include "cpu/isa.h"

namespace convtape::cpu {

enum class ConvPass { forward, backward_data, backward_weight };

enum class ConvPath {
  empty,
  winograd,
  winograd_s2,
  winograd_1d,
  winograd_kxk,
  direct_padded,
  direct,
  implicit_gemm,
  pointwise_gemm,
  im2col_gemm,
  transposed_forward,
  phase_split,
  phase_implicit,
  dilation_split,
  depth_unfold,
  kernel_split,
};

// The GEMM micro-kernel's blocking (cpu/gemm_kernel.h) that the GEMM paths size their tiles with.
struct GemmBlocking {
  int mr = 1, nr = 1;   // register tile
  std::int64_t kc = 1;  // depth of a packed panel
  std::int64_t mc = 1;  // rows of A packed at once
  std::int64_t nc = 1;  // columns of B packed at once
};

// Everything plan_conv reads beyond the geometry and the pass. The caller (cpu/conv.cpp) fills it
// from the process: the element type of the operands, the ISA path and the blocking of the GEMM
// kernel it will hand to the path, plan_threads() (the cut that fixes the order of the sums, see
// cpu/parallel.h), the team size, and CONVTAPE_CONV_EXACT.
struct ConvTarget {
  DType dtype = DType::Float32;
  Isa isa = Isa::portable;
  GemmBlocking gemm;
  int threads = 1;     // plan_threads(): tiles and reduction parts are cut for this many threads
  int team = 1;        // omp_get_max_threads(): the threads that may hold scratch at once
  bool exact = false;  // the exact switch from the environment; ConvGeometry::exact is or'ed in
};

struct ConvPlan {
  ConvPass pass = ConvPass::forward;
  ConvPath path = ConvPath::empty;
  ConvGeometry geometry;  // the convolution the path runs (for `inner`, dy -> dx as a forward)
  ConvTarget target;      // what it was planned for (phase_split plans each phase with it)
  bool exact = false;     // target.exact or geometry.exact: Winograd was not considered
  bool parallel = false;  // the team runs it: the pass's multiply-adds reach kParallelWork
                          // (winograd: always)
  // The thread split, where the path has one (0 where it does not):
  std::int64_t tasks = 0;           // iterations of the path's parallel loop
  std::int64_t tile = 0;            // output positions per GEMM tile (implicit_gemm: grid columns;
                                    // winograd: the output tile's edge, 4;
                                    // winograd_s2: 5 or 7; winograd_1d: 6 or 4;
                                    // winograd_kxk: 4 or 2)
  std::int64_t tiles = 0;           // tiles per task row: (sample, group) for the forward and
                                    // col2im, sample for the weight gradient, plane for winograd
  std::int64_t tile_rows = 0;       // column-matrix rows per GEMM slice (implicit_gemm, col2im)
  std::int64_t channel_blocks = 0;  // col2im: blocks of input channels per (sample, group), each
  std::int64_t block_channels = 0;  // of this many channels, so that scatters never collide;
                                    // implicit_gemm forward with fewer (sample, group) pairs than
                                    // threads: blocks of output channels (equal, the last
                                    // one shorter where they do not divide the channels)
  int parts = 1;                    // weight gradient: contiguous parts of the reduction, each
                                    // summed into its own copy and added in part order
  bool windows = false;             // implicit_gemm forward, phase_implicit: positions-major
                                    // (the micro-kernel's rows are output positions, each
                                    // through its window pointer; tile = positions per tile)
                                    // instead of grid columns
  std::int64_t phases = 0;          // phase_split, phase_implicit: live stride phases (those
                                    // holding dx values);
                                    // dilation_split: dilation phases
  // Scratch bytes the path allocates beyond its operands and result, over every thread that may
  // run it (packing buffers, padded copies, partial sums, inner plans). Buffers are kept per
  // thread between calls (cpu/gemm_driver.h), so this is what one call needs, not what it adds.
  // Saturates at INT64_MAX.
  std::int64_t workspace_bytes = 0;
  std::vector<ConvPlan> inner;  // transposed_forward: the plan of the forward conv it runs;
                                // dilation_split: the plan of each phase's conv; depth_unfold:
                                // the plan of the 2-D conv
};

ConvPlan plan_conv(const ConvGeometry& g, ConvPass pass, const ConvTarget& target);

// "forward", "backward_data", "backward_weight"; "im2col_gemm", ...
const char* pass_name(ConvPass pass);
const char* path_name(ConvPath path);
// One line: path, type, ISA, threads, the split fields that are set, workspace, and the inner plan
// in brackets, e.g. "im2col_gemm float32 avx512 threads=2 parallel tasks=32 tile=392 tiles=2
// workspace=1.2 MiB".
std::string to_string(const ConvPlan& plan);
// "N=16 C=64 K=64 groups=1 in=56x56 out=56x56 kernel=3x3 stride=1x1 dilation=1x1
// input_dilation=1x1 pad_lo=1x1" (plus " exact" when the geometry asks for the exact path).
std::string to_string(const ConvGeometry& g);

// --- The decisions, exposed for the paths and the tests -----------------------------------------

// Multiply-adds of one pass, saturating at INT64_MAX; below kParallelWork a pass runs on the
// calling thread, since waking the team costs more than the work (tiny convs in tests and small
// models).
std::int64_t pass_work(const ConvGeometry& g);
inline constexpr std::int64_t kParallelWork = 1 << 18;

// Every output channel reads one input channel and a group has at most 4 outputs (depthwise): a
// GEMM with one or two rows would waste the micro-kernel, so the direct kernels run.
bool use_direct(const ConvGeometry& g);

// The padded plane of the direct_padded path: per dim the larger of the input with its low padding
// and the reach of the last output's window, (out - 1) * stride + dilation * (kernel - 1) + 1;
// nullopt when the product overflows.
std::optional<std::int64_t> padded_plane_size(const ConvGeometry& g);

// No input dilation, and a padded plane at most four times the input and output planes plus 64 Ki
// values: filling and loading the plane then costs no more than the real work. A huge padding,
// stride or dilation (whose windows mostly read zeros) takes the direct kernels, whose work is the
// output times the kernel's taps.
bool padded_direct_ok(const ConvGeometry& g);

// The implicit GEMM's bound on one padded, phase-split sample group.
inline constexpr std::int64_t kImplicitBytes = std::int64_t{6} << 20;

// Not direct, not pointwise, no input dilation, the padded sample group within kImplicitBytes, and
// (since the path decides the sums' order, `threads` is plan_threads()) samples enough for the
// threads or work too small to share.
bool implicit_ok(const ConvGeometry& g, std::size_t elem, int threads);

// The implicit GEMM's grid pitch along the last dim (cpu/conv_implicit.cpp): per stride phase the
// output extent plus the kernel's reach, ip = out + dilation * (k - 1) / stride, except that with
// unit stride along a last dim of a rank >= 2 conv whose padding is non-negative on both sides,
// neighbouring lines share their padding: a read past the end of line l lands in the left padding
// of line l + 1, so the pitch max(pad_lo + in, ip - pad_lo, out) suffices (a 7x7 'same' conv on 28
// columns: 31 instead of 34, a tenth fewer wasted grid columns). Returns {pitch, ip - pitch}: the
// second is how far the last line's reads run past its plane, the zeros the copy appends.
struct ImplicitPitch {
  std::int64_t pitch = 0, overrun = 0;
};
ImplicitPitch implicit_pitch(const ConvGeometry& g);

// Output-position tiles per (sample, group): `preferred` wide, narrower while there are fewer
// than 2 * threads tasks (tile edges decide which sums a GEMM tile does, see cpu/parallel.h).
std::int64_t tile_width(std::int64_t positions, std::int64_t per_sample_tasks,
                        std::int64_t preferred, int threads);

// For a unit-stride convolution without input dilation whose low padding is at most
// dilation * (k - 1), the geometry of dx as a forward convolution of dy: channels swapped,
// low padding dilation * (k - 1) - pad_lo, output = the original input.
std::optional<ConvGeometry> transposed_as_forward(const ConvGeometry& g);

// Strided, without input dilation, with channels on both sides (the depthwise kernels and empty
// convolutions take their own paths), and with a low padding that the phases' outputs, which
// together cover the padded range [0, pad_lo + in) per dim, do not make much larger than dx
// (else the phases would mostly compute values that land in the padding: col2im runs instead).
bool strided_split_ok(const ConvGeometry& g);

// Phase residues a of dim d that hold some dx value: u = pad_lo + i < pad_lo + in, so a < that
// (and a < stride). Iterating only these keeps a huge stride from visiting 2^62 empty phases.
std::int64_t live_phases(const ConvGeometry& g, std::size_t d);

// The data gradient of a strided convolution (no input dilation), one stride phase at a time. In
// padded coordinates u = stride * m + a, dx~[u] = sum over taps r with dil * r = a (mod stride) of
// w[r] dy[m - e_r], e_r = (dil * r - a) / stride: for each phase a, a unit-stride convolution of
// dy with the phase's taps (flipped, channels swapped; they are evenly spaced, so the sub-kernel
// is an ordinary dilated one). Each dx value belongs to exactly one phase; a phase without taps
// leaves zeros.
// The phase's conv leaves out the values m < skip that land in dx's low padding (where its own
// low padding allows): its output z[m'] is the phase value m = m' + skip.
struct PhaseConv {
  ConvGeometry g;               // dy -> this phase's values z[m'], m' in [0, out), m = m' + skip
  std::vector<std::int64_t> a;  // the phase: its residue per dim
  std::vector<std::int64_t> first, step, skip;  // per dim: first tap r0, tap spacing in r, skip
  bool empty = false;
  // The dx index along dim d of the phase's value m': stride (m' + skip) + a - pad_lo (outside
  // [0, in) where the value lands in dx's padding).
  std::int64_t dx_index(const ConvGeometry& x, std::size_t d, std::int64_t m) const {
    return x.stride[d] * (m + skip[d]) + a[d] - x.pad_lo[d];
  }
};
PhaseConv phase_conv(const ConvGeometry& g, const std::vector<std::int64_t>& a);
// Live phase `index` (of the product of live_phases over the dims, the last dim's residue varying
// fastest) and its conv.
PhaseConv live_phase(const ConvGeometry& g, std::int64_t index);
// One dim of a phase's conv, as phase_conv builds it: first tap r0, tap spacing in r, skip, and the
// sub-kernel's taps, dilation, low padding and output extent; nullopt for a phase without taps or
// without dx values in that dim.
struct PhaseDim {
  std::int64_t first, step, skip, taps, dilation, pad_lo, out;
};
std::optional<PhaseDim> phase_dim(const ConvGeometry& g, std::size_t d, std::int64_t a);

// phase_implicit's one padded copy of dy that every live phase's conv reads: per dim the low
// padding lo (the largest phase low padding) and the extent ext = lo + out + the largest reach past
// dy's end, so that phase a's window for its value m' starts at m' - pad_lo_a + lo; plane is the
// product of ext (saturating).
struct PhaseLayout {
  std::vector<std::int64_t> lo, ext;
  std::int64_t plane = 1;
};
PhaseLayout phase_layout(const ConvGeometry& g);
// phase_implicit runs at most this many live phases (strides up to 8 in 2-D); more take
// phase_split, whose phases are planned one by one.
inline constexpr std::int64_t kFusedPhases = 64;

// A stride-1 convolution with a dilated kernel (dilation d > 1 in some dims) is prod(d)
// undilated ones, one per dilation phase: output j = d m + a reads input
// i = j + d r - pad_lo = d (m + r + q) + b with a - pad_lo = d q + b, 0 <= b < d, so output phase a
// (the outputs j = a mod d, ceil((out - a) / d) of them) is a unit-stride, undilated convolution of
// input phase b (ceil((in - b) / d) values) with the same kernel and low padding -q >= 0; a -> b
// is one-to-one, so the phases' data gradients cover dx exactly once.
// dilation_split_ok: stride 1, no input dilation, some dilation > 1, and every dim's input and
// output at least its dilation (every phase then has values on both sides).
struct DilationPhase {
  ConvGeometry g;                     // x phase b -> y phase a, dilation 1
  std::vector<std::int64_t> a, b, d;  // per dim: output phase, input phase, dilation
};
bool dilation_split_ok(const ConvGeometry& g);
std::int64_t dilation_phases(const ConvGeometry& g);  // prod(dilation)
// Phase `index` of dilation_phases(g), the last dim's phase varying fastest.
DilationPhase dilation_phase(const ConvGeometry& g, std::int64_t index);

// A conv of rank s >= 3 as a 2-D one over its last two dims: with the leading dims' output
// positions o (prod out[0..s-3] of them) moved into the batch and their kernel taps t (prod
// kernel[0..s-3]) into the channels, X'[(n, o), (c, t)] = x[n, c, o * stride + t * dilation -
// pad_lo] (zero outside) along the leading dims, the whole plane of the last two; the weights
// [K, C/groups, *kernel] are already [K, (C/groups) taps, kh, kw], group by group; and
// y[n, k, o] = conv2d(X', w)[(n, o), k]. depth_unfold_2d: that 2-D geometry, or nullopt when the
// conv is not one (rank below 3, input dilation anywhere).
std::optional<ConvGeometry> depth_unfold_2d(const ConvGeometry& g);

// A 2-D stride-1 conv with kernels kh x kw of 3 to 9 (not both 3) as a 3x3 one: with m = ceil(k /
// 3) blocks per dim and the kernel zero-extended to 3m, w'[k, (c, a0, a1), b0, b1] =
// w[k, c, 3 a0 + b0, 3 a1 + b1], and X'[n, (c, a0, a1), j0, j1] = x[n, c, j0 + 3 a0 - pad_lo0,
// j1 + 3 a1 - pad_lo1] (zero outside x) on planes of (out + 2) per dim, y = conv3x3(X', w') with
// no padding: sum over blocks a and taps b of w[3a + b] x[o + 3a + b - pad_lo], the conv itself.
// kernel_split_3x3: that 3x3 geometry (channels C m0 m1), or nullopt when the conv is not one.
std::optional<ConvGeometry> kernel_split_3x3(const ConvGeometry& g);

}  // namespace convtape::cpu
