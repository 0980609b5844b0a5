// The blocked GEMM against a double-precision reference loop: every micro-kernel this CPU runs,
// both dtypes, all transposes, alpha / beta, sizes from 1 through odd edges past every blocking
// boundary, leading dimensions larger than the width, and the threaded split.
#include <omp.h>

#include <random>

#include "cpu/gemm.h"
#include "cpu/gemm_driver.h"
#include "support/test_util.h"

using namespace convtape;
using namespace convtape::cpu;

namespace {

template <class T>
std::vector<T> random_values(std::int64_t n, std::mt19937& rng) {
  std::uniform_int_distribution<int> d(-4, 4);  // small integers: float32 products are exact
  std::vector<T> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = static_cast<T>(d(rng));
  return v;
}

template <class T>
void check_case(const GemmKernel<T>& kern, bool ta, bool tb, std::int64_t m, std::int64_t n,
                std::int64_t k, T alpha, T beta, std::mt19937& rng) {
  const std::int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + 2;
  const auto a = random_values<T>((ta ? k : m) * lda, rng);
  const auto b = random_values<T>((tb ? n : k) * ldb, rng);
  auto c = random_values<T>(m * ldc, rng);
  std::vector<double> expect(c.begin(), c.end());
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      double acc = 0;
      for (std::int64_t p = 0; p < k; ++p) {
        const double av = ta ? a[static_cast<std::size_t>(p * lda + i)]
                             : a[static_cast<std::size_t>(i * lda + p)];
        const double bv = tb ? b[static_cast<std::size_t>(j * ldb + p)]
                             : b[static_cast<std::size_t>(p * ldb + j)];
        acc += av * bv;
      }
      double& e = expect[static_cast<std::size_t>(i * ldc + j)];
      e = alpha * acc + (beta == T(0) ? 0.0 : beta * e);
    }
  gemm<T>(kern, ta, tb, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      const auto idx = static_cast<std::size_t>(i * ldc + j);
      if (static_cast<double>(c[idx]) != expect[idx]) {
        FAIL(kern.isa << " " << (sizeof(T) == 4 ? "float32" : "float64") << " ta=" << ta
                      << " tb=" << tb << " m=" << m << " n=" << n << " k=" << k
                      << " alpha=" << alpha << " beta=" << beta << ": C[" << i << "," << j
                      << "] = " << c[idx] << ", expected " << expect[idx]);
      }
    }
  // Padding columns between rows must be untouched.
  SUCCEED();
}

template <class T>
void sweep() {
  std::mt19937 rng(7);
  const std::vector<std::int64_t> sizes{1, 2, 5, 7, 8, 17, 33, 67};
  for (const auto* kern : available_gemm_kernels<T>()) {
    INFO("kernel " << kern->isa);
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (auto m : sizes)
          for (auto n : sizes)
            for (auto k : {1, 3, 16, 31}) check_case<T>(*kern, ta, tb, m, n, k, T(1), T(0), rng);
    // Last row panels exactly half full (the part kernels' direct store) and below half.
    for (int m : {kern->mr / 2, kern->mr + kern->mr / 2, 4 * kern->mr + 1})
      for (int n : {kern->nr, 2 * kern->nr + 3})
        for (bool ta : {false, true}) check_case<T>(*kern, ta, false, m, n, 31, T(2), T(-1), rng);
    // Few row panels with B read in place (B past the unpacked path's size): column panels outer
    // and a reduction cut into L1-sized slices.
    for (int m : {3, 2 * kern->mr + 1, 4 * kern->mr})
      check_case<T>(*kern, false, false, m, 300, 300, T(2), T(-1), rng);
    // Past every blocking boundary (mc, nc, kc) with alpha and beta, single- and multi-threaded.
    const std::int64_t big_m = kern->mc + 5, big_n = kern->nc + kern->nr + 3,
                       big_k = kern->kc * 2 + 7;
    check_case<T>(*kern, false, false, big_m, big_n, big_k, T(2), T(-1), rng);
    check_case<T>(*kern, true, true, big_m, 70, big_k, T(1), T(1), rng);
    check_case<T>(*kern, false, true, 300, 9, 40, T(-1), T(0.5), rng);
  }
}

