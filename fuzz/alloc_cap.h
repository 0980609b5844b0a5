// The allocation cap of fuzz runs and of the seeded fuzz tests: no single allocation may exceed
// 1 GiB. Valid ops whose results are larger than that (a 1-d conv padded by 2^31 is valid and
// needs 16 GiB) must then fail with the storage allocator's convtape::Error, while an allocation
// of that size anywhere else (a std::vector sized from unchecked input, a gzip bomb) is reported:
// under ASan its allocator refuses it (max_allocation_size_mb) and reports operator new's
// failure; without ASan, RLIMIT_DATA makes operator new throw std::bad_alloc, which the harness
// reports. libFuzzer's -malloc_limit_mb=1024 (scripts/fuzz) catches what slips past both.
//
// Each executable calls install_alloc_cap() before the first input and includes
// fuzz/asan_options.h in exactly one translation unit.
#pragma once

#include <sys/resource.h>

#include <cstddef>

namespace ct_fuzz {

inline constexpr std::size_t kAllocCapMb = 1024;

inline std::size_t alloc_cap_bytes() {
  return kAllocCapMb << 20;
}

#if defined(__SANITIZE_ADDRESS__)
#define CT_FUZZ_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CT_FUZZ_ASAN 1
#endif
#endif

inline void install_alloc_cap() {
#ifndef CT_FUZZ_ASAN
  // Without ASan the cap is on the data segment as a whole: the cap plus room for what the
  // process already holds, thread stacks and the runtime.
  rlimit limit{};
  if (getrlimit(RLIMIT_DATA, &limit) == 0) {
    const rlim_t want = static_cast<rlim_t>(alloc_cap_bytes()) + (rlim_t{512} << 20);
    if (limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur > want) {
      limit.rlim_cur = want;
      setrlimit(RLIMIT_DATA, &limit);
    }
  }
#endif
}

}  // namespace ct_fuzz
