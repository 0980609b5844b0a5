// The Winograd kernels' accuracy contract (cpu/conv_winograd.h), shared by their tests
// (tests/cpu/conv_winograd_test.cpp, tests/cpu/conv_winograd_axes_test.cpp): test data in three
// value ranges, and the normalised error of a float32 result against a float64 reference.
// With L the reduction length of one output and P the largest product magnitude max|a| max|b| of
// its operands, the contract is
//   |r - e| <= factor * 1e-5 * sqrt(L) * P + 1e-4 * |e|
// i.e. REFERENCE.md's float32 tolerance (rtol 1e-4, atol 1e-5 scaled with sqrt(L)), with atol
// taken relative to the operands' scale and widened by the measured Winograd factor.
// Also shared: the 2-D test cases and their geometry, and the weight gradients' determinism check.
#pragma once

#include <omp.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "core/kernel_args.h"

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

// A 2-D case: batch, groups, channels in and out, input extent, padding per side, bias.
struct Case {
  std::int64_t n, groups, c, k, h, w;
  std::int64_t pad_top, pad_left, pad_bottom, pad_right;
  bool bias;
};

// Its geometry with kernel x kernel taps and stride `stride` on both axes.
inline convtape::ConvGeometry case_geometry(const Case& t, std::int64_t kernel,
                                            std::int64_t stride) {
  convtape::ConvGeometry g;
  g.batch = t.n;
  g.channels = t.c;
  g.out_channels = t.k;
  g.groups = t.groups;
  g.in = {t.h, t.w};
  g.out = {(t.h + t.pad_top + t.pad_bottom - kernel) / stride + 1,
           (t.w + t.pad_left + t.pad_right - kernel) / stride + 1};
  g.kernel = {kernel, kernel};
  g.stride = {stride, stride};
  g.dilation = {1, 1};
  g.input_dilation = {1, 1};
  g.pad_lo = {t.pad_top, t.pad_left};
  return g;
}

// A weight gradient `grad(dy, x, dw)` of geometry g at 1 and at 3 threads (the caller sets
// deterministic mode): the same bits, and not all zero.
template <class Grad>
void check_deterministic(const convtape::ConvGeometry& g, Grad&& grad, std::mt19937& rng) {
  const auto x =
      values(static_cast<std::size_t>(g.batch * g.channels * g.in_numel()), Range::Unit, rng);
  const auto dy =
      values(static_cast<std::size_t>(g.batch * g.out_channels * g.out_numel()), Range::Unit, rng);
  const int before = omp_get_max_threads();
  std::vector<float> one(
      static_cast<std::size_t>(g.out_channels * g.group_channels() * g.kernel_numel()));
  std::vector<float> many(one.size());
  omp_set_num_threads(1);
  grad(dy.data(), x.data(), one.data());
  omp_set_num_threads(3);
  grad(dy.data(), x.data(), many.data());
  omp_set_num_threads(before);
  CHECK(one == many);
  CHECK(std::any_of(one.begin(), one.end(), [](float v) { return v != 0.0f; }));
}

}  // namespace ct_test
