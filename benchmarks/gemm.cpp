// benchmarks/gemm: convtape's blocked GEMM against OpenBLAS (Debian libopenblas) in one process.
// Square sizes 128..2048 and the per-sample GEMM shapes of the conv suite (M = out channels,
// N = output positions, K = in channels x kernel volume), float32 (or --dtype float64), at 1 and
// 2 threads. The header names the CPU, our ISA path (--isa lowers it, cpu::set_isa) and OpenBLAS's
// build and core. Each shape is validated against OpenBLAS first, then both are timed (medians of
// alternating blocks, see bench_util.h), and the table prints GFLOP/s and the ratio ours /
// OpenBLAS per row (above 1: ours faster); then the geometric mean and the minimum ratio per
// thread count, the minimum naming its row.
// OpenBLAS picks its kernels from the CPU's model at load time; on a model it does not know
// (virtual machines often report a generic "Intel Xeon Processor") it falls back to Prescott's SSE3
// kernels, a quarter of its AVX-512 speed. The benchmark then runs itself again with
// OPENBLAS_CORETYPE set to the core of the CPU's ISA (SkylakeX for AVX-512, Haswell for AVX2) and
// says so in the header; a user's own OPENBLAS_CORETYPE is left alone.
//   usage: gemm [--quick] [--dtype float32|float64] [--isa avx512|avx2|portable]
#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>

#include "bench_util.h"
#include "cpu/gemm.h"

extern "C" void openblas_set_num_threads(int);
extern "C" char* openblas_get_config();
extern "C" char* openblas_get_corename();

namespace {

// OpenBLAS's core for the ISA path in effect (SkylakeX for avx512, Haswell for avx2), where the one
// it chose is another; empty when it already runs a core of that path, or for the portable path.
std::string openblas_core_for_isa() {
  const std::string chosen = openblas_get_corename();
  const auto path = convtape::cpu::isa();
  if (path == convtape::cpu::Isa::portable) return {};
  const std::vector<std::string> same =
      path == convtape::cpu::Isa::avx512
          ? std::vector<std::string>{"SkylakeX", "Cooperlake", "SapphireRapids"}
          : std::vector<std::string>{"Haswell", "Zen"};
  if (std::find(same.begin(), same.end(), chosen) != same.end()) return {};
  return same[0];
}

struct Shape3 {
  const char* name;
  std::int64_t m, n, k;
};

template <class T>
void blas_gemm(std::int64_t m, std::int64_t n, std::int64_t k, const T* a, const T* b, T* c) {
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(m), static_cast<int>(n),
                static_cast<int>(k), 1.0f, a, static_cast<int>(k), b, static_cast<int>(n), 0.0f, c,
                static_cast<int>(n));
  else
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(m), static_cast<int>(n),
                static_cast<int>(k), 1.0, a, static_cast<int>(k), b, static_cast<int>(n), 0.0, c,
                static_cast<int>(n));
}

