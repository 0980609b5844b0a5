// Winograd convolution of stride-2 3x3 2-D convolutions by phases on CPU, float32, NCHW
// (cpu/conv_winograd_s2.h).
//
// Along one axis, output o of a stride-2 3x3 correlation reads input 2 o + t (t = 0, 1, 2, from
// the tile's origin): taps 0 and 2 read the even positions e_j = z_{2j}, a stride-1 2-tap
// correlation h = (g_0, g_2) computed as F(5, 2) (the points of F(4, 3): B^T is the same), and
// tap 1 reads the odd positions z_{2j+1}, times g_1. For 5 outputs from 11 inputs z_0 .. z_10:
//   y = A5^T [(G2 h) . (B^T e)] + g_1 (z_1, z_3, .., z_9)
//   G2 = [ 1/4    0  ]   A5^T = [1 1  1 1  1 0]
//        [-1/6 -1/6  ]          [0 1 -1 2 -2 0]
//        [-1/6  1/6  ]          [0 1  1 4  4 0]
//        [1/24  1/12 ]          [0 1 -1 8 -8 0]
//        [1/24 -1/12 ]          [0 1  1 16 16 1]
//        [ 0     1   ]
// i.e. 11 transformed points per axis: points 0..5 are B^T of the even inputs, points 6..10 the
// odd inputs as they are; the 3 taps become 11 weights, of which 7 differ ("axis classes": the
// six G2 rows, and the middle tap for every odd point). In 2-D a 5x5 output tile reads an 11x11
// input tile and takes 121 products per channel pair, against 225 multiplications direct; the
// 121 points fall into 7 x 7 = 49 classes that share one transformed weight, so that per block of
// tiles the products are 49 GEMMs over channels, class q's B having one column slot of tiles per
// point of the class (1, 5 or 25 points):
//   M_q[K_g x n_q T] = U_q[K_g x C_g] V_q[C_g x n_q T]
// and y = A11^T M A11 per tile, A11^T = [A5^T | I5]. The weight gradient is the adjoint with the
// same transforms: dU_q = sum over tiles and the class's points of (A11 dy A11^T) V^T, and dw =
// the adjoint of the weight transform.
//
// Layout and blocking as in cpu/conv_winograd.cpp, lane-mapped only: a task is one group and one
// block of T consecutive tiles of the (sample, tile row, tile column) order (T a multiple of 32,
// V and M within 1 MiB, or, once the 49 U_q outgrow that, up to 128 tiles so that U is read from
// L3 less often); the transforms gather 16 tiles per step, one per SIMD lane. A block's V holds
// class after class, each [C_g][n_q][T] (tiles contiguous), M the same over output channels.
// Workspace: V and M (and V^T, dy's transform and dU) in each thread's GEMM buffers, U in the
// calling thread's, bounded by 121 (2 C_g + K_g) T + 49 (K_g + groups C_g K_g) floats.
//
// Determinism: every output of forward is one GEMM sum over channels in index order, whatever the
// blocking and thread count; backward_weight sums over blocks in parts as cpu/conv_winograd.cpp
// does (parts of plan_threads(), added in part order).
//
// ISA paths: the transforms are lane loops compiled under function-level target attributes per
// path (AVX-512, AVX2 + FMA, baseline); the micro-kernels are cpu/winograd_common.h's.
#include "cpu/conv_winograd_s2.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "core/checked.h"
#include "cpu/gemm_driver.h"
#include "cpu/isa.h"
#include "cpu/parallel.h"
#include "cpu/winograd_common.h"

