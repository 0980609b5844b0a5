// Winograd convolution of stride-2 3x3 2-D convolutions by phases on CPU, float32, NCHW
// (cpu/conv_winograd_s2.h).
//
// Along one axis, output o of a stride-2 3x3 correlation reads input 2 o + t (t = 0, 1, 2, from
// the tile's origin): taps 0 and 2 read the even positions e_j = z_{2j}, a stride-1 2-tap
// correlation h = (g_0, g_2), computed as Winograd F(M, 2), and tap 1 reads the odd positions
// z_{2j+1}, times g_1. For M outputs from 2 M + 1 inputs:
//   y = A_M^T [(G h) . (B^T e)] + g_1 (z_1, z_3, .., z_{2M-1})
// with M + 1 interpolation points: 0, 1, -1, 2, -2, infinity for M = 5 (B^T is F(4, 3)'s), and
// 1/2, -1/2 besides for M = 7 (the matrices below; scripts/winograd_s2.py derives them). So
// 2 M + 1 transformed points per axis: points 0 .. M are B^T of the even inputs, points M + 1 ..
// 2 M the odd inputs as they are; the 3 taps become 2 M + 1 weights of which M + 2 differ ("axis
// classes": the M + 1 rows of G, and the middle tap for every odd point). In 2-D an M x M output
// tile reads a (2 M + 1)^2 input tile and takes (2 M + 1)^2 products per channel pair (121 for 25
// outputs, 225 for 49) against 9 per output direct, 1.86x and 1.96x fewer; its points fall into
// (M + 2)^2 classes that share one transformed weight, so that per block of tiles the products
// are (M + 2)^2 GEMMs over channels, class q's B having one slot of tiles per point of the class
// (1, M or M^2 points):
//   M_q[K_g x n_q T] = U_q[K_g x C_g] V_q[C_g x n_q T]
// and y = A^T M A per tile, A^T = [A_M^T | I_M]. The weight gradient is the adjoint with the same
// transforms: dU_q = sum over tiles and the class's points of (A dy A^T) V^T, and dw = the adjoint
// of the weight transform. The scheme is the one with fewer points over the output (7x7 tiles
// cover 14x14, 28x28 and 56x56 outputs exactly).
//
// Layout and blocking as in cpu/conv_winograd.cpp, lane-mapped only: a task is one group and one
// block of at most T consecutive tiles of the (sample, tile row, tile column) order (T: V and M
// within 1 MiB, or, once the U_q outgrow that, 128 tiles so that U is read from L3 less often),
// the blocks equal and a multiple of the threads in number; the transforms gather 16 tiles per
// step, one per SIMD lane. A block's V is one row per channel holding every point's slot of
// tiles, class after class, so that a GEMM over class q reads a column range of every row and a
// transform of one channel writes one row; M (dy's transform) the same over output channels.
// Workspace: V and M (and V^T of one class, dy's transform and dU) in each thread's GEMM buffers,
// U in the calling thread's: (2 M + 1)^2 (2 C_g + K_g) T + (M + 2)^2 groups C_g K_g floats and
// less.
//
// Determinism: every output of forward is one GEMM sum over channels in index order, whatever the
// blocking and thread count; backward_weight sums over blocks in parts as cpu/conv_winograd.cpp
// does (parts of plan_threads(), added in part order).
//
// ISA paths: the transforms are lane loops compiled under function-level target attributes per
// path (AVX-512 and AVX2 with gather instructions, AVX-512 scattering its outputs; baseline); the
// micro-kernels are cpu/winograd_common.h's. The plan takes this path on AVX2 only (measured,
// cpu/conv_plan.cpp); the tests run it on every path.
#include "cpu/conv_winograd_s2.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
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
constexpr int kMaxAlpha = 15;  // points per axis of the largest scheme
constexpr int64 kAlign = 32;   // the least tiles per block
constexpr int64 kBlockBytes = 1 << 20;
constexpr int64 kReuseTiles = 128;
constexpr int64 kPanelBytes = 24576;  // one column panel of V_q, kept in L1

