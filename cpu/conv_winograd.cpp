// Winograd F(4x4, 3x3) convolution on CPU, float32, NCHW (cpu/conv_winograd.h). Per 4x4 output
// tile and channel pair, with d the 6x6 input tile and g the 3x3 kernel:
//   y = A^T [ (G g G^T) . (B^T d B) ] A
//   B^T = [4  0 -5  0 1 0]   G = [ 1/4     0     0 ]   A^T = [1 1  1 1  1 0]
//         [0 -4 -4  1 1 0]       [-1/6 -1/6  -1/6 ]         [0 1 -1 2 -2 0]
//         [0  4 -4 -1 1 0]       [-1/6  1/6  -1/6 ]         [0 1  1 4  4 0]
//         [0 -2 -1  2 1 0]       [1/24  1/12  1/6 ]         [0 1 -1 8 -8 1]
//         [0  2 -1 -2 1 0]       [1/24 -1/12  1/6 ]
//         [0  4  0 -5 0 1]       [ 0     0     1  ]
// (interpolation points 0, 1, -1, 2, -2 and infinity). Summed over input channels, the 36
// elementwise products become 36 independent GEMMs per block of tiles:
//   M_xi[K_g x T] = U_xi[K_g x C_g] V_xi[C_g x T],  U = G g G^T, V = B^T d B, xi in 6x6.
// Every pass is one such convolution: forward (x, w), the data gradient (dy, w flipped in space
// and transposed in channels, padding 2 - pad on each side) and, for the weight gradient, the
// adjoint dU_xi[K_g x C_g] = sum_t (A dy_t A^T)_xi V_xi,t and dw = G^T dU G.
//
// Layout and blocking: a pass's 4x4 tiles are ordered (sample, tile row, tile column); a task is
// one group and one block of T tiles, whose V [36][C_g][T] and M [36][K_g][T] (tiles contiguous,
// the 36 planes a multiple of 4 KiB plus a cache line apart) stay in L2, or, once the 36 U_xi
// outgrow L2, 128 tiles so that U is streamed from L3 less often. The transforms handle 16 tiles
// per step, one per SIMD lane: "row runs" read 16 neighbouring tiles of one tile row as 6 input
// rows of 66 floats split into 6 phases by permutes (wide images); "lane-mapped runs" gather 16
// consecutive tiles across tile rows and samples (outputs under 45 columns, whose rows would leave
// most lanes idle). Each channel's rows are prefetched two channels ahead. The GEMMs use a
// register-blocked micro-kernel whose A is read in place (U rows, or dy's transform for the
// weight gradient) and whose B rows are vectors of tiles (or, for the weight gradient, of input
// channels after a register transpose of V). Workspace: V, M (and V^T, dU) in each thread's
// reusable GEMM buffers (cpu/gemm_driver.h), U in the calling thread's, bounded by
// 36 (C_g + K_g) T + 36 C_g K_g floats whatever the image size.
//
// Determinism: every output of forward and backward_data is one GEMM sum over channels in index
// order, whatever the blocking and thread count. backward_weight sums over tiles: the blocks
// (sized from plan_threads(), never the team) are cut into plan_threads() parts
// (cpu/parallel.h), each summed in order into its own dU, turned into its own dw, and the parts'
// dw are added in part order.
//
// ISA paths: AVX-512 transforms are written with intrinsics (phase permutes, masked edge loads,
// masked gathers and scatters); AVX2 and baseline compile the same lane loops under
// function-level target attributes (AVX2 gathering with masked 8-lane gathers); the
// micro-kernels are intrinsics per path (8x32, 6x16, 4x16). The path is read once per call from
// cpu::isa(). Paths differ in rounding only: FMA contraction in the transforms; the channel sums
// run in the same order on every path.
#include "cpu/conv_winograd.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "core/checked.h"
#include "cpu/gemm_driver.h"
#include "cpu/isa.h"
#include "cpu/parallel.h"
#include "cpu/winograd_common.h"

