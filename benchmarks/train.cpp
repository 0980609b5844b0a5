// benchmarks/train: training throughput of the small Fashion-MNIST CNN of REFERENCE.md,
//   Conv(1,32,3,p1)-ReLU-MaxPool2-Conv(32,64,3,p1)-ReLU-MaxPool2-Flatten-Linear(3136,128)-ReLU-
//   Linear(128,10), cross-entropy, SGD lr 0.05 momentum 0.9,
// against PyTorch with the same batch size and thread count: the newest PyTorch
// (<repo>/.bench-venv, made by scripts/bench-env, or --torch PATH) and Debian's PyTorch 1.13
// (/usr/bin/python3) where it is installed (--no-old skips it), each in a child process
// (scripts/bench_train_torch.py) started by this same command. Both sides train on 8 fixed
// synthetic batches (uniform images, random labels) in a loop, so that data loading is not timed;
// each reports the best of three windows of training steps as images/s, and the table prints the
// ratios ours / PyTorch (above 1: ours faster). Validation first: one of our steps is checked
// against the same step computed with plain ops (the modules and the optimizer must agree with the
// maths). Memory: the peak resident set (VmHWM, getrusage's ru_maxrss) of each process, and its
// growth over the resident set just before training (PyTorch's process carries the Python
// interpreter and libtorch); then the ratios ours / PyTorch of both (below 1: ours smaller). With
// --device cuda both sides train on the GPU (cuDNN, TF32 off): model, batches and optimizer state
// live on cuda:0, each window ends with a device synchronisation, validation compares one GPU step
// with the same step on the CPU, memory is the peak of device memory in use (convtape's caching
// allocator, PyTorch's torch.cuda.max_memory_allocated) and --torch's PyTorch is the only
// reference.
// Deterministic mode (convtape::set_deterministic, core/settings.h) is timed beside the default
// mode on the CPU, windows alternating between the two, and its promise validated first: a few
// steps on 1 thread and on the most threads asked for give bit-identical parameters. --mode picks
// one mode (on CUDA the default is the default mode alone; --mode both times cuDNN's
// deterministic algorithms too). --isa picks our ISA path (cpu::set_isa).
//   usage: train [--threads 1,2] [--batch 64] [--steps 40] [--quick] [--torch PATH] [--no-old]
//                [--isa avx512|avx2|portable] [--device cpu|cuda] [--mode
//                default|deterministic|both]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "bench_util.h"
#include "convtape.h"
#include "small_cnn.h"

using namespace convtape;

namespace {

using ct_bench::small_cnn;

long rss_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return 0;
}

long peak_rss_kib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

// One training step computed by the library, and again by hand from the same parameters: the
// losses and the updated first-layer weights must agree.
bool validate() {
  manual_seed(3);
  auto model = small_cnn();
  const Tensor x = rand({8, 1, 28, 28});
  const Tensor y = randint(0, 10, {8});
  std::vector<Tensor> p0;
  for (const Tensor& p : model->parameters()) p0.push_back(p.detach().clone().requires_grad_());
  optim::SGD sgd(model->parameters(), optim::SGDOptions(0.05).momentum(0.9));
  const Tensor loss = cross_entropy((*model)(x), y);
  sgd.zero_grad();
  loss.backward();
  sgd.step();
  // By hand: the same network from the same parameters, then w - lr * grad (the first momentum
  // step is the gradient itself).
  Tensor h = max_pool(relu(conv(x, p0[0], p0[1], ConvOptions().padding(1))), PoolOptions(2));
  h = max_pool(relu(conv(h, p0[2], p0[3], ConvOptions().padding(1))), PoolOptions(2));
  h = relu(matmul(flatten(h, 1), transpose(p0[4], 0, 1)) + p0[5]);
  const Tensor ref = cross_entropy(matmul(h, transpose(p0[6], 0, 1)) + p0[7], y);
  ref.backward();
  const double dl = std::abs(loss.item() - ref.item());
  const Tensor w_ref = p0[0].detach() - p0[0].grad() * 0.05;
  const double dw = max(abs(model->parameters()[0] - w_ref)).item();
  const bool ok = dl <= 1e-5 && dw <= 1e-6;
  std::printf("validation: loss %.6f vs %.6f by hand, first-layer update max |diff| %.2e: %s\n",
              loss.item(), ref.item(), dw, ok ? "ok" : "FAILED");
  return ok;
}

