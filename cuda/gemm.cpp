// CUDA batched matrix product, same contract as cpu::bmm: a [B, M, K] @ b [B, K, N] -> c [B, M, N],
// operands of one floating dtype, each row-major or the transpose of a row-major batch (copied to
// row-major first). cuBLAS is column-major, and a row-major
// [M, N] matrix read column-major is its transpose, so c^T = b^T a^T is one strided-batched GEMM
// with the operands swapped and no transposition flags: (N x K) times (K x M), leading dims N, K
// and N. TF32 tensor cores (float32 only) follow allow_tf32() (cuda/settings.h).
#include "cuda/gemm.h"

#include <cublas_v2.h>

#include <algorithm>
#include <limits>

#include "core/error.h"
#include "cuda/blas.h"
#include "cuda/check.h"
#include "cuda/copy.h"
#include "cuda/cuda.h"
#include "cuda/device_scope.h"
#include "cuda/handles.h"
#include "cuda/settings.h"

namespace convtape::cuda {

namespace {

constexpr std::string_view kOp = "matmul";
constexpr std::int64_t kIntMax = std::numeric_limits<int>::max();

void check_matrix_batch(const Tensor& t, const char* name) {
  CT_CHECK(t.defined(), "matmul: expected a defined {}, got an undefined one", name);
  CT_CHECK(t.is_cuda(), "matmul: expected {} on a CUDA device, got one on {}", name,
           t.device().str());
  CT_CHECK(t.dim() == 3, "matmul: expected {} of rank 3 ([batch, rows, cols]), got {}", name,
           to_string(t.shape()));
  bmm_operand_transposed(t, name);
}

}  // namespace

Tensor bmm(const Tensor& a_in, const Tensor& b_in) {
  check_matrix_batch(a_in, "left operand");
  check_matrix_batch(b_in, "right operand");
  CT_CHECK(a_in.device() == b_in.device(), "matmul: expected operands on one device, got {} and {}",
           a_in.device().str(), b_in.device().str());
  CT_CHECK(a_in.dtype() == b_in.dtype() && is_floating(a_in.dtype()),
           "matmul: expected two float32 or two float64 operands, got {} and {}",
           dtype_name(a_in.dtype()), dtype_name(b_in.dtype()));
  const std::int64_t batch = a_in.size(0), m = a_in.size(1), k = a_in.size(2), n = b_in.size(2);
  CT_CHECK(b_in.size(0) == batch && b_in.size(1) == k,
           "matmul: expected right operand [{}, {}, N] for left operand {}, got {}", batch, k,
           to_string(a_in.shape()), to_string(b_in.shape()));
  DeviceScope scope(kOp, a_in.device());
  // Transposed operands are made contiguous here (cuBLAS's transposition flags would spare the
  // copy; this path has not yet run on a GPU, see docs/gpu.md).
  const auto row_major = [](const Tensor& t) {
    if (t.is_contiguous()) return t;
    const Tensor r = empty(t.shape(), TensorOptions(t.dtype()).device(t.device()));
    cuda::copy(t, r);
    return r;
  };
  const Tensor a = row_major(a_in), b = row_major(b_in);
  const Tensor c = empty({batch, m, n}, TensorOptions(a.dtype()).device(a.device()));
  if (c.numel() == 0) return c;
  if (k == 0) {  // empty sums; cuBLAS is not asked to define them
    cuda::fill(kOp, c.raw_data(), c.dtype(), c.numel(), 0.0, c.device());
    return c;
  }
  CT_CHECK(m <= kIntMax && n <= kIntMax && k <= kIntMax,
           "matmul: expected matrix dims up to {} for cuBLAS, got [{}, {}] @ [{}, {}]", kIntMax, m,
           k, k, n);
  cublasHandle_t h = cublas_handle(kOp);
  CT_CUBLAS_CHECK(kOp, blas::api(kOp).set_math_mode(
                           h, allow_tf32() ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  const int mi = static_cast<int>(m), ni = static_cast<int>(n), ki = static_cast<int>(k);
  // The batch count is an int too: run int-sized slices.
  for (std::int64_t b0 = 0; b0 < batch; b0 += kIntMax) {
    const int count = static_cast<int>(std::min(batch - b0, kIntMax));
    if (a.dtype() == DType::Float64) {
      const double one = 1.0, zero = 0.0;
      const double* ap = a.data_ptr<double>() + b0 * m * k;
      const double* bp = b.data_ptr<double>() + b0 * k * n;
      double* cp = c.data_ptr<double>() + b0 * m * n;
      CT_CUBLAS_CHECK(kOp, blas::api(kOp).dgemm_strided_batched(
                               h, CUBLAS_OP_N, CUBLAS_OP_N, ni, mi, ki, &one, bp, ni, k * n, ap, ki,
                               m * k, &zero, cp, ni, m * n, count));
    } else {
      const float one = 1.0f, zero = 0.0f;
      const float* ap = a.data_ptr<float>() + b0 * m * k;
      const float* bp = b.data_ptr<float>() + b0 * k * n;
      float* cp = c.data_ptr<float>() + b0 * m * n;
      CT_CUBLAS_CHECK(kOp, blas::api(kOp).sgemm_strided_batched(
                               h, CUBLAS_OP_N, CUBLAS_OP_N, ni, mi, ki, &one, bp, ni, k * n, ap, ki,
                               m * k, &zero, cp, ni, m * n, count));
    }
  }
  return c;
}

}  // namespace convtape::cuda