namespace convtape::cpu::winograd {

namespace {

using int64 = std::int64_t;

constexpr int kLanes = 16;             // tiles per transform step
constexpr int kLine = 4 * kLanes + 8;  // one input row of 16 tiles (66 floats used), padded
constexpr int kXi = 36;                // transformed tile elements
constexpr int64 kBlockAlign = 32;      // tile blocks are padded to a multiple of every NR
// V and M of a block together stay within this (half of a 2 MiB L2, leaving room for U).
constexpr int64 kBlockBytes = 1 << 20;
constexpr int64 kGemmBytes = 1 << 20;     // U_xi, V_xi and M_xi of one of the 36 GEMMs
constexpr int64 kReuseTiles = 128;        // tiles per block when U is streamed from L3
constexpr int64 kStretchBytes = 4 << 20;  // V and M of a block grown to fill its padding
constexpr int64 kPanelBytes = 24576;      // one column panel of V_xi, kept in L1

// ---------------------------------------------------------------------------------------------
// Transforms, written once as loops over the 16 lanes and compiled per ISA by the wrappers below.

// 1-D input transform r = B^T z of 6 values (B^T as above):
//   B^T = [4  0 -5  0 1 0]
//         [0 -4 -4  1 1 0]
//         [0  4 -4 -1 1 0]
//         [0 -2 -1  2 1 0]
//         [0  2 -1 -2 1 0]
//         [0  4  0 -5 0 1]
#define CT_WINO_IN_1D(z0, z1, z2, z3, z4, z5, r0, r1, r2, r3, r4, r5) \
  do {                                                                \
    r0 = 4.0f * z0 - 5.0f * z2 + z4;                                  \
    r1 = (z3 + z4) - 4.0f * (z1 + z2);                                \
    r2 = (z4 - z3) + 4.0f * (z1 - z2);                                \
    r3 = (z4 - z2) + 2.0f * (z3 - z1);                                \
    r4 = (z4 - z2) - 2.0f * (z3 - z1);                                \
    r5 = 4.0f * z1 - 5.0f * z3 + z5;                                  \
  } while (0)

// Column j of a transformed tile, o[i] the 16 lanes of element (i, j), to dst[(6 i + j) * xs + l].
// The lanes are computed into o and moved with fixed-size copies: stored through six pointers
// that might overlap, the lane loops were compiled to scalar code.
[[gnu::always_inline]] inline void store_column(const float (&o)[6][kLanes], float* dst, int j,
                                                int64 xs) {
  for (int i = 0; i < 6; ++i) std::memcpy(dst + (6 * i + j) * xs, o[i], sizeof(o[i]));
}

// Geometry of one plane read by a transform: the tile of lane 0 starts at (y0, x0), lane l at
// (y0, x0 + 4 l); lanes >= n are not wanted.
struct TileRow {
  int64 y0, x0;
  int n;
};

// Copies row y of a plane [h, w], columns x0 .. x0 + count - 1, into line (zeros outside).
[[gnu::always_inline]] inline void load_line(const float* plane, int64 h, int64 w, int64 y,
                                             int64 x0, int count, float* line) {
  std::fill_n(line, kLine, 0.0f);
  if (y < 0 || y >= h) return;
  const int64 lo = std::max<int64>(0, -x0), hi = std::min<int64>(count, w - x0);
  if (lo < hi) std::memcpy(line + lo, plane + y * w + x0 + lo, sizeof(float) * (hi - lo));
}

// The input transform's second step: V columns from t[i][j] = row i of the tile after B,
// written as store_column does.
[[gnu::always_inline]] inline void input_columns(const float (&t)[6][6][kLanes], float* dst,
                                                 int64 xs) {
  for (int j = 0; j < 6; ++j) {
    alignas(64) float o[6][kLanes];
    for (int l = 0; l < kLanes; ++l) {
      CT_WINO_IN_1D(t[0][j][l], t[1][j][l], t[2][j][l], t[3][j][l], t[4][j][l], t[5][j][l], o[0][l],
                    o[1][l], o[2][l], o[3][l], o[4][l], o[5][l]);
    }
    store_column(o, dst, j, xs);
  }
}

// V = B^T d B for 16 tiles of one input plane; element xi of lane l goes to dst[xi * xs + l].
[[gnu::always_inline]] inline void input_transform_impl(const float* plane, int64 h, int64 w,
                                                        TileRow r, float* dst, int64 xs) {
  alignas(64) float line[kLine];
  alignas(64) float t[6][6][kLanes];  // t[i][j] = row i of the tile after B (columns)
  for (int i = 0; i < 6; ++i) {
    load_line(plane, h, w, r.y0 + i, r.x0, 4 * r.n + 2, line);
    for (int l = 0; l < kLanes; ++l) {
      const float* z = line + 4 * l;
      CT_WINO_IN_1D(z[0], z[1], z[2], z[3], z[4], z[5], t[i][0][l], t[i][1][l], t[i][2][l],
                    t[i][3][l], t[i][4][l], t[i][5][l]);
    }
  }
  input_columns(t, dst, xs);
}

// y = A^T m A (+ bias) for 16 tiles: element xi of lane l read at src[xi * xs + l], output tile
// rows written into a plane [h, w] at (y0, x0 + 4 l), clipped to the plane.
[[gnu::always_inline]] inline void output_transform_impl(const float* src, int64 xs, float* plane,
                                                         int64 h, int64 w, TileRow r, float bias) {
  alignas(64) float t[4][6][kLanes];  // t[i][j]: A^T applied along the rows of the 6x6 tile
  for (int j = 0; j < 6; ++j) {
    const float* m0 = src + (0 * 6 + j) * xs;
    const float* m1 = src + (1 * 6 + j) * xs;
    const float* m2 = src + (2 * 6 + j) * xs;
    const float* m3 = src + (3 * 6 + j) * xs;
    const float* m4 = src + (4 * 6 + j) * xs;
    const float* m5 = src + (5 * 6 + j) * xs;
    for (int l = 0; l < kLanes; ++l) {
      const float s12 = m1[l] + m2[l], d12 = m1[l] - m2[l];
      const float s34 = m3[l] + m4[l], d34 = m3[l] - m4[l];
      t[0][j][l] = m0[l] + s12 + s34;
      t[1][j][l] = d12 + 2.0f * d34;
      t[2][j][l] = s12 + 4.0f * s34;
      t[3][j][l] = d12 + 8.0f * d34 + m5[l];
    }
  }
  alignas(64) float line[kLine];
  const int64 lo = std::max<int64>(0, -r.x0), hi = std::min<int64>(4 * r.n, w - r.x0);
  for (int i = 0; i < 4; ++i) {
    for (int l = 0; l < kLanes; ++l) {
      const float s12 = t[i][1][l] + t[i][2][l], d12 = t[i][1][l] - t[i][2][l];
      const float s34 = t[i][3][l] + t[i][4][l], d34 = t[i][3][l] - t[i][4][l];
      line[4 * l + 0] = t[i][0][l] + s12 + s34 + bias;
      line[4 * l + 1] = d12 + 2.0f * d34 + bias;
      line[4 * l + 2] = s12 + 4.0f * s34 + bias;
      line[4 * l + 3] = d12 + 8.0f * d34 + t[i][5][l] + bias;
    }
    const int64 y = r.y0 + i;
    if (y < 0 || y >= h || lo >= hi) continue;
    std::memcpy(plane + y * w + r.x0 + lo, line + lo, sizeof(float) * (hi - lo));
  }
}

// The output-gradient transform's second step: Z columns from t[i][j] = row i of A applied along
// the tile's rows, written as store_column does.
[[gnu::always_inline]] inline void grad_columns(const float (&t)[4][6][kLanes], float* dst,
                                                int64 xs) {
  for (int j = 0; j < 6; ++j) {
    alignas(64) float o[6][kLanes];
    for (int l = 0; l < kLanes; ++l) {
      const float a = t[0][j][l], b = t[1][j][l], c = t[2][j][l], e = t[3][j][l];
      const float s02 = a + c, s13 = b + e;
      const float q02 = a + 4.0f * c, q13 = 2.0f * b + 8.0f * e;
      o[0][l] = a;
      o[1][l] = s02 + s13;
      o[2][l] = s02 - s13;
      o[3][l] = q02 + q13;
      o[4][l] = q02 - q13;
      o[5][l] = e;
    }
    store_column(o, dst, j, xs);
  }
}

// Z = A dy A^T for 16 tiles of 4x4 output gradients (the weight gradient's transform of dy):
// z = (d0, d0 + d1 + d2 + d3, d0 - d1 + d2 - d3, d0 + 2 d1 + 4 d2 + 8 d3, d0 - 2 d1 + 4 d2 - 8 d3,
// d3) along each axis.
[[gnu::always_inline]] inline void grad_transform_impl(const float* plane, int64 h, int64 w,
                                                       TileRow r, float* dst, int64 xs) {
  alignas(64) float line[kLine];
  alignas(64) float t[4][6][kLanes];
  for (int i = 0; i < 4; ++i) {
    load_line(plane, h, w, r.y0 + i, r.x0, 4 * r.n, line);
    for (int l = 0; l < kLanes; ++l) {
      const float* d = line + 4 * l;
      const float s02 = d[0] + d[2], s13 = d[1] + d[3];
      const float q02 = d[0] + 4.0f * d[2], q13 = 2.0f * d[1] + 8.0f * d[3];
      t[i][0][l] = d[0];
      t[i][1][l] = s02 + s13;
      t[i][2][l] = s02 - s13;
      t[i][3][l] = q02 + q13;
      t[i][4][l] = q02 - q13;
      t[i][5][l] = d[3];
    }
  }
  grad_columns(t, dst, xs);
}

// dst[t * ldd + c] = src[c * lds + t] for c < rows, t < cols (the weight gradient's V^T).
[[gnu::always_inline]] inline void transpose_impl(const float* src, int64 lds, int64 rows,
                                                  int64 cols, float* dst, int64 ldd) {
  constexpr int64 kB = 16;
  for (int64 c0 = 0; c0 < rows; c0 += kB)
    for (int64 t0 = 0; t0 < cols; t0 += kB) {
      const int64 cn = std::min(kB, rows - c0), tn = std::min(kB, cols - t0);
      for (int64 t = 0; t < tn; ++t)
        for (int64 c = 0; c < cn; ++c) dst[(t0 + t) * ldd + c0 + c] = src[(c0 + c) * lds + t0 + t];
    }
}

// Kernel transforms over 16 channel pairs at once.
constexpr double kG[6][3] = {{1.0 / 4, 0, 0},
                             {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                             {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                             {1.0 / 24, 1.0 / 12, 1.0 / 6},
                             {1.0 / 24, -1.0 / 12, 1.0 / 6},
                             {0, 0, 1}};

// u[xi * us + l] = (G g_l G^T)[xi] for the n <= 16 kernels g_l = g + l * gs (3x3 row-major,
// flipped in both axes when flip is set), in float32 (its rounding is far below the transforms').
[[gnu::always_inline]] inline void weight_transform_impl(const float* g, int64 gs, int n, bool flip,
                                                         float* u, int64 us) {
  alignas(64) float gk[9][kLanes];
  for (int e = 0; e < 9; ++e)
    for (int l = 0; l < kLanes; ++l) gk[e][l] = l < n ? g[l * gs + (flip ? 8 - e : e)] : 0.0f;
  alignas(64) float t[6][3][kLanes];
  for (int i = 0; i < 6; ++i)
    for (int c = 0; c < 3; ++c)
      for (int l = 0; l < kLanes; ++l)
        t[i][c][l] = float(kG[i][0]) * gk[c][l] + float(kG[i][1]) * gk[3 + c][l] +
                     float(kG[i][2]) * gk[6 + c][l];
  alignas(64) float out[kXi][kLanes];
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 6; ++j)
      for (int l = 0; l < kLanes; ++l)
        out[i * 6 + j][l] = t[i][0][l] * float(kG[j][0]) + t[i][1][l] * float(kG[j][1]) +
                            t[i][2][l] * float(kG[j][2]);
  if (n == kLanes) {
    for (int xi = 0; xi < kXi; ++xi)
      for (int l = 0; l < kLanes; ++l) u[xi * us + l] = out[xi][l];
  } else {
    for (int xi = 0; xi < kXi; ++xi)
      for (int l = 0; l < n; ++l) u[xi * us + l] = out[xi][l];
  }
}

// dw_l = G^T du_l G for n <= 16 channel pairs: du_l element xi at du[xi * xs + l] (16 readable
// lanes), dw_l written at dw + 9 l.
[[gnu::always_inline]] inline void weight_adjoint_impl(const float* du, int64 xs, int n,
                                                       float* dw) {
  alignas(64) float t[3][6][kLanes];
  for (int r = 0; r < 3; ++r)
    for (int j = 0; j < 6; ++j)
      for (int l = 0; l < kLanes; ++l) {
        float v = 0;
        for (int i = 0; i < 6; ++i) v += float(kG[i][r]) * du[(i * 6 + j) * xs + l];
        t[r][j][l] = v;
      }
  alignas(64) float out[kLanes][9];
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c)
      for (int l = 0; l < kLanes; ++l) {
        float v = 0;
        for (int j = 0; j < 6; ++j) v += t[r][j][l] * float(kG[j][c]);
        out[l][r * 3 + c] = v;
      }
  std::memcpy(dw, out, sizeof(float) * 9 * n);
}

// 16 tiles anywhere in a batch of planes (narrow images, whose tile rows are shorter than the
// lanes): lane l's tile origin is base + off[l], where base is the plane of the run's first
// sample; bit l of rows[i] (cols[j]) is set when row i (column j) of lane l's tile lies in its
// plane. Lanes past the run have no bits set and read as zeros.
struct LaneMap {
  std::int32_t off[kLanes];
  std::uint32_t rows[6], cols[6];
};

[[gnu::always_inline]] inline bool lane_in(const LaneMap& m, int i, int j, int l) {
  return ((m.rows[i] & m.cols[j]) >> l) & 1u;
}

// V = B^T d B for 16 lanes of gathered 6x6 tiles d[i][j][lane].
[[gnu::always_inline]] inline void input_math_impl(const float (&d)[6][6][kLanes], float* dst,
                                                   int64 xs) {
  alignas(64) float t[6][6][kLanes];
  for (int i = 0; i < 6; ++i)
    for (int l = 0; l < kLanes; ++l)
      CT_WINO_IN_1D(d[i][0][l], d[i][1][l], d[i][2][l], d[i][3][l], d[i][4][l], d[i][5][l],
                    t[i][0][l], t[i][1][l], t[i][2][l], t[i][3][l], t[i][4][l], t[i][5][l]);
  input_columns(t, dst, xs);
}

[[gnu::always_inline]] inline void input_gather_impl(const float* base, const LaneMap& m, int64 w,
                                                     float* dst, int64 xs) {
  alignas(64) float d[6][6][kLanes];
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 6; ++j)
      for (int l = 0; l < kLanes; ++l)
        d[i][j][l] = lane_in(m, i, j, l) ? base[m.off[l] + i * w + j] : 0.0f;
  input_math_impl(d, dst, xs);
}

[[gnu::always_inline]] inline void output_scatter_impl(const float* src, int64 xs, float* base,
                                                       const LaneMap& m, int64 w, float bias) {
  alignas(64) float t[4][6][kLanes];
  for (int j = 0; j < 6; ++j) {
    const float* m0 = src + (0 * 6 + j) * xs;
    const float* m1 = src + (1 * 6 + j) * xs;
    const float* m2 = src + (2 * 6 + j) * xs;
    const float* m3 = src + (3 * 6 + j) * xs;
    const float* m4 = src + (4 * 6 + j) * xs;
    const float* m5 = src + (5 * 6 + j) * xs;
    for (int l = 0; l < kLanes; ++l) {
      const float s12 = m1[l] + m2[l], d12 = m1[l] - m2[l];
      const float s34 = m3[l] + m4[l], d34 = m3[l] - m4[l];
      t[0][j][l] = m0[l] + s12 + s34;
      t[1][j][l] = d12 + 2.0f * d34;
      t[2][j][l] = s12 + 4.0f * s34;
      t[3][j][l] = d12 + 8.0f * d34 + m5[l];
    }
  }
  for (int i = 0; i < 4; ++i) {
    alignas(64) float o[4][kLanes];
    for (int l = 0; l < kLanes; ++l) {
      const float s12 = t[i][1][l] + t[i][2][l], d12 = t[i][1][l] - t[i][2][l];
      const float s34 = t[i][3][l] + t[i][4][l], d34 = t[i][3][l] - t[i][4][l];
      o[0][l] = t[i][0][l] + s12 + s34 + bias;
      o[1][l] = d12 + 2.0f * d34 + bias;
      o[2][l] = s12 + 4.0f * s34 + bias;
      o[3][l] = d12 + 8.0f * d34 + t[i][5][l] + bias;
    }
    for (int j = 0; j < 4; ++j)
      for (int l = 0; l < kLanes; ++l)
        if (lane_in(m, i, j, l)) base[m.off[l] + i * w + j] = o[j][l];
  }
}

// Z = A dy A^T for 16 lanes of gathered 4x4 tiles d[i][j][lane].
[[gnu::always_inline]] inline void grad_math_impl(const float (&d)[4][4][kLanes], float* dst,
                                                  int64 xs) {
  alignas(64) float t[4][6][kLanes];
  for (int i = 0; i < 4; ++i)
    for (int l = 0; l < kLanes; ++l) {
      const float s02 = d[i][0][l] + d[i][2][l], s13 = d[i][1][l] + d[i][3][l];
      const float q02 = d[i][0][l] + 4.0f * d[i][2][l], q13 = 2.0f * d[i][1][l] + 8.0f * d[i][3][l];
      t[i][0][l] = d[i][0][l];
      t[i][1][l] = s02 + s13;
      t[i][2][l] = s02 - s13;
      t[i][3][l] = q02 + q13;
      t[i][4][l] = q02 - q13;
      t[i][5][l] = d[i][3][l];
    }
  grad_columns(t, dst, xs);
}

[[gnu::always_inline]] inline void grad_gather_impl(const float* base, const LaneMap& m, int64 w,
                                                    float* dst, int64 xs) {
  alignas(64) float d[4][4][kLanes];
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j)
      for (int l = 0; l < kLanes; ++l)
        d[i][j][l] = lane_in(m, i, j, l) ? base[m.off[l] + i * w + j] : 0.0f;
  grad_math_impl(d, dst, xs);
}