namespace convtape::cpu::winograd_s2 {

namespace {

using int64 = std::int64_t;

constexpr int kLanes = 16;     // tiles per transform step
constexpr int kAlpha = 11;     // transformed points per axis (and input taps per tile)
constexpr int kPoints = 121;   // transformed points per tile
constexpr int kAxis = 7;       // axis classes: six even points, one for the odd points
constexpr int kClasses = 49;   // kAxis^2 distinct transformed weights
constexpr int kTile = 5;       // outputs per tile edge
constexpr int kStep = 10;      // input rows (columns) between tiles
constexpr int64 kAlign = 32;   // a block's tiles, padded to a multiple of every NR
constexpr int64 kBlockBytes = 1 << 20;
constexpr int64 kReuseTiles = 128;
constexpr int64 kPanelBytes = 24576;  // one column panel of V_q, kept in L1

// Tap coefficients of each axis class: row (column) r of the kernel enters the class with weight
// kTap[class][r] (G2's rows on taps 0 and 2; the odd class takes tap 1).
constexpr float kTap[kAxis][3] = {{1.0f / 4, 0, 0},           {-1.0f / 6, 0, -1.0f / 6},
                                  {-1.0f / 6, 0, 1.0f / 6},   {1.0f / 24, 0, 1.0f / 12},
                                  {1.0f / 24, 0, -1.0f / 12}, {0, 0, 1},
                                  {0, 1, 0}};

constexpr int axis_class(int a) {
  return a < 6 ? a : 6;
}
constexpr int axis_points(int c) {
  return c < 6 ? 1 : 5;
}

// Where point xi = 11 a + b lies: its class, its slot in the class, and the classes' first slots
// (a class's slots are consecutive: slot index over all classes = first[q] + sub).
struct PointTable {
  int cls[kPoints] = {}, sub[kPoints] = {}, count[kClasses] = {}, first[kClasses + 1] = {};
  constexpr PointTable() {
    for (int q = 0; q < kClasses; ++q) count[q] = axis_points(q / kAxis) * axis_points(q % kAxis);
    for (int q = 0; q < kClasses; ++q) first[q + 1] = first[q] + count[q];
    for (int a = 0; a < kAlpha; ++a)
      for (int b = 0; b < kAlpha; ++b) {
        const int ca = axis_class(a), cb = axis_class(b);
        cls[a * kAlpha + b] = ca * kAxis + cb;
        sub[a * kAlpha + b] = (a - ca) * axis_points(cb) + (b - cb);
      }
  }
};
constexpr PointTable kTable;

// ---------------------------------------------------------------------------------------------
// Transforms over 16 lanes, written once and compiled per ISA by the wrappers below.

// 16 tiles anywhere in a batch of planes: lane l's tile origin is base + off[l]; bit l of rows[i]
// (cols[j]) is set when row i (column j) of lane l's tile lies in its plane. Lanes past the run
// have no bits set (read as zeros, never written).
struct Lanes {
  std::int32_t off[kLanes];
  std::uint32_t rows[kAlpha], cols[kAlpha];
};

[[gnu::always_inline]] inline bool lane_in(const Lanes& m, int i, int j, int l) {
  return ((m.rows[i] & m.cols[j]) >> l) & 1u;
}

// y = A5^T m (5 of 6 values) plus the odd points' values o.
#define CT_S2_OUT_1D(m0, m1, m2, m3, m4, m5, r0, r1, r2, r3, r4) \
  do {                                                           \
    const float s12 = m1 + m2, d12 = m1 - m2;                    \
    const float s34 = m3 + m4, d34 = m3 - m4;                    \
    r0 = m0 + s12 + s34;                                         \
    r1 = d12 + 2.0f * d34;                                       \
    r2 = s12 + 4.0f * s34;                                       \
    r3 = d12 + 8.0f * d34;                                       \
    r4 = s12 + 16.0f * s34 + m5;                                 \
  } while (0)

// z = A5 d: the 6 even points of 5 values (its odd points are d itself).
#define CT_S2_GRAD_1D(d0, d1, d2, d3, d4, r0, r1, r2, r3, r4, r5) \
  do {                                                            \
    const float s02 = d0 + d2 + d4 * 1.0f, s13 = d1 + d3;         \
    const float q02 = d0 + 4.0f * d2 + 16.0f * d4;                \
    const float q13 = 2.0f * d1 + 8.0f * d3;                      \
    r0 = d0;                                                      \
    r1 = s02 + s13;                                               \
    r2 = s02 - s13;                                               \
    r3 = q02 + q13;                                               \
    r4 = q02 - q13;                                               \
    r5 = d4;                                                      \
  } while (0)

// V = B11^T d B11 for 16 gathered 11x11 tiles; point xi of lane l to dst[off[xi] + l].
[[gnu::always_inline]] inline void input_impl(const float (&d)[kAlpha][kAlpha][kLanes], float* dst,
                                              const int64* off) {
  alignas(64) float t[kAlpha][kAlpha][kLanes];  // t[i][b]: row i, point b along the columns
  for (int i = 0; i < kAlpha; ++i) {
    for (int l = 0; l < kLanes; ++l)
      CT_WINO_IN_1D(d[i][0][l], d[i][2][l], d[i][4][l], d[i][6][l], d[i][8][l], d[i][10][l],
                    t[i][0][l], t[i][1][l], t[i][2][l], t[i][3][l], t[i][4][l], t[i][5][l]);
    for (int k = 0; k < 5; ++k) std::memcpy(t[i][6 + k], d[i][2 * k + 1], sizeof(t[i][6 + k]));
  }
  for (int b = 0; b < kAlpha; ++b) {
    alignas(64) float o[6][kLanes];
    for (int l = 0; l < kLanes; ++l)
      CT_WINO_IN_1D(t[0][b][l], t[2][b][l], t[4][b][l], t[6][b][l], t[8][b][l], t[10][b][l],
                    o[0][l], o[1][l], o[2][l], o[3][l], o[4][l], o[5][l]);
    for (int a = 0; a < 6; ++a) std::memcpy(dst + off[a * kAlpha + b], o[a], sizeof(o[a]));
    for (int k = 0; k < 5; ++k)
      std::memcpy(dst + off[(6 + k) * kAlpha + b], t[2 * k + 1][b], sizeof(t[0][0]));
  }
}

// y = A11^T m A11 (+ bias) for 16 tiles, point xi of lane l read at src[off[xi] + l]; the 5x5
// output tiles scattered to base + off[l] (rows w apart) where their bits are set.
[[gnu::always_inline]] inline void output_impl(const float* src, const int64* off, float bias,
                                               float (&y)[kTile][kTile][kLanes]) {
  alignas(64) float t[kAlpha][kTile][kLanes];  // t[a][j]: A11^T along the columns of row a
  for (int a = 0; a < kAlpha; ++a) {
    const float* p[kAlpha];
    for (int b = 0; b < kAlpha; ++b) p[b] = src + off[a * kAlpha + b];
    for (int l = 0; l < kLanes; ++l) {
      float r0, r1, r2, r3, r4;
      CT_S2_OUT_1D(p[0][l], p[1][l], p[2][l], p[3][l], p[4][l], p[5][l], r0, r1, r2, r3, r4);
      t[a][0][l] = r0 + p[6][l];
      t[a][1][l] = r1 + p[7][l];
      t[a][2][l] = r2 + p[8][l];
      t[a][3][l] = r3 + p[9][l];
      t[a][4][l] = r4 + p[10][l];
    }
  }
  for (int j = 0; j < kTile; ++j)
    for (int l = 0; l < kLanes; ++l) {
      float r0, r1, r2, r3, r4;
      CT_S2_OUT_1D(t[0][j][l], t[1][j][l], t[2][j][l], t[3][j][l], t[4][j][l], t[5][j][l], r0, r1,
                   r2, r3, r4);
      y[0][j][l] = r0 + t[6][j][l] + bias;
      y[1][j][l] = r1 + t[7][j][l] + bias;
      y[2][j][l] = r2 + t[8][j][l] + bias;
      y[3][j][l] = r3 + t[9][j][l] + bias;
      y[4][j][l] = r4 + t[10][j][l] + bias;
    }
}

// Lane gathers and scatters of n x n tiles: d[i][j][l] = element (i, j) of lane l's tile, zero
// where its bits are clear; the AVX-512 path with masked gather and scatter instructions, AVX2
// with two masked 8-lane gathers, the baseline element by element.
template <int N>
[[gnu::always_inline]] inline void gather_lanes(const float* base, const Lanes& m, int64 w,
                                                float (&d)[N][N][kLanes]) {
  for (int i = 0; i < N; ++i)
    for (int j = 0; j < N; ++j)
      for (int l = 0; l < kLanes; ++l)
        d[i][j][l] = lane_in(m, i, j, l) ? base[m.off[l] + i * w + j] : 0.0f;
}

template <int N>
[[gnu::always_inline]] inline void scatter_lanes(const float (&d)[N][N][kLanes], float* base,
                                                 const Lanes& m, int64 w) {
  for (int i = 0; i < N; ++i)
    for (int j = 0; j < N; ++j)
      for (int l = 0; l < kLanes; ++l)
        if (lane_in(m, i, j, l)) base[m.off[l] + i * w + j] = d[i][j][l];
}

template <int N>
__attribute__((target("avx512f"), always_inline)) inline void gather_lanes_avx512(
    const float* base, const Lanes& m, int64 w, float (&d)[N][N][kLanes]) {
  const __m512i off = _mm512_loadu_si512(m.off);
  for (int i = 0; i < N; ++i)
    for (int j = 0; j < N; ++j) {
      const __m512i idx = _mm512_add_epi32(off, _mm512_set1_epi32(static_cast<int>(i * w + j)));
      const __mmask16 on = static_cast<__mmask16>(m.rows[i] & m.cols[j]);
      _mm512_store_ps(d[i][j], _mm512_mask_i32gather_ps(_mm512_setzero_ps(), on, idx, base, 4));
    }
}

template <int N>
__attribute__((target("avx512f"), always_inline)) inline void scatter_lanes_avx512(
    const float (&d)[N][N][kLanes], float* base, const Lanes& m, int64 w) {
  const __m512i off = _mm512_loadu_si512(m.off);
  for (int i = 0; i < N; ++i)
    for (int j = 0; j < N; ++j) {
      const __m512i idx = _mm512_add_epi32(off, _mm512_set1_epi32(static_cast<int>(i * w + j)));
      const __mmask16 on = static_cast<__mmask16>(m.rows[i] & m.cols[j]);
      _mm512_mask_i32scatter_ps(base, on, idx, _mm512_load_ps(d[i][j]), 4);
    }
}

template <int N>
__attribute__((target("avx2,fma"), always_inline)) inline void gather_lanes_avx2(
    const float* base, const Lanes& m, int64 w, float (&d)[N][N][kLanes]) {
  const __m256i select = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  for (int h = 0; h < 2; ++h) {
    const __m256i off = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(m.off + 8 * h));
    for (int i = 0; i < N; ++i)
      for (int j = 0; j < N; ++j) {
        const __m256i idx =
            _mm256_add_epi32(off, _mm256_set1_epi32(static_cast<int>(i * w + j)));
        const std::uint32_t bits = (m.rows[i] & m.cols[j]) >> (8 * h);
        const __m256i on = _mm256_cmpeq_epi32(
            _mm256_and_si256(_mm256_set1_epi32(static_cast<int>(bits)), select), select);
        _mm256_store_ps(d[i][j] + 8 * h, _mm256_mask_i32gather_ps(_mm256_setzero_ps(), base, idx,
                                                                  _mm256_castsi256_ps(on), 4));
      }
  }
}

// Z = A11 dy A11^T for 16 gathered 5x5 tiles of dy; point xi of lane l to dst[off[xi] + l].
[[gnu::always_inline]] inline void grad_impl(const float (&d)[kTile][kTile][kLanes], float* dst,
                                             const int64* off) {
  alignas(64) float t[kTile][kAlpha][kLanes];  // t[i][b]: row i, point b along the columns
  for (int i = 0; i < kTile; ++i) {
    for (int l = 0; l < kLanes; ++l)
      CT_S2_GRAD_1D(d[i][0][l], d[i][1][l], d[i][2][l], d[i][3][l], d[i][4][l], t[i][0][l],
                    t[i][1][l], t[i][2][l], t[i][3][l], t[i][4][l], t[i][5][l]);
    for (int k = 0; k < 5; ++k) std::memcpy(t[i][6 + k], d[i][k], sizeof(t[i][6 + k]));
  }
  for (int b = 0; b < kAlpha; ++b) {
    alignas(64) float o[6][kLanes];
    for (int l = 0; l < kLanes; ++l)
      CT_S2_GRAD_1D(t[0][b][l], t[1][b][l], t[2][b][l], t[3][b][l], t[4][b][l], o[0][l], o[1][l],
                    o[2][l], o[3][l], o[4][l], o[5][l]);
    for (int a = 0; a < 6; ++a) std::memcpy(dst + off[a * kAlpha + b], o[a], sizeof(o[a]));
    for (int k = 0; k < 5; ++k)
      std::memcpy(dst + off[(6 + k) * kAlpha + b], t[k][b], sizeof(t[0][0]));
  }
}

// u[q * us + l] = the class-q weight of the n <= 16 kernels g + 9 l (3x3 row-major).
[[gnu::always_inline]] inline void weight_impl(const float* g, int n, float* u, int64 us) {
  alignas(64) float gk[9][kLanes];
  for (int e = 0; e < 9; ++e)
    for (int l = 0; l < kLanes; ++l) gk[e][l] = l < n ? g[9 * l + e] : 0.0f;
  alignas(64) float t[kAxis][3][kLanes];  // t[ca][s]: the rows combined, column s
  for (int ca = 0; ca < kAxis; ++ca)
    for (int s = 0; s < 3; ++s)
      for (int l = 0; l < kLanes; ++l)
        t[ca][s][l] = kTap[ca][0] * gk[s][l] + kTap[ca][1] * gk[3 + s][l] +
                      kTap[ca][2] * gk[6 + s][l];
  for (int ca = 0; ca < kAxis; ++ca)
    for (int cb = 0; cb < kAxis; ++cb) {
      alignas(64) float o[kLanes];
      for (int l = 0; l < kLanes; ++l)
        o[l] = t[ca][0][l] * kTap[cb][0] + t[ca][1][l] * kTap[cb][1] + t[ca][2][l] * kTap[cb][2];
      std::memcpy(u + (ca * kAxis + cb) * us, o, sizeof(float) * static_cast<std::size_t>(n));
    }
}

// dw_l = the adjoint of weight_impl for n <= 16 channel pairs: du_l's class q at du[q * xs + l]
// (16 readable lanes), dw_l written at dw + 9 l.
[[gnu::always_inline]] inline void adjoint_impl(const float* du, int64 xs, int n, float* dw) {
  alignas(64) float t[kAxis][3][kLanes];  // t[ca][s]: the column classes folded into column s
  for (int ca = 0; ca < kAxis; ++ca)
    for (int s = 0; s < 3; ++s)
      for (int l = 0; l < kLanes; ++l) {
        float v = 0;
        for (int cb = 0; cb < kAxis; ++cb) v += kTap[cb][s] * du[(ca * kAxis + cb) * xs + l];
        t[ca][s][l] = v;
      }
  alignas(64) float out[kLanes][9];
  for (int r = 0; r < 3; ++r)
    for (int s = 0; s < 3; ++s)
      for (int l = 0; l < kLanes; ++l) {
        float v = 0;
        for (int ca = 0; ca < kAxis; ++ca) v += kTap[ca][r] * t[ca][s][l];
        out[l][r * 3 + s] = v;
      }
  std::memcpy(dw, out, sizeof(float) * 9 * static_cast<std::size_t>(n));
}

struct Path {
  void (*input)(const float*, const Lanes&, int64, float*, const int64*);
  void (*output)(const float*, const int64*, float*, const Lanes&, int64, float);
  void (*grad)(const float*, const Lanes&, int64, float*, const int64*);
  void (*weight)(const float*, int, float*, int64);
  void (*adjoint)(const float*, int64, int, float*);
  const winograd::MicroKernel* gemm;
};

#define CT_S2_TRANSFORMS(SUFFIX, TARGET, GATHER, SCATTER)                                       \
  TARGET void input_##SUFFIX(const float* base, const Lanes& m, int64 w, float* dst,            \
                             const int64* off) {                                                \
    alignas(64) float d[kAlpha][kAlpha][kLanes];                                                \
    GATHER<kAlpha>(base, m, w, d);                                                              \
    input_impl(d, dst, off);                                                                    \
  }                                                                                             \
  TARGET void output_##SUFFIX(const float* src, const int64* off, float* base, const Lanes& m,  \
                              int64 w, float bias) {                                            \
    alignas(64) float y[kTile][kTile][kLanes];                                                  \
    output_impl(src, off, bias, y);                                                             \
    SCATTER<kTile>(y, base, m, w);                                                              \
  }                                                                                             \
  TARGET void grad_##SUFFIX(const float* base, const Lanes& m, int64 w, float* dst,             \
                            const int64* off) {                                                 \
    alignas(64) float d[kTile][kTile][kLanes];                                                  \
    GATHER<kTile>(base, m, w, d);                                                               \
    grad_impl(d, dst, off);                                                                     \
  }                                                                                             \
  TARGET void weight_##SUFFIX(const float* g, int n, float* u, int64 us) {                      \
    weight_impl(g, n, u, us);                                                                   \
  }                                                                                             \
  TARGET void adjoint_##SUFFIX(const float* du, int64 xs, int n, float* dw) {                   \
    adjoint_impl(du, xs, n, dw);                                                                \
  }

