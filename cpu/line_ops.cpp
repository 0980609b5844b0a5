// The line kernels of cpu/line_ops.h: one body, instantiated per ISA with function-level target
// attributes (as the GEMM micro-kernels are), and a dispatcher that picks the widest once.
#include "cpu/line_ops.h"

#include <immintrin.h>

namespace convtape::cpu::line {

namespace {

// clang-format off
#define CT_LINE_OPS(SUFFIX, TARGET)                                                                \
  template <class T>                                                                               \
  TARGET void scatter_##SUFFIX(T* dst, const T* src, T w, std::int64_t n, std::int64_t step) {     \
    if (step == 1) { for (std::int64_t j = 0; j < n; ++j) dst[j] += w * src[j]; }                  \
    else { for (std::int64_t j = 0; j < n; ++j) dst[j * step] += w * src[j]; }                     \
  }                                                                                                \
  template <class T>                                                                               \
  TARGET void taps_##SUFFIX(T* dst, const T* const* srcs, const T* w, std::int64_t ntaps,          \
                            std::int64_t n, std::int64_t step) {                                   \
    constexpr std::int64_t kB = 64 / sizeof(T);                                                    \
    std::int64_t j0 = 0;                                                                           \
    for (; j0 + kB <= n; j0 += kB) {                                                               \
      T acc[kB];                                                                                   \
      for (std::int64_t j = 0; j < kB; ++j) acc[j] = dst[j0 + j];                                  \
      if (step == 1) {                                                                             \
        for (std::int64_t t = 0; t < ntaps; ++t) {                                                 \
          const T* s = srcs[t] + j0; const T wt = w[t];                                            \
          _Pragma("omp simd") for (std::int64_t j = 0; j < kB; ++j) acc[j] += wt * s[j];                               \
        }                                                                                          \
      } else {                                                                                     \
        for (std::int64_t t = 0; t < ntaps; ++t) {                                                 \
          const T* s = srcs[t] + j0 * step; const T wt = w[t];                                     \
          for (std::int64_t j = 0; j < kB; ++j) acc[j] += wt * s[j * step];                        \
        }                                                                                          \
      }                                                                                            \
      for (std::int64_t j = 0; j < kB; ++j) dst[j0 + j] = acc[j];                                  \
    }                                                                                              \
    if (j0 < n) { /* the last, partial block: full-width reads (the caller's slack), partial store */ \
      const std::int64_t m = n - j0;                                                               \
      T acc[kB];                                                                                   \
      for (std::int64_t j = 0; j < kB; ++j) acc[j] = j < m ? dst[j0 + j] : T(0);                   \
      for (std::int64_t t = 0; t < ntaps; ++t) {                                                   \
        const T* s = srcs[t] + j0 * step; const T wt = w[t];                                       \
        if (step == 1) { _Pragma("omp simd") for (std::int64_t j = 0; j < kB; ++j) acc[j] += wt * s[j]; }              \
        else { for (std::int64_t j = 0; j < kB; ++j) acc[j] += wt * s[j * step]; }                 \
      }                                                                                            \
      for (std::int64_t j = 0; j < m; ++j) dst[j0 + j] = acc[j];                                   \
    }                                                                                              \
  }                                                                                                \
  template <class T>                                                                               \
  TARGET void mul_add_##SUFFIX(T* dst, const T* a, const T* src, std::int64_t n, std::int64_t step) { \
    if (step == 1) { for (std::int64_t j = 0; j < n; ++j) dst[j] += a[j] * src[j]; }               \
    else { for (std::int64_t j = 0; j < n; ++j) dst[j] += a[j] * src[j * step]; }                  \
  }

CT_LINE_OPS(avx512, __attribute__((target("avx512f,fma"))))
CT_LINE_OPS(avx2, __attribute__((target("avx2,fma"))))
CT_LINE_OPS(base, )
#undef CT_LINE_OPS
// clang-format on

int isa() {
  static const int level = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
    return 0;
  }();
  return level;
}