// pack_rows and pack_cols against their definitions (cpu/gemm_driver.h) under every ISA path, for
// every panel width the kernels use and sizes around the vector widths; the word after the output
// must stay untouched (masked stores of partial groups, no full-vector store past the end).
template <class T>
void check_packers() {
  std::mt19937 rng(3);
  const T guard = T(-99);
  for (Isa path : available_isas()) {
    const IsaGuard isa_guard(path);
    for (int w : {4, 6, 8, 16, 32})
      for (std::int64_t rows : {1, 3, 6, 8, 13, 33})
        for (std::int64_t cols : {1, 4, 7, 8, 9, 17, 40}) {
          const std::int64_t ld = std::max(rows, cols) + 2;
          const auto src = random_values<T>(std::max(rows, cols) * ld, rng);
          // pack_rows: rows x cols into w-wide panels.
          const std::int64_t row_panels = (cols + w - 1) / w;
          std::vector<T> got(static_cast<std::size_t>(row_panels * rows * w + 1), guard);
          pack_rows<T>(src.data(), ld, rows, cols, w, got.data());
          bool ok = got.back() == guard;
          for (std::int64_t p = 0; p < row_panels; ++p)
            for (std::int64_t r = 0; r < rows; ++r)
              for (std::int64_t j = 0; j < w; ++j) {
                const T want =
                    p * w + j < cols ? src[static_cast<std::size_t>(r * ld + p * w + j)] : T(0);
                ok = ok && got[static_cast<std::size_t>((p * rows + r) * w + j)] == want;
              }
          // pack_cols: the transpose of rows x cols into w-tall panels.
          const std::int64_t col_panels = (rows + w - 1) / w;
          std::vector<T> tgot(static_cast<std::size_t>(col_panels * cols * w + 1), guard);
          pack_cols<T>(src.data(), ld, rows, cols, w, tgot.data());
          ok = ok && tgot.back() == guard;
          for (std::int64_t p = 0; p < col_panels; ++p)
            for (std::int64_t c = 0; c < cols; ++c)
              for (std::int64_t i = 0; i < w; ++i) {
                const T want =
                    p * w + i < rows ? src[static_cast<std::size_t>((p * w + i) * ld + c)] : T(0);
                ok = ok && tgot[static_cast<std::size_t>((p * cols + c) * w + i)] == want;
              }
          if (!ok)
            FAIL(isa_name(path) << " " << (sizeof(T) == 4 ? "float32" : "float64") << " w=" << w
                                << " rows=" << rows << " cols=" << cols
                                << ": packed panel differs");
        }
  }
  SUCCEED();
}

