// GEMM micro-kernels: one register-blocked kernel per (ISA path of cpu/isa.h, dtype), the lookup
// of a path's kernel, and their cache blocking. Every kernel keeps an MR x NR tile of C in
// registers (MR broadcasts of A times NR / W vector loads of B per k step, all FMAs independent).
//   AVX-512: float 8 x 32, double 8 x 16 (16 accumulators of 32 zmm)
//   AVX2:    float 6 x 16, double 6 x 8  (12 accumulators of 16 ymm)
//   portable: float 4 x 16, double 4 x 8 (plain loops the compiler vectorises)
// Kernels are compiled with function-level target attributes (no per-file ISA flags), so nothing
// else in the library is built for an ISA the CPU may lack.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "cpu/gemm_driver.h"
#include "cpu/gemm_kernel.h"

namespace convtape::cpu {

namespace {

// clang-format off
#define CT_UNPAREN(...) __VA_ARGS__
// Defines kernel NAME: MR rows, NV vectors of W lanes per row, with the ISA's intrinsics. BARGS is
// the B parameter list, BROW the address of B's row k, BNEXT what steps to the next row.
#define CT_GEMM_KERNEL_IMPL(NAME, TARGET, T, VEC, MR, NV, W, LOAD, STORE, SET1, FMADD, MUL, ZERO, AARGS, AEL, ANEXT, BARGS, BROW, BNEXT) \
  __attribute__((target(TARGET))) void NAME(std::int64_t kc, CT_UNPAREN AARGS, CT_UNPAREN BARGS, T* c, std::int64_t ldc, \
                                            T alpha, T beta) {                                          \
    VEC acc[MR][NV];                                                                                    \
    _Pragma("GCC unroll 8") for (int i = 0; i < MR; ++i)                                                \
      _Pragma("GCC unroll 4") for (int v = 0; v < NV; ++v) acc[i][v] = ZERO();                          \
    for (std::int64_t k = 0; k < kc; ++k) {                                                             \
      const T* brow = BROW;                                                                             \
      VEC bv[NV];                                                                                       \
      _Pragma("GCC unroll 4") for (int v = 0; v < NV; ++v) bv[v] = LOAD(brow + v * W);                  \
      _Pragma("GCC unroll 8") for (int i = 0; i < MR; ++i) {                                            \
        const VEC ai = SET1(AEL);                                                                       \
        _Pragma("GCC unroll 4") for (int v = 0; v < NV; ++v) acc[i][v] = FMADD(ai, bv[v], acc[i][v]);   \
      }                                                                                                 \
      ANEXT;                                                                                            \
      BNEXT;                                                                                            \
    }                                                                                                   \
    const VEC va = SET1(alpha);                                                                         \
    if (alpha == T(1) && beta == T(0)) { /* the common cases skip the scaling (a tenth of a short k) */ \
      _Pragma("GCC unroll 8") for (int i = 0; i < MR; ++i)                                              \
        _Pragma("GCC unroll 4") for (int v = 0; v < NV; ++v) STORE(c + i * ldc + v * W, acc[i][v]);     \
    } else if (alpha == T(1) && beta == T(1)) {                                                         \
      _Pragma("GCC unroll 8") for (int i = 0; i < MR; ++i)                                              \
        _Pragma("GCC unroll 4") for (int v = 0; v < NV; ++v) {                                          \
          T* p = c + i * ldc + v * W;                                                                   \
          STORE(p, acc[i][v] + LOAD(p));                                                                \
        }                                                                                               \
    } else if (beta == T(0)) {                                                                          \
      _Pragma("GCC unroll 8") for (int i = 0; i < MR; ++i)                                              \
        _Pragma("GCC unroll 4") for (int v = 0; v < NV; ++v) STORE(c + i * ldc + v * W, MUL(va, acc[i][v])); \
    } else {                                                                                            \
      const VEC vb = SET1(beta);                                                                        \
      _Pragma("GCC unroll 8") for (int i = 0; i < MR; ++i)                                              \
        _Pragma("GCC unroll 4") for (int v = 0; v < NV; ++v) {                                          \
          T* p = c + i * ldc + v * W;                                                                   \
          STORE(p, FMADD(va, acc[i][v], MUL(vb, LOAD(p))));                                             \
        }                                                                                               \
    }                                                                                                   \
  }

// Four forms per ISA: packed A with B in panels (or rows ldb apart); packed A with B given as one
// row pointer per k, offset by boff (NAME_rows); A given as one pointer per row (element k of row
// i at arows[i][k]) with B in panels (NAME_arows); and A as windows of one buffer, element k of
// row i at abase[i][offs[k]], with B in panels (NAME_windows).
#define CT_GEMM_KERNEL(NAME, TARGET, T, VEC, MR, NV, W, LOAD, STORE, SET1, FMADD, MUL, ZERO) \
  CT_GEMM_KERNEL_IMPL(NAME, TARGET, T, VEC, MR, NV, W, LOAD, STORE, SET1, FMADD, MUL, ZERO, \
                      (const T* a), a[i], a += MR, (const T* b, std::int64_t ldb), b, b += ldb) \
  CT_GEMM_KERNEL_IMPL(NAME##_rows, TARGET, T, VEC, MR, NV, W, LOAD, STORE, SET1, FMADD, MUL, ZERO, \
                      (const T* a), a[i], a += MR, (const T* const* brows, std::int64_t boff), brows[k] + boff, (void)0) \
  CT_GEMM_KERNEL_IMPL(NAME##_arows, TARGET, T, VEC, MR, NV, W, LOAD, STORE, SET1, FMADD, MUL, ZERO, \
                      (const T* const* arows), arows[i][k], (void)0, (const T* b, std::int64_t ldb), b, b += ldb) \
  CT_GEMM_KERNEL_IMPL(NAME##_windows, TARGET, T, VEC, MR, NV, W, LOAD, STORE, SET1, FMADD, MUL, ZERO, \
                      (const T* const* abase, const std::int64_t* offs), abase[i][offs[k]], (void)0, \
                      (const T* b, std::int64_t ldb), b, b += ldb)

CT_GEMM_KERNEL(avx512_f32, "avx512f,fma", float, __m512, 8, 2, 16, _mm512_loadu_ps, _mm512_storeu_ps,
               _mm512_set1_ps, _mm512_fmadd_ps, _mm512_mul_ps, _mm512_setzero_ps)
CT_GEMM_KERNEL(avx512_f64, "avx512f,fma", double, __m512d, 8, 2, 8, _mm512_loadu_pd, _mm512_storeu_pd,
               _mm512_set1_pd, _mm512_fmadd_pd, _mm512_mul_pd, _mm512_setzero_pd)
CT_GEMM_KERNEL(avx2_f32, "avx2,fma", float, __m256, 6, 2, 8, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_set1_ps,
               _mm256_fmadd_ps, _mm256_mul_ps, _mm256_setzero_ps)
CT_GEMM_KERNEL(avx2_f64, "avx2,fma", double, __m256d, 6, 2, 4, _mm256_loadu_pd, _mm256_storeu_pd,
               _mm256_set1_pd, _mm256_fmadd_pd, _mm256_mul_pd, _mm256_setzero_pd)

// Half-width variants for the last, narrow column panel of a product.
CT_GEMM_KERNEL(avx512_f32_half, "avx512f,fma", float, __m512, 8, 1, 16, _mm512_loadu_ps, _mm512_storeu_ps,
               _mm512_set1_ps, _mm512_fmadd_ps, _mm512_mul_ps, _mm512_setzero_ps)
CT_GEMM_KERNEL(avx512_f64_half, "avx512f,fma", double, __m512d, 8, 1, 8, _mm512_loadu_pd, _mm512_storeu_pd,
               _mm512_set1_pd, _mm512_fmadd_pd, _mm512_mul_pd, _mm512_setzero_pd)
CT_GEMM_KERNEL(avx2_f32_half, "avx2,fma", float, __m256, 6, 1, 8, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_set1_ps,
               _mm256_fmadd_ps, _mm256_mul_ps, _mm256_setzero_ps)
CT_GEMM_KERNEL(avx2_f64_half, "avx2,fma", double, __m256d, 6, 1, 4, _mm256_loadu_pd, _mm256_storeu_pd,
               _mm256_set1_pd, _mm256_fmadd_pd, _mm256_mul_pd, _mm256_setzero_pd)

// Top halves of a row panel (MR / 2 rows of the MR-row packed A panel), for a last row panel at most
// half full: half the multiply-adds of a full tile spent on zero rows. NAME with B in panels,
// NAME_rows with B as row pointers.
#define CT_GEMM_PART(NAME, TARGET, T, VEC, MR, NV, W, LOAD, STORE, SET1, FMADD, MUL, ZERO) \
  CT_GEMM_KERNEL_IMPL(NAME, TARGET, T, VEC, MR / 2, NV, W, LOAD, STORE, SET1, FMADD, MUL, ZERO, \
                      (const T* a), a[i], a += MR, (const T* b, std::int64_t ldb), b, b += ldb) \
  CT_GEMM_KERNEL_IMPL(NAME##_rows, TARGET, T, VEC, MR / 2, NV, W, LOAD, STORE, SET1, FMADD, MUL, ZERO, \
                      (const T* a), a[i], a += MR, (const T* const* brows, std::int64_t boff), brows[k] + boff, (void)0)
CT_GEMM_PART(avx512_f32_part, "avx512f,fma", float, __m512, 8, 2, 16, _mm512_loadu_ps, _mm512_storeu_ps,
             _mm512_set1_ps, _mm512_fmadd_ps, _mm512_mul_ps, _mm512_setzero_ps)
CT_GEMM_PART(avx512_f64_part, "avx512f,fma", double, __m512d, 8, 2, 8, _mm512_loadu_pd, _mm512_storeu_pd,
             _mm512_set1_pd, _mm512_fmadd_pd, _mm512_mul_pd, _mm512_setzero_pd)
CT_GEMM_PART(avx2_f32_part, "avx2,fma", float, __m256, 6, 2, 8, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_set1_ps,
             _mm256_fmadd_ps, _mm256_mul_ps, _mm256_setzero_ps)
CT_GEMM_PART(avx2_f64_part, "avx2,fma", double, __m256d, 6, 2, 4, _mm256_loadu_pd, _mm256_storeu_pd,
             _mm256_set1_pd, _mm256_fmadd_pd, _mm256_mul_pd, _mm256_setzero_pd)
#undef CT_GEMM_PART
#undef CT_GEMM_KERNEL
#undef CT_GEMM_KERNEL_IMPL
#undef CT_UNPAREN
// clang-format on

// C tile = alpha * acc + beta * C (C not read when beta == 0): the portable kernels' epilogue.
template <class T, int MR, int NR>
void store_tile(const T (&acc)[MR][NR], T* c, std::int64_t ldc, T alpha, T beta) {
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) {
      T& dst = c[i * ldc + j];
      dst = beta == T(0) ? alpha * acc[i][j] : alpha * acc[i][j] + beta * dst;
    }
}

// MR rows of a packed A panel STEP rows tall (STEP > MR: the top rows of a fuller panel).
template <class T, int MR, int NR, int STEP = MR>
void portable(std::int64_t kc, const T* a, const T* b, std::int64_t ldb, T* c, std::int64_t ldc,
              T alpha, T beta) {
  T acc[MR][NR] = {};
  for (std::int64_t k = 0; k < kc; ++k) {
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] += a[i] * b[j];
    a += STEP;
    b += ldb;
  }
  store_tile<T, MR, NR>(acc, c, ldc, alpha, beta);
}

