// Seedable random numbers. A Generator is a 64-bit Mersenne Twister with portable uniform and
// normal transforms (24/53-bit mantissas, Box-Muller), so a seed gives the same numbers with any
// compiler or standard library. manual_seed() reseeds the default generator used by the factories.
#pragma once

#include <cstdint>
#include <random>

namespace convtape {

class Generator {
 public:
  explicit Generator(std::uint64_t initial_seed = 0x5eed) { seed(initial_seed); }
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

 private:
  std::mt19937_64 engine_;
  bool has_spare_ = false;
  double spare_ = 0.0;
};

// The generator the factories use when none is given.
Generator& default_generator();
void manual_seed(std::uint64_t seed);

}  // namespace convtape
