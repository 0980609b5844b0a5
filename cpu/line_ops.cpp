// The plane kernels of cpu/line_ops.h: one portable body, instantiated per ISA with function-level
// target attributes (as the GEMM micro-kernels are), explicit AVX-512 vectors for the unit-step
// forward and weight-gradient kernels, and a dispatcher on the path the caller passes (read once
// per convolution, so a whole op's planes share one path).
#include "cpu/line_ops.h"

#include <immintrin.h>

#include <algorithm>
#include <type_traits>

namespace convtape::cpu::line {

namespace {

// clang-format off
#define CT_PLANE_OPS(SUFFIX, TARGET)                                                               \
  template <class T>                                                                               \
  TARGET void taps_##SUFFIX(T* dst, const T* src, const T* w, T b, const PlaneMap& m) {            \
    constexpr std::int64_t kB = 64 / sizeof(T);                                                    \
    const std::int64_t n = m.n, st = m.step;                                                       \
    for (std::int64_t l = 0; l < m.nlines; ++l) {                                                  \
      T* d = dst + l * n;                                                                          \
      const T* row = src + m.lines[l];                                                             \
      std::int64_t j0 = 0;                                                                         \
      for (; j0 + kB <= n; j0 += kB) { /* whole blocks: the sums stay in registers */              \
        T acc[kB];                                                                                 \
        for (std::int64_t j = 0; j < kB; ++j) acc[j] = b;                                          \
        for (std::int64_t t = 0; t < m.ntaps; ++t) {                                               \
          const T* s = row + m.taps[t] + j0 * st; const T wt = w[t];                               \
          if (st == 1) { _Pragma("omp simd") for (std::int64_t j = 0; j < kB; ++j) acc[j] += wt * s[j]; } \
          else { for (std::int64_t j = 0; j < kB; ++j) acc[j] += wt * s[j * st]; }                 \
        }                                                                                          \
        for (std::int64_t j = 0; j < kB; ++j) d[j0 + j] = acc[j];                                  \
      }                                                                                            \
      for (std::int64_t j = j0; j < n; ++j) d[j] = b; /* the partial last block */                 \
      for (std::int64_t t = 0; t < m.ntaps && j0 < n; ++t) {                                       \
        const T* s = row + m.taps[t]; const T wt = w[t];                                           \
        for (std::int64_t j = j0; j < n; ++j) d[j] += wt * s[j * st];                              \
      }                                                                                            \
    }                                                                                              \
  }                                                                                                \
  template <class T>                                                                               \
  TARGET void tap_dots_##SUFFIX(T* dw, const T* grad, const T* src, const PlaneMap& m) {           \
    constexpr std::int64_t kB = 64 / sizeof(T);                                                    \
    const std::int64_t n = m.n, st = m.step;                                                       \
    for (std::int64_t t = 0; t < m.ntaps; ++t) {                                                   \
      T total = T(0);                                                                              \
      for (std::int64_t j0 = 0; j0 < n; j0 += kB) {                                                \
        const std::int64_t len = std::min(kB, n - j0);                                             \
        T acc[kB] = {};                                                                            \
        for (std::int64_t l = 0; l < m.nlines; ++l) {                                              \
          const T* g = grad + l * n + j0;                                                          \
          const T* s = src + m.lines[l] + m.taps[t] + j0 * st;                                     \
          if (len == kB && st == 1) { _Pragma("omp simd") for (std::int64_t j = 0; j < kB; ++j) acc[j] += g[j] * s[j]; } \
          else { for (std::int64_t j = 0; j < len; ++j) acc[j] += g[j] * s[j * st]; }              \
        }                                                                                          \
        for (std::int64_t j = 0; j < kB; ++j) total += acc[j];                                     \
      }                                                                                            \
      dw[t] += total;                                                                              \
    }                                                                                              \
  }                                                                                                \
  template <class T>                                                                               \
  TARGET void scatter_##SUFFIX(T* src, const T* grad, const T* w, const PlaneMap& m) {             \
    /* Tap-major, so that consecutive updates go to different source rows (no store-to-load      \
       stalls between the overlapping windows of neighbouring taps). */                           \
    const std::int64_t n = m.n, st = m.step;                                                       \
    for (std::int64_t t = 0; t < m.ntaps; ++t)                                                     \
      for (std::int64_t l = 0; l < m.nlines; ++l) {                                                \
        T* d = src + m.lines[l] + m.taps[t]; const T* g = grad + l * n; const T wt = w[t];         \
        if (st == 1) { for (std::int64_t j = 0; j < n; ++j) d[j] += wt * g[j]; }                   \
        else { for (std::int64_t j = 0; j < n; ++j) d[j * st] += wt * g[j]; }                      \
      }                                                                                            \
  }

CT_PLANE_OPS(avx512, __attribute__((target("avx512f,fma"))))
CT_PLANE_OPS(avx2, __attribute__((target("avx2,fma"))))
CT_PLANE_OPS(base, )
#undef CT_PLANE_OPS
// clang-format on

#define CT_AVX512 __attribute__((target("avx512f"), always_inline)) inline

