// CPU matrix products. gemm is the BLAS-style entry point (row-major, optional transposes), built
// on the packed, cache-blocked driver of cpu/gemm_driver.h with the SIMD micro-kernel chosen at run
// time (cpu/gemm_kernel.h) and split across OpenMP threads; bmm multiplies batches of row-major
// or transposed row-major matrices.
// The kernels' signatures and contracts: core/kernels.def (declared by cpu/backend_kernels.h).
#pragma once

#include <cstdint>

#include "core/tensor.h"
#include "cpu/backend_kernels.h"
#include "cpu/gemm_kernel.h"

namespace convtape::cpu {

// C[M,N] = alpha * op(A) * op(B) + beta * C, row-major; op(A) is [M,K], op(B) is [K,N].
template <class T>
void gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, T alpha,
          const T* a, std::int64_t lda, const T* b, std::int64_t ldb, T beta, T* c,
          std::int64_t ldc);

// The same with a given micro-kernel (tests and benchmarks compare the ISAs).
template <class T>
void gemm(const GemmKernel<T>& kernel, bool trans_a, bool trans_b, std::int64_t m, std::int64_t n,
          std::int64_t k, T alpha, const T* a, std::int64_t lda, const T* b, std::int64_t ldb,
          T beta, T* c, std::int64_t ldc);

}  // namespace convtape::cpu
