// Process-wide settings shared by both backends.
//   deterministic()  bit-reproducible results: the same program on the same inputs gives the same
//                    bits run after run. On the CPU that also holds across thread counts (1 and N
//                    OpenMP threads agree bit for bit): every kernel splits its reductions into a
//                    fixed number of parts (cpu/parallel.h), each summed in order and combined in
//                    index order, whatever the team size. On CUDA only algorithms cuDNN reports as
//                    deterministic are used. Off by default (the CPU's default mode is already
//                    reproducible run to run at a fixed thread count, see docs/architecture.md).
//                    CONVTAPE_DETERMINISTIC=1 (also true/on/yes) turns it on; the variable is read
//                    once, at the first query. cuda::set_deterministic is the same switch.
// The deterministic flag is an atomic: any thread may change it, though a kernel already running
// keeps the mode it started with.
#pragma once

namespace convtape {

void set_deterministic(bool on);
bool deterministic();

// The OpenMP threads the CPU kernels use from the calling thread (OpenMP's rule, as PyTorch's
// set_num_threads: the setting belongs to the thread that makes it; threads started later begin
// with OMP_NUM_THREADS, or the core count). Refuses n < 1.
void set_num_threads(int n);
int num_threads();

// Sets deterministic mode for a scope and restores the previous mode on exit (tests, benchmarks).
class DeterministicGuard {
 public:
  explicit DeterministicGuard(bool on) : previous_(deterministic()) { set_deterministic(on); }
  ~DeterministicGuard() { set_deterministic(previous_); }
  DeterministicGuard(const DeterministicGuard&) = delete;
  DeterministicGuard& operator=(const DeterministicGuard&) = delete;

 private:
  bool previous_;
};

namespace detail {
// "1", "true", "on", "yes" (any case) -> true; "0", "false", "off", "no", "" -> false; anything
// else (or unset) -> fallback. The rule of every CONVTAPE_* on/off variable.
bool parse_env_flag(const char* text, bool fallback);
}  // namespace detail

}  // namespace convtape