template <class T, int MR, int NR, int STEP = MR>
void portable_rows(std::int64_t kc, const T* a, const T* const* brows, std::int64_t boff, T* c,
                   std::int64_t ldc, T alpha, T beta) {
  T acc[MR][NR] = {};
  for (std::int64_t k = 0; k < kc; ++k) {
    const T* b = brows[k] + boff;
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] += a[i] * b[j];
    a += STEP;
  }
  store_tile<T, MR, NR>(acc, c, ldc, alpha, beta);
}

template <class T, int MR, int NR>
void portable_arows(std::int64_t kc, const T* const* arows, const T* b, std::int64_t ldb, T* c,
                    std::int64_t ldc, T alpha, T beta) {
  T acc[MR][NR] = {};
  for (std::int64_t k = 0; k < kc; ++k) {
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] += arows[i][k] * b[j];
    b += ldb;
  }
  store_tile<T, MR, NR>(acc, c, ldc, alpha, beta);
}

template <class T, int MR, int NR>
void portable_windows(std::int64_t kc, const T* const* abase, const std::int64_t* offs, const T* b,
                      std::int64_t ldb, T* c, std::int64_t ldc, T alpha, T beta) {
  T acc[MR][NR] = {};
  for (std::int64_t k = 0; k < kc; ++k) {
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] += abase[i][offs[k]] * b[j];
    b += ldb;
  }
  store_tile<T, MR, NR>(acc, c, ldc, alpha, beta);
}

