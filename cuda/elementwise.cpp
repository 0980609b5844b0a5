// CUDA elementwise maps at the tensor level: checks, a contiguous output of the (broadcast)
// shape, the layout plan (cuda/elementwise_plan.h) and the launch (cuda/elementwise.cu). The maths
// is cpu/elementwise.cpp's; see cuda/elementwise_body.h.
#include "cuda/elementwise.h"

#include <string_view>

#include "core/error.h"
#include "cuda/check.h"
#include "cuda/cuda.h"
#include "cuda/device_scope.h"
#include "cuda/elementwise_launch.h"
#include "cuda/elementwise_plan.h"

namespace convtape::cuda {

namespace {

void check_operand(std::string_view op, const Tensor& t, std::string_view what) {
  CT_CHECK(t.defined(), "{}: expected a defined {}, got an undefined tensor", op, what);
  CT_CHECK(t.is_cuda(), "{}: expected the {} on a CUDA device, got one on {}", op, what,
           t.device().str());
  CT_CHECK(t.is_floating_point(), "{}: expected a float32 or float64 {}, got {} of shape {}", op,
           what, dtype_name(t.dtype()), to_string(t.shape()));
}

void check_pair(std::string_view op, const Tensor& a, const Tensor& b) {
  CT_CHECK(a.dtype() == b.dtype(), "{}: expected operands of one dtype, got {} and {}", op,
           dtype_name(a.dtype()), dtype_name(b.dtype()));
  CT_CHECK(a.device() == b.device(), "{}: expected operands on one device, got {} and {}", op,
           a.device().str(), b.device().str());
}

}  // namespace

Tensor unary(Unary op, const Tensor& x, double p0, double p1) {
  check_operand("unary", x, "input");
  const UnaryKind kind = unary_kind(op);
  DeviceScope scope("unary", x.device());
  Tensor y = cuda::empty(x.shape(), TensorOptions(x.dtype()).device(x.device()));
  if (y.numel() == 0) return y;
  const MapLayout layout = plan_unary("unary", x);
  CT_CUDA_CHECK("unary", launch_unary(kind, x.dtype(), x.raw_data(), y.raw_data(), y.numel(),
                                      layout, p0, p1));
  return y;
}

Tensor binary(Binary op, const Tensor& a, const Tensor& b, double p0, double p1) {
  check_operand("binary", a, "first operand");
  check_operand("binary", b, "second operand");
  check_pair("binary", a, b);
  const BinaryKind kind = binary_kind(op);
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), "binary");
  DeviceScope scope("binary", a.device());
  Tensor y = cuda::empty(shape, TensorOptions(a.dtype()).device(a.device()));
  if (y.numel() == 0) return y;
  const MapLayout layout = plan_binary("binary", a, b, shape);
  CT_CUDA_CHECK("binary", launch_binary(kind, a.dtype(), a.raw_data(), b.raw_data(), y.raw_data(),
                                        y.numel(), layout, p0, p1));
  return y;
}

void axpy_(Tensor& y, const Tensor& x, double alpha) {
  check_operand("add_", y, "destination");
  check_operand("add_", x, "operand");
  check_pair("add_", y, x);
  CT_CHECK(
      y.shape() == x.shape() && y.is_contiguous() && x.is_contiguous(),
      "add_: expected contiguous tensors of one shape, got {} (strides {}) and {} (strides {})",
      to_string(y.shape()), to_string(y.strides()), to_string(x.shape()), to_string(x.strides()));
  if (y.numel() == 0) return;
  DeviceScope scope("add_", y.device());
  CT_CUDA_CHECK("add_", launch_axpy(y.dtype(), y.raw_data(), x.raw_data(), y.numel(), alpha));
}

void scale_(Tensor& y, double factor) {
  check_operand("mul_", y, "destination");
  CT_CHECK(y.is_contiguous(), "mul_: expected a contiguous tensor, got shape {} with strides {}",
           to_string(y.shape()), to_string(y.strides()));
  if (y.numel() == 0) return;
  DeviceScope scope("mul_", y.device());
  CT_CUDA_CHECK("mul_", launch_scale(y.dtype(), y.raw_data(), y.numel(), factor));
}

}  // namespace convtape::cuda
