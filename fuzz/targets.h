// The fuzz target bodies, shared by the libFuzzer entry points (fuzz/*_fuzzer.cpp) and the seeded
// tests (tests/fuzz/*_test.cpp). Each returns 0, or lets a finding escape (see fuzz/fuzz_input.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

int ct_fuzz_ops(const std::uint8_t* data, std::size_t size);
int ct_fuzz_files(const std::uint8_t* data, std::size_t size);

namespace ct_fuzz {

// How the op target's calls ended, per op family: the seeded test checks that every family has
// calls that return (a harness whose calls are all refused would test nothing but the checks).
struct OpCounts {
  long returned = 0;
  long refused = 0;
};
const std::map<std::string, OpCounts>& op_counts();

}  // namespace ct_fuzz
