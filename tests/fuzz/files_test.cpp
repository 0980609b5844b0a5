// The checkpoint / IDX fuzz target (fuzz/files.cpp) as a short seeded test: the generated seeds
// (valid checkpoints from save_checkpoint, IDX files of every type, raw and gzipped), a fixed-seed
// stream of their mutations, random byte strings, and the gzip bomb. Passes when every load
// returns or throws convtape::Error and whatever loads is valid.
#include <catch2/catch.hpp>

#include "fuzz/alloc_cap.h"
#include "fuzz/asan_options.h"
#include "fuzz/files.cpp"  // NOLINT(bugprone-suspicious-include): one body for libFuzzer and the test
#include "tests/fuzz/replay.h"

namespace {

struct CapOnce {
  CapOnce() { ct_fuzz::install_alloc_cap(); }
};
const CapOnce cap_once;

// The seeds without the bomb (mode 7), which has its own test case.
std::vector<ct_fuzz::Bytes> plain_seeds() {
  auto seeds = ct_fuzz::files_seeds();
  std::erase_if(seeds, [](const ct_fuzz::Bytes& b) { return !b.empty() && (b[0] & 7) == 7; });
  return seeds;
}

}  // namespace

TEST_CASE("fuzz files: the committed corpus", "[fuzz]") {
  const auto corpus = ct_fuzz_test::committed_corpus("files");
  REQUIRE(!corpus.empty());  // the regression seeds are there (the folder moved?)
  const auto failures = ct_fuzz_test::replay(ct_fuzz_files, corpus);
  INFO(ct_fuzz_test::describe(failures));
  CHECK(failures.empty());
}

TEST_CASE("fuzz files: the seeds load", "[fuzz]") {
  const auto seeds = plain_seeds();
  REQUIRE(seeds.size() >= 20);
  const auto failures = ct_fuzz_test::replay(ct_fuzz_files, seeds);
  INFO(ct_fuzz_test::describe(failures));
  CHECK(failures.empty());
  // The seeds are valid: each loads without an error (a harness that refuses everything would
  // pass the contract vacuously).
  for (const auto& s : seeds) {
    INFO("seed " << ct_fuzz_test::hex(s, 32));
    const ct_fuzz::Bytes body(s.begin() + 1, s.end());
    ct_fuzz::write_input((s[0] & 3) == 3 ? ct_fuzz::gzip(body) : body);
    if ((s[0] & 3) >= 2)
      CHECK_NOTHROW(convtape::data::read_idx(ct_fuzz::input_path()));
    else
      CHECK_NOTHROW(convtape::io::load_checkpoint(ct_fuzz::input_path()));
  }
}

TEST_CASE("fuzz files: 4000 mutated seeds and 1000 random byte strings", "[fuzz]") {
  const auto seeds = plain_seeds();
  auto inputs = ct_fuzz_test::mutated_inputs(seeds, 7, 4000, /*keep_first_byte=*/true);
  // Bombs stay in their own test case.
  for (auto& in : ct_fuzz_test::random_inputs(11, 1000, 128)) {
    in[0] &= 0xfb;
    inputs.push_back(std::move(in));
  }
  const auto failures = ct_fuzz_test::replay(ct_fuzz_files, inputs);
  INFO(ct_fuzz_test::describe(failures));
  CHECK(failures.empty());
}

TEST_CASE("fuzz files: a gzip bomb stops at the size the IDX header declares", "[fuzz]") {
  // A one-element IDX file followed by 1.5 GiB of gzipped zeros (1.5 MB on disk): the reader must
  // refuse it without inflating past the declared size, which the 1 GiB allocation cap enforces.
  auto bombs = ct_fuzz::files_seeds();
  std::erase_if(bombs, [](const ct_fuzz::Bytes& b) { return b.empty() || (b[0] & 7) != 7; });
  REQUIRE(bombs.size() == 1);
  const auto failures = ct_fuzz_test::replay(ct_fuzz_files, bombs);
  INFO(ct_fuzz_test::describe(failures));
  CHECK(failures.empty());
}
