// The Winograd kernels' accuracy contract (cpu/conv_winograd.h), shared by their tests
// (tests/cpu/conv_winograd_test.cpp, tests/cpu/conv_winograd_axes_test.cpp): test data in three
// value ranges, and the normalised error of a float32 result against a float64 reference.
// With L the reduction length of one output and P the largest product magnitude max|a| max|b| of
// its operands, the contract is
//   |r - e| <= factor * 1e-5 * sqrt(L) * P + 1e-4 * |e|
// i.e. REFERENCE.md's float32 tolerance (rtol 1e-4, atol 1e-5 scaled with sqrt(L)), with atol
// taken relative to the operands' scale and widened by the measured Winograd factor.
#pragma once

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace ct_test {

enum class Range { Unit, Large, Integer };  // |v| <= 1, |v| <= 1e3, integers in [-4, 4]

inline std::vector<float> values(std::size_t n, Range range, std::mt19937& rng) {
  std::vector<float> v(n);
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
  std::uniform_int_distribution<int> small(-4, 4);
  for (auto& x : v) {
    switch (range) {
      case Range::Unit:
        x = unit(rng);
        break;
      case Range::Large:
        x = 1000.0f * unit(rng);
        break;
      case Range::Integer:
        x = static_cast<float>(small(rng));
        break;
    }
  }
  return v;
}

inline double max_abs(const std::vector<float>& v) {
  double m = 0;
  for (float x : v) m = std::max(m, std::abs(double(x)));
  return m;
}

// Largest |r - e| / (1e-5 sqrt(L) P) over the elements, or infinity where an element breaks the
// contract (NaN included).
inline double normalised_error(const std::vector<float>& r, const std::vector<double>& e,
                               double length, double product, double factor) {
  double worst = 0;
  const double unit = 1e-5 * std::sqrt(length) * product;
  for (std::size_t i = 0; i < r.size(); ++i) {
    const double diff = std::abs(double(r[i]) - e[i]);
    if (!(diff <= factor * unit + 1e-4 * std::abs(e[i]))) return INFINITY;
    worst = std::max(worst, diff / (unit > 0 ? unit : 1));
  }
  return worst;
}

}  // namespace ct_test
