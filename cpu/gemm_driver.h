// The blocked GEMM driver shared by matmul and convolution. One call multiplies an m x k operand
// A by a k x n operand B into C (row-major, leading dimension ldc) on the calling thread:
//   for each nc-wide block of B's columns and kc-deep slice of the reduction,
//     pack that slice of B into NR-wide panels (pack_b),
//     for each mc-tall block of A's rows, pack it into MR-tall panels (pack_a),
//       and run the micro-kernel over every MR x NR tile.
// Operands are reached only through the packers, so the same driver serves a strided matrix, its
// transpose, or an im2col view of a convolution input (unfolded straight into the panel, never
// materialised):
//   pack_a(i0, k0, mc, kc, dst): dst[(p*kc + kk)*MR + ii] = A(i0 + p*MR + ii, k0 + kk), 0 past mc
//   pack_b(k0, j0, kc, nc, dst): dst[(p*kc + kk)*NR + jj] = B(k0 + kk, j0 + p*NR + jj), 0 past nc
// An A packer with at(i0, k0) holds A already packed for the whole reduction (PackedA): its panels
// are read where they lie. A B packer whose in_place() is true also offers at(k0, j0) and ld(): B's
// full-width panels are then read where they lie (worth it when A has few row panels to reuse a
// packed copy). C = alpha * A B + beta * C; C is not read when beta == 0.
#pragma once

#include <algorithm>
#include <cstdint>

#include "cpu/gemm_kernel.h"

namespace convtape::cpu {

// Per-thread packing buffers (64-byte aligned), grown on demand and kept for reuse.
enum class GemmBuffer { A, B, Extra, Input };
template <class T>
T* gemm_workspace(GemmBuffer which, std::int64_t count);

// Panel packers of row-major sources (cpu/gemm_kernels.cpp, vectorised for the path in effect;
// every path stores the same values). pack_rows copies rows x cols of src into w-wide panels:
//   dst[(p * rows + r) * w + jj] = src[r * ld + p * w + jj], 0 for p * w + jj >= cols;
// pack_cols transposes cols x rows of src into w-tall panels:
//   dst[(p * cols + c) * w + ii] = src[(p * w + ii) * ld + c], 0 for p * w + ii >= rows.
template <class T>
void pack_rows(const T* src, std::int64_t ld, std::int64_t rows, std::int64_t cols, int w, T* dst);
template <class T>
void pack_cols(const T* src, std::int64_t ld, std::int64_t rows, std::int64_t cols, int w, T* dst);

// L1 bytes that a few-row product's A block and one B panel may fill (of 32-48 KiB).
inline constexpr std::int64_t kL1Bytes = 36 << 10;

template <class T, class PackA, class PackB>
void gemm_blocked(const GemmKernel<T>& kern, std::int64_t m, std::int64_t n, std::int64_t k,
                  T alpha, PackA&& pack_a, PackB&& pack_b, T beta, T* c, std::int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t j = 0; j < n; ++j)
        c[i * ldc + j] = beta == T(0) ? T(0) : beta * c[i * ldc + j];
    return;
  }
  const std::int64_t mr = kern.mr, nr = kern.nr;
  const std::int64_t ncap = std::min(kern.nc, (n + nr - 1) / nr * nr);
  const std::int64_t mcap = std::min(kern.mc, (m + mr - 1) / mr * mr);
  const std::int64_t kcap = std::min(kern.kc, k);  // >= every reduction slice
  T* bp = gemm_workspace<T>(GemmBuffer::B, kcap * ncap);
  T* ap = gemm_workspace<T>(GemmBuffer::A, mcap * kcap);
  alignas(64) T tile[8 * 32];
  bool in_place = false;
  if constexpr (requires { pack_b.in_place(); }) in_place = pack_b.in_place();
  // Up to four row panels with B read in place: the whole A block and one B panel share L1 (kc
  // cut to fit), and each B panel serves every row panel from there (column panels outer). A
  // packed B streamed from memory gains less than the extra passes over C cost.
  const bool few_rows = in_place && m <= 4 * mr;
  const std::int64_t kc_max =
      few_rows ? std::clamp<std::int64_t>(
                     kL1Bytes / ((mcap + nr) * static_cast<std::int64_t>(sizeof(T))), 64, kern.kc)
               : kern.kc;
  // Equal reduction slices (576 -> 2 x 288, not 256 + 256 + 64): no short tail slice.
  const std::int64_t slices = (k + kc_max - 1) / kc_max;
  const std::int64_t kstep = (k + slices - 1) / slices;
  constexpr bool kPrepacked = requires {
    pack_a.at(std::int64_t{0}, std::int64_t{0});
  };
  // One block: B's slice (pc, jc) packed once, A's row blocks packed unless a_packed says that the
  // single row block is already in ap.
  auto block = [&](std::int64_t jc, std::int64_t nc, std::int64_t pc, std::int64_t kc,
                   bool a_packed) {
    const T beta_now = pc == 0 ? beta : T(1);
    const std::int64_t full = in_place ? nc / nr * nr : 0;  // columns read in place
    if (full < nc) pack_b(pc, jc + full, kc, nc - full, bp);
    for (std::int64_t ic = 0; ic < m; ic += kern.mc) {
      const std::int64_t mc = std::min(kern.mc, m - ic);
      if (!kPrepacked && !a_packed) pack_a(ic, pc, mc, kc, ap);
      // One MR x NR tile of C from row panel ir and column panel jr of the block.
      auto run_tile = [&](std::int64_t ir, std::int64_t jr) {
        const std::int64_t mr_now = std::min(mr, mc - ir);
        const T* a_panel = ap + (ir / mr) * mr * kc;
        if constexpr (kPrepacked) a_panel = pack_a.at(ic + ir, pc);
        const std::int64_t nr_now = std::min(nr, nc - jr);
        const T* b_panel = nullptr;
        std::int64_t ldb = nr;
        if constexpr (requires { pack_b.at(pc, jc); }) {
          if (jr < full) {
            b_panel = pack_b.at(pc, jc + jr);
            ldb = pack_b.ld();
          }
        }
        if (!b_panel) b_panel = bp + ((jr - full) / nr) * nr * kc;
        T* cij = c + (ic + ir) * ldc + jc + jr;
        if (mr_now == mr && nr_now == nr) {
          kern.kernel(kc, a_panel, b_panel, ldb, cij, ldc, alpha, beta_now);
        } else if (mr_now == mr && 2 * nr_now == nr) {
          kern.half(kc, a_panel, b_panel, ldb, cij, ldc, alpha, beta_now);
        } else if (2 * mr_now == mr && nr_now == nr) {
          kern.part(kc, a_panel, b_panel, ldb, cij, ldc, alpha, beta_now);
        } else {
          (2 * nr_now <= nr   ? kern.half
           : 2 * mr_now <= mr ? kern.part
                              : kern.kernel)(kc, a_panel, b_panel, ldb, tile, nr, T(1), T(0));
          for (std::int64_t i = 0; i < mr_now; ++i)
            for (std::int64_t j = 0; j < nr_now; ++j) {
              T& dst = cij[i * ldc + j];
              dst = beta_now == T(0) ? alpha * tile[i * nr + j]
                                     : alpha * tile[i * nr + j] + beta_now * dst;
            }
        }
      };
      if (few_rows) {
        for (std::int64_t jr = 0; jr < nc; jr += nr)
          for (std::int64_t ir = 0; ir < mc; ir += mr) run_tile(ir, jr);
      } else {
        // One A micro-panel stays in L1 while the B panels of the block stream past it from L2.
        for (std::int64_t ir = 0; ir < mc; ir += mr)
          for (std::int64_t jr = 0; jr < nc; jr += nr) run_tile(ir, jr);
      }
    }
  };
  if (m <= kern.mc) {
    // A single row block: each slice of A is packed once and serves every column block. The
    // reduction slices still reach each C element in order, so the sums are those of the order
    // below.
    for (std::int64_t pc = 0; pc < k; pc += kstep) {
      const std::int64_t kc = std::min(kstep, k - pc);
      if (!kPrepacked) pack_a(0, pc, m, kc, ap);
      for (std::int64_t jc = 0; jc < n; jc += kern.nc)
        block(jc, std::min(kern.nc, n - jc), pc, kc, true);
    }
    return;
  }
  for (std::int64_t jc = 0; jc < n; jc += kern.nc)
    for (std::int64_t pc = 0; pc < k; pc += kstep)
      block(jc, std::min(kern.nc, n - jc), pc, std::min(kstep, k - pc), false);
}