#define CT_WINO_TRANSFORMS(SUFFIX, TARGET)                                                         \
  TARGET void input_transform_##SUFFIX(const float* plane, int64 h, int64 w, TileRow r,            \
                                       float* dst, int64 xs) {                                     \
    input_transform_impl(plane, h, w, r, dst, xs);                                                 \
  }                                                                                                \
  TARGET void output_transform_##SUFFIX(const float* src, int64 xs, float* plane, int64 h,         \
                                        int64 w, TileRow r, float bias) {                          \
    output_transform_impl(src, xs, plane, h, w, r, bias);                                          \
  }                                                                                                \
  TARGET void grad_transform_##SUFFIX(const float* plane, int64 h, int64 w, TileRow r, float* dst, \
                                      int64 xs) {                                                  \
    grad_transform_impl(plane, h, w, r, dst, xs);                                                  \
  }                                                                                                \
  TARGET void transpose_##SUFFIX(const float* src, int64 lds, int64 rows, int64 cols, float* dst,  \
                                 int64 ldd) {                                                      \
    transpose_impl(src, lds, rows, cols, dst, ldd);                                                \
  }                                                                                                \
  TARGET void output_scatter_##SUFFIX(const float* src, int64 xs, float* base, const LaneMap& m,   \
                                      int64 w, float bias) {                                       \
    output_scatter_impl(src, xs, base, m, w, bias);                                                \
  }                                                                                                \
  TARGET void weight_transform_##SUFFIX(const float* g, int64 gs, int n, bool flip, float* u,      \
                                        int64 us) {                                                \
    weight_transform_impl(g, gs, n, flip, u, us);                                                  \
  }                                                                                                \
  TARGET void weight_adjoint_##SUFFIX(const float* du, int64 xs, int n, float* dw) {               \
    weight_adjoint_impl(du, xs, n, dw);                                                            \
  }

CT_WINO_TRANSFORMS(avx2, __attribute__((target("avx2,fma"))))
CT_WINO_TRANSFORMS(portable, )

#undef CT_WINO_TRANSFORMS

void input_gather_portable(const float* base, const LaneMap& m, int64 w, float* dst, int64 xs) {
  input_gather_impl(base, m, w, dst, xs);
}

void grad_gather_portable(const float* base, const LaneMap& m, int64 w, float* dst, int64 xs) {
  grad_gather_impl(base, m, w, dst, xs);
}

// AVX2: lane-mapped gathers as two masked 8-lane gathers per tile element.
__attribute__((target("avx2,fma"), always_inline)) inline void gather16_avx2(
    const float* base, const LaneMap& m, std::uint32_t bits, int64 delta, float* out) {
  const __m256i select = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  for (int h = 0; h < 2; ++h) {
    const __m256i idx =
        _mm256_add_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(m.off + 8 * h)),
                         _mm256_set1_epi32(static_cast<int>(delta)));
    const __m256i on = _mm256_cmpeq_epi32(
        _mm256_and_si256(_mm256_set1_epi32(static_cast<int>(bits >> (8 * h))), select), select);
    _mm256_store_ps(out + 8 * h, _mm256_mask_i32gather_ps(_mm256_setzero_ps(), base, idx,
                                                          _mm256_castsi256_ps(on), 4));
  }
}

__attribute__((target("avx2,fma"))) void input_gather_avx2(const float* base, const LaneMap& m,
                                                           int64 w, float* dst, int64 xs) {
  alignas(64) float d[6][6][kLanes];
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 6; ++j) gather16_avx2(base, m, m.rows[i] & m.cols[j], i * w + j, d[i][j]);
  input_math_impl(d, dst, xs);
}

__attribute__((target("avx2,fma"))) void grad_gather_avx2(const float* base, const LaneMap& m,
                                                          int64 w, float* dst, int64 xs) {
  alignas(64) float d[4][4][kLanes];
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) gather16_avx2(base, m, m.rows[i] & m.cols[j], i * w + j, d[i][j]);
  grad_math_impl(d, dst, xs);
}

// AVX-512: the same transforms with the tile phases split by permutes in registers. Row q of a
// run holds 64 (+ 2) consecutive floats; lane l of phase j is element 4 l + j. Reads past the
// plane's edges are masked (never formed outside the row: a left edge is read with an expanding
// load from its first valid element), writes are masked to the plane.

// Lanes [s, e) of 16 as a mask (empty when e <= s).
inline __mmask16 lane_mask(int64 s, int64 e) {
  s = std::clamp<int64>(s, 0, 16);
  e = std::clamp<int64>(e, 0, 16);
  if (e <= s) return 0;
  return static_cast<__mmask16>(((1u << e) - 1u) & ~((1u << s) - 1u));
}

// Elements q in [16 v, 16 v + 16) of a row whose valid elements are [lo, hi) (lo < hi), zeros
// elsewhere; `first` points at element lo. Past the right edge a masked load (masked lanes are
// never read); before the left edge the valid part is loaded from `first` and shifted up.
__attribute__((target("avx512f"), always_inline)) inline __m512 load_masked(const float* first,
                                                                            int64 v, int64 lo,
                                                                            int64 hi) {
  const int64 s = lo - 16 * v, e = hi - 16 * v;
  if (s <= 0) {
    if (e >= 16) return _mm512_loadu_ps(first + (16 * v - lo));
    if (e <= 0) return _mm512_setzero_ps();
    return _mm512_maskz_loadu_ps(lane_mask(0, e), first + (16 * v - lo));
  }
  if (s >= 16 || e <= s) return _mm512_setzero_ps();
  // Lanes s .. e - 1 hold elements 0 .. e - s - 1 of `first`.
  const __m512 part = _mm512_maskz_loadu_ps(lane_mask(0, e - s), first);
  const __m512i shift =
      _mm512_sub_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                       _mm512_set1_epi32(static_cast<int>(s)));
  return _mm512_maskz_permutexvar_ps(lane_mask(s, 16), shift, part);
}

// The 4 phases of 64 consecutive floats q0..q3 (q_v = elements 16 v ..): p[j] lane l = 4 l + j.
__attribute__((target("avx512f"), always_inline)) inline void split_phases(const __m512 (&q)[4],
                                                                           __m512 (&p)[4]) {
  const __m512i i01 = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
  const __m512i i23 = _mm512_setr_epi32(2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31);
  const __m512 a01 = _mm512_permutex2var_ps(q[0], i01, q[1]);
  const __m512 a23 = _mm512_permutex2var_ps(q[0], i23, q[1]);
  const __m512 b01 = _mm512_permutex2var_ps(q[2], i01, q[3]);
  const __m512 b23 = _mm512_permutex2var_ps(q[2], i23, q[3]);
  const __m512i lo = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
  const __m512i hi =
      _mm512_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
  p[0] = _mm512_permutex2var_ps(a01, lo, b01);
  p[1] = _mm512_permutex2var_ps(a01, hi, b01);
  p[2] = _mm512_permutex2var_ps(a23, lo, b23);
  p[3] = _mm512_permutex2var_ps(a23, hi, b23);
}

