// Shared benchmark helpers: median wall time over repeated runs, thread control, and printing.
// Benchmarks validate first, then time, then print GFLOP/s and the ratio to the reference measured
// in the same process.
#pragma once

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <utility>
#include <vector>

namespace ct_bench {

// Median seconds per call of fn: a warm-up call, then repetitions until min_seconds have passed
// (at least min_reps, at most max_reps).
inline double median_seconds(const std::function<void()>& fn, double min_seconds = 0.3,
                             int min_reps = 5, int max_reps = 200) {
  fn();
  std::vector<double> t;
  double total = 0.0;
  while ((total < min_seconds || static_cast<int>(t.size()) < min_reps) &&
         static_cast<int>(t.size()) < max_reps) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    t.push_back(s);
    total += s;
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// The smallest of `windows` medians, each over min_seconds / windows of calls. On a shared machine
// a whole timing window can land in a slow phase (another tenant, page-fault storms); the best
// window's median is the steadier figure. benchmarks/conv times PyTorch the same way
// (scripts/bench_conv_torch.py), so that the ratio compares like with like.
inline double best_window_median_seconds(const std::function<void()>& fn, double min_seconds = 0.6,
                                         int windows = 3) {
  double best = 0.0;
  for (int w = 0; w < windows; ++w) {
    const double m = median_seconds(fn, min_seconds / windows, 3, 100);
    best = w == 0 ? m : std::min(best, m);
  }
  return best;
}

// Median seconds per call of two functions timed in alternating blocks (a-block, b-block, repeated
// `rounds` times), so that the machine's drifting load falls on both alike. Blocks rather than
// single calls: each library's idle worker threads spin for a while after a call and would steal
// the cores from the other one. The first call of each block is a warm-up and is not counted.
inline std::pair<double, double> median_seconds_pair(const std::function<void()>& a,
                                                     const std::function<void()>& b,
                                                     double min_seconds = 0.6, int rounds = 4) {
  std::vector<double> ta, tb;
  auto block = [&](const std::function<void()>& f, std::vector<double>& out) {
    f();
    double total = 0.0;
    for (int i = 0; i < 200 && (total < min_seconds / (2 * rounds) || i < 3); ++i) {
      const auto start = std::chrono::steady_clock::now();
      f();
      const double s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      out.push_back(s);
      total += s;
    }
  };
  for (int r = 0; r < rounds; ++r) {
    block(a, ta);
    block(b, tb);
  }
  std::sort(ta.begin(), ta.end());
  std::sort(tb.begin(), tb.end());
  return {ta[ta.size() / 2], tb[tb.size() / 2]};
}

inline double geomean(const std::vector<double>& v) {
  double s = 0.0;
  for (double x : v) s += std::log(x);
  return v.empty() ? 0.0 : std::exp(s / static_cast<double>(v.size()));
}

}  // namespace ct_bench
