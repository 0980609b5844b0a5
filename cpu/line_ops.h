// Strided line kernels for the direct (depthwise) convolution loops, each compiled for AVX-512,
// AVX2 and plain x86-64 and chosen once at run time, so that the short per-tap loops vectorise at
// the machine's full width:
//   axpy_scatter: dst[j*step] += w * src[j]
//   mul_add:      dst[j]      += a[j] * src[j * step]
//   taps:         dst[j]      += sum_t w[t] * srcs[t][j * step]   (all taps per block of dst, so
//                                the partial sums stay in registers instead of memory). taps reads
//                                whole 64-byte blocks: srcs[t][j * step] must be readable for
//                                j < n rounded up to a multiple of 64 / sizeof(T).
#pragma once

#include <cstdint>

namespace convtape::cpu::line {

void axpy_scatter(float* dst, const float* src, float w, std::int64_t n, std::int64_t step);
void axpy_scatter(double* dst, const double* src, double w, std::int64_t n, std::int64_t step);
void mul_add(float* dst, const float* a, const float* src, std::int64_t n, std::int64_t step);
void mul_add(double* dst, const double* a, const double* src, std::int64_t n, std::int64_t step);

void taps(float* dst, const float* const* srcs, const float* w, std::int64_t ntaps, std::int64_t n,
          std::int64_t step);
void taps(double* dst, const double* const* srcs, const double* w, std::int64_t ntaps,
          std::int64_t n, std::int64_t step);

}  // namespace convtape::cpu::line
