// Winograd convolutions built from one 1-D scheme per axis, on CPU, float32
// (cpu/conv_winograd_axes.h): stride-2 3x3 2-D convolutions by phases (winograd_s2), stride-1
// 1-D convolutions (winograd_1d) and stride-1 5x5 and 7x7 2-D convolutions (winograd_kxk).
//
// Axis schemes. Along one axis an output tile of kTile outputs reads kIn inputs and is computed
// from a 1-D transform with kPoints points; the 2-D transforms apply the column scheme to every
// row, then the row scheme to every column. The points fall into classes whose transformed
// weights are equal, so that per block of tiles the products run as one GEMM over channels per
// class, class q's B holding one slot of tiles per point of the class:
//   M_q[K_g x n_q T] = U_q[K_g x C_g] V_q[C_g x n_q T]
// and the weight gradient is the adjoint with the same transforms: dU_q = sum over tiles and the
// class's points of Z V^T (Z the output-gradient transform of dy), dw = the adjoint of the weight
// transform. The schemes (matrices from the Toom-Cook construction, derived and checked in exact
// arithmetic by scripts/winograd_s2.py):
//   EvenOdd<M>  a stride-2 3-tap axis by phases: output o reads input 2 o + t from the tile's
//               origin; taps 0 and 2 read the even inputs e_j = z_{2j}, a stride-1 2-tap
//               correlation h = (g_0, g_2) run as F(M, 2), and tap 1 the odd inputs, times g_1:
//                 y = A_M^T [(G h) . (B^T e)] + g_1 (z_1, z_3, .., z_{2M-1})
//               with points 0, 1, -1, 2, -2, infinity for M = 5 (B^T is F(4, 3)'s) and 1/2, -1/2
//               besides for M = 7. 2 M + 1 points (B^T of the even inputs, then the odd inputs as
//               they are) in M + 2 classes (the rows of G, and the middle tap for every odd point).
//   Plain<M,R>  a stride-1 R-tap axis: F(M, R) with the eight points 0, +-1, +-2, +-1/2,
//               infinity (F(6, 3), F(4, 5), F(2, 7)), every point its own class.
//   Spread<M,P> the data gradient of a stride-2 3-tap axis (a stride-2 transposed correlation) by
//               output phases: a tile of 2 M outputs from M + 1 inputs, the outputs of parity P
//               F(M, 2) of them, the others the inputs times the middle tap; EvenOdd<M>'s points
//               and classes under the flipped kernel.
//   One         an axis of extent 1 (the rows of a 1-D convolution).
// winograd_s2 is EvenOdd<M> on both axes (the scheme with fewer points over the output: 7x7
// tiles cover 14x14, 28x28 and 56x56 outputs exactly): (2 M + 1)^2 products per channel pair for
// an M x M tile against 9 M^2 direct (1.86x and 1.96x fewer), (M + 2)^2 GEMMs per block; its data
// gradient is Spread<M, P> on both axes, 2M x 2M tiles of dx with the same products, as the
// forward-type pass of dy with the flipped, channel-swapped kernel (tiles of dy would overlap-add
// in dx; tiles of dx do not).
// winograd_1d is One x Plain<6, 3> or One x Plain<4, 5>: 8 products per 6 or 4 outputs against 18
// or 20; winograd_kxk is Plain<4, 5> or Plain<2, 7> on both axes (F(4x4, 5x5), F(2x2, 7x7)). Their
// data gradient is the forward-type pass of dy with the flipped, channel-swapped kernel
// (Engine::backward_data, transform_weights' `transposed`).
//
// Layout and blocking as in cpu/conv_winograd.cpp, lane-mapped only: a task is one group and one
// block of at most T consecutive tiles of the (sample, tile row, tile column) order (T: V and M
// within 1 MiB, or, once the U_q outgrow that, 128 tiles so that U is read from L3 less often),
// the blocks equal and a multiple of the threads in number; the transforms gather 16 tiles per
// step, one per SIMD lane. A block's V is one row per channel holding every point's slot of
// tiles, class after class, so that a GEMM over class q reads a column range of every row and a
// transform of one channel writes one row; M (dy's transform) the same over output channels. A
// GEMM packs V_q's column panel contiguous before running U_q's row panels past it. U is made
// output channel by output channel in a staging row, then copied out as one run per class.
// Workspace: V and M (and V^T of one class, dy's transform and dU) in each thread's GEMM buffers,
// U in the calling thread's: points (2 C_g + K_g) T + classes groups C_g K_g floats and less.
//
// Determinism: every output of a forward-type pass is one GEMM sum over channels in index order,
// whatever the blocking and thread count; backward_weight sums over blocks in parts as
// cpu/conv_winograd.cpp does (parts of plan_threads(), added in part order).
//
// ISA paths: the transforms are lane loops compiled under function-level target attributes per
// path (AVX-512 and AVX2 with gather instructions, AVX-512 scattering its outputs; baseline), the
// constant matrices' zeros folded away; the micro-kernels are cpu/winograd_common.h's. The plan
// takes winograd_s2 on the AVX2 path (and its forward on the AVX-512 path with many channels),
// winograd_1d and winograd_kxk on every path (measured, cpu/conv_plan.cpp); the tests run all
// three on every path.
#include "cpu/conv_winograd_axes.h"

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