CT_S2_TRANSFORMS(avx512, __attribute__((target("avx512f,fma"))), gather_lanes_avx512,
                 scatter_lanes_avx512)
CT_S2_TRANSFORMS(avx2, __attribute__((target("avx2,fma"))), gather_lanes_avx2, scatter_lanes)
CT_S2_TRANSFORMS(portable, , gather_lanes, scatter_lanes)

#undef CT_S2_TRANSFORMS

Path path_for(Isa isa) {
  switch (isa) {
    case Isa::avx512:
      return {&input_avx512, &output_avx512, &grad_avx512, &weight_avx512, &adjoint_avx512,
              &winograd::micro_kernel(isa)};
    case Isa::avx2:
      return {&input_avx2, &output_avx2, &grad_avx2, &weight_avx2, &adjoint_avx2,
              &winograd::micro_kernel(isa)};
    default:
      return {&input_portable,  &output_portable, &grad_portable, &weight_portable,
              &adjoint_portable, &winograd::micro_kernel(isa)};
  }
}

int64 round_up(int64 a, int64 b) {
  return (a + b - 1) / b * b;
}
int64 ceil_div(int64 a, int64 b) {
  return a / b + (a % b != 0 ? 1 : 0);
}

// ---------------------------------------------------------------------------------------------
// The blocks of tiles.