// The 1-D steps of the three transforms, 16 tiles per vector: each 2-D transform applies its
// step along the tile's rows, then along its columns.
// B^T z: input (and data-gradient) tiles, 6 -> 6.
__attribute__((target("avx512f,fma"), always_inline)) inline void input_step_avx512(
    const __m512 (&z)[6], __m512 (&o)[6]) {
  const __m512 four = _mm512_set1_ps(4.0f), five = _mm512_set1_ps(5.0f), two = _mm512_set1_ps(2.0f);
  const __m512 s34 = _mm512_add_ps(z[3], z[4]), d43 = _mm512_sub_ps(z[4], z[3]);
  const __m512 d42 = _mm512_sub_ps(z[4], z[2]), d31 = _mm512_sub_ps(z[3], z[1]);
  o[0] = _mm512_fmadd_ps(four, z[0], _mm512_fnmadd_ps(five, z[2], z[4]));
  o[1] = _mm512_fnmadd_ps(four, _mm512_add_ps(z[1], z[2]), s34);
  o[2] = _mm512_fmadd_ps(four, _mm512_sub_ps(z[1], z[2]), d43);
  o[3] = _mm512_fmadd_ps(two, d31, d42);
  o[4] = _mm512_fnmadd_ps(two, d31, d42);
  o[5] = _mm512_fmadd_ps(four, z[1], _mm512_fnmadd_ps(five, z[3], z[5]));
}

// A^T m: products to outputs, 6 -> 4.
__attribute__((target("avx512f,fma"), always_inline)) inline void output_step_avx512(
    const __m512 (&m)[6], __m512 (&o)[4]) {
  const __m512 two = _mm512_set1_ps(2.0f), four = _mm512_set1_ps(4.0f),
               eight = _mm512_set1_ps(8.0f);
  const __m512 s12 = _mm512_add_ps(m[1], m[2]), d12 = _mm512_sub_ps(m[1], m[2]);
  const __m512 s34 = _mm512_add_ps(m[3], m[4]), d34 = _mm512_sub_ps(m[3], m[4]);
  o[0] = _mm512_add_ps(_mm512_add_ps(m[0], s12), s34);
  o[1] = _mm512_fmadd_ps(two, d34, d12);
  o[2] = _mm512_fmadd_ps(four, s34, s12);
  o[3] = _mm512_add_ps(_mm512_fmadd_ps(eight, d34, d12), m[5]);
}

// A d: output-gradient tiles, 4 -> 6.
__attribute__((target("avx512f,fma"), always_inline)) inline void grad_step_avx512(
    const __m512 (&d)[4], __m512 (&o)[6]) {
  const __m512 two = _mm512_set1_ps(2.0f), four = _mm512_set1_ps(4.0f),
               eight = _mm512_set1_ps(8.0f);
  const __m512 s02 = _mm512_add_ps(d[0], d[2]), s13 = _mm512_add_ps(d[1], d[3]);
  const __m512 q02 = _mm512_fmadd_ps(four, d[2], d[0]);
  const __m512 q13 = _mm512_fmadd_ps(eight, d[3], _mm512_mul_ps(two, d[1]));
  o[0] = d[0];
  o[1] = _mm512_add_ps(s02, s13);
  o[2] = _mm512_sub_ps(s02, s13);
  o[3] = _mm512_add_ps(q02, q13);
  o[4] = _mm512_sub_ps(q02, q13);
  o[5] = d[3];
}

__attribute__((target("avx512f,fma"))) void input_transform_avx512(const float* plane, int64 h,
                                                                   int64 w, TileRow r, float* dst,
                                                                   int64 xs) {
  const int64 span = 4 * r.n + 2;
  const int64 lo = std::max<int64>(0, -r.x0), hi = std::min<int64>(span, w - r.x0);
  alignas(64) float t[6][6][kLanes];
  for (int i = 0; i < 6; ++i) {
    const int64 y = r.y0 + i;
    __m512 z[6];
    if (y < 0 || y >= h || lo >= hi) {
      for (auto& v : z) v = _mm512_setzero_ps();
    } else {
      // The row from column x0 + lo on (x0 + lo >= 0): offsets below are relative to x0.
      const float* row = plane + y * w + r.x0 + lo;
      __m512 q[4];
      for (int v = 0; v < 4; ++v) q[v] = load_masked(row, v, lo, hi);
      __m512 p[4];
      split_phases(q, p);
      z[0] = p[0];
      z[1] = p[1];
      z[2] = p[2];
      z[3] = p[3];
      // Phases 4 and 5 are phases 0 and 1 one tile on: lane 15 takes elements 64 and 65.
      const float e64 = (64 >= lo && 64 < hi) ? row[64 - lo] : 0.0f;
      const float e65 = (65 >= lo && 65 < hi) ? row[65 - lo] : 0.0f;
      const __m512i next = _mm512_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
      z[4] = _mm512_permutex2var_ps(p[0], next, _mm512_set1_ps(e64));
      z[5] = _mm512_permutex2var_ps(p[1], next, _mm512_set1_ps(e65));
    }
    __m512 o[6];
    input_step_avx512(z, o);
    for (int k = 0; k < 6; ++k) _mm512_store_ps(t[i][k], o[k]);
  }
  for (int j = 0; j < 6; ++j) {
    __m512 z[6];
    for (int i = 0; i < 6; ++i) z[i] = _mm512_load_ps(t[i][j]);
    __m512 o[6];
    input_step_avx512(z, o);
    for (int k = 0; k < 6; ++k) _mm512_storeu_ps(dst + (k * 6 + j) * xs, o[k]);
  }
}