// A kc x nr micro-panel of B stays in L1 (16 KiB), a kc x nc block of B in L2 (512 KiB), an
// mc x kc block of A beside it.
const GemmKernel<float> kAvx512F32{"avx512",
                                   8,
                                   32,
                                   384,
                                   128,
                                   512,
                                   &avx512_f32,
                                   &avx512_f32_half,
                                   &avx512_f32_rows,
                                   &avx512_f32_half_rows,
                                   &avx512_f32_arows,
                                   &avx512_f32_half_arows,
                                   &avx512_f32_part,
                                   &avx512_f32_windows,
                                   &avx512_f32_half_windows,
                                   &avx512_f32_part_rows};
const GemmKernel<double> kAvx512F64{"avx512",
                                    8,
                                    16,
                                    128,
                                    96,
                                    768,
                                    &avx512_f64,
                                    &avx512_f64_half,
                                    &avx512_f64_rows,
                                    &avx512_f64_half_rows,
                                    &avx512_f64_arows,
                                    &avx512_f64_half_arows,
                                    &avx512_f64_part,
                                    &avx512_f64_windows,
                                    &avx512_f64_half_windows,
                                    &avx512_f64_part_rows};
const GemmKernel<float> kAvx2F32{"avx2",
                                 6,
                                 16,
                                 256,
                                 120,
                                 1024,
                                 &avx2_f32,
                                 &avx2_f32_half,
                                 &avx2_f32_rows,
                                 &avx2_f32_half_rows,
                                 &avx2_f32_arows,
                                 &avx2_f32_half_arows,
                                 &avx2_f32_part,
                                 &avx2_f32_windows,
                                 &avx2_f32_half_windows,
                                 &avx2_f32_part_rows};
