// A two-rank job in which rank 1 fails during a training step, for the fault tests of
// tests/CMakeLists.txt (run under mpirun; each checks the job's output and that it ends in bounded
// time). Modes:
//   exit   rank 1's step throws; it reports the error and exits with status 1 without finalising,
//          as a program whose main catches an error does. The launcher must end rank 0, which waits
//          in the step's all-reduce.
//   stall  rank 1's step throws; it reports the error and stays alive without calling collectives
//          (a hung data loader, say). Rank 0's all-reduce must fail with the process group's
//          timeout (CONVTAPE_DIST_TIMEOUT); a barrier after it fails at once (the group is
//          stopped), and rank 0 ends the job with dist::abort.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>

#include "convtape.h"
#include "dist/ddp.h"

using namespace convtape;

int main(int argc, char** argv) {
  const bool stall = argc > 1 && std::strcmp(argv[1], "stall") == 0;
  dist::init();
  const int rank = dist::rank();
  try {
    manual_seed(1);
    auto model = std::make_shared<nn::Sequential>();
    model->push_back(std::make_shared<nn::Linear>(8, 16));
    model->push_back(std::make_shared<nn::ReLU>());
    model->push_back(std::make_shared<nn::Linear>(16, 4));
    auto ddp = std::make_shared<nn::DistributedDataParallel>(model);
    optim::SGD sgd(ddp->parameters(), optim::SGDOptions(0.1));
    for (int step = 0; step < 3; ++step) {
      // Rank 1's last batch has the wrong width: its forward throws before any communication.
      const std::int64_t width = rank == 1 && step == 2 ? 7 : 8;
      const Tensor loss = sum((*ddp)(randn({4, width})));
      sgd.zero_grad();
      loss.backward();
      sgd.step();
      std::printf("rank %d: step %d done\n", rank, step);
      std::fflush(stdout);
    }
    dist::finalize();
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "rank %d failed: %s\n", rank, e.what());
    std::fflush(stderr);
    if (rank == 1 && stall) std::this_thread::sleep_for(std::chrono::seconds(120));
    if (rank == 1) return 1;
    if (stall) {
      // The timed-out group is stopped: a later collective fails at once instead of queueing
      // behind the stuck one.
      try {
        dist::barrier();
      } catch (const Error& later) {
        std::fprintf(stderr, "rank 0 then: %s\n", later.what());
        std::fflush(stderr);
      }
    }
    dist::abort(3);
  }
}
