// The row iterator under the CPU elementwise, copy and fill kernels (cpu/strided.h): every element
// of a shape is visited exactly once, at the right offsets, whether the coalesced rows are many
// (split across threads whole) or few and long (a contiguous tensor is one row, cut into pieces
// so that every thread gets work). Checked at 1, 2 and 3 threads over lengths around the piece
// size, and through the public ops that ride on it.
#include <omp.h>

#include <atomic>
#include <cstdint>
#include <vector>

#include "convtape.h"
#include "cpu/strided.h"
#include "support/test_util.h"

namespace {

using namespace convtape;

// Visits `shape` with the given strides of two operands, counting the visits of every element of
// the first (a dense index) and checking that the second's offset matches it.
void check_visits(const Shape& shape, const Shape& dense, const Shape& other,
                  const std::vector<std::int64_t>& other_of_dense) {
  std::int64_t numel = 1;
  for (const auto d : shape) numel *= d;
  std::vector<std::atomic<int>> seen(static_cast<std::size_t>(numel));
  std::atomic<int> mismatched{0};
  std::atomic<std::int64_t> calls{0};
  cpu::for_each_row<2>(shape, {dense, other}, [&](auto off, std::int64_t n, auto inner) {
    calls.fetch_add(1);
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int64_t at = off[0] + i * inner[0];
      seen[static_cast<std::size_t>(at)].fetch_add(1);
      if (off[1] + i * inner[1] != other_of_dense[static_cast<std::size_t>(at)])
        mismatched.fetch_add(1);
    }
  });
  int wrong = 0;
  for (const auto& s : seen) wrong += s.load() != 1;
  INFO("shape " << to_string(shape) << ", threads " << omp_get_max_threads() << ", calls "
                << calls.load());
  CHECK(wrong == 0);
  CHECK(mismatched.load() == 0);
}

}  // namespace

TEST_CASE("strided: every element once, whole rows or pieces of long rows, at 1-3 threads",
          "[cpu][strided]") {
  const int before = omp_get_max_threads();
  for (const int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    // One contiguous row (cut into pieces when long), lengths off the piece size and multiples.
    for (const std::int64_t n : {1, 100, 32767, 32768, 8192 * 3 + 5, 100003, 1 << 20}) {
      const Shape shape{n};
      std::vector<std::int64_t> same(static_cast<std::size_t>(n));
      for (std::int64_t i = 0; i < n; ++i) same[static_cast<std::size_t>(i)] = i;
      check_visits(shape, {1}, {1}, same);
    }
    // A few long rows: the second operand walks a transposed [3, m] (rows of stride 1 in the
    // first, of stride 3 in the second), so pieces must carry the inner stride into the offset.
    for (const std::int64_t m : {20000, 40001}) {
      const Shape shape{3, m};
      std::vector<std::int64_t> other(static_cast<std::size_t>(3 * m));
      for (std::int64_t r = 0; r < 3; ++r)
        for (std::int64_t c = 0; c < m; ++c) other[static_cast<std::size_t>(r * m + c)] = c * 3 + r;
      check_visits(shape, contiguous_strides(shape), {1, 3}, other);
    }
    // Many short rows: split across threads whole.
    {
      const Shape shape{500, 7, 13};
      const Shape st = contiguous_strides(shape);
      std::vector<std::int64_t> same(500 * 7 * 13);
      for (std::size_t i = 0; i < same.size(); ++i) same[i] = static_cast<std::int64_t>(i);
      // A broadcast second operand (stride 0 on the middle dim) is not mergeable with the first.
      std::vector<std::int64_t> bcast(same.size());
      for (std::int64_t a = 0; a < 500; ++a)
        for (std::int64_t b = 0; b < 7; ++b)
          for (std::int64_t c = 0; c < 13; ++c)
            bcast[static_cast<std::size_t>((a * 7 + b) * 13 + c)] = a * 13 + c;
      check_visits(shape, st, st, same);
      check_visits(shape, st, {13, 0, 1}, bcast);
    }
  }
  omp_set_num_threads(before);
}

TEST_CASE("strided: elementwise ops, copies and fills of long contiguous tensors are exact",
          "[cpu][strided]") {
  const int before = omp_get_max_threads();
  omp_set_num_threads(2);
  const std::int64_t n = 3 * 65536 + 17;
  std::vector<float> a(static_cast<std::size_t>(n)), b(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    a[i] = static_cast<float>(static_cast<int>(i % 23) - 11);
    b[i] = static_cast<float>(static_cast<int>(i % 7) - 3);
  }
  const Tensor ta = from_vector(a, {n}), tb = from_vector(b, {n});
  int wrong_tr = 0;
  const std::vector<float> sum = (ta + tb).to_vector<float>();
  const std::vector<float> relu_a = relu(ta).to_vector<float>();
  const std::vector<float> fill = full({n}, 2.5).to_vector<float>();
  // A [1, n] row seen as [n, 1] and back: a copy of one long row of stride 1 on both sides.
  const std::vector<float> copy = ta.reshape({n, 1}).t().contiguous().to_vector<float>();
  // A transposed copy: [5, m] read through its [m, 5] transpose (rows of 5, many of them).
  const std::int64_t m = n / 5;
  const Tensor ta5 = ta.narrow(0, 0, 5 * m).reshape({5, m});
  const std::vector<float> tr = ta5.t().contiguous().to_vector<float>();
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t r = 0; r < 5; ++r)
      wrong_tr += tr[static_cast<std::size_t>(i * 5 + r)] != a[static_cast<std::size_t>(r * m + i)];
  int wrong = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    wrong += sum[i] != a[i] + b[i];
    wrong += relu_a[i] != (a[i] > 0 ? a[i] : 0.0f);
    wrong += fill[i] != 2.5f;
  }
  CHECK(wrong == 0);
  CHECK(copy == a);
  CHECK(wrong_tr == 0);
  omp_set_num_threads(before);
}
