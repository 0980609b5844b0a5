// benchmarks/correlation: convtape's CPU correlation (FlowNet cost volume) against a direct-loop
// reference written here from the definition in ops/correlation.h: NCHW loops over (sample, output
// row, column, displacement, channel, patch) for the forward pass, parallel over (sample, row);
// over (channel, sample, displacement, position, patch) for the backward pass, parallel over
// channels so that the scatter into df1 / df2 never races. Both are float32.
// First the fast path is validated against the reference (forward, df1, df2) on small cases;
// then FlowNetC's configuration (f1, f2 [4, 256, 48, 64], k 1, max_displacement 20, stride1 1,
// stride2 2, padding 20 -> [4, 441, 48, 64]) is timed forward and forward+backward at each thread
// count (best of three windows' medians, see bench_util.h). The reference, far slower, is timed on
// one sample (a single run with --quick, else the median of three) and scaled by the batch;
// its outputs for that sample are compared with ours as well. GFLOP/s counts 2 C k^2 per output
// value per pass and 3 passes for forward+backward; ratio = ours / direct (speed-up).
// No PyTorch reference: PyTorch has no correlation op. The header names the CPU, our ISA path
// (--isa lowers it, cpu::set_isa) and the thread counts.
//   usage: correlation [--quick] [--threads 1,2] [--isa avx512|avx2|portable]
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.h"
#include "convtape.h"

using namespace convtape;

namespace {

struct Config {
  std::int64_t n, c, h, w, k, md, s1, s2, pad;

