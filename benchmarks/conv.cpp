// benchmarks/conv: convtape's CPU convolution against PyTorch on the conv suite of REFERENCE.md and
// a few more layers, forward and forward+backward (dx, dw, db), float32 with bias, at 1 and 2
// threads. The references are the newest PyTorch (oneDNN and MKL inside; <repo>/.bench-venv, made
// by scripts/bench-env, or --torch PATH) and Debian's PyTorch 1.13 (/usr/bin/python3) where it is
// installed (--no-old skips it); each runs in a child process started by this same command
// (scripts/bench_conv_torch.py), once per thread count.
// Three tables per thread count:
//   suite    REFERENCE.md's shapes plus 3x3 layers at 128 and 256 channels, a strided 3x3 at 256
//            channels and a transposed conv: GFLOP/s of each side, ratio ours / PyTorch (speed:
//            above 1 is faster) per shape, and geometric means with and without fmnist_c1 (one
//            input channel, a shape that no library runs near peak).
//   latency  batch-1 inference (forward only) of resnet_64 and fmnist_c2: milliseconds per call
//            and the ratio PyTorch's time / ours.
//   extra    about a dozen layers outside the suite (other channel counts, 5x5 and 7x7 kernels, a
//            strided 1x1, transposed convs, batch 1) with their own geometric means; run in full
//            mode, with --quick only when --extra is given (--no-extra skips it).
// Every shape is validated first: our float32 output against our float64 one, and that against a
// direct float64 summation at 64 output positions (the scatter rule for transposed convs), on one
// sample; a shape that fails (or throws) is reported, not timed, and counted in the exit status.
// Then both sides are timed alike: the best of three windows' medians (bench_util.h),
// 0.6 s per measurement, 0.3 s with --quick (which also divides the batches by 4). The references
// run first, then ours; --rounds N repeats that whole measurement N times and reports each side's
// median per shape, so that a noisy stretch of a shared machine lands on both sides alike (the
// tables print once every round is done). GFLOP/s counts
// 2 N K (C/groups) prod(R) prod(S') per pass for a conv, 2 N C (K/groups) prod(R) prod(S) for a
// transposed conv (S its input extent), and 3 passes for forward+backward.
// With --device cuda the tables run on cuda:0 with four times the batch (cuDNN on both sides, TF32
// off on both), each timed call ending in a device synchronisation; validation then compares the
// GPU's forward and gradients with float64 on the CPU; the only reference is --torch's GPU run.
// --isa picks our ISA path (cpu::set_isa); PyTorch keeps its own unless the environment lowers it
// (ATEN_CPU_CAPABILITY=avx2, ONEDNN_MAX_CPU_ISA=AVX2), which the child processes inherit.
//   usage: conv [--quick] [--threads 1,2] [--only name,name] [--torch PATH] [--no-old]
//               [--isa avx512|avx2|portable] [--extra] [--no-extra] [--device cpu|cuda]
//               [--rounds N]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <map>
#include <sstream>
#include <string>

#include "bench_util.h"
#include "convtape.h"

using namespace convtape;