// One 64-byte vector of T with masked loads and stores (the masks cover the partial last block).
// sum() goes through memory: GCC 12's _mm512_reduce_add_* trips -Wmaybe-uninitialized.
template <class T>
struct Vec512;
template <>
struct Vec512<float> {
  using V = __m512;
  using M = __mmask16;
  static constexpr std::int64_t kW = 16;
  static CT_AVX512 M mask(std::int64_t m) {
    return m >= kW ? static_cast<M>(0xFFFF) : static_cast<M>((1u << m) - 1);
  }
  static CT_AVX512 V load(M k, const float* p) { return _mm512_maskz_loadu_ps(k, p); }
  static CT_AVX512 void store(M k, float* p, V v) { _mm512_mask_storeu_ps(p, k, v); }
  static CT_AVX512 void copy(M k, float* d, const float* s) {
    _mm512_mask_storeu_ps(d, k, _mm512_maskz_loadu_ps(k, s));
  }
  static CT_AVX512 V set1(float a) { return _mm512_set1_ps(a); }
  static CT_AVX512 V zero() { return _mm512_setzero_ps(); }
  static CT_AVX512 V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static CT_AVX512 V add(V a, V b) { return _mm512_add_ps(a, b); }
  // The even lanes of the 32 values lo:hi.
  static CT_AVX512 V even(V lo, V hi) {
    const __m512i idx =
        _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    return _mm512_permutex2var_ps(lo, idx, hi);
  }
  static CT_AVX512 float sum(V v) {
    alignas(64) float lanes[kW];
    _mm512_store_ps(lanes, v);
    float s = 0.0f;
    for (float x : lanes) s += x;
    return s;
  }
};
template <>
struct Vec512<double> {
  using V = __m512d;
  using M = __mmask8;
  static constexpr std::int64_t kW = 8;
  static CT_AVX512 M mask(std::int64_t m) {
    return m >= kW ? static_cast<M>(0xFF) : static_cast<M>((1u << m) - 1);
  }
  static CT_AVX512 V load(M k, const double* p) { return _mm512_maskz_loadu_pd(k, p); }
  static CT_AVX512 void store(M k, double* p, V v) { _mm512_mask_storeu_pd(p, k, v); }
  static CT_AVX512 void copy(M k, double* d, const double* s) {
    _mm512_mask_storeu_pd(d, k, _mm512_maskz_loadu_pd(k, s));
  }
  static CT_AVX512 V set1(double a) { return _mm512_set1_pd(a); }
  static CT_AVX512 V zero() { return _mm512_setzero_pd(); }
  static CT_AVX512 V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static CT_AVX512 V add(V a, V b) { return _mm512_add_pd(a, b); }
  static CT_AVX512 V even(V lo, V hi) {
    const __m512i idx = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
    return _mm512_permutex2var_pd(lo, idx, hi);
  }
  static CT_AVX512 double sum(V v) {
    alignas(64) double lanes[kW];
    _mm512_store_pd(lanes, v);
    double s = 0.0;
    for (double x : lanes) s += x;
    return s;
  }
};

#define CT_AVX2 __attribute__((target("avx2,fma"), always_inline)) inline

// One 32-byte vector of T for the AVX2 path, with the same interface: masked loads and stores
// through lane masks (a full block takes the plain load and store).
template <class T>
struct Vec256;
template <>
struct Vec256<float> {
  using V = __m256;
  struct M {
    __m256i lanes;
    bool full;
  };
  static constexpr std::int64_t kW = 8;
  static CT_AVX2 M mask(std::int64_t m) {
    const auto c = static_cast<int>(std::min<std::int64_t>(m, kW));
    return {_mm256_cmpgt_epi32(_mm256_set1_epi32(c), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)),
            m >= kW};
  }
  static CT_AVX2 V load(M k, const float* p) {
    return k.full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, k.lanes);
  }
  static CT_AVX2 void store(M k, float* p, V v) {
    if (k.full)
      _mm256_storeu_ps(p, v);
    else
      _mm256_maskstore_ps(p, k.lanes, v);
  }
  static CT_AVX2 V set1(float a) { return _mm256_set1_ps(a); }
  static CT_AVX2 V zero() { return _mm256_setzero_ps(); }
  static CT_AVX2 V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static CT_AVX2 float sum(V v) {
    alignas(32) float lanes[kW];
    _mm256_store_ps(lanes, v);
    float s = 0.0f;
    for (float x : lanes) s += x;
    return s;
  }
};
template <>
struct Vec256<double> {
  using V = __m256d;
  struct M {
    __m256i lanes;
    bool full;
  };
  static constexpr std::int64_t kW = 4;
  static CT_AVX2 M mask(std::int64_t m) {
    const auto c = static_cast<long long>(std::min<std::int64_t>(m, kW));
    return {_mm256_cmpgt_epi64(_mm256_set1_epi64x(c), _mm256_setr_epi64x(0, 1, 2, 3)), m >= kW};
  }
  static CT_AVX2 V load(M k, const double* p) {
    return k.full ? _mm256_loadu_pd(p) : _mm256_maskload_pd(p, k.lanes);
  }
  static CT_AVX2 void store(M k, double* p, V v) {
    if (k.full)
      _mm256_storeu_pd(p, v);
    else
      _mm256_maskstore_pd(p, k.lanes, v);
  }
  static CT_AVX2 V set1(double a) { return _mm256_set1_pd(a); }
  static CT_AVX2 V zero() { return _mm256_setzero_pd(); }
  static CT_AVX2 V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static CT_AVX2 double sum(V v) {
    alignas(32) double lanes[kW];
    _mm256_store_pd(lanes, v);
    double s = 0.0;
    for (double x : lanes) s += x;
    return s;
  }
};

