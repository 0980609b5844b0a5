// The front ends' one door to the kernels: each function runs the CPU or the CUDA kernel of the
// same name (cpu/*.h, cuda/*.h: identical signatures) by the device of its first tensor operand.
// The front ends have already checked that every operand lives on that one device.
#pragma once

#include <cstdint>

#include "core/kernel_args.h"
#include "core/tensor.h"
#include "cpu/conv.h"
#include "cpu/copy.h"
#include "cpu/correlation.h"
#include "cpu/elementwise.h"
#include "cpu/gemm.h"
#include "cpu/nn.h"
#include "cpu/pool.h"
#include "cpu/reduce.h"
#include "cuda/conv.h"
#include "cuda/copy.h"
#include "cuda/correlation.h"
#include "cuda/elementwise.h"
#include "cuda/gemm.h"
#include "cuda/nn.h"
#include "cuda/pool.h"
#include "cuda/reduce.h"

namespace convtape::backend {

#define CT_BACKEND(first, call) ((first).is_cuda() ? cuda::call : cpu::call)

inline Tensor unary(Unary op, const Tensor& x, double p0 = 0.0, double p1 = 0.0) {
  return CT_BACKEND(x, unary(op, x, p0, p1));
}
inline Tensor binary(Binary op, const Tensor& a, const Tensor& b, double p0 = 0.0,
                     double p1 = 0.0) {
  return CT_BACKEND(a, binary(op, a, b, p0, p1));
}
inline void axpy_(Tensor& y, const Tensor& x, double alpha) {
  CT_BACKEND(y, axpy_(y, x, alpha));
}
inline void scale_(Tensor& y, double factor) {
  CT_BACKEND(y, scale_(y, factor));
}

inline void copy(const Tensor& src, const Tensor& dst) {
  CT_BACKEND(dst, copy(src, dst));
}
inline void fill(const Tensor& dst, double value) {
  CT_BACKEND(dst, fill(dst, value));
}

inline Tensor reduce(Reduce op, const Tensor& x, std::int64_t outer, std::int64_t mid,
                     std::int64_t inner, Tensor* indices = nullptr) {
  return CT_BACKEND(x, reduce(op, x, outer, mid, inner, indices));
}
inline Tensor reduce_scatter(const Tensor& dy, const Tensor& indices, std::int64_t outer,
                             std::int64_t mid, std::int64_t inner) {
  return CT_BACKEND(dy, reduce_scatter(dy, indices, outer, mid, inner));
}

inline Tensor softmax(const Tensor& x, std::int64_t outer, std::int64_t n, std::int64_t inner,
                      bool log) {
  return CT_BACKEND(x, softmax(x, outer, n, inner, log));
}
inline Tensor nll(const Tensor& logp, const Tensor& labels) {
  return CT_BACKEND(logp, nll(logp, labels));
}
inline Tensor nll_backward(const Tensor& g, const Tensor& labels, std::int64_t classes) {
  return CT_BACKEND(g, nll_backward(g, labels, classes));
}
inline Tensor index_select(const Tensor& x, std::int64_t outer, std::int64_t n, std::int64_t inner,
                           const Tensor& index) {
  return CT_BACKEND(x, index_select(x, outer, n, inner, index));
}
inline Tensor index_add(const Tensor& src, std::int64_t outer, std::int64_t n, std::int64_t inner,
                        const Tensor& index) {
  return CT_BACKEND(src, index_add(src, outer, n, inner, index));
}

inline Tensor bmm(const Tensor& a, const Tensor& b) {
  return CT_BACKEND(a, bmm(a, b));
}

inline Tensor conv_forward(const Tensor& x, const Tensor& w, const Tensor& b,
                           const ConvGeometry& g) {
  return CT_BACKEND(x, conv_forward(x, w, b, g));
}
// b [C] or undefined: added to dx (a transposed conv's bias).
inline Tensor conv_backward_data(const Tensor& dy, const Tensor& w, const ConvGeometry& g,
                                 const Tensor& b = Tensor()) {
  return CT_BACKEND(dy, conv_backward_data(dy, w, g, b));
}
inline Tensor conv_backward_weight(const Tensor& dy, const Tensor& x, const ConvGeometry& g) {
  return CT_BACKEND(dy, conv_backward_weight(dy, x, g));
}

inline PoolResult max_pool_forward(const Tensor& x, const PoolGeometry& g, bool with_indices) {
  return CT_BACKEND(x, max_pool_forward(x, g, with_indices));
}
inline Tensor avg_pool_forward(const Tensor& x, const PoolGeometry& g) {
  return CT_BACKEND(x, avg_pool_forward(x, g));
}
inline Tensor avg_pool_backward(const Tensor& dy, const PoolGeometry& g) {
  return CT_BACKEND(dy, avg_pool_backward(dy, g));
}
inline Tensor index_scatter(const Tensor& src, const Tensor& indices, const Shape& plane,
                            bool accumulate) {
  return CT_BACKEND(src, index_scatter(src, indices, plane, accumulate));
}
inline Tensor index_gather(const Tensor& src, const Tensor& indices) {
  return CT_BACKEND(src, index_gather(src, indices));
}

inline Tensor correlation_forward(const Tensor& f1, const Tensor& f2,
                                  const CorrelationGeometry& g) {
  return CT_BACKEND(f1, correlation_forward(f1, f2, g));
}
inline Tensor correlation_backward_f1(const Tensor& dy, const Tensor& f2,
                                      const CorrelationGeometry& g) {
  return CT_BACKEND(dy, correlation_backward_f1(dy, f2, g));
}
inline Tensor correlation_backward_f2(const Tensor& dy, const Tensor& f1,
                                      const CorrelationGeometry& g) {
  return CT_BACKEND(dy, correlation_backward_f2(dy, f1, g));
}

#undef CT_BACKEND

}  // namespace convtape::backend
