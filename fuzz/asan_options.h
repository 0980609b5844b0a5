// The ASan options of the fuzz executables and the seeded fuzz tests (see fuzz/alloc_cap.h): read
// by ASan before main, so it must be defined in exactly one translation unit of each executable.
#pragma once

// Allocations past the cap fail (the storage allocator turns the null into its error; operator
// new reports), and reports abort so that libFuzzer records them.
extern "C" __attribute__((used, visibility("default"))) const char* __asan_default_options() {
  return "max_allocation_size_mb=1024:allocator_may_return_null=1:abort_on_error=1";
}
