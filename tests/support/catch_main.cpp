// Catch2's main for the CPU test executables; at exit it reports the CUDA checks of the op harness
// (support/op_check.h) that were skipped for want of a GPU.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "support/op_check.h"

int main(int argc, char* argv[]) {
  const int failed = Catch::Session().run(argc, argv);
  ct_test::report_skipped_cuda_checks();
  return failed;
}
