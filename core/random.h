// Seedable random numbers. A Generator is a 64-bit Mersenne Twister with portable uniform and
// normal transforms (24/53-bit mantissas, Box-Muller), so a seed gives the same numbers with any
// compiler or standard library. manual_seed() reseeds the default generator used by the factories.
//
// Threads: as in PyTorch, there is one process-wide default generator guarded by a mutex, not one
// per thread, so that a program that seeds in main and draws in a worker stays reproducible. The
// draw methods themselves are not synchronised (a lock per element would cost more than the draw);
// every library function that draws a tensor (rand, randn, uniform, normal, randint, dropout, the
// initialisers) holds the generator's lock() for the whole tensor, so a tensor's values are always
// one contiguous run of the stream. Two threads drawing from one generator get disjoint runs in an
// order the scheduler decides; give each thread its own Generator for reproducible threaded draws.
// Code that calls uniform01() & co. directly on a generator other threads use holds lock() itself.
#pragma once

#include <cstdint>
#include <mutex>
#include <random>

namespace convtape {

class Generator {
 public:
  explicit Generator(std::uint64_t initial_seed = 0x5eed) { seed(initial_seed); }
  // A copy continues the same stream on its own; the source is read under its lock.
  Generator(const Generator& other);
  Generator& operator=(const Generator& other);

  void seed(std::uint64_t value) {
    engine_.seed(value);
    has_spare_ = false;
  }
  std::uint64_t next_u64() { return engine_(); }
  // Uniform in [0, 1) with 53 random bits.
  double uniform01() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }
  // Standard normal (Box-Muller, pairs cached).
  double normal01();
  // Uniform integer in [lo, hi).
  std::int64_t integer(std::int64_t lo, std::int64_t hi);

  // Exclusive use of the stream: hold it across a whole tensor's draws (not recursive).
  [[nodiscard]] std::unique_lock<std::mutex> lock() const { return std::unique_lock(mutex_); }

 private:
  std::mt19937_64 engine_;
  bool has_spare_ = false;
  double spare_ = 0.0;
  mutable std::mutex mutex_;
};

// The generator the factories use when none is given (process-wide, see above).
Generator& default_generator();
// Reseeds the default generator under its lock.
void manual_seed(std::uint64_t seed);

}  // namespace convtape
