// benchmarks/conv: convtape's CPU convolution against PyTorch (Debian python3-torch) on the conv
// suite of REFERENCE.md, forward and forward+backward (dx, dw, db), float32 with bias, at 1 and 2
// threads. PyTorch runs in a child process started by this same command (scripts/
// bench_conv_torch.py). Each shape is validated against a direct float64 loop on a small batch
// first; then both sides are timed (the best of three windows' medians, see bench_util.h) and the
// table prints GFLOP/s, the ratio ours / PyTorch per shape, and the geometric means. GFLOP/s counts
// 2 N K (C/groups) prod(R) prod(S') per pass and 3 passes for forward+backward.
// With --device cuda the suite runs on cuda:0 with four times the batch (cuDNN on both sides, TF32
// off on both), each timed call ending in a device synchronisation; validation then compares the
// GPU's forward and gradients with float64 on the CPU, and PyTorch times its own GPU run of the
// same suite (cudnn.benchmark on, as our algorithm search is).
//   usage: conv [--quick] [--threads 1,2] [--only name,name] [--torch /usr/bin/python3]
//               [--device cpu|cuda]
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

struct Case {
  const char* name;
  std::int64_t n, c, k;
  Shape spatial;
  std::int64_t kernel, stride, pad, dilation, groups;
};

const std::vector<Case> kSuite{
    {"fmnist_c1", 64, 1, 32, {28, 28}, 3, 1, 1, 1, 1},
    {"fmnist_c2", 64, 32, 64, {14, 14}, 3, 1, 1, 1, 1},
    {"resnet_64", 16, 64, 64, {56, 56}, 3, 1, 1, 1, 1},
    {"resnet_s2", 16, 64, 128, {56, 56}, 3, 2, 1, 1, 1},
    {"pointwise", 16, 256, 64, {28, 28}, 1, 1, 0, 1, 1},
    {"depthwise", 16, 128, 128, {28, 28}, 3, 1, 1, 1, 128},
    {"grouped4", 16, 128, 128, {28, 28}, 3, 1, 1, 1, 4},
    {"dilated2", 16, 64, 64, {56, 56}, 3, 1, 2, 2, 1},
    {"conv1d", 32, 64, 64, {1024}, 5, 1, 2, 1, 1},
    {"conv3d", 4, 16, 32, {16, 16, 16}, 3, 1, 1, 1, 1},
};

ConvOptions options_of(const Case& c) {
  return ConvOptions().stride(c.stride).padding(c.pad).dilation(c.dilation).groups(c.groups);
}

Shape weight_shape(const Case& c) {
  Shape s{c.k, c.c / c.groups};
  for (std::size_t i = 0; i < c.spatial.size(); ++i) s.push_back(c.kernel);
  return s;
}

double flops_per_pass(const Case& c, const Shape& out_shape) {
  double f = 2.0 * double(c.n) * double(c.k) * double(c.c / c.groups);
  for (std::size_t i = 0; i < c.spatial.size(); ++i)
    f *= double(c.kernel) * double(out_shape[2 + i]);
  return f;
}