// One convolution: x [N, groups * ci, hi, wi] -> y [N, groups * co, ho, wo], 5x5 output tile
// (ty, tx) reading the 11x11 input tile at (10 ty - ph, 10 tx - pw) (reads outside are zeros).
struct Pass {
  int64 batch = 0, groups = 1, ci = 0, co = 0, hi = 0, wi = 0, ho = 0, wo = 0, ph = 0, pw = 0;
  int64 th() const { return ceil_div(ho, kTile); }
  int64 tw() const { return ceil_div(wo, kTile); }
  int64 tiles() const { return checked::mul(batch, th() * tw(), "winograd_s2", "the tiles"); }
};

Pass pass_of(const ConvGeometry& g) {
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
  return p;
}

// Tiles per block: the fewest blocks, a multiple of plan_threads(), of about equal size (a
// multiple of 16) and at most `most` tiles, where `most` keeps V and M (per_tile floats a tile)
// within kBlockBytes or, when the 49 matrices U_q of `pair` floats outgrow that, is kReuseTiles
// so that U is streamed from L3 less often. Equal blocks in a multiple of the threads leave no
// thread idle at the end (a block's GEMM columns are padded to 16, not to the micro-kernel's
// width: a last half panel runs MicroKernel::half).
int64 block_tiles(int64 per_tile, int64 pair, int64 total) {
  int64 most = kBlockBytes / (4 * per_tile);
  if (4 * kClasses * pair > kBlockBytes) most = std::max(most, kReuseTiles);
  most = std::max<int64>(kAlign, most / kLanes * kLanes);
  const int64 threads = plan_threads();
  const int64 blocks = round_up(ceil_div(total, most), threads);
  return round_up(ceil_div(total, blocks), kLanes);
}

