// GEMM entry points over the blocked driver (cpu/gemm_driver.h): per-thread packing buffers,
// the split of one product across OpenMP threads, and batched products.
#include "cpu/gemm.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
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

// Untransposed products whose B fits in L2: nothing is packed. A is read through one pointer per
// row (the arows micro-kernels), B's full-width column panels where they lie; only B's last,
// partial panel is copied, zero-padded, so that no read runs past B. For small products the
// packing copies would cost a tenth of the arithmetic or more.
constexpr std::int64_t kUnpackedBBytes = 256 << 10;

// B read in place by products of 2 to 4 row panels only up to this size (about what stays in L2).
constexpr std::int64_t kInPlaceBBytes = 1536 << 10;

template <class T>
void gemm_unpacked(const GemmKernel<T>& kern, std::int64_t m, std::int64_t n, std::int64_t k,
                   T alpha, const T* a, std::int64_t lda, const T* b, std::int64_t ldb, T beta,
                   T* c, std::int64_t ldc) {
  const std::int64_t mr = kern.mr, nr = kern.nr, full = n / nr * nr;
  thread_local std::vector<T> tail;
  if (full < n) {
    tail.assign(static_cast<std::size_t>(k * nr), T(0));
    for (std::int64_t kk = 0; kk < k; ++kk)
      std::copy_n(b + kk * ldb + full, n - full, tail.data() + kk * nr);
  }
  alignas(64) T tile[8 * 32];
  const T* rows[8];
  for (std::int64_t ir = 0; ir < m; ir += mr) {
    const std::int64_t mr_now = std::min(mr, m - ir);
    for (std::int64_t i = 0; i < mr; ++i) rows[i] = a + (ir + std::min(i, mr_now - 1)) * lda;
    for (std::int64_t jr = 0; jr < n; jr += nr) {
      const std::int64_t nr_now = std::min(nr, n - jr);
      const T* bp = jr < full ? b + jr : tail.data();
      const std::int64_t ld = jr < full ? ldb : nr;
      T* cij = c + ir * ldc + jr;
      if (mr_now == mr && nr_now == nr) {
        kern.arows(k, rows, bp, ld, cij, ldc, alpha, beta);
      } else if (mr_now == mr && 2 * nr_now == nr) {
        kern.arows_half(k, rows, bp, ld, cij, ldc, alpha, beta);
      } else {
        (2 * nr_now <= nr ? kern.arows_half : kern.arows)(k, rows, bp, ld, tile, nr, T(1), T(0));
        for (std::int64_t i = 0; i < mr_now; ++i)
          for (std::int64_t j = 0; j < nr_now; ++j) {
            T& dst = cij[i * ldc + j];
            dst = beta == T(0) ? alpha * tile[i * nr + j] : alpha * tile[i * nr + j] + beta * dst;
          }
      }
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

Tensor bmm(const Tensor& a, const Tensor& b) {
  const std::int64_t batch = a.size(0), m = a.size(1), k = a.size(2), n = b.size(2);
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
        gemm_range<T>(kern, false, false, m, n, k, T(1), ap + i * m * k, k, bp + i * k * n, n, T(0),
                      cp + i * m * n, n);
    } else {
      for (std::int64_t i = 0; i < batch; ++i)
        gemm<T>(kern, false, false, m, n, k, T(1), ap + i * m * k, k, bp + i * k * n, n, T(0),
                cp + i * m * n, n);
    }
  });
  return c;
}

}  // namespace convtape::cpu
