// The row copies that write GEMM tiles into convolution outputs (cpu/line_ops.h), on every ISA path
// of the machine, against plain loops: transpose_add (a positions x channels tile into channel
// rows, with the bias) and add_rows_strided (a stride phase's columns into every step-th value,
// with the bias; the values between must stay as they were). Small integers, so every path is
// exact; sizes off every block and vector width.
#include <cstdint>
#include <vector>

#include "cpu/isa.h"
#include "cpu/line_ops.h"
#include "support/test_util.h"

namespace {

using namespace convtape;

template <class T>
std::vector<T> ints(std::size_t n, int seed) {
  std::vector<T> v(n);
  for (std::size_t i = 0; i < n; ++i)
    v[i] = static_cast<T>(static_cast<int>((i * 7 + seed) % 19) - 9);
  return v;
}

template <class T>
void check_transpose_add() {
  for (const cpu::Isa isa : cpu::available_isas()) {
    cpu::IsaGuard guard(isa);
    for (const std::int64_t nk : {1, 5, 16, 17, 40})
      for (const std::int64_t ni : {1, 3, 16, 23, 48})
        for (const bool with_bias : {false, true}) {
          INFO(cpu::isa_name(isa) << " nk " << nk << " ni " << ni << " bias " << with_bias);
          const std::int64_t lds = nk + 3, ldd = ni + 5;
          const auto src = ints<T>(static_cast<std::size_t>(ni * lds), 1);
          const auto bias = ints<T>(static_cast<std::size_t>(nk), 4);
          std::vector<T> dst(static_cast<std::size_t>(nk * ldd), T(100)), want = dst;
          for (std::int64_t k = 0; k < nk; ++k)
            for (std::int64_t i = 0; i < ni; ++i)
              want[static_cast<std::size_t>(k * ldd + i)] =
                  src[static_cast<std::size_t>(i * lds + k)] +
                  (with_bias ? bias[static_cast<std::size_t>(k)] : T(0));
          cpu::line::transpose_add(isa, dst.data(), ldd, src.data(), lds,
                                   with_bias ? bias.data() : nullptr, nk, ni);
          CHECK(dst == want);
        }
  }
}

template <class T>
void check_add_rows_strided() {
  for (const cpu::Isa isa : cpu::available_isas()) {
    cpu::IsaGuard guard(isa);
    for (const std::int64_t step : {1, 2, 3})
      for (const std::int64_t n : {1, 4, 7, 8, 9, 17, 33})
        for (const bool with_bias : {false, true}) {
          INFO(cpu::isa_name(isa) << " step " << step << " n " << n << " bias " << with_bias);
          const std::int64_t rows = 3, lds = 2 * n + 4, ldd = step * 2 * n + 16;
          // Two segments per row: one from column 0, one from column n + 1, landing apart.
          const cpu::line::Segment segs[2] = {{0, 1, n}, {n + 1, step * n + 5, n - 1}};
          const auto src = ints<T>(static_cast<std::size_t>(rows * lds), 2);
          const auto bias = ints<T>(static_cast<std::size_t>(rows), 5);
          std::vector<T> dst(static_cast<std::size_t>(rows * ldd), T(100)), want = dst;
          for (std::int64_t r = 0; r < rows; ++r)
            for (const auto& e : segs)
              for (std::int64_t j = 0; j < e.n; ++j)
                want[static_cast<std::size_t>(r * ldd + e.dst + j * step)] =
                    src[static_cast<std::size_t>(r * lds + e.src + j)] +
                    (with_bias ? bias[static_cast<std::size_t>(r)] : T(0));
          cpu::line::add_rows_strided(isa, dst.data(), ldd, src.data(), lds,
                                      with_bias ? bias.data() : nullptr, rows, segs, 2, step);
          CHECK(dst == want);
        }
  }
}

}  // namespace

TEST_CASE("line::transpose_add writes a tile's columns as rows with the bias, on every path",
          "[isa][line]") {
  check_transpose_add<float>();
  check_transpose_add<double>();
}

TEST_CASE("line::add_rows_strided writes every step-th value and leaves the rest, on every path",
          "[isa][line]") {
  check_add_rows_strided<float>();
  check_add_rows_strided<double>();
}
