// The tensor-level reductions of cuda/reduce.h: argument checks, outputs and scratch on the input's
// device, and the passes of cuda/reduce_body.h (how many, and how much scratch, plan_reduce says).
#include "cuda/reduce.h"

#include <string_view>

#include "core/error.h"
#include "cuda/check.h"
#include "cuda/cuda.h"
#include "cuda/device_scope.h"
#include "cuda/operands.h"
#include "cuda/reduce_body.h"
#include "cuda/reduce_launch.h"

namespace convtape::cuda {

namespace {

constexpr std::string_view kOp = "reduce";

void check_layout(const Tensor& x, std::string_view what, std::int64_t numel_expected) {
  CT_CHECK(x.defined(), "{}: expected a defined {}, got an undefined tensor", kOp, what);
  CT_CHECK(x.is_cuda(), "{}: expected {} on a CUDA device, got one on {}", kOp, what,
           x.device().str());
  CT_CHECK(x.is_contiguous(), "{}: expected a contiguous {}, got strides {} for shape {}", kOp,
           what, to_string(x.strides()), to_string(x.shape()));
  CT_CHECK(x.numel() == numel_expected, "{}: expected {} with {} elements, got shape {}", kOp, what,
           numel_expected, to_string(x.shape()));
}

void check_sizes(std::int64_t outer, std::int64_t mid, std::int64_t inner) {
  CT_CHECK(outer >= 0 && mid >= 0 && inner >= 0,
           "{}: expected non-negative sizes [outer, mid, inner], got [{}, {}, {}]", kOp, outer, mid,
           inner);
}

}  // namespace

Tensor reduce(Reduce op, const Tensor& x, std::int64_t outer, std::int64_t mid, std::int64_t inner,
              Tensor* indices) {
  check_sizes(outer, mid, inner);
  check_layout(x, "input", outer * mid * inner);
  CT_CHECK(x.is_floating_point(), "{}: expected a float32 or float64 input, got {}", kOp,
           dtype_name(x.dtype()));
  const Device device = x.device();
  Tensor out = device_empty({outer, inner}, x.dtype(), device);
  const bool want_idx = indices && op != Reduce::Sum;
  if (want_idx) *indices = device_empty({outer, inner}, kInt64, device);
  if (out.numel() == 0) return out;

  DeviceScope scope(kOp, device);
  // Every intermediate pass writes at most this many partials (cuda/reduce_body.h).
  const std::int64_t scratch = outer * inner * plan_reduce(outer * inner, mid).scratch_per_line();
  if (op == Reduce::Sum) {
    Tensor a, b;
    if (scratch > 0) {
      a = device_empty({scratch}, kFloat64, device);
      b = device_empty({scratch}, kFloat64, device);
    }
    CT_CUDA_CHECK(kOp, kernels::reduce_sum(x.dtype(), x.raw_data(), out.raw_data(), outer, mid,
                                           inner, a.defined() ? a.data_ptr<double>() : nullptr,
                                           b.defined() ? b.data_ptr<double>() : nullptr));
    return out;
  }
  Tensor va, vb, ia, ib;
  if (scratch > 0) {
    va = device_empty({scratch}, x.dtype(), device);
    vb = device_empty({scratch}, x.dtype(), device);
    if (want_idx) {
      ia = device_empty({scratch}, kInt64, device);
      ib = device_empty({scratch}, kInt64, device);
    }
  }
  CT_CUDA_CHECK(
      kOp, kernels::reduce_extreme(x.dtype(), op == Reduce::Max, x.raw_data(), out.raw_data(),
                                   want_idx ? indices->data_ptr<std::int64_t>() : nullptr, outer,
                                   mid, inner, va.defined() ? va.raw_data() : nullptr,
                                   vb.defined() ? vb.raw_data() : nullptr,
                                   ia.defined() ? ia.data_ptr<std::int64_t>() : nullptr,
                                   ib.defined() ? ib.data_ptr<std::int64_t>() : nullptr));
  return out;
}

Tensor reduce_scatter(const Tensor& dy, const Tensor& indices, std::int64_t outer, std::int64_t mid,
                      std::int64_t inner) {
  check_sizes(outer, mid, inner);
  check_layout(dy, "gradient", outer * inner);
  CT_CHECK(dy.is_floating_point(), "{}: expected a float32 or float64 gradient, got {}", kOp,
           dtype_name(dy.dtype()));
  check_layout(indices, "indices", outer * inner);
  CT_CHECK(indices.dtype() == kInt64, "{}: expected int64 indices, got {}", kOp,
           dtype_name(indices.dtype()));
  CT_CHECK(indices.device() == dy.device(),
           "{}: expected indices on the gradient's device {}, got {}", kOp, dy.device().str(),
           indices.device().str());
  Tensor dx = device_empty({outer, mid, inner}, dy.dtype(), dy.device());
  if (dx.numel() == 0) return dx;
  DeviceScope scope(kOp, dy.device());
  CT_CUDA_CHECK(kOp,
                kernels::reduce_scatter(dy.dtype(), dy.raw_data(), indices.data_ptr<std::int64_t>(),
                                        dx.raw_data(), outer, mid, inner));
  return dx;
}

}  // namespace convtape::cuda