namespace {

// Which table a case belongs to; latency cases are timed forward only.
enum class Group { suite, latency, extra };

struct Case {
  const char* name;
  std::int64_t n, c, k;  // batch, input channels, output channels
  Shape spatial;         // input extent
  std::int64_t kernel, stride, pad, dilation, groups;
  bool transposed;
  std::int64_t output_padding;  // transposed convs only
  Group group;
};

Case conv_case(const char* name, std::int64_t n, std::int64_t c, std::int64_t k, Shape spatial,
               std::int64_t kernel, std::int64_t stride, std::int64_t pad,
               std::int64_t dilation = 1, std::int64_t groups = 1, Group group = Group::suite) {
  return {name,   n,     c, k,    std::move(spatial), kernel, stride, pad, dilation,
          groups, false, 0, group};
}

Case transposed_case(const char* name, std::int64_t n, std::int64_t c, std::int64_t k,
                     Shape spatial, std::int64_t kernel, std::int64_t stride, std::int64_t pad,
                     std::int64_t output_padding, Group group) {
  return {name, n, c, k,    std::move(spatial), kernel, stride,
          pad,  1, 1, true, output_padding,     group};
}

// Left out of the second geometric mean: one input channel makes the GEMM's reduction 9 long.
constexpr const char* kFmnistC1 = "fmnist_c1";

const std::vector<Case> kCases{
    conv_case("fmnist_c1", 64, 1, 32, {28, 28}, 3, 1, 1),
    conv_case("fmnist_c2", 64, 32, 64, {14, 14}, 3, 1, 1),
    conv_case("resnet_64", 16, 64, 64, {56, 56}, 3, 1, 1),
    conv_case("resnet_s2", 16, 64, 128, {56, 56}, 3, 2, 1),
    conv_case("pointwise", 16, 256, 64, {28, 28}, 1, 1, 0),
    conv_case("depthwise", 16, 128, 128, {28, 28}, 3, 1, 1, 1, 128),
    conv_case("grouped4", 16, 128, 128, {28, 28}, 3, 1, 1, 1, 4),
    conv_case("dilated2", 16, 64, 64, {56, 56}, 3, 1, 2, 2),
    conv_case("conv1d", 32, 64, 64, {1024}, 5, 1, 2),
    conv_case("conv3d", 4, 16, 32, {16, 16, 16}, 3, 1, 1),
    conv_case("c128_28", 16, 128, 128, {28, 28}, 3, 1, 1),
    conv_case("c256_14", 16, 256, 256, {14, 14}, 3, 1, 1),
    conv_case("c256_s2", 16, 256, 256, {28, 28}, 3, 2, 1),
    // DCGAN's upsampling layer: 28x28 -> 56x56.
    transposed_case("tconv_k4s2", 16, 64, 32, {28, 28}, 4, 2, 1, 0, Group::suite),
    conv_case("resnet_64_b1", 1, 64, 64, {56, 56}, 3, 1, 1, 1, 1, Group::latency),
    conv_case("fmnist_c2_b1", 1, 32, 64, {14, 14}, 3, 1, 1, 1, 1, Group::latency),
    conv_case("c32_56", 16, 32, 32, {56, 56}, 3, 1, 1, 1, 1, Group::extra),
    conv_case("c48_80", 16, 48, 80, {28, 28}, 3, 1, 1, 1, 1, Group::extra),
    conv_case("c512_7", 16, 512, 512, {7, 7}, 3, 1, 1, 1, 1, Group::extra),
    conv_case("k5_32_64", 16, 32, 64, {28, 28}, 5, 1, 2, 1, 1, Group::extra),
    conv_case("k5_96_128", 16, 96, 128, {14, 14}, 5, 1, 2, 1, 1, Group::extra),
    conv_case("k7_64", 16, 64, 64, {28, 28}, 7, 1, 3, 1, 1, Group::extra),
    conv_case("stem_k7s2", 8, 3, 64, {224, 224}, 7, 2, 3, 1, 1, Group::extra),
    conv_case("pw_s2", 16, 256, 512, {28, 28}, 1, 2, 0, 1, 1, Group::extra),
    conv_case("pw_64_256", 16, 64, 256, {56, 56}, 1, 1, 0, 1, 1, Group::extra),
    // 14x14 -> 28x28 with output_padding 1, and U-Net's 2x2 upsampling.
    transposed_case("tconv_k3op1", 16, 64, 32, {14, 14}, 3, 2, 1, 1, Group::extra),
    transposed_case("tconv_k2s2", 16, 128, 64, {28, 28}, 2, 2, 0, 0, Group::extra),
    conv_case("b1_c256_14", 1, 256, 256, {14, 14}, 3, 1, 1, 1, 1, Group::extra),
    conv_case("b1_stem", 1, 3, 64, {224, 224}, 7, 2, 3, 1, 1, Group::extra),
};

ConvOptions conv_options(const Case& c) {
  return ConvOptions().stride(c.stride).padding(c.pad).dilation(c.dilation).groups(c.groups);
}

ConvTransposeOptions transpose_options(const Case& c) {
  return ConvTransposeOptions()
      .stride(c.stride)
      .padding(c.pad)
      .output_padding(c.output_padding)
      .dilation(c.dilation)
      .groups(c.groups);
}

Tensor run_conv(const Case& c, const Tensor& x, const Tensor& w, const Tensor& b) {
  if (c.transposed) return conv_transpose(x, w, b, transpose_options(c));
  return conv(x, w, b, conv_options(c));
}

// conv: [K, C/groups, *R]; transposed: [C, K/groups, *R].
Shape weight_shape(const Case& c) {
  Shape s = c.transposed ? Shape{c.c, c.k / c.groups} : Shape{c.k, c.c / c.groups};
  for (std::size_t i = 0; i < c.spatial.size(); ++i) s.push_back(c.kernel);
  return s;
}

double flops_per_pass(const Case& c, const Shape& out_shape) {
  double f = c.transposed ? 2.0 * double(c.n) * double(c.c) * double(c.k / c.groups)
                          : 2.0 * double(c.n) * double(c.k) * double(c.c / c.groups);
  for (std::size_t i = 0; i < c.spatial.size(); ++i)
    f *= double(c.kernel) * double(c.transposed ? c.spatial[i] : out_shape[2 + i]);
  return f;
}

// Direct float64 reference on one sample: the validation step before timing. Output channel k
// lies in group k / (K/groups); a conv reads input position o * stride + r * dilation - pad, a
// transposed conv receives from input position i where i * stride - pad + r * dilation = o.
bool validate(const Case& c) {
  manual_seed(5);
  Shape xs{1, c.c};
  xs.insert(xs.end(), c.spatial.begin(), c.spatial.end());
  const Tensor x = randn(xs), w = randn(weight_shape(c)), b = randn({c.k});
  const Tensor y = run_conv(c, x, w, b);
  const Tensor y64 = run_conv(c, x.to(kFloat64), w.to(kFloat64), b.to(kFloat64));
  const auto xv = x.to_vector<double>(), wv = w.to_vector<double>(), yv = y.to_vector<double>();
  const auto y64v = y64.to_vector<double>(), bv = b.to_vector<double>();
  const std::int64_t rank = static_cast<std::int64_t>(c.spatial.size());
  const Shape out(y.shape().begin() + 2, y.shape().end());
  const std::int64_t out_n = numel(out), cg = c.c / c.groups, kg = c.k / c.groups;
  const std::int64_t kvol = static_cast<std::int64_t>(std::pow(c.kernel, rank));
  double worst = 0;
  for (std::int64_t probe = 0; probe < 64; ++probe) {
    const std::int64_t k = (probe * 7) % c.k, p = (probe * 7919) % out_n;
    Shape o(static_cast<std::size_t>(rank));
    std::int64_t rem = p;
    for (std::int64_t d = rank - 1; d >= 0; --d) {
      o[d] = rem % out[d];
      rem /= out[d];
    }
    double acc = bv[static_cast<std::size_t>(k)];
    for (std::int64_t ci = 0; ci < cg; ++ci)
      for (std::int64_t r = 0; r < kvol; ++r) {
        std::int64_t rr = r, xoff = 0, stride_acc = 1;
        bool inside = true;
        std::int64_t idx[3] = {};
        for (std::int64_t d = rank - 1; d >= 0; --d) {
          const std::int64_t rd = rr % c.kernel;
          rr /= c.kernel;
          if (c.transposed) {
            const std::int64_t num = o[d] + c.pad - rd * c.dilation;
            inside = inside && num >= 0 && num % c.stride == 0;
            idx[d] = num / c.stride;
          } else {
            idx[d] = o[d] * c.stride + rd * c.dilation - c.pad;
          }
          inside = inside && idx[d] >= 0 && idx[d] < c.spatial[d];
        }
        if (!inside) continue;
        for (std::int64_t d = rank - 1; d >= 0; --d) {
          xoff += idx[d] * stride_acc;
          stride_acc *= c.spatial[d];
        }
        const std::int64_t cin = (k / kg) * cg + ci;
        const std::int64_t widx =
            c.transposed ? (cin * kg + k % kg) * kvol + r : (k * cg + ci) * kvol + r;
        acc += xv[static_cast<std::size_t>(cin * numel(c.spatial) + xoff)] *
               wv[static_cast<std::size_t>(widx)];
      }
    worst = std::max(worst, std::abs(acc - y64v[static_cast<std::size_t>(k * out_n + p)]));
  }
  double worst32 = 0;
  for (std::size_t i = 0; i < yv.size(); ++i)
    worst32 = std::max(worst32, std::abs(yv[i] - y64v[i]));
  const double tol = 1e-4 * std::sqrt(double(cg * kvol));
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
    const Tensor y = run_conv(c, xi, wi, bi);
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

using Timings = std::map<std::string, std::pair<double, double>>;

// One line per case for scripts/bench_conv_torch.py: name N C K spatial(comma-separated) kernel
// stride pad dilation groups transposed output_padding forward_only.
Timings run_torch(const ct_bench::Reference& ref, int threads, const std::vector<Case>& cases,
                  const std::string& device, double min_seconds) {
  std::string input;
  for (const auto& c : cases) {
    std::string sp;
    for (std::size_t i = 0; i < c.spatial.size(); ++i) {
      if (i) sp += ',';
      sp += std::to_string(c.spatial[i]);
    }
    input += fmt::format("{} {} {} {} {} {} {} {} {} {} {} {} {}\n", c.name, c.n, c.c, c.k, sp,
                         c.kernel, c.stride, c.pad, c.dilation, c.groups, c.transposed ? 1 : 0,
                         c.output_padding, c.group == Group::latency ? 1 : 0);
  }
  return ct_bench::run_reference_suite(ref.python,
                                       std::string(CT_SOURCE_DIR) + "/scripts/bench_conv_torch.py",
                                       threads, input, device, min_seconds);
}

// Our forward and forward+backward seconds per call (forward+backward 0 for latency cases).
std::pair<double, double> time_ours(const Case& c, const Device& dev, double min_seconds) {
  const bool gpu = dev.is_cuda();
  const auto finish = [&] {
    if (gpu) cuda::synchronize("bench conv", dev);  // GPU time is counted where it is spent
  };
  manual_seed(0);
  Shape xs{c.n, c.c};
  xs.insert(xs.end(), c.spatial.begin(), c.spatial.end());
  const Tensor x0 = randn(xs).to(dev), w0 = (randn(weight_shape(c)) * 0.1).to(dev),
               b0 = randn({c.k}).to(dev);
  const double t_fwd = ct_bench::best_window_median_seconds(
      [&] {
        NoGradGuard g;
        run_conv(c, x0, w0, b0);
        finish();
      },
      min_seconds);
  if (c.group == Group::latency) return {t_fwd, 0.0};
  Tensor x = x0.clone().requires_grad_(), w = w0.clone().requires_grad_(),
         b = b0.clone().requires_grad_();
  Shape out_shape;
  {
    NoGradGuard g;
    out_shape = run_conv(c, x0, w0, b0).shape();
  }
  const Tensor dy = ones(out_shape, dev);
  const double t_all = ct_bench::best_window_median_seconds(
      [&] {
        run_conv(c, x, w, b).backward(dy);
        x.zero_grad();
        w.zero_grad();
        b.zero_grad();
        finish();
      },
      min_seconds);
  return {t_fwd, t_all};
}

// Our side of a measurement: seconds per shape (forward, forward+backward), or what it threw.
struct Measured {
  Timings times;
  std::map<std::string, std::string> errors;
};

// Per shape, the median over rounds of each time (shapes missing from some round: over the
// rounds that have them).
Timings median_timings(const std::vector<Timings>& rounds) {
  std::map<std::string, std::pair<std::vector<double>, std::vector<double>>> all;
  for (const Timings& r : rounds)
    for (const auto& [name, t] : r) {
      all[name].first.push_back(t.first);
      all[name].second.push_back(t.second);
    }
  Timings out;
  for (const auto& [name, v] : all)
    out[name] = {ct_bench::median(v.first), ct_bench::median(v.second)};
  return out;
}

Shape output_shape(const Case& c) {
  Shape xs{c.n, c.c};
  xs.insert(xs.end(), c.spatial.begin(), c.spatial.end());
  if (c.transposed) return conv_transpose_output_shape(xs, weight_shape(c), transpose_options(c));
  return conv_output_shape(xs, weight_shape(c), conv_options(c));
}

// "2.15" from "pt2.15": the ratio columns' heading.
std::string short_label(const ct_bench::Reference& r) {
  return "/" + r.label.substr(2);
}

// One GFLOP/s table (suite or extra): per row our speed, each reference's, and the ratios; then
// the geometric means per reference (for the suite also without fmnist_c1). Returns the rows that
// threw.
int gflops_table(const char* title, const std::vector<Case>& cases, Group group,
                 const std::vector<ct_bench::Reference>& refs, const std::vector<Timings>& torch,
                 const Measured& ours, const std::string& where) {
  std::vector<const Case*> rows;
  for (const auto& c : cases)
    if (c.group == group) rows.push_back(&c);
  if (rows.empty()) return 0;
  int failed = 0;
  std::printf("\n%s, float32, %s: GFLOP/s; /X = ours / PyTorch X (speed, above 1: ours faster)\n",
              title, where.c_str());
  std::string head = fmt::format("{:<12} | {:>8}", "shape", "fwd");
  for (const auto& r : refs) head += fmt::format(" {:>7}", r.label);
  for (const auto& r : refs) head += fmt::format(" {:>6}", short_label(r));
  head += fmt::format(" | {:>8}", "fwd+bwd");
  for (const auto& r : refs) head += fmt::format(" {:>7}", r.label);
  for (const auto& r : refs) head += fmt::format(" {:>6}", short_label(r));
  std::printf("%s\n", head.c_str());
  // Ratios per reference: [ref][0 forward, 1 forward+backward], all rows and without fmnist_c1.
  std::vector<std::vector<std::vector<double>>> all(refs.size(),
                                                    std::vector<std::vector<double>>(2)),
      no_c1 = all;
  for (const Case* c : rows) {
    if (const auto e = ours.errors.find(c->name); e != ours.errors.end()) {
      std::printf("%-12s | FAILED: %s\n", c->name, e->second.c_str());
      ++failed;
      continue;
    }
    const auto [t_fwd, t_all] = ours.times.at(c->name);
    const double f = flops_per_pass(*c, output_shape(*c));
    const double gf = f / t_fwd * 1e-9, ga = 3 * f / t_all * 1e-9;
    std::string speeds_f, ratios_f, speeds_a, ratios_a;
    for (std::size_t i = 0; i < refs.size(); ++i) {
      const auto it = torch[i].find(c->name);
      if (it == torch[i].end()) {
        speeds_f += fmt::format(" {:>7}", "-");
        ratios_f += fmt::format(" {:>6}", "-");
        speeds_a += fmt::format(" {:>7}", "-");
        ratios_a += fmt::format(" {:>6}", "-");
        continue;
      }
      const double tf = f / it->second.first * 1e-9, ta = 3 * f / it->second.second * 1e-9;
      speeds_f += fmt::format(" {:7.1f}", tf);
      ratios_f += fmt::format(" {:6.2f}", gf / tf);
      speeds_a += fmt::format(" {:7.1f}", ta);
      ratios_a += fmt::format(" {:6.2f}", ga / ta);
      all[i][0].push_back(gf / tf);
      all[i][1].push_back(ga / ta);
      if (std::strcmp(c->name, kFmnistC1) != 0) {
        no_c1[i][0].push_back(gf / tf);
        no_c1[i][1].push_back(ga / ta);
      }
    }
    std::printf("%-12s | %8.1f%s%s | %8.1f%s%s\n", c->name, gf, speeds_f.c_str(), ratios_f.c_str(),
                ga, speeds_a.c_str(), ratios_a.c_str());
    std::fflush(stdout);
  }
  const bool has_c1 = std::any_of(
      rows.begin(), rows.end(), [](const Case* c) { return std::strcmp(c->name, kFmnistC1) == 0; });
  for (std::size_t i = 0; i < refs.size(); ++i) {
    if (all[i][0].empty()) {
      std::printf("geomean ours/%s: no rows (the reference printed nothing)\n",
                  refs[i].label.c_str());
      continue;
    }
    std::string line = fmt::format(
        "geomean ours/{} ({} rows, {}): forward {:.2f}, forward+backward {:.2f}", refs[i].label,
        all[i][0].size(), where, ct_bench::geomean(all[i][0]), ct_bench::geomean(all[i][1]));
    if (has_c1 && !no_c1[i][0].empty())
      line += fmt::format("; without {}: forward {:.2f}, forward+backward {:.2f}", kFmnistC1,
                          ct_bench::geomean(no_c1[i][0]), ct_bench::geomean(no_c1[i][1]));
    std::printf("%s\n", line.c_str());
  }
  return failed;
}

// Batch-1 inference latency: milliseconds per forward call and PyTorch's time / ours. Returns the
// rows that threw.
int latency_table(const std::vector<Case>& cases, const std::vector<ct_bench::Reference>& refs,
                  const std::vector<Timings>& torch, const Measured& measured,
                  const std::string& where) {
  std::vector<const Case*> rows;
  for (const auto& c : cases)
    if (c.group == Group::latency) rows.push_back(&c);
  if (rows.empty()) return 0;
  int failed = 0;
  std::printf(
      "\nbatch-1 inference latency, float32, %s: ms per forward call; /X = PyTorch X's "
      "time / ours (above 1: ours faster)\n",
      where.c_str());
  std::string head = fmt::format("{:<12} | {:>8}", "shape", "ours ms");
  for (const auto& r : refs) head += fmt::format(" {:>8}", r.label);
  for (const auto& r : refs) head += fmt::format(" {:>6}", short_label(r));
  std::printf("%s\n", head.c_str());
  for (const Case* c : rows) {
    if (const auto e = measured.errors.find(c->name); e != measured.errors.end()) {
      std::printf("%-12s | FAILED: %s\n", c->name, e->second.c_str());
      ++failed;
      continue;
    }
    const double ours = measured.times.at(c->name).first;
    std::string times, ratios;
    for (std::size_t i = 0; i < refs.size(); ++i) {
      const auto it = torch[i].find(c->name);
      if (it == torch[i].end()) {
        times += fmt::format(" {:>8}", "-");
        ratios += fmt::format(" {:>6}", "-");
        continue;
      }
      times += fmt::format(" {:8.3f}", it->second.first * 1e3);
      ratios += fmt::format(" {:6.2f}", it->second.first / ours);
    }
    std::printf("%-12s | %8.3f%s%s\n", c->name, ours * 1e3, times.c_str(), ratios.c_str());
    std::fflush(stdout);
  }
  return failed;
}

}  // namespace

int main(int argc, char** argv) {
  const ct_bench::SuiteArgs args = ct_bench::parse_suite_args(argc, argv);
  if (!args.error.empty()) {
    std::printf("conv: %s\n", args.error.c_str());
    return 2;
  }
  const bool gpu = args.device == "cuda";
  if (args.device != "cpu" && !gpu) {
    std::printf("conv: expected --device cpu or cuda, got %s\n", args.device.c_str());
    return 2;
  }
  if (gpu && !cuda::is_available()) {
    std::printf("conv: expected a CUDA device for --device cuda, got none: %s\n",
                cuda::unavailable_reason().c_str());
    return 2;
  }
  if (!ct_bench::apply_isa("conv", args.isa)) return 2;
  const auto refs = ct_bench::resolve_references("conv", args.python, args.no_old, args.device);
  if (!refs) return 2;
  const Device dev = gpu ? Device::cuda(0) : Device::cpu();
  const bool with_extra = args.extra || (!args.quick && !args.no_extra);
  std::vector<Case> cases;
  for (const auto& c : kCases)
    if (args.selected(c.name) && (c.group != Group::extra || with_extra || !args.only.empty()))
      cases.push_back(c);
  for (auto& c : cases) {
    if (c.group == Group::latency) continue;  // batch 1 by definition
    if (gpu) c.n *= 4;
    if (args.quick) c.n = std::max<std::int64_t>(1, c.n / 4);
  }
  const std::vector<int> thread_counts = gpu ? std::vector<int>{1} : args.threads;
  ct_bench::print_header(gpu ? "bench_conv on cuda:0" : "bench_conv", thread_counts, *refs,
                         args.no_old);
  // A shape whose validation fails or throws is reported and left out of the timing.
  int failures = 0;
  std::vector<Case> valid;
  for (const auto& c : cases) {
    bool ok = false;
    try {
      ok = gpu ? validate_cuda(c) : validate(c);
    } catch (const std::exception& e) {
      std::printf("VALIDATION FAILED for %s: %s\n", c.name, e.what());
    }
    if (ok) valid.push_back(c);
    failures += ok ? 0 : 1;
  }
  std::printf("validation: %d of %zu shapes failed%s\n", failures, cases.size(),
              failures ? " (not timed)" : "");
  cases = valid;

  for (int threads : thread_counts) {
    // Each round: every reference, then ours; medians over the rounds per shape and side.
    std::vector<std::vector<Timings>> torch_rounds(refs->size());
    std::vector<Timings> ours_rounds;
    Measured ours;
    for (int round = 0; round < args.rounds; ++round) {
      for (std::size_t i = 0; i < refs->size(); ++i)
        torch_rounds[i].push_back(
            run_torch((*refs)[i], threads, cases, args.device, args.min_seconds()));
      omp_set_num_threads(threads);
      Timings mine;
      for (const auto& c : cases) {
        if (ours.errors.count(c.name) != 0) continue;
        try {
          mine[c.name] = time_ours(c, dev, args.min_seconds());
        } catch (const std::exception& e) {
          ours.errors[c.name] = e.what();
        }
      }
      ours_rounds.push_back(std::move(mine));
    }
    std::vector<Timings> torch;
    for (const auto& r : torch_rounds) torch.push_back(median_timings(r));
    ours.times = median_timings(ours_rounds);
    std::string where =
        gpu ? "cuda:0 (TF32 off)" : fmt::format("{} thread{}", threads, threads == 1 ? "" : "s");
    if (args.rounds > 1) where += fmt::format(", medians of {} rounds", args.rounds);
    failures += gflops_table("conv suite", cases, Group::suite, *refs, torch, ours, where);
    failures += latency_table(cases, *refs, torch, ours, where);
    failures += gflops_table("extra shapes", cases, Group::extra, *refs, torch, ours, where);
  }
  return failures;
}
