// The op-argument fuzz target (fuzz/ops.cpp) as a short seeded test: the committed corpus
// (minimised findings among it) and a fixed-seed stream of random byte strings, each of which the
// body decodes into an op and its arguments. Passes when every call returns or throws
// convtape::Error and every result passes the target's checks.
#include <catch2/catch.hpp>

#include "fuzz/alloc_cap.h"
#include "fuzz/asan_options.h"
#include "fuzz/ops.cpp"  // NOLINT(bugprone-suspicious-include): one body for libFuzzer and the test
#include "tests/fuzz/replay.h"

namespace {

struct CapOnce {
  CapOnce() { ct_fuzz::install_alloc_cap(); }
};
const CapOnce cap_once;

}  // namespace

TEST_CASE("fuzz ops: the committed corpus", "[fuzz]") {
  const auto corpus = ct_fuzz_test::committed_corpus("ops");
  REQUIRE(corpus.size() >= 4);  // the regression seeds are there (the folder moved?)
  const auto failures = ct_fuzz_test::replay(ct_fuzz_ops, corpus);
  INFO(ct_fuzz_test::describe(failures));
  CHECK(failures.empty());
}

TEST_CASE("fuzz ops: 6000 random byte strings", "[fuzz]") {
  const auto inputs = ct_fuzz_test::random_inputs(20240611, 6000, 96);
  const auto failures = ct_fuzz_test::replay(ct_fuzz_ops, inputs);
  INFO(ct_fuzz_test::describe(failures));
  CHECK(failures.empty());
  // Every op family is reached, and some of its calls succeed: the stream tests the ops, not only
  // their argument checks.
  const auto& counts = ct_fuzz::op_counts();
  for (const char* family : ct_fuzz::kFamily) {
    const auto it = counts.find(family);
    REQUIRE(it != counts.end());
    INFO(family << ": " << it->second.returned << " returned, " << it->second.refused
                << " refused");
    CHECK(it->second.returned >= 10);
    std::printf("fuzz ops: %-14s %5ld returned %5ld refused\n", family, it->second.returned,
                it->second.refused);
  }
}
