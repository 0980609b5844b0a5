// benchmarks/dist: data-parallel training (dist/, nn::DistributedDataParallel) on one machine. The
// model is the small Fashion-MNIST CNN of REFERENCE.md,
//   Conv(1,32,3,p1)-ReLU-MaxPool2-Conv(32,64,3,p1)-ReLU-MaxPool2-Flatten-Linear(3136,128)-ReLU-
//   Linear(128,10), 421,642 float32 parameters, input [B,1,28,28], cross-entropy, SGD lr 0.05
//   momentum 0.9,
// trained on 4 fixed synthetic global batches of 64 (uniform images, random labels; no data loading
// timed). 1 process x 1 thread trains on the 64 (the plain model, no dist/); 2 processes x 1 thread
// (this binary again under mpirun, one core each) train on 32 each, DDP averaging the gradients:
// (g_0 + g_1) / 2 is the gradient of the mean loss over the 64, so both train the same model, and
// images/s = 64 / (median step time). Speed-up = 2p images/s / 1p images/s (target >= 1.8x). The
// DDP runs cover the bucket layouts 25 MiB (first bucket 1 MiB: the default), 1 MiB everywhere and
// --bucket-mb X (first min(X, 1); the headline, 25 (the library's default) unless given), each with
// overlap on and off; per step they report DDP's last_step().wait_seconds (blocked at the end of
// backward for the buckets) and, from /proc/self/task/*/schedstat, the time the training thread was
// runnable but off its CPU and the CPU time of the process's other threads (dist's and MPI's): on
// one core per rank, what the communication thread's busy-polling takes from the computation. A
// 2-process run without any communication (each rank trains its own replica on its 32) is the
// ceiling the machine allows. Bandwidth: the gradients' buckets all-reduced through
// dist::ProcessGroup (all started asynchronously in bucket order, then all waited, as DDP does)
// against one raw MPI_Allreduce(MPI_IN_PLACE, ..., MPI_FLOAT, MPI_SUM) of the same bytes from the
// calling thread; GB/s = bytes / median seconds over --reps repetitions (target ratio >= 0.9x).
// Validation first, in the workers: a DDP step on 32 per rank equals the one-process step on the 64
// (every layout, overlap on and off, two steps so that momentum takes part), overlap on starts
// buckets inside backward and off does not, every bucket's all-reduce and the raw one give the
// exact sums of small integers; after timing, the replicas' parameters are bit-identical across
// ranks.
//   usage: bench_dist [--steps 60] [--warmup 10] [--reps 200] [--bucket-mb 25] [--bind core|none]
//                     [--yield-when-idle] [--help]
#include <dirent.h>
#include <mpi.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.h"
#include "convtape.h"
#include "dist/ddp.h"
#include "dist/process_group.h"
#include "small_cnn.h"

#ifndef CT_MPIEXEC
#error "benchmarks/dist needs CT_MPIEXEC, the mpirun path (benchmarks/CMakeLists.txt defines it)"
#endif

using namespace convtape;

