// benchmarks/gemm: convtape's blocked GEMM against OpenBLAS (Debian libopenblas) in one process.
// Square sizes 128..2048 and the per-sample GEMM shapes of the conv suite (M = out channels,
// N = output positions, K = in channels x kernel volume), float32, at 1 and 2 threads.
// Each shape is validated against OpenBLAS first, then both are timed (median), and the table
// prints GFLOP/s and the ratio ours / OpenBLAS.
//   usage: gemm [--quick] [--dtype float32|float64]
#include <cblas.h>

#include <cstring>
#include <random>
#include <string>

#include "bench_util.h"
#include "cpu/gemm.h"

extern "C" void openblas_set_num_threads(int);

namespace {

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
  std::printf("convtape GEMM (%s kernel %dx%d) vs OpenBLAS, %s, median GFLOP/s\n", kern.isa,
              kern.mr, kern.nr, sizeof(T) == 4 ? "float32" : "float64");
  std::printf("%-12s %6s %6s %6s | %8s %8s %6s | %8s %8s %6s\n", "shape", "M", "N", "K", "ours-1t",
              "blas-1t", "ratio", "ours-2t", "blas-2t", "ratio");
  std::vector<double> ratios[2];
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
    std::printf("%-12s %6lld %6lld %6lld | %8.1f %8.1f %6.2f | %8.1f %8.1f %6.2f\n", s.name,
                (long long)s.m, (long long)s.n, (long long)s.k, gf[0][0], gf[0][1],
                gf[0][0] / gf[0][1], gf[1][0], gf[1][1], gf[1][0] / gf[1][1]);
    std::fflush(stdout);
  }
  std::printf("geometric mean ratio: 1 thread %.2f, 2 threads %.2f\n", ct_bench::geomean(ratios[0]),
              ct_bench::geomean(ratios[1]));
  return bad;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, f64 = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) quick = true;
    if (!std::strcmp(argv[i], "--dtype") && i + 1 < argc) f64 = std::string(argv[++i]) == "float64";
  }
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