// The 1-D transforms of F(M, 2) for the even phase, points 0, 1, -1, 2, -2 (and 1/2, -1/2 for
// M = 7) and infinity, made with the Toom-Cook construction (scripts/winograd_s2.py prints them
// and checks them in exact arithmetic): G's rows are p^k / prod_{q != p} (p - q), A^T's columns
// p^i, and B^T solves A^T [(G h) . (B^T e)] = (h_0 e_o + h_1 e_{o+1})_o.
template <int M>
struct Matrices;

template <>
struct Matrices<5> {
  static constexpr float BT[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0},
                                     {0, 4, -4, -1, 1, 0}, {0, -2, -1, 2, 1, 0},
                                     {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
  static constexpr float AT[5][6] = {{1, 1, 1, 1, 1, 0},
                                     {0, 1, -1, 2, -2, 0},
                                     {0, 1, 1, 4, 4, 0},
                                     {0, 1, -1, 8, -8, 0},
                                     {0, 1, 1, 16, 16, 1}};
  static constexpr float G[6][2] = {{1.0f / 4, 0},           {-1.0f / 6, -1.0f / 6},
                                    {-1.0f / 6, 1.0f / 6},   {1.0f / 24, 1.0f / 12},
                                    {1.0f / 24, -1.0f / 12}, {0, 1}};
};

template <>
struct Matrices<7> {
  static constexpr float BT[8][8] = {{-1, 0, 21.0f / 4, 0, -21.0f / 4, 0, 1, 0},
                                     {0, 1, 1, -17.0f / 4, -17.0f / 4, 1, 1, 0},
                                     {0, -1, 1, 17.0f / 4, -17.0f / 4, -1, 1, 0},
                                     {0, 1.0f / 2, 1.0f / 4, -5.0f / 2, -5.0f / 4, 2, 1, 0},
                                     {0, -1.0f / 2, 1.0f / 4, 5.0f / 2, -5.0f / 4, -2, 1, 0},
                                     {0, 2, 4, -5.0f / 2, -5, 1.0f / 2, 1, 0},
                                     {0, -2, 4, 5.0f / 2, -5, -1.0f / 2, 1, 0},
                                     {0, -1, 0, 21.0f / 4, 0, -21.0f / 4, 0, 1}};
  static constexpr float AT[7][8] = {{1, 1, 1, 1, 1, 1, 1, 0},
                                     {0, 1, -1, 2, -2, 1.0f / 2, -1.0f / 2, 0},
                                     {0, 1, 1, 4, 4, 1.0f / 4, 1.0f / 4, 0},
                                     {0, 1, -1, 8, -8, 1.0f / 8, -1.0f / 8, 0},
                                     {0, 1, 1, 16, 16, 1.0f / 16, 1.0f / 16, 0},
                                     {0, 1, -1, 32, -32, 1.0f / 32, -1.0f / 32, 0},
                                     {0, 1, 1, 64, 64, 1.0f / 64, 1.0f / 64, 1}};
  static constexpr float G[8][2] = {{-1, 0},
                                    {-2.0f / 9, -2.0f / 9},
                                    {-2.0f / 9, 2.0f / 9},
                                    {1.0f / 90, 1.0f / 45},
                                    {1.0f / 90, -1.0f / 45},
                                    {32.0f / 45, 16.0f / 45},
                                    {32.0f / 45, -16.0f / 45},
                                    {0, 1}};
};

// The sizes of scheme M: 5 x 5 output tiles (M = 5) or 7 x 7 (M = 7).
template <int M>
struct Scheme {
  static constexpr int kEven = M + 1;              // even-phase points per axis
  static constexpr int kAlpha = 2 * M + 1;         // points per axis (and input taps per tile)
  static constexpr int kPoints = kAlpha * kAlpha;  // points per tile
  static constexpr int kAxis = M + 2;              // axis classes: the even points, the odd one
  static constexpr int kClasses = kAxis * kAxis;   // distinct transformed weights
  static constexpr int kTile = M;                  // outputs per tile edge
  static constexpr int kStep = 2 * M;              // input rows (columns) between tiles
  using Mat = Matrices<M>;