const GemmKernel<double> kAvx2F64{"avx2",
                                  6,
                                  8,
                                  192,
                                  96,
                                  768,
                                  &avx2_f64,
                                  &avx2_f64_half,
                                  &avx2_f64_rows,
                                  &avx2_f64_half_rows,
                                  &avx2_f64_arows,
                                  &avx2_f64_half_arows,
                                  &avx2_f64_part,
                                  &avx2_f64_windows,
                                  &avx2_f64_half_windows,
                                  &avx2_f64_part_rows};
const GemmKernel<float> kPortableF32{"portable",
                                     4,
                                     16,
                                     256,
                                     128,
                                     1024,
                                     &portable<float, 4, 16>,
                                     &portable<float, 4, 8>,
                                     &portable_rows<float, 4, 16>,
                                     &portable_rows<float, 4, 8>,
                                     &portable_arows<float, 4, 16>,
                                     &portable_arows<float, 4, 8>,
                                     &portable<float, 2, 16, 4>,
                                     &portable_windows<float, 4, 16>,
                                     &portable_windows<float, 4, 8>,
                                     &portable_rows<float, 2, 16, 4>};
const GemmKernel<double> kPortableF64{"portable",
                                      4,
                                      8,
                                      192,
                                      96,
                                      768,
                                      &portable<double, 4, 8>,
                                      &portable<double, 4, 4>,
                                      &portable_rows<double, 4, 8>,
                                      &portable_rows<double, 4, 4>,
                                      &portable_arows<double, 4, 8>,
                                      &portable_arows<double, 4, 4>,
                                      &portable<double, 2, 8, 4>,
                                      &portable_windows<double, 4, 8>,
                                      &portable_windows<double, 4, 4>,
                                      &portable_rows<double, 2, 8, 4>};

// ---- Panel packers (cpu/gemm_driver.h). Pure copies: every path stores the same values. ----

// Full w-wide panels of pack_rows: panels full panels of rows source rows. The source is read row
// by row, each row once and in order, its w-wide pieces going to their panels: read panel by panel
// instead, a wide B touched one line per row at the row stride, which the hardware prefetchers
// do not follow (a 32 x 4096 x 432 product spent 28% of its time packing, against 20% this way).
// The copy is of a fixed size, moved in vector registers of the target of the caller below (a
// loop of element copies was compiled to scalar moves: source and panel might have overlapped).
#define CT_PACK_ROWS_FULL(NAME, TARGET)                                                       \
  template <class T, int W>                                                                   \
  __attribute__((target(TARGET))) void NAME(const T* src, std::int64_t ld, std::int64_t rows, \
                                            std::int64_t panels, T* dst) {                    \
    for (std::int64_t r = 0; r < rows; ++r) {                                                 \
      const T* s = src + r * ld;                                                              \
      T* d = dst + r * W;                                                                     \
      for (std::int64_t p = 0; p < panels; ++p, s += W, d += rows * W) {                      \
        std::memcpy(d, s, W * sizeof(T));                                                     \
      }                                                                                       \
    }                                                                                         \
  }
