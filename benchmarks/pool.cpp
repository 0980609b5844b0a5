// benchmarks/pool: convtape's CPU pooling against PyTorch (Debian python3-torch) on a suite of
// pooling layers from common networks, forward and forward+backward (dx), float32, at 1 and 2
// threads. PyTorch runs in a child process started by this same command (scripts/
// bench_pool_torch.py). Each shape is validated against a direct float64 loop over the windows on
// a small batch first; then both sides are timed (the best of three windows' medians, see
// bench_util.h) and the table prints microseconds per call, the ratio ours / PyTorch in speed
// (PyTorch's time over ours: above 1 is faster) per shape, and the geometric means.
//   usage: pool [--quick] [--threads 1,2] [--only name,name] [--torch /usr/bin/python3]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <sstream>
#include <string>

#include "bench_util.h"
#include "convtape.h"

using namespace convtape;

namespace {

// op: "max", "avg" (kernel, stride, padding for every spatial dim; average counts the padding),
// "adaptive_avg" (output_size for every spatial dim) or "global_avg".
struct Case {
  const char* name;
  const char* op;
  std::int64_t n, c;
  Shape spatial;
  std::int64_t kernel, stride, pad, output_size;
};

const std::vector<Case> kSuite{
    {"fmnist_max2", "max", 64, 32, {28, 28}, 2, 2, 0, 0},
    {"resnet_stem_max3", "max", 16, 64, {112, 112}, 3, 2, 1, 0},
    {"avg2_s2", "avg", 16, 128, {56, 56}, 2, 2, 0, 0},
    {"avg3_s1_p1", "avg", 16, 64, {56, 56}, 3, 1, 1, 0},
    {"global_avg", "global_avg", 16, 512, {7, 7}, 0, 0, 0, 1},
    {"adaptive_avg7", "adaptive_avg", 16, 256, {14, 14}, 0, 0, 0, 7},
    {"max1d_k3_s2", "max", 32, 64, {1024}, 3, 2, 0, 0},
    {"max3d_2", "max", 4, 32, {16, 32, 32}, 2, 2, 0, 0},
};

Tensor run(const Case& c, const Tensor& x) {
  const std::string op = c.op;
  if (op == "max") return max_pool(x, PoolOptions(c.kernel).stride(c.stride).padding(c.pad));
  if (op == "avg") return avg_pool(x, PoolOptions(c.kernel).stride(c.stride).padding(c.pad));
  if (op == "adaptive_avg") return adaptive_avg_pool(x, {c.output_size});
  return global_avg_pool(x);
}

// Window of output o along a dim of size in: [lo, hi) of input coordinates, and the divisor's
// factor (PyTorch's count_include_pad rule for avg, the window size for adaptive).
void window(const Case& c, std::int64_t in, std::int64_t out, std::int64_t o, std::int64_t& lo,
            std::int64_t& hi, std::int64_t& factor) {
  const std::string op = c.op;
  if (op == "adaptive_avg" || op == "global_avg") {
    lo = o * in / out;
    hi = ((o + 1) * in + out - 1) / out;
    factor = hi - lo;
    return;
  }
  const std::int64_t start = o * c.stride - c.pad;
  factor = std::min(start + c.kernel, in + c.pad) - start;
  lo = std::max<std::int64_t>(start, 0);
  hi = std::min(start + c.kernel, in);
}

// Direct float64 reference on one sample: the validation step before timing.
bool validate(const Case& c) {
  manual_seed(5);
  Shape xs{1, c.c};
  xs.insert(xs.end(), c.spatial.begin(), c.spatial.end());
  const Tensor x = randn(xs);
  const Tensor y = run(c, x);
  const auto xv = x.to_vector<double>(), yv = y.to_vector<double>();
  const std::int64_t rank = static_cast<std::int64_t>(c.spatial.size());
  const Shape out(y.shape().begin() + 2, y.shape().end());
  const std::int64_t out_n = numel(out), in_n = numel(c.spatial);
  const bool is_max = std::string(c.op) == "max";
  double worst = 0;
  for (std::int64_t probe = 0; probe < 256; ++probe) {
    const std::int64_t ch = (probe * 7) % c.c, p = (probe * 7919) % out_n;
    std::int64_t lo[3], hi[3], div = 1, rem = p;
    for (std::int64_t d = rank - 1; d >= 0; --d) {
      std::int64_t f = 0;
      window(c, c.spatial[d], out[d], rem % out[d], lo[d], hi[d], f);
      div *= f;
      rem /= out[d];
    }
    double acc = is_max ? -INFINITY : 0.0;
    std::int64_t i[3] = {lo[0], rank > 1 ? lo[1] : 0, rank > 2 ? lo[2] : 0};
    for (i[0] = lo[0]; i[0] < hi[0]; ++i[0])
      for (i[1] = rank > 1 ? lo[1] : 0; i[1] < (rank > 1 ? hi[1] : 1); ++i[1])
        for (i[2] = rank > 2 ? lo[2] : 0; i[2] < (rank > 2 ? hi[2] : 1); ++i[2]) {
          std::int64_t off = 0;
          for (std::int64_t d = 0; d < rank; ++d) off = off * c.spatial[d] + i[d];
          const double v = xv[static_cast<std::size_t>(ch * in_n + off)];
          acc = is_max ? std::max(acc, v) : acc + v;
        }
    if (!is_max) acc /= double(div);
    worst = std::max(worst, std::abs(acc - yv[static_cast<std::size_t>(ch * out_n + p)]));
  }
  if (worst > 1e-5) {
    std::printf("VALIDATION FAILED for %s: |diff| %.3g\n", c.name, worst);
    return false;
  }
  return true;
}

std::map<std::string, std::pair<double, double>> run_torch(const std::string& python, int threads,
                                                           const std::vector<Case>& suite) {
  std::string input;
  for (const auto& c : suite) {
    std::string sp;
    for (std::size_t i = 0; i < c.spatial.size(); ++i) {
      if (i) sp += ',';
      sp += std::to_string(c.spatial[i]);
    }
    input += fmt::format("{} {} {} {} {} {} {} {} {}\n", c.name, c.op, c.n, c.c, sp, c.kernel,
                         c.stride, c.pad, c.output_size);
  }
  return ct_bench::run_reference_suite(
      python, std::string(CT_SOURCE_DIR) + "/scripts/bench_pool_torch.py", threads, input);
}

}  // namespace