  static constexpr int axis_class(int a) { return a < kEven ? a : kEven; }
  static constexpr int axis_points(int c) { return c < kEven ? 1 : M; }
  // Row (column) r of the kernel enters axis class c with weight tap(c, r): G's rows on taps 0
  // and 2, tap 1 for the odd class.
  static constexpr float tap(int c, int r) {
    if (c == kEven) return r == 1 ? 1.0f : 0.0f;
    return r == 0 ? Mat::G[c][0] : r == 2 ? Mat::G[c][1] : 0.0f;
  }
};

// Where point xi = alpha a + b lies: its class, and its slot among all classes' slots (a class's
// slots are consecutive, from first[q]); count[q] slots per class.
template <int M>
struct PointTable {
  using S = Scheme<M>;
  int cls[S::kPoints] = {}, slot[S::kPoints] = {}, count[S::kClasses] = {},
      first[S::kClasses + 1] = {};
  constexpr PointTable() {
    for (int q = 0; q < S::kClasses; ++q)
      count[q] = S::axis_points(q / S::kAxis) * S::axis_points(q % S::kAxis);
    for (int q = 0; q < S::kClasses; ++q) first[q + 1] = first[q] + count[q];
    for (int a = 0; a < S::kAlpha; ++a)
      for (int b = 0; b < S::kAlpha; ++b) {
        const int ca = S::axis_class(a), cb = S::axis_class(b), q = ca * S::kAxis + cb;
        cls[a * S::kAlpha + b] = q;
        slot[a * S::kAlpha + b] = first[q] + (a - ca) * S::axis_points(cb) + (b - cb);
      }
  }
};
template <int M>
constexpr PointTable<M> kTables{};

// ---------------------------------------------------------------------------------------------
// Transforms over 16 lanes, written once and compiled per scheme and ISA by the wrappers below.
// The matrices are compile-time constants: the unrolled sums skip their zeros.

// 16 tiles anywhere in a batch of planes: lane l's tile origin is base + off[l]; bit l of rows[i]
// (cols[j]) is set when row i (column j) of lane l's tile lies in its plane. Lanes past the run
// have no bits set (read as zeros, never written).
struct Lanes {
  std::int32_t off[kLanes];
  std::uint32_t rows[kMaxAlpha], cols[kMaxAlpha];
};

[[gnu::always_inline]] inline bool lane_in(const Lanes& m, int i, int j, int l) {
  return ((m.rows[i] & m.cols[j]) >> l) & 1u;
}

// out[r][l] = sum_k mat[r][k] in(k)[l] for r < R, k < K (mat[k][r] when Transposed), the
// constant matrix's zeros skipped.
template <int R, int K, bool Transposed, int Rows, int Cols, class In>
[[gnu::always_inline]] inline void lane_matvec(const float (&mat)[Rows][Cols], In&& in,
                                               float (*out)[kLanes]) {
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    alignas(64) float acc[kLanes] = {};
#pragma GCC unroll 16
    for (int k = 0; k < K; ++k) {
      const float c = Transposed ? mat[k][r] : mat[r][k];
      if (c == 0.0f) continue;
      const float* v = in(k);
      for (int l = 0; l < kLanes; ++l) acc[l] += c * v[l];
    }
    for (int l = 0; l < kLanes; ++l) out[r][l] = acc[l];
  }
}

// V = B^T d B for 16 gathered tiles d[i][j][lane]: along each axis, B^T of the even inputs as
// points 0 .. M, the odd inputs as points M + 1 .. 2 M; point xi of lane l to dst[off[xi] + l].
template <int M>
[[gnu::always_inline]] inline void input_impl(
    const float (&d)[Scheme<M>::kAlpha][Scheme<M>::kAlpha][kLanes], float* dst, const int64* off) {
  using S = Scheme<M>;
  constexpr int A = S::kAlpha, E = S::kEven;
  alignas(64) float t[A][A][kLanes];  // t[b][i]: point b along the columns of row i
  for (int i = 0; i < A; ++i) {
    alignas(64) float row[A][kLanes];
    lane_matvec<E, E, false>(
        S::Mat::BT, [&](int k) { return d[i][2 * k]; }, row);
    for (int k = 0; k < M; ++k) std::memcpy(row[E + k], d[i][2 * k + 1], sizeof(row[0]));
    for (int b = 0; b < A; ++b) std::memcpy(t[b][i], row[b], sizeof(row[0]));
  }
  for (int b = 0; b < A; ++b) {
    alignas(64) float o[E][kLanes];
    lane_matvec<E, E, false>(
        S::Mat::BT, [&](int k) { return t[b][2 * k]; }, o);
    for (int a = 0; a < E; ++a) std::memcpy(dst + off[a * A + b], o[a], sizeof(o[a]));
    for (int k = 0; k < M; ++k)
      std::memcpy(dst + off[(E + k) * A + b], t[b][2 * k + 1], sizeof(o[0]));
  }
}