// The unit-step forward and weight-gradient kernels, one set per vector width (SUFFIX, TARGET,
// VEC: avx512 with Vec512, avx2 with Vec256).
//   taps_unit:   four (line, block) accumulators in flight, so that the FMA chains over the taps
//                overlap instead of waiting on each other's latency
//   tap_dots_unit: NT taps at a time, one accumulator per tap across every line of a column block,
//                reduced once at the end
// clang-format off
#define CT_UNIT_PLANE_OPS(SUFFIX, TARGET, VEC)                                                    \
  template <class T, int NB>                                                                      \
  TARGET void taps_blocks_##SUFFIX(T* const* d, const T* const* s,                               \
                                   const typename VEC<T>::M* k, const T* w, T b,                  \
                                   const std::int64_t* taps, std::int64_t ntaps) {                \
    using X = VEC<T>;                                                                             \
    typename X::V acc[NB];                                                                        \
    _Pragma("GCC unroll 4") for (int i = 0; i < NB; ++i) acc[i] = X::set1(b);                     \
    for (std::int64_t t = 0; t < ntaps; ++t) {                                                    \
      const typename X::V wt = X::set1(w[t]);                                                     \
      const std::int64_t off = taps[t];                                                           \
      _Pragma("GCC unroll 4") for (int i = 0; i < NB; ++i)                                        \
        acc[i] = X::fma(wt, X::load(k[i], s[i] + off), acc[i]);                                   \
    }                                                                                             \
    _Pragma("GCC unroll 4") for (int i = 0; i < NB; ++i) X::store(k[i], d[i], acc[i]);            \
  }                                                                                               \
  template <class T>                                                                              \
  TARGET void taps_unit_##SUFFIX(T* dst, const T* src, const T* w, T b, const PlaneMap& m) {      \
    using X = VEC<T>;                                                                             \
    constexpr int kNB = 4;                                                                        \
    T* d[kNB];                                                                                    \
    const T* s[kNB];                                                                              \
    typename X::M k[kNB];                                                                         \
    int nb = 0;                                                                                   \
    for (std::int64_t l = 0; l < m.nlines; ++l)                                                   \
      for (std::int64_t j0 = 0; j0 < m.n; j0 += X::kW) {                                          \
        d[nb] = dst + l * m.n + j0;                                                               \
        s[nb] = src + m.lines[l] + j0;                                                            \
        k[nb] = X::mask(m.n - j0);                                                                \
        if (++nb == kNB) {                                                                        \
          taps_blocks_##SUFFIX<T, kNB>(d, s, k, w, b, m.taps, m.ntaps);                           \
          nb = 0;                                                                                 \
        }                                                                                         \
      }                                                                                           \
    for (int i = 0; i < nb; ++i)                                                                  \
      taps_blocks_##SUFFIX<T, 1>(d + i, s + i, k + i, w, b, m.taps, m.ntaps);                     \
  }                                                                                               \
  template <class T, int NT>                                                                      \
  TARGET void tap_dots_group_##SUFFIX(T* dw, const T* grad, const T* src, const PlaneMap& m,      \
                                      const std::int64_t* taps) {                                 \
    using X = VEC<T>;                                                                             \
    for (std::int64_t j0 = 0; j0 < m.n; j0 += X::kW) {                                            \
      const typename X::M k = X::mask(m.n - j0);                                                  \
      typename X::V acc[NT];                                                                      \
      _Pragma("GCC unroll 4") for (int i = 0; i < NT; ++i) acc[i] = X::zero();                    \
      for (std::int64_t l = 0; l < m.nlines; ++l) {                                               \
        const typename X::V g = X::load(k, grad + l * m.n + j0);                                  \
        const T* row = src + m.lines[l] + j0;                                                     \
        _Pragma("GCC unroll 4") for (int i = 0; i < NT; ++i)                                      \
          acc[i] = X::fma(g, X::load(k, row + taps[i]), acc[i]);                                  \
      }                                                                                           \
      _Pragma("GCC unroll 4") for (int i = 0; i < NT; ++i) dw[i] += X::sum(acc[i]);               \
    }                                                                                             \
  }                                                                                               \
  template <class T>                                                                              \
  TARGET void tap_dots_unit_##SUFFIX(T* dw, const T* grad, const T* src, const PlaneMap& m) {     \
    std::int64_t t = 0;                                                                           \
    for (; t + 4 <= m.ntaps; t += 4)                                                              \
      tap_dots_group_##SUFFIX<T, 4>(dw + t, grad, src, m, m.taps + t);                            \
    for (; t < m.ntaps; ++t) tap_dots_group_##SUFFIX<T, 1>(dw + t, grad, src, m, m.taps + t);     \
  }
CT_UNIT_PLANE_OPS(avx512, __attribute__((target("avx512f"))), Vec512)
CT_UNIT_PLANE_OPS(avx2, __attribute__((target("avx2,fma"))), Vec256)
#undef CT_UNIT_PLANE_OPS
// clang-format on

// ---- row copies of the implicit GEMM (cpu/conv_implicit.cpp): one body per ISA path