// Short products shift their tiles to C's cache lines (cpu/gemm.cpp), so the tile holding an
// element depends on C's address: every placement must give the reference (small integers, exact)
// and, with fractional values and alpha, beta not 1, the same bits.
template <class T>
void check_c_alignment() {
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> frac(-1, 1);
  for (const auto* kern : available_gemm_kernels<T>())
    for (std::int64_t n : {40, 47, 70})
      for (std::int64_t k : {3, 9}) {
        const std::int64_t m = 11, ldc = 80;  // 320 or 640 bytes: every row aligned alike
        std::vector<T> a(static_cast<std::size_t>(m * k)), b(static_cast<std::size_t>(k * n));
        std::vector<T> c0(static_cast<std::size_t>(m * ldc));
        for (auto& x : a) x = static_cast<T>(frac(rng));
        for (auto& x : b) x = static_cast<T>(frac(rng));
        for (auto& x : c0) x = static_cast<T>(frac(rng));
        std::vector<T> first;
        for (std::int64_t offset = 0; offset < 64 / static_cast<std::int64_t>(sizeof(T));
             ++offset) {
          std::vector<T> buf(c0.size() + 64);
          const auto misalign = reinterpret_cast<std::uintptr_t>(buf.data()) % 64 / sizeof(T);
          T* c = buf.data() + (64 / sizeof(T) - misalign) % (64 / sizeof(T)) + offset;
          std::copy(c0.begin(), c0.end(), c);
          gemm<T>(*kern, false, false, m, n, k, T(0.75), a.data(), k, b.data(), n, T(-1.5), c, ldc);
          std::vector<T> got(c, c + c0.size());
          if (first.empty()) {
            first = got;
          } else if (got != first) {
            FAIL(kern->isa << " n=" << n << " k=" << k << " C offset " << offset
                           << " floats: result differs from the aligned placement");
          }
        }
        // The aligned placement against a double reference (fractional values: a tolerance).
        for (std::int64_t i = 0; i < m; ++i)
          for (std::int64_t j = 0; j < n; ++j) {
            double acc = 0;
            for (std::int64_t p = 0; p < k; ++p)
              acc += double(a[static_cast<std::size_t>(i * k + p)]) *
                     double(b[static_cast<std::size_t>(p * n + j)]);
            const auto idx = static_cast<std::size_t>(i * ldc + j);
            const double want = 0.75 * acc - 1.5 * double(c0[idx]);
            if (std::abs(double(first[idx]) - want) > 1e-5)
              FAIL(kern->isa << " n=" << n << " k=" << k << ": C[" << i << "," << j
                             << "] = " << first[idx] << ", expected " << want);
          }
      }
  SUCCEED();
}

// The row-pointer micro-kernels of every kernel against a reference: the full one (mr x nr) and
// the half-height one (the top mr / 2 rows of the same packed A panel), B rows anywhere through
// pointers plus an offset, with beta 0 and 1; the half-height kernel leaves the rows below alone.
template <class T>
void check_rows_kernels() {
  std::mt19937 rng(11);
  for (const GemmKernel<T>* kern : available_gemm_kernels<T>()) {
    const std::int64_t mr = kern->mr, nr = kern->nr, kc = 37, boff = 3, ldc = nr + 5;
    const auto a = random_values<T>(kc * mr, rng);  // a packed panel: (k, i) at k * mr + i
    const auto b = random_values<T>(kc * (nr + 7), rng);
    std::vector<const T*> brows(static_cast<std::size_t>(kc));
    for (std::int64_t k = 0; k < kc; ++k)  // rows in reverse order, nr + 7 apart
      brows[static_cast<std::size_t>(k)] = b.data() + (kc - 1 - k) * (nr + 7);
    for (const bool part : {false, true})
      for (const T beta : {T(0), T(1)}) {
        const auto c0 = random_values<T>(mr * ldc, rng);
        auto c = c0;
        (part ? kern->rows_part : kern->rows)(kc, a.data(), brows.data(), boff, c.data(), ldc, T(1),
                                              beta);
        const std::int64_t rows = part ? mr / 2 : mr;
        for (std::int64_t i = 0; i < mr; ++i)
          for (std::int64_t j = 0; j < ldc; ++j) {
            const auto idx = static_cast<std::size_t>(i * ldc + j);
            double expect = c0[idx];
            if (i < rows && j < nr) {
              double acc = 0;
              for (std::int64_t k = 0; k < kc; ++k)
                acc += static_cast<double>(a[static_cast<std::size_t>(k * mr + i)]) *
                       brows[static_cast<std::size_t>(k)][boff + j];
              expect = acc + (beta == T(0) ? 0.0 : expect);
            }
            INFO(kern->isa << (part ? " rows_part" : " rows") << " beta " << beta << " C[" << i
                           << "," << j << "]");
            REQUIRE(static_cast<double>(c[idx]) == expect);
          }
      }
  }
}

}  // namespace

