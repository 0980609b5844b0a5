// The caching device allocator: one alloc_rules::BlockPool per device around cudaMalloc / cudaFree
// (the rules and the bookkeeping live in cuda/alloc_rules.h). Only cuda/ includes this header;
// the host-visible API (allocate, memory_stats, empty_cache) is in cuda/cuda.h.
//
// All work runs on the legacy default stream, so a block freed by one storage may serve the next
// allocation at once: later kernels are ordered after the earlier ones that used it.
#pragma once

#include <cstddef>
#include <string_view>

#include "core/device.h"
#include "cuda/alloc_rules.h"

namespace convtape::cuda::detail {

// The pool of `device` (a valid CUDA device), created on first use and never destroyed: storages
// may outlive static destructors, and cudaFree after the runtime has shut down fails anyway.
alloc_rules::BlockPool& device_pool(Device device);

// A block of at least nbytes on `device`; throws an out-of-memory Error naming op, the size and the
// device when cudaMalloc fails even after the device's cache was emptied.
void* device_malloc(std::string_view op, std::size_t nbytes, Device device);

// The Storage deleter of device blocks: hands the block back to its device's cache.
void device_release(void* p, Device device) noexcept;

}  // namespace convtape::cuda::detail
