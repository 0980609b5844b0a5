// main for the CUDA test executables: runs them when a CUDA device is present, otherwise prints how
// many test cases were skipped and why, and exits with 77 so that CTest reports a visible skip.
// After a run it reports any CUDA check of the op harness (support/op_check.h) that was skipped.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>

#include "cuda/cuda.h"
#include "support/op_check.h"

int main(int argc, char* argv[]) {
  if (!convtape::cuda::is_available()) {
    const auto count = Catch::getRegistryHub().getTestCaseRegistry().getAllTests().size();
    std::printf("SKIPPED %zu CUDA test case(s): %s\n", count,
                convtape::cuda::unavailable_reason().c_str());
    return 77;
  }
  const int failed = Catch::Session().run(argc, argv);
  ct_test::report_skipped_cuda_checks();
  return failed;
}