template <class T>
void scatter_any(T* dst, const T* src, T w, std::int64_t n, std::int64_t step) {
  switch (isa()) {
    case 2:
      return scatter_avx512(dst, src, w, n, step);
    case 1:
      return scatter_avx2(dst, src, w, n, step);
    default:
      return scatter_base(dst, src, w, n, step);
  }
}
template <class T>
void mul_add_any(T* dst, const T* a, const T* src, std::int64_t n, std::int64_t step) {
  switch (isa()) {
    case 2:
      return mul_add_avx512(dst, a, src, n, step);
    case 1:
      return mul_add_avx2(dst, a, src, n, step);
    default:
      return mul_add_base(dst, a, src, n, step);
  }
}

// Unit-step all-taps kernels with explicit vectors: the accumulator of each 64-byte (or 32-byte)
// block lives in one register across every tap; the tail uses masked loads and stores.
__attribute__((target("avx512f"))) void taps_unit_avx512(float* dst, const float* const* srcs,
                                                         const float* w, std::int64_t ntaps,
                                                         std::int64_t n) {
  for (std::int64_t j0 = 0; j0 < n; j0 += 16) {
    const std::int64_t m = n - j0;
    const __mmask16 mask =
        m >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << m) - 1);
    __m512 acc = _mm512_maskz_loadu_ps(mask, dst + j0);
    for (std::int64_t t = 0; t < ntaps; ++t)
      acc = _mm512_fmadd_ps(_mm512_set1_ps(w[t]), _mm512_maskz_loadu_ps(mask, srcs[t] + j0), acc);
    _mm512_mask_storeu_ps(dst + j0, mask, acc);
  }
}
__attribute__((target("avx512f"))) void taps_unit_avx512(double* dst, const double* const* srcs,
                                                         const double* w, std::int64_t ntaps,
                                                         std::int64_t n) {
  for (std::int64_t j0 = 0; j0 < n; j0 += 8) {
    const std::int64_t m = n - j0;
    const __mmask8 mask =
        m >= 8 ? static_cast<__mmask8>(0xFF) : static_cast<__mmask8>((1u << m) - 1);
    __m512d acc = _mm512_maskz_loadu_pd(mask, dst + j0);
    for (std::int64_t t = 0; t < ntaps; ++t)
      acc = _mm512_fmadd_pd(_mm512_set1_pd(w[t]), _mm512_maskz_loadu_pd(mask, srcs[t] + j0), acc);
    _mm512_mask_storeu_pd(dst + j0, mask, acc);
  }
}

template <class T>
void taps_any(T* dst, const T* const* srcs, const T* w, std::int64_t ntaps, std::int64_t n,
              std::int64_t step) {
  switch (isa()) {
    case 2:
      return step == 1 ? taps_unit_avx512(dst, srcs, w, ntaps, n)
                       : taps_avx512(dst, srcs, w, ntaps, n, step);
    case 1:
      return taps_avx2(dst, srcs, w, ntaps, n, step);
    default:
      return taps_base(dst, srcs, w, ntaps, n, step);
  }
}

}  // namespace

void taps(float* dst, const float* const* srcs, const float* w, std::int64_t ntaps, std::int64_t n,
          std::int64_t step) {
  taps_any(dst, srcs, w, ntaps, n, step);
}
void taps(double* dst, const double* const* srcs, const double* w, std::int64_t ntaps,
          std::int64_t n, std::int64_t step) {
  taps_any(dst, srcs, w, ntaps, n, step);
}

void axpy_scatter(float* dst, const float* src, float w, std::int64_t n, std::int64_t step) {
  scatter_any(dst, src, w, n, step);
}
void axpy_scatter(double* dst, const double* src, double w, std::int64_t n, std::int64_t step) {
  scatter_any(dst, src, w, n, step);
}
void mul_add(float* dst, const float* a, const float* src, std::int64_t n, std::int64_t step) {
  mul_add_any(dst, a, src, n, step);
}
void mul_add(double* dst, const double* a, const double* src, std::int64_t n, std::int64_t step) {
  mul_add_any(dst, a, src, n, step);
}

}  // namespace convtape::cpu::line