CT_PACK_ROWS_FULL(rows_full_avx512, "avx512f")
CT_PACK_ROWS_FULL(rows_full_avx2, "avx2")
#undef CT_PACK_ROWS_FULL

template <class T, int W>
void rows_full_portable(const T* src, std::int64_t ld, std::int64_t rows, std::int64_t panels,
                        T* dst) {
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t p = 0; p < panels; ++p)
      for (int j = 0; j < W; ++j) dst[(p * rows + r) * W + j] = src[r * ld + p * W + j];
}

// One partial panel (cols < w): the copied columns, then zeros.
template <class T>
void rows_partial(const T* src, std::int64_t ld, std::int64_t rows, std::int64_t cols, int w,
                  T* dst) {
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t j = 0; j < cols; ++j) dst[r * w + j] = src[r * ld + j];
    for (std::int64_t j = cols; j < w; ++j) dst[r * w + j] = T(0);
  }
}

template <class T, int W>
void pack_rows_w(const T* src, std::int64_t ld, std::int64_t rows, std::int64_t cols, T* dst) {
  const Isa path = isa();
  const std::int64_t panels = cols / W;
  if (panels > 0) {
    if (path == Isa::avx512)
      rows_full_avx512<T, W>(src, ld, rows, panels, dst);
    else if (path == Isa::avx2)
      rows_full_avx2<T, W>(src, ld, rows, panels, dst);
    else
      rows_full_portable<T, W>(src, ld, rows, panels, dst);
  }
  if (panels * W < cols)
    rows_partial<T>(src + panels * W, ld, rows, cols - panels * W, W, dst + panels * rows * W);
}

