// The caching device allocator: per-device BlockPools over cudaMalloc / cudaFree, their
// statistics, and the out-of-memory report.
#include "cuda/allocator.h"

#include <cuda_runtime.h>

#include <array>
#include <atomic>
#include <mutex>
#include <string>

#include "core/error.h"
#include "cuda/check.h"
#include "cuda/cuda.h"
#include "cuda/runtime.h"

namespace convtape::cuda {

namespace {
constexpr int kMaxDevices = 64;
std::array<std::atomic<alloc_rules::BlockPool*>, kMaxDevices> g_pools{};
std::mutex g_pools_mutex;

// The status of this thread's last failed cudaMalloc, for the out-of-memory message.
thread_local cudaError_t t_malloc_error = cudaSuccess;

// Runs f with `index` as the current device (cudaFree and cudaMalloc act on the current one).
template <class F>
void on_device(int index, F&& f) noexcept {
  int previous = 0;
  const bool restore = cudaGetDevice(&previous) == cudaSuccess && previous != index;
  if (restore) cudaSetDevice(index);
  f();
  if (restore) cudaSetDevice(previous);
}

std::string human(double bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 6) {
    bytes /= 1024.0;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f} B", bytes) : fmt::format("{:.2f} {}", bytes, kUnits[u]);
}

alloc_rules::BlockPool* find_pool(Device device) noexcept {
  if (!device.is_cuda() || device.index() < 0 || device.index() >= kMaxDevices) return nullptr;
  return g_pools[static_cast<std::size_t>(device.index())].load(std::memory_order_acquire);
}
}  // namespace

namespace detail {

alloc_rules::BlockPool& device_pool(Device device) {
  CT_CHECK(device.is_cuda() && device.index() >= 0 && device.index() < kMaxDevices,
           "allocate: expected a CUDA device with an index in [0, {}), got {}", kMaxDevices,
           device.str());
  if (alloc_rules::BlockPool* pool = find_pool(device)) return *pool;
  std::lock_guard<std::mutex> lock(g_pools_mutex);
  auto& slot = g_pools[static_cast<std::size_t>(device.index())];
  if (alloc_rules::BlockPool* pool = slot.load(std::memory_order_acquire)) return *pool;
  const int index = device.index();
  auto* pool = new alloc_rules::BlockPool(  // never deleted, see allocator.h
      [index](std::size_t bytes) -> void* {
        void* p = nullptr;
        on_device(index, [&] { t_malloc_error = cudaMalloc(&p, bytes); });
        if (t_malloc_error != cudaSuccess) {
          cudaGetLastError();  // clear the error so that later calls do not report it
          return nullptr;
        }
        return p;
      },
      [index](void* p) { on_device(index, [&] { cudaFree(p); }); });
  slot.store(pool, std::memory_order_release);
  return *pool;
}

void* device_malloc(std::string_view op, std::size_t nbytes, Device device) {
  alloc_rules::BlockPool& pool = device_pool(device);
  void* p = pool.allocate(nbytes);
  if (p) return p;
  const cudaError_t error = t_malloc_error;
  const DeviceMemoryStats s = pool.stats();
  std::size_t free_bytes = 0, total_bytes = 0;
  std::string device_info;
  if (cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess)
    device_info =
        fmt::format("; the device has {} free of {}", human(static_cast<double>(free_bytes)),
                    human(static_cast<double>(total_bytes)));
  else
    cudaGetLastError();
  CT_FAIL(
      "{}: out of memory on {}: expected {} bytes ({}) of device memory to be available, got {} "
      "({}) from cudaMalloc even after emptying the cache; convtape holds {} in live blocks and {} "
      "cached on this device{}",
      op, device.str(), nbytes, human(static_cast<double>(nbytes)), cudaGetErrorName(error),
      cudaGetErrorString(error), human(static_cast<double>(s.allocated_bytes)),
      human(static_cast<double>(s.cached_bytes)), device_info);
}

void device_release(void* p, Device device) noexcept {
  if (alloc_rules::BlockPool* pool = find_pool(device)) pool->release(p);
}

}  // namespace detail

namespace runtime {

DeviceMemoryStats memory_stats(Device device) {
  CT_CHECK(device.is_cuda(), "memory_stats: expected a CUDA device, got {}", device.str());
  const alloc_rules::BlockPool* pool = find_pool(device);
  return pool ? pool->stats() : DeviceMemoryStats{};
}

void reset_peak_memory_stats(Device device) {
  CT_CHECK(device.is_cuda(), "reset_peak_memory_stats: expected a CUDA device, got {}",
           device.str());
  if (alloc_rules::BlockPool* pool = find_pool(device)) pool->reset_peak();
}

void empty_cache() {
  for (auto& slot : g_pools)
    if (alloc_rules::BlockPool* pool = slot.load(std::memory_order_acquire)) pool->empty_cache();
}

}  // namespace runtime

}  // namespace convtape::cuda
