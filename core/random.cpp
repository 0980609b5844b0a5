// Portable random transforms and the process-wide default generator (locked, see random.h).
#include "core/random.h"

#include <cmath>
#include <numbers>

#include "core/error.h"

namespace convtape {

Generator::Generator(const Generator& other) {
  const std::lock_guard<std::mutex> lock(other.mutex_);
  engine_ = other.engine_;
  has_spare_ = other.has_spare_;
  spare_ = other.spare_;
}

Generator& Generator::operator=(const Generator& other) {
  if (this == &other) return *this;
  std::scoped_lock lock(mutex_, other.mutex_);
  engine_ = other.engine_;
  has_spare_ = other.has_spare_;
  spare_ = other.spare_;
  return *this;
}

double Generator::normal01() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  double u1 = 0.0;
  while (u1 <= 0.0) u1 = uniform01();  // log(0) is not finite
  const double u2 = uniform01();
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double theta = 2.0 * std::numbers::pi * u2;
  spare_ = r * std::sin(theta);
  has_spare_ = true;
  return r * std::cos(theta);
}

std::int64_t Generator::integer(std::int64_t lo, std::int64_t hi) {
  CT_CHECK(lo < hi, "randint: expected low < high, got low = {}, high = {}", lo, hi);
  // hi - lo in unsigned arithmetic: it exceeds INT64_MAX for ranges like [INT64_MIN, INT64_MAX).
  const std::uint64_t range = static_cast<std::uint64_t>(hi) - static_cast<std::uint64_t>(lo);
  // Rejection sampling keeps the draw unbiased.
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % range;
  std::uint64_t v = 0;
  do v = engine_();
  while (v >= limit);
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(lo) + v % range);  // modulo 2^64
}

Generator& default_generator() {
  static Generator g;
  return g;
}

void manual_seed(std::uint64_t seed) {
  Generator& g = default_generator();
  const auto lock = g.lock();
  g.seed(seed);
}

}  // namespace convtape
