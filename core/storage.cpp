// Storage lifetime, the 64-byte-aligned CPU allocator with its cache of large blocks, and the
// global memory counters.
#include "core/storage.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <limits>
#include <map>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>

#include <sys/sysinfo.h>

#include "core/error.h"

namespace convtape {

namespace {
std::atomic<std::int64_t> g_cpu_bytes{0}, g_cpu_peak{0}, g_cuda_bytes{0}, g_storages{0}, g_nodes{0},
    g_workspace{0};

// The cache of large host blocks. glibc serves a block of this size with a fresh mmap every time
// (its threshold only rises to the size of the last block freed, and equal sizes still qualify), so
// without the cache every step of a training loop page-faults its activations and gradients in
// again, and the kernel zeroes each page first. Freed blocks wait in a size-ordered pool; an
// allocation takes the smallest cached block that fits with at most 1/8 to spare.
class HostCache {
 public:
  static HostCache& get() {
    static HostCache* cache = new HostCache();  // never destroyed: storages may outlive statics
    return *cache;
  }

  void* allocate(std::size_t bytes) {
    if (bytes >= kCachedMin) {
      std::lock_guard<std::mutex> lock(mutex_);
      const auto it = free_.lower_bound(bytes);
      if (it != free_.end() && it->first <= bytes + bytes / 8) {
        void* p = it->second;
        cached_ -= static_cast<std::int64_t>(it->first);
        free_.erase(it);
        return p;
      }
    }
    void* p = std::aligned_alloc(kAlign, bytes);
    if (p && bytes >= kCachedMin) {
      std::lock_guard<std::mutex> lock(mutex_);
      sizes_[p] = bytes;
    }
    return p;
  }

  void release(void* p) noexcept {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      const auto it = sizes_.find(p);
      if (it != sizes_.end()) {
        const std::size_t bytes = it->second;
        if (cached_ + static_cast<std::int64_t>(bytes) <= limit_) {
          try {
            free_.emplace(bytes, p);
            cached_ += static_cast<std::int64_t>(bytes);
            return;
          } catch (...) {  // no memory for the pool's node: hand the block back instead
          }
        }
        sizes_.erase(it);
      }
    }
    std::free(p);
  }

  void empty() noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [bytes, p] : free_) {
      sizes_.erase(p);
      std::free(p);
    }
    free_.clear();
    cached_ = 0;
  }

  void set_limit(std::int64_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      limit_ = bytes;
    }
    if (cached() > bytes) empty();
  }
  std::int64_t limit() {
    std::lock_guard<std::mutex> lock(mutex_);
    return limit_;
  }
  std::int64_t cached() {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_;
  }

  static constexpr std::size_t kAlign = 64;
  static constexpr std::size_t kCachedMin = std::size_t{1} << 18;  // 256 KiB

 private:
  HostCache() {
    if (const char* mb = std::getenv("CONVTAPE_CPU_CACHE_MB")) {
      try {
        limit_ = std::max<std::int64_t>(std::stoll(mb), 0) << 20;
      } catch (...) {  // not a number: keep the default
      }
    }
  }
  std::mutex mutex_;
  std::multimap<std::size_t, void*> free_;        // cached blocks by size
  std::unordered_map<void*, std::size_t> sizes_;  // size of every live or cached large block
  std::int64_t cached_ = 0;
  std::int64_t limit_ = std::int64_t{1} << 30;  // 1 GiB
};

void cpu_free(void* p, Device) noexcept {
  HostCache::get().release(p);
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

// RAM plus swap: Linux's default overcommit heuristic refuses any single allocation larger than
// that, so nothing that could succeed is refused here. Asking first gives the same clear error on
// every allocator (AddressSanitizer's aborts on such a request instead of returning null).
static std::uint64_t host_memory_limit() noexcept {
  struct sysinfo info {};
  if (sysinfo(&info) != 0) return std::numeric_limits<std::uint64_t>::max();
  const std::uint64_t unit = info.mem_unit == 0 ? 1 : info.mem_unit;
  return (static_cast<std::uint64_t>(info.totalram) + info.totalswap) * unit;
}

std::shared_ptr<Storage> Storage::allocate_cpu(std::size_t nbytes) {
  constexpr std::size_t kAlign = HostCache::kAlign;
  // sysinfo is a system call: every allocation below the limit read at first use skips it, and
  // only a larger request asks again (swap may have been added since).
  static const std::uint64_t first_limit = host_memory_limit();
  const std::uint64_t limit = nbytes <= first_limit ? first_limit : host_memory_limit();
  CT_CHECK(nbytes <= limit,
           "allocate: expected at most {} bytes of host memory (the machine's memory and swap), "
           "got a request for {} bytes",
           limit, nbytes);
  const std::size_t rounded = (std::max<std::size_t>(nbytes, 1) + kAlign - 1) / kAlign * kAlign;
  void* p = HostCache::get().allocate(rounded);
  if (!p) {  // the cached blocks may be what stands in the way
    HostCache::get().empty();
    p = HostCache::get().allocate(rounded);
  }
  CT_CHECK(p != nullptr,
           "allocate: expected {} bytes of host memory to be available, got an allocation failure",
           nbytes);
  try {
    return std::make_shared<Storage>(p, nbytes, Device::cpu(), &cpu_free);
  } catch (const std::bad_alloc&) {  // not even the handle fits: give the block back, then say so
    cpu_free(p, Device::cpu());
    CT_FAIL("allocate: expected memory for a storage handle, got an allocation failure");
  }
}

MemoryStats memory_stats() {
  return {g_cpu_bytes.load(), g_cpu_peak.load(),  g_cuda_bytes.load(),      g_storages.load(),
          g_nodes.load(),     g_workspace.load(), HostCache::get().cached()};
}

void empty_cache() {
  HostCache::get().empty();
}

void set_cpu_cache_limit(std::int64_t bytes) {
  CT_CHECK(bytes >= 0, "set_cpu_cache_limit: expected a non-negative byte count, got {}", bytes);
  HostCache::get().set_limit(bytes);
}

std::int64_t cpu_cache_limit() {
  return HostCache::get().limit();
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
