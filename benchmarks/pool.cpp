// benchmarks/pool: convtape's CPU pooling against PyTorch on a suite of pooling layers from common
// networks, forward and forward+backward (dx), float32, at 1 and 2 threads. The references are the
// newest PyTorch (<repo>/.bench-venv, made by scripts/bench-env, or --torch PATH) and Debian's
// PyTorch 1.13 (/usr/bin/python3) where it is installed (--no-old skips it); each runs in a child
// process started by this same command (scripts/bench_pool_torch.py), once per thread count.
// Each shape is validated against a direct float64 loop over the windows on a small batch first;
// then both sides are timed alike (the best of three windows' medians, see bench_util.h; 0.6 s per
// measurement, 0.3 s with --quick, which also divides the batches by 4) and the table prints
// microseconds per call, the ratio PyTorch's time / ours (speed: above 1 is faster) per shape and
// reference, and the geometric means. --isa picks our ISA path (cpu::set_isa).
//   usage: pool [--quick] [--threads 1,2] [--only name,name] [--torch PATH] [--no-old]
//               [--isa avx512|avx2|portable]
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

using Timings = std::map<std::string, std::pair<double, double>>;

Timings run_torch(const ct_bench::Reference& ref, int threads, const std::vector<Case>& suite,
                  double min_seconds) {
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
  return ct_bench::run_reference_suite(ref.python,
                                       std::string(CT_SOURCE_DIR) + "/scripts/bench_pool_torch.py",
                                       threads, input, "cpu", min_seconds);
}

}  // namespace

int main(int argc, char** argv) {
  const ct_bench::SuiteArgs args = ct_bench::parse_suite_args(argc, argv);
  if (!args.error.empty() || args.device != "cpu" || args.extra || args.no_extra ||
      args.rounds != 1) {
    std::printf("pool: %s\n",
                args.error.empty()
                    ? "expected the options of its usage (CPU only, no --extra, one round), got "
                      "--device, --extra, --no-extra or --rounds"
                    : args.error.c_str());
    return 2;
  }
  if (!ct_bench::apply_isa("pool", args.isa)) return 2;
  const auto refs = ct_bench::resolve_references("pool", args.python, args.no_old, "cpu");
  if (!refs) return 2;
  std::vector<Case> suite;
  for (const auto& c : kSuite)
    if (args.selected(c.name)) suite.push_back(c);
  if (args.quick)
    for (auto& c : suite) c.n = std::max<std::int64_t>(1, c.n / 4);
  ct_bench::print_header("bench_pool", args.threads, *refs, args.no_old);
  int failures = 0;
  for (const auto& c : suite) failures += validate(c) ? 0 : 1;
  std::printf("validation: %d of %zu shapes failed\n", failures, suite.size());

  for (int threads : args.threads) {
    std::vector<Timings> torch;
    for (const auto& r : *refs) torch.push_back(run_torch(r, threads, suite, args.min_seconds()));
    omp_set_num_threads(threads);
    std::printf(
        "\npool suite, float32, %d thread%s: microseconds per call; /X = PyTorch X's time / ours "
        "(above 1: ours faster)\n",
        threads, threads == 1 ? "" : "s");
    std::string head = fmt::format("{:<16} | {:>9}", "shape", "fwd");
    for (const auto& r : *refs) head += fmt::format(" {:>9}", r.label);
    for (const auto& r : *refs)
      head += fmt::format(" {:>6}", fmt::format("/{}", r.label.substr(2)));
    head += fmt::format(" | {:>9}", "fwd+bwd");
    for (const auto& r : *refs) head += fmt::format(" {:>9}", r.label);
    for (const auto& r : *refs)
      head += fmt::format(" {:>6}", fmt::format("/{}", r.label.substr(2)));
    std::printf("%s\n", head.c_str());
    std::vector<std::vector<double>> r_fwd(refs->size()), r_all(refs->size());
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
      const double t_fwd = ct_bench::best_window_median_seconds(
          [&] {
            NoGradGuard g;
            run(c, x0);
          },
          args.min_seconds());
      const double t_all = ct_bench::best_window_median_seconds(
          [&] {
            run(c, x).backward(dy);
            x.zero_grad();
          },
          args.min_seconds());
      std::string times_f, ratios_f, times_a, ratios_a;
      for (std::size_t i = 0; i < refs->size(); ++i) {
        const auto it = torch[i].find(c.name);
        if (it == torch[i].end()) {
          times_f += fmt::format(" {:>9}", "-");
          ratios_f += fmt::format(" {:>6}", "-");
          times_a += fmt::format(" {:>9}", "-");
          ratios_a += fmt::format(" {:>6}", "-");
          continue;
        }
        const double tf = it->second.first, ta = it->second.second;
        times_f += fmt::format(" {:9.1f}", tf * 1e6);
        ratios_f += fmt::format(" {:6.2f}", tf / t_fwd);
        times_a += fmt::format(" {:9.1f}", ta * 1e6);
        ratios_a += fmt::format(" {:6.2f}", ta / t_all);
        r_fwd[i].push_back(tf / t_fwd);
        r_all[i].push_back(ta / t_all);
      }
      std::printf("%-16s | %9.1f%s%s | %9.1f%s%s\n", c.name, t_fwd * 1e6, times_f.c_str(),
                  ratios_f.c_str(), t_all * 1e6, times_a.c_str(), ratios_a.c_str());
      std::fflush(stdout);
    }
    for (std::size_t i = 0; i < refs->size(); ++i)
      if (r_fwd[i].empty())
        std::printf("geomean %s/ours: no rows (the reference printed nothing)\n",
                    (*refs)[i].label.c_str());
      else
        std::printf(
            "geomean %s/ours (%zu rows, %d thread%s): forward %.2f, forward+backward %.2f\n",
            (*refs)[i].label.c_str(), r_fwd[i].size(), threads, threads == 1 ? "" : "s",
            ct_bench::geomean(r_fwd[i]), ct_bench::geomean(r_all[i]));
  }
  return failures;
}