// The runs of 16 tiles of the block [first, first + count): each run's sample, first local tile,
// and lane maps of the input tiles (11x11, 10 apart) and output tiles (5x5, 5 apart).
struct Run {
  int64 n, local;
  Lanes in, out;
};

std::vector<Run> make_runs(const Pass& p, int64 first, int64 count) {
  const int64 th = p.th(), tw = p.tw();
  const int64 in_sample = p.groups * p.ci * p.hi * p.wi, out_sample = p.groups * p.co * p.ho * p.wo;
  std::vector<Run> runs;
  for (int64 f = 0; f < count; f += kLanes) {
    Run run{};
    run.local = f;
    for (int l = 0; l < kLanes && f + l < count; ++l) {
      const int64 tile = first + f + l, row = tile / tw, n = row / th, ty = row % th,
                  tx = tile % tw;
      if (l == 0) run.n = n;
      const int64 iy = kStep * ty - p.ph, ix = kStep * tx - p.pw;
      run.in.off[l] = static_cast<std::int32_t>((n - run.n) * in_sample + iy * p.wi + ix);
      for (int i = 0; i < kAlpha; ++i) {
        if (iy + i >= 0 && iy + i < p.hi) run.in.rows[i] |= 1u << l;
        if (ix + i >= 0 && ix + i < p.wi) run.in.cols[i] |= 1u << l;
      }
      const int64 oy = kTile * ty, ox = kTile * tx;
      run.out.off[l] = static_cast<std::int32_t>((n - run.n) * out_sample + oy * p.wo + ox);
      for (int i = 0; i < kTile; ++i) {
        if (oy + i < p.ho) run.out.rows[i] |= 1u << l;
        if (ox + i < p.wo) run.out.cols[i] |= 1u << l;
      }
    }
    runs.push_back(run);
  }
  return runs;
}

// The rows of one channel's plane that a block's tiles read, as (sample, first element, end)
// spans, prefetched kAhead channels before they are transformed (a block reads a few rows of
// every channel plane, too scattered for the hardware prefetcher).
struct Span {
  int64 n, begin, end;
};
constexpr int64 kAhead = 2;