int main(int argc, char** argv) {
  const ct_bench::SuiteArgs args = ct_bench::parse_suite_args(argc, argv);
  std::vector<Case> suite;
  for (const auto& c : kSuite)
    if (args.selected(c.name)) suite.push_back(c);
  if (args.quick)
    for (auto& c : suite) c.n = std::max<std::int64_t>(1, c.n / 4);
  int failures = 0;
  for (const auto& c : suite) failures += validate(c) ? 0 : 1;
  std::printf("validation: %d of %zu shapes failed\n", failures, suite.size());

  for (int threads : args.threads) {
    const auto torch = run_torch(args.python, threads, suite);
    omp_set_num_threads(threads);
    std::printf(
        "\npool suite, float32, %d thread%s: microseconds per call (ratio = PyTorch time / "
        "ours, above 1 is faster)\n",
        threads, threads == 1 ? "" : "s");
    std::printf("%-16s | %9s %9s %6s | %9s %9s %6s\n", "shape", "fwd", "torch", "ratio", "fwd+bwd",
                "torch", "ratio");
    std::vector<double> r_fwd, r_all;
    for (const auto& c : suite) {
      manual_seed(0);
      Shape xs{c.n, c.c};
      xs.insert(xs.end(), c.spatial.begin(), c.spatial.end());
      const Tensor x0 = randn(xs);
      Tensor x = x0.clone().requires_grad_();
      Shape out_shape;
      {
        NoGradGuard g;
        out_shape = run(c, x0).shape();
      }
      const Tensor dy = ones(out_shape);
      const double t_fwd = ct_bench::best_window_median_seconds([&] {
        NoGradGuard g;
        run(c, x0);
      });
      const double t_all = ct_bench::best_window_median_seconds([&] {
        run(c, x).backward(dy);
        x.zero_grad();
      });
      const auto it = torch.find(c.name);
      if (it == torch.end()) {
        std::printf("%-16s | %9.1f %9s %6s | %9.1f %9s %6s\n", c.name, t_fwd * 1e6, "-", "-",
                    t_all * 1e6, "-", "-");
        continue;
      }
      const double tf = it->second.first, ta = it->second.second;
      r_fwd.push_back(tf / t_fwd);
      r_all.push_back(ta / t_all);
      std::printf("%-16s | %9.1f %9.1f %6.2f | %9.1f %9.1f %6.2f\n", c.name, t_fwd * 1e6, tf * 1e6,
                  tf / t_fwd, t_all * 1e6, ta * 1e6, ta / t_all);
      std::fflush(stdout);
    }
    if (r_fwd.empty()) {
      std::printf("PyTorch reference unavailable (%s with torch); ratios not printed\n",
                  args.python.c_str());
    } else {
      std::printf("geometric mean ratio, %d thread%s: forward %.2f, forward+backward %.2f\n",
                  threads, threads == 1 ? "" : "s", ct_bench::geomean(r_fwd),
                  ct_bench::geomean(r_all));
    }
  }
  return failures;
}