namespace {

constexpr std::int64_t kGlobalBatch = 64;
constexpr int kBatches = 4;
constexpr int kRounds = 3;  // timed steps are split into rounds that cycle over the runs

struct Args {
  int steps = 60;
  int warmup = 10;
  int reps = 200;
  double bucket_mb = 25.0;  // the library's default layout
  std::string bind = "core";
  bool yield_when_idle = false;
  bool worker = false;
  bool help = false;
  std::string error;
};

void usage() {
  std::printf(
      "usage: bench_dist [--steps N] [--warmup N] [--reps N] [--bucket-mb X] [--bind core|none]\n"
      "                  [--yield-when-idle] [--help]\n"
      "  Data-parallel training of the small Fashion-MNIST CNN, global batch 64: 1 process x 1\n"
      "  thread against 2 processes x 1 thread (%s -np 2, DDP), then the DDP buckets' all-reduce\n"
      "  against one raw MPI_Allreduce of the same bytes.\n"
      "  --steps N        timed training steps per run (default 60)\n"
      "  --warmup N       untimed steps before them (default 10)\n"
      "  --reps N         all-reduce repetitions per bandwidth figure (default 200)\n"
      "  --bucket-mb X    the headline bucket cap in MiB (first bucket min(X, 1)); the default\n"
      "                   layout (25 MiB, first 1 MiB) and 1 MiB are always measured (default 25)\n"
      "  --bind core|none mpirun's --bind-to for the workers (default core)\n"
      "  --yield-when-idle  run the workers with OMPI_MCA_mpi_yield_when_idle=1\n"
      "  (--worker is this binary's own mode under mpirun)\n",
      CT_MPIEXEC);
}

Args parse_args(int argc, char** argv) {
  Args a;
  auto int_value = [&](int& i, const std::string& name, int low, int high, int& out) {
    if (i + 1 >= argc) {
      a.error = "expected a value after " + name + ", got none";
      return;
    }
    const std::string v = argv[++i];
    char* end = nullptr;
    const long n = std::strtol(v.c_str(), &end, 10);
    if (end == v.c_str() || *end != '\0' || n < low || n > high)
      a.error = "expected " + name + " between " + std::to_string(low) + " and " +
                std::to_string(high) + ", got " + v;
    else
      out = static_cast<int>(n);
  };
  for (int i = 1; i < argc && a.error.empty(); ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      a.help = true;
    } else if (arg == "--worker") {
      a.worker = true;
    } else if (arg == "--yield-when-idle") {
      a.yield_when_idle = true;
    } else if (arg == "--steps") {
      int_value(i, arg, 1, 100000, a.steps);
    } else if (arg == "--warmup") {
      int_value(i, arg, 0, 100000, a.warmup);
    } else if (arg == "--reps") {
      int_value(i, arg, 4, 1000000, a.reps);
    } else if (arg == "--bucket-mb") {
      if (i + 1 >= argc) {
        a.error = "expected a value after --bucket-mb, got none";
        break;
      }
      const std::string v = argv[++i];
      char* end = nullptr;
      a.bucket_mb = std::strtod(v.c_str(), &end);
      if (end == v.c_str() || *end != '\0' || !(a.bucket_mb > 0 && a.bucket_mb <= 1024))
        a.error = "expected --bucket-mb to be a number of MiB in (0, 1024], got " + v;
    } else if (arg == "--bind") {
      if (i + 1 >= argc) {
        a.error = "expected core or none after --bind, got none";
        break;
      }
      a.bind = argv[++i];
      if (a.bind != "core" && a.bind != "none")
        a.error = "expected --bind core or none, got " + a.bind;
    } else {
      a.error = "expected a known option (see --help), got " + arg;
    }
  }
  return a;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

using ct_bench::small_cnn;

// Every model starts from this seed, so every rank and the one-process reference hold the same
// initial parameters (DDP broadcasts rank 0's anyway).
std::shared_ptr<nn::Sequential> seeded_cnn() {
  manual_seed(1);
  return small_cnn();
}

optim::SGDOptions sgd_options() {
  return optim::SGDOptions(0.05).momentum(0.9);
}

// The global batches, drawn identically on every rank; rank r of `size` keeps rows
// [r * 64 / size, (r + 1) * 64 / size).
struct Data {
  std::vector<Tensor> x, y;
};
Data make_data(int rank, int size) {
  manual_seed(7);
  Data d;
  const std::int64_t per = kGlobalBatch / size;
  for (int k = 0; k < kBatches; ++k) {
    const Tensor x = rand({kGlobalBatch, 1, 28, 28});
    const Tensor y = randint(0, 10, {kGlobalBatch});
    d.x.push_back(narrow(x, 0, per * rank, per).contiguous());
    d.y.push_back(narrow(y, 0, per * rank, per).contiguous());
  }
  return d;
}

// One training step; its wall time in seconds.
double train_step(nn::Module& m, optim::SGD& sgd, const Tensor& x, const Tensor& y) {
  const auto t0 = std::chrono::steady_clock::now();
  const Tensor loss = cross_entropy(m(x), y);
  sgd.zero_grad();
  loss.backward();
  sgd.step();
  return seconds_since(t0);
}

// A bucket layout: bucket_cap_mb and first_bucket_cap_mb.
struct Layout {
  double cap = 25.0, first = 1.0;
  std::string key() const { return fmt::format("{:g}", cap); }
  std::string name() const {
    return first == cap ? fmt::format("{:g} MiB", cap)
                        : fmt::format("{:g} MiB (first {:g})", cap, first);
  }
  nn::DistributedDataParallelOptions options(bool overlap) const {
    return nn::DistributedDataParallelOptions()
        .bucket_cap_mb(cap)
        .first_bucket_cap_mb(first)
        .overlap(overlap);
  }
};

// The headline layout (--bucket-mb) first, then the default and 1 MiB where they differ from it.
std::vector<Layout> layouts(double headline) {
  std::vector<Layout> out{{headline, std::min(1.0, headline)}};
  for (double cap : {25.0, 1.0})
    if (cap != headline) out.push_back({cap, std::min(1.0, cap)});
  return out;
}

std::string run_key(const Layout& l, bool overlap) {
  return "ddp." + l.key() + (overlap ? ".on" : ".off");
}

// ---------------------------------------------------------------------------------------------
// Worker mode: one rank under mpirun. Rank 0 prints "result KEY VALUE" lines for the driver and
// "info ..." lines it passes through.

// Per step (or repetition) the slowest rank's time, then the median over steps: a step of the
// job is as long as its slowest rank's. Collective: every rank calls it with as many values.
double job_median(const std::vector<double>& mine) {
  const Tensor all = dist::all_gather(from_vector(mine, {static_cast<std::int64_t>(mine.size())}));
  const double* p = all.data_ptr<double>();
  const auto n = mine.size();
  std::vector<double> slowest(n, 0.0);
  for (int r = 0; r < dist::world_size(); ++r)
    for (std::size_t i = 0; i < n; ++i) slowest[i] = std::max(slowest[i], p[r * n + i]);
  return ct_bench::median(std::move(slowest));
}

double max_abs_diff(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  double d = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const Tensor ca = a[i].detach().contiguous(), cb = b[i].detach().contiguous();
    const float *pa = ca.data_ptr<float>(), *pb = cb.data_ptr<float>();
    for (std::int64_t k = 0; k < ca.numel(); ++k)
      d = std::max(d, static_cast<double>(std::abs(pa[k] - pb[k])));
  }
  return d;
}