#define CT_ROW_OPS(SUFFIX, TARGET)                                                                \
  template <class T>                                                                              \
  TARGET void add_rows_##SUFFIX(T* dst, std::int64_t ldd, const T* src, std::int64_t lds,         \
                                const T* bias, std::int64_t rows, const Segment* segs,            \
                                std::int64_t nsegs) {                                             \
    for (std::int64_t r = 0; r < rows; ++r) {                                                     \
      const T b = bias ? bias[r] : T(0);                                                          \
      for (std::int64_t e = 0; e < nsegs; ++e) {                                                  \
        T* d = dst + r * ldd + segs[e].dst;                                                       \
        const T* s = src + r * lds + segs[e].src;                                                 \
        for (std::int64_t j = 0; j < segs[e].n; ++j) d[j] = s[j] + b;                             \
      }                                                                                           \
    }                                                                                             \
  }                                                                                               \
  template <class T>                                                                              \
  TARGET void add_rows_strided_##SUFFIX(T* dst, std::int64_t ldd, const T* src, std::int64_t lds, \
                                        const T* bias, std::int64_t rows, const Segment* segs,    \
                                        std::int64_t nsegs, std::int64_t step) {                  \
    for (std::int64_t r = 0; r < rows; ++r) {                                                     \
      const T b = bias ? bias[r] : T(0);                                                          \
      for (std::int64_t e = 0; e < nsegs; ++e) {                                                  \
        T* d = dst + r * ldd + segs[e].dst;                                                       \
        const T* s = src + r * lds + segs[e].src;                                                 \
        for (std::int64_t j = 0; j < segs[e].n; ++j) d[j * step] = s[j] + b;                      \
      }                                                                                           \
    }                                                                                             \
  }                                                                                               \
  template <class T>                                                                              \
  TARGET void gather_strided_##SUFFIX(T* dst, const T* src, std::int64_t step, std::int64_t n) {  \
    for (std::int64_t j = 0; j < n; ++j) dst[j] = src[j * step];                                  \
  }                                                                                               \
  template <class T>                                                                              \
  TARGET void scatter_strided_##SUFFIX(T* dst, const T* src, std::int64_t step, std::int64_t n) { \
    for (std::int64_t j = 0; j < n; ++j) dst[j * step] = src[j];                                  \
  }
CT_ROW_OPS(avx2, __attribute__((target("avx2,fma"))))
CT_ROW_OPS(base, )
#undef CT_ROW_OPS

template <class T>
__attribute__((target("avx512f"))) void add_rows_avx512(T* dst, std::int64_t ldd, const T* src,
                                                        std::int64_t lds, const T* bias,
                                                        std::int64_t rows, const Segment* segs,
                                                        std::int64_t nsegs) {
  using X = Vec512<T>;
  for (std::int64_t r = 0; r < rows; ++r) {
    const typename X::V b = X::set1(bias ? bias[r] : T(0));
    for (std::int64_t e = 0; e < nsegs; ++e) {
      T* d = dst + r * ldd + segs[e].dst;
      const T* s = src + r * lds + segs[e].src;
      const std::int64_t n = segs[e].n;
      for (std::int64_t j = 0; j < n; j += X::kW) {
        const typename X::M k = X::mask(n - j);
        X::store(k, d + j, X::add(X::load(k, s + j), b));
      }
    }
  }
}

// Step 2: kW / 2 values expanded into the even lanes, the bias added, stored through the even-lane
// mask (as scatter_strided_avx512 below); other steps one value at a time.
template <class T>
__attribute__((target("avx512f"))) void add_rows_strided_avx512(
    T* dst, std::int64_t ldd, const T* src, std::int64_t lds, const T* bias, std::int64_t rows,
    const Segment* segs, std::int64_t nsegs, std::int64_t step) {
  using X = Vec512<T>;
  constexpr std::int64_t kHalf = X::kW / 2;
  constexpr unsigned kEven = X::kW == 16 ? 0x5555u : 0x55u;
  for (std::int64_t r = 0; r < rows; ++r) {
    const T bs = bias ? bias[r] : T(0);
    const typename X::V b = X::set1(bs);
    for (std::int64_t e = 0; e < nsegs; ++e) {
      T* d = dst + r * ldd + segs[e].dst;
      const T* s = src + r * lds + segs[e].src;
      const std::int64_t n = segs[e].n;
      if (step != 2) {
        for (std::int64_t j = 0; j < n; ++j) d[j * step] = s[j] + bs;
        continue;
      }
      for (std::int64_t j = 0; j < n; j += kHalf) {
        const std::int64_t left = std::min(n - j, kHalf);
        const auto k = static_cast<typename X::M>(kEven & ((1u << (2 * left)) - 1));
        if constexpr (std::is_same_v<T, float>)
          _mm512_mask_storeu_ps(d + 2 * j, k,
                                _mm512_add_ps(_mm512_maskz_expandloadu_ps(k, s + j), b));
        else
          _mm512_mask_storeu_pd(d + 2 * j, k,
                                _mm512_add_pd(_mm512_maskz_expandloadu_pd(k, s + j), b));
      }
    }
  }
}