// y = A^T m A (+ bias) for 16 tiles, A^T = [A_M^T | I_M]; point xi of lane l read at
// src[off[xi] + l].
template <int M>
[[gnu::always_inline]] inline void output_impl(const float* src, const int64* off, float bias,
                                               float (&y)[M][M][kLanes]) {
  using S = Scheme<M>;
  constexpr int A = S::kAlpha, E = S::kEven;
  alignas(64) float t[M][A][kLanes];  // t[j][a]: output column j of point row a
  for (int a = 0; a < A; ++a) {
    const int64* row = off + a * A;
    alignas(64) float r[M][kLanes];
    lane_matvec<M, E, false>(
        S::Mat::AT, [&](int k) { return src + row[k]; }, r);
    for (int j = 0; j < M; ++j) {
      const float* odd = src + row[E + j];
      for (int l = 0; l < kLanes; ++l) t[j][a][l] = r[j][l] + odd[l];
    }
  }
  for (int j = 0; j < M; ++j) {
    alignas(64) float r[M][kLanes];
    lane_matvec<M, E, false>(
        S::Mat::AT, [&](int k) { return t[j][k]; }, r);
    for (int i = 0; i < M; ++i)
      for (int l = 0; l < kLanes; ++l) y[i][j][l] = r[i][l] + t[j][E + i][l] + bias;
  }
}

// Z = A dy A^T for 16 gathered M x M tiles of dy; point xi of lane l to dst[off[xi] + l].
template <int M>
[[gnu::always_inline]] inline void grad_impl(const float (&d)[M][M][kLanes], float* dst,
                                             const int64* off) {
  using S = Scheme<M>;
  constexpr int A = S::kAlpha, E = S::kEven;
  alignas(64) float t[A][M][kLanes];  // t[b][i]: point b along the columns of row i
  for (int i = 0; i < M; ++i) {
    alignas(64) float row[A][kLanes];
    lane_matvec<E, M, true>(
        S::Mat::AT, [&](int k) { return d[i][k]; }, row);
    for (int k = 0; k < M; ++k) std::memcpy(row[E + k], d[i][k], sizeof(row[0]));
    for (int b = 0; b < A; ++b) std::memcpy(t[b][i], row[b], sizeof(row[0]));
  }
  for (int b = 0; b < A; ++b) {
    alignas(64) float o[E][kLanes];
    lane_matvec<E, M, true>(
        S::Mat::AT, [&](int k) { return t[b][k]; }, o);
    for (int a = 0; a < E; ++a) std::memcpy(dst + off[a * A + b], o[a], sizeof(o[a]));
    for (int k = 0; k < M; ++k) std::memcpy(dst + off[(E + k) * A + b], t[b][k], sizeof(o[0]));
  }
}

// u[q * us + l] = the class-q weight of the n <= 16 kernels g + 9 l (3x3 row-major).
template <int M>
[[gnu::always_inline]] inline void weight_impl(const float* g, int n, float* u, int64 us) {
  using S = Scheme<M>;
  alignas(64) float gk[9][kLanes];
  for (int e = 0; e < 9; ++e)
    for (int l = 0; l < kLanes; ++l) gk[e][l] = l < n ? g[9 * l + e] : 0.0f;
  alignas(64) float t[S::kAxis][3][kLanes];  // t[ca][s]: the rows combined, column s
  for (int ca = 0; ca < S::kAxis; ++ca)
    for (int s = 0; s < 3; ++s)
      for (int l = 0; l < kLanes; ++l)
        t[ca][s][l] =
            S::tap(ca, 0) * gk[s][l] + S::tap(ca, 1) * gk[3 + s][l] + S::tap(ca, 2) * gk[6 + s][l];
  for (int ca = 0; ca < S::kAxis; ++ca)
    for (int cb = 0; cb < S::kAxis; ++cb) {
      alignas(64) float o[kLanes];
      for (int l = 0; l < kLanes; ++l)
        o[l] =
            t[ca][0][l] * S::tap(cb, 0) + t[ca][1][l] * S::tap(cb, 1) + t[ca][2][l] * S::tap(cb, 2);
      float* uq = u + (ca * S::kAxis + cb) * us;
      if (n == kLanes)
        std::memcpy(uq, o, sizeof(o));
      else
        for (int l = 0; l < n; ++l) uq[l] = o[l];
    }
}