__attribute__((target("avx512f,fma"))) void output_transform_avx512(const float* src, int64 xs,
                                                                    float* plane, int64 h, int64 w,
                                                                    TileRow r, float bias) {
  alignas(64) float t[4][6][kLanes];
  const __m512 vb = _mm512_set1_ps(bias);
  for (int j = 0; j < 6; ++j) {
    __m512 m[6];
    for (int i = 0; i < 6; ++i) m[i] = _mm512_loadu_ps(src + (i * 6 + j) * xs);
    __m512 o[4];
    output_step_avx512(m, o);
    for (int k = 0; k < 4; ++k) _mm512_store_ps(t[k][j], o[k]);
  }
  const __m512i ilo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i ihi =
      _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const __m512i jlo = _mm512_setr_epi32(0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
  const __m512i jhi =
      _mm512_setr_epi32(8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
  const int64 hi = std::min<int64>(4 * r.n, w - r.x0);  // x0 >= 0 for outputs
  for (int i = 0; i < 4; ++i) {
    const int64 y = r.y0 + i;
    if (y < 0 || y >= h || hi <= 0) continue;
    __m512 m[6];
    for (int j = 0; j < 6; ++j) m[j] = _mm512_load_ps(t[i][j]);
    __m512 o[4];
    output_step_avx512(m, o);
    const __m512 o0 = _mm512_add_ps(o[0], vb), o1 = _mm512_add_ps(o[1], vb),
                 o2 = _mm512_add_ps(o[2], vb), o3 = _mm512_add_ps(o[3], vb);
    // Interleave the 4 columns of 16 tiles into 64 consecutive floats.
    const __m512 a0 = _mm512_permutex2var_ps(o0, ilo, o1), a1 = _mm512_permutex2var_ps(o0, ihi, o1);
    const __m512 b0 = _mm512_permutex2var_ps(o2, ilo, o3), b1 = _mm512_permutex2var_ps(o2, ihi, o3);
    const __m512 q[4] = {_mm512_permutex2var_ps(a0, jlo, b0), _mm512_permutex2var_ps(a0, jhi, b0),
                         _mm512_permutex2var_ps(a1, jlo, b1), _mm512_permutex2var_ps(a1, jhi, b1)};
    float* row = plane + y * w + r.x0;
    for (int v = 0; v < 4 && 16 * v < hi; ++v) {
      if (16 * v + 16 <= hi)
        _mm512_storeu_ps(row + 16 * v, q[v]);
      else
        _mm512_mask_storeu_ps(row + 16 * v, lane_mask(0, hi - 16 * v), q[v]);
    }
  }
}

__attribute__((target("avx512f,fma"))) void grad_transform_avx512(const float* plane, int64 h,
                                                                  int64 w, TileRow r, float* dst,
                                                                  int64 xs) {
  const int64 hi = std::min<int64>(4 * r.n, w - r.x0);  // x0 >= 0 for outputs
  alignas(64) float t[4][6][kLanes];
  for (int i = 0; i < 4; ++i) {
    const int64 y = r.y0 + i;
    __m512 d[4];
    if (y < 0 || y >= h || hi <= 0) {
      for (auto& v : d) v = _mm512_setzero_ps();
    } else {
      const float* row = plane + y * w + r.x0;
      __m512 q[4];
      for (int v = 0; v < 4; ++v) q[v] = load_masked(row, v, 0, hi);
      split_phases(q, d);
    }
    __m512 o[6];
    grad_step_avx512(d, o);
    for (int k = 0; k < 6; ++k) _mm512_store_ps(t[i][k], o[k]);
  }
  for (int j = 0; j < 6; ++j) {
    const __m512 d[4] = {_mm512_load_ps(t[0][j]), _mm512_load_ps(t[1][j]), _mm512_load_ps(t[2][j]),
                         _mm512_load_ps(t[3][j])};
    __m512 o[6];
    grad_step_avx512(d, o);
    for (int k = 0; k < 6; ++k) _mm512_storeu_ps(dst + (k * 6 + j) * xs, o[k]);
  }
}

// dst[t * ldd + c] = src[c * lds + t] for c < rows, t < cols, in 16 x 16 blocks: 4 rounds of
// interleaving rows i and i + 8 transpose a block (each round rotates the 8 bits of (row, column)
// by one). Preconditions (backward_weight's V^T): cols is a multiple of 16 and dst rows hold
// round_up(rows, 16) floats, the columns past rows being written as zeros.
__attribute__((target("avx512f"))) void transpose_avx512(const float* src, int64 lds, int64 rows,
                                                         int64 cols, float* dst, int64 ldd) {
  const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi =
      _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  for (int64 c0 = 0; c0 < rows; c0 += 16)
    for (int64 t0 = 0; t0 < cols; t0 += 16) {
      __m512 r[16];
      for (int i = 0; i < 16; ++i)
        r[i] = c0 + i < rows ? _mm512_loadu_ps(src + (c0 + i) * lds + t0) : _mm512_setzero_ps();
      for (int round = 0; round < 4; ++round) {
        __m512 o[16];
        for (int i = 0; i < 8; ++i) {
          o[2 * i] = _mm512_permutex2var_ps(r[i], lo, r[i + 8]);
          o[2 * i + 1] = _mm512_permutex2var_ps(r[i], hi, r[i + 8]);
        }
        for (int i = 0; i < 16; ++i) r[i] = o[i];
      }
      for (int j = 0; j < 16; ++j) _mm512_storeu_ps(dst + (t0 + j) * ldd + c0, r[j]);
    }
}

__attribute__((target("avx512f,fma"))) void weight_transform_avx512(const float* g, int64 gs, int n,
                                                                    bool flip, float* u, int64 us) {
  weight_transform_impl(g, gs, n, flip, u, us);
}

__attribute__((target("avx512f,fma"))) void weight_adjoint_avx512(const float* du, int64 xs, int n,
                                                                  float* dw) {
  weight_adjoint_impl(du, xs, n, dw);
}
#undef CT_WINO_IN_1D

// Gathers and scatters of lane-mapped runs: one masked gather per tile element.
__attribute__((target("avx512f,fma"))) void input_gather_avx512(const float* base, const LaneMap& m,
                                                                int64 w, float* dst, int64 xs) {
  const __m512i idx = _mm512_loadu_si512(m.off);
  const __m512 zero = _mm512_setzero_ps();
  alignas(64) float t[6][6][kLanes];
  for (int i = 0; i < 6; ++i) {
    __m512 z[6];
    for (int j = 0; j < 6; ++j)
      z[j] = _mm512_mask_i32gather_ps(
          zero, static_cast<__mmask16>(m.rows[i] & m.cols[j]),
          _mm512_add_epi32(idx, _mm512_set1_epi32(static_cast<int>(i * w + j))), base, 4);
    __m512 o[6];
    input_step_avx512(z, o);
    for (int k = 0; k < 6; ++k) _mm512_store_ps(t[i][k], o[k]);
  }
  for (int j = 0; j < 6; ++j) {
    __m512 z[6];
    for (int i = 0; i < 6; ++i) z[i] = _mm512_load_ps(t[i][j]);
    __m512 o[6];
    input_step_avx512(z, o);
    for (int k = 0; k < 6; ++k) _mm512_storeu_ps(dst + (k * 6 + j) * xs, o[k]);
  }
}

__attribute__((target("avx512f,fma"))) void output_scatter_avx512(const float* src, int64 xs,
                                                                  float* base, const LaneMap& m,
                                                                  int64 w, float bias) {
  const __m512i idx = _mm512_loadu_si512(m.off);
  alignas(64) float t[4][6][kLanes];
  const __m512 vb = _mm512_set1_ps(bias);
  for (int j = 0; j < 6; ++j) {
    __m512 v[6];
    for (int i = 0; i < 6; ++i) v[i] = _mm512_loadu_ps(src + (i * 6 + j) * xs);
    __m512 o[4];
    output_step_avx512(v, o);
    for (int k = 0; k < 4; ++k) _mm512_store_ps(t[k][j], o[k]);
  }
  for (int i = 0; i < 4; ++i) {
    __m512 v[6];
    for (int j = 0; j < 6; ++j) v[j] = _mm512_load_ps(t[i][j]);
    __m512 o[4];
    output_step_avx512(v, o);
    for (auto& e : o) e = _mm512_add_ps(e, vb);
    for (int j = 0; j < 4; ++j)
      _mm512_mask_i32scatter_ps(
          base, static_cast<__mmask16>(m.rows[i] & m.cols[j]),
          _mm512_add_epi32(idx, _mm512_set1_epi32(static_cast<int>(i * w + j))), o[j], 4);
  }
}

__attribute__((target("avx512f,fma"))) void grad_gather_avx512(const float* base, const LaneMap& m,
                                                               int64 w, float* dst, int64 xs) {
  const __m512i idx = _mm512_loadu_si512(m.off);
  const __m512 zero = _mm512_setzero_ps();
  alignas(64) float t[4][6][kLanes];
  for (int i = 0; i < 4; ++i) {
    __m512 d[4];
    for (int j = 0; j < 4; ++j)
      d[j] = _mm512_mask_i32gather_ps(
          zero, static_cast<__mmask16>(m.rows[i] & m.cols[j]),
          _mm512_add_epi32(idx, _mm512_set1_epi32(static_cast<int>(i * w + j))), base, 4);
    __m512 o[6];
    grad_step_avx512(d, o);
    for (int k = 0; k < 6; ++k) _mm512_store_ps(t[i][k], o[k]);
  }
  for (int j = 0; j < 6; ++j) {
    const __m512 d[4] = {_mm512_load_ps(t[0][j]), _mm512_load_ps(t[1][j]), _mm512_load_ps(t[2][j]),
                         _mm512_load_ps(t[3][j])};
    __m512 o[6];
    grad_step_avx512(d, o);
    for (int k = 0; k < 6; ++k) _mm512_storeu_ps(dst + (k * 6 + j) * xs, o[k]);
  }
}

// ---------------------------------------------------------------------------------------------
// Micro-kernels: C[MR x NR] (=|+=) sum_k A[i * lda + k] B[k * ldb + j]. A is read in place, one
// broadcast per row and k (rows lda apart); B rows are NR contiguous floats.

// V vectors of columns per row: V = 2 for the full kernels, 1 for the half-width ones that
// compute a last half column panel (cpu/conv_winograd_axes.cpp).
template <int V>
__attribute__((target("avx512f,fma"))) void kernel_avx512(int64 kc, const float* a, int64 lda,
                                                          const float* b, int64 ldb, float* c,
                                                          int64 ldc, bool accumulate) {
  constexpr int kMr = 8;
  __m512 acc[kMr][V];
#pragma GCC unroll 8
  for (int i = 0; i < kMr; ++i)
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) acc[i][v] = _mm512_setzero_ps();
  for (int64 k = 0; k < kc; ++k) {
    __m512 bv[V];
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) bv[v] = _mm512_loadu_ps(b + k * ldb + 16 * v);
#pragma GCC unroll 8
    for (int i = 0; i < kMr; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i * lda + k]);
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < kMr; ++i)
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) {
      float* ci = c + i * ldc + 16 * v;
      if (accumulate) acc[i][v] = _mm512_add_ps(acc[i][v], _mm512_loadu_ps(ci));
      _mm512_storeu_ps(ci, acc[i][v]);
    }
}

template <int V>
__attribute__((target("avx2,fma"))) void kernel_avx2(int64 kc, const float* a, int64 lda,
                                                     const float* b, int64 ldb, float* c, int64 ldc,
                                                     bool accumulate) {
  constexpr int kMr = 6;
  __m256 acc[kMr][V];
#pragma GCC unroll 8
  for (int i = 0; i < kMr; ++i)
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) acc[i][v] = _mm256_setzero_ps();
  for (int64 k = 0; k < kc; ++k) {
    __m256 bv[V];
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) bv[v] = _mm256_loadu_ps(b + k * ldb + 8 * v);
#pragma GCC unroll 8
    for (int i = 0; i < kMr; ++i) {
      const __m256 ai = _mm256_set1_ps(a[i * lda + k]);
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) acc[i][v] = _mm256_fmadd_ps(ai, bv[v], acc[i][v]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < kMr; ++i)
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) {
      float* ci = c + i * ldc + 8 * v;
      if (accumulate) acc[i][v] = _mm256_add_ps(acc[i][v], _mm256_loadu_ps(ci));
      _mm256_storeu_ps(ci, acc[i][v]);
    }
}

template <int V>
void kernel_portable(int64 kc, const float* a, int64 lda, const float* b, int64 ldb, float* c,
                     int64 ldc, bool accumulate) {
  constexpr int kMr = 4, kNr = 8 * V;
  float acc[kMr][kNr] = {};
  for (int64 k = 0; k < kc; ++k) {
    const float* bk = b + k * ldb;
    for (int i = 0; i < kMr; ++i) {
      const float ai = a[i * lda + k];
      for (int j = 0; j < kNr; ++j) acc[i][j] += ai * bk[j];
    }
  }
  for (int i = 0; i < kMr; ++i)
    for (int j = 0; j < kNr; ++j)
      c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc[i][j] : acc[i][j];
}

// One ISA path: the micro-kernel's register tile and the compiled transforms.
struct Path {
  int mr, nr;
  void (*kernel)(int64, const float*, int64, const float*, int64, float*, int64, bool);
  void (*input_transform)(const float*, int64, int64, TileRow, float*, int64);
  void (*output_transform)(const float*, int64, float*, int64, int64, TileRow, float);
  void (*grad_transform)(const float*, int64, int64, TileRow, float*, int64);
  void (*transpose)(const float*, int64, int64, int64, float*, int64);
  void (*input_gather)(const float*, const LaneMap&, int64, float*, int64);
  void (*output_scatter)(const float*, int64, float*, const LaneMap&, int64, float);
  void (*grad_gather)(const float*, const LaneMap&, int64, float*, int64);
  void (*weight_transform)(const float*, int64, int, bool, float*, int64);
  void (*weight_adjoint)(const float*, int64, int, float*);
};