// Two DDP steps on this rank's 32 against two plain steps on the full 64 in this process, from the
// same initial parameters: the averaged gradients must give the same model.
bool validate_ddp(const Layout& l, bool overlap, const Data& shard, const Data& whole) {
  auto replica = seeded_cnn();
  auto ref = seeded_cnn();
  auto ddp = std::make_shared<nn::DistributedDataParallel>(replica, l.options(overlap));
  optim::SGD s_ddp(ddp->parameters(), sgd_options()), s_ref(ref->parameters(), sgd_options());
  std::vector<Tensor> p0;
  for (const Tensor& p : ref->parameters()) p0.push_back(p.detach().clone());
  for (int k = 0; k < 2; ++k) {
    train_step(*ddp, s_ddp, shard.x[k], shard.y[k]);
    train_step(*ref, s_ref, whole.x[k], whole.y[k]);
  }
  const double diff = max_abs_diff(replica->parameters(), ref->parameters());
  const double moved = max_abs_diff(ref->parameters(), p0);
  const auto& st = ddp->last_step();
  const bool any_in_backward = std::any_of(st.started_in_backward.begin(),
                                           st.started_in_backward.end(), [](bool b) { return b; });
  const std::size_t buckets = st.started_in_backward.size();
  // Overlap on starts every bucket but the last to become ready inside backward; off, none.
  const bool overlap_ok = overlap ? (buckets < 2 || any_in_backward) : !any_in_backward;
  const bool ok = diff <= 1e-5 && moved > 1e-4 && overlap_ok;
  if (dist::rank() == 0)
    std::printf(
        "info validation: DDP %s overlap %s (%zu buckets, %s in backward): parameters after 2 "
        "steps vs one process on 64, max |diff| %.2e (moved %.2e): %s\n",
        l.name().c_str(), overlap ? "on" : "off", buckets,
        any_in_backward ? "some started" : "none", diff, moved, ok ? "ok" : "FAILED");
  return ok;
}