namespace convtape::cpu::winograd_axes {

namespace {

using int64 = std::int64_t;

constexpr int kLanes = 16;     // tiles per transform step
constexpr int kMaxAlpha = 15;  // points per axis of the largest scheme
constexpr int64 kAlign = 32;   // the least tiles per block
constexpr int64 kBlockBytes = 1 << 20;
constexpr int64 kReuseTiles = 128;
constexpr int64 kPanelBytes = 24576;  // one column panel of V_q, kept in L1

// ---------------------------------------------------------------------------------------------
// Axis schemes. Along one axis of the output, a tile of kTile outputs reads kIn inputs (tiles
// kStep apart), and its transform has kPoints points that fall into kClasses classes, the points
// of one class sharing one transformed weight; the kernel has kTaps taps along the axis, entering
// class c's weight with coefficient tap(c, r). The 1-D transforms run over 16 lanes: in(k) gives
// input (point, output) k's lanes, out[p] receives point (output) p's.
//
// The matrices were made with the Toom-Cook construction (scripts/winograd_s2.py derives them and
// checks them in exact arithmetic): for F(M, R) with points p, G's rows are p^k / prod_{q != p}
// (p - q), A^T's columns p^i, and B^T solves A^T [(G h) . (B^T e)] = (sum_t h_t e_{o+t})_o.

// F(5, 2) and F(4, 3): points 0, 1, -1, 2, -2 and infinity.
struct Points6 {
  static constexpr float BT[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0},
                                     {0, 4, -4, -1, 1, 0}, {0, -2, -1, 2, 1, 0},
                                     {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
  // A^T's rows 0..4 with the point at infinity in row 4 (F(5, 2)).
  static constexpr float AT[5][6] = {{1, 1, 1, 1, 1, 0},
                                     {0, 1, -1, 2, -2, 0},
                                     {0, 1, 1, 4, 4, 0},
                                     {0, 1, -1, 8, -8, 0},
                                     {0, 1, 1, 16, 16, 1}};
  static constexpr float G2[6][2] = {{1.0f / 4, 0},           {-1.0f / 6, -1.0f / 6},
                                     {-1.0f / 6, 1.0f / 6},   {1.0f / 24, 1.0f / 12},
                                     {1.0f / 24, -1.0f / 12}, {0, 1}};
};

// F(7, 2), F(6, 3) and F(4, 5): points 0, 1, -1, 2, -2, 1/2, -1/2 and infinity.
struct Points8 {
  static constexpr float BT[8][8] = {{-1, 0, 21.0f / 4, 0, -21.0f / 4, 0, 1, 0},
                                     {0, 1, 1, -17.0f / 4, -17.0f / 4, 1, 1, 0},
                                     {0, -1, 1, 17.0f / 4, -17.0f / 4, -1, 1, 0},
                                     {0, 1.0f / 2, 1.0f / 4, -5.0f / 2, -5.0f / 4, 2, 1, 0},
                                     {0, -1.0f / 2, 1.0f / 4, 5.0f / 2, -5.0f / 4, -2, 1, 0},
                                     {0, 2, 4, -5.0f / 2, -5, 1.0f / 2, 1, 0},
                                     {0, -2, 4, 5.0f / 2, -5, -1.0f / 2, 1, 0},
                                     {0, -1, 0, 21.0f / 4, 0, -21.0f / 4, 0, 1}};
  // A^T of F(M, R) is rows 0 .. M - 1 of the powers p^i, the point at infinity in row M - 1.
  static constexpr float AT7[7][8] = {{1, 1, 1, 1, 1, 1, 1, 0},
                                      {0, 1, -1, 2, -2, 1.0f / 2, -1.0f / 2, 0},
                                      {0, 1, 1, 4, 4, 1.0f / 4, 1.0f / 4, 0},
                                      {0, 1, -1, 8, -8, 1.0f / 8, -1.0f / 8, 0},
                                      {0, 1, 1, 16, 16, 1.0f / 16, 1.0f / 16, 0},
                                      {0, 1, -1, 32, -32, 1.0f / 32, -1.0f / 32, 0},
                                      {0, 1, 1, 64, 64, 1.0f / 64, 1.0f / 64, 1}};
  static constexpr float AT6[6][8] = {{1, 1, 1, 1, 1, 1, 1, 0},
                                      {0, 1, -1, 2, -2, 1.0f / 2, -1.0f / 2, 0},
                                      {0, 1, 1, 4, 4, 1.0f / 4, 1.0f / 4, 0},
                                      {0, 1, -1, 8, -8, 1.0f / 8, -1.0f / 8, 0},
                                      {0, 1, 1, 16, 16, 1.0f / 16, 1.0f / 16, 0},
                                      {0, 1, -1, 32, -32, 1.0f / 32, -1.0f / 32, 1}};
  static constexpr float AT4[4][8] = {{1, 1, 1, 1, 1, 1, 1, 0},
                                      {0, 1, -1, 2, -2, 1.0f / 2, -1.0f / 2, 0},
                                      {0, 1, 1, 4, 4, 1.0f / 4, 1.0f / 4, 0},
                                      {0, 1, -1, 8, -8, 1.0f / 8, -1.0f / 8, 1}};
  static constexpr float AT2[2][8] = {{1, 1, 1, 1, 1, 1, 1, 0},
                                      {0, 1, -1, 2, -2, 1.0f / 2, -1.0f / 2, 1}};
  // G of F(M, R): row j is p_j^k / prod_{q != p_j} (p_j - q) for k < R, the point at infinity
  // taking the last tap.
  static constexpr float G2[8][2] = {{-1, 0},
                                     {-2.0f / 9, -2.0f / 9},
                                     {-2.0f / 9, 2.0f / 9},
                                     {1.0f / 90, 1.0f / 45},
                                     {1.0f / 90, -1.0f / 45},
                                     {32.0f / 45, 16.0f / 45},
                                     {32.0f / 45, -16.0f / 45},
                                     {0, 1}};
  static constexpr float G3[8][3] = {{-1, 0, 0},
                                     {-2.0f / 9, -2.0f / 9, -2.0f / 9},
                                     {-2.0f / 9, 2.0f / 9, -2.0f / 9},
                                     {1.0f / 90, 1.0f / 45, 2.0f / 45},
                                     {1.0f / 90, -1.0f / 45, 2.0f / 45},
                                     {32.0f / 45, 16.0f / 45, 8.0f / 45},
                                     {32.0f / 45, -16.0f / 45, 8.0f / 45},
                                     {0, 0, 1}};
  static constexpr float G5[8][5] = {{-1, 0, 0, 0, 0},
                                     {-2.0f / 9, -2.0f / 9, -2.0f / 9, -2.0f / 9, -2.0f / 9},
                                     {-2.0f / 9, 2.0f / 9, -2.0f / 9, 2.0f / 9, -2.0f / 9},
                                     {1.0f / 90, 1.0f / 45, 2.0f / 45, 4.0f / 45, 8.0f / 45},
                                     {1.0f / 90, -1.0f / 45, 2.0f / 45, -4.0f / 45, 8.0f / 45},
                                     {32.0f / 45, 16.0f / 45, 8.0f / 45, 4.0f / 45, 2.0f / 45},
                                     {32.0f / 45, -16.0f / 45, 8.0f / 45, -4.0f / 45, 2.0f / 45},
                                     {0, 0, 0, 0, 1}};
  static constexpr float G7[8][7] = {
      {-1, 0, 0, 0, 0, 0, 0},
      {-2.0f / 9, -2.0f / 9, -2.0f / 9, -2.0f / 9, -2.0f / 9, -2.0f / 9, -2.0f / 9},
      {-2.0f / 9, 2.0f / 9, -2.0f / 9, 2.0f / 9, -2.0f / 9, 2.0f / 9, -2.0f / 9},
      {1.0f / 90, 1.0f / 45, 2.0f / 45, 4.0f / 45, 8.0f / 45, 16.0f / 45, 32.0f / 45},
      {1.0f / 90, -1.0f / 45, 2.0f / 45, -4.0f / 45, 8.0f / 45, -16.0f / 45, 32.0f / 45},
      {32.0f / 45, 16.0f / 45, 8.0f / 45, 4.0f / 45, 2.0f / 45, 1.0f / 45, 1.0f / 90},
      {32.0f / 45, -16.0f / 45, 8.0f / 45, -4.0f / 45, 2.0f / 45, -1.0f / 45, 1.0f / 90},
      {0, 0, 0, 0, 0, 0, 1}};
};

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

template <class In>
[[gnu::always_inline]] inline void lane_copy(In&& in, int k, float* out) {
  std::memcpy(out, in(k), sizeof(float) * kLanes);
}

// A stride-2 3-tap axis by phases: F(M, 2) on the even inputs (taps 0 and 2) as points 0 .. M,
// the odd inputs (tap 1) as they are, points M + 1 .. 2 M, all in one class.
template <int M>
struct EvenOdd {
  using Mat = std::conditional_t<M == 5, Points6, Points8>;
  static constexpr int kEven = M + 1;
  static constexpr int kTaps = 3, kIn = 2 * M + 1, kStep = 2 * M, kTile = M, kPoints = 2 * M + 1,
                       kClasses = M + 2, kMostPoints = M;
  static constexpr int class_of(int p) { return p < kEven ? p : kEven; }
  static constexpr int class_points(int c) { return c < kEven ? 1 : M; }
  static constexpr int sub(int p) { return p < kEven ? 0 : p - kEven; }
  static constexpr float tap(int c, int r) {
    if (c == kEven) return r == 1 ? 1.0f : 0.0f;
    if (r == 1) return 0.0f;
    if constexpr (M == 5)
      return Points6::G2[c][r / 2];
    else
      return Points8::G2[c][r / 2];
  }
  static constexpr const auto& AT() {
    if constexpr (M == 5)
      return Points6::AT;
    else
      return Points8::AT7;
  }
  template <class In>
  [[gnu::always_inline]] static void input(In&& in, float (*out)[kLanes]) {
    lane_matvec<kEven, kEven, false>(
        Mat::BT, [&](int k) { return in(2 * k); }, out);
    for (int k = 0; k < M; ++k) lane_copy(in, 2 * k + 1, out[kEven + k]);
  }
  template <class In>
  [[gnu::always_inline]] static void output(In&& in, float (*out)[kLanes]) {
    lane_matvec<M, kEven, false>(AT(), in, out);
    for (int j = 0; j < M; ++j) {
      const float* odd = in(kEven + j);
      for (int l = 0; l < kLanes; ++l) out[j][l] += odd[l];
    }
  }
  template <class In>
  [[gnu::always_inline]] static void grad(In&& in, float (*out)[kLanes]) {
    lane_matvec<kEven, M, true>(AT(), in, out);
    for (int k = 0; k < M; ++k) lane_copy(in, k, out[kEven + k]);
  }
};

// The data gradient of a stride-2 3-tap axis (a stride-2 transposed correlation) by output
// phases: an output tile of 2 M consecutive outputs reads M + 1 inputs e_0 .. e_M (tiles M
// apart); its outputs of parity P are z_i = h_0 e_i + h_1 e_{i + 1}, F(M, 2) with h the kernel's
// outer taps, last first, and those of the other parity e_{i + 1 - P} times the middle tap. With
// the kernel flipped (as a data gradient's weights are transformed), h is the flipped kernel's
// taps 0 and 2, so the points, classes and taps are EvenOdd<M>'s: F(M, 2)'s M + 1 points, then
// the M inputs passed through. P = 1 for padding 1 (the tile then starts at input M t), P = 0
// for padding 0 (at M t - 1) and 2 (at M t).
template <int M, int P>
struct Spread {
  using Axis = EvenOdd<M>;
  static constexpr int kEven = M + 1, kShift = 1 - P;
  static constexpr int kTaps = 3, kIn = M + 1, kStep = M, kTile = 2 * M, kPoints = 2 * M + 1,
                       kClasses = M + 2, kMostPoints = M;
  static constexpr int class_of(int p) { return Axis::class_of(p); }
  static constexpr int class_points(int c) { return Axis::class_points(c); }
  static constexpr int sub(int p) { return Axis::sub(p); }
  static constexpr float tap(int c, int r) { return Axis::tap(c, r); }
  template <class In>
  [[gnu::always_inline]] static void input(In&& in, float (*out)[kLanes]) {
    lane_matvec<kEven, kEven, false>(Axis::Mat::BT, in, out);
    for (int i = 0; i < M; ++i) lane_copy(in, i + kShift, out[kEven + i]);
  }
  template <class In>
  [[gnu::always_inline]] static void output(In&& in, float (*out)[kLanes]) {
    alignas(64) float z[M][kLanes];
    lane_matvec<M, kEven, false>(Axis::AT(), in, z);
    for (int i = 0; i < M; ++i) {
      std::memcpy(out[2 * i + P], z[i], sizeof(z[i]));
      lane_copy(in, kEven + i, out[2 * i + 1 - P]);
    }
  }
  template <class In>
  [[gnu::always_inline]] static void grad(In&& in, float (*out)[kLanes]) {
    lane_matvec<kEven, M, true>(
        Axis::AT(), [&](int i) { return in(2 * i + P); }, out);
    for (int i = 0; i < M; ++i) lane_copy(in, 2 * i + 1 - P, out[kEven + i]);
  }
};

// A stride-1 R-tap axis: F(M, R), every point its own class.
template <int M, int R>
struct Plain {
  static constexpr int kTaps = R, kIn = M + R - 1, kStep = M, kTile = M, kPoints = M + R - 1,
                       kClasses = M + R - 1, kMostPoints = 1;
  static_assert(kPoints == 8, "the F(M, R) schemes use the eight points of Points8");
  static constexpr int class_of(int p) { return p; }
  static constexpr int class_points(int) { return 1; }
  static constexpr int sub(int) { return 0; }
  static constexpr float tap(int c, int r) {
    if constexpr (R == 3)
      return Points8::G3[c][r];
    else if constexpr (R == 5)
      return Points8::G5[c][r];
    else
      return Points8::G7[c][r];
  }
  static constexpr const auto& AT() {
    if constexpr (M == 6)
      return Points8::AT6;
    else if constexpr (M == 4)
      return Points8::AT4;
    else
      return Points8::AT2;
  }
  template <class In>
  [[gnu::always_inline]] static void input(In&& in, float (*out)[kLanes]) {
    lane_matvec<kPoints, kPoints, false>(Points8::BT, in, out);
  }
  template <class In>
  [[gnu::always_inline]] static void output(In&& in, float (*out)[kLanes]) {
    lane_matvec<M, kPoints, false>(AT(), in, out);
  }
  template <class In>
  [[gnu::always_inline]] static void grad(In&& in, float (*out)[kLanes]) {
    lane_matvec<kPoints, M, true>(AT(), in, out);
  }
};

// An axis of extent 1 (the rows of a 1-D convolution).
struct One {
  static constexpr int kTaps = 1, kIn = 1, kStep = 1, kTile = 1, kPoints = 1, kClasses = 1,
                       kMostPoints = 1;
  static constexpr int class_of(int) { return 0; }
  static constexpr int class_points(int) { return 1; }
  static constexpr int sub(int) { return 0; }
  static constexpr float tap(int, int) { return 1.0f; }
  template <class In>
  [[gnu::always_inline]] static void input(In&& in, float (*out)[kLanes]) {
    lane_copy(in, 0, out[0]);
  }
  template <class In>
  [[gnu::always_inline]] static void output(In&& in, float (*out)[kLanes]) {
    lane_copy(in, 0, out[0]);
  }
  template <class In>
  [[gnu::always_inline]] static void grad(In&& in, float (*out)[kLanes]) {
    lane_copy(in, 0, out[0]);
  }
};

// A 2-D scheme: Row along the output rows, Col along the columns. Point xi = Col::kPoints a + b
// lies in class q = Col::kClasses class_of(a) + class_of(b); a class's points are consecutive
// slots (from first[q], count[q] of them).
template <class Row, class Col>
struct Scheme {
  static constexpr int kPoints = Row::kPoints * Col::kPoints;
  static constexpr int kClasses = Row::kClasses * Col::kClasses;
  static constexpr int kTaps = Row::kTaps * Col::kTaps;  // kernel taps per channel pair
  int cls[kPoints] = {}, slot[kPoints] = {}, count[kClasses] = {}, first[kClasses + 1] = {};
  constexpr Scheme() {
    for (int q = 0; q < kClasses; ++q)
      count[q] = Row::class_points(q / Col::kClasses) * Col::class_points(q % Col::kClasses);
    for (int q = 0; q < kClasses; ++q) first[q + 1] = first[q] + count[q];
    for (int a = 0; a < Row::kPoints; ++a)
      for (int b = 0; b < Col::kPoints; ++b) {
        const int ca = Row::class_of(a), cb = Col::class_of(b), q = ca * Col::kClasses + cb;
        cls[a * Col::kPoints + b] = q;
        slot[a * Col::kPoints + b] = first[q] + Row::sub(a) * Col::class_points(cb) + Col::sub(b);
      }
  }
};
template <class Row, class Col>
constexpr Scheme<Row, Col> kScheme{};

// ---------------------------------------------------------------------------------------------
// Transforms over 16 lanes, compiled per scheme and ISA by the wrappers below.

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

// V = the input transform of 16 gathered tiles d[i][j][lane], columns first; point xi of lane l
// to dst[off[xi] + l].
template <class Row, class Col>
[[gnu::always_inline]] inline void input_impl(const float (&d)[Row::kIn][Col::kIn][kLanes],
                                              float* dst, const int64* off) {
  alignas(64) float t[Col::kPoints][Row::kIn][kLanes];  // t[b][i]: column point b of row i
  for (int i = 0; i < Row::kIn; ++i) {
    alignas(64) float row[Col::kPoints][kLanes];
    Col::input([&](int k) { return d[i][k]; }, row);
    for (int b = 0; b < Col::kPoints; ++b) std::memcpy(t[b][i], row[b], sizeof(row[0]));
  }
  for (int b = 0; b < Col::kPoints; ++b) {
    alignas(64) float o[Row::kPoints][kLanes];
    Row::input([&](int k) { return t[b][k]; }, o);
    for (int a = 0; a < Row::kPoints; ++a)
      std::memcpy(dst + off[a * Col::kPoints + b], o[a], sizeof(o[a]));
  }
}

// y = the output transform (+ bias) of 16 tiles, point xi of lane l read at src[off[xi] + l].
template <class Row, class Col>
[[gnu::always_inline]] inline void output_impl(const float* src, const int64* off, float bias,
                                               float (&y)[Row::kTile][Col::kTile][kLanes]) {
  alignas(64) float t[Col::kTile][Row::kPoints][kLanes];  // t[j][a]: output column j, point row a
  for (int a = 0; a < Row::kPoints; ++a) {
    const int64* row = off + a * Col::kPoints;
    alignas(64) float r[Col::kTile][kLanes];
    Col::output([&](int k) { return src + row[k]; }, r);
    for (int j = 0; j < Col::kTile; ++j) std::memcpy(t[j][a], r[j], sizeof(r[j]));
  }
  for (int j = 0; j < Col::kTile; ++j) {
    alignas(64) float r[Row::kTile][kLanes];
    Row::output([&](int k) { return t[j][k]; }, r);
    for (int i = 0; i < Row::kTile; ++i)
      for (int l = 0; l < kLanes; ++l) y[i][j][l] = r[i][l] + bias;
  }
}

// Z = the output-gradient transform of 16 gathered output tiles of dy; point xi of lane l to
// dst[off[xi] + l].
template <class Row, class Col>
[[gnu::always_inline]] inline void grad_impl(const float (&d)[Row::kTile][Col::kTile][kLanes],
                                             float* dst, const int64* off) {
  alignas(64) float t[Col::kPoints][Row::kTile][kLanes];  // t[b][i]: column point b of row i
  for (int i = 0; i < Row::kTile; ++i) {
    alignas(64) float row[Col::kPoints][kLanes];
    Col::grad([&](int k) { return d[i][k]; }, row);
    for (int b = 0; b < Col::kPoints; ++b) std::memcpy(t[b][i], row[b], sizeof(row[0]));
  }
  for (int b = 0; b < Col::kPoints; ++b) {
    alignas(64) float o[Row::kPoints][kLanes];
    Row::grad([&](int k) { return t[b][k]; }, o);
    for (int a = 0; a < Row::kPoints; ++a)
      std::memcpy(dst + off[a * Col::kPoints + b], o[a], sizeof(o[a]));
  }
}

// u[q * us + l] = the class-q weight of the n <= 16 kernels g + gs l (Row::kTaps x Col::kTaps
// row-major, reversed when flip is set).
template <class Row, class Col>
[[gnu::always_inline]] inline void weight_impl(const float* g, int64 gs, int n, bool flip, float* u,
                                               int64 us) {
  constexpr int RT = Row::kTaps, CT = Col::kTaps;
  alignas(64) float gk[RT * CT][kLanes];
  for (int e = 0; e < RT * CT; ++e)
    for (int l = 0; l < kLanes; ++l)
      gk[e][l] = l < n ? g[gs * l + (flip ? RT * CT - 1 - e : e)] : 0.0f;
  alignas(64) float t[Row::kClasses][CT][kLanes];  // t[ca][s]: the rows combined, column s
  for (int ca = 0; ca < Row::kClasses; ++ca)
    for (int s = 0; s < CT; ++s)
      for (int l = 0; l < kLanes; ++l) {
        float v = 0;
        for (int r = 0; r < RT; ++r) v += Row::tap(ca, r) * gk[r * CT + s][l];
        t[ca][s][l] = v;
      }
  for (int ca = 0; ca < Row::kClasses; ++ca)
    for (int cb = 0; cb < Col::kClasses; ++cb) {
      alignas(64) float o[kLanes];
      for (int l = 0; l < kLanes; ++l) {
        float v = 0;
        for (int s = 0; s < CT; ++s) v += t[ca][s][l] * Col::tap(cb, s);
        o[l] = v;
      }
      float* uq = u + (ca * Col::kClasses + cb) * us;
      if (n == kLanes)
        std::memcpy(uq, o, sizeof(o));
      else
        for (int l = 0; l < n; ++l) uq[l] = o[l];
    }
}

// dw_l = the adjoint of weight_impl for n <= 16 channel pairs: du_l's class q at du[q * xs + l]
// (16 readable lanes), dw_l written at dw + taps l.
template <class Row, class Col>
[[gnu::always_inline]] inline void adjoint_impl(const float* du, int64 xs, int n, float* dw) {
  constexpr int RT = Row::kTaps, CT = Col::kTaps;
  alignas(64) float t[Row::kClasses][CT][kLanes];  // t[ca][s]: column classes folded into s
  for (int ca = 0; ca < Row::kClasses; ++ca)
    for (int s = 0; s < CT; ++s)
      for (int l = 0; l < kLanes; ++l) {
        float v = 0;
        for (int cb = 0; cb < Col::kClasses; ++cb)
          v += Col::tap(cb, s) * du[(ca * Col::kClasses + cb) * xs + l];
        t[ca][s][l] = v;
      }
  alignas(64) float out[kLanes][RT * CT];
  for (int r = 0; r < RT; ++r)
    for (int s = 0; s < CT; ++s)
      for (int l = 0; l < kLanes; ++l) {
        float v = 0;
        for (int ca = 0; ca < Row::kClasses; ++ca) v += Row::tap(ca, r) * t[ca][s][l];
        out[l][r * CT + s] = v;
      }
  std::memcpy(dw, out, sizeof(float) * RT * CT * static_cast<std::size_t>(n));
}

// Lane gathers and scatters of R x C tiles: d[i][j][l] = element (i, j) of lane l's tile, zero
// where its bits are clear; the AVX-512 path with masked gather and scatter instructions, AVX2
// with two masked 8-lane gathers, the baseline element by element.
template <int R, int C>
[[gnu::always_inline]] inline void gather_lanes(const float* base, const Lanes& m, int64 w,
                                                float (&d)[R][C][kLanes]) {
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < C; ++j)
      for (int l = 0; l < kLanes; ++l)
        d[i][j][l] = lane_in(m, i, j, l) ? base[m.off[l] + i * w + j] : 0.0f;
}

template <int R, int C>
[[gnu::always_inline]] inline void scatter_lanes(const float (&d)[R][C][kLanes], float* base,
                                                 const Lanes& m, int64 w) {
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < C; ++j)
      for (int l = 0; l < kLanes; ++l)
        if (lane_in(m, i, j, l)) base[m.off[l] + i * w + j] = d[i][j][l];
}

template <int R, int C>
__attribute__((target("avx512f"), always_inline)) inline void gather_lanes_avx512(
    const float* base, const Lanes& m, int64 w, float (&d)[R][C][kLanes]) {
  const __m512i off = _mm512_loadu_si512(m.off);
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < C; ++j) {
      const __m512i idx = _mm512_add_epi32(off, _mm512_set1_epi32(static_cast<int>(i * w + j)));
      const __mmask16 on = static_cast<__mmask16>(m.rows[i] & m.cols[j]);
      _mm512_store_ps(d[i][j], _mm512_mask_i32gather_ps(_mm512_setzero_ps(), on, idx, base, 4));
    }
}