  CorrelationOptions options() const {
    return CorrelationOptions().kernel_size(k).max_displacement(md).stride1(s1).stride2(s2).padding(
        pad);
  }
  std::int64_t r() const { return (k - 1) / 2; }
  std::int64_t border() const { return md + r(); }
  std::int64_t grid_radius() const { return md / s2; }
  std::int64_t grid() const { return 2 * grid_radius() + 1; }
  std::int64_t out_h() const { return (h + 2 * pad - 2 * border() + s1 - 1) / s1; }
  std::int64_t out_w() const { return (w + 2 * pad - 2 * border() + s1 - 1) / s1; }
  Shape in_shape() const { return {n, c, h, w}; }
  Shape out_shape() const { return {n, grid() * grid(), out_h(), out_w()}; }
  double flops_per_pass() const {
    return 2.0 * double(c) * double(k * k) * double(n) * double(grid() * grid()) * double(out_h()) *
           double(out_w());
  }
};

const Config kFlowNetC{4, 256, 48, 64, 1, 20, 1, 2, 20};

// The direct loops, on unpadded coordinates (reads outside the map are 0). Every output is
// written, and df1 / df2 are fully overwritten.
void direct_forward(const Config& g, const float* f1, const float* f2, float* y) {
  const std::int64_t rr = g.grid_radius(), d = g.grid(), ho = g.out_h(), wo = g.out_w();
  const std::int64_t plane = g.h * g.w;
  const float scale = 1.0f / float(g.k * g.k * g.c);
#pragma omp parallel for schedule(static)
  for (std::int64_t t = 0; t < g.n * ho; ++t) {
    const std::int64_t n = t / ho, oy = t % ho;
    for (std::int64_t ox = 0; ox < wo; ++ox)
      for (std::int64_t p = -rr; p <= rr; ++p)
        for (std::int64_t o = -rr; o <= rr; ++o) {
          const std::int64_t cy = oy * g.s1 + g.border() - g.pad;
          const std::int64_t cx = ox * g.s1 + g.border() - g.pad;
          float sum = 0.0f;
          for (std::int64_t c = 0; c < g.c; ++c)
            for (std::int64_t i = -g.r(); i <= g.r(); ++i)
              for (std::int64_t j = -g.r(); j <= g.r(); ++j) {
                const std::int64_t y1 = cy + i, x1 = cx + j, y2 = y1 + p * g.s2, x2 = x1 + o * g.s2;
                if (y1 < 0 || y1 >= g.h || x1 < 0 || x1 >= g.w || y2 < 0 || y2 >= g.h || x2 < 0 ||
                    x2 >= g.w)
                  continue;
                const std::int64_t base = (n * g.c + c) * plane;
                sum += f1[base + y1 * g.w + x1] * f2[base + y2 * g.w + x2];
              }
          y[((n * d * d + (p + rr) * d + o + rr) * ho + oy) * wo + ox] = sum * scale;
        }
  }
}

void direct_backward(const Config& g, const float* f1, const float* f2, const float* dy, float* df1,
                     float* df2) {
  const std::int64_t rr = g.grid_radius(), d = g.grid(), ho = g.out_h(), wo = g.out_w();
  const std::int64_t plane = g.h * g.w;
  const float scale = 1.0f / float(g.k * g.k * g.c);
#pragma omp parallel for schedule(static)
  for (std::int64_t c = 0; c < g.c; ++c)
    for (std::int64_t n = 0; n < g.n; ++n) {
      const std::int64_t base = (n * g.c + c) * plane;
      std::fill(df1 + base, df1 + base + plane, 0.0f);
      std::fill(df2 + base, df2 + base + plane, 0.0f);
      for (std::int64_t p = -rr; p <= rr; ++p)
        for (std::int64_t o = -rr; o <= rr; ++o)
          for (std::int64_t oy = 0; oy < ho; ++oy)
            for (std::int64_t ox = 0; ox < wo; ++ox) {
              const float gv =
                  dy[((n * d * d + (p + rr) * d + o + rr) * ho + oy) * wo + ox] * scale;
              const std::int64_t cy = oy * g.s1 + g.border() - g.pad;
              const std::int64_t cx = ox * g.s1 + g.border() - g.pad;
              for (std::int64_t i = -g.r(); i <= g.r(); ++i)
                for (std::int64_t j = -g.r(); j <= g.r(); ++j) {
                  const std::int64_t y1 = cy + i, x1 = cx + j, y2 = y1 + p * g.s2,
                                     x2 = x1 + o * g.s2;
                  if (y1 < 0 || y1 >= g.h || x1 < 0 || x1 >= g.w || y2 < 0 || y2 >= g.h || x2 < 0 ||
                      x2 >= g.w)
                    continue;
                  df1[base + y1 * g.w + x1] += gv * f2[base + y2 * g.w + x2];
                  df2[base + y2 * g.w + x2] += gv * f1[base + y1 * g.w + x1];
                }
            }
    }
}

double max_rel_diff(const std::vector<float>& got, const std::vector<float>& want) {
  double worst = 0.0;
  for (std::size_t i = 0; i < got.size(); ++i)
    worst = std::max(
        worst, std::abs(double(got[i]) - double(want[i])) / (1.0 + std::abs(double(want[i]))));
  return worst;
}

struct Pass {
  std::vector<float> y, df1, df2;
};

// Our forward and backward on (f1, f2, dy).
Pass ours(const Config& g, const Tensor& f1, const Tensor& f2, const Tensor& dy) {
  const Tensor a = f1.detach().clone().requires_grad_(), b = f2.detach().clone().requires_grad_();
  const Tensor y = correlation(a, b, g.options());
  y.backward(dy);
  return {y.to_vector<float>(), a.grad().to_vector<float>(), b.grad().to_vector<float>()};
}

Pass direct(const Config& g, const Tensor& f1, const Tensor& f2, const Tensor& dy) {
  Pass r{std::vector<float>(static_cast<std::size_t>(numel(g.out_shape()))),
         std::vector<float>(static_cast<std::size_t>(f1.numel())),
         std::vector<float>(static_cast<std::size_t>(f1.numel()))};
  direct_forward(g, f1.data_ptr<float>(), f2.data_ptr<float>(), r.y.data());
  direct_backward(g, f1.data_ptr<float>(), f2.data_ptr<float>(), dy.data_ptr<float>(), r.df1.data(),
                  r.df2.data());
  return r;
}

bool compare(const char* what, const Pass& got, const Pass& want) {
  const double ey = max_rel_diff(got.y, want.y), e1 = max_rel_diff(got.df1, want.df1),
               e2 = max_rel_diff(got.df2, want.df2);
  const bool ok = ey <= 1e-5 && e1 <= 1e-5 && e2 <= 1e-5;
  std::printf("validation %-44s forward %.2g, df1 %.2g, df2 %.2g (max relative difference) %s\n",
              what, ey, e1, e2, ok ? "ok" : "FAILED");
  return ok;
}

bool validate_small() {
  const Config cases[] = {{2, 24, 12, 14, 3, 4, 1, 2, 4},
                          {1, 40, 10, 9, 1, 5, 2, 1, 3},
                          {2, 256, 12, 16, 1, 6, 1, 2, 6}};
  bool ok = true;
  for (const Config& g : cases) {
    manual_seed(1);
    const Tensor f1 = randn(g.in_shape()), f2 = randn(g.in_shape()), dy = randn(g.out_shape());
    char name[96];
    std::snprintf(name, sizeof(name),
                  "[%lld, %lld, %lld, %lld] k %lld md %lld s %lld/%lld p %lld:", (long long)g.n,
                  (long long)g.c, (long long)g.h, (long long)g.w, (long long)g.k, (long long)g.md,
                  (long long)g.s1, (long long)g.s2, (long long)g.pad);
    ok = compare(name, ours(g, f1, f2, dy), direct(g, f1, f2, dy)) && ok;
  }
  return ok;
}

double once_seconds(const std::function<void()>& fn) {
  const auto start = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  ct_bench::SuiteArgs args;
  for (int i = 1; i < argc && args.error.empty(); ++i) {
    const std::string arg = argv[i];
    if (!ct_bench::parse_common_arg(argc, argv, i, args) || !args.python.empty() || args.no_old)
      args.error = "expected --quick, --threads or --isa, got " + arg;
  }
  if (!args.error.empty()) {
    std::printf("correlation: %s\n", args.error.c_str());
    return 2;
  }
  if (!ct_bench::apply_isa("correlation", args.isa)) return 2;
  const bool quick = args.quick;
  const std::vector<int> thread_counts = args.threads;
  ct_bench::print_header("bench_correlation", thread_counts, {}, true);
  int failures = validate_small() ? 0 : 1;

  const Config g = kFlowNetC;
  Config one = g;  // the reference's batch
  one.n = 1;
  manual_seed(0);
  const Tensor f1 = randn(g.in_shape()), f2 = randn(g.in_shape()), dy = randn(g.out_shape());
  const Tensor f1_one = f1.narrow(0, 0, 1).contiguous(), f2_one = f2.narrow(0, 0, 1).contiguous();
  const Tensor dy_one = dy.narrow(0, 0, 1).contiguous();
  const double flops = g.flops_per_pass();
  std::printf(
      "\ncorrelation, float32, FlowNetC: f1, f2 [%lld, %lld, %lld, %lld], k %lld, max_displacement "
      "%lld, stride1 %lld, stride2 %lld, padding %lld -> [%lld, %lld, %lld, %lld]\n",
      (long long)g.n, (long long)g.c, (long long)g.h, (long long)g.w, (long long)g.k,
      (long long)g.md, (long long)g.s1, (long long)g.s2, (long long)g.pad, (long long)g.n,
      (long long)(g.grid() * g.grid()), (long long)g.out_h(), (long long)g.out_w());
  std::printf("%.2f GFLOP per pass (2 C k^2 per output value); forward+backward counts 3 passes\n",
              flops * 1e-9);
  std::printf("direct-loop reference timed on 1 sample (%s) and scaled by %lld\n",
              quick ? "one run" : "median of 3 runs", (long long)g.n);

  for (int threads : thread_counts) {
    omp_set_num_threads(threads);
    Tensor a = f1.clone().requires_grad_(), b = f2.clone().requires_grad_();
    const double t_fwd = ct_bench::best_window_median_seconds([&] {
      NoGradGuard no_grad;
      correlation(f1, f2, g.options());
    });
    const double t_all = ct_bench::best_window_median_seconds([&] {
      correlation(a, b, g.options()).backward(dy);
      a.zero_grad();
      b.zero_grad();
    });
    // The reference on one sample.
    std::vector<float> ry(static_cast<std::size_t>(numel(one.out_shape())));
    std::vector<float> rd1(static_cast<std::size_t>(f1_one.numel())), rd2(rd1.size());
    const auto ref_fwd = [&] {
      direct_forward(one, f1_one.data_ptr<float>(), f2_one.data_ptr<float>(), ry.data());
    };
    const auto ref_bwd = [&] {
      direct_backward(one, f1_one.data_ptr<float>(), f2_one.data_ptr<float>(),
                      dy_one.data_ptr<float>(), rd1.data(), rd2.data());
    };
    double r_fwd = 0.0, r_bwd = 0.0;
    if (quick) {
      r_fwd = once_seconds(ref_fwd);
      r_bwd = once_seconds(ref_bwd);
    } else {
      r_fwd = ct_bench::median_seconds(ref_fwd, 0.0, 3, 3);
      r_bwd = ct_bench::median_seconds(ref_bwd, 0.0, 3, 3);
    }
    r_fwd *= double(g.n);
    const double r_all = r_fwd + r_bwd * double(g.n);
    char what[64];
    std::snprintf(what, sizeof(what), "FlowNetC sample 0 vs direct, %d thread%s:", threads,
                  threads == 1 ? "" : "s");
    failures += compare(what, ours(one, f1_one, f2_one, dy_one), Pass{ry, rd1, rd2}) ? 0 : 1;

    std::printf("\n%d thread%s        | %9s %9s | %9s %9s | %8s\n", threads,
                threads == 1 ? " " : "s", "ours s", "GFLOP/s", "direct s", "GFLOP/s", "ratio");
    std::printf("forward          | %9.4f %9.1f | %9.3f %9.2f | %8.1f\n", t_fwd,
                flops / t_fwd * 1e-9, r_fwd, flops / r_fwd * 1e-9, r_fwd / t_fwd);
    std::printf("forward+backward | %9.4f %9.1f | %9.3f %9.2f | %8.1f\n", t_all,
                3 * flops / t_all * 1e-9, r_all, 3 * flops / r_all * 1e-9, r_all / t_all);
    std::fflush(stdout);
  }
  return failures;
}
