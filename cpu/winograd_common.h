// What the two Winograd engines (cpu/conv_winograd.cpp, F(4x4, 3x3), and
// cpu/conv_winograd_axes.cpp, the axis schemes) share: the register-blocked GEMM micro-kernels
// (defined in cpu/conv_winograd.cpp), one per ISA path, and the end of their weight gradients:
//   kernel     C[mr x nr] (=|+=) sum_k A[i * lda + k] B[k * ldb + j]: A read in place, one
//              broadcast per row and k (rows lda apart); B rows are nr contiguous floats
//   half       the same for C[mr x nr / 2] (a last half column panel)
//   transpose  dst[t * ldd + c] = src[c * lds + t] for c < rows, t < cols
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "cpu/isa.h"

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
