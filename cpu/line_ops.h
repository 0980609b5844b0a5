// Plane kernels for the direct (depthwise) convolution loops over a zero-padded plane `src`, and
// row copies of the implicit GEMM, each compiled for AVX-512, AVX2 and plain x86-64; each call
// takes the path `isa` names (cpu/isa.h), which the caller reads once per convolution, outside any
// parallel region (cpu::isa() may throw on an invalid CONVTAPE_ISA, and an exception must not leave
// an OpenMP region). An output plane is `nlines` lines of `n` contiguous values; output line l,
// kernel tap t and position j read src[lines[l] + taps[t] + j * step], which the caller keeps
// inside the padded plane.
//   taps:     dst[l*n + j] += sum_t w[t] * src[...]            (forward; the partial sums of a
//   block
//                                                              stay in registers across the taps)
//   tap_dots: dw[t]        += sum_l sum_j grad[l*n + j] * src[...]   (weight gradient)
//   scatter:  src[...]     += w[t] * grad[l*n + j]             (data gradient, the adjoint of taps)
// Whole planes per call keep the per-line call overhead out of the short (tens of values) lines.
#pragma once

#include <cstdint>

#include "cpu/isa.h"

namespace convtape::cpu::line {

struct PlaneMap {
  const std::int64_t* lines;  // source offset of each output line's first tap
  std::int64_t nlines;
  const std::int64_t* taps;  // source offset of each tap relative to the first
  std::int64_t ntaps;
  std::int64_t n;     // outputs per line
  std::int64_t step;  // source stride between neighbouring outputs of a line
};

void taps(Isa isa, float* dst, const float* src, const float* w, float b, const PlaneMap& m);
void taps(Isa isa, double* dst, const double* src, const double* w, double b, const PlaneMap& m);
void tap_dots(Isa isa, float* dw, const float* grad, const float* src, const PlaneMap& m);
void tap_dots(Isa isa, double* dw, const double* grad, const double* src, const PlaneMap& m);
void scatter(Isa isa, float* src, const float* grad, const float* w, const PlaneMap& m);
void scatter(Isa isa, double* src, const double* grad, const double* w, const PlaneMap& m);

// Row copies between a dense plane (rows of n values) and the interior of a padded one:
//   scatter_rows: dst[offsets[r] + j] = src[r*n + j]
//   gather_rows:  dst[r*n + j]        = src[offsets[r] + j]
void scatter_rows(Isa isa, float* dst, const std::int64_t* offsets, const float* src,
                  std::int64_t rows, std::int64_t n);
void scatter_rows(Isa isa, double* dst, const std::int64_t* offsets, const double* src,
                  std::int64_t rows, std::int64_t n);
void gather_rows(Isa isa, float* dst, const float* src, const std::int64_t* offsets,
                 std::int64_t rows, std::int64_t n);
void gather_rows(Isa isa, double* dst, const double* src, const std::int64_t* offsets,
                 std::int64_t rows, std::int64_t n);

// Row operations of the implicit GEMM (cpu/conv_implicit.cpp):
//   add_rows:       for r < rows and each segment e, j < e.n:
//                   dst[r*ldd + e.dst + j] = src[r*lds + e.src + j] + bias[r]  (bias null: + 0);
//                   a grid tile's rows -> output lines, row by row so that both sides stream,
//                   one add per value so that every path rounds alike
//   gather_strided: dst[j] = src[j * step], j < n (one stride phase of an input line)
//   scatter_strided: dst[j * step] = src[j], j < n (its inverse; the values between are not
//                   touched)
//   gather_strided_rows / scatter_strided_rows: the same for rows r < m.rows of m.n values,
//                   dense row r at m.dense[r] (or r * m.n when m.dense is null), strided row r at
//                   m.strided[r], step m.step; whole planes per call, since the rows of a stride
//                   or dilation phase are tens of values and a call per row cost more than the
//                   copy
struct Segment {
  std::int64_t src, dst, n;
};
void add_rows(Isa isa, float* dst, std::int64_t ldd, const float* src, std::int64_t lds,
              const float* bias, std::int64_t rows, const Segment* segs, std::int64_t nsegs);
void add_rows(Isa isa, double* dst, std::int64_t ldd, const double* src, std::int64_t lds,
              const double* bias, std::int64_t rows, const Segment* segs, std::int64_t nsegs);
// add_rows with every step-th value of dst: dst[r*ldd + e.dst + j*step] = src[r*lds + e.src + j]
// + bias[r]; the values between are not touched (a stride phase's GEMM columns into dx).
void add_rows_strided(Isa isa, float* dst, std::int64_t ldd, const float* src, std::int64_t lds,
                      const float* bias, std::int64_t rows, const Segment* segs, std::int64_t nsegs,
                      std::int64_t step);
void add_rows_strided(Isa isa, double* dst, std::int64_t ldd, const double* src, std::int64_t lds,
                      const double* bias, std::int64_t rows, const Segment* segs,
                      std::int64_t nsegs, std::int64_t step);
// transpose_add: dst[k*ldd + i] = src[i*lds + k] + bias[k] (bias null: + 0) for k < nk, i < ni;
// a positions x channels tile into channel rows, in blocks transposed in registers (float:
// AVX-512 16 x 16, AVX2 8 x 8; otherwise 16 x 16 blocked loops).
void transpose_add(Isa isa, float* dst, std::int64_t ldd, const float* src, std::int64_t lds,
                   const float* bias, std::int64_t nk, std::int64_t ni);
void transpose_add(Isa isa, double* dst, std::int64_t ldd, const double* src, std::int64_t lds,
                   const double* bias, std::int64_t nk, std::int64_t ni);
void gather_strided(Isa isa, float* dst, const float* src, std::int64_t step, std::int64_t n);
void gather_strided(Isa isa, double* dst, const double* src, std::int64_t step, std::int64_t n);
void scatter_strided(Isa isa, float* dst, const float* src, std::int64_t step, std::int64_t n);
void scatter_strided(Isa isa, double* dst, const double* src, std::int64_t step, std::int64_t n);
struct StridedRows {
  const std::int64_t* strided;
  const std::int64_t* dense;  // null: row r at r * n
  std::int64_t rows, n, step;
};
void gather_strided_rows(Isa isa, float* dst, const StridedRows& m, const float* src);
void gather_strided_rows(Isa isa, double* dst, const StridedRows& m, const double* src);
void scatter_strided_rows(Isa isa, float* dst, const StridedRows& m, const float* src);
void scatter_strided_rows(Isa isa, double* dst, const StridedRows& m, const double* src);

}  // namespace convtape::cpu::line