const Path kAvx512{8,
                   32,
                   &kernel_avx512<2>,
                   &input_transform_avx512,
                   &output_transform_avx512,
                   &grad_transform_avx512,
                   &transpose_avx512,
                   &input_gather_avx512,
                   &output_scatter_avx512,
                   &grad_gather_avx512,
                   &weight_transform_avx512,
                   &weight_adjoint_avx512};
const Path kAvx2{6,
                 16,
                 &kernel_avx2<2>,
                 &input_transform_avx2,
                 &output_transform_avx2,
                 &grad_transform_avx2,
                 &transpose_avx2,
                 &input_gather_avx2,
                 &output_scatter_avx2,
                 &grad_gather_avx2,
                 &weight_transform_avx2,
                 &weight_adjoint_avx2};
const Path kPortable{4,
                     16,
                     &kernel_portable<2>,
                     &input_transform_portable,
                     &output_transform_portable,
                     &grad_transform_portable,
                     &transpose_portable,
                     &input_gather_portable,
                     &output_scatter_portable,
                     &grad_gather_portable,
                     &weight_transform_portable,
                     &weight_adjoint_portable};

const Path& path_for(Isa isa) {
  switch (isa) {
    case Isa::avx512:
      return kAvx512;
    case Isa::avx2:
      return kAvx2;
    default:
      return kPortable;
  }
}

int64 round_up(int64 a, int64 b) {
  return (a + b - 1) / b * b;
}
int64 ceil_div(int64 a, int64 b) {
  return a / b + (a % b != 0 ? 1 : 0);
}

// ---------------------------------------------------------------------------------------------
// ---------------------------------------------------------------------------------------------
// One stride-1 3x3 convolution pass src [N, groups * ci, hi, wi] -> [N, groups * co, ho, wo] with
// the tile at (4 ty - ph, 4 tx - pw) (any padding; reads outside the input are zeros).
struct Pass {
  int64 batch = 0, groups = 1, ci = 0, co = 0, hi = 0, wi = 0, ho = 0, wo = 0, ph = 0, pw = 0;
};

// The tiles of a pass and their blocks. Row blocks: `rows_per` tile rows (over samples and tile
// rows, flattened) by `cols_per` tile columns. Lane-mapped passes (short tile rows, see
// lane_mapped) take `per` consecutive tiles of the flattened (sample, tile row, tile column)
// order instead, so that no block pads its tiles.
struct Tiling {
  int64 th = 0, tw = 0, rows = 0;
  bool mapped = false;
  int64 rows_per = 0, cols_per = 0, row_blocks = 0, col_blocks = 0;
  int64 per = 0, total = 0;
  int64 stride = 0;  // the tile stride of V and M: a block's tiles padded, plus a spill margin
  int64 blocks() const { return mapped ? ceil_div(total, per) : row_blocks * col_blocks; }
};

// The tiles of a block. Small channel counts keep V and M of a block within kBlockBytes (L2).
// When the 36 matrices U (or, for the weight gradient, dU) outgrow that, every block streams them
// whole from L3, so blocks grow to kReuseTiles tiles to read them less often, as long as one
// GEMM's operands (U_xi, V_xi, M_xi) stay within kGemmBytes and there are two blocks per thread
// of plan_threads() (not the team size: the weight gradient's sums follow the blocks).
int64 block_tiles(int64 per_tile_floats, int64 pair_floats, int64 total) {
  int64 tiles = kBlockBytes / (4 * per_tile_floats);
  if (4 * kXi * pair_floats > kBlockBytes) {
    const int64 fit = (kGemmBytes / 4 - pair_floats) / std::max<int64>(1, per_tile_floats / kXi);
    tiles = std::max(tiles, std::min(kReuseTiles, fit));
    tiles = std::min(tiles, total / std::max<int64>(1, 2 * plan_threads()));
  }
  return std::max<int64>(kBlockAlign, tiles / kBlockAlign * kBlockAlign);
}

Tiling make_tiling(const Pass& p, bool mapped, int64 per_tile_floats, int64 pair_floats) {
  Tiling t;
  t.th = ceil_div(p.ho, 4);
  t.tw = ceil_div(p.wo, 4);
  t.rows = checked::mul(p.batch, t.th, "winograd", "the tile rows");
  t.total = checked::mul(t.rows, t.tw, "winograd", "the tiles");
  t.mapped = mapped;
  const int64 tiles = block_tiles(per_tile_floats, pair_floats, t.total);
  if (mapped) {
    t.per = tiles;
    t.stride = tiles + kLanes;
    return t;
  }
  t.cols_per = std::min(t.tw, tiles);
  // The number of tile rows whose tiles fill the padded block best (the GEMMs run over the
  // padding too), up to four times the budget while V and M stay within kStretchBytes.
  const int64 limit = std::max(tiles, std::min(4 * tiles, kStretchBytes / (4 * per_tile_floats)));
  t.rows_per = 1;
  double best = 0;
  for (int64 r = 1; r == 1 || r * t.cols_per <= limit; ++r) {
    const double fill = double(r * t.cols_per) / double(round_up(r * t.cols_per, kBlockAlign));
    if (fill > best + 1e-9 || (fill > best - 1e-9 && r * t.cols_per <= tiles)) {
      best = std::max(best, fill);
      t.rows_per = r;
    }
  }
  t.rows_per = std::min(t.rows_per, t.rows);
  t.row_blocks = ceil_div(t.rows, t.rows_per);
  t.col_blocks = ceil_div(t.tw, t.cols_per);
  t.stride = round_up(t.rows_per * t.cols_per, kBlockAlign) + kLanes;
  return t;
}

// One block of a tiling: tile rows r0 .. r0 + nr - 1 by tile columns c0 .. c0 + nc - 1, tile
// (r, s) being local tile r * nc + s; or, lane-mapped, tiles first .. first + count - 1 of the
// flattened order.
struct Block {
  int64 r0 = 0, nr = 0, c0 = 0, nc = 0;
  int64 first = 0, count = 0;
  bool mapped = false;
  int64 tiles() const { return mapped ? count : nr * nc; }
  int64 padded() const { return round_up(tiles(), kBlockAlign); }
};

Block block_of(const Tiling& t, int64 b) {
  Block k;
  k.mapped = t.mapped;
  if (t.mapped) {
    k.first = b * t.per;
    k.count = std::min(t.per, t.total - k.first);
    return k;
  }
  const int64 rb = b / t.col_blocks, cb = b % t.col_blocks;
  k.r0 = rb * t.rows_per;
  k.nr = std::min(t.rows_per, t.rows - k.r0);
  k.c0 = cb * t.cols_per;
  k.nc = std::min(t.cols_per, t.tw - k.c0);
  return k;
}

// The runs of up to 16 tiles in which the transforms visit a block, in local tile order. Row runs
// (tiles of one tile row, read as contiguous rows) when tile rows are long; lane-mapped runs (16
// consecutive tiles of the block across tile rows and samples, one gather per element) when they
// are short, which would leave most lanes of a row run idle.
struct Run {
  int64 n, local;  // the sample of the run's plane (its first tile's), its first local tile
  TileRow row;     // row runs: the origin of lane 0's tile in its plane
  LaneMap map;     // lane-mapped runs
};

// The plane a run reads or writes: rows h, columns w, sample_stride floats from one sample's
// plane to the next, tile origins at (4 ty + shift_y, 4 tx + shift_x), taps x taps elements.
struct Plane {
  int64 h, w, sample_stride, shift_y, shift_x;
  int taps;
};

// Whether a pass maps lanes: short tile rows, and every lane offset of a run (at most 16 samples
// apart) fits an int32 gather index.
bool lane_mapped(const Pass& p, const Plane& in, const Plane& out) {
  if (ceil_div(p.wo, 4) >= 12) return false;
  const auto fits = [](const Plane& q) {
    const auto span = checked::try_mul(kLanes + 1, q.sample_stride);
    return span && *span + 8 * q.w + 8 <= INT32_MAX;
  };
  return fits(in) && fits(out);
}

std::vector<Run> make_runs(const Tiling& t, const Block& k, const Plane& q) {
  std::vector<Run> runs;
  if (!t.mapped) {
    for (int64 r = 0; r < k.nr; ++r) {
      const int64 row = k.r0 + r, n = row / t.th, ty = row % t.th;
      for (int64 s = 0; s < k.nc; s += kLanes) {
        Run run{};
        run.n = n;
        run.local = r * k.nc + s;
        run.row = TileRow{4 * ty + q.shift_y, 4 * (k.c0 + s) + q.shift_x,
                          static_cast<int>(std::min<int64>(kLanes, k.nc - s))};
        runs.push_back(run);
      }
    }
    return runs;
  }
  for (int64 first = 0; first < k.tiles(); first += kLanes) {
    Run run{};
    run.local = first;
    for (int l = 0; l < kLanes && first + l < k.tiles(); ++l) {
      const int64 tile = k.first + first + l, row = tile / t.tw, n = row / t.th, ty = row % t.th;
      const int64 tx = tile % t.tw;
      if (l == 0) run.n = n;
      const int64 y0 = 4 * ty + q.shift_y, x0 = 4 * tx + q.shift_x;
      run.map.off[l] = static_cast<std::int32_t>((n - run.n) * q.sample_stride + y0 * q.w + x0);
      for (int i = 0; i < q.taps; ++i) {
        if (y0 + i >= 0 && y0 + i < q.h) run.map.rows[i] |= 1u << l;
        if (x0 + i >= 0 && x0 + i < q.w) run.map.cols[i] |= 1u << l;
      }
    }
    runs.push_back(run);
  }
  return runs;
}

Plane input_plane(const Pass& p) {
  return Plane{p.hi, p.wi, p.groups * p.ci * p.hi * p.wi, -p.ph, -p.pw, 6};
}
Plane output_plane(const Pass& p) {
  return Plane{p.ho, p.wo, p.groups * p.co * p.ho * p.wo, 0, 0, 4};
}

