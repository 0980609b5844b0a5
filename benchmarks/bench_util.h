// Shared benchmark helpers: median wall time over repeated runs, thread control, and printing.
// Benchmarks validate first, then time, then print GFLOP/s and the ratio to the reference measured
// in the same process.
#pragma once

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <sstream>
#include <string>
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

// The command line shared by the suite benchmarks:
//   [--quick] [--threads 1,2] [--only name,name] [--torch /usr/bin/python3] [--device cpu|cuda]
struct SuiteArgs {
  bool quick = false;
  std::string device = "cpu";  // "cuda": our side runs on cuda:0, the reference on PyTorch's GPU
  std::string python = "/usr/bin/python3";
  std::vector<int> threads{1, 2};
  std::vector<std::string> only;  // a subset of the suite by name; empty for all
  bool selected(const std::string& name) const {
    return only.empty() || std::find(only.begin(), only.end(), name) != only.end();
  }
};

inline std::vector<std::string> split_list(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(item);
  return out;
}

inline SuiteArgs parse_suite_args(int argc, char** argv) {
  SuiteArgs a;
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (!std::strcmp(argv[i], "--quick")) a.quick = true;
    if (!std::strcmp(argv[i], "--only") && has_value) a.only = split_list(argv[++i]);
    if (!std::strcmp(argv[i], "--torch") && has_value) a.python = argv[++i];
    if (!std::strcmp(argv[i], "--device") && has_value) a.device = argv[++i];
    if (!std::strcmp(argv[i], "--threads") && has_value) {
      a.threads.clear();
      for (const std::string& t : split_list(argv[++i])) a.threads.push_back(std::stoi(t));
    }
  }
  return a;
}

// Runs a reference script as `python script threads device < suite` (the suite written to a
// temporary file, one case per line) and collects what it prints per case: "name fwd_seconds
// fwdbwd_seconds ...". An absent Python or script gives an empty map (the tables then print no
// ratios and say so).
inline std::map<std::string, std::pair<double, double>> run_reference_suite(
    const std::string& python, const std::string& script, int threads, const std::string& suite,
    const std::string& device = "cpu") {
  const std::string file =
      "/tmp/convtape_bench_suite_" + device + "_" + std::to_string(threads) + ".txt";
  if (FILE* f = std::fopen(file.c_str(), "w")) {
    std::fputs(suite.c_str(), f);
    std::fclose(f);
  }
  const std::string cmd =
      python + " " + script + " " + std::to_string(threads) + " " + device + " < " + file;
  std::map<std::string, std::pair<double, double>> out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char line[512];
  while (std::fgets(line, sizeof(line), p)) {
    std::istringstream ss(line);
    std::string name;
    double fwd = 0, all = 0;
    if (ss >> name >> fwd >> all) out[name] = {fwd, all};
  }
  pclose(p);
  return out;
}

inline double geomean(const std::vector<double>& v) {
  double s = 0.0;
  for (double x : v) s += std::log(x);
  return v.empty() ? 0.0 : std::exp(s / static_cast<double>(v.size()));
}

}  // namespace ct_bench