template <class T>
int run(const std::vector<Shape3>& shapes) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<double> dist(-1, 1);
  const auto& kern = convtape::cpu::gemm_kernel<T>();
  std::printf("OpenBLAS: %s (core %s)\n", openblas_get_config(), openblas_get_corename());
  std::printf(
      "\nconvtape GEMM (%s kernel %dx%d) vs OpenBLAS, %s, median GFLOP/s; ratio = ours / "
      "OpenBLAS\n",
      kern.isa, kern.mr, kern.nr, sizeof(T) == 4 ? "float32" : "float64");
  std::printf("%-12s %6s %6s %6s | %8s %8s %6s | %8s %8s %6s\n", "shape", "M", "N", "K", "ours-1t",
              "blas-1t", "ratio", "ours-2t", "blas-2t", "ratio");
  std::vector<double> ratios[2];
  std::vector<const char*> names;
  int bad = 0;
  for (const auto& s : shapes) {
    std::vector<T> a(static_cast<std::size_t>(s.m * s.k)), b(static_cast<std::size_t>(s.k * s.n));
    std::vector<T> c1(static_cast<std::size_t>(s.m * s.n)), c2(c1.size());
    for (auto& x : a) x = static_cast<T>(dist(rng));
    for (auto& x : b) x = static_cast<T>(dist(rng));
    double gf[2][2];
    for (int t = 0; t < 2; ++t) {
      const int threads = t + 1;
      omp_set_num_threads(threads);
      openblas_set_num_threads(threads);
      convtape::cpu::gemm<T>(false, false, s.m, s.n, s.k, T(1), a.data(), s.k, b.data(), s.n, T(0),
                             c1.data(), s.n);
      blas_gemm<T>(s.m, s.n, s.k, a.data(), b.data(), c2.data());
      double worst = 0;
      for (std::size_t i = 0; i < c1.size(); ++i)
        worst = std::max(worst, std::abs(double(c1[i]) - double(c2[i])));
      const double tol = (sizeof(T) == 4 ? 1e-4 : 1e-10) * std::sqrt(double(s.k)) * 4;
      if (worst > tol) {
        std::printf("VALIDATION FAILED for %s: max |diff| %.3g > %.3g\n", s.name, worst, tol);
        ++bad;
      }
      const double flops = 2.0 * double(s.m) * double(s.n) * double(s.k);
      const auto [ours, ref] = ct_bench::median_seconds_pair(
          [&] {
            convtape::cpu::gemm<T>(false, false, s.m, s.n, s.k, T(1), a.data(), s.k, b.data(), s.n,
                                   T(0), c1.data(), s.n);
          },
          [&] { blas_gemm<T>(s.m, s.n, s.k, a.data(), b.data(), c2.data()); });
      gf[t][0] = flops / ours * 1e-9;
      gf[t][1] = flops / ref * 1e-9;
      ratios[t].push_back(gf[t][0] / gf[t][1]);
    }
    names.push_back(s.name);
    std::printf("%-12s %6lld %6lld %6lld | %8.1f %8.1f %6.2f | %8.1f %8.1f %6.2f\n", s.name,
                (long long)s.m, (long long)s.n, (long long)s.k, gf[0][0], gf[0][1],
                gf[0][0] / gf[0][1], gf[1][0], gf[1][1], gf[1][0] / gf[1][1]);
    std::fflush(stdout);
  }
  std::printf("geometric mean ratio: 1 thread %.2f, 2 threads %.2f\n", ct_bench::geomean(ratios[0]),
              ct_bench::geomean(ratios[1]));
  for (int t = 0; t < 2; ++t) {
    const auto worst = std::min_element(ratios[t].begin(), ratios[t].end()) - ratios[t].begin();
    std::printf("minimum ratio, %d thread%s: %.2f (%s)\n", t + 1, t ? "s" : "",
                ratios[t][static_cast<std::size_t>(worst)], names[static_cast<std::size_t>(worst)]);
  }
  return bad;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, f64 = false;
  std::string isa;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--quick") {
      quick = true;
    } else if (a == "--dtype" && has_value &&
               (std::string(argv[i + 1]) == "float32" || std::string(argv[i + 1]) == "float64")) {
      f64 = std::string(argv[++i]) == "float64";
    } else if (a == "--isa" && has_value) {
      isa = argv[++i];
    } else {
      std::printf("gemm: expected --quick, --dtype float32|float64 or --isa PATH, got %s\n",
                  a.c_str());
      return 2;
    }
  }
  if (!ct_bench::apply_isa("gemm", isa)) return 2;
  if (!std::getenv("OPENBLAS_CORETYPE")) {
    if (const std::string core = openblas_core_for_isa(); !core.empty()) {
      setenv("CT_BENCH_OPENBLAS_CHOSE", openblas_get_corename(), 1);
      setenv("OPENBLAS_CORETYPE", core.c_str(), 1);
      execv("/proc/self/exe", argv);
      std::printf(
          "gemm: could not run itself again with OPENBLAS_CORETYPE=%s; timing OpenBLAS's %s\n",
          core.c_str(), openblas_get_corename());
    }
  }
  ct_bench::print_header("bench_gemm", {1, 2}, {}, true);
  if (const char* chose = std::getenv("CT_BENCH_OPENBLAS_CHOSE"))
    std::printf(
        "(OpenBLAS chose core %s for this CPU; OPENBLAS_CORETYPE=%s was set for this run)\n", chose,
        std::getenv("OPENBLAS_CORETYPE"));
  std::vector<Shape3> shapes{{"sq128", 128, 128, 128},
                             {"sq256", 256, 256, 256},
                             {"sq512", 512, 512, 512},
                             {"sq1024", 1024, 1024, 1024}};
  if (!quick) shapes.push_back({"sq2048", 2048, 2048, 2048});
  const std::vector<Shape3> conv{{"fmnist_c1", 32, 784, 9},    {"fmnist_c2", 64, 196, 288},
                                 {"resnet_64", 64, 3136, 576}, {"resnet_s2", 128, 784, 576},
                                 {"pointwise", 64, 784, 256},  {"grouped4", 32, 784, 288},
                                 {"conv1d", 64, 1024, 320},    {"conv3d", 32, 4096, 432}};
  shapes.insert(shapes.end(), conv.begin(), conv.end());
  return f64 ? run<double>(shapes) : run<float>(shapes);
}