// Direct float64 reference on one sample: the validation step before timing.
bool validate(const Case& c) {
  manual_seed(5);
  Shape xs{1, c.c};
  xs.insert(xs.end(), c.spatial.begin(), c.spatial.end());
  const Tensor x = randn(xs), w = randn(weight_shape(c)), b = randn({c.k});
  const Tensor y = conv(x, w, b, options_of(c));
  const Tensor y64 = conv(x.to(kFloat64), w.to(kFloat64), b.to(kFloat64), options_of(c));
  // Independent check of one output channel at a handful of positions by direct summation.
  const auto xv = x.to_vector<double>(), wv = w.to_vector<double>(), yv = y.to_vector<double>();
  const auto y64v = y64.to_vector<double>();
  const std::int64_t rank = static_cast<std::int64_t>(c.spatial.size());
  const Shape out(y.shape().begin() + 2, y.shape().end());
  const std::int64_t out_n = numel(out), cg = c.c / c.groups, kg = c.k / c.groups;
  double worst = 0;
  for (std::int64_t probe = 0; probe < 64; ++probe) {
    const std::int64_t k = (probe * 7) % c.k, p = (probe * 7919) % out_n;
    Shape o(static_cast<std::size_t>(rank));
    std::int64_t rem = p;
    for (std::int64_t d = rank - 1; d >= 0; --d) {
      o[d] = rem % out[d];
      rem /= out[d];
    }
    double acc = b.to_vector<double>()[static_cast<std::size_t>(k)];
    const std::int64_t kvol = static_cast<std::int64_t>(std::pow(c.kernel, rank));
    for (std::int64_t ci = 0; ci < cg; ++ci)
      for (std::int64_t r = 0; r < kvol; ++r) {
        std::int64_t rr = r, xoff = 0, stride_acc = 1;
        bool inside = true;
        std::int64_t idx[3] = {};
        for (std::int64_t d = rank - 1; d >= 0; --d) {
          const std::int64_t rd = rr % c.kernel;
          rr /= c.kernel;
          idx[d] = o[d] * c.stride + rd * c.dilation - c.pad;
          inside = inside && idx[d] >= 0 && idx[d] < c.spatial[d];
        }
        if (!inside) continue;
        for (std::int64_t d = rank - 1; d >= 0; --d) {
          xoff += idx[d] * stride_acc;
          stride_acc *= c.spatial[d];
        }
        const std::int64_t cin = (k / kg) * cg + ci;
        acc += xv[static_cast<std::size_t>(cin * numel(c.spatial) + xoff)] *
               wv[static_cast<std::size_t>((k * cg + ci) * kvol + r)];
      }
    worst = std::max(worst, std::abs(acc - y64v[static_cast<std::size_t>(k * out_n + p)]));
  }
  double worst32 = 0;
  for (std::size_t i = 0; i < yv.size(); ++i)
    worst32 = std::max(worst32, std::abs(yv[i] - y64v[i]));
  const double tol = 1e-4 * std::sqrt(double(cg * std::pow(c.kernel, rank)));
  if (worst > 1e-9 || worst32 > tol) {
    std::printf("VALIDATION FAILED for %s: direct |diff| %.3g, float32 |diff| %.3g\n", c.name,
                worst, worst32);
    return false;
  }
  return true;
}

// The GPU's float32 forward and gradients against float64 on the CPU, on a small batch.
bool validate_cuda(const Case& c) {
  manual_seed(5);
  Shape xs{2, c.c};
  xs.insert(xs.end(), c.spatial.begin(), c.spatial.end());
  const Tensor x = randn(xs, kFloat64), w = randn(weight_shape(c), kFloat64),
               b = randn({c.k}, kFloat64);
  const Device dev = Device::cuda(0);
  std::vector<Tensor> ref, got;
  for (const bool gpu : {false, true}) {
    Tensor xi = (gpu ? x.to(kFloat32).to(dev) : x.detach()).requires_grad_();
    Tensor wi = (gpu ? w.to(kFloat32).to(dev) : w.detach()).requires_grad_();
    Tensor bi = (gpu ? b.to(kFloat32).to(dev) : b.detach()).requires_grad_();
    const Tensor y = conv(xi, wi, bi, options_of(c));
    sum(mul(y, y)).backward();
    auto& out = gpu ? got : ref;
    for (const Tensor& t : {y, xi.grad(), wi.grad(), bi.grad()})
      out.push_back(t.cpu().to(kFloat64));
  }
  const char* names[] = {"forward", "dx", "dw", "db"};
  bool ok = true;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const double scale = max(abs(ref[i])).item();
    const double diff = max(abs(sub(got[i], ref[i]))).item();
    if (!(diff <= 1e-4 * std::max(scale, 1.0))) {
      std::printf("VALIDATION FAILED for %s on cuda: %s max |diff| %.3g (max |ref| %.3g)\n", c.name,
                  names[i], diff, scale);
      ok = false;
    }
  }
  return ok;
}

std::map<std::string, std::pair<double, double>> run_torch(const std::string& python, int threads,
                                                           const std::vector<Case>& suite,
                                                           const std::string& device) {
  std::string input;
  for (const auto& c : suite) {
    std::string sp;
    for (std::size_t i = 0; i < c.spatial.size(); ++i) {
      if (i) sp += ',';
      sp += std::to_string(c.spatial[i]);
    }
    input += fmt::format("{} {} {} {} {} {} {} {} {} {}\n", c.name, c.n, c.c, c.k, sp, c.kernel,
                         c.stride, c.pad, c.dilation, c.groups);
  }
  return ct_bench::run_reference_suite(
      python, std::string(CT_SOURCE_DIR) + "/scripts/bench_conv_torch.py", threads, input, device);
}

}  // namespace