// A packed once in full: MR-row panels over the whole reduction, panel p at data + p * MR * k,
// element (k, i) of a panel at [k * MR + i]. A sub-block's panel is then a contiguous slice.
template <class T>
struct PackedA {
  const T* data;
  std::int64_t k;
  int mr;
  const T* at(std::int64_t i0, std::int64_t k0) const {
    return data + (i0 / mr) * mr * k + k0 * mr;
  }
  void operator()(std::int64_t, std::int64_t, std::int64_t, std::int64_t, T*) const {}
};

// Packers for a row-major matrix M with leading dimension ld, read as op(M) = M or M^T.
template <class T>
struct MatrixPackA {
  const T* a;
  std::int64_t lda;
  bool trans;
  int mr;
  void operator()(std::int64_t i0, std::int64_t k0, std::int64_t mc, std::int64_t kc,
                  T* dst) const {
    if (trans)
      pack_rows<T>(a + k0 * lda + i0, lda, kc, mc, mr, dst);
    else
      pack_cols<T>(a + i0 * lda + k0, lda, mc, kc, mr, dst);
  }
};

template <class T>
struct MatrixPackB {
  const T* b;
  std::int64_t ldb;
  bool trans;
  int nr;
  bool read_in_place = false;  // only for !trans
  bool in_place() const { return read_in_place && !trans; }
  const T* at(std::int64_t k0, std::int64_t j0) const { return b + k0 * ldb + j0; }
  std::int64_t ld() const { return ldb; }
  void operator()(std::int64_t k0, std::int64_t j0, std::int64_t kc, std::int64_t nc,
                  T* dst) const {
    if (trans)
      pack_cols<T>(b + j0 * ldb + k0, ldb, nc, kc, nr, dst);
    else
      pack_rows<T>(b + k0 * ldb + j0, ldb, kc, nc, nr, dst);
  }
};

}  // namespace convtape::cpu
