// Shared benchmark helpers: median wall times over repeated runs, the suites' command line, the
// PyTorch references (the newest PyTorch of <repo>/.bench-venv, made by scripts/bench-env, and
// Debian's python3-torch as a second, older reference), the header every benchmark prints (CPU,
// ISA path, threads, reference versions), and geometric means.
// Benchmarks validate first, then time, then print speeds and ratios to the references measured by
// the same command (the references run as child processes, one suite per thread count).
#pragma once

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cpu/isa.h"

#ifndef CT_SOURCE_DIR
#error "benchmarks need CT_SOURCE_DIR, the repository root (benchmarks/CMakeLists.txt defines it)"
#endif

namespace ct_bench {

// The median of times (the upper one of an even count), as every figure here takes it.
inline double median(std::vector<double> t) {
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

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
  return median(std::move(t));
}

// The smallest of `windows` medians, each over min_seconds / windows of calls. On a shared machine
// a whole timing window can land in a slow phase (another tenant, page-fault storms); the best
// window's median is the steadier figure. The reference scripts (scripts/bench_*_torch.py) time
// PyTorch the same way, with the same min_seconds, so that the ratio compares like with like.
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
  return {median(std::move(ta)), median(std::move(tb))};
}

inline std::vector<std::string> split_list(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(item);
  return out;
}

inline std::string join_ints(const std::vector<int>& v) {
  std::string s;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(v[i]);
  }
  return s;
}

// Debian's PyTorch (python3-torch, 1.13): the second reference, where it is installed.
inline constexpr const char* kDebianPython = "/usr/bin/python3";

// The newest PyTorch's interpreter, in the virtual environment scripts/bench-env makes.
inline std::string venv_python() {
  return std::string(CT_SOURCE_DIR) + "/.bench-venv/bin/python";
}

// One PyTorch reference: its interpreter and what it reported about itself.
struct Reference {
  std::string python;
  std::string version;  // torch.__version__
  std::string detail;   // "oneDNN yes, MKL yes, CPU capability AVX512"
  std::string label;    // the column heading: "pt" and major.minor, e.g. "pt2.15"
  bool debian = false;  // the second reference (Debian's), not the one --torch chose
};

// Asks `python` for its torch version and build: nullopt when it is absent or cannot import torch.
inline std::optional<Reference> probe_torch(const std::string& python) {
  if (access(python.c_str(), X_OK) != 0) return std::nullopt;
  const std::string cmd =
      "'" + python +
      "' -c 'import torch; b = torch.backends; "
      "cap = getattr(getattr(b, \"cpu\", None), \"get_cpu_capability\", lambda: \"-\")(); "
      "print(torch.__version__, int(b.mkldnn.is_available()), int(b.mkl.is_available()), cap)'"
      " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return std::nullopt;
  char line[512] = {};
  const bool got = std::fgets(line, sizeof(line), p) != nullptr;
  const int status = pclose(p);
  if (!got || status != 0) return std::nullopt;
  std::istringstream ss(line);
  Reference r;
  int dnnl = 0, mkl = 0;
  std::string cap;
  if (!(ss >> r.version >> dnnl >> mkl >> cap)) return std::nullopt;
  r.python = python;
  r.detail = std::string("oneDNN ") + (dnnl ? "yes" : "no") + ", MKL " + (mkl ? "yes" : "no") +
             ", CPU capability " + cap;
  // "2.15.0+cu132" -> "pt2.15"
  const auto first = r.version.find('.');
  const auto second = first == std::string::npos ? first : r.version.find('.', first + 1);
  r.label = "pt" + r.version.substr(0, second);
  return r;
}