// One training step on cuda:0 against the same step on the CPU from the same parameters.
bool validate_cuda(const Device& dev) {
  manual_seed(3);
  auto cpu_model = small_cnn();
  auto gpu_model = small_cnn();
  gpu_model->load_state_dict(cpu_model->state_dict());
  gpu_model->to(dev);
  const Tensor x = rand({8, 1, 28, 28});
  const Tensor y = randint(0, 10, {8});
  optim::SGD cpu_sgd(cpu_model->parameters(), optim::SGDOptions(0.05).momentum(0.9));
  optim::SGD gpu_sgd(gpu_model->parameters(), optim::SGDOptions(0.05).momentum(0.9));
  const Tensor l_cpu = cross_entropy((*cpu_model)(x), y);
  const Tensor l_gpu = cross_entropy((*gpu_model)(x.to(dev)), y.to(dev));
  for (auto* s : {&cpu_sgd, &gpu_sgd}) s->zero_grad();
  l_cpu.backward();
  l_gpu.backward();
  cpu_sgd.step();
  gpu_sgd.step();
  double dw = 0;
  const auto pc = cpu_model->parameters(), pg = gpu_model->parameters();
  for (std::size_t i = 0; i < pc.size(); ++i)
    dw = std::max(dw, max(abs(pc[i] - pg[i].cpu())).item());
  const double dl = std::abs(l_cpu.item() - l_gpu.item());
  const bool ok = dl <= 1e-5 && dw <= 1e-5;
  std::printf(
      "validation on %s: loss %.6f vs %.6f on the CPU, updated parameters max |diff| "
      "%.2e: %s\n",
      dev.str().c_str(), l_gpu.item(), l_cpu.item(), dw, ok ? "ok" : "FAILED");
  return ok;
}

// Deterministic mode's promise on this model: parameters after a few steps on 1 thread and on
// `threads` threads are bit-identical.
bool validate_deterministic(int threads) {
  const DeterministicGuard det(true);
  const int previous = num_threads();
  std::vector<std::vector<Tensor>> params;
  for (int t : {1, threads}) {
    set_num_threads(t);
    manual_seed(4);
    auto model = small_cnn();
    optim::SGD sgd(model->parameters(), optim::SGDOptions(0.05).momentum(0.9));
    for (int s = 0; s < 3; ++s) {
      const Tensor x = rand({32, 1, 28, 28});
      const Tensor y = randint(0, 10, {32});
      const Tensor loss = cross_entropy((*model)(x), y);
      sgd.zero_grad();
      loss.backward();
      sgd.step();
    }
    params.push_back(model->parameters());
  }
  set_num_threads(previous);
  bool same = true;
  for (std::size_t i = 0; i < params[0].size(); ++i)
    same = same && max(abs(params[0][i] - params[1][i])).item() == 0.0;
  std::printf("validation: deterministic mode, 3 steps on 1 and on %d threads: parameters %s\n",
              threads, same ? "bit-identical: ok" : "differ: FAILED");
  return same;
}

struct TorchResult {
  double images_per_second = 0;
  long peak_kib = 0, baseline_kib = 0;
  bool ok = false;
};