std::vector<Span> block_spans(const Pass& p, int64 first, int64 count, bool input) {
  const int64 th = p.th(), tw = p.tw();
  const int64 h = input ? p.hi : p.ho, w = input ? p.wi : p.wo;
  const int64 step = input ? kStep : kTile, taps = input ? kAlpha : kTile;
  const int64 shift = input ? -p.ph : 0;
  std::vector<Span> spans;
  for (int64 r = first / tw; r <= (first + count - 1) / tw; ++r) {
    const int64 n = r / th, y0 = std::max<int64>(0, step * (r % th) + shift),
                y1 = std::min<int64>(h, step * (r % th) + shift + taps);
    if (y0 >= y1) continue;
    const Span sp{n, y0 * w, y1 * w};
    if (!spans.empty() && spans.back().n == n && spans.back().end >= sp.begin)
      spans.back().end = std::max(spans.back().end, sp.end);
    else
      spans.push_back(sp);
  }
  return spans;
}

// A block's transformed tiles over `rows` channels, `slot` tiles per point: row r (a channel)
// holds every point's slot, class after class (class q's points at columns first_q * slot ..
// (first_q + count_q) * slot), so that a GEMM over class q reads or writes columns
// class_at(q) .. + cols(q) of every row, ld() apart, and a transform of one channel touches one
// contiguous row.
struct Layout {
  int64 rows, slot;
  int64 ld() const { return kPoints * slot; }
  int64 class_at(int q) const { return kTable.first[q] * slot; }
  int64 cols(int q) const { return kTable.count[q] * slot; }
  // The offsets of every point's slot in row r.
  void offsets(int64 r, int64 (&off)[kPoints]) const {
    for (int xi = 0; xi < kPoints; ++xi)
      off[xi] = r * ld() + (kTable.first[kTable.cls[xi]] + kTable.sub[xi]) * slot;
  }
};

// Transforms `rows` channel planes of one group (plane(n, c)) of a block's runs into a block laid
// out as l (l.rows >= rows; rows past `rows` zeroed), the tiles past the block's last run zeroed
// up to the slot.
template <class PlaneOf, class Transform>
void transform_block(const std::vector<Run>& runs, const std::vector<Span>& spans, bool input,
                     int64 count, const Layout& l, int64 rows, PlaneOf&& plane,
                     Transform&& transform, float* v) {
  const auto prefetch = [&](int64 c) {
    for (const Span& sp : spans) {
      const float* base = plane(sp.n, c);
      for (int64 e = sp.begin; e < sp.end; e += 16) __builtin_prefetch(base + e);
      __builtin_prefetch(base + sp.end - 1);
    }
  };
  for (int64 c = 0; c < std::min(kAhead, rows); ++c) prefetch(c);
  int64 off[kPoints];
  for (int64 c = 0; c < rows; ++c) {
    if (c + kAhead < rows) prefetch(c + kAhead);
    l.offsets(c, off);
    for (const Run& run : runs)
      transform(plane(run.n, c), input ? run.in : run.out, v + run.local, off);
  }
  const int64 written = round_up(count, kLanes);
  for (int64 c = 0; c < l.rows; ++c) {
    const int64 from = c < rows ? written : 0;
    if (from >= l.slot) continue;
    l.offsets(c, off);
    for (int xi = 0; xi < kPoints; ++xi)
      std::fill(v + off[xi] + from, v + off[xi] + l.slot, 0.0f);
  }
}

// Transformed weights [groups][49][kp][ci] (rows past co zero), in the calling thread's GEMM
// workspace B (the passes' threads use the other buffers).
const float* transform_weights(const Path& path, const float* w, const Pass& p, int64 kp) {
  const int64 size = checked::mul(checked::mul(p.groups * kClasses, kp, "winograd_s2", "the weights"),
                                  p.ci, "winograd_s2", "the weights");
  float* u = gemm_workspace<float>(GemmBuffer::B, size);
  for (int64 gq = 0; gq < p.groups * kClasses; ++gq)
    std::fill(u + (gq * kp + p.co) * p.ci, u + (gq + 1) * kp * p.ci, 0.0f);
  const int64 chunks = ceil_div(p.ci, kLanes), tasks = p.groups * p.co * chunks;
#pragma omp parallel for schedule(static) if (tasks >= 256)
  for (int64 t = 0; t < tasks; ++t) {
    const int64 grp = t / (p.co * chunks), o = t / chunks % p.co, c = t % chunks * kLanes;
    const int n = static_cast<int>(std::min<int64>(kLanes, p.ci - c));
    path.weight(w + ((grp * p.co + o) * p.ci + c) * 9, n,
                u + (grp * kClasses * kp + o) * p.ci + c, kp * p.ci);
  }
  return u;
}

}  // namespace

