// The CUDA backend library's own versions of the device functions of cuda/cuda.h (cuda/runtime.cpp,
// the statistics in cuda/allocator.cpp). libconvtape's cuda/cuda.h functions reach these through
// the backend table; code inside the backend library may call them directly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "core/device.h"
#include "core/dtype.h"
#include "core/storage.h"
#include "core/tensor.h"
#include "cuda/cuda.h"

namespace convtape::cuda::runtime {

int device_count() noexcept;
const char* device_error() noexcept;
std::shared_ptr<Storage> allocate(std::string_view op, std::size_t nbytes, Device device);
Tensor empty(const Shape& shape, TensorOptions options);
void copy(std::string_view op, void* dst, Device dst_device, const void* src, Device src_device,
          std::size_t nbytes);
void fill(std::string_view op, void* dst, DType dtype, std::int64_t n, double value, Device device);
void synchronize(std::string_view op, Device device);
DeviceMemoryStats memory_stats(Device device);
void reset_peak_memory_stats(Device device);
void empty_cache();

}  // namespace convtape::cuda::runtime