// dw_l = the adjoint of weight_impl for n <= 16 channel pairs: du_l's class q at du[q * xs + l]
// (16 readable lanes), dw_l written at dw + 9 l.
template <int M>
[[gnu::always_inline]] inline void adjoint_impl(const float* du, int64 xs, int n, float* dw) {
  using S = Scheme<M>;
  alignas(64) float t[S::kAxis][3][kLanes];  // t[ca][s]: the column classes folded into column s
  for (int ca = 0; ca < S::kAxis; ++ca)
    for (int s = 0; s < 3; ++s)
      for (int l = 0; l < kLanes; ++l) {
        float v = 0;
        for (int cb = 0; cb < S::kAxis; ++cb)
          v += S::tap(cb, s) * du[(ca * S::kAxis + cb) * xs + l];
        t[ca][s][l] = v;
      }
  alignas(64) float out[kLanes][9];
  for (int r = 0; r < 3; ++r)
    for (int s = 0; s < 3; ++s)
      for (int l = 0; l < kLanes; ++l) {
        float v = 0;
        for (int ca = 0; ca < S::kAxis; ++ca) v += S::tap(ca, r) * t[ca][s][l];
        out[l][r * 3 + s] = v;
      }
  std::memcpy(dw, out, sizeof(float) * 9 * static_cast<std::size_t>(n));
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
        const __m256i idx = _mm256_add_epi32(off, _mm256_set1_epi32(static_cast<int>(i * w + j)));
        const std::uint32_t bits = (m.rows[i] & m.cols[j]) >> (8 * h);
        const __m256i on = _mm256_cmpeq_epi32(
            _mm256_and_si256(_mm256_set1_epi32(static_cast<int>(bits)), select), select);
        _mm256_store_ps(d[i][j] + 8 * h, _mm256_mask_i32gather_ps(_mm256_setzero_ps(), base, idx,
                                                                  _mm256_castsi256_ps(on), 4));
      }
  }
}

// One scheme's transforms on one ISA path, and the path's GEMM micro-kernel.
struct Path {
  void (*input)(const float*, const Lanes&, int64, float*, const int64*);
  void (*output)(const float*, const int64*, float*, const Lanes&, int64, float);
  void (*grad)(const float*, const Lanes&, int64, float*, const int64*);
  void (*weight)(const float*, int, float*, int64);
  void (*adjoint)(const float*, int64, int, float*);
  const winograd::MicroKernel* gemm;
};