bool applies(const ConvGeometry& g) {
  if (g.spatial() != 2) return false;
  for (int d = 0; d < 2; ++d) {
    if (g.kernel[d] != 3 || g.stride[d] != 2 || g.dilation[d] != 1 || g.input_dilation[d] != 1)
      return false;
    const int64 pad_hi = 2 * (g.out[d] - 1) + 3 - g.in[d] - g.pad_lo[d];
    if (g.pad_lo[d] < 0 || g.pad_lo[d] > 2 || pad_hi < -1 || pad_hi > 2) return false;
    if (g.out[d] < 1 || g.in[d] < 1) return false;
  }
  if (g.batch < 1 || g.groups < 1) return false;
  // Every lane offset of a run (at most 16 samples apart) must fit an int32.
  const auto fits = [](std::optional<int64> sample, int64 w) {
    if (!sample) return false;
    const auto span = checked::try_mul(kLanes + 1, *sample);
    return span && *span + 12 * w + 12 <= INT32_MAX;
  };
  if (!fits(checked::try_mul(g.channels, g.in_numel()), g.in[1]) ||
      !fits(checked::try_mul(g.out_channels, g.out_numel()), g.out[1]))
    return false;
  // Measured against the GEMM paths (cpu/conv_plan.cpp): the transforms cost per input and per
  // output channel and the GEMMs save per channel pair. The tiles must keep most of the 225 / 121
  // saving: 121 products per 5x5 tile against 9 per output, kept at 1.5x or more.
  const int64 tiles = ceil_div(g.out[0], kTile) * ceil_div(g.out[1], kTile);
  return g.group_channels() >= 32 && g.group_out_channels() >= 32 &&
         2 * 9 * g.out[0] * g.out[1] >= 3 * kPoints * tiles;
}

void forward(const float* x, const float* w, const float* b, float* y, const ConvGeometry& g) {
  const Path path = path_for(isa());
  const winograd::MicroKernel& mk = *path.gemm;
  const Pass p = pass_of(g);
  const int64 kp = round_up(p.co, mk.mr);
  const float* u = transform_weights(path, w, p, kp);
  const int64 total = p.tiles();
  const int64 per = block_tiles(kPoints * (p.ci + kp), kp * p.ci, total);
  const int64 blocks = ceil_div(total, per);
  // With fewer (group, block) pairs than planned threads, each pair's output channels are cut into
  // chunks of whole micro-kernel row panels, each task transforming its block's inputs itself.
  const int64 pairs = checked::mul(p.groups, blocks, "winograd_s2", "the tasks");
  const int64 panels = kp / mk.mr;
  const int64 chunks =
      pairs >= plan_threads() ? 1 : std::min(panels, ceil_div(2 * plan_threads(), pairs));
  const int64 chunk_rows = ceil_div(panels, chunks) * mk.mr;
  const int64 tasks = pairs * chunks;
  const int64 kslice = ceil_div(p.ci, ceil_div(p.ci, std::max<int64>(1, kPanelBytes / (4 * mk.nr))));
  const int64 v_size = checked::mul(kPoints * p.ci, per, "winograd_s2", "the workspace");
  const int64 m_size = checked::mul(kPoints * kp, per, "winograd_s2", "the workspace");
  const int64 in_plane = p.hi * p.wi, out_plane = p.ho * p.wo;
#pragma omp parallel num_threads(run_threads(tasks)) if (tasks > 1)
  {
    float* v = gemm_workspace<float>(GemmBuffer::Extra, v_size);
    float* m = gemm_workspace<float>(GemmBuffer::Input, m_size);
#pragma omp for schedule(dynamic)
    for (int64 task = 0; task < tasks; ++task) {
      const int64 pair = task / chunks, i0 = task % chunks * chunk_rows;
      const int64 i1 = std::min(kp, i0 + chunk_rows);
      if (i0 >= i1) continue;
      const int64 grp = pair / blocks, first = pair % blocks * per;
      const int64 count = std::min(per, total - first), slot = round_up(count, kLanes);
      const std::vector<Run> runs = make_runs(p, first, count);
      const Layout lv{p.ci, slot}, lm{kp, slot};
      transform_block(
          runs, block_spans(p, first, count, true), true, count, lv, p.ci,
          [&](int64 n, int64 c) { return x + ((n * p.groups + grp) * p.ci + c) * in_plane; },
          [&](const float* in, const Lanes& lanes, float* dst, const int64* off) {
            path.input(in, lanes, p.wi, dst, off);
          },
          v);
      const float* ug = u + grp * kClasses * kp * p.ci;
      for (int q = 0; q < kClasses; ++q) {
        const float* uq = ug + q * kp * p.ci;
        const float* vq = v + lv.class_at(q);
        float* mq = m + lm.class_at(q);
        const int64 cols = lv.cols(q), ld = lv.ld();  // the class's points side by side
        // One column panel of V_q (a slice of its C_g rows by nr tiles) stays in L1 while every
        // row panel of U_q streams past it from L2.
        for (int64 c0 = 0; c0 < p.ci; c0 += kslice) {
          const int64 kc = std::min(kslice, p.ci - c0);
          for (int64 j = 0; j < cols; j += mk.nr) {
            const auto kernel = j + mk.nr <= cols ? mk.kernel : mk.half;
            for (int64 i = i0; i < i1; i += mk.mr)
              kernel(kc, uq + i * p.ci + c0, p.ci, vq + c0 * ld + j, ld, mq + i * ld + j, ld,
                     c0 > 0);
          }
        }
      }
      int64 off[kPoints];
      for (int64 o = i0; o < std::min(i1, p.co); ++o) {
        const float bias = b ? b[grp * p.co + o] : 0.0f;
        lm.offsets(o, off);
        for (const Run& run : runs) {
          path.output(m + run.local, off, y + ((run.n * p.groups + grp) * p.co + o) * out_plane,
                      run.out, p.wo, bias);
        }
      }
    }
  }
}

