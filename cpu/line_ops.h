// Plane kernels for the direct (depthwise) convolution loops over a zero-padded plane `src`, each
// compiled for AVX-512, AVX2 and plain x86-64; each call takes the path of cpu::isa() (cpu/isa.h).
// An output plane is `nlines` lines of `n` contiguous values; output line l, kernel tap t and
// position j read src[lines[l] + taps[t] + j * step], which the caller keeps inside the padded
// plane.
//   taps:     dst[l*n + j] += sum_t w[t] * src[...]            (forward; the partial sums of a
//   block
//                                                              stay in registers across the taps)
//   tap_dots: dw[t]        += sum_l sum_j grad[l*n + j] * src[...]   (weight gradient)
//   scatter:  src[...]     += w[t] * grad[l*n + j]             (data gradient, the adjoint of taps)
// Whole planes per call keep the per-line call overhead out of the short (tens of values) lines.
#pragma once

#include <cstdint>

namespace convtape::cpu::line {

struct PlaneMap {
  const std::int64_t* lines;  // source offset of each output line's first tap
  std::int64_t nlines;
  const std::int64_t* taps;  // source offset of each tap relative to the first
  std::int64_t ntaps;
  std::int64_t n;     // outputs per line
  std::int64_t step;  // source stride between neighbouring outputs of a line
};

void taps(float* dst, const float* src, const float* w, float b, const PlaneMap& m);
void taps(double* dst, const double* src, const double* w, double b, const PlaneMap& m);
void tap_dots(float* dw, const float* grad, const float* src, const PlaneMap& m);
void tap_dots(double* dw, const double* grad, const double* src, const PlaneMap& m);
void scatter(float* src, const float* grad, const float* w, const PlaneMap& m);
void scatter(double* src, const double* grad, const double* w, const PlaneMap& m);

// Row copies between a dense plane (rows of n values) and the interior of a padded one:
//   scatter_rows: dst[offsets[r] + j] = src[r*n + j]
//   gather_rows:  dst[r*n + j]        = src[offsets[r] + j]
void scatter_rows(float* dst, const std::int64_t* offsets, const float* src, std::int64_t rows,
                  std::int64_t n);
void scatter_rows(double* dst, const std::int64_t* offsets, const double* src, std::int64_t rows,
                  std::int64_t n);
void gather_rows(float* dst, const float* src, const std::int64_t* offsets, std::int64_t rows,
                 std::int64_t n);
void gather_rows(double* dst, const double* src, const std::int64_t* offsets, std::int64_t rows,
                 std::int64_t n);

}  // namespace convtape::cpu::line
