// y = f(a, b) elementwise over the broadcast shape of a and b on the CPU: the loop shared by the
// binary elementwise kernels (cpu/elementwise.cpp) and the comparisons (cpu/select.cpp). It walks
// cpu/strided.h's rows; the unit-stride row and the rows where one operand is a broadcast scalar
// get their own inner loops, which the compiler vectorises. Header-only so that f inlines.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/shape.h"
#include "core/tensor.h"
#include "cpu/strided.h"

namespace convtape::cpu {

// a and b of element type T; op names the caller in broadcast_shapes' error message.
template <class T, class F>
Tensor map_broadcast(std::string_view op, const Tensor& a, const Tensor& b, F f) {
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), op);
  Tensor y = Tensor::empty_cpu(shape, a.dtype());
  const T* as = static_cast<const T*>(a.storage()->data()) + a.offset();
  const T* bs = static_cast<const T*>(b.storage()->data()) + b.offset();
  T* ys = y.data_ptr<T>();
  const Shape sa = broadcast_strides(a.shape(), a.strides(), shape);
  const Shape sb = broadcast_strides(b.shape(), b.strides(), shape);
  for_each_row<3>(shape, {y.strides(), sa, sb}, [&](auto off, std::int64_t n, auto inner) {
    T* yp = ys + off[0];
    const T* ap = as + off[1];
    const T* bp = bs + off[2];
    if (inner[1] == 1 && inner[2] == 1) {
      for (std::int64_t i = 0; i < n; ++i) yp[i] = f(ap[i], bp[i]);
    } else if (inner[1] == 1 && inner[2] == 0) {
      const T bv = *bp;
      for (std::int64_t i = 0; i < n; ++i) yp[i] = f(ap[i], bv);
    } else if (inner[1] == 0 && inner[2] == 1) {
      const T av = *ap;
      for (std::int64_t i = 0; i < n; ++i) yp[i] = f(av, bp[i]);
    } else {
      for (std::int64_t i = 0; i < n; ++i) yp[i * inner[0]] = f(ap[i * inner[1]], bp[i * inner[2]]);
    }
  });
  return y;
}

}  // namespace convtape::cpu