#define CT_S2_TRANSFORMS(SUFFIX, TARGET, GATHER, SCATTER)                                      \
  template <int M>                                                                             \
  TARGET void input_##SUFFIX(const float* base, const Lanes& m, int64 w, float* dst,           \
                             const int64* off) {                                               \
    constexpr int A = Scheme<M>::kAlpha;                                                       \
    alignas(64) float d[A][A][kLanes];                                                         \
    GATHER<A>(base, m, w, d);                                                                  \
    input_impl<M>(d, dst, off);                                                                \
  }                                                                                            \
  template <int M>                                                                             \
  TARGET void output_##SUFFIX(const float* src, const int64* off, float* base, const Lanes& m, \
                              int64 w, float bias) {                                           \
    alignas(64) float y[M][M][kLanes];                                                         \
    output_impl<M>(src, off, bias, y);                                                         \
    SCATTER<M>(y, base, m, w);                                                                 \
  }                                                                                            \
  template <int M>                                                                             \
  TARGET void grad_##SUFFIX(const float* base, const Lanes& m, int64 w, float* dst,            \
                            const int64* off) {                                                \
    alignas(64) float d[M][M][kLanes];                                                         \
    GATHER<M>(base, m, w, d);                                                                  \
    grad_impl<M>(d, dst, off);                                                                 \
  }                                                                                            \
  template <int M>                                                                             \
  TARGET void weight_##SUFFIX(const float* g, int n, float* u, int64 us) {                     \
    weight_impl<M>(g, n, u, us);                                                               \
  }                                                                                            \
  template <int M>                                                                             \
  TARGET void adjoint_##SUFFIX(const float* du, int64 xs, int n, float* dw) {                  \
    adjoint_impl<M>(du, xs, n, dw);                                                            \
  }                                                                                            \
  template <int M>                                                                             \
  Path path_##SUFFIX(Isa isa) {                                                                \
    return {&input_##SUFFIX<M>,  &output_##SUFFIX<M>,  &grad_##SUFFIX<M>,                      \
            &weight_##SUFFIX<M>, &adjoint_##SUFFIX<M>, &winograd::micro_kernel(isa)};          \
  }

CT_S2_TRANSFORMS(avx512, __attribute__((target("avx512f,fma"))), gather_lanes_avx512,
                 scatter_lanes_avx512)
CT_S2_TRANSFORMS(avx2, __attribute__((target("avx2,fma"))), gather_lanes_avx2, scatter_lanes)
CT_S2_TRANSFORMS(portable, , gather_lanes, scatter_lanes)

#undef CT_S2_TRANSFORMS

template <int M>
Path path_for(Isa isa) {
  switch (isa) {
    case Isa::avx512:
      return path_avx512<M>(isa);
    case Isa::avx2:
      return path_avx2<M>(isa);
    default:
      return path_portable<M>(isa);
  }
}

int64 round_up(int64 a, int64 b) {
  return (a + b - 1) / b * b;
}
int64 ceil_div(int64 a, int64 b) {
  return a / b + (a % b != 0 ? 1 : 0);
}

// ---------------------------------------------------------------------------------------------
// One scheme's convolution passes.

template <int M>
struct Engine {
  using S = Scheme<M>;
  static constexpr int kAlpha = S::kAlpha, kPoints = S::kPoints, kClasses = S::kClasses,
                       kTile = S::kTile, kStep = S::kStep;
  static constexpr const PointTable<M>& kTable = kTables<M>;

  // ---------------------------------------------------------------------------------------------
  // The blocks of tiles.

  // One convolution: x [N, groups * ci, hi, wi] -> y [N, groups * co, ho, wo], M x M output tile
  // (ty, tx) reading the (2 M + 1)^2 input tile at (2 M ty - ph, 2 M tx - pw) (reads outside are
  // zeros).
  struct Pass {
    int64 batch = 0, groups = 1, ci = 0, co = 0, hi = 0, wi = 0, ho = 0, wo = 0, ph = 0, pw = 0;
    int64 th() const { return ceil_div(ho, kTile); }
    int64 tw() const { return ceil_div(wo, kTile); }
    int64 tiles() const { return checked::mul(batch, th() * tw(), "winograd_s2", "the tiles"); }
  };

