// DeviceScope: makes one CUDA device current for a scope and restores the previous one, after
// checking that the device exists. Only cuda/ includes this header.
#pragma once

#include <cuda_runtime.h>

#include <string_view>

#include "core/device.h"
#include "core/error.h"
#include "cuda/check.h"
#include "cuda/runtime.h"

namespace convtape::cuda {

class DeviceScope {
 public:
  DeviceScope(std::string_view op, Device device) {
    CT_CHECK(device.is_cuda(), "{}: expected a CUDA device, got {}", op, device.str());
    const int n = runtime::device_count();
    CT_CHECK(device.index() >= 0 && device.index() < n,
             "{}: expected a CUDA device index in [0, {}), got {}{}", op, n, device.index(),
             n == 0 ? " (no CUDA device is present)" : "");
    CT_CUDA_CHECK(op, cudaGetDevice(&previous_));
    if (previous_ != device.index()) CT_CUDA_CHECK(op, cudaSetDevice(device.index()));
    current_ = device.index();
  }
  ~DeviceScope() {
    if (previous_ != current_) cudaSetDevice(previous_);
  }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  int previous_ = 0, current_ = 0;
};

}  // namespace convtape::cuda
