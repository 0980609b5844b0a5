// What the two Winograd engines (cpu/conv_winograd.cpp, stride 1, and cpu/conv_winograd_s2.cpp,
// stride 2) share: the 1-D input transform B^T of F(4, 3) and F(5, 2) (the same interpolation
// points 0, 1, -1, 2, -2 and infinity), and the register-blocked GEMM micro-kernels (defined in
// cpu/conv_winograd.cpp), one per ISA path:
//   kernel     C[mr x nr] (=|+=) sum_k A[i * lda + k] B[k * ldb + j]: A read in place, one
//              broadcast per row and k (rows lda apart); B rows are nr contiguous floats
//   half       the same for C[mr x nr / 2] (a last half column panel)
//   transpose  dst[t * ldd + c] = src[c * lds + t] for c < rows, t < cols
#pragma once

#include <cstdint>

#include "cpu/isa.h"

// 1-D input transform r = B^T z of 6 values:
//   B^T = [4  0 -5  0 1 0]
//         [0 -4 -4  1 1 0]
//         [0  4 -4 -1 1 0]
//         [0 -2 -1  2 1 0]
//         [0  2 -1 -2 1 0]
//         [0  4  0 -5 0 1]
#define CT_WINO_IN_1D(z0, z1, z2, z3, z4, z5, r0, r1, r2, r3, r4, r5) \
  do {                                                                \
    r0 = 4.0f * z0 - 5.0f * z2 + z4;                                  \
    r1 = (z3 + z4) - 4.0f * (z1 + z2);                                \
    r2 = (z4 - z3) + 4.0f * (z1 - z2);                                \
    r3 = (z4 - z2) + 2.0f * (z3 - z1);                                \
    r4 = (z4 - z2) - 2.0f * (z3 - z1);                                \
    r5 = 4.0f * z1 - 5.0f * z3 + z5;                                  \
  } while (0)

namespace convtape::cpu::winograd {

struct MicroKernel {
  int mr, nr;
  void (*kernel)(std::int64_t kc, const float* a, std::int64_t lda, const float* b,
                 std::int64_t ldb, float* c, std::int64_t ldc, bool accumulate);
  void (*half)(std::int64_t kc, const float* a, std::int64_t lda, const float* b, std::int64_t ldb,
               float* c, std::int64_t ldc, bool accumulate);
  void (*transpose)(const float* src, std::int64_t lds, std::int64_t rows, std::int64_t cols,
                    float* dst, std::int64_t ldd);
};

// The micro-kernel of an ISA path (Isa::avx512: 8 x 32, avx2: 6 x 16, portable: 4 x 16).
const MicroKernel& micro_kernel(Isa isa);

}  // namespace convtape::cpu::winograd