// Bit-for-bit agreement of the replicas: per parameter its sum and an index-weighted sum, in
// float64, gathered from every rank.
bool replicas_identical(const nn::Module& m, const std::string& what) {
  std::vector<double> sums;
  for (const Tensor& p : m.parameters()) {
    const Tensor c = p.detach().contiguous();
    const float* v = c.data_ptr<float>();
    double s = 0.0, w = 0.0;
    for (std::int64_t k = 0; k < c.numel(); ++k) {
      s += v[k];
      w += v[k] * static_cast<double>(k % 1009 + 1);
    }
    sums.push_back(s);
    sums.push_back(w);
  }
  const auto n = sums.size();
  const Tensor all = dist::all_gather(from_vector(sums, {static_cast<std::int64_t>(n)}));
  const double* p = all.data_ptr<double>();
  bool same = true;
  for (int r = 1; r < dist::world_size(); ++r)
    for (std::size_t i = 0; i < n; ++i) same = same && p[r * n + i] == p[i];
  if (dist::rank() == 0)
    std::printf("info validation: replicas of %s after timing identical across ranks: %s\n",
                what.c_str(), same ? "ok" : "FAILED");
  return same;
}

// The scheduler's account of this process (/proc/self/task/*/schedstat: nanoseconds on a CPU, then
// nanoseconds runnable but waiting for one). The calling thread's waiting time is what other
// threads and processes took from the compute thread (the process group's thread busy-polling in
// MPI on the same core, or another program); the other threads' CPU time is what they used.
struct Sched {
  double main_waiting = 0.0;  // seconds the calling thread was runnable but not running
  double others_cpu = 0.0;    // seconds the process's other threads ran
};
Sched sched_now() {
  Sched s;
  const std::string self = std::to_string(static_cast<long>(gettid()));
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return s;
  while (const dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    const std::string path = std::string("/proc/self/task/") + e->d_name + "/schedstat";
    FILE* f = std::fopen(path.c_str(), "r");
    if (f == nullptr) continue;
    unsigned long long on_cpu = 0, waiting = 0;
    if (std::fscanf(f, "%llu %llu", &on_cpu, &waiting) == 2) {
      if (self == e->d_name)
        s.main_waiting = static_cast<double>(waiting) * 1e-9;
      else
        s.others_cpu += static_cast<double>(on_cpu) * 1e-9;
    }
    std::fclose(f);
  }
  closedir(dir);
  return s;
}

std::string affinity() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return "?";
  std::string s;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) s += (s.empty() ? "" : ",") + std::to_string(c);
  return s;
}

// One timed configuration of the workers.
struct Run {
  std::string key;
  std::shared_ptr<nn::Sequential> model;
  std::shared_ptr<nn::DistributedDataParallel> ddp;  // null: no communication at all
  std::unique_ptr<optim::SGD> sgd;
  std::vector<double> step, wait, backward;
  double main_waiting = 0.0, others_cpu = 0.0;  // summed over the timed steps (Sched)
};

struct BandwidthResult {
  std::vector<std::int64_t> bucket_bytes;
  double dist_s = 0, raw_s = 0, raw_each_s = 0;
  bool ok = true;
};

