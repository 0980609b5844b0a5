// convtape::dist: collectives across processes, on an existing engine. CPU tensors go through MPI,
// CUDA tensors through NCCL (bootstrapped over MPI, from libconvtape_nccl.so, opened at the first
// collective on a CUDA tensor). Processes are started by the launcher: mpirun, or Slurm's srun
// through MPI.
//
//   dist::init();                                   // once, before any collective
//   Tensor g = ...;                                 // float32 / float64 (int64 too), any shape
//   dist::all_reduce(g, dist::ReduceOp::Mean);      // in place: every rank ends with the mean
//   dist::Work w = dist::all_reduce_async(g);       // started; runs while this thread computes
//   w.wait();                                       // g holds the sum from here on
//   Tensor all = dist::all_gather(x);               // [world_size, *x.shape], rank order
//   dist::broadcast(x, 0);  dist::barrier();
//
// Collectives run in the order they are called, on one thread of the process group's own (the
// engine's calls never run on the caller's thread, so an asynchronous all-reduce progresses while
// the caller computes), and every rank must call the same collectives in the same order with the
// same shapes and dtypes (all_reduce checks that across ranks cheaply: see ProcessGroup). A
// collective that does not finish within the group's timeout (ProcessGroupOptions, default 30
// minutes; CONVTAPE_DIST_TIMEOUT in seconds overrides it) throws instead of hanging: a peer that
// died or stopped calling collectives cannot hang the others forever. Every failure of the engine
// is a convtape::Error naming the call and the engine's own message.
//
// Ranks: rank() is this process's index in [0, world_size()); local_rank() its index among the
// processes of its machine (the GPU it should use).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace convtape::dist {

enum class ReduceOp { Sum, Mean, Max };
std::string to_string(ReduceOp op);

class ProcessGroupOptions {
 public:
  ProcessGroupOptions& timeout(std::chrono::milliseconds t) {
    timeout_ = t;
    return *this;
  }
  std::chrono::milliseconds timeout() const { return timeout_; }

 private:
  std::chrono::milliseconds timeout_ = std::chrono::minutes(30);
};

// True when this convtape was built with MPI (libconvtape_dist exists only then; the question is
// for programs that adapt, such as the training example).
bool available() noexcept;

// Starts MPI (thread level MPI_THREAD_MULTIPLE, or MPI_THREAD_SERIALIZED where the library offers
// no more: the engine is then only called from the group's thread) and the world process group.
// Without a launcher, a single process is a world of size 1. Calling it twice is an error; so is
// calling anything below before it. finalize() (or process exit) ends MPI.
void init(ProcessGroupOptions options = {});
bool is_initialized() noexcept;
// Waits for every collective the world group started, then ends MPI. After it, is_initialized()
// is false and init() may not be called again (MPI allows one initialisation per process).
void finalize();
// Ends every process of the job now, with the given exit code (MPI_Abort). For a rank that caught
// an error it cannot recover from and wants its peers gone at once rather than at their timeout.
[[noreturn]] void abort(int code = 1);

int rank();
int world_size();
int local_rank();
int local_world_size();

// The handle of a collective started asynchronously. wait() returns when it is complete (and its
// result is in the tensor), or throws its error (the engine's, or the timeout's). Waiting twice is
// fine; a default-constructed Work is complete.
class Work {
 public:
  struct State;
  Work() = default;
  explicit Work(std::shared_ptr<State> state) : state_(std::move(state)) {}
  void wait() const;
  bool is_completed() const;
  // The seconds between the request and its completion (0 while running): how long the engine took.
  double seconds() const;

 private:
  std::shared_ptr<State> state_;
};

class Engine;

// A group of processes with a fixed order of collectives. world() is every process of the job.
class ProcessGroup {
 public:
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  std::chrono::milliseconds timeout() const { return options_.timeout(); }

  // In place, on a float32, float64 or int64 tensor of any shape (0 elements included), on the
  // CPU (MPI) or a CUDA device (NCCL). Mean is Sum divided by size() (for int64, truncated).
  Work all_reduce_async(const Tensor& t, ReduceOp op = ReduceOp::Sum);
  void all_reduce(const Tensor& t, ReduceOp op = ReduceOp::Sum);
  // Every rank's t becomes root's.
  Work broadcast_async(const Tensor& t, int root = 0);
  void broadcast(const Tensor& t, int root = 0);
  // [size(), *t.shape]: every rank's t, in rank order (t must have the same shape everywhere).
  Tensor all_gather(const Tensor& t);
  Work all_gather_async(const Tensor& t, const Tensor& out);
  // Returns once every rank has called it.
  void barrier();
  // Waits for every collective started so far.
  void synchronize();

  // Collectives on bytes, for the library's own agreements (DDP's parameter check, the NCCL
  // bootstrap): every rank's bytes, in rank order (their lengths may differ).
  std::vector<std::vector<std::uint8_t>> all_gather_bytes(const std::vector<std::uint8_t>& bytes);
  void broadcast_bytes(std::vector<std::uint8_t>& bytes, int root);

  // The group of the whole job (init() makes it).
  static ProcessGroup& world();

  struct Impl;

 private:
  friend void init(ProcessGroupOptions);
  friend void finalize();
  ProcessGroup(int rank, int size, ProcessGroupOptions options, std::unique_ptr<Impl> impl);

  Work submit(const char* op, const Tensor& t, std::vector<Tensor> keep,
              std::function<void(Engine&)> body);
  void check(const char* op, const Tensor& t, bool allow_int) const;

  int rank_, size_;
  ProcessGroupOptions options_;
  std::unique_ptr<Impl> impl_;
};

// The world group's collectives.
inline Work all_reduce_async(const Tensor& t, ReduceOp op = ReduceOp::Sum) {
  return ProcessGroup::world().all_reduce_async(t, op);
}
inline void all_reduce(const Tensor& t, ReduceOp op = ReduceOp::Sum) {
  ProcessGroup::world().all_reduce(t, op);
}
inline void broadcast(const Tensor& t, int root = 0) {
  ProcessGroup::world().broadcast(t, root);
}
inline Tensor all_gather(const Tensor& t) {
  return ProcessGroup::world().all_gather(t);
}
inline void barrier() {
  ProcessGroup::world().barrier();
}

// The sum over ranks of x, on the tape: its gradient is the sum over ranks of the output's
// gradient (each rank's loss depends on every rank's x). SyncBatchNorm's statistics use it.
Tensor all_reduce_sum(const Tensor& x, ProcessGroup& group = ProcessGroup::world());

}  // namespace convtape::dist
