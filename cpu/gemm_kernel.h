// GEMM micro-kernels and their blocking, one set per ISA path of cpu/isa.h: AVX-512 (512-bit FMA),
// AVX2 + FMA (256-bit), or portable C++; the path in effect (cpu::isa()) picks one at each call. A
// micro-kernel multiplies one packed MR x kc panel of A by one packed kc x NR panel of B into an MR
// x NR tile of C:
//   C[i, j] = alpha * sum_k A[k][i] * B[k][j] + beta * C[i, j]   (C not read when beta == 0)
// The part kernel computes only the top MR / 2 rows (A still steps MR per k).
// Layouts: A panel element (k, i) at a[k * MR + i]; B element (k, j) at b[k * ldb + j] (ldb = NR
// for a packed panel, or the row stride of a row-major B read in place).
#pragma once

#include <cstdint>
#include <vector>

#include "cpu/isa.h"

namespace convtape::cpu {

template <class T>
using MicroKernel = void (*)(std::int64_t kc, const T* a, const T* b, std::int64_t ldb, T* c,
                             std::int64_t ldc, T alpha, T beta);

// The same product with B given as one row pointer per k: B element (k, j) at brows[k][boff + j].
// Serves implicit-GEMM convolution, whose B rows are shifted windows of one padded input.
template <class T>
using RowsKernel = void (*)(std::int64_t kc, const T* a, const T* const* brows, std::int64_t boff,
                            T* c, std::int64_t ldc, T alpha, T beta);

// The product with A given as one pointer per row: A element (i, k) at arows[i][k]. Serves the
// weight gradient of implicit-GEMM convolution, whose A rows are windows of one padded input.
template <class T>
using ARowsKernel = void (*)(std::int64_t kc, const T* const* arows, const T* b, std::int64_t ldb,
                             T* c, std::int64_t ldc, T alpha, T beta);

// The product with A as windows of one buffer: A element (i, k) at abase[i][offs[k]], B in
// panels. Serves the positions-major implicit-GEMM convolution: rows are output positions (each
// its window's base in the padded input), k the column-matrix rows (offsets of the taps), B the
// packed weights, C a positions x channels tile.
template <class T>
using WindowsKernel = void (*)(std::int64_t kc, const T* const* abase, const std::int64_t* offs,
                               const T* b, std::int64_t ldb, T* c, std::int64_t ldc, T alpha,
                               T beta);

template <class T>
struct GemmKernel {
  const char* isa;  // "avx512", "avx2" or "portable"
  int mr, nr;       // register tile
  std::int64_t kc;  // depth of a packed panel
  std::int64_t mc;  // rows of A packed at once (multiple of mr)
  std::int64_t nc;  // columns of B packed at once (multiple of nr)
  MicroKernel<T> kernel;
  MicroKernel<T> half;  // MR x NR/2, for a last panel at most half full
  RowsKernel<T> rows;
  RowsKernel<T> rows_half;
  ARowsKernel<T> arows;
  ARowsKernel<T> arows_half;
  MicroKernel<T>
      part;  // the top mr / 2 rows of a packed A panel, for a last panel at most half full
  WindowsKernel<T> windows;
  WindowsKernel<T> windows_half;  // MR x NR/2
  RowsKernel<T> rows_part;        // rows with the top mr / 2 rows of the A panel, as part
};

// The kernel of one ISA path (clamped to native_isa()).
template <class T>
const GemmKernel<T>& gemm_kernel(Isa path);

// The kernel of the path in effect, cpu::isa(). An op fetches it once and hands that reference to
// everything it runs: its blocking (mr, nr, kc, ...) sizes the packed panels, so two fetches in
// one op could mix two kernels' layouts if set_isa ran in between.
template <class T>
const GemmKernel<T>& gemm_kernel() {
  return gemm_kernel<T>(isa());
}

// Every kernel this CPU can run, best first, one per available_isas() (for tests that compare
// them).
template <class T>
std::vector<const GemmKernel<T>*> available_gemm_kernels();

}  // namespace convtape::cpu