// The rows of one channel's plane that a block's tiles read, as (sample, first element, end)
// spans: each channel's spans are prefetched while the channel before is transformed, since a
// block reads a few rows of every channel plane, too scattered for the hardware prefetcher.
struct Span {
  int64 n, begin, end;
};

std::vector<Span> block_spans(const Tiling& t, const Block& k, const Plane& q) {
  int64 r_first, r_last, x_begin = 0, x_end = q.w;
  if (k.mapped) {
    r_first = k.first / t.tw;
    r_last = (k.first + k.count - 1) / t.tw;
  } else {
    r_first = k.r0;
    r_last = k.r0 + k.nr - 1;
    x_begin = std::max<int64>(0, 4 * k.c0 + q.shift_x);
    x_end = std::min<int64>(q.w, 4 * (k.c0 + k.nc - 1) + q.shift_x + q.taps);
  }
  std::vector<Span> spans;
  if (x_begin >= x_end) return spans;
  for (int64 r = r_first; r <= r_last; ++r) {
    const int64 n = r / t.th, y0 = std::max<int64>(0, 4 * (r % t.th) + q.shift_y),
                y1 = std::min<int64>(q.h, 4 * (r % t.th) + q.shift_y + q.taps);
    for (int64 y = y0; y < y1; ++y) {
      const Span sp{n, y * q.w + x_begin, y * q.w + x_end};
      if (!spans.empty() && spans.back().n == n && spans.back().end >= sp.begin)
        spans.back().end = std::max(spans.back().end, sp.end);
      else
        spans.push_back(sp);
    }
  }
  return spans;
}

// How many channels ahead the planes are prefetched.
constexpr int64 kPrefetchAhead = 2;

// Prefetches the spans of the planes at plane(n) for every span's sample n.
template <class PlaneOf>
void prefetch_spans(const std::vector<Span>& spans, PlaneOf&& plane) {
  for (const Span& sp : spans) {
    const float* base = plane(sp.n);
    for (int64 e = sp.begin; e < sp.end; e += 16) __builtin_prefetch(base + e);
    __builtin_prefetch(base + sp.end - 1);
  }
}

// The distance between the 36 planes of V or M, `rows` rows of t.stride floats: a multiple of
// 4 KiB plus one cache line, so that the 36 elements of one tile, which every transform reads or
// writes together, fall in 36 different L1 sets (a multiple of 4 KiB put them all in one set).
int64 xi_stride(int64 rows, const Tiling& t) {
  return round_up(checked::mul(rows, t.stride, "winograd", "the workspace"), 1024) + 16;
}

// V [36][ci][stride] (planes xs apart) of one block and group: the input transform of every
// channel, the padded tiles past the block set to zero (the weight gradient sums over them).
void transform_inputs(const Path& path, const float* src, const Pass& p, const Tiling& t,
                      const Block& k, bool mapped, int64 grp, float* v, int64 xs) {
  const int64 plane = p.hi * p.wi;
  const std::vector<Run> runs = make_runs(t, k, input_plane(p));
  const std::vector<Span> spans = block_spans(t, k, input_plane(p));
  const auto plane_of = [&](int64 c) {
    return [&, c](int64 n) { return src + ((n * p.groups + grp) * p.ci + c) * plane; };
  };
  for (int64 c = 0; c < std::min<int64>(kPrefetchAhead, p.ci); ++c)
    prefetch_spans(spans, plane_of(c));
  for (int64 c = 0; c < p.ci; ++c) {
    if (c + kPrefetchAhead < p.ci) prefetch_spans(spans, plane_of(c + kPrefetchAhead));
    for (const Run& run : runs) {
      const float* in = src + ((run.n * p.groups + grp) * p.ci + c) * plane;
      float* dst = v + c * t.stride + run.local;
      if (mapped)
        path.input_gather(in, run.map, p.wi, dst, xs);
      else
        path.input_transform(in, p.hi, p.wi, run.row, dst, xs);
    }
  }
  const int64 used = k.tiles(), pad = k.padded();
  for (int64 xi = 0; xi < kXi; ++xi)
    for (int64 c = 0; c < p.ci; ++c) {
      float* row = v + xi * xs + c * t.stride;
      std::fill(row + used, row + pad, 0.0f);
    }
}

// Forward-type pass: u is [groups][36][kp][ci] (rows past co zero), bias [groups * co] or null.
void run_pass(const Path& path, const float* src, const float* u, int64 kp, const float* bias,
              float* dst, const Pass& p) {
  const bool mapped = lane_mapped(p, input_plane(p), output_plane(p));
  const Tiling t = make_tiling(p, mapped, kXi * (p.ci + kp), kp * p.ci);
  // With fewer (group, block) pairs than planned threads (batch-1 inference on a small plane is
  // one block), each pair's output channels are cut into chunks of whole micro-kernel row panels,
  // about two per thread, each task transforming its block's inputs itself: the input transform
  // is a small part of a block's work next to its 36 GEMMs. Every output value is still one GEMM
  // row's sum in the same order, whatever the cut.
  const int64 pairs = checked::mul(p.groups, t.blocks(), "winograd", "the tasks");
  const int64 panels = kp / path.mr;
  const int64 chunks =
      pairs >= plan_threads() ? 1 : std::min(panels, ceil_div(2 * plan_threads(), pairs));
  const int64 chunk_rows = ceil_div(panels, chunks) * path.mr;
  const int64 tasks = pairs * chunks;
  // The reduction over input channels in equal slices of at most kPanelBytes of a V column panel
  // (its rows are a tile stride apart, each nr floats).
  const int64 kslice =
      ceil_div(p.ci, ceil_div(p.ci, std::max<int64>(1, kPanelBytes / (4 * path.nr))));
  const int64 vxs = xi_stride(p.ci, t), mxs = xi_stride(kp, t);
  const int64 v_size = checked::mul(kXi, vxs, "winograd", "the workspace");
  const int64 m_size = checked::mul(kXi, mxs, "winograd", "the workspace");
  const int64 out_plane = p.ho * p.wo;
#pragma omp parallel num_threads(run_threads(tasks)) if (tasks > 1)
  {
    // The thread's reusable workspace (cpu/gemm_driver.h; nothing here runs the GEMM driver).
    float* v = gemm_workspace<float>(GemmBuffer::Extra, v_size);
    float* m = gemm_workspace<float>(GemmBuffer::Input, m_size);
#pragma omp for schedule(dynamic)
    for (int64 task = 0; task < tasks; ++task) {
      const int64 pair = task / chunks, i0 = task % chunks * chunk_rows;
      const int64 i1 = std::min(kp, i0 + chunk_rows);
      if (i0 >= i1) continue;
      const int64 grp = pair / t.blocks();
      const Block k = block_of(t, pair % t.blocks());
      transform_inputs(path, src, p, t, k, mapped, grp, v, vxs);
      const int64 cols = k.padded();
      const float* ug = u + grp * kXi * kp * p.ci;
      for (int64 xi = 0; xi < kXi; ++xi) {
        const float* uxi = ug + xi * kp * p.ci;
        const float* vxi = v + xi * vxs;
        float* mxi = m + xi * mxs;
        // One column panel of V_xi (a slice of its C_g rows by nr tiles) stays in L1 while every
        // row panel of U_xi streams past it from L2.
        for (int64 c0 = 0; c0 < p.ci; c0 += kslice) {
          const int64 kc = std::min(kslice, p.ci - c0);
          for (int64 j = 0; j < cols; j += path.nr)
            for (int64 i = i0; i < i1; i += path.mr)
              path.kernel(kc, uxi + i * p.ci + c0, p.ci, vxi + c0 * t.stride + j, t.stride,
                          mxi + i * t.stride + j, t.stride, c0 > 0);
        }
      }
      const std::vector<Run> runs = make_runs(t, k, output_plane(p));
      for (int64 o = i0; o < std::min(i1, p.co); ++o) {
        const float b = bias ? bias[grp * p.co + o] : 0.0f;
        for (const Run& run : runs) {
          float* out = dst + ((run.n * p.groups + grp) * p.co + o) * out_plane;
          const float* src_m = m + o * t.stride + run.local;
          if (mapped)
            path.output_scatter(src_m, mxs, out, run.map, p.wo, b);
          else
            path.output_transform(src_m, mxs, out, p.ho, p.wo, run.row, b);
        }
      }
    }
  }
}

// Transformed weights [groups][36][kp][cols] of a pass with `rows` output and `cols` input
// channels per group (rows past `rows` zero). Forward: w [groups * rows, cols, 3, 3]. Data
// gradient (transpose): w [groups * cols, rows, 3, 3], swapped in channels and flipped in space.
// Kept in the calling thread's GEMM workspace B (the passes' threads use the other buffers).
const float* transform_weights(const Path& path, const float* w, int64 groups, int64 rows,
                               int64 cols, int64 kp, bool transpose) {
  const int64 size = checked::mul(checked::mul(groups * kXi, kp, "winograd", "the weights"), cols,
                                  "winograd", "the weights");
  float* u = gemm_workspace<float>(GemmBuffer::B, size);
  for (int64 gx = 0; gx < groups * kXi; ++gx)  // rows past `rows` are zero
    std::fill(u + (gx * kp + rows) * cols, u + (gx + 1) * kp * cols, 0.0f);
  // Runs of 16 input channels c of one output channel r: u[grp][xi][r][c .. c + 15] contiguous.
  const int64 chunks = (cols + kLanes - 1) / kLanes, tasks = groups * rows * chunks;
#pragma omp parallel for schedule(static) if (tasks >= 256)
  for (int64 q = 0; q < tasks; ++q) {
    const int64 grp = q / (rows * chunks), r = q / chunks % rows, c = q % chunks * kLanes;
    const int n = static_cast<int>(std::min<int64>(kLanes, cols - c));
    // Forward: w[grp * rows + r][c]; data gradient: w[grp * cols + c][r] flipped.
    const float* g =
        transpose ? w + ((grp * cols + c) * rows + r) * 9 : w + ((grp * rows + r) * cols + c) * 9;
    path.weight_transform(g, transpose ? rows * 9 : 9, n, transpose,
                          u + (grp * kXi * kp + r) * cols + c, kp * cols);
  }
  return u;
}

}  // namespace

