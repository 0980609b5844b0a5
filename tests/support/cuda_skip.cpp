// Stands in for a CUDA test executable in a build without the CUDA backend (whose internals the
// CUDA tests call, so they cannot be linked): prints which test was skipped and why, and exits
// with 77, CTest's skip code.
#include <cstdio>

#include "cuda/cuda.h"

int main(int argc, char* argv[]) {
  std::printf("SKIPPED %s: %s\n", argc > 1 ? argv[1] : "CUDA test",
              convtape::cuda::unavailable_reason().c_str());
  return 77;
}