// A 16 x 16 block in registers: rows i (positions) loaded with the channel mask, transposed by
// unpacks within 128-bit lanes, shuffles of pairs, then 128-bit lane shuffles across row groups.
// (GCC 12 reports the intrinsics' own undefined pass-through operands as uninitialised.)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
__attribute__((target("avx512f"))) void transpose_block16_avx512(float* dst, std::int64_t ldd,
                                                                 const float* src, std::int64_t lds,
                                                                 const float* bias, int nk,
                                                                 int ni) {
  const __mmask16 km = static_cast<__mmask16>((1u << nk) - 1);
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i)
    r[i] = i < ni ? _mm512_maskz_loadu_ps(km, src + i * lds) : _mm512_setzero_ps();
  for (int j = 0; j < 8; ++j) {
    t[2 * j] = _mm512_unpacklo_ps(r[2 * j], r[2 * j + 1]);
    t[2 * j + 1] = _mm512_unpackhi_ps(r[2 * j], r[2 * j + 1]);
  }
  for (int j = 0; j < 4; ++j) {
    r[4 * j + 0] = _mm512_shuffle_ps(t[4 * j], t[4 * j + 2], 0x44);
    r[4 * j + 1] = _mm512_shuffle_ps(t[4 * j], t[4 * j + 2], 0xEE);
    r[4 * j + 2] = _mm512_shuffle_ps(t[4 * j + 1], t[4 * j + 3], 0x44);
    r[4 * j + 3] = _mm512_shuffle_ps(t[4 * j + 1], t[4 * j + 3], 0xEE);
  }
  // r[4 j + m], 128-bit lane L: rows 4 j .. 4 j + 3 of channel 4 L + m.
  const __mmask16 im = static_cast<__mmask16>((1u << ni) - 1);
  for (int m = 0; m < 4; ++m) {
    const __m512 x0 = _mm512_shuffle_f32x4(r[m], r[4 + m], 0x44);
    const __m512 x1 = _mm512_shuffle_f32x4(r[m], r[4 + m], 0xEE);
    const __m512 y0 = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0x44);
    const __m512 y1 = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0xEE);
    const __m512 out[4] = {_mm512_shuffle_f32x4(x0, y0, 0x88), _mm512_shuffle_f32x4(x0, y0, 0xDD),
                           _mm512_shuffle_f32x4(x1, y1, 0x88), _mm512_shuffle_f32x4(x1, y1, 0xDD)};
    for (int l = 0; l < 4; ++l) {
      const int k = 4 * l + m;
      if (k >= nk) continue;
      const __m512 v = bias ? _mm512_add_ps(out[l], _mm512_set1_ps(bias[k])) : out[l];
      _mm512_mask_storeu_ps(dst + k * ldd, im, v);
    }
  }
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

// AVX2: an 8 x 8 block in registers (unpacks, shuffles of pairs, then 128-bit lane swaps); rows
// past ni read as zeros, channels past nk are neither loaded nor stored.
__attribute__((target("avx2,fma"))) void transpose_block8_avx2(float* dst, std::int64_t ldd,
                                                               const float* src, std::int64_t lds,
                                                               const float* bias, int nk, int ni) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i kmask = _mm256_cmpgt_epi32(_mm256_set1_epi32(nk), lane);
  const __m256i imask = _mm256_cmpgt_epi32(_mm256_set1_epi32(ni), lane);
  __m256 r[8];
  for (int i = 0; i < 8; ++i)
    r[i] = i < ni ? _mm256_maskload_ps(src + i * lds, kmask) : _mm256_setzero_ps();
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u[8] = {_mm256_shuffle_ps(t0, t2, 0x44), _mm256_shuffle_ps(t0, t2, 0xEE),
                       _mm256_shuffle_ps(t1, t3, 0x44), _mm256_shuffle_ps(t1, t3, 0xEE),
                       _mm256_shuffle_ps(t4, t6, 0x44), _mm256_shuffle_ps(t4, t6, 0xEE),
                       _mm256_shuffle_ps(t5, t7, 0x44), _mm256_shuffle_ps(t5, t7, 0xEE)};
  // u[m] holds channel m (rows 0-3 | channel m + 4, rows 0-3), u[4 + m] the same for rows 4-7.
  for (int k = 0; k < nk; ++k) {
    const int m = k % 4;
    __m256 v = k < 4 ? _mm256_permute2f128_ps(u[m], u[4 + m], 0x20)
                     : _mm256_permute2f128_ps(u[m], u[4 + m], 0x31);
    if (bias) v = _mm256_add_ps(v, _mm256_set1_ps(bias[k]));
    _mm256_maskstore_ps(dst + k * ldd, imask, v);
  }
}

template <class T>
void transpose_add_blocked(T* dst, std::int64_t ldd, const T* src, std::int64_t lds, const T* bias,
                           std::int64_t nk, std::int64_t ni) {
  constexpr std::int64_t kB = 16;
  for (std::int64_t k0 = 0; k0 < nk; k0 += kB)
    for (std::int64_t i0 = 0; i0 < ni; i0 += kB) {
      const std::int64_t bk = std::min(kB, nk - k0), bi = std::min(kB, ni - i0);
      T blk[kB][kB];
      for (std::int64_t i = 0; i < bi; ++i)
        for (std::int64_t k = 0; k < bk; ++k) blk[k][i] = src[(i0 + i) * lds + k0 + k];
      for (std::int64_t k = 0; k < bk; ++k) {
        const T b = bias ? bias[k0 + k] : T(0);
        T* d = dst + (k0 + k) * ldd + i0;
        for (std::int64_t i = 0; i < bi; ++i) d[i] = blk[k][i] + b;
      }
    }
}

// AVX2, float, step 2: four values spread to the even lanes of a vector and stored through the
// even-lane mask (lane 7 is never written, so nothing past the last value is touched).
__attribute__((target("avx2,fma"))) void add_rows_step2_avx2(float* dst, std::int64_t ldd,
                                                             const float* src, std::int64_t lds,
                                                             const float* bias, std::int64_t rows,
                                                             const Segment* segs,
                                                             std::int64_t nsegs) {
  const __m256i spread = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
  const __m256i even = _mm256_setr_epi32(-1, 0, -1, 0, -1, 0, -1, 0);
  for (std::int64_t r = 0; r < rows; ++r) {
    const float bs = bias ? bias[r] : 0.0f;
    const __m128 b = _mm_set1_ps(bs);
    for (std::int64_t e = 0; e < nsegs; ++e) {
      float* d = dst + r * ldd + segs[e].dst;
      const float* s = src + r * lds + segs[e].src;
      const std::int64_t n = segs[e].n;
      std::int64_t j = 0;
      for (; j + 4 <= n; j += 4) {
        const __m128 v = _mm_add_ps(_mm_loadu_ps(s + j), b);
        _mm256_maskstore_ps(d + 2 * j, even,
                            _mm256_permutevar8x32_ps(_mm256_castps128_ps256(v), spread));
      }
      for (; j < n; ++j) d[2 * j] = s[j] + bs;
    }
  }
}