template <int R, int C>
__attribute__((target("avx512f"), always_inline)) inline void scatter_lanes_avx512(
    const float (&d)[R][C][kLanes], float* base, const Lanes& m, int64 w) {
  const __m512i off = _mm512_loadu_si512(m.off);
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < C; ++j) {
      const __m512i idx = _mm512_add_epi32(off, _mm512_set1_epi32(static_cast<int>(i * w + j)));
      const __mmask16 on = static_cast<__mmask16>(m.rows[i] & m.cols[j]);
      _mm512_mask_i32scatter_ps(base, on, idx, _mm512_load_ps(d[i][j]), 4);
    }
}

template <int R, int C>
__attribute__((target("avx2,fma"), always_inline)) inline void gather_lanes_avx2(
    const float* base, const Lanes& m, int64 w, float (&d)[R][C][kLanes]) {
  const __m256i select = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  for (int h = 0; h < 2; ++h) {
    const __m256i off = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(m.off + 8 * h));
    for (int i = 0; i < R; ++i)
      for (int j = 0; j < C; ++j) {
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
  void (*weight)(const float*, int64, int, bool, float*, int64);
  void (*adjoint)(const float*, int64, int, float*);
  const winograd::MicroKernel* gemm;
};

#define CT_AXES_TRANSFORMS(SUFFIX, TARGET, GATHER, SCATTER)                                     \
  template <class Row, class Col>                                                               \
  TARGET void input_##SUFFIX(const float* base, const Lanes& m, int64 w, float* dst,            \
                             const int64* off) {                                                \
    alignas(64) float d[Row::kIn][Col::kIn][kLanes];                                            \
    GATHER<Row::kIn, Col::kIn>(base, m, w, d);                                                  \
    input_impl<Row, Col>(d, dst, off);                                                          \
  }                                                                                             \
  template <class Row, class Col>                                                               \
  TARGET void output_##SUFFIX(const float* src, const int64* off, float* base, const Lanes& m,  \
                              int64 w, float bias) {                                            \
    alignas(64) float y[Row::kTile][Col::kTile][kLanes];                                        \
    output_impl<Row, Col>(src, off, bias, y);                                                   \
    SCATTER<Row::kTile, Col::kTile>(y, base, m, w);                                             \
  }                                                                                             \
  template <class Row, class Col>                                                               \
  TARGET void grad_##SUFFIX(const float* base, const Lanes& m, int64 w, float* dst,             \
                            const int64* off) {                                                 \
    alignas(64) float d[Row::kTile][Col::kTile][kLanes];                                        \
    GATHER<Row::kTile, Col::kTile>(base, m, w, d);                                              \
    grad_impl<Row, Col>(d, dst, off);                                                           \
  }                                                                                             \
  template <class Row, class Col>                                                               \
  TARGET void weight_##SUFFIX(const float* g, int64 gs, int n, bool flip, float* u, int64 us) { \
    weight_impl<Row, Col>(g, gs, n, flip, u, us);                                               \
  }                                                                                             \
  template <class Row, class Col>                                                               \
  TARGET void adjoint_##SUFFIX(const float* du, int64 xs, int n, float* dw) {                   \
    adjoint_impl<Row, Col>(du, xs, n, dw);                                                      \
  }                                                                                             \
  template <class Row, class Col>                                                               \
  Path path_##SUFFIX(Isa isa) {                                                                 \
    return {                                                                                    \
        &input_##SUFFIX<Row, Col>,  &output_##SUFFIX<Row, Col>,  &grad_##SUFFIX<Row, Col>,      \
        &weight_##SUFFIX<Row, Col>, &adjoint_##SUFFIX<Row, Col>, &winograd::micro_kernel(isa)}; \
  }

