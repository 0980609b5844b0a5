// The caching device allocator's rules and bookkeeping (cuda/alloc_rules.h) driven by a fake
// cudaMalloc on the host, so that they are checked in every build and without a GPU (the entry
// points' behaviour without a device is in tests/core/device_test.cpp).
#include <atomic>
#include <cstdlib>
#include <limits>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include "cuda/alloc_rules.h"
#include "support/test_util.h"

using namespace convtape;
using namespace convtape::cuda::alloc_rules;
using convtape::cuda::DeviceMemoryStats;

namespace {
constexpr std::size_t kKiB = 1024, kMiB = 1024 * 1024;

// A fake device: malloc and free, with counters and a budget beyond which allocation fails.
struct FakeDevice {
  std::size_t budget = std::size_t{1} << 40;
  std::size_t in_use = 0;
  int mallocs = 0, frees = 0, failures = 0;
  std::set<void*> live;

  BlockPool pool() {
    return BlockPool(
        [this](std::size_t bytes) -> void* {
          if (in_use + bytes > budget) {
            ++failures;
            return nullptr;
          }
          void* p = std::malloc(bytes);
          in_use += bytes;
          ++mallocs;
          live.insert(p);
          sizes[p] = bytes;
          return p;
        },
        [this](void* p) {
          in_use -= sizes.at(p);
          sizes.erase(p);
          live.erase(p);
          ++frees;
          std::free(p);
        });
  }
  std::map<void*, std::size_t> sizes;
};
}  // namespace

TEST_CASE("cuda allocator: small sizes round to 512 B, large ones to 2 MiB", "[cuda_alloc]") {
  CHECK(round_size(0) == 512);
  CHECK(round_size(1) == 512);
  CHECK(round_size(512) == 512);
  CHECK(round_size(513) == 1024);
  CHECK(round_size(1000 * kKiB) == 1000 * kKiB);
  CHECK(round_size(kMiB - 1) == kMiB);
  CHECK(round_size(kMiB) == kMiB);  // the largest small block
  CHECK(round_size(kMiB + 1) == 2 * kMiB);
  CHECK(round_size(2 * kMiB) == 2 * kMiB);
  CHECK(round_size(5 * kMiB + 3) == 6 * kMiB);
  CHECK(round_size(std::numeric_limits<std::size_t>::max() - 5) ==
        std::numeric_limits<std::size_t>::max());
  CHECK(is_small(kMiB));
  CHECK_FALSE(is_small(kMiB + 1));
  static_assert(round_size(700) == 1024);  // usable in constant expressions
}

TEST_CASE("cuda allocator: a cached block serves requests of its class it fits well",
          "[cuda_alloc]") {
  CHECK(reusable(1024, 1024));
  CHECK(reusable(2048, 1024));  // small: up to the request's own size to spare
  CHECK_FALSE(reusable(2560, 1024));
  CHECK_FALSE(reusable(512, 1024));       // too small
  CHECK_FALSE(reusable(2 * kMiB, kMiB));  // a large block never serves a small request
  CHECK(reusable(18 * kMiB, 16 * kMiB));  // large: an eighth to spare
  CHECK_FALSE(reusable(20 * kMiB, 16 * kMiB));
  CHECK_FALSE(reusable(4 * kMiB, 2 * kMiB));
}

TEST_CASE("cuda allocator: freed blocks are reused, best fit first, and counted", "[cuda_alloc]") {
  FakeDevice dev;
  BlockPool pool = dev.pool();
  void* a = pool.allocate(1000);      // 1024-byte block
  void* b = pool.allocate(3 * kMiB);  // 4 MiB block
  REQUIRE(a != nullptr);
  REQUIRE(b != nullptr);
  DeviceMemoryStats s = pool.stats();
  CHECK(s.allocated_bytes == 1024 + 4 * kMiB);
  CHECK(s.requested_bytes == 1000 + 3 * kMiB);
  CHECK(s.reserved_bytes == s.allocated_bytes);
  CHECK(s.cuda_malloc_calls == 2);
  CHECK(s.allocations == 2);
  CHECK(s.cache_hits == 0);
  CHECK(s.live_blocks == 2);

  pool.release(a);
  pool.release(b);
  s = pool.stats();
  CHECK(s.allocated_bytes == 0);
  CHECK(s.requested_bytes == 0);
  CHECK(s.cached_bytes == 1024 + 4 * kMiB);
  CHECK(s.reserved_bytes == 1024 + 4 * kMiB);
  CHECK(s.peak_allocated_bytes == 1024 + 4 * kMiB);
  CHECK(s.cached_blocks == 2);

  CHECK(pool.allocate(900) == a);       // same rounded size
  CHECK(pool.allocate(4 * kMiB) == b);  // covers it exactly
  CHECK(dev.mallocs == 2);
  s = pool.stats();
  CHECK(s.cache_hits == 2);
  CHECK(s.cached_bytes == 0);
  pool.release(a);
  pool.release(b);

  // Best fit: of a 1024 B and a 1536 B free block, a 1024 B request takes the first.
  void* c = pool.allocate(1536);
  pool.release(c);
  CHECK(pool.allocate(1024) == a);
  CHECK(pool.allocate(1100) == c);  // rounds to 1536
  // A request the free blocks do not fit goes to the device.
  void* d = pool.allocate(100);  // the 4 MiB block is large, the request small
  CHECK(d != b);
  CHECK(dev.mallocs == 4);
  pool.release(a);
  pool.release(c);
  pool.release(d);
  pool.release(&dev);  // unknown pointers are ignored
  CHECK(pool.stats().live_blocks == 0);
}

