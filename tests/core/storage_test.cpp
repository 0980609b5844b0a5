// The host allocator's cache of large blocks: reuse of a freed block for a request of about its
// size, the byte counters, the limit, and empty_cache().
#include "support/test_util.h"

using namespace convtape;

namespace {

// Restores the default limit and an empty cache around each test.
struct CacheGuard {
  std::int64_t limit = cpu_cache_limit();
  CacheGuard() { empty_cache(); }
  ~CacheGuard() {
    set_cpu_cache_limit(limit);
    empty_cache();
  }
};

const void* block_of(const Tensor& t) {
  return t.data_ptr<float>();
}

}  // namespace

TEST_CASE("a freed large block is reused for a request of about its size", "[storage]") {
  CacheGuard guard;
  const void* first = nullptr;
  {
    const Tensor a = empty({1 << 20});  // 4 MiB
    first = block_of(a);
    CHECK(memory_stats().cpu_cached_bytes == 0);
  }
  CHECK(memory_stats().cpu_cached_bytes == 4 << 20);
  {
    const Tensor b = empty({(1 << 20) - 1000});  // a little smaller: still within 1/8
    CHECK(block_of(b) == first);
    CHECK(memory_stats().cpu_cached_bytes == 0);
    CHECK(memory_stats().cpu_bytes >= (4 << 20) - 4000);
  }
  {
    const Tensor c = empty({1 << 19});  // half the size: a block of its own
    CHECK(block_of(c) != first);
    CHECK(memory_stats().cpu_cached_bytes == 4 << 20);
  }
  empty_cache();
  CHECK(memory_stats().cpu_cached_bytes == 0);
}

TEST_CASE("small blocks are not cached and the limit bounds the cache", "[storage]") {
  CacheGuard guard;
  { const Tensor small = empty({1000}); }
  CHECK(memory_stats().cpu_cached_bytes == 0);

  set_cpu_cache_limit(6 << 20);
  {
    const Tensor a = empty({1 << 20}), b = empty({1 << 20});  // 4 MiB each
  }
  CHECK(memory_stats().cpu_cached_bytes == 4 << 20);  // the second one did not fit

  set_cpu_cache_limit(0);  // turns the cache off and empties it
  CHECK(memory_stats().cpu_cached_bytes == 0);
  { const Tensor a = empty({1 << 20}); }
  CHECK(memory_stats().cpu_cached_bytes == 0);
  CHECK(cpu_cache_limit() == 0);
}

TEST_CASE("a reused block holds what the new tensor writes", "[storage]") {
  CacheGuard guard;
  { const Tensor a = full({1 << 18}, 3.0); }
  const Tensor b = zeros({1 << 18});
  CHECK(b.sum().item<float>() == 0.0f);
  const Tensor c = arange(1 << 18) * 2.0;
  CHECK(c.at<float>({(1 << 18) - 1}) == float(2 * ((1 << 18) - 1)));
}

TEST_CASE("set_cpu_cache_limit rejects a negative limit", "[storage][error]") {
  CT_REQUIRE_ERROR(set_cpu_cache_limit(-1),
                   "set_cpu_cache_limit: expected a non-negative byte count, got -1");
}