  static Pass pass_of(const ConvGeometry& g) {
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
  // within kBlockBytes or, when the (M + 2)^2 matrices U_q of `pair` floats outgrow that, is
  // kReuseTiles so that U is streamed from L3 less often. Equal blocks in a multiple of the threads
  // leave no thread idle at the end (a block's GEMM columns are padded to 16, not to the
  // micro-kernel's width: a last half panel runs MicroKernel::half).
  static int64 block_tiles(int64 per_tile, int64 pair, int64 total) {
    int64 most = kBlockBytes / (4 * per_tile);
    if (4 * kClasses * pair > kBlockBytes) most = std::max(most, kReuseTiles);
    most = std::max<int64>(kAlign, most / kLanes * kLanes);
    const int64 threads = plan_threads();
    const int64 blocks = round_up(ceil_div(total, most), threads);
    return round_up(ceil_div(total, blocks), kLanes);
  }

  // The runs of 16 tiles of the block [first, first + count): each run's sample, first local tile,
  // and lane maps of the input tiles ((2 M + 1)^2, 2 M apart) and output tiles (M x M, M apart).
  struct Run {
    int64 n, local;
    Lanes in, out;
  };

  static std::vector<Run> make_runs(const Pass& p, int64 first, int64 count) {
    const int64 th = p.th(), tw = p.tw();
    const int64 in_sample = p.groups * p.ci * p.hi * p.wi,
                out_sample = p.groups * p.co * p.ho * p.wo;
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
  static constexpr int64 kAhead = 2;

  static std::vector<Span> block_spans(const Pass& p, int64 first, int64 count, bool input) {
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
      for (int xi = 0; xi < kPoints; ++xi) off[xi] = r * ld() + kTable.slot[xi] * slot;
    }
  };

  // Transforms `rows` channel planes of one group (plane(n, c)) of a block's runs into a block laid
  // out as l (l.rows >= rows; rows past `rows` zeroed), the tiles past the block's last run zeroed
  // up to the slot.
  template <class PlaneOf, class Transform>
  static void transform_block(const std::vector<Run>& runs, const std::vector<Span>& spans,
                              bool input, int64 count, const Layout& l, int64 rows, PlaneOf&& plane,
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

  // V of one group's block: the input transform of its ci channels of x.
  static void transform_inputs(const Path& path, const Pass& p, const float* x, int64 grp,
                               int64 first, int64 count, const std::vector<Run>& runs,
                               const Layout& lv, float* v) {
    const int64 plane = p.hi * p.wi;
    transform_block(
        runs, block_spans(p, first, count, true), true, count, lv, p.ci,
        [&](int64 n, int64 c) { return x + ((n * p.groups + grp) * p.ci + c) * plane; },
        [&](const float* in, const Lanes& lanes, float* dst, const int64* off) {
          path.input(in, lanes, p.wi, dst, off);
        },
        v);
  }

  // Transformed weights [groups][classes][kp][ci] (rows past co zero), in the calling thread's GEMM
  // workspace B (the passes' threads use the other buffers).
  static const float* transform_weights(const Path& path, const float* w, const Pass& p, int64 kp) {
    const int64 size =
        checked::mul(checked::mul(p.groups * kClasses, kp, "winograd_s2", "the weights"), p.ci,
                     "winograd_s2", "the weights");
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

  static void forward(const float* x, const float* w, const float* b, float* y,
                      const ConvGeometry& g) {
    const Path path = path_for<M>(isa());
    const winograd::MicroKernel& mk = *path.gemm;
    const Pass p = pass_of(g);
    const int64 kp = round_up(p.co, mk.mr);
    const float* u = transform_weights(path, w, p, kp);
    const int64 total = p.tiles();
    const int64 per = block_tiles(kPoints * (p.ci + kp), kp * p.ci, total);
    const int64 blocks = ceil_div(total, per);
    // With fewer (group, block) pairs than planned threads, each pair's output channels are cut
    // into chunks of whole micro-kernel row panels, each task transforming its block's inputs
    // itself.
    const int64 pairs = checked::mul(p.groups, blocks, "winograd_s2", "the tasks");
    const int64 panels = kp / mk.mr;
    const int64 chunks =
        pairs >= plan_threads() ? 1 : std::min(panels, ceil_div(2 * plan_threads(), pairs));
    const int64 chunk_rows = ceil_div(panels, chunks) * mk.mr;
    const int64 tasks = pairs * chunks;
    const int64 kslice =
        ceil_div(p.ci, ceil_div(p.ci, std::max<int64>(1, kPanelBytes / (4 * mk.nr))));
    const int64 v_size = checked::mul(kPoints * p.ci, per, "winograd_s2", "the workspace");
    const int64 m_size = checked::mul(kPoints * kp, per, "winograd_s2", "the workspace");
    const int64 out_plane = p.ho * p.wo;
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
        transform_inputs(path, p, x, grp, first, count, runs, lv, v);
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

  static void backward_weight(const float* dy, const float* x, float* dw, const ConvGeometry& g) {
    const Path path = path_for<M>(isa());
    const winograd::MicroKernel& mk = *path.gemm;
    const Pass p = pass_of(g);
    const int64 kp = round_up(p.co, mk.mr), cp = round_up(p.ci, mk.nr);
    const int64 total = p.tiles();
    const int64 per = block_tiles(kPoints * (2 * p.ci + kp), kp * p.ci, total);
    const int64 blocks = ceil_div(total, per);
    const int64 tasks = checked::mul(p.groups, blocks, "winograd_s2", "the tasks");
    const int64 v_size = checked::mul(kPoints * p.ci, per, "winograd_s2", "the workspace");
    // V_q^T of one class at a time: at most M * M slots of tiles by cp channels.
    const int64 vt_size = checked::mul(kTile * kTile * cp, per, "winograd_s2", "the workspace");
    const int64 z_size = checked::mul(kPoints * kp, per, "winograd_s2", "the workspace");
    // dU [groups][classes][kp][cp], classes sxs apart.
    const int64 sxs = checked::mul(kp, cp, "winograd_s2", "the workspace") + 16;
    const int64 s_size = checked::mul(p.groups * kClasses, sxs, "winograd_s2", "the workspace");
    const int64 w_size = p.groups * p.co * p.ci * 9;
    // Tasks are cut into `used` contiguous parts (cpu/parallel.h): each sums its tasks in order
    // into its own dU and dw; the parts' dw are added in part order.
    const int used = static_cast<int>(std::clamp<int64>(tasks, 1, plan_threads()));
    const std::unique_ptr<float[]> partial(new float[static_cast<std::size_t>(
        checked::mul(std::max(used - 1, 0), w_size, "winograd_s2", "the workspace"))]);
    const int64 out_plane = p.ho * p.wo;
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
          transform_inputs(path, p, x, grp, first, count, runs, lv, v);
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
        winograd::part_weights(s, kClasses, sxs, cp, touched, p.co, p.ci, path.adjoint,
                               part == 0 ? dw : partial.get() + (part - 1) * w_size);
      }
    }
    winograd::add_parts(dw, partial.get(), used, w_size);
  }
};

}  // namespace

namespace {

// The transformed points of a geometry's output under M x M tiles.
int64 scheme_points(const ConvGeometry& g, int64 m) {
  return (2 * m + 1) * (2 * m + 1) * ceil_div(g.out[0], m) * ceil_div(g.out[1], m);
}

}  // namespace

int tile(const ConvGeometry& g) {
  return scheme_points(g, 7) <= scheme_points(g, 5) ? 7 : 5;
}

int64 tiles(const ConvGeometry& g) {
  const int m = tile(g);
  return ceil_div(g.out[0], m) * ceil_div(g.out[1], m);
}

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
    return span && *span + 16 * w + 16 <= INT32_MAX;
  };
  if (!fits(checked::try_mul(g.channels, g.in_numel()), g.in[1]) ||
      !fits(checked::try_mul(g.out_channels, g.out_numel()), g.out[1]))
    return false;
  // Measured against the GEMM paths on the AVX2 path (cpu/conv_plan.cpp): the transforms cost per
  // input and per output channel and the GEMMs save per channel pair, so ci co / (ci + co) must
  // reach 40 (64 -> 128 ran 1.13x faster, 64 -> 64 and 32 -> 64 no faster). And the tiles must
  // keep most of the saving: (2 M + 1)^2 products per M x M tile against 9 per output, kept at
  // 1.5x or more.
  const int64 ci = g.group_channels(), co = g.group_out_channels();
  return ci * co >= 40 * (ci + co) && 2 * 9 * g.out[0] * g.out[1] >= 3 * scheme_points(g, tile(g));
}

void forward(const float* x, const float* w, const float* b, float* y, const ConvGeometry& g) {
  if (tile(g) == 7) return Engine<7>::forward(x, w, b, y, g);
  Engine<5>::forward(x, w, b, y, g);
}

void backward_weight(const float* dy, const float* x, float* dw, const ConvGeometry& g) {
  if (tile(g) == 7) return Engine<7>::backward_weight(dy, x, dw, g);
  Engine<5>::backward_weight(dy, x, dw, g);
}

}  // namespace convtape::cpu::winograd_s2