int main(int argc, char** argv) {
  const ct_bench::SuiteArgs args = ct_bench::parse_suite_args(argc, argv);
  const bool gpu = args.device == "cuda";
  if (args.device != "cpu" && !gpu) {
    std::printf("conv: expected --device cpu or cuda, got %s\n", args.device.c_str());
    return 2;
  }
  if (gpu && !cuda::is_available()) {
    std::printf("conv: expected a CUDA device for --device cuda, got none (%s)\n",
                cuda::built_with_cuda() ? "no device present" : "this build has no CUDA support");
    return 2;
  }
  const Device dev = gpu ? Device::cuda(0) : Device::cpu();
  std::vector<Case> suite;
  for (const auto& c : kSuite)
    if (args.selected(c.name)) suite.push_back(c);
  if (gpu)
    for (auto& c : suite) c.n *= 4;
  if (args.quick)
    for (auto& c : suite) c.n = std::max<std::int64_t>(1, c.n / 4);
  int failures = 0;
  for (const auto& c : suite) failures += (gpu ? validate_cuda(c) : validate(c)) ? 0 : 1;
  std::printf("validation: %d of %zu shapes failed\n", failures, suite.size());
  // Timed calls end with the device idle, so that GPU time is counted where it is spent.
  const auto finish = [&] {
    if (gpu) cuda::synchronize("bench conv", dev);
  };

  const std::vector<int> thread_counts = gpu ? std::vector<int>{1} : args.threads;
  for (int threads : thread_counts) {
    const auto torch = run_torch(args.python, threads, suite, args.device);
    omp_set_num_threads(threads);
    if (gpu)
      std::printf("\nconv suite, float32, cuda:0 (TF32 off): GFLOP/s (ratio = ours / PyTorch)\n");
    else
      std::printf("\nconv suite, float32, %d thread%s: GFLOP/s (ratio = ours / PyTorch)\n", threads,
                  threads == 1 ? "" : "s");
    std::printf("%-10s | %8s %8s %6s | %8s %8s %6s\n", "shape", "fwd", "torch", "ratio", "fwd+bwd",
                "torch", "ratio");
    std::vector<double> r_fwd, r_all;
    for (const auto& c : suite) {
      manual_seed(0);
      Shape xs{c.n, c.c};
      xs.insert(xs.end(), c.spatial.begin(), c.spatial.end());
      const Tensor x0 = randn(xs).to(dev), w0 = (randn(weight_shape(c)) * 0.1).to(dev),
                   b0 = randn({c.k}).to(dev);
      Tensor x = x0.clone().requires_grad_(), w = w0.clone().requires_grad_(),
             b = b0.clone().requires_grad_();
      Shape out_shape;
      {
        NoGradGuard g;
        out_shape = conv(x0, w0, b0, options_of(c)).shape();
      }
      const Tensor dy = ones(out_shape, dev);
      const double f = flops_per_pass(c, out_shape);
      const double t_fwd = ct_bench::best_window_median_seconds([&] {
        NoGradGuard g;
        conv(x0, w0, b0, options_of(c));
        finish();
      });
      const double t_all = ct_bench::best_window_median_seconds([&] {
        conv(x, w, b, options_of(c)).backward(dy);
        x.zero_grad();
        w.zero_grad();
        b.zero_grad();
        finish();
      });
      const auto it = torch.find(c.name);
      const double gf = f / t_fwd * 1e-9, ga = 3 * f / t_all * 1e-9;
      if (it == torch.end()) {
        std::printf("%-10s | %8.1f %8s %6s | %8.1f %8s %6s\n", c.name, gf, "-", "-", ga, "-", "-");
        continue;
      }
      const double tf = f / it->second.first * 1e-9, ta = 3 * f / it->second.second * 1e-9;
      r_fwd.push_back(gf / tf);
      r_all.push_back(ga / ta);
      std::printf("%-10s | %8.1f %8.1f %6.2f | %8.1f %8.1f %6.2f\n", c.name, gf, tf, gf / tf, ga,
                  ta, ga / ta);
      std::fflush(stdout);
    }
    if (r_fwd.empty()) {
      std::printf("PyTorch reference unavailable (%s with torch); ratios not printed\n",
                  args.python.c_str());
    } else if (gpu) {
      std::printf("geometric mean ratio, cuda: forward %.2f, forward+backward %.2f\n",
                  ct_bench::geomean(r_fwd), ct_bench::geomean(r_all));
    } else {
      std::printf("geometric mean ratio, %d thread%s: forward %.2f, forward+backward %.2f\n",
                  threads, threads == 1 ? "" : "s", ct_bench::geomean(r_fwd),
                  ct_bench::geomean(r_all));
    }
  }
  return failures;
}