void backward_weight(const float* dy, const float* x, float* dw, const ConvGeometry& g) {
  const Path path = path_for(isa());
  const winograd::MicroKernel& mk = *path.gemm;
  const Pass p = pass_of(g);
  const int64 kp = round_up(p.co, mk.mr), cp = round_up(p.ci, mk.nr);
  const int64 total = p.tiles();
  const int64 per = block_tiles(kPoints * (2 * p.ci + kp), kp * p.ci, total);
  const int64 blocks = ceil_div(total, per);
  const int64 tasks = checked::mul(p.groups, blocks, "winograd_s2", "the tasks");
  const int64 v_size = checked::mul(kPoints * p.ci, per, "winograd_s2", "the workspace");
  // V_q^T of one class at a time: at most 25 slots of tiles by cp channels.
  const int64 vt_size = checked::mul(25 * cp, per, "winograd_s2", "the workspace");
  const int64 z_size = checked::mul(kPoints * kp, per, "winograd_s2", "the workspace");
  // dU [groups][49][kp][cp], classes sxs apart.
  const int64 sxs = checked::mul(kp, cp, "winograd_s2", "the workspace") + 16;
  const int64 s_size = checked::mul(p.groups * kClasses, sxs, "winograd_s2", "the workspace");
  const int64 w_size = p.groups * p.co * p.ci * 9;
  // Tasks are cut into `used` contiguous parts (cpu/parallel.h): each sums its tasks in order into
  // its own dU and dw; the parts' dw are added in part order.
  const int used = static_cast<int>(std::clamp<int64>(tasks, 1, plan_threads()));
  const std::unique_ptr<float[]> partial(new float[static_cast<std::size_t>(
      checked::mul(std::max(used - 1, 0), w_size, "winograd_s2", "the workspace"))]);
  const int64 in_plane = p.hi * p.wi, out_plane = p.ho * p.wo;
#pragma omp parallel num_threads(run_threads(used)) if (used > 1)
  {
    float* v = gemm_workspace<float>(GemmBuffer::Extra, v_size);
    float* z = gemm_workspace<float>(GemmBuffer::Input, z_size);
    float* vt = gemm_workspace<float>(GemmBuffer::A, vt_size);
    std::fill_n(vt, vt_size, 0.0f);  // channels past ci stay zero
    float* s = gemm_workspace<float>(GemmBuffer::B, s_size);
#pragma omp for schedule(dynamic)
    for (int part = 0; part < used; ++part) {
      // A group's dU is written by the part's first block of that group, then accumulated.
      std::vector<char> touched(static_cast<std::size_t>(p.groups), 0);
      const int64 t0 = part_begin(tasks, used, part), t1 = part_begin(tasks, used, part + 1);
      for (int64 task = t0; task < t1; ++task) {
        const int64 grp = task / blocks, first = task % blocks * per;
        const bool accumulate = touched[static_cast<std::size_t>(grp)] != 0;
        touched[static_cast<std::size_t>(grp)] = 1;
        const int64 count = std::min(per, total - first), slot = round_up(count, kLanes);
        const std::vector<Run> runs = make_runs(p, first, count);
        const Layout lv{p.ci, slot}, lz{kp, slot};
        transform_block(
            runs, block_spans(p, first, count, true), true, count, lv, p.ci,
            [&](int64 n, int64 c) { return x + ((n * p.groups + grp) * p.ci + c) * in_plane; },
            [&](const float* in, const Lanes& lanes, float* dst, const int64* off) {
              path.input(in, lanes, p.wi, dst, off);
            },
            v);
        transform_block(
            runs, block_spans(p, first, count, false), false, count, lz, p.co,
            [&](int64 n, int64 o) { return dy + ((n * p.groups + grp) * p.co + o) * out_plane; },
            [&](const float* in, const Lanes& lanes, float* dst, const int64* off) {
              path.grad(in, lanes, p.wo, dst, off);
            },
            z);
        // dU_q [kp x cp] (+)= Z_q [kp x cols] V_q^T [cols x cp], the class's points side by side.
        float* sg = s + grp * kClasses * sxs;
        for (int q = 0; q < kClasses; ++q) {
          const int64 cols = lv.cols(q);
          mk.transpose(v + lv.class_at(q), lv.ld(), p.ci, cols, vt, cp);
          const float* zq = z + lz.class_at(q);
          float* sq = sg + q * sxs;
          for (int64 i = 0; i < kp; i += mk.mr)
            for (int64 j = 0; j < cp; j += mk.nr)
              mk.kernel(cols, zq + i * lz.ld(), lz.ld(), vt + j, cp, sq + i * cp + j, cp,
                        accumulate);
        }
      }
      float* out = part == 0 ? dw : partial.get() + (part - 1) * w_size;
      for (int64 grp = 0; grp < p.groups; ++grp) {
        float* dwg = out + grp * p.co * p.ci * 9;
        if (!touched[static_cast<std::size_t>(grp)]) {  // dU = 0, and so dw = 0
          std::fill_n(dwg, p.co * p.ci * 9, 0.0f);
          continue;
        }
        for (int64 o = 0; o < p.co; ++o)
          for (int64 c = 0; c < p.ci; c += kLanes)
            path.adjoint(s + grp * kClasses * sxs + o * cp + c, sxs,
                         static_cast<int>(std::min<int64>(kLanes, p.ci - c)),
                         dwg + (o * p.ci + c) * 9);
      }
    }
  }
  for (int q = 0; q + 1 < used; ++q) {
    const float* src = partial.get() + q * w_size;
    for (int64 i = 0; i < w_size; ++i) dw[i] += src[i];
  }
}

}  // namespace convtape::cpu::winograd_s2