// Step 2 (the phases of a stride-2 convolution): two vectors in, their even lanes out. The loads
// are masked to the 2 (n - j) - 1 values up to the last one read, so none reads past it.
template <class T>
__attribute__((target("avx512f"))) void gather_strided_avx512(T* dst, const T* src,
                                                              std::int64_t step, std::int64_t n) {
  using X = Vec512<T>;
  if (step != 2) {
    for (std::int64_t j = 0; j < n; ++j) dst[j] = src[j * step];
    return;
  }
  for (std::int64_t j = 0; j < n; j += X::kW) {
    const std::int64_t avail = 2 * (n - j) - 1;  // values src[2j .. 2j + avail) are read
    const typename X::V lo = X::load(X::mask(avail), src + 2 * j);
    const typename X::V hi =
        avail > X::kW ? X::load(X::mask(avail - X::kW), src + 2 * j + X::kW) : X::zero();
    X::store(X::mask(n - j), dst + j, X::even(lo, hi));
  }
}

// Step 2: kW / 2 values expanded into the even lanes of a vector and stored through the
// even-lane mask, so that the odd values between them (another phase's) are neither read nor
// written; the masks stop at the last value.
template <class T>
__attribute__((target("avx512f"))) void scatter_strided_avx512(T* dst, const T* src,
                                                               std::int64_t step, std::int64_t n) {
  if (step != 2) {
    for (std::int64_t j = 0; j < n; ++j) dst[j * step] = src[j];
    return;
  }
  using X = Vec512<T>;
  constexpr std::int64_t kHalf = X::kW / 2;
  constexpr unsigned kEven = X::kW == 16 ? 0x5555u : 0x55u;
  for (std::int64_t j = 0; j < n; j += kHalf) {
    const std::int64_t left = std::min(n - j, kHalf);
    const auto k = static_cast<typename X::M>(kEven & ((1u << (2 * left)) - 1));
    if constexpr (std::is_same_v<T, float>)
      _mm512_mask_storeu_ps(dst + 2 * j, k, _mm512_maskz_expandloadu_ps(k, src + j));
    else
      _mm512_mask_storeu_pd(dst + 2 * j, k, _mm512_maskz_expandloadu_pd(k, src + j));
  }
}

// Whole planes per call (the lines of a dilation phase are tens of values: a call per line cost
// more than the copy).
#define CT_STRIDED_ROWS(SUFFIX, TARGET)                                                            \
  template <class T>                                                                               \
  TARGET void gather_strided_rows_##SUFFIX(T* dst, const StridedRows& m, const T* src) {           \
    for (std::int64_t r = 0; r < m.rows; ++r)                                                      \
      gather_strided_##SUFFIX(dst + (m.dense ? m.dense[r] : r * m.n), src + m.strided[r], m.step,  \
                              m.n);                                                                \
  }                                                                                                \
  template <class T>                                                                               \
  TARGET void scatter_strided_rows_##SUFFIX(T* dst, const StridedRows& m, const T* src) {          \
    for (std::int64_t r = 0; r < m.rows; ++r)                                                      \
      scatter_strided_##SUFFIX(dst + m.strided[r], src + (m.dense ? m.dense[r] : r * m.n), m.step, \
                               m.n);                                                               \
  }
CT_STRIDED_ROWS(avx512, __attribute__((target("avx512f"))))
CT_STRIDED_ROWS(avx2, __attribute__((target("avx2,fma"))))
CT_STRIDED_ROWS(base, )
#undef CT_STRIDED_ROWS
template <class T>
void gather_strided_rows_any(Isa isa, T* dst, const StridedRows& m, const T* src) {
  if (m.n <= 0) return;
  switch (isa) {
    case Isa::avx512:
      return gather_strided_rows_avx512(dst, m, src);
    case Isa::avx2:
      return gather_strided_rows_avx2(dst, m, src);
    default:
      return gather_strided_rows_base(dst, m, src);
  }
}
template <class T>
void scatter_strided_rows_any(Isa isa, T* dst, const StridedRows& m, const T* src) {
  if (m.n <= 0) return;
  switch (isa) {
    case Isa::avx512:
      return scatter_strided_rows_avx512(dst, m, src);
    case Isa::avx2:
      return scatter_strided_rows_avx2(dst, m, src);
    default:
      return scatter_strided_rows_base(dst, m, src);
  }
}

template <class T>
void scatter_strided_any(Isa isa, T* dst, const T* src, std::int64_t step, std::int64_t n) {
  if (n <= 0) return;
  switch (isa) {
    case Isa::avx512:
      return scatter_strided_avx512(dst, src, step, n);
    case Isa::avx2:
      return scatter_strided_avx2(dst, src, step, n);
    default:
      return scatter_strided_base(dst, src, step, n);
  }
}