// The gradients' buckets of layout l, all-reduced (sum) through the process group as DDP does,
// against one raw MPI_Allreduce of the same bytes and against one raw MPI_Allreduce per bucket.
// Raw MPI is called from this thread while the group's thread is idle (every Work waited).
BandwidthResult bandwidth(const Layout& l, int reps) {
  auto model = seeded_cnn();
  nn::DistributedDataParallel ddp(model, l.options(true));
  std::map<std::string, std::int64_t> numel;
  for (const auto& [name, p] : model->named_parameters()) numel[name] = p.numel();
  std::vector<Tensor> flats;
  std::int64_t total = 0;
  BandwidthResult res;
  for (const auto& names : ddp.bucket_names()) {
    std::int64_t n = 0;
    for (const auto& name : names) n += numel.at(name);
    flats.push_back(empty({n}));
    res.bucket_bytes.push_back(n * 4);
    total += n;
  }
  Tensor raw = empty({total});
  const int rank = dist::rank(), size = dist::world_size();

  auto fill = [&](const Tensor& t) {
    float* v = t.data_ptr<float>();
    for (std::int64_t i = 0; i < t.numel(); ++i) v[i] = static_cast<float>((rank + 1) * (i % 7));
  };
  auto exact = [&](const Tensor& t) {
    const float* v = t.data_ptr<float>();
    for (std::int64_t i = 0; i < t.numel(); ++i)
      if (v[i] != static_cast<float>((i % 7) * size * (size + 1) / 2)) return false;
    return true;
  };
  auto run_dist = [&] {
    std::vector<dist::Work> works;
    for (const Tensor& f : flats) works.push_back(dist::all_reduce_async(f));
    for (auto& w : works) w.wait();
  };
  auto run_raw = [&] {
    MPI_Allreduce(MPI_IN_PLACE, raw.raw_data(), static_cast<int>(total), MPI_FLOAT, MPI_SUM,
                  MPI_COMM_WORLD);
  };
  auto run_raw_each = [&] {
    for (const Tensor& f : flats)
      MPI_Allreduce(MPI_IN_PLACE, f.raw_data(), static_cast<int>(f.numel()), MPI_FLOAT, MPI_SUM,
                    MPI_COMM_WORLD);
  };

  // Validation: sums of small integers are exact in float32.
  for (const Tensor& f : flats) fill(f);
  fill(raw);
  run_dist();
  run_raw();
  for (const Tensor& f : flats) res.ok = res.ok && exact(f);
  res.ok = res.ok && exact(raw);
  for (const Tensor& f : flats) fill(f);
  run_raw_each();
  for (const Tensor& f : flats) res.ok = res.ok && exact(f);
  if (rank == 0)
    std::printf("info validation: all-reduce of the %s buckets (dist and raw MPI) exact: %s\n",
                l.name().c_str(), res.ok ? "ok" : "FAILED");
  for (Tensor& f : flats) f.zero_();
  raw.zero_();

  // Blocks of the three kinds alternate, so that the machine's drift falls on all alike.
  std::vector<double> t_dist, t_raw, t_each;
  auto block = [&](const std::function<void()>& fn, std::vector<double>& out, int n) {
    fn();
    for (int i = 0; i < n; ++i) {
      MPI_Barrier(MPI_COMM_WORLD);
      const auto t0 = std::chrono::steady_clock::now();
      fn();
      out.push_back(seconds_since(t0));
    }
  };
  const int blocks = 4, per = std::max(1, reps / blocks);
  for (int b = 0; b < blocks; ++b) {
    block(run_dist, t_dist, per);
    block(run_raw, t_raw, per);
    block(run_raw_each, t_each, per);
  }
  res.dist_s = job_median(t_dist);
  res.raw_s = job_median(t_raw);
  res.raw_each_s = job_median(t_each);
  return res;
}

