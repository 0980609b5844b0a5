// The caching device allocator's rules and bookkeeping, in plain C++ with no CUDA include, so that
// a CPU test can drive them with a fake cudaMalloc in every build (cuda/allocator.cpp wraps them
// around the real one).
//
// Sizes, as PyTorch's allocator rounds them: a request of up to 1 MiB (a "small" block) rounds up
// to a multiple of 512 B (512 B at least), a larger one to a multiple of 2 MiB. Every block is one
// cudaMalloc of its rounded size; blocks are never split or merged, so a block's size tells which
// class it belongs to. A freed block waits in its device's free list (ordered by size) and serves
// the next request of the same class whose rounded size it covers without wasting more than the
// request's own size (small blocks) or an eighth of it (large blocks): the best fit, the smallest
// such block, is taken.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "cuda/cuda.h"

namespace convtape::cuda::alloc_rules {

inline constexpr std::size_t kMinBlock = 512;                     // small sizes round to this
inline constexpr std::size_t kSmallMax = std::size_t{1} << 20;    // 1 MiB: largest small block
inline constexpr std::size_t kLargeRound = std::size_t{2} << 20;  // large sizes round to this

// True for requests (and blocks) of the small class.
constexpr bool is_small(std::size_t nbytes) noexcept {
  return nbytes <= kSmallMax;
}

// The block size a request of nbytes gets (0 bytes gets a 512 B block). Sizes whose rounding would
// overflow come back as the largest size_t, which no cudaMalloc can satisfy.
constexpr std::size_t round_size(std::size_t nbytes) noexcept {
  const std::size_t unit = is_small(nbytes) ? kMinBlock : kLargeRound;
  const std::size_t n = std::max<std::size_t>(nbytes, 1);
  if (n > std::numeric_limits<std::size_t>::max() - (unit - 1))
    return std::numeric_limits<std::size_t>::max();
  return (n + unit - 1) / unit * unit;
}

// Whether a free block of block_size may serve a request whose rounded size is `rounded`.
constexpr bool reusable(std::size_t block_size, std::size_t rounded) noexcept {
  if (block_size < rounded || is_small(block_size) != is_small(rounded)) return false;
  const std::size_t spare = block_size - rounded;
  return is_small(rounded) ? spare <= rounded : spare <= rounded / 8;
}

// One device's blocks: the free list, the live blocks and the counters. raw_alloc returns nullptr
// on failure; raw_free must not throw. Thread-safe; the raw functions run under the pool's lock
// (cudaMalloc and cudaFree synchronise anyway).
class BlockPool {
 public:
  using RawAlloc = std::function<void*(std::size_t bytes)>;
  using RawFree = std::function<void(void* p)>;

  BlockPool(RawAlloc raw_alloc, RawFree raw_free)
      : raw_alloc_(std::move(raw_alloc)), raw_free_(std::move(raw_free)) {}
  ~BlockPool() { empty_cache(); }  // live blocks belong to their storages
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  // A block of at least nbytes, or nullptr when raw_alloc failed both before and after the cache
  // was emptied.
  void* allocate(std::size_t nbytes) {
    const std::size_t rounded = round_size(nbytes);
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = free_.lower_bound(rounded);
    if (it != free_.end() && reusable(it->first, rounded)) {
      const std::size_t size = it->first;
      void* p = it->second;
      live_.emplace(p, Live{size, nbytes});  // may throw: the block stays in the free list
      free_.erase(it);
      stats_.cached_bytes -= as_int(size);
      --stats_.cached_blocks;
      ++stats_.cache_hits;
      hand_out(size, nbytes);
      return p;
    }
    void* p = raw_alloc_(rounded);
    if (!p && !free_.empty()) {  // cached blocks may be what stands in the way
      ++stats_.oom_retries;
      empty_locked();
      p = raw_alloc_(rounded);
    }
    if (!p) return nullptr;
    ++stats_.cuda_malloc_calls;
    stats_.reserved_bytes += as_int(rounded);
    stats_.peak_reserved_bytes = std::max(stats_.peak_reserved_bytes, stats_.reserved_bytes);
    try {
      live_.emplace(p, Live{rounded, nbytes});
    } catch (...) {
      give_back(p, rounded);
      throw;
    }
    hand_out(rounded, nbytes);
    return p;
  }

  // Takes back a block from allocate(); unknown pointers are ignored.
  void release(void* p) noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = live_.find(p);
    if (it == live_.end()) return;
    const Live block = it->second;
    live_.erase(it);
    stats_.allocated_bytes -= as_int(block.size);
    stats_.requested_bytes -= as_int(block.requested);
    --stats_.live_blocks;
    try {
      free_.emplace(block.size, p);
      stats_.cached_bytes += as_int(block.size);
      ++stats_.cached_blocks;
    } catch (...) {  // no memory for the free list's node: return the block instead
      give_back(p, block.size);
    }
  }

  // Returns every free block with raw_free.
  void empty_cache() noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    empty_locked();
  }

  DeviceMemoryStats stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

  void reset_peak() noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.peak_allocated_bytes = stats_.allocated_bytes;
    stats_.peak_reserved_bytes = stats_.reserved_bytes;
  }

 private:
  struct Live {
    std::size_t size;
    std::size_t requested;
  };

  static std::int64_t as_int(std::size_t n) noexcept { return static_cast<std::int64_t>(n); }

  void hand_out(std::size_t size, std::size_t requested) noexcept {
    ++stats_.allocations;
    ++stats_.live_blocks;
    stats_.allocated_bytes += as_int(size);
    stats_.requested_bytes += as_int(requested);
    stats_.peak_allocated_bytes = std::max(stats_.peak_allocated_bytes, stats_.allocated_bytes);
  }

  void give_back(void* p, std::size_t size) noexcept {
    raw_free_(p);
    ++stats_.cuda_free_calls;
    stats_.reserved_bytes -= as_int(size);
  }

  void empty_locked() noexcept {
    for (const auto& [size, p] : free_) give_back(p, size);
    free_.clear();
    stats_.cached_bytes = 0;
    stats_.cached_blocks = 0;
  }

  RawAlloc raw_alloc_;
  RawFree raw_free_;
  mutable std::mutex mutex_;
  std::multimap<std::size_t, void*> free_;  // cached blocks by size
  std::unordered_map<void*, Live> live_;    // blocks handed out
  DeviceMemoryStats stats_;
};

}  // namespace convtape::cuda::alloc_rules
