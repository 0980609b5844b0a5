// GEMM entry points over the blocked driver (cpu/gemm_driver.h): per-thread packing buffers,
// the split of one product across OpenMP threads, and batched products.
#include "cpu/gemm.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string_view>
#include <vector>

#include "cpu/gemm_driver.h"
#include "cpu/parallel.h"

namespace convtape::cpu {

namespace {

struct FreeDeleter {
  void operator()(void* p) const noexcept { std::free(p); }
};

struct Buffer {
  std::unique_ptr<void, FreeDeleter> data;
  std::int64_t bytes = 0;
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { detail::count_workspace(-bytes); }
};

thread_local Buffer t_buffers[4];

// Products below this many multiply-adds (about 10 us of work) run on the calling thread: waking
// the team costs more than splitting saves.
constexpr std::int64_t kParallelWork = 1 << 20;

// Untransposed products whose B fits in L2: B is not packed. Its full-width column panels are read
// where they lie; only B's last, partial panel is copied, zero-padded, so that no read runs past
// B. For small products a packed copy of B would cost a tenth of the arithmetic or more.
constexpr std::int64_t kUnpackedBBytes = 256 << 10;

// B read in place by products of 2 to 4 row panels only up to this size (about what stays in L2).
constexpr std::int64_t kInPlaceBBytes = 1536 << 10;

// C element = alpha * acc + beta * C as the micro-kernels round it (SIMD: one fused multiply-add
// onto beta * C; portable: two roundings), for tiles finished outside a kernel: every element then
// has the same value whichever tile holds it.
template <class T>
T finish(bool fused, T alpha, T acc, T beta, T c) {
  if (beta == T(0)) return alpha * acc;
  return fused ? std::fma(alpha, acc, beta * c) : alpha * acc + beta * c;
}

// Short reductions store a C element for every few multiply-adds, and a store split across two
// cache lines costs about twice one within a line: up to this k, the unpacked product shifts its
// tiles so that C's full tiles start on 64-byte lines (when every row of C is aligned alike).
constexpr std::int64_t kAlignCMaxK = 64;

template <class T>
void gemm_unpacked(const GemmKernel<T>& kern, std::int64_t m, std::int64_t n, std::int64_t k,
                   T alpha, const T* a, std::int64_t lda, const T* b, std::int64_t ldb, T beta,
                   T* c, std::int64_t ldc) {
  const std::int64_t mr = kern.mr, nr = kern.nr;
  const auto address = reinterpret_cast<std::uintptr_t>(c);
  std::int64_t head = 0;  // columns before the first full tile
  if (k <= kAlignCMaxK && ldc * static_cast<std::int64_t>(sizeof(T)) % 64 == 0 &&
      address % sizeof(T) == 0) {
    head = static_cast<std::int64_t>((64 - address % 64) % 64 / sizeof(T));
    if (head + nr > n) head = 0;
  }
  const std::int64_t full = head + (n - head) / nr * nr;  // full tiles cover [head, full)
  const bool fused = std::string_view(kern.isa) != "portable";
  thread_local std::vector<T> tail;
  if (full < n) {
    tail.assign(static_cast<std::size_t>(k * nr), T(0));
    for (std::int64_t kk = 0; kk < k; ++kk)
      std::copy_n(b + kk * ldb + full, n - full, tail.data() + kk * nr);
  }
  alignas(64) T tile[8 * 32];
  // A is packed one row panel at a time (mr x k, a small copy): the micro-kernel's broadcasts then
  // read one contiguous stream instead of mr rows.
  T* ap = gemm_workspace<T>(GemmBuffer::A, mr * k);
  // Columns [j0, j0 + cols) of the row panel at ir through the tile buffer; B read from bp.
  auto edge = [&](std::int64_t ir, std::int64_t mr_now, std::int64_t j0, std::int64_t cols,
                  const T* bp, std::int64_t ld) {
    (2 * cols <= nr     ? kern.half
     : 2 * mr_now <= mr ? kern.part
                        : kern.kernel)(k, ap, bp, ld, tile, nr, T(1), T(0));
    for (std::int64_t i = 0; i < mr_now; ++i)
      for (std::int64_t j = 0; j < cols; ++j) {
        T& dst = c[(ir + i) * ldc + j0 + j];
        dst = finish(fused, alpha, tile[i * nr + j], beta, dst);
      }
  };
  for (std::int64_t ir = 0; ir < m; ir += mr) {
    const std::int64_t mr_now = std::min(mr, m - ir);
    pack_cols<T>(a + ir * lda, lda, mr_now, k, kern.mr, ap);
    // The head reads B's first nr (or nr / 2) columns, all within B since head + nr <= n.
    if (head > 0) edge(ir, mr_now, 0, head, b, ldb);
    for (std::int64_t jr = head; jr < full; jr += nr) {
      T* cij = c + ir * ldc + jr;
      if (mr_now == mr)
        kern.kernel(k, ap, b + jr, ldb, cij, ldc, alpha, beta);
      else
        edge(ir, mr_now, jr, nr, b + jr, ldb);
    }
    if (full < n) {
      if (mr_now == mr && 2 * (n - full) == nr)
        kern.half(k, ap, tail.data(), nr, c + ir * ldc + full, ldc, alpha, beta);
      else
        edge(ir, mr_now, full, n - full, tail.data(), nr);
    }
  }
}

template <class T>
void gemm_range(const GemmKernel<T>& kern, bool trans_a, bool trans_b, std::int64_t m,
                std::int64_t n, std::int64_t k, T alpha, const T* a, std::int64_t lda, const T* b,
                std::int64_t ldb, T beta, T* c, std::int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (!trans_a && !trans_b && k > 0 &&
      k * n * static_cast<std::int64_t>(sizeof(T)) <= kUnpackedBBytes)
    return gemm_unpacked<T>(kern, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  // With few row panels of A, a packed copy of B would be reused too rarely to pay for itself, as
  // long as B stays in cache; a B streamed from memory is better copied in bulk (the copy keeps
  // many lines in flight, the micro-kernel waits on each).
  const bool in_place =
      !trans_b &&
      (m <= 2 * kern.mr ||
       (m <= 4 * kern.mr && k * n * static_cast<std::int64_t>(sizeof(T)) <= kInPlaceBBytes));
  gemm_blocked<T>(kern, m, n, k, alpha, MatrixPackA<T>{a, lda, trans_a, kern.mr},
                  MatrixPackB<T>{b, ldb, trans_b, kern.nr, in_place}, beta, c, ldc);
}

}  // namespace

template <class T>
T* gemm_workspace(GemmBuffer which, std::int64_t count) {
  Buffer& buf = t_buffers[static_cast<int>(which)];
  const std::int64_t bytes =
      std::max<std::int64_t>(count, 1) * static_cast<std::int64_t>(sizeof(T));
  if (buf.bytes < bytes) {
    const std::int64_t rounded = (bytes + 4095) / 4096 * 4096;
    const std::int64_t old = buf.bytes;
    buf.data.reset(std::aligned_alloc(64, static_cast<std::size_t>(rounded)));
    buf.bytes = buf.data ? rounded : 0;
    detail::count_workspace(buf.bytes - old);
    CT_CHECK(buf.data != nullptr,
             "gemm: expected {} bytes of workspace to be available, got an allocation failure",
             rounded);
  }
  return static_cast<T*>(buf.data.get());
}

template float* gemm_workspace<float>(GemmBuffer, std::int64_t);
template double* gemm_workspace<double>(GemmBuffer, std::int64_t);

template <class T>
void gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, T alpha,
          const T* a, std::int64_t lda, const T* b, std::int64_t ldb, T beta, T* c,
          std::int64_t ldc) {
  gemm<T>(gemm_kernel<T>(), trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

template <class T>
void gemm(const GemmKernel<T>& kern, bool trans_a, bool trans_b, std::int64_t m, std::int64_t n,
          std::int64_t k, T alpha, const T* a, std::int64_t lda, const T* b, std::int64_t ldb,
          T beta, T* c, std::int64_t ldc) {
  // A call from inside a parallel region runs whole on its thread. omp_get_level() counts inactive
  // (one-thread) regions too, unlike omp_in_parallel(), so the cut below is the same whatever the
  // team size (cpu/parallel.h).
  const int threads = omp_get_level() > 0 ? 1 : plan_threads();
  if (threads <= 1 || m * n * k < kParallelWork) {
    gemm_range<T>(kern, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  // Split the larger output dimension into one slab per thread (whole register tiles), so that
  // every thread packs its own B (or A) slab and no two threads write the same C element. Each C
  // element is summed by one slab, so the slab's thread does not matter, only the cut.
  // N slabs keep each thread's B panels apart; narrow slabs waste their edge tiles, so split M
  // instead when N is narrow and M has room.
  const bool split_n = n / threads >= 4 * kern.nr || m / threads < kern.mr;
  const std::int64_t extent = split_n ? n : m;
  const std::int64_t unit = split_n ? kern.nr : kern.mr;
  const std::int64_t units = (extent + unit - 1) / unit;
  const std::int64_t parts = std::min<std::int64_t>(threads, units);
#pragma omp parallel for schedule(static) num_threads(run_threads(parts))
  for (std::int64_t p = 0; p < parts; ++p) {
    const std::int64_t lo = units * p / parts * unit;
    const std::int64_t hi = std::min(extent, units * (p + 1) / parts * unit);
    if (lo >= hi) continue;
    if (split_n) {
      const T* bs = trans_b ? b + lo * ldb : b + lo;
      gemm_range<T>(kern, trans_a, trans_b, m, hi - lo, k, alpha, a, lda, bs, ldb, beta, c + lo,
                    ldc);
    } else {
      const T* as = trans_a ? a + lo : a + lo * lda;
      gemm_range<T>(kern, trans_a, trans_b, hi - lo, n, k, alpha, as, lda, b, ldb, beta,
                    c + lo * ldc, ldc);
    }
  }
}

template void gemm<float>(bool, bool, std::int64_t, std::int64_t, std::int64_t, float, const float*,
                          std::int64_t, const float*, std::int64_t, float, float*, std::int64_t);
template void gemm<double>(bool, bool, std::int64_t, std::int64_t, std::int64_t, double,
                           const double*, std::int64_t, const double*, std::int64_t, double,
                           double*, std::int64_t);
template void gemm<float>(const GemmKernel<float>&, bool, bool, std::int64_t, std::int64_t,
                          std::int64_t, float, const float*, std::int64_t, const float*,
                          std::int64_t, float, float*, std::int64_t);
template void gemm<double>(const GemmKernel<double>&, bool, bool, std::int64_t, std::int64_t,
                           std::int64_t, double, const double*, std::int64_t, const double*,
                           std::int64_t, double, double*, std::int64_t);

namespace {

// One bmm operand [B, R, C]: row-major (leading dim C), or the transpose of a row-major [B, C, R]
// (strides R * C, 1, R: leading dim R), which the GEMM reads with its transposition flag.
struct MatrixLayout {
  bool trans = false;
  std::int64_t ld = 1;
};

MatrixLayout layout_of(const Tensor& t, const char* name) {
  const bool trans = bmm_operand_transposed(t, name);
  return {trans, std::max<std::int64_t>(trans ? t.size(1) : t.size(2), 1)};
}

}  // namespace

Tensor bmm(const Tensor& a, const Tensor& b) {
  const std::int64_t batch = a.size(0), m = a.size(1), k = a.size(2), n = b.size(2);
  const MatrixLayout la = layout_of(a, "left operand"), lb = layout_of(b, "right operand");
  Tensor c = Tensor::empty_cpu({batch, m, n}, a.dtype());
  dispatch_floating(a.dtype(), [&]<class T>() {
    const T* ap = a.data_ptr<T>();
    const T* bp = b.data_ptr<T>();
    T* cp = c.data_ptr<T>();
    // One kernel for the whole batch (cpu/gemm_kernel.h).
    const GemmKernel<T>& kern = gemm_kernel<T>();
    if (batch >= plan_threads() && m * n * k * batch >= kParallelWork && omp_get_level() == 0) {
#pragma omp parallel for schedule(dynamic)
      for (std::int64_t i = 0; i < batch; ++i)
        gemm_range<T>(kern, la.trans, lb.trans, m, n, k, T(1), ap + i * m * k, la.ld,
                      bp + i * k * n, lb.ld, T(0), cp + i * m * n, n);
    } else {
      for (std::int64_t i = 0; i < batch; ++i)
        gemm<T>(kern, la.trans, lb.trans, m, n, k, T(1), ap + i * m * k, la.ld, bp + i * k * n,
                lb.ld, T(0), cp + i * m * n, n);
    }
  });
  return c;
}

}  // namespace convtape::cpu
