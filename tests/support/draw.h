// Draw: fixed-seed draws for the seeded test sweeps, from std::mt19937 reduced by modulo rather
// than through a distribution, so that every standard library yields the same configurations.
#pragma once

#include <cstdint>
#include <random>

#include "core/shape.h"

namespace ct_test {

class Draw {
 public:
  explicit Draw(std::uint32_t seed) : rng_(seed) {}
  // An integer in [lo, hi].
  std::int64_t operator()(std::int64_t lo, std::int64_t hi) {
    return lo + static_cast<std::int64_t>(rng_() % static_cast<std::uint32_t>(hi - lo + 1));
  }
  bool one_in(std::int64_t n) { return (*this)(1, n) == 1; }
  // A real in [-1, 1).
  double real() { return static_cast<double>(rng_()) / 4294967296.0 * 2.0 - 1.0; }
  // One value per dim, or (one time in three) a single value that an op applies to every dim.
  convtape::Shape per_dim(std::int64_t dims, std::int64_t lo, std::int64_t hi) {
    if (one_in(3)) return {(*this)(lo, hi)};
    convtape::Shape v;
    for (std::int64_t d = 0; d < dims; ++d) v.push_back((*this)(lo, hi));
    return v;
  }

 private:
  std::mt19937 rng_;
};

}  // namespace ct_test