int worker(const Args& a) {
  dist::init();
  set_num_threads(1);
  const int rank = dist::rank(), size = dist::world_size();
  CT_CHECK(kGlobalBatch % size == 0, "bench_dist: expected a world size dividing 64, got {}", size);
  auto result = [&](const std::string& key, const std::string& value) {
    if (rank == 0) std::printf("result %s %s\n", key.c_str(), value.c_str());
  };
  auto number = [&](const std::string& key, double v) { result(key, fmt::format("{:.9g}", v)); };

  int level = 0;
  MPI_Query_thread(&level);
  const std::string mine = affinity();
  const auto cpus = dist::ProcessGroup::world().all_gather_bytes(
      std::vector<std::uint8_t>(mine.begin(), mine.end()));
  std::string where;
  for (int r = 0; r < size; ++r)
    where += fmt::format("{}rank {} on cpu {}", r ? ", " : "", r,
                         std::string(cpus[static_cast<std::size_t>(r)].begin(),
                                     cpus[static_cast<std::size_t>(r)].end()));
  result("world", std::to_string(size));
  result("placement", where);
  result("mpi_thread_level", level == MPI_THREAD_MULTIPLE ? "multiple" : std::to_string(level));
  const char* yield = std::getenv("OMPI_MCA_mpi_yield_when_idle");
  result("yield_when_idle", yield ? yield : "unset");

  const Data shard = make_data(rank, size), whole = make_data(0, 1);
  const std::vector<Layout> lays = layouts(a.bucket_mb);
  bool ok = true;
  for (const Layout& l : lays)
    for (bool overlap : {true, false}) ok = validate_ddp(l, overlap, shard, whole) && ok;

  std::vector<Run> runs;
  {
    Run r;
    r.key = "nocomm";
    r.model = seeded_cnn();
    r.sgd = std::make_unique<optim::SGD>(r.model->parameters(), sgd_options());
    runs.push_back(std::move(r));
  }
  for (const Layout& l : lays)
    for (bool overlap : {true, false}) {
      Run r;
      r.key = run_key(l, overlap);
      r.model = seeded_cnn();
      r.ddp = std::make_shared<nn::DistributedDataParallel>(r.model, l.options(overlap));
      r.sgd = std::make_unique<optim::SGD>(r.ddp->parameters(), sgd_options());
      runs.push_back(std::move(r));
    }
  // Rounds: every run takes a share of its timed steps in each, so that a slow stretch of the
  // machine does not land on one configuration only.
  int step_no = 0;
  for (int round = 0; round < kRounds; ++round) {
    const int n = a.steps / kRounds + (round < a.steps % kRounds ? 1 : 0);
    for (Run& r : runs) {
      nn::Module& m = r.ddp ? static_cast<nn::Module&>(*r.ddp) : *r.model;
      const int warm = round == 0 ? a.warmup : 2;
      for (int i = 0; i < warm; ++i, ++step_no)
        train_step(m, *r.sgd, shard.x[step_no % kBatches], shard.y[step_no % kBatches]);
      dist::barrier();
      const Sched s0 = sched_now();
      for (int i = 0; i < n; ++i, ++step_no) {
        r.step.push_back(
            train_step(m, *r.sgd, shard.x[step_no % kBatches], shard.y[step_no % kBatches]));
        if (r.ddp) {
          r.wait.push_back(r.ddp->last_step().wait_seconds);
          r.backward.push_back(r.ddp->last_step().backward_seconds);
        }
      }
      const Sched s1 = sched_now();
      r.main_waiting += s1.main_waiting - s0.main_waiting;
      r.others_cpu += s1.others_cpu - s0.others_cpu;
    }
  }
  for (Run& r : runs) {
    number(r.key + ".step_s", job_median(r.step));
    // Per step, the rank that lost (or spent) the most.
    const double steps = static_cast<double>(r.step.size());
    number(r.key + ".stolen_s", job_median({r.main_waiting / steps}));
    number(r.key + ".others_cpu_s", job_median({r.others_cpu / steps}));
    if (!r.ddp) continue;
    number(r.key + ".wait_s", job_median(r.wait));
    number(r.key + ".backward_s", job_median(r.backward));
    number(r.key + ".buckets", static_cast<double>(r.ddp->bucket_names().size()));
    ok = replicas_identical(*r.model, r.key) && ok;
  }

  for (const Layout& l : lays) {
    const BandwidthResult b = bandwidth(l, a.reps);
    ok = ok && b.ok;
    std::string sizes;
    std::int64_t bytes = 0;
    for (std::int64_t s : b.bucket_bytes) {
      if (!sizes.empty()) sizes += ',';
      sizes += std::to_string(s);
      bytes += s;
    }
    result("bw." + l.key() + ".bucket_bytes", sizes);
    number("bw." + l.key() + ".bytes", static_cast<double>(bytes));
    number("bw." + l.key() + ".dist_s", b.dist_s);
    number("bw." + l.key() + ".raw_s", b.raw_s);
    number("bw." + l.key() + ".raw_each_s", b.raw_each_s);
  }

  // Every rank's verdict: one failing rank fails the job.
  Tensor bad = convtape::full({}, ok ? 0.0 : 1.0, kInt64);
  dist::all_reduce(bad, dist::ReduceOp::Max);
  const bool all_ok = bad.item() == 0.0;
  number("valid", all_ok ? 1.0 : 0.0);
  std::fflush(stdout);
  dist::finalize();
  return all_ok ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------
// Driver mode.

// Median seconds per step of the plain model on the whole global batch, in this process.
// Median seconds per step of the plain model on the whole global batch, in this process, and the
// seconds per step it waited for the CPU (other programs on the machine).
std::pair<double, double> plain_step_seconds(const Args& a) {
  const Data d = make_data(0, 1);
  auto model = seeded_cnn();
  optim::SGD sgd(model->parameters(), sgd_options());
  for (int i = 0; i < a.warmup; ++i) train_step(*model, sgd, d.x[i % kBatches], d.y[i % kBatches]);
  std::vector<double> t;
  const Sched s0 = sched_now();
  for (int i = 0; i < a.steps; ++i)
    t.push_back(train_step(*model, sgd, d.x[i % kBatches], d.y[i % kBatches]));
  const double stolen = (sched_now().main_waiting - s0.main_waiting) / a.steps;
  return {ct_bench::median(std::move(t)), stolen};
}

std::string self_path() {
  std::vector<char> buf(4096);
  const ssize_t n = readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  return n > 0 ? std::string(buf.data(), static_cast<std::size_t>(n)) : std::string();
}

int driver(const Args& a) {
  ct_bench::print_header("bench_dist", {1}, {}, true);
  set_num_threads(1);
  const std::vector<Layout> lays = layouts(a.bucket_mb);
  std::printf(
      "small Fashion-MNIST CNN (421,642 float32 parameters), global batch 64, synthetic data; "
      "%d timed steps after %d warm-up, medians\n",
      a.steps, a.warmup);
  // Other programs on the two cores (a build, another benchmark) skew every figure below: the
  // runnable tasks besides this one (/proc/loadavg's fourth field), sampled over half a second.
  double others = 0.0;
  for (int i = 0; i < 10; ++i) {
    if (FILE* f = std::fopen("/proc/loadavg", "r")) {
      double l1 = 0, l5 = 0, l15 = 0;
      int running = 0;
      if (std::fscanf(f, "%lf %lf %lf %d", &l1, &l5, &l15, &running) == 4)
        others += (running - 1) / 10.0;
      std::fclose(f);
    }
    usleep(50000);
  }
  std::printf("other runnable tasks before the run: %.1f on average%s\n", others,
              others >= 0.5 ? " (other work is running: the figures are unreliable)" : "");
  const auto before = plain_step_seconds(a);

  const std::string cmd =
      std::string(a.yield_when_idle ? "OMPI_MCA_mpi_yield_when_idle=1 " : "") + "'" + CT_MPIEXEC +
      "' -np 2 --allow-run-as-root --oversubscribe --bind-to " + a.bind + " '" + self_path() +
      "' --worker --steps " + std::to_string(a.steps) + " --warmup " + std::to_string(a.warmup) +
      " --reps " + std::to_string(a.reps) + " --bucket-mb " + fmt::format("{:g}", a.bucket_mb);
  std::printf("workers: %s\n", cmd.c_str());
  std::fflush(stdout);
  std::map<std::string, std::string> res;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) {
    std::printf("bench_dist: expected to start %s, got a popen failure\n", CT_MPIEXEC);
    return 1;
  }
  char line[4096];
  while (std::fgets(line, sizeof(line), p)) {
    std::string s(line);
    if (!s.empty() && s.back() == '\n') s.pop_back();
    if (s.rfind("result ", 0) == 0) {
      const auto sp = s.find(' ', 7);
      if (sp != std::string::npos) res[s.substr(7, sp - 7)] = s.substr(sp + 1);
    } else if (s.rfind("info ", 0) == 0) {
      std::printf("%s\n", s.substr(5).c_str());
    } else {
      std::printf("  worker: %s\n", s.c_str());
    }
  }
  const int status = pclose(p);
  const bool valid = res.count("valid") && res["valid"] == "1";
  if (status != 0 || !valid) {
    std::printf("bench_dist: %s (mpirun exit status %d); no figures\n",
                res.count("valid") ? "VALIDATION FAILED" : "the workers did not finish", status);
    return 1;
  }
  const auto after = plain_step_seconds(a);
  auto num = [&](const std::string& key) {
    const auto it = res.find(key);
    return it == res.end() ? std::nan("") : std::atof(it->second.c_str());
  };

  std::printf("placement: %s; MPI thread level %s; OMPI_MCA_mpi_yield_when_idle %s\n\n",
              res["placement"].c_str(), res["mpi_thread_level"].c_str(),
              res["yield_when_idle"].c_str());

  // The faster of the two baselines: the speed-up is then the conservative one.
  const double base = std::min(before.first, after.first);
  std::printf("%-44s %8s %8s %8s %8s %8s %8s %8s\n", "training (global batch 64)", "step ms",
              "images/s", "speed-up", "wait ms", "bwd ms", "stolen", "comm cpu");
  for (const auto& [label, m] : {std::pair{"1p x 1t  plain model, 64 (before)", before},
                                 std::pair{"1p x 1t  plain model, 64 (after)", after}})
    std::printf("%-44s %8.2f %8.0f %8s %8s %8s %8.2f %8s\n", label, m.first * 1e3,
                kGlobalBatch / m.first, "", "", "", m.second * 1e3, "");
  auto row = [&](const std::string& label, const std::string& key, bool ddp) {
    const double s = num(key + ".step_s");
    const std::string wait = ddp ? fmt::format("{:.2f}", num(key + ".wait_s") * 1e3) : "-";
    const std::string bwd = ddp ? fmt::format("{:.2f}", num(key + ".backward_s") * 1e3) : "-";
    std::printf("%-44s %8.2f %8.0f %7.2fx %8s %8s %8.2f %8.2f\n", label.c_str(), s * 1e3,
                kGlobalBatch / s, base / s, wait.c_str(), bwd.c_str(), num(key + ".stolen_s") * 1e3,
                num(key + ".others_cpu_s") * 1e3);
  };
  row("2p x 1t  no communication (ceiling)", "nocomm", false);
  for (std::size_t i = 0; i < lays.size(); ++i)
    for (bool overlap : {true, false})
      row(fmt::format("2p x 1t  DDP {}, overlap {}{}", lays[i].name(), overlap ? "on" : "off",
                      i == 0 && overlap ? " *" : ""),
          run_key(lays[i], overlap), true);
  std::printf(
      "(speed-up over the faster 1p baseline; wait: DDP's wait_seconds, blocked at the end of "
      "backward; bwd: first gradient hook to the end of backward; stolen: ms per step the "
      "training thread was runnable but off its CPU; comm cpu: ms per step the process's other "
      "threads (dist's, MPI's) ran; both from /proc schedstat, the worse rank; * headline)\n\n");

  std::printf("%-22s %-28s %10s %10s %7s %12s\n", "all-reduce (float32)", "buckets (KiB)",
              "dist GB/s", "raw GB/s", "ratio", "raw/bkt GB/s");
  for (const Layout& l : lays) {
    const std::string k = "bw." + l.key();
    std::string kib;
    for (const std::string& s : ct_bench::split_list(res[k + ".bucket_bytes"]))
      kib += fmt::format("{}{:.1f}", kib.empty() ? "" : " + ", std::atof(s.c_str()) / 1024);
    const double bytes = num(k + ".bytes");
    const double d = bytes / num(k + ".dist_s") / 1e9, r = bytes / num(k + ".raw_s") / 1e9;
    std::printf("%-22s %-28s %10.2f %10.2f %6.2fx %12.2f\n", l.name().c_str(), kib.c_str(), d, r,
                d / r, bytes / num(k + ".raw_each_s") / 1e9);
  }
  std::printf(
      "(GB/s: total bytes / median seconds of %d repetitions, slowest rank; dist: the buckets "
      "through dist::ProcessGroup, all started then all waited; raw: one MPI_Allreduce of all "
      "the bytes; raw/bkt: one raw MPI_Allreduce per bucket, in turn)\n\n",
      a.reps);

  const Layout& h = lays[0];
  const double speedup = base / num(run_key(h, true) + ".step_s");
  const double ceiling = base / num("nocomm.step_s");
  const std::string k = "bw." + h.key();
  const double bw_ratio = num(k + ".raw_s") / num(k + ".dist_s");
  std::printf("headline (--bucket-mb %g: DDP %s, overlap on):\n", a.bucket_mb, h.name().c_str());
  std::printf(
      "  speed-up 2p x 1t over 1p x 1t: %.2fx (target >= 1.8x: %s); without any "
      "communication %.2fx\n",
      speedup, speedup >= 1.8 ? "met" : "BELOW", ceiling);
  std::printf("  communication wait per step: %.2f ms with overlap, %.2f ms without\n",
              num(run_key(h, true) + ".wait_s") * 1e3, num(run_key(h, false) + ".wait_s") * 1e3);
  std::printf("  bucketed all-reduce / raw MPI_Allreduce: %.2fx (target >= 0.9x: %s)\n", bw_ratio,
              bw_ratio >= 0.9 ? "met" : "BELOW");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse_args(argc, argv);
  if (!a.error.empty()) {
    std::printf("bench_dist: %s\n", a.error.c_str());
    return 2;
  }
  if (a.help) {
    usage();
    return 0;
  }
  if (!a.worker) return driver(a);
  try {
    return worker(a);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_dist worker: %s\n", e.what());
    dist::abort(1);
  }
}