TEST_CASE("short products give the same bits wherever C lies", "[gemm]") {
  check_c_alignment<float>();
  check_c_alignment<double>();
}

TEST_CASE("panel packers match their definitions on every ISA path", "[gemm]") {
  check_packers<float>();
  check_packers<double>();
}

TEST_CASE("gemm matches a reference for every kernel, size and transpose (float32)", "[gemm]") {
  sweep<float>();
}
TEST_CASE("gemm matches a reference for every kernel, size and transpose (float64)", "[gemm]") {
  sweep<double>();
}

TEST_CASE("the row-pointer micro-kernels, full and half-height, match a reference", "[gemm]") {
  check_rows_kernels<float>();
  check_rows_kernels<double>();
}

TEST_CASE("gemm leaves C alone outside the product and handles k = 0", "[gemm]") {
  std::vector<float> c(6, 5.0f);
  const float a = 1, b = 1;
  gemm<float>(false, false, 2, 3, 0, 1.0f, &a, 1, &b, 3, 0.5f, c.data(), 3);
  CHECK(c == std::vector<float>(6, 2.5f));
  gemm<float>(false, false, 2, 3, 0, 1.0f, &a, 1, &b, 3, 0.0f, c.data(), 3);
  CHECK(c == std::vector<float>(6, 0.0f));
  std::vector<float> nan_c(4, std::nanf(""));
  const std::vector<float> ones(4, 1.0f);
  gemm<float>(false, false, 2, 2, 2, 1.0f, ones.data(), 2, ones.data(), 2, 0.0f, nan_c.data(), 2);
  CHECK(nan_c == std::vector<float>(4, 2.0f));  // beta = 0 never reads C
}

TEST_CASE("the chosen kernel is reported and forced ISAs exist", "[gemm]") {
  const auto& k = gemm_kernel<float>();
  INFO("float32 kernel: " << k.isa);
  CHECK(k.mr * k.nr <= 8 * 32);
  CHECK(k.mc % k.mr == 0);
  CHECK(k.nc % k.nr == 0);
  CHECK(std::string(available_gemm_kernels<double>().back()->isa) == "portable");
}

TEST_CASE("bmm takes row-major and transposed operands and refuses other layouts", "[gemm]") {
  using namespace convtape;
  // [2, 3, 4] @ [2, 4, 5], each operand also given as the transpose of a contiguous batch.
  const Tensor a = arange(24.0).reshape({2, 3, 4}), b = arange(40.0).reshape({2, 4, 5});
  const Tensor at = a.transpose(1, 2).contiguous().transpose(1, 2);
  const Tensor bt = b.transpose(1, 2).contiguous().transpose(1, 2);
  REQUIRE_FALSE(at.is_contiguous());
  const Tensor want = cpu::bmm(a, b);
  CHECK(ct_test::equal(cpu::bmm(at, b), want));
  CHECK(ct_test::equal(cpu::bmm(a, bt), want));
  CHECK(ct_test::equal(cpu::bmm(at, bt), want));
  CHECK(want.at<float>({1, 2, 4}) == 20 * 24 + 21 * 29 + 22 * 34 + 23 * 39);  // row 2 . column 4
  // Every other element of a wider batch is neither layout.
  const Tensor strided = arange(48.0).reshape({2, 3, 8}).narrow(2, 0, 4);
  CT_REQUIRE_ERROR(cpu::bmm(strided, b),
                   "matmul: expected a contiguous left operand or the transpose of one, got shape "
                   "[2, 3, 4] with strides [24, 8, 1]");
  CT_REQUIRE_ERROR(cpu::bmm(a, arange(80.0).reshape({2, 4, 10}).narrow(2, 0, 5)),
                   "matmul: expected a contiguous right operand or the transpose of one");
}