CT_AXES_TRANSFORMS(avx512, __attribute__((target("avx512f,fma"))), gather_lanes_avx512,
                   scatter_lanes_avx512)
CT_AXES_TRANSFORMS(avx2, __attribute__((target("avx2,fma"))), gather_lanes_avx2, scatter_lanes)
CT_AXES_TRANSFORMS(portable, , gather_lanes, scatter_lanes)

#undef CT_AXES_TRANSFORMS

template <class Row, class Col>
Path path_for(Isa isa) {
  switch (isa) {
    case Isa::avx512:
      return path_avx512<Row, Col>(isa);
    case Isa::avx2:
      return path_avx2<Row, Col>(isa);
    default:
      return path_portable<Row, Col>(isa);
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

template <class Row, class Col>
struct Engine {
  using S = Scheme<Row, Col>;
  static constexpr int kPoints = S::kPoints, kClasses = S::kClasses, kTaps = S::kTaps;
  static constexpr const S& kTable = kScheme<Row, Col>;

  // ---------------------------------------------------------------------------------------------
  // The blocks of tiles.

  // One convolution: x [N, groups * ci, hi, wi] -> y [N, groups * co, ho, wo], output tile
  // (ty, tx) of Row::kTile x Col::kTile reading the Row::kIn x Col::kIn input tile at
  // (Row::kStep ty - ph, Col::kStep tx - pw) (reads outside are zeros).
  struct Pass {
    int64 batch = 0, groups = 1, ci = 0, co = 0, hi = 0, wi = 0, ho = 0, wo = 0, ph = 0, pw = 0;
    int64 th() const { return ceil_div(ho, Row::kTile); }
    int64 tw() const { return ceil_div(wo, Col::kTile); }
    int64 tiles() const { return checked::mul(batch, th() * tw(), "winograd_s2", "the tiles"); }
  };

  static Pass pass_of(const ConvGeometry& g) {
    Pass p;
    p.batch = g.batch;
    p.groups = g.groups;
    p.ci = g.group_channels();
    p.co = g.group_out_channels();
    // A 1-D convolution is one row.
    const bool line = g.spatial() == 1;
    p.hi = line ? 1 : g.in[0];
    p.wi = g.in.back();
    p.ho = line ? 1 : g.out[0];
    p.wo = g.out.back();
    p.ph = line ? 0 : g.pad_lo[0];
    p.pw = g.pad_lo.back();
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
        const int64 iy = Row::kStep * ty - p.ph, ix = Col::kStep * tx - p.pw;
        run.in.off[l] = static_cast<std::int32_t>((n - run.n) * in_sample + iy * p.wi + ix);
        for (int i = 0; i < Row::kIn; ++i)
          if (iy + i >= 0 && iy + i < p.hi) run.in.rows[i] |= 1u << l;
        for (int j = 0; j < Col::kIn; ++j)
          if (ix + j >= 0 && ix + j < p.wi) run.in.cols[j] |= 1u << l;
        const int64 oy = Row::kTile * ty, ox = Col::kTile * tx;
        run.out.off[l] = static_cast<std::int32_t>((n - run.n) * out_sample + oy * p.wo + ox);
        for (int i = 0; i < Row::kTile; ++i)
          if (oy + i < p.ho) run.out.rows[i] |= 1u << l;
        for (int j = 0; j < Col::kTile; ++j)
          if (ox + j < p.wo) run.out.cols[j] |= 1u << l;
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
    const int64 step = input ? Row::kStep : Row::kTile, taps = input ? Row::kIn : Row::kTile;
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

  // The distance between two classes' U_q: kp x ci floats and one cache line, so that the
  // (M + 2)^2 runs one output channel's staging row is copied to, kp ci floats apart, do not all
  // start in one cache set.
  static int64 class_stride(const Pass& p, int64 kp) {
    return checked::mul(kp, p.ci, "winograd_s2", "the weights") + 16;
  }

  // Transformed weights [groups][classes][kp][ci] (rows past co zero), in the calling thread's GEMM
  // workspace B (the passes' threads use the other buffers; each thread's staging row is its
  // buffer A, free until the pass packs V's panels there). w is [groups * co][ci][taps], or,
  // transposed (the data gradient as a forward pass of dy), [groups * ci][co][taps] flipped.
  static const float* transform_weights(const Path& path, const float* w, const Pass& p, int64 kp,
                                        bool transposed) {
    const int64 qs = class_stride(p, kp);
    const int64 size = checked::mul(p.groups * kClasses, qs, "winograd_s2", "the weights");
    float* u = gemm_workspace<float>(GemmBuffer::B, size);
    for (int64 gq = 0; gq < p.groups * kClasses; ++gq)
      std::fill(u + gq * qs + p.co * p.ci, u + (gq + 1) * qs, 0.0f);
    // Each output channel's classes are made in a staging buffer (cache resident), then copied
    // to U as kClasses contiguous runs of ci floats: written straight into U, every 16 channels
    // would store one line into each of kClasses distant rows.
    const int64 tasks = p.groups * p.co, sp = round_up(p.ci, kLanes) + kLanes;
#pragma omp parallel if (tasks * p.ci >= 4096)
    {
      float* stage = gemm_workspace<float>(GemmBuffer::A, kClasses * sp);
#pragma omp for schedule(static)
      for (int64 t = 0; t < tasks; ++t) {
        const int64 grp = t / p.co, o = t % p.co;
        for (int64 c = 0; c < p.ci; c += kLanes) {
          const int n = static_cast<int>(std::min<int64>(kLanes, p.ci - c));
          const float* g = transposed ? w + ((grp * p.ci + c) * p.co + o) * kTaps
                                      : w + ((grp * p.co + o) * p.ci + c) * kTaps;
          path.weight(g, transposed ? p.co * kTaps : kTaps, n, transposed, stage + c, sp);
        }
        float* uo = u + grp * kClasses * qs + o * p.ci;
        for (int q = 0; q < kClasses; ++q)
          std::memcpy(uo + q * qs, stage + q * sp, sizeof(float) * p.ci);
      }
    }
    return u;
  }

  static void forward(const float* x, const float* w, const float* b, float* y,
                      const ConvGeometry& g) {
    run(x, w, false, b, y, pass_of(g));
  }

  // A data gradient's forward-type pass, dy -> dx, the flipped, channel-swapped kernel's: g's pass
  // with its channels and extents swapped and the tile origins offset by (ph, pw).
  static Pass data_pass_of(const ConvGeometry& g, int64 ph, int64 pw) {
    const Pass f = pass_of(g);
    Pass p = f;
    p.ci = f.co;
    p.co = f.ci;
    p.hi = f.ho;
    p.wi = f.wo;
    p.ho = f.hi;
    p.wo = f.wi;
    p.ph = ph;
    p.pw = pw;
    return p;
  }

  // The data gradient of a stride-1 scheme: the forward-type pass of dy with the flipped,
  // channel-swapped kernel, padding taps - 1 - pad_lo below.
  static void backward_data(const float* dy, const float* w, float* dx, const ConvGeometry& g) {
    const Pass f = pass_of(g);
    run(dy, w, true, nullptr, dx, data_pass_of(g, Row::kTaps - 1 - f.ph, Col::kTaps - 1 - f.pw));
  }

  // A forward-type pass src -> dst (weights as transform_weights takes them).
  static void run(const float* x, const float* w, bool transposed, const float* b, float* y,
                  const Pass& p) {
    const Path path = path_for<Row, Col>(isa());
    const winograd::MicroKernel& mk = *path.gemm;
    const int64 kp = round_up(p.co, mk.mr);
    const float* u = transform_weights(path, w, p, kp, transposed);
    const int64 qs = class_stride(p, kp);
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
      float* pb = gemm_workspace<float>(GemmBuffer::A, kslice * mk.nr);
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
        const float* ug = u + grp * kClasses * qs;
        for (int q = 0; q < kClasses; ++q) {
          const float* uq = ug + q * qs;
          const float* vq = v + lv.class_at(q);
          float* mq = m + lm.class_at(q);
          const int64 cols = lv.cols(q), ld = lv.ld();  // the class's points side by side
          // One column panel of V_q (a slice of its C_g rows by nr tiles), packed contiguous (its
          // rows lie a whole V row apart, one page each: packed, every pass ran 1-5% faster),
          // stays in L1 while every row panel of U_q streams past it.
          for (int64 c0 = 0; c0 < p.ci; c0 += kslice) {
            const int64 kc = std::min(kslice, p.ci - c0);
            for (int64 j = 0; j < cols; j += mk.nr) {
              const int64 width = std::min<int64>(mk.nr, cols - j);
              pack_rows(vq + c0 * ld + j, ld, kc, width, mk.nr, pb);
              const auto kernel = width == mk.nr ? mk.kernel : mk.half;
              for (int64 i = i0; i < i1; i += mk.mr)
                kernel(kc, uq + i * p.ci + c0, p.ci, pb, mk.nr, mq + i * ld + j, ld, c0 > 0);
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
    const Path path = path_for<Row, Col>(isa());
    const winograd::MicroKernel& mk = *path.gemm;
    const Pass p = pass_of(g);
    const int64 kp = round_up(p.co, mk.mr), cp = round_up(p.ci, mk.nr);
    const int64 total = p.tiles();
    const int64 per = block_tiles(kPoints * (2 * p.ci + kp), kp * p.ci, total);
    const int64 blocks = ceil_div(total, per);
    const int64 tasks = checked::mul(p.groups, blocks, "winograd_s2", "the tasks");
    const int64 v_size = checked::mul(kPoints * p.ci, per, "winograd_s2", "the workspace");
    // V_q^T of one class at a time: at most M * M slots of tiles by cp channels.
    const int64 vt_size =
        checked::mul(Row::kMostPoints * Col::kMostPoints * cp, per, "winograd_s2", "the workspace");
    const int64 z_size = checked::mul(kPoints * kp, per, "winograd_s2", "the workspace");
    // dU [groups][classes][kp][cp], classes sxs apart.
    const int64 sxs = checked::mul(kp, cp, "winograd_s2", "the workspace") + 16;
    const int64 s_size = checked::mul(p.groups * kClasses, sxs, "winograd_s2", "the workspace");
    const int64 w_size = p.groups * p.co * p.ci * kTaps;
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
        winograd::part_weights(s, kClasses, sxs, cp, touched, p.co, p.ci, kTaps, path.adjoint,
                               part == 0 ? dw : partial.get() + (part - 1) * w_size);
      }
    }
    winograd::add_parts(dw, partial.get(), used, w_size);
  }
};

// Whether every lane offset of a run (at most 16 samples apart, rows and columns of a tile past
// its origin) fits an int32, in the input and in the output.
bool offsets_fit(const ConvGeometry& g) {
  const auto fits = [](std::optional<int64> sample, int64 w) {
    if (!sample) return false;
    const auto span = checked::try_mul(kLanes + 1, *sample);
    return span && *span + 16 * w + 16 <= INT32_MAX;
  };
  return fits(checked::try_mul(g.channels, g.in_numel()), g.in.back()) &&
         fits(checked::try_mul(g.out_channels, g.out_numel()), g.out.back());
}

// The three passes of a stride-1 path whose scheme pick(g, f) chooses per geometry (calling f
// with that scheme's Engine).
template <class Pick>
struct Stride1Passes {
  static void forward(const float* x, const float* w, const float* b, float* y,
                      const ConvGeometry& g) {
    Pick::with(g, [&](auto e) { e.forward(x, w, b, y, g); });
  }
  static void backward_data(const float* dy, const float* w, float* dx, const ConvGeometry& g) {
    Pick::with(g, [&](auto e) { e.backward_data(dy, w, dx, g); });
  }
  static void backward_weight(const float* dy, const float* x, float* dw, const ConvGeometry& g) {
    Pick::with(g, [&](auto e) { e.backward_weight(dy, x, dw, g); });
  }
};

}  // namespace

}  // namespace convtape::cpu::winograd_axes

namespace convtape::cpu::winograd_s2 {

namespace {

using winograd_axes::ceil_div;
using winograd_axes::EvenOdd;
using int64 = std::int64_t;
using winograd_axes::Spread;
template <int M>
using Engine = winograd_axes::Engine<EvenOdd<M>, EvenOdd<M>>;

// The transformed points of a geometry's output under M x M tiles.
int64 scheme_points(const ConvGeometry& g, int64 m) {
  return (2 * m + 1) * (2 * m + 1) * ceil_div(g.out[0], m) * ceil_div(g.out[1], m);
}

// The same for the data gradient's 2M x 2M tiles of the input.
int64 data_points(const ConvGeometry& g, int64 m) {
  return (2 * m + 1) * (2 * m + 1) * ceil_div(g.in[0], 2 * m) * ceil_div(g.in[1], 2 * m);
}

// The data gradient: dy -> dx as the forward-type pass of Spread<M, P> on both axes, dy's
// channels in and x's out, the weights transformed channel-swapped and flipped.
template <int M, int P>
void data_pass(const float* dy, const float* w, float* dx, const ConvGeometry& g) {
  using E = winograd_axes::Engine<Spread<M, P>, Spread<M, P>>;
  // A tile of dx starts at dy's M t - 1 for padding 0, at M t for 1 and 2.
  E::run(dy, w, true, nullptr, dx,
         E::data_pass_of(g, g.pad_lo[0] == 0 ? 1 : 0, g.pad_lo[1] == 0 ? 1 : 0));
}

}  // namespace
int tile(const ConvGeometry& g) {
  return scheme_points(g, 7) <= scheme_points(g, 5) ? 7 : 5;
}

int64 tiles(const ConvGeometry& g) {
  const int m = tile(g);
  return ceil_div(g.out[0], m) * ceil_div(g.out[1], m);
}

int data_tile(const ConvGeometry& g) {
  return data_points(g, 7) <= data_points(g, 5) ? 7 : 5;
}

int64 data_tiles(const ConvGeometry& g) {
  const int m = data_tile(g);
  return ceil_div(g.in[0], 2 * m) * ceil_div(g.in[1], 2 * m);
}

bool applies_data(const ConvGeometry& g) {
  return applies(g) && g.pad_lo[0] % 2 == g.pad_lo[1] % 2 &&
         2 * 9 * g.out[0] * g.out[1] >= 3 * data_points(g, data_tile(g));
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
  if (!winograd_axes::offsets_fit(g)) return false;
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

void backward_data(const float* dy, const float* w, float* dx, const ConvGeometry& g) {
  const bool odd = g.pad_lo[0] % 2 == 1;
  if (data_tile(g) == 7) return odd ? data_pass<7, 1>(dy, w, dx, g) : data_pass<7, 0>(dy, w, dx, g);
  odd ? data_pass<5, 1>(dy, w, dx, g) : data_pass<5, 0>(dy, w, dx, g);
}

void backward_weight(const float* dy, const float* x, float* dw, const ConvGeometry& g) {
  if (tile(g) == 7) return Engine<7>::backward_weight(dy, x, dw, g);
  Engine<5>::backward_weight(dy, x, dw, g);
}

}  // namespace convtape::cpu::winograd_s2

namespace convtape::cpu::winograd_1d {

namespace {

using winograd_axes::ceil_div;
using winograd_axes::One;
using winograd_axes::Plain;
using int64 = std::int64_t;

// F(6, 3) for kernel 3, F(4, 5) for kernel 5: eight points per tile either way.
struct Pick {
  template <class F>
  static void with(const ConvGeometry& g, F&& f) {
    if (g.kernel[0] == 3)
      f(winograd_axes::Engine<One, Plain<6, 3>>{});
    else
      f(winograd_axes::Engine<One, Plain<4, 5>>{});
  }
};
using Passes = winograd_axes::Stride1Passes<Pick>;

}  // namespace

int tile(const ConvGeometry& g) {
  return g.kernel[0] == 3 ? 6 : 4;
}

int64 tiles(const ConvGeometry& g) {
  return ceil_div(g.out[0], tile(g));
}

bool applies(const ConvGeometry& g) {
  if (g.spatial() != 1) return false;
  const int64 k = g.kernel[0];
  if ((k != 3 && k != 5) || g.stride[0] != 1 || g.dilation[0] != 1 || g.input_dilation[0] != 1)
    return false;
  const int64 pad_hi = g.out[0] - 1 + k - g.in[0] - g.pad_lo[0];
  if (g.pad_lo[0] < 0 || g.pad_lo[0] > k - 1 || pad_hi < 0 || pad_hi > k - 1) return false;
  if (g.out[0] < 1 || g.in[0] < 1 || g.batch < 1 || g.groups < 1) return false;
  if (!winograd_axes::offsets_fit(g)) return false;
  // Measured against the GEMM paths (cpu/conv_plan.cpp): the transforms cost per input and per
  // output channel and the GEMMs save per channel pair, so ci co / (ci + co) must reach 32 (64 ->
  // 64 ran 1.14-1.57x faster, 32 -> 32 no faster); and the outputs must fill most of their tiles
  // (8 products per tile against k per output, kept at 1.5x fewer or better).
  const int64 ci = g.group_channels(), co = g.group_out_channels();
  return ci * co >= 32 * (ci + co) && 2 * k * g.out[0] >= 3 * 8 * tiles(g);
}

void forward(const float* x, const float* w, const float* b, float* y, const ConvGeometry& g) {
  Passes::forward(x, w, b, y, g);
}

void backward_data(const float* dy, const float* w, float* dx, const ConvGeometry& g) {
  Passes::backward_data(dy, w, dx, g);
}

void backward_weight(const float* dy, const float* x, float* dw, const ConvGeometry& g) {
  Passes::backward_weight(dy, x, dw, g);
}

}  // namespace convtape::cpu::winograd_1d

namespace convtape::cpu::winograd_kxk {

namespace {

using winograd_axes::ceil_div;
using winograd_axes::Plain;
using int64 = std::int64_t;

// F(4x4, 5x5) for 5x5 kernels, F(2x2, 7x7) for 7x7: 8 x 8 points per tile either way.
struct Pick {
  template <class F>
  static void with(const ConvGeometry& g, F&& f) {
    if (g.kernel[0] == 5)
      f(winograd_axes::Engine<Plain<4, 5>, Plain<4, 5>>{});
    else
      f(winograd_axes::Engine<Plain<2, 7>, Plain<2, 7>>{});
  }
};
using Passes = winograd_axes::Stride1Passes<Pick>;

}  // namespace

int tile(const ConvGeometry& g) {
  return g.kernel[0] == 5 ? 4 : 2;
}

int64 tiles(const ConvGeometry& g) {
  const int m = tile(g);
  return ceil_div(g.out[0], m) * ceil_div(g.out[1], m);
}

bool applies(const ConvGeometry& g) {
  if (g.spatial() != 2) return false;
  const int64 k = g.kernel[0];
  if (k != 5 && k != 7) return false;
  for (int d = 0; d < 2; ++d) {
    if (g.kernel[d] != k || g.stride[d] != 1 || g.dilation[d] != 1 || g.input_dilation[d] != 1)
      return false;
    const int64 pad_hi = g.out[d] - 1 + k - g.in[d] - g.pad_lo[d];
    if (g.pad_lo[d] < 0 || g.pad_lo[d] > k - 1 || pad_hi < 0 || pad_hi > k - 1) return false;
    if (g.out[d] < 1 || g.in[d] < 1) return false;
  }
  if (g.batch < 1 || g.groups < 1 || !winograd_axes::offsets_fit(g)) return false;
  // Measured against the plan's other paths (cpu/conv_plan.cpp): enough channels per group to pay
  // for the transforms, and outputs that fill most of their tiles (64 products per tile against
  // k^2 per output, kept at 2.5x fewer or better).
  const int64 ci = g.group_channels(), co = g.group_out_channels();
  return ci * co >= 16 * (ci + co) && 2 * k * k * g.out[0] * g.out[1] >= 5 * 64 * tiles(g);
}

void forward(const float* x, const float* w, const float* b, float* y, const ConvGeometry& g) {
  Passes::forward(x, w, b, y, g);
}

void backward_data(const float* dy, const float* w, float* dx, const ConvGeometry& g) {
  Passes::backward_data(dy, w, dx, g);
}

void backward_weight(const float* dy, const float* x, float* dw, const ConvGeometry& g) {
  Passes::backward_weight(dy, x, dw, g);
}

}  // namespace convtape::cpu::winograd_kxk
