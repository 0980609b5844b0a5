// The CUDA API every program sees, in plain C++ so that any folder may include it: device
// discovery, device storage (through the backend's caching allocator), its statistics, copies
// between host and device, and fill. libconvtape implements it (cuda/api.cpp) by forwarding to the
// CUDA backend library, libconvtape_cuda.so, which it opens the first time a CUDA device is asked
// for (cuda/backend_table.h says where it looks). Without that library, or without a device, every
// call that needs one throws "convtape: this installation has no CUDA backend (...)" or
// "convtape: no CUDA device (...)"; the statistics then read as zeros and empty_cache does nothing.
// Every function takes the name of the user-facing op it serves, for its other error messages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/device.h"
#include "core/dtype.h"
#include "core/storage.h"
#include "core/tensor.h"

namespace convtape::cuda {

// True when the CUDA backend library is installed beside libconvtape and loads (it is then loaded).
bool has_backend() noexcept;
// Number of usable CUDA devices: 0 without the backend, a driver or a device.
int device_count() noexcept;
// has_backend() and at least one device.
bool is_available() noexcept;
// "" when is_available(); otherwise the message Device::cuda() would throw, which says why.
std::string unavailable_reason();

// Uninitialised device memory on `device`, from the caching allocator: the block comes from the
// device's cache when one of a fitting size is free (cuda/alloc_rules.h), from cudaMalloc
// otherwise, and goes back to the cache when the storage dies. When cudaMalloc fails, the device's
// cache is emptied and the call retried once before an out-of-memory Error naming op, the size and
// the device is thrown.
std::shared_ptr<Storage> allocate(std::string_view op, std::size_t nbytes, Device device);

// A new contiguous, uninitialised tensor of options' dtype on options' CUDA device: the kernels'
// outputs and scratch buffers (the backend's twin of Tensor::empty_cpu; requires_grad is ignored).
Tensor empty(const Shape& shape, TensorOptions options);

// The caching allocator's counters for one device. Bytes are block sizes (requests rounded up by
// cuda/alloc_rules.h), except requested_bytes. MemoryStats::cuda_bytes (core/storage.h) stays the
// live bytes of all device storages as requested.
struct DeviceMemoryStats {
  std::int64_t allocated_bytes = 0;       // in blocks handed out and not yet released
  std::int64_t requested_bytes = 0;       // what those blocks were asked for
  std::int64_t cached_bytes = 0;          // in free blocks kept for reuse
  std::int64_t reserved_bytes = 0;        // obtained from cudaMalloc: allocated + cached
  std::int64_t peak_allocated_bytes = 0;  // since the start or reset_peak_memory_stats
  std::int64_t peak_reserved_bytes = 0;
  std::int64_t allocations = 0;        // blocks handed out
  std::int64_t cache_hits = 0;         // of which served from the cache
  std::int64_t cuda_malloc_calls = 0;  // successful ones
  std::int64_t cuda_free_calls = 0;
  std::int64_t oom_retries = 0;  // failed cudaMallocs answered by emptying the cache and retrying
  std::int64_t live_blocks = 0;
  std::int64_t cached_blocks = 0;
};
// Counters of `device` (zeros for a device nothing was allocated on, and in a build without CUDA).
DeviceMemoryStats memory_stats(Device device);
// Lowers the peaks of `device` to the current values.
void reset_peak_memory_stats(Device device);
// Returns the cached (free) blocks of every device with cudaFree. Live blocks are untouched.
void empty_cache();
// Copies nbytes between any two of host and devices (at least one side is a CUDA device).
void copy(std::string_view op, void* dst, Device dst_device, const void* src, Device src_device,
          std::size_t nbytes);
// Sets n elements of dtype at dst to value.
void fill(std::string_view op, void* dst, DType dtype, std::int64_t n, double value, Device device);
// Waits for all work on the device.
void synchronize(std::string_view op, Device device);

}  // namespace convtape::cuda