// Transposes of 8 x 8 floats and 4 x 4 doubles held in registers (row i of the input in v[i],
// column i of it in v[i] afterwards).
__attribute__((target("avx2"))) inline void transpose8(__m256 (&v)[8]) {
  __m256 t[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(v[i], v[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(v[i], v[i + 1]);
  }
  __m256 u[8];
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    v[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    v[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}

__attribute__((target("avx2"))) inline void transpose4(__m256d (&v)[4]) {
  const __m256d t0 = _mm256_unpacklo_pd(v[0], v[1]), t1 = _mm256_unpackhi_pd(v[0], v[1]);
  const __m256d t2 = _mm256_unpacklo_pd(v[2], v[3]), t3 = _mm256_unpackhi_pd(v[2], v[3]);
  v[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
  v[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
  v[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
  v[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
}

template <class T>
struct Avx2Vec {
  using type = __m256;
};
template <>
struct Avx2Vec<double> {
  using type = __m256d;
};

// One w-tall panel of pack_cols (h <= w source rows, the rest zeros) with AVX2 transposes: groups
// of V rows by blocks of V columns, each transposed column stored at its place in the panel
// (masked where the group runs past w), and the last cols % V columns one by one.
template <class T>
__attribute__((target("avx2"))) void cols_panel_avx2(const T* src, std::int64_t ld, std::int64_t h,
                                                     std::int64_t cols, int w, T* dst) {
  constexpr int V = 32 / sizeof(T);
  using Vec = typename Avx2Vec<T>::type;
  const std::int64_t cfull = cols / V * V;
  for (int g = 0; g < w; g += V) {
    const int lanes = std::min(V, w - g);
    alignas(32) std::int64_t mask_bits[4] = {};
    alignas(32) std::int32_t mask_words[8] = {};
    for (int l = 0; l < lanes; ++l) {
      mask_words[l] = -1;
      if (l < 4) mask_bits[l] = -1;
    }
    const __m256i mask = std::is_same_v<T, float>
                             ? _mm256_load_si256(reinterpret_cast<const __m256i*>(mask_words))
                             : _mm256_load_si256(reinterpret_cast<const __m256i*>(mask_bits));
    for (std::int64_t c = 0; c < cfull; c += V) {
      Vec v[V];
      for (int i = 0; i < V; ++i) {
        const std::int64_t row = g + i;
        if constexpr (std::is_same_v<T, float>)
          v[i] = row < h ? _mm256_loadu_ps(src + row * ld + c) : _mm256_setzero_ps();
        else
          v[i] = row < h ? _mm256_loadu_pd(src + row * ld + c) : _mm256_setzero_pd();
      }
      if constexpr (std::is_same_v<T, float>) {
        transpose8(v);
        for (int i = 0; i < V; ++i) {
          T* d = dst + (c + i) * w + g;
          if (lanes == V)
            _mm256_storeu_ps(d, v[i]);
          else
            _mm256_maskstore_ps(d, mask, v[i]);
        }
      } else {
        transpose4(v);
        for (int i = 0; i < V; ++i) {
          T* d = dst + (c + i) * w + g;
          if (lanes == V)
            _mm256_storeu_pd(d, v[i]);
          else
            _mm256_maskstore_pd(d, mask, v[i]);
        }
      }
    }
  }
  for (std::int64_t c = cfull; c < cols; ++c)
    for (int i = 0; i < w; ++i) dst[c * w + i] = i < h ? src[i * ld + c] : T(0);
}

template <class T>
void cols_panel_portable(const T* src, std::int64_t ld, std::int64_t h, std::int64_t cols, int w,
                         T* dst) {
  // Column by column: h row streams advance together and every store is contiguous.
  for (std::int64_t c = 0; c < cols; ++c) {
    for (std::int64_t i = 0; i < h; ++i) dst[c * w + i] = src[i * ld + c];
    for (std::int64_t i = h; i < w; ++i) dst[c * w + i] = T(0);
  }
}

}  // namespace

template <class T>
void pack_rows(const T* src, std::int64_t ld, std::int64_t rows, std::int64_t cols, int w, T* dst) {
  switch (w) {
    case 32:
      return pack_rows_w<T, 32>(src, ld, rows, cols, dst);
    case 16:
      return pack_rows_w<T, 16>(src, ld, rows, cols, dst);
    case 8:
      return pack_rows_w<T, 8>(src, ld, rows, cols, dst);
    case 6:
      return pack_rows_w<T, 6>(src, ld, rows, cols, dst);
    case 4:
      return pack_rows_w<T, 4>(src, ld, rows, cols, dst);
    default:
      break;
  }
  for (std::int64_t p = 0; p * w < cols; ++p)
    rows_partial<T>(src + p * w, ld, rows, std::min<std::int64_t>(w, cols - p * w), w,
                    dst + p * rows * w);
}

template <class T>
void pack_cols(const T* src, std::int64_t ld, std::int64_t rows, std::int64_t cols, int w, T* dst) {
  const bool simd = isa() != Isa::portable;
  for (std::int64_t p = 0; p * w < rows; ++p) {
    const std::int64_t h = std::min<std::int64_t>(w, rows - p * w);
    if (simd)
      cols_panel_avx2<T>(src + p * w * ld, ld, h, cols, w, dst + p * cols * w);
    else
      cols_panel_portable<T>(src + p * w * ld, ld, h, cols, w, dst + p * cols * w);
  }
}

template void pack_rows<float>(const float*, std::int64_t, std::int64_t, std::int64_t, int, float*);
template void pack_rows<double>(const double*, std::int64_t, std::int64_t, std::int64_t, int,
                                double*);
template void pack_cols<float>(const float*, std::int64_t, std::int64_t, std::int64_t, int, float*);
template void pack_cols<double>(const double*, std::int64_t, std::int64_t, std::int64_t, int,
                                double*);

namespace {

// Indexed by Isa's value (portable 0, avx2 1, avx512 2).
const GemmKernel<float>* const kFloatKernels[] = {&kPortableF32, &kAvx2F32, &kAvx512F32};
const GemmKernel<double>* const kDoubleKernels[] = {&kPortableF64, &kAvx2F64, &kAvx512F64};

}  // namespace

template <class T>
const GemmKernel<T>& gemm_kernel(Isa path) {
  // Clamped, so that no caller can run an instruction set the CPU lacks.
  const int p = std::clamp(static_cast<int>(path), 0, static_cast<int>(native_isa()));
  if constexpr (std::is_same_v<T, float>)
    return *kFloatKernels[p];
  else
    return *kDoubleKernels[p];
}

template <class T>
std::vector<const GemmKernel<T>*> available_gemm_kernels() {
  std::vector<const GemmKernel<T>*> v;
  for (Isa path : available_isas()) v.push_back(&gemm_kernel<T>(path));
  return v;
}

template const GemmKernel<float>& gemm_kernel<float>(Isa);
template const GemmKernel<double>& gemm_kernel<double>(Isa);
template std::vector<const GemmKernel<float>*> available_gemm_kernels<float>();
template std::vector<const GemmKernel<double>*> available_gemm_kernels<double>();

}  // namespace convtape::cpu
