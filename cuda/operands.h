// Operand checks and outputs shared by the tensor-level front ends of cuda/*.cpp (cuda/nn.cpp,
// cuda/select.cpp): each names the op and the operand in its message, as
// "softmax: expected the input on a CUDA device, got one on cpu".
#pragma once

#include <string_view>

#include "core/error.h"
#include "core/tensor.h"
#include "cuda/cuda.h"

namespace convtape::cuda {

// An uninitialised contiguous tensor of shape and dtype on device.
inline Tensor device_empty(const Shape& shape, DType dtype, Device device) {
  return empty(shape, TensorOptions(dtype).device(device));
}

// Defined, on a CUDA device and, with first, on first's device.
inline void check_device_operand(std::string_view op, const Tensor& t, std::string_view what,
                                 const Tensor* first = nullptr) {
  CT_CHECK(t.defined(), "{}: expected a defined {}, got an undefined tensor", op, what);
  CT_CHECK(t.is_cuda(), "{}: expected the {} on a CUDA device, got one on {}", op, what,
           t.device().str());
  if (first)
    CT_CHECK(t.device() == first->device(), "{}: expected the {} on {}, got one on {}", op, what,
             first->device().str(), t.device().str());
}

inline void check_contiguous(std::string_view op, const Tensor& t, std::string_view what) {
  CT_CHECK(t.is_contiguous(), "{}: expected a contiguous {}, got strides {} for shape {}", op, what,
           to_string(t.strides()), to_string(t.shape()));
}

}  // namespace convtape::cuda