TEST_CASE("cuda allocator: empty_cache returns free blocks only; peaks reset", "[cuda_alloc]") {
  FakeDevice dev;
  {
    BlockPool pool = dev.pool();
    void* live = pool.allocate(10 * kMiB);
    void* freed = pool.allocate(2 * kMiB);
    pool.release(freed);
    pool.empty_cache();
    CHECK(dev.frees == 1);
    CHECK(dev.live.count(live) == 1);
    DeviceMemoryStats s = pool.stats();
    CHECK(s.cached_bytes == 0);
    CHECK(s.cached_blocks == 0);
    CHECK(s.reserved_bytes == 10 * kMiB);
    CHECK(s.cuda_free_calls == 1);
    CHECK(s.peak_reserved_bytes == 12 * kMiB);
    pool.reset_peak();
    s = pool.stats();
    CHECK(s.peak_reserved_bytes == 10 * kMiB);
    CHECK(s.peak_allocated_bytes == 10 * kMiB);
    pool.release(live);
  }  // the pool's destructor returns what it cached
  CHECK(dev.live.empty());
  CHECK(dev.in_use == 0);
}

TEST_CASE("cuda allocator: a failed cudaMalloc empties the cache and retries once",
          "[cuda_alloc]") {
  FakeDevice dev;
  dev.budget = 8 * kMiB;
  BlockPool pool = dev.pool();
  void* a = pool.allocate(4 * kMiB);
  void* b = pool.allocate(2 * kMiB);
  pool.release(a);                    // 4 MiB cached, 2 MiB live, 2 MiB left on the device
  void* c = pool.allocate(6 * kMiB);  // fails, the cache is emptied, then fits
  REQUIRE(c != nullptr);
  DeviceMemoryStats s = pool.stats();
  CHECK(dev.failures == 1);
  CHECK(s.oom_retries == 1);
  CHECK(s.cached_bytes == 0);
  CHECK(s.reserved_bytes == 8 * kMiB);
  // Nothing cached and nothing free: the failure is reported as nullptr, without a retry.
  CHECK(pool.allocate(kMiB) == nullptr);
  CHECK(dev.failures == 2);
  CHECK(pool.stats().oom_retries == 1);
  pool.release(b);
  pool.release(c);
}

TEST_CASE("cuda allocator: concurrent allocate and release keep the counters exact",
          "[cuda_alloc]") {
  FakeDevice dev;
  BlockPool pool = dev.pool();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&pool, t] {
      for (int i = 0; i < 500; ++i) {
        void* p = pool.allocate(static_cast<std::size_t>(512 * (1 + (i + t) % 5)));
        void* q = pool.allocate(3 * kMiB);
        pool.release(p);
        pool.release(q);
      }
    });
  for (auto& th : threads) th.join();
  const DeviceMemoryStats s = pool.stats();
  CHECK(s.allocations == 4 * 500 * 2);
  CHECK(s.allocated_bytes == 0);
  CHECK(s.live_blocks == 0);
  CHECK(s.cache_hits + s.cuda_malloc_calls == s.allocations);
  CHECK(s.cuda_malloc_calls <= 4 * 6);  // at most one block per size class and thread
  CHECK(s.reserved_bytes == s.cached_bytes);
  CHECK(static_cast<std::int64_t>(dev.in_use) == s.reserved_bytes);
}