const MicroKernel& micro_kernel(Isa isa) {
  static const MicroKernel avx512{kAvx512.mr, kAvx512.nr, kAvx512.kernel, &kernel_avx512<1>,
                                  kAvx512.transpose};
  static const MicroKernel avx2{kAvx2.mr, kAvx2.nr, kAvx2.kernel, &kernel_avx2<1>, kAvx2.transpose};
  static const MicroKernel portable{kPortable.mr, kPortable.nr, kPortable.kernel,
                                    &kernel_portable<1>, kPortable.transpose};
  switch (isa) {
    case Isa::avx512:
      return avx512;
    case Isa::avx2:
      return avx2;
    default:
      return portable;
  }
}

bool applies(const ConvGeometry& g) {
  if (g.spatial() != 2) return false;
  for (int d = 0; d < 2; ++d) {
    if (g.kernel[d] != 3 || g.stride[d] != 1 || g.dilation[d] != 1 || g.input_dilation[d] != 1)
      return false;
    const int64 pad_hi = g.out[d] - g.in[d] - g.pad_lo[d] + 2;
    if (g.pad_lo[d] < 0 || g.pad_lo[d] > 2 || pad_hi < 0 || pad_hi > 2) return false;
    if (g.out[d] < 1 || g.in[d] < 1) return false;
  }
  if (g.batch < 1 || g.groups < 1) return false;
  // Measured against the GEMM paths (one thread, float32, AVX-512; docs/architecture.md): the
  // transforms cost per input and per output channel and the GEMMs save per channel pair, so below
  // 32 channels per group on either side the saving does not pay for them (16 -> 16 ran 0.6x,
  // 24 -> 24 1.0x, 32 -> 32 1.4x, 64 -> 64 2.8x on 56x56 forward). And the tiles must not waste
  // much of the 4x fewer multiplications: direct 9 Ho Wo against 36 per 4x4 tile, kept at 2.5x
  // or more (5x5 and 9x9 outputs fall short).
  const int64 tiles = ceil_div(g.out[0], 4) * ceil_div(g.out[1], 4);
  return g.group_channels() >= 32 && g.group_out_channels() >= 32 &&
         g.out[0] * g.out[1] >= 10 * tiles;
}

void forward(const float* x, const float* w, const float* b, float* y, const ConvGeometry& g) {
  const Path& path = path_for(isa());
  Pass p;
  p.batch = g.batch;
  p.groups = g.groups;
  p.ci = g.group_channels();
  p.co = g.group_out_channels();
  p.hi = g.in[0];
  p.wi = g.in[1];
  p.ho = g.out[0];
  p.wo = g.out[1];
  p.ph = g.pad_lo[0];
  p.pw = g.pad_lo[1];
  const int64 kp = round_up(p.co, path.mr);
  const float* u = transform_weights(path, w, p.groups, p.co, p.ci, kp, false);
  run_pass(path, x, u, kp, b, y, p);
}

void backward_data(const float* dy, const float* w, float* dx, const ConvGeometry& g) {
  const Path& path = path_for(isa());
  // dx = conv(dy, w flipped and transposed), padding 2 - pad_lo low (pad_hi follows from sizes).
  Pass p;
  p.batch = g.batch;
  p.groups = g.groups;
  p.ci = g.group_out_channels();
  p.co = g.group_channels();
  p.hi = g.out[0];
  p.wi = g.out[1];
  p.ho = g.in[0];
  p.wo = g.in[1];
  p.ph = 2 - g.pad_lo[0];
  p.pw = 2 - g.pad_lo[1];
  const int64 kp = round_up(p.co, path.mr);
  const float* u = transform_weights(path, w, p.groups, p.co, p.ci, kp, true);
  run_pass(path, dy, u, kp, nullptr, dx, p);
}

void backward_weight(const float* dy, const float* x, float* dw, const ConvGeometry& g) {
  const Path& path = path_for(isa());
  Pass p;
  p.batch = g.batch;
  p.groups = g.groups;
  p.ci = g.group_channels();
  p.co = g.group_out_channels();
  p.hi = g.in[0];
  p.wi = g.in[1];
  p.ho = g.out[0];
  p.wo = g.out[1];
  p.ph = g.pad_lo[0];
  p.pw = g.pad_lo[1];
  const int64 kp = round_up(p.co, path.mr), cp = round_up(p.ci, path.nr);
  const bool mapped = lane_mapped(p, input_plane(p), output_plane(p));
  const Tiling t = make_tiling(p, mapped, kXi * (2 * p.ci + kp), kp * p.ci);
  const int64 tasks = checked::mul(p.groups, t.blocks(), "winograd", "the tasks");
  const int64 vxs = xi_stride(p.ci, t), mxs = xi_stride(kp, t);
  const int64 v_size = checked::mul(kXi, vxs, "winograd", "the workspace");
  const int64 vt_size = checked::mul(kXi * cp, t.stride, "winograd", "the workspace");
  const int64 m_size = checked::mul(kXi, mxs, "winograd", "the workspace");
  // dU [groups][36][kp][cp], its planes apart as V's and M's (xi_stride).
  const int64 sxs = round_up(checked::mul(kp, cp, "winograd", "the workspace"), 1024) + 16;
  const int64 s_size = checked::mul(p.groups * kXi, sxs, "winograd", "the workspace");
  const int64 w_size = p.groups * p.co * p.ci * 9;
  // Tasks are cut into `used` contiguous parts (cpu/parallel.h): each sums its tasks in order into
  // its own dU and dw; the parts' dw are added in part order.
  const int used = static_cast<int>(std::clamp<int64>(tasks, 1, plan_threads()));
  // Every element of a part's dw is written by its adjoint below.
  const std::unique_ptr<float[]> partial(new float[static_cast<std::size_t>(
      checked::mul(std::max(used - 1, 0), w_size, "winograd", "the workspace"))]);
  const int64 out_plane = p.ho * p.wo;
#pragma omp parallel num_threads(run_threads(used)) if (used > 1)
  {
    // V, V^T, dy's transform and dU in the thread's reusable workspace (cpu/gemm_driver.h;
    // nothing here runs the GEMM driver).
    float* v = gemm_workspace<float>(GemmBuffer::Extra, v_size);
    float* m = gemm_workspace<float>(GemmBuffer::Input, m_size);
    float* vt = gemm_workspace<float>(GemmBuffer::A, vt_size);
    std::fill_n(vt, vt_size, 0.0f);  // channels past ci stay zero
    float* s = gemm_workspace<float>(GemmBuffer::B, s_size);
#pragma omp for schedule(dynamic)
    for (int part = 0; part < used; ++part) {
      // A group's dU is written by the part's first block of that group, then accumulated.
      std::vector<char> touched(static_cast<std::size_t>(p.groups), 0);
      const int64 first = part_begin(tasks, used, part), last = part_begin(tasks, used, part + 1);
      for (int64 task = first; task < last; ++task) {
        const int64 grp = task / t.blocks();
        const bool accumulate = touched[static_cast<std::size_t>(grp)] != 0;
        touched[static_cast<std::size_t>(grp)] = 1;
        const Block k = block_of(t, task % t.blocks());
        const int64 cols = k.padded();
        transform_inputs(path, x, p, t, k, mapped, grp, v, vxs);
        for (int64 xi = 0; xi < kXi; ++xi)
          path.transpose(v + xi * vxs, t.stride, p.ci, cols, vt + xi * cols * cp, cp);
        const std::vector<Run> runs = make_runs(t, k, output_plane(p));
        const std::vector<Span> spans = block_spans(t, k, output_plane(p));
        const auto dy_of = [&](int64 o) {
          return [&, o](int64 n) { return dy + ((n * p.groups + grp) * p.co + o) * out_plane; };
        };
        for (int64 o = 0; o < std::min<int64>(kPrefetchAhead, p.co); ++o)
          prefetch_spans(spans, dy_of(o));
        for (int64 o = 0; o < p.co; ++o) {
          if (o + kPrefetchAhead < p.co) prefetch_spans(spans, dy_of(o + kPrefetchAhead));
          for (const Run& run : runs) {
            const float* in = dy + ((run.n * p.groups + grp) * p.co + o) * out_plane;
            float* dst = m + o * t.stride + run.local;
            if (mapped)
              path.grad_gather(in, run.map, p.wo, dst, mxs);
            else
              path.grad_transform(in, p.ho, p.wo, run.row, dst, mxs);
          }
        }
        // Padded tiles past the block, and rows past co, are zero in dy's transform.
        for (int64 xi = 0; xi < kXi; ++xi)
          for (int64 o = 0; o < kp; ++o) {
            float* row = m + xi * mxs + o * t.stride;
            std::fill(row + (o < p.co ? k.tiles() : 0), row + cols, 0.0f);
          }
        float* sg = s + grp * kXi * sxs;
        for (int64 xi = 0; xi < kXi; ++xi)
          for (int64 i = 0; i < kp; i += path.mr)
            for (int64 j = 0; j < cp; j += path.nr)
              path.kernel(cols, m + xi * mxs + i * t.stride, t.stride, vt + xi * cols * cp + j, cp,
                          sg + xi * sxs + i * cp + j, cp, accumulate);
      }
      part_weights(s, kXi, sxs, cp, touched, p.co, p.ci, 9, path.weight_adjoint,
                   part == 0 ? dw : partial.get() + (part - 1) * w_size);
    }
  }
  add_parts(dw, partial.get(), used, w_size);
}

}  // namespace convtape::cpu::winograd
