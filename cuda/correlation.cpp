// CUDA correlation, tensor level (cuda/correlation.h): checks the operands against the geometry,
// allocates the result on their device and runs the kernels of cuda/correlation.cu under a
// DeviceScope.
#include "cuda/correlation.h"

#include <string_view>

#include "core/error.h"
#include "cuda/check.h"
#include "cuda/correlation_launch.h"
#include "cuda/correlation_plan.h"
#include "cuda/cuda.h"
#include "cuda/device_scope.h"

namespace convtape::cuda {

namespace {

constexpr std::string_view kOp = "correlation";

// A defined, contiguous CUDA tensor of the given shape, floating, and of `like`'s dtype and device
// when given.
void check_operand(const Tensor& t, std::string_view what, const Shape& shape,
                   const Tensor& like = {}) {
  CT_CHECK(t.defined(), "{}: expected {}, got an undefined tensor", kOp, what);
  CT_CHECK(t.is_cuda(), "{}: expected {} on a CUDA device, got one on {}", kOp, what,
           t.device().str());
  CT_CHECK(t.is_floating_point(), "{}: expected {} of dtype float32 or float64, got {}", kOp, what,
           dtype_name(t.dtype()));
  if (like.defined()) {
    CT_CHECK(t.device() == like.device(), "{}: expected {} on {}, got one on {}", kOp, what,
             like.device().str(), t.device().str());
    CT_CHECK(t.dtype() == like.dtype(), "{}: expected {} of dtype {}, got {}", kOp, what,
             dtype_name(like.dtype()), dtype_name(t.dtype()));
  }
  CT_CHECK(t.shape() == shape, "{}: expected {} of shape {}, got {}", kOp, what, to_string(shape),
           to_string(t.shape()));
  CT_CHECK(t.is_contiguous(), "{}: expected contiguous {}, got strides {}", kOp, what,
           to_string(t.strides()));
}

Shape input_shape(const CorrelationGeometry& g) {
  return {g.batch, g.channels, g.height, g.width};
}

Shape output_shape(const CorrelationGeometry& g) {
  return {g.batch, g.grid() * g.grid(), g.out_height(), g.out_width()};
}

}  // namespace

Tensor correlation_forward(const Tensor& f1, const Tensor& f2, const CorrelationGeometry& g) {
  check_operand(f1, "f1", input_shape(g));
  check_operand(f2, "f2", input_shape(g), f1);
  DeviceScope scope(kOp, f1.device());
  Tensor y = empty(output_shape(g), TensorOptions(f1.dtype()).device(f1.device()));
  if (y.numel() == 0) return y;
  CT_CUDA_CHECK(kOp, kernels::correlation_forward(f1.dtype(), f1.raw_data(), f2.raw_data(),
                                                  y.raw_data(), correlation_shape(g)));
  return y;
}

Tensor correlation_backward_f1(const Tensor& dy, const Tensor& f2, const CorrelationGeometry& g) {
  check_operand(dy, "gradient", output_shape(g));
  check_operand(f2, "f2", input_shape(g), dy);
  DeviceScope scope(kOp, dy.device());
  Tensor df1 = empty(input_shape(g), TensorOptions(dy.dtype()).device(dy.device()));
  if (df1.numel() == 0) return df1;
  CT_CUDA_CHECK(kOp, kernels::correlation_backward_f1(dy.dtype(), dy.raw_data(), f2.raw_data(),
                                                      df1.raw_data(), correlation_shape(g)));
  return df1;
}

Tensor correlation_backward_f2(const Tensor& dy, const Tensor& f1, const CorrelationGeometry& g) {
  check_operand(dy, "gradient", output_shape(g));
  check_operand(f1, "f1", input_shape(g), dy);
  DeviceScope scope(kOp, dy.device());
  Tensor df2 = empty(input_shape(g), TensorOptions(dy.dtype()).device(dy.device()));
  if (df2.numel() == 0) return df2;
  CT_CUDA_CHECK(kOp, kernels::correlation_backward_f2(dy.dtype(), dy.raw_data(), f1.raw_data(),
                                                      df2.raw_data(), correlation_shape(g)));
  return df2;
}

}  // namespace convtape::cuda
