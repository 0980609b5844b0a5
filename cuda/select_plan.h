// Host side of the CUDA comparison and selection kernels (plain C++, no CUDA headers): the
// translation of convtape::Compare into CompareKind and the layout of a where call (three operands
// read at every index of the broadcast shape), on top of cuda/elementwise_plan.h. cuda/select.cpp
// and the host tests of cuda/select_body.h use it.
#pragma once

#include <string_view>

#include "core/error.h"
#include "core/kernel_args.h"
#include "core/tensor.h"
#include "cuda/elementwise_plan.h"
#include "cuda/select_body.h"

namespace convtape::cuda {

inline CompareKind compare_kind(Compare op) {
  switch (op) {
    case Compare::Eq:
      return CompareKind::Eq;
    case Compare::Ne:
      return CompareKind::Ne;
    case Compare::Lt:
      return CompareKind::Lt;
    case Compare::Le:
      return CompareKind::Le;
    case Compare::Gt:
      return CompareKind::Gt;
    case Compare::Ge:
      return CompareKind::Ge;
    case Compare::And:
      return CompareKind::And;
    case Compare::Or:
      return CompareKind::Or;
    case Compare::Max:
      return CompareKind::Max;
    case Compare::Min:
      return CompareKind::Min;
  }
  CT_FAIL("compare: expected a known comparison, got code {}", static_cast<int>(op));
}

// c, a and b read at every index of the broadcast shape `out`: operands 0 = c, 1 = a, 2 = b.
inline MapLayout plan_where(std::string_view op, const Tensor& c, const Tensor& a, const Tensor& b,
                            const Shape& out) {
  const Shape sc = broadcast_strides_to(c.shape(), c.strides(), out);
  const Shape sa = broadcast_strides_to(a.shape(), a.strides(), out);
  const Shape sb = broadcast_strides_to(b.shape(), b.strides(), out);
  return plan_layout<3>(op, out, {&sc, &sa, &sb});
}

}  // namespace convtape::cuda