// The command line shared by the suite benchmarks (conv, pool):
//   [--quick] [--threads 1,2] [--only name,name] [--torch PATH] [--no-old]
//   [--isa avx512|avx2|portable] [--device cpu|cuda] [--extra] [--no-extra]
struct SuiteArgs {
  bool quick = false;
  std::string device = "cpu";  // "cuda": our side runs on cuda:0, the reference on PyTorch's GPU
  std::string python;          // --torch; empty: the newest PyTorch of .bench-venv
  bool no_old = false;         // --no-old: skip Debian's PyTorch
  std::string isa;             // --isa; empty: the library's choice (CONVTAPE_ISA or the CPU's)
  bool extra = false, no_extra = false;  // benchmarks/conv's extra shapes
  std::vector<int> threads{1, 2};
  std::vector<std::string> only;  // a subset of the suite by name; empty for all
  int rounds = 1;                 // --rounds: whole measurements, alternating sides (conv)
  std::string error;              // an unknown option or a bad value
  bool selected(const std::string& name) const {
    return only.empty() || std::find(only.begin(), only.end(), name) != only.end();
  }
  // Seconds of timed calls per measurement (split over three windows), on both sides alike.
  double min_seconds() const { return quick ? 0.3 : 0.6; }
};

// Parses the options that every benchmark shares; returns false for an option it does not know
// (the caller may know it). `i` moves past a consumed value.
inline bool parse_common_arg(int argc, char** argv, int& i, SuiteArgs& a) {
  const std::string arg = argv[i];
  const bool has_value = i + 1 < argc;
  if (arg == "--quick") {
    a.quick = true;
  } else if (arg == "--no-old") {
    a.no_old = true;
  } else if ((arg == "--torch" || arg == "--isa" || arg == "--threads") && !has_value) {
    a.error = "expected a value after " + arg + ", got none";
  } else if (arg == "--torch") {
    a.python = argv[++i];
  } else if (arg == "--isa") {
    a.isa = argv[++i];
  } else if (arg == "--threads") {
    a.threads.clear();
    for (const std::string& t : split_list(argv[++i])) {
      const int n = std::atoi(t.c_str());
      if (n < 1) a.error = "expected --threads of positive integers, got " + t;
      a.threads.push_back(n);
    }
    if (a.threads.empty()) a.error = "expected --threads to list thread counts, got none";
  } else {
    return false;
  }
  return true;
}

inline SuiteArgs parse_suite_args(int argc, char** argv) {
  SuiteArgs a;
  for (int i = 1; i < argc && a.error.empty(); ++i) {
    if (parse_common_arg(argc, argv, i, a)) continue;
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--extra") {
      a.extra = true;
    } else if (arg == "--no-extra") {
      a.no_extra = true;
    } else if (arg == "--only" && has_value) {
      a.only = split_list(argv[++i]);
    } else if (arg == "--device" && has_value) {
      a.device = argv[++i];
    } else if (arg == "--rounds" && has_value) {
      const std::string v = argv[++i];
      a.rounds = std::atoi(v.c_str());
      if (a.rounds < 1 || a.rounds > 99) a.error = "expected --rounds between 1 and 99, got " + v;
    } else {
      a.error = "expected a known option (see the usage at the top of the source), got " + arg;
    }
  }
  return a;
}

// Applies --isa (cpu::set_isa); false with a message for a name that is not a path.
inline bool apply_isa(const char* tool, const std::string& name) {
  if (name.empty()) return true;
  const auto path = convtape::cpu::parse_isa(name);
  if (!path) {
    std::printf("%s: expected --isa avx512, avx2 or portable, got %s\n", tool, name.c_str());
    return false;
  }
  convtape::cpu::set_isa(*path);
  if (convtape::cpu::isa() != *path)
    std::printf("%s: --isa %s lowered to %s, the best path this CPU runs\n", tool, name.c_str(),
                convtape::cpu::isa_name(convtape::cpu::isa()));
  return true;
}

// The references to time against: the newest PyTorch (--torch, else .bench-venv's interpreter),
// then Debian's where it is installed, differs from the first and --no-old is absent (and only on
// the CPU: Debian's build has no CUDA). nullopt, with a message saying what to do, when the first
// is unusable: a benchmark against a reference that silently is not there would mislead.
inline std::optional<std::vector<Reference>> resolve_references(const char* tool,
                                                                const std::string& python,
                                                                bool no_old,
                                                                const std::string& device) {
  const std::string main_python = python.empty() ? venv_python() : python;
  const auto main = probe_torch(main_python);
  if (!main) {
    if (python.empty())
      std::printf(
          "%s: the reference PyTorch is missing: %s does not run `import torch`.\n"
          "  Install it with %s/scripts/bench-env (the newest PyTorch from PyPI, in .bench-venv),\n"
          "  or pass --torch PATH to use another Python with torch (--torch %s: Debian's).\n",
          tool, main_python.c_str(), CT_SOURCE_DIR, kDebianPython);
    else
      std::printf("%s: expected --torch to name a Python that imports torch, got %s\n", tool,
                  main_python.c_str());
    return std::nullopt;
  }
  std::vector<Reference> refs{*main};
  if (!no_old && device == "cpu" && main_python != kDebianPython) {
    if (auto old = probe_torch(kDebianPython); old && old->version != main->version) {
      old->debian = true;
      refs.push_back(*old);
    }
  }
  return refs;
}

