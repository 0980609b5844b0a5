// Row-parallel GEMM: each output row is built from axpy's over rows of B (unit stride, vectorised)
// or from dot products when B is transposed.
#include "cpu/gemm.h"

#include <vector>

#include "cpu/strided.h"

namespace convtape::cpu {

namespace {
template <class T>
void gemm_row(bool trans_a, bool trans_b, std::int64_t i, std::int64_t n, std::int64_t k, T alpha,
              const T* a, std::int64_t lda, const T* b, std::int64_t ldb, T beta, T* c,
              std::int64_t ldc) {
  T* crow = c + i * ldc;
  if (beta == T(0)) {
    for (std::int64_t j = 0; j < n; ++j) crow[j] = T(0);
  } else if (beta != T(1)) {
    for (std::int64_t j = 0; j < n; ++j) crow[j] *= beta;
  }
  auto a_at = [&](std::int64_t p) { return trans_a ? a[p * lda + i] : a[i * lda + p]; };
  if (!trans_b) {
    for (std::int64_t p = 0; p < k; ++p) {
      const T s = alpha * a_at(p);
      const T* brow = b + p * ldb;
      for (std::int64_t j = 0; j < n; ++j) crow[j] += s * brow[j];
    }
  } else {
    for (std::int64_t j = 0; j < n; ++j) {
      const T* bcol = b + j * ldb;
      T acc = T(0);
      for (std::int64_t p = 0; p < k; ++p) acc += a_at(p) * bcol[p];
      crow[j] += alpha * acc;
    }
  }
}
}  // namespace

template <class T>
void gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, T alpha,
          const T* a, std::int64_t lda, const T* b, std::int64_t ldb, T beta, T* c,
          std::int64_t ldc) {
#pragma omp parallel for schedule(static) if (m > 1 && m * n * k >= kParallelGrain)
  for (std::int64_t i = 0; i < m; ++i)
    gemm_row<T>(trans_a, trans_b, i, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

template void gemm<float>(bool, bool, std::int64_t, std::int64_t, std::int64_t, float, const float*,
                          std::int64_t, const float*, std::int64_t, float, float*, std::int64_t);
template void gemm<double>(bool, bool, std::int64_t, std::int64_t, std::int64_t, double,
                           const double*, std::int64_t, const double*, std::int64_t, double,
                           double*, std::int64_t);

Tensor bmm(const Tensor& a, const Tensor& b) {
  const std::int64_t batch = a.size(0), m = a.size(1), k = a.size(2), n = b.size(2);
  Tensor c = Tensor::empty_cpu({batch, m, n}, a.dtype());
  dispatch_floating(a.dtype(), [&]<class T>() {
    const T* ap = a.data_ptr<T>();
    const T* bp = b.data_ptr<T>();
    T* cp = c.data_ptr<T>();
    const std::int64_t rows = batch * m;
#pragma omp parallel for schedule(static) if (rows > 1 && rows * n * k >= kParallelGrain)
    for (std::int64_t r = 0; r < rows; ++r) {
      const std::int64_t bi = r / m, i = r % m;
      gemm_row<T>(false, false, i, n, k, T(1), ap + bi * m * k, k, bp + bi * k * n, n, T(0),
                  cp + bi * m * n, n);
    }
  });
  return c;
}

}  // namespace convtape::cpu
