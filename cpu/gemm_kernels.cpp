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
#include <type_traits>
#include <vector>

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

// Three forms per ISA: packed A with B in panels (or rows ldb apart); packed A with B given as one
// row pointer per k, offset by boff (NAME_rows); and A given as one pointer per row (element k of
// row i at arows[i][k]) with B in panels (NAME_arows).
#define CT_GEMM_KERNEL(NAME, TARGET, T, VEC, MR, NV, W, LOAD, STORE, SET1, FMADD, MUL, ZERO) \
  CT_GEMM_KERNEL_IMPL(NAME, TARGET, T, VEC, MR, NV, W, LOAD, STORE, SET1, FMADD, MUL, ZERO, \
                      (const T* a), a[i], a += MR, (const T* b, std::int64_t ldb), b, b += ldb) \
  CT_GEMM_KERNEL_IMPL(NAME##_rows, TARGET, T, VEC, MR, NV, W, LOAD, STORE, SET1, FMADD, MUL, ZERO, \
                      (const T* a), a[i], a += MR, (const T* const* brows, std::int64_t boff), brows[k] + boff, (void)0) \
  CT_GEMM_KERNEL_IMPL(NAME##_arows, TARGET, T, VEC, MR, NV, W, LOAD, STORE, SET1, FMADD, MUL, ZERO, \
                      (const T* const* arows), arows[i][k], (void)0, (const T* b, std::int64_t ldb), b, b += ldb)

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

template <class T, int MR, int NR>
void portable(std::int64_t kc, const T* a, const T* b, std::int64_t ldb, T* c, std::int64_t ldc,
              T alpha, T beta) {
  T acc[MR][NR] = {};
  for (std::int64_t k = 0; k < kc; ++k) {
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] += a[i] * b[j];
    a += MR;
    b += ldb;
  }
  store_tile<T, MR, NR>(acc, c, ldc, alpha, beta);
}

template <class T, int MR, int NR>
void portable_rows(std::int64_t kc, const T* a, const T* const* brows, std::int64_t boff, T* c,
                   std::int64_t ldc, T alpha, T beta) {
  T acc[MR][NR] = {};
  for (std::int64_t k = 0; k < kc; ++k) {
    const T* b = brows[k] + boff;
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] += a[i] * b[j];
    a += MR;
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
                                   &avx512_f32_half_arows};
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
                                    &avx512_f64_half_arows};
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
                                 &avx2_f32_half_arows};
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
                                  &avx2_f64_half_arows};
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
                                     &portable_arows<float, 4, 8>};
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
                                      &portable_arows<double, 4, 4>};

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