template <class T>
void add_rows_any(Isa isa, T* dst, std::int64_t ldd, const T* src, std::int64_t lds, const T* bias,
                  std::int64_t rows, const Segment* segs, std::int64_t nsegs) {
  switch (isa) {
    case Isa::avx512:
      return add_rows_avx512(dst, ldd, src, lds, bias, rows, segs, nsegs);
    case Isa::avx2:
      return add_rows_avx2(dst, ldd, src, lds, bias, rows, segs, nsegs);
    default:
      return add_rows_base(dst, ldd, src, lds, bias, rows, segs, nsegs);
  }
}
template <class T>
void add_rows_strided_any(Isa isa, T* dst, std::int64_t ldd, const T* src, std::int64_t lds,
                          const T* bias, std::int64_t rows, const Segment* segs, std::int64_t nsegs,
                          std::int64_t step) {
  if (step == 1) return add_rows_any(isa, dst, ldd, src, lds, bias, rows, segs, nsegs);
  switch (isa) {
    case Isa::avx512:
      return add_rows_strided_avx512(dst, ldd, src, lds, bias, rows, segs, nsegs, step);
    case Isa::avx2:
      if constexpr (std::is_same_v<T, float>)
        if (step == 2) return add_rows_step2_avx2(dst, ldd, src, lds, bias, rows, segs, nsegs);
      return add_rows_strided_avx2(dst, ldd, src, lds, bias, rows, segs, nsegs, step);
    default:
      return add_rows_strided_base(dst, ldd, src, lds, bias, rows, segs, nsegs, step);
  }
}
template <class T>
void gather_strided_any(Isa isa, T* dst, const T* src, std::int64_t step, std::int64_t n) {
  if (n <= 0) return;
  switch (isa) {
    case Isa::avx512:
      return gather_strided_avx512(dst, src, step, n);
    case Isa::avx2:
      return gather_strided_avx2(dst, src, step, n);
    default:
      return gather_strided_base(dst, src, step, n);
  }
}

// ---- dispatch on the caller's path (cpu/isa.h)

template <class T>
void taps_any(Isa isa, T* dst, const T* src, const T* w, T b, const PlaneMap& m) {
  switch (isa) {
    case Isa::avx512:
      return m.step == 1 ? taps_unit_avx512(dst, src, w, b, m) : taps_avx512(dst, src, w, b, m);
    case Isa::avx2:
      return m.step == 1 ? taps_unit_avx2(dst, src, w, b, m) : taps_avx2(dst, src, w, b, m);
    default:
      return taps_base(dst, src, w, b, m);
  }
}

template <class T>
__attribute__((target("avx512f"))) void scatter_rows_avx512(T* dst, const std::int64_t* offsets,
                                                            const T* src, std::int64_t rows,
                                                            std::int64_t n) {
  using X = Vec512<T>;
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t j = 0; j < n; j += X::kW)
      X::copy(X::mask(n - j), dst + offsets[r] + j, src + r * n + j);
}
template <class T>
__attribute__((target("avx512f"))) void gather_rows_avx512(T* dst, const T* src,
                                                           const std::int64_t* offsets,
                                                           std::int64_t rows, std::int64_t n) {
  using X = Vec512<T>;
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t j = 0; j < n; j += X::kW)
      X::copy(X::mask(n - j), dst + r * n + j, src + offsets[r] + j);
}
template <class T>
void scatter_rows_any(Isa isa, T* dst, const std::int64_t* offsets, const T* src, std::int64_t rows,
                      std::int64_t n) {
  if (isa == Isa::avx512) return scatter_rows_avx512(dst, offsets, src, rows, n);
  for (std::int64_t r = 0; r < rows; ++r) std::copy_n(src + r * n, n, dst + offsets[r]);
}
template <class T>
void gather_rows_any(Isa isa, T* dst, const T* src, const std::int64_t* offsets, std::int64_t rows,
                     std::int64_t n) {
  if (isa == Isa::avx512) return gather_rows_avx512(dst, src, offsets, rows, n);
  for (std::int64_t r = 0; r < rows; ++r) std::copy_n(src + offsets[r], n, dst + r * n);
}
template <class T>
void tap_dots_any(Isa isa, T* dw, const T* grad, const T* src, const PlaneMap& m) {
  switch (isa) {
    case Isa::avx512:
      return m.step == 1 ? tap_dots_unit_avx512(dw, grad, src, m)
                         : tap_dots_avx512(dw, grad, src, m);
    case Isa::avx2:
      return m.step == 1 ? tap_dots_unit_avx2(dw, grad, src, m) : tap_dots_avx2(dw, grad, src, m);
    default:
      return tap_dots_base(dw, grad, src, m);
  }
}
template <class T>
void scatter_any(Isa isa, T* src, const T* grad, const T* w, const PlaneMap& m) {
  switch (isa) {
    case Isa::avx512:
      return scatter_avx512(src, grad, w, m);
    case Isa::avx2:
      return scatter_avx2(src, grad, w, m);
    default:
      return scatter_base(src, grad, w, m);
  }
}

}  // namespace

