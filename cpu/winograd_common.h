// What the two Winograd engines (cpu/conv_winograd.cpp, stride 1, and cpu/conv_winograd_s2.cpp,
// stride 2) share: the 1-D input transform B^T of F(4, 3) and F(5, 2) (the same interpolation
// points 0, 1, -1, 2, -2 and infinity), and the register-blocked GEMM micro-kernels (defined in
// cpu/conv_winograd.cpp), one per ISA path:
//   kernel     C[mr x nr] (=|+=) sum_k A[i * lda + k] B[k * ldb + j]: A read in place, one
//              broadcast per row and k (rows lda apart); B rows are nr contiguous floats
//   half       the same for C[mr x nr / 2] (a last half column panel)
//   transpose  dst[t * ldd + c] = src[c * lds + t] for c < rows, t < cols
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

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

// The end of both engines' weight gradients, whose blocks are summed in parts (cpu/parallel.h):
// one part's dw [groups][co][ci][taps] from its dU [groups][planes][kp][cp] (groups `planes` sxs
// apart, one plane per transformed weight) through `adjoint`, which turns 16 (or the last n)
// channel pairs' planes, 16 lanes apart, into their taps each; zero for groups the part saw no
// block of (dU = 0).
template <class Adjoint>
void part_weights(const float* du, std::int64_t planes, std::int64_t sxs, std::int64_t cp,
                  const std::vector<char>& touched, std::int64_t co, std::int64_t ci,
                  std::int64_t taps, Adjoint&& adjoint, float* dw) {
  const std::int64_t groups = static_cast<std::int64_t>(touched.size());
  for (std::int64_t grp = 0; grp < groups; ++grp) {
    float* dwg = dw + grp * co * ci * taps;
    if (!touched[static_cast<std::size_t>(grp)]) {
      std::fill_n(dwg, co * ci * taps, 0.0f);
      continue;
    }
    for (std::int64_t o = 0; o < co; ++o)
      for (std::int64_t c = 0; c < ci; c += 16)
        adjoint(du + grp * planes * sxs + o * cp + c, sxs,
                static_cast<int>(std::min<std::int64_t>(16, ci - c)), dwg + (o * ci + c) * taps);
  }
}

// dw += the parts' copies past part 0 (partial: parts - 1 copies of `size` floats), in part order.
inline void add_parts(float* dw, const float* partial, int parts, std::int64_t size) {
  for (int q = 0; q + 1 < parts; ++q) {
    const float* src = partial + q * size;
    for (std::int64_t i = 0; i < size; ++i) dw[i] += src[i];
  }
}

}  // namespace convtape::cpu::winograd
