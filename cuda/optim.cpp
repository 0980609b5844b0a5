// CUDA optimizer steps at the tensor level: the operands' checks, then the launch of
// cuda/optim.cu. The maths is cpu/optim.cpp's; see cuda/optim_body.h.
#include <string_view>

#include "core/error.h"
#include "cuda/backend_kernels.h"
#include "cuda/check.h"
#include "cuda/device_scope.h"
#include "cuda/optim_launch.h"

namespace convtape::cuda {

namespace {

// t is a contiguous CUDA tensor of param's dtype, device and shape.
void check_like_param(const Tensor& t, const Tensor& param, std::string_view what) {
  CT_CHECK(t.defined(), "SGD: expected a defined {}, got an undefined tensor", what);
  CT_CHECK(t.dtype() == param.dtype() && t.device() == param.device() &&
               t.shape() == param.shape() && t.is_contiguous(),
           "SGD: expected a contiguous {} of the parameter's shape, dtype and device ({}, {}, {}), "
           "got {}, {}, {} with strides {}",
           what, to_string(param.shape()), dtype_name(param.dtype()), param.device().str(),
           to_string(t.shape()), dtype_name(t.dtype()), t.device().str(), to_string(t.strides()));
}

}  // namespace

void sgd_step_(Tensor& param, const Tensor& grad, Tensor& momentum_buffer, const SgdStep& s) {
  CT_CHECK(param.defined(), "SGD: expected a defined parameter, got an undefined tensor");
  CT_CHECK(param.is_cuda() && param.is_floating_point() && param.is_contiguous(),
           "SGD: expected a contiguous float32 or float64 parameter on a CUDA device, got {} of "
           "shape {} with strides {} on {}",
           dtype_name(param.dtype()), to_string(param.shape()), to_string(param.strides()),
           param.device().str());
  check_like_param(grad, param, "gradient");
  if (s.momentum != 0.0) check_like_param(momentum_buffer, param, "momentum buffer");
  if (param.numel() == 0) return;
  DeviceScope scope("SGD", param.device());
  void* buf = s.momentum != 0.0 ? momentum_buffer.raw_data() : nullptr;
  CT_CUDA_CHECK(
      "SGD", launch_sgd_step(param.dtype(), param.raw_data(), grad.raw_data(), buf, param.numel(),
                             s.lr, s.momentum, s.dampening, s.weight_decay, s.nesterov, s.first));
}

}  // namespace convtape::cuda
