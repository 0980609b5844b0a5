// Storage lifetime, the 64-byte-aligned CPU allocator, and the global memory counters.
#include "core/storage.h"

#include <atomic>
#include <cstdlib>
#include <new>

#include "core/error.h"

namespace convtape {

namespace {
std::atomic<std::int64_t> g_cpu_bytes{0}, g_cpu_peak{0}, g_cuda_bytes{0}, g_storages{0}, g_nodes{0},
    g_workspace{0};

void cpu_free(void* p, Device) noexcept {
  std::free(p);
}

void add_bytes(Device d, std::int64_t delta) noexcept {
  if (d.is_cpu()) {
    const std::int64_t now = g_cpu_bytes.fetch_add(delta) + delta;
    std::int64_t peak = g_cpu_peak.load();
    while (now > peak && !g_cpu_peak.compare_exchange_weak(peak, now)) {
    }
  } else {
    g_cuda_bytes.fetch_add(delta);
  }
}
}  // namespace

Storage::Storage(void* data, std::size_t nbytes, Device device, Deleter deleter)
    : data_(data), nbytes_(nbytes), device_(device), deleter_(deleter) {
  add_bytes(device_, static_cast<std::int64_t>(nbytes_));
  g_storages.fetch_add(1);
}

Storage::~Storage() {
  if (data_ && deleter_) deleter_(data_, device_);
  add_bytes(device_, -static_cast<std::int64_t>(nbytes_));
  g_storages.fetch_sub(1);
}

std::shared_ptr<Storage> Storage::allocate_cpu(std::size_t nbytes) {
  constexpr std::size_t kAlign = 64;
  const std::size_t rounded = (std::max<std::size_t>(nbytes, 1) + kAlign - 1) / kAlign * kAlign;
  void* p = std::aligned_alloc(kAlign, rounded);
  CT_CHECK(p != nullptr,
           "allocate: expected {} bytes of host memory to be available, got an allocation failure",
           nbytes);
  return std::make_shared<Storage>(p, nbytes, Device::cpu(), &cpu_free);
}

MemoryStats memory_stats() {
  return {g_cpu_bytes.load(), g_cpu_peak.load(), g_cuda_bytes.load(),
          g_storages.load(),  g_nodes.load(),    g_workspace.load()};
}

void reset_peak_memory_stats() {
  g_cpu_peak.store(g_cpu_bytes.load());
}

namespace detail {
void count_node(int delta) noexcept {
  g_nodes.fetch_add(delta);
}
void count_workspace(std::int64_t delta) noexcept {
  g_workspace.fetch_add(delta);
}
}  // namespace detail

}  // namespace convtape
