// The caching device allocator on a real device: reuse of a freed block, the statistics,
// empty_cache, and the out-of-memory report. Runs only where a CUDA device is present.
#include "support/test_util.h"

using namespace convtape;

namespace {
const Device kDev(DeviceType::CUDA, 0);  // named only: the main checks that it exists
}  // namespace

TEST_CASE("a freed device block is reused for a request of the same size class", "[cuda]") {
  cuda::empty_cache();
  const cuda::DeviceMemoryStats before = cuda::memory_stats(kDev);
  void* first = nullptr;
  {
    const auto s = cuda::allocate("alloc_test", 1000, kDev);
    first = s->data();
    CHECK(s->device() == kDev);
    CHECK(s->nbytes() == 1000);
    const cuda::DeviceMemoryStats live = cuda::memory_stats(kDev);
    CHECK(live.allocated_bytes == before.allocated_bytes + 1024);
    CHECK(live.requested_bytes == before.requested_bytes + 1000);
    CHECK(live.cuda_malloc_calls == before.cuda_malloc_calls + 1);
  }
  const cuda::DeviceMemoryStats freed = cuda::memory_stats(kDev);
  CHECK(freed.allocated_bytes == before.allocated_bytes);
  CHECK(freed.cached_bytes == before.cached_bytes + 1024);
  {
    const auto s = cuda::allocate("alloc_test", 700, kDev);  // also a 1024 B block
    CHECK(s->data() == first);
    const cuda::DeviceMemoryStats hit = cuda::memory_stats(kDev);
    CHECK(hit.cache_hits == freed.cache_hits + 1);
    CHECK(hit.cuda_malloc_calls == freed.cuda_malloc_calls);
  }
}

TEST_CASE("device tensors draw on the cache and the counters agree", "[cuda]") {
  cuda::empty_cache();
  cuda::reset_peak_memory_stats(kDev);
  const cuda::DeviceMemoryStats start = cuda::memory_stats(kDev);
  const std::int64_t live_before = memory_stats().cuda_bytes;
  {
    const Tensor a = zeros({3 << 20}, TensorOptions(kFloat32).device(kDev));  // 12 MiB
    const Tensor b = ones({100}, TensorOptions(kFloat64).device(kDev));       // 800 B -> 1024 B
    CHECK(memory_stats().cuda_bytes == live_before + (12 << 20) + 800);
    const cuda::DeviceMemoryStats s = cuda::memory_stats(kDev);
    CHECK(s.allocated_bytes == start.allocated_bytes + (12 << 20) + 1024);
    CHECK(s.reserved_bytes == s.allocated_bytes + s.cached_bytes);
    CHECK(s.peak_allocated_bytes >= s.allocated_bytes);
    CHECK(b.cpu().to_vector<double>() == std::vector<double>(100, 1.0));
  }
  CHECK(memory_stats().cuda_bytes == live_before);
  const cuda::DeviceMemoryStats after = cuda::memory_stats(kDev);
  CHECK(after.allocated_bytes == start.allocated_bytes);
  CHECK(after.cached_bytes == start.cached_bytes + (12 << 20) + 1024);
  CHECK(after.peak_allocated_bytes == start.allocated_bytes + (12 << 20) + 1024);
  // A second round of the same shapes comes entirely from the cache.
  { const Tensor a = zeros({3 << 20}, TensorOptions(kFloat32).device(kDev)); }
  CHECK(cuda::memory_stats(kDev).cuda_malloc_calls == after.cuda_malloc_calls);
}

TEST_CASE("empty_cache hands cached device blocks back with cudaFree", "[cuda]") {
  { const auto s = cuda::allocate("alloc_test", 5 << 20, kDev); }  // a 6 MiB block, now cached
  const cuda::DeviceMemoryStats cached = cuda::memory_stats(kDev);
  CHECK(cached.cached_bytes >= 6 << 20);
  const auto live = cuda::allocate("alloc_test", 4096, kDev);
  cuda::empty_cache();
  const cuda::DeviceMemoryStats s = cuda::memory_stats(kDev);
  CHECK(s.cached_bytes == 0);
  CHECK(s.cached_blocks == 0);
  CHECK(s.cuda_free_calls == cached.cuda_free_calls + cached.cached_blocks);
  CHECK(s.reserved_bytes == s.allocated_bytes);
  CHECK(s.allocated_bytes >= 4096);  // the live block stays
  cuda::synchronize("alloc_test", kDev);
}

TEST_CASE("an impossible device allocation reports op, size and device", "[cuda]") {
  { const auto s = cuda::allocate("alloc_test", 8 << 20, kDev); }  // something cached to retry with
  const cuda::DeviceMemoryStats before = cuda::memory_stats(kDev);
  const std::size_t pib = std::size_t{1} << 50;
  CT_REQUIRE_ERROR(cuda::allocate("huge_op", pib, kDev),
                   "huge_op: out of memory on cuda:0: expected 1125899906842624 bytes (1.00 PiB) "
                   "of device memory to be available, got cudaErrorMemoryAllocation");
  const cuda::DeviceMemoryStats after = cuda::memory_stats(kDev);
  CHECK(after.oom_retries == before.oom_retries + 1);
  CHECK(after.cached_bytes == 0);  // emptied for the retry
  CHECK(after.allocated_bytes == before.allocated_bytes);
  // The device still works afterwards.
  CHECK(ones({4}, kDev).cpu().to_vector<float>() == std::vector<float>(4, 1.0f));
  CT_REQUIRE_ERROR(zeros({std::int64_t{1} << 48}, kDev), "out of memory on cuda:0");
}

TEST_CASE("a device index beyond the last device is refused", "[cuda]") {
  const int n = cuda::device_count();
  CT_REQUIRE_ERROR(
      cuda::allocate("alloc_test", 16, Device::cuda(n)),
      fmt::format("alloc_test: expected a CUDA device index in [0, {}), got {}", n, n));
}