TorchResult run_torch(const std::string& python, int threads, std::int64_t batch, int steps,
                      const std::string& device) {
  const std::string cmd =
      fmt::format("{}'{}' {}/scripts/bench_train_torch.py {} {} {} 3 {}", ct_bench::reference_env(),
                  python, CT_SOURCE_DIR, threads, batch, steps, device);
  TorchResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char line[256];
  if (std::fgets(line, sizeof(line), p)) {
    std::istringstream ss(line);
    r.ok = static_cast<bool>(ss >> r.images_per_second >> r.peak_kib >> r.baseline_kib);
  }
  pclose(p);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  ct_bench::SuiteArgs args;
  std::int64_t batch = 64;
  int steps = 40;
  bool steps_given = false;
  std::string device_name = "cpu";
  std::string mode;
  for (int i = 1; i < argc && args.error.empty(); ++i) {
    if (ct_bench::parse_common_arg(argc, argv, i, args)) continue;
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--device" && has_value) {
      device_name = argv[++i];
    } else if (a == "--mode" && has_value) {
      mode = argv[++i];
    } else if (a == "--batch" && has_value) {
      batch = std::atoll(argv[++i]);
    } else if (a == "--steps" && has_value) {
      steps = std::atoi(argv[++i]);
      steps_given = true;
    } else {
      args.error = "expected a known option (see the usage at the top of the source), got " + a;
    }
  }
  if (!args.error.empty()) {
    std::printf("train: %s\n", args.error.c_str());
    return 2;
  }
  if (args.quick && !steps_given) steps = 10;
  if (batch < 1 || steps < 1) {
    std::printf("train: expected --batch and --steps of at least 1, got %lld and %d\n",
                static_cast<long long>(batch), steps);
    return 2;
  }
  const bool gpu = device_name == "cuda";
  if (device_name != "cpu" && !gpu) {
    std::printf("train: expected --device cpu or cuda, got %s\n", device_name.c_str());
    return 2;
  }
  if (gpu && !cuda::is_available()) {
    std::printf("train: expected a CUDA device for --device cuda, got none: %s\n",
                cuda::unavailable_reason().c_str());
    return 2;
  }
  if (mode.empty()) mode = gpu ? "default" : "both";
  if (mode != "default" && mode != "deterministic" && mode != "both") {
    std::printf("train: expected --mode default, deterministic or both, got %s\n", mode.c_str());
    return 2;
  }
  if (!ct_bench::apply_isa("train", args.isa)) return 2;
  const auto refs = ct_bench::resolve_references("train", args.python, args.no_old, device_name);
  if (!refs) return 2;
  std::vector<int> thread_counts = gpu ? std::vector<int>{1} : args.threads;  // GPU: one row
  ct_bench::print_header(gpu ? "bench_train on cuda:0" : "bench_train", thread_counts, *refs,
                         args.no_old);
  const Device dev = gpu ? Device::cuda(0) : Device::cpu();
  if (!validate() || (gpu && !validate_cuda(dev))) return 1;
  int most_threads = 1;
  for (int t : thread_counts) most_threads = std::max(most_threads, t);
  if (!gpu && mode != "default" && !validate_deterministic(std::max(most_threads, 2))) return 1;
  // The modes timed, in the order their windows alternate.
  std::vector<bool> modes;
  if (mode != "deterministic") modes.push_back(false);
  if (mode != "default") modes.push_back(true);

  manual_seed(0);
  auto model = small_cnn();
  model->to(dev);
  optim::SGD sgd(model->parameters(), optim::SGDOptions(0.05).momentum(0.9));
  std::vector<Tensor> xs, ys;
  for (int i = 0; i < 8; ++i) {
    xs.push_back(rand({batch, 1, 28, 28}).to(dev));
    ys.push_back(randint(0, 10, {batch}).to(dev));
  }
  int step_index = 0;
  auto train_step = [&] {
    const Tensor loss = cross_entropy((*model)(xs[step_index % 8]), ys[step_index % 8]);
    sgd.zero_grad();
    loss.backward();
    sgd.step();
    ++step_index;
  };
  const long baseline = rss_kib();
  std::printf(
      "\nsmall CNN training, float32, batch %lld, %d steps per window, best of 3 windows, %s; "
      "images/s, /X = ours / PyTorch X\n",
      static_cast<long long>(batch), steps, gpu ? "cuda:0 (TF32 off)" : "CPU");
  const bool both = modes.size() == 2;
  std::string head =
      fmt::format("{:<8} | {:>12}", "threads", modes[0] ? "determ. img/s" : "ours img/s");
  if (both) head += fmt::format(" {:>13} {:>8}", "determ. img/s", "det/ours");
  for (const auto& r : *refs)
    head +=
        fmt::format(" | {:>12} {:>6}", r.label + " img/s", fmt::format("/{}", r.label.substr(2)));
  std::printf("%s\n", head.c_str());
  // Per thread count, each reference's result.
  std::vector<std::pair<int, std::vector<TorchResult>>> torch_results;
  const bool initial_mode = deterministic();
  for (int threads : thread_counts) {
    std::vector<TorchResult> ts;
    for (const auto& r : *refs)
      ts.push_back(run_torch(r.python, threads, batch, steps, device_name));
    set_num_threads(threads);
    std::vector<double> best(modes.size(), 0.0);
    for (std::size_t m = 0; m < modes.size(); ++m) {  // warm-up (cuDNN measures per mode)
      set_deterministic(modes[m]);
      train_step();
      train_step();
    }
    if (gpu) cuda::synchronize("bench train", dev);
    for (int w = 0; w < 3; ++w)
      for (std::size_t m = 0; m < modes.size(); ++m) {
        set_deterministic(modes[m]);
        const auto start = std::chrono::steady_clock::now();
        for (int s = 0; s < steps; ++s) train_step();
        if (gpu) cuda::synchronize("bench train", dev);
        const double secs =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        best[m] = std::max(best[m], static_cast<double>(steps * batch) / secs);
      }
    set_deterministic(initial_mode);
    // The ratio to PyTorch is the first mode's (PyTorch's CPU training is not deterministic
    // across thread counts either).
    const double ours = best[0];
    std::string row = fmt::format("{:<8} | {:12.1f}", threads, ours);
    if (both) row += fmt::format(" {:13.1f} {:8.2f}", best[1], best[1] / ours);
    for (const TorchResult& t : ts)
      row +=
          t.ok ? fmt::format(" | {:12.1f} {:6.2f}", t.images_per_second, ours / t.images_per_second)
               : fmt::format(" | {:>12} {:>6}", "failed", "-");
    std::printf("%s\n", row.c_str());
    std::fflush(stdout);
    torch_results.emplace_back(threads, std::move(ts));
  }
  if (gpu) {
    const auto st = cuda::memory_stats(dev);
    const double ours_mib = static_cast<double>(st.peak_allocated_bytes) / 1048576.0;
    std::printf("\npeak device memory in use: ours %.1f MiB (%.1f MiB reserved)\n", ours_mib,
                static_cast<double>(st.peak_reserved_bytes) / 1048576.0);
    for (const auto& [threads, ts] : torch_results)
      for (std::size_t i = 0; i < ts.size(); ++i)
        if (ts[i].ok)
          std::printf("  %s: %.1f MiB; ours / %s %.2f\n", (*refs)[i].label.c_str(),
                      ts[i].peak_kib / 1024.0, (*refs)[i].label.c_str(),
                      ours_mib / (ts[i].peak_kib / 1024.0));
    return 0;
  }
  const long peak = peak_rss_kib();
  std::printf(
      "\npeak resident memory (VmHWM): ours %.1f MiB, %.1f MiB over the %.1f MiB before training "
      "(one process for every thread count and mode)\n",
      peak / 1024.0, (peak - baseline) / 1024.0, baseline / 1024.0);
  std::printf("%-8s | %-7s | %10s %10s %10s | %10s %10s\n", "threads", "ref", "peak MiB",
              "growth MiB", "base MiB", "ours/peak", "ours/grow");
  for (const auto& [threads, ts] : torch_results)
    for (std::size_t i = 0; i < ts.size(); ++i) {
      if (!ts[i].ok) continue;
      const long growth = ts[i].peak_kib - ts[i].baseline_kib;
      std::printf("%-8d | %-7s | %10.1f %10.1f %10.1f | %10.2f %10.2f\n", threads,
                  (*refs)[i].label.c_str(), ts[i].peak_kib / 1024.0, growth / 1024.0,
                  ts[i].baseline_kib / 1024.0, double(peak) / double(ts[i].peak_kib),
                  growth > 0 ? double(peak - baseline) / double(growth) : 0.0);
    }
  return 0;
}
