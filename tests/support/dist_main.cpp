// Catch2's main for the distributed tests (tests/dist), which CTest starts under mpirun with two
// ranks: every rank runs every test case in the same order, so their collectives pair up. The
// exit code is the worst over the ranks, so a failure on one rank fails the test. A rank that
// catches a stopped process group (a peer failed) ends the whole job instead of hanging in
// finalize.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>

#include "dist/process_group.h"
#include "ops/factory.h"

int main(int argc, char* argv[]) {
  using namespace convtape;
  try {
    dist::init();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  const int failed = Catch::Session().run(argc, argv);
  try {
    Tensor worst = full({}, static_cast<double>(failed), kInt64);
    dist::all_reduce(worst, dist::ReduceOp::Max);
    const auto code = static_cast<int>(worst.item());
    dist::finalize();
    return code;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rank %d: %s\n", dist::rank(), e.what());
    dist::abort(failed ? failed : 1);
  }
}