void taps(Isa isa, float* dst, const float* src, const float* w, float b, const PlaneMap& m) {
  taps_any(isa, dst, src, w, b, m);
}
void taps(Isa isa, double* dst, const double* src, const double* w, double b, const PlaneMap& m) {
  taps_any(isa, dst, src, w, b, m);
}
void scatter_rows(Isa isa, float* dst, const std::int64_t* offsets, const float* src,
                  std::int64_t rows, std::int64_t n) {
  scatter_rows_any(isa, dst, offsets, src, rows, n);
}
void scatter_rows(Isa isa, double* dst, const std::int64_t* offsets, const double* src,
                  std::int64_t rows, std::int64_t n) {
  scatter_rows_any(isa, dst, offsets, src, rows, n);
}
void gather_rows(Isa isa, float* dst, const float* src, const std::int64_t* offsets,
                 std::int64_t rows, std::int64_t n) {
  gather_rows_any(isa, dst, src, offsets, rows, n);
}
void gather_rows(Isa isa, double* dst, const double* src, const std::int64_t* offsets,
                 std::int64_t rows, std::int64_t n) {
  gather_rows_any(isa, dst, src, offsets, rows, n);
}
void tap_dots(Isa isa, float* dw, const float* grad, const float* src, const PlaneMap& m) {
  tap_dots_any(isa, dw, grad, src, m);
}
void tap_dots(Isa isa, double* dw, const double* grad, const double* src, const PlaneMap& m) {
  tap_dots_any(isa, dw, grad, src, m);
}
void scatter(Isa isa, float* src, const float* grad, const float* w, const PlaneMap& m) {
  scatter_any(isa, src, grad, w, m);
}
void scatter(Isa isa, double* src, const double* grad, const double* w, const PlaneMap& m) {
  scatter_any(isa, src, grad, w, m);
}

void add_rows(Isa isa, float* dst, std::int64_t ldd, const float* src, std::int64_t lds,
              const float* bias, std::int64_t rows, const Segment* segs, std::int64_t nsegs) {
  add_rows_any(isa, dst, ldd, src, lds, bias, rows, segs, nsegs);
}
void add_rows(Isa isa, double* dst, std::int64_t ldd, const double* src, std::int64_t lds,
              const double* bias, std::int64_t rows, const Segment* segs, std::int64_t nsegs) {
  add_rows_any(isa, dst, ldd, src, lds, bias, rows, segs, nsegs);
}
void add_rows_strided(Isa isa, float* dst, std::int64_t ldd, const float* src, std::int64_t lds,
                      const float* bias, std::int64_t rows, const Segment* segs, std::int64_t nsegs,
                      std::int64_t step) {
  add_rows_strided_any(isa, dst, ldd, src, lds, bias, rows, segs, nsegs, step);
}
void add_rows_strided(Isa isa, double* dst, std::int64_t ldd, const double* src, std::int64_t lds,
                      const double* bias, std::int64_t rows, const Segment* segs,
                      std::int64_t nsegs, std::int64_t step) {
  add_rows_strided_any(isa, dst, ldd, src, lds, bias, rows, segs, nsegs, step);
}
// Whole tiles through a B x B register-block transpose, edge blocks cut to the tile.
template <int B, class Block>
void transpose_blocks(Block block, float* dst, std::int64_t ldd, const float* src, std::int64_t lds,
                      const float* bias, std::int64_t nk, std::int64_t ni) {
  for (std::int64_t k0 = 0; k0 < nk; k0 += B)
    for (std::int64_t i0 = 0; i0 < ni; i0 += B)
      block(dst + k0 * ldd + i0, ldd, src + i0 * lds + k0, lds, bias ? bias + k0 : nullptr,
            static_cast<int>(std::min<std::int64_t>(B, nk - k0)),
            static_cast<int>(std::min<std::int64_t>(B, ni - i0)));
}

void transpose_add(Isa isa, float* dst, std::int64_t ldd, const float* src, std::int64_t lds,
                   const float* bias, std::int64_t nk, std::int64_t ni) {
  switch (isa) {
    case Isa::avx512:
      return transpose_blocks<16>(transpose_block16_avx512, dst, ldd, src, lds, bias, nk, ni);
    case Isa::avx2:
      return transpose_blocks<8>(transpose_block8_avx2, dst, ldd, src, lds, bias, nk, ni);
    default:
      return transpose_add_blocked(dst, ldd, src, lds, bias, nk, ni);
  }
}
void transpose_add(Isa, double* dst, std::int64_t ldd, const double* src, std::int64_t lds,
                   const double* bias, std::int64_t nk, std::int64_t ni) {
  transpose_add_blocked(dst, ldd, src, lds, bias, nk, ni);
}
void gather_strided(Isa isa, float* dst, const float* src, std::int64_t step, std::int64_t n) {
  gather_strided_any(isa, dst, src, step, n);
}
void gather_strided(Isa isa, double* dst, const double* src, std::int64_t step, std::int64_t n) {
  gather_strided_any(isa, dst, src, step, n);
}

void scatter_strided(Isa isa, float* dst, const float* src, std::int64_t step, std::int64_t n) {
  scatter_strided_any(isa, dst, src, step, n);
}
void scatter_strided(Isa isa, double* dst, const double* src, std::int64_t step, std::int64_t n) {
  scatter_strided_any(isa, dst, src, step, n);
}

void gather_strided_rows(Isa isa, float* dst, const StridedRows& m, const float* src) {
  gather_strided_rows_any(isa, dst, m, src);
}
void gather_strided_rows(Isa isa, double* dst, const StridedRows& m, const double* src) {
  gather_strided_rows_any(isa, dst, m, src);
}
void scatter_strided_rows(Isa isa, float* dst, const StridedRows& m, const float* src) {
  scatter_strided_rows_any(isa, dst, m, src);
}
void scatter_strided_rows(Isa isa, double* dst, const StridedRows& m, const double* src) {
  scatter_strided_rows_any(isa, dst, m, src);
}

}  // namespace convtape::cpu::line
