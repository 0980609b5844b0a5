// The CUDA backend's device plumbing, in plain C++ so that any folder may include it: device
// discovery, device storage, copies between host and device, and fill. A build without CUDA links
// cuda/no_cuda.cpp instead, whose functions report "<op>: this build has no CUDA support".
// Every function takes the name of the user-facing op it serves, for its error messages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "core/device.h"
#include "core/dtype.h"
#include "core/storage.h"

namespace convtape::cuda {

// True when this library was compiled with the CUDA backend.
bool built_with_cuda() noexcept;
// Number of usable CUDA devices: 0 without the backend, a driver or a device.
int device_count() noexcept;
// built_with_cuda() and at least one device.
bool is_available() noexcept;

// Uninitialised device memory on `device`.
std::shared_ptr<Storage> allocate(std::string_view op, std::size_t nbytes, Device device);
// Copies nbytes between any two of host and devices (at least one side is a CUDA device).
void copy(std::string_view op, void* dst, Device dst_device, const void* src, Device src_device,
          std::size_t nbytes);
// Sets n elements of dtype at dst to value.
void fill(std::string_view op, void* dst, DType dtype, std::int64_t n, double value, Device device);
// Waits for all work on the device.
void synchronize(std::string_view op, Device device);

}  // namespace convtape::cuda