// The header every benchmark prints: what ran, on which CPU, with which ISA path and threads, and
// against which references.
inline void print_header(const char* tool, const std::vector<int>& threads,
                         const std::vector<Reference>& refs, bool no_old) {
  namespace cpu = convtape::cpu;
  std::printf("%s\n", tool);
  std::printf("CPU: %s (%ld logical CPUs); ISA path: %s (native %s); threads: %s\n",
              cpu::cpu_model().c_str(), sysconf(_SC_NPROCESSORS_ONLN), cpu::isa_name(cpu::isa()),
              cpu::isa_name(cpu::native_isa()), join_ints(threads).c_str());
  for (const Reference& r : refs)
    std::printf("reference %-7s PyTorch %s (%s) via %s\n", r.label.c_str(), r.version.c_str(),
                r.detail.c_str(), r.python.c_str());
  const bool has_old =
      std::any_of(refs.begin(), refs.end(), [](const Reference& r) { return r.debian; });
  if (!refs.empty() && !has_old && !no_old && refs[0].python != kDebianPython)
    std::printf("(Debian's PyTorch, %s, not present or the same version: one reference)\n",
                kDebianPython);
  std::fflush(stdout);
}

// Runs a reference script as `python script threads device min_seconds < suite` (the suite
// written to a temporary file, one case per line) and collects what it prints per case: "name
// fwd_seconds fwdbwd_seconds ...". A script that fails gives what it printed before failing (the
// rows it did not reach print "-").
// The environment a reference runs in: glibc's mmap and trim thresholds raised, so that PyTorch's
// large tensors come from a warm heap instead of a fresh mmap (page faults and kernel zeroing on
// every call: its forward+backward of a 1x1 conv took 11-13.5 ms instead of 5.0, a depthwise
// 6.6-8.2 instead of 2.4, and which one a run got depended on the sizes freed before, so on the
// order of the shapes). This is what the allocator advice of PyTorch's tuning guide buys; convtape
// keeps its own cache of large blocks (core/storage.cpp) for the same reason.
inline const char* reference_env() {
  return "MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=4294967296 ";
}

inline std::map<std::string, std::pair<double, double>> run_reference_suite(
    const std::string& python, const std::string& script, int threads, const std::string& suite,
    const std::string& device, double min_seconds) {
  const std::string file = "/tmp/convtape_bench_suite_" + std::to_string(getpid()) + "_" + device +
                           "_" + std::to_string(threads) + ".txt";
  if (FILE* f = std::fopen(file.c_str(), "w")) {
    std::fputs(suite.c_str(), f);
    std::fclose(f);
  }
  const std::string cmd = std::string(reference_env()) + "'" + python + "' " + script + " " +
                          std::to_string(threads) + " " + device + " " +
                          std::to_string(min_seconds) + " < " + file;
  std::map<std::string, std::pair<double, double>> out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p) {
    char line[512];
    while (std::fgets(line, sizeof(line), p)) {
      std::istringstream ss(line);
      std::string name;
      double fwd = 0, all = 0;
      if (ss >> name >> fwd >> all) out[name] = {fwd, all};
    }
    pclose(p);
  }
  std::remove(file.c_str());
  return out;
}

inline double geomean(const std::vector<double>& v) {
  double s = 0.0;
  for (double x : v) s += std::log(x);
  return v.empty() ? 0.0 : std::exp(s / static_cast<double>(v.size()));
}

}  // namespace ct_bench
