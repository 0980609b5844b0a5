// Tests of core/random: the stream a seed gives (mt19937_64 with the documented transforms, so
// seeded programs keep their numbers), copies, and the default generator under threads: every
// tensor a library call draws is one contiguous run of the stream, even while other threads draw
// from the same generator (the runs come in the scheduler's order, so the test checks that the
// runs drawn are exactly the stream's first runs, in some order).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

#include "support/test_util.h"

namespace {

using namespace convtape;

TEST_CASE("Generator: a seed gives mt19937_64's stream and the documented transforms") {
  Generator g(123);
  std::mt19937_64 ref(123);
  for (int i = 0; i < 100; ++i) CHECK(g.next_u64() == ref());
  g.seed(7);
  ref.seed(7);
  for (int i = 0; i < 100; ++i)
    CHECK(g.uniform01() == static_cast<double>(ref() >> 11) * 0x1.0p-53);
  // Box-Muller in pairs: cos first, then the cached sin.
  g.seed(9);
  ref.seed(9);
  const double u1 = static_cast<double>(ref() >> 11) * 0x1.0p-53;
  const double u2 = static_cast<double>(ref() >> 11) * 0x1.0p-53;
  const double r = std::sqrt(-2.0 * std::log(u1)), theta = 2.0 * 3.14159265358979323846 * u2;
  CHECK(g.normal01() == r * std::cos(theta));
  CHECK(g.normal01() == r * std::sin(theta));
  // Reseeding drops the cached value.
  g.seed(9);
  CHECK(g.normal01() == r * std::cos(theta));
  g.seed(9);
  CHECK(g.normal01() == r * std::cos(theta));
}

TEST_CASE("Generator: manual_seed fixes the factories' numbers (same stream as Generator(seed))") {
  manual_seed(42);
  const std::vector<double> a = rand({5}, kFloat64).to_vector<double>();
  Generator g(42);
  for (double v : a) CHECK(v == g.uniform01());
  manual_seed(42);
  CHECK(ct_test::equal(rand({5}, kFloat64), from_vector(a, {5})));
}

TEST_CASE("Generator: a copy continues the same stream on its own") {
  Generator a(5);
  a.uniform01();
  a.normal01();  // leaves a cached normal, which the copy carries
  Generator b(a);
  Generator c(1);
  c = a;
  for (int i = 0; i < 10; ++i) {
    const double x = a.normal01();
    CHECK(b.normal01() == x);
    CHECK(c.normal01() == x);
  }
  b.uniform01();
  CHECK(a.next_u64() != b.next_u64());  // independent from here on
}

// Splits `draws` into runs of n and checks that they are the first draws.size() / n runs of the
// stream reference(seed) yields, each run exactly once.
template <class Draw>
void check_runs(const std::vector<std::vector<double>>& draws, std::size_t n, std::uint64_t seed,
                Draw draw) {
  Generator ref(seed);
  std::vector<std::vector<double>> expected;
  for (std::size_t r = 0; r < draws.size(); ++r) {
    std::vector<double> run(n);
    for (double& v : run) v = draw(ref);
    expected.push_back(run);
  }
  std::vector<std::vector<double>> got = draws;
  std::sort(got.begin(), got.end());
  std::sort(expected.begin(), expected.end());
  CHECK(got == expected);
}

TEST_CASE("Generator: threads drawing from the default generator each get whole runs") {
  constexpr int kThreads = 4, kTensors = 25;
  constexpr std::int64_t kN = 256;  // even, so that normal draws leave no cached value behind
  for (const char* what : {"rand", "randn", "dropout_mask"}) {
    INFO(what);
    manual_seed(2024);
    std::vector<std::vector<std::vector<double>>> per_thread(kThreads);
    std::vector<std::thread> pool;
    for (int t = 0; t < kThreads; ++t)
      pool.emplace_back([&, t] {
        for (int i = 0; i < kTensors; ++i) {
          const std::string op = what;
          const Tensor x = op == "rand"    ? rand({kN}, kFloat64)
                           : op == "randn" ? randn({kN}, kFloat64)
                                           : dropout_mask({kN}, 0.5, kFloat64);
          per_thread[static_cast<std::size_t>(t)].push_back(x.to_vector<double>());
        }
      });
    for (auto& th : pool) th.join();
    std::vector<std::vector<double>> all;
    for (const auto& runs : per_thread) all.insert(all.end(), runs.begin(), runs.end());
    REQUIRE(all.size() == static_cast<std::size_t>(kThreads * kTensors));
    const std::string op = what;
    check_runs(all, kN, 2024, [&](Generator& g) {
      if (op == "rand") return g.uniform01();
      if (op == "randn") return g.normal01();
      return g.uniform01() >= 0.5 ? 2.0 : 0.0;
    });
  }
}

TEST_CASE("Generator: manual_seed while other threads draw leaves a valid stream") {
  // Seeding races with drawing only in the order the scheduler picks; every tensor is still one
  // run of some seeded stream, never a torn state. Afterwards the seed still decides the numbers.
  // Catch's assertions are not thread-safe: the threads count, the main thread checks.
  std::atomic<int> out_of_range{0}, drawn{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < 2; ++t)
    pool.emplace_back([t, &out_of_range, &drawn] {
      for (int i = 0; i < 50; ++i) {
        if (t == 0) manual_seed(static_cast<std::uint64_t>(i));
        const Tensor x = rand({64}, kFloat64);
        const std::vector<double> v = x.to_vector<double>();
        if (!std::all_of(v.begin(), v.end(), [](double u) { return u >= 0.0 && u < 1.0; }))
          ++out_of_range;
        ++drawn;
      }
    });
  for (auto& th : pool) th.join();
  CHECK(drawn.load() == 100);
  CHECK(out_of_range.load() == 0);
  manual_seed(3);
  const Tensor a = rand({8});
  manual_seed(3);
  CHECK(ct_test::equal(rand({8}), a));
}

}  // namespace

TEST_CASE("Generator: integer ranges up to the whole of int64") {
  // hi - lo overflowed int64 for ranges wider than 2^63 (undefined behaviour).
  constexpr std::int64_t lo = INT64_MIN, hi = INT64_MAX;
  Generator g(7), h(7);
  bool negative = false, positive = false;
  for (int i = 0; i < 64; ++i) {
    const std::int64_t v = g.integer(lo, hi);
    CHECK(v < hi);
    negative = negative || v < 0;
    positive = positive || v > 0;
    // The same draw as the unsigned definition: lo + (engine value mod (2^64 - 1)), modulo 2^64.
    std::uint64_t e = 0;
    do e = h.next_u64();
    while (e >= UINT64_MAX - UINT64_MAX % (UINT64_MAX));
    CHECK(static_cast<std::uint64_t>(v) == static_cast<std::uint64_t>(lo) + e % UINT64_MAX);
  }
  CHECK(negative);
  CHECK(positive);
  // Narrow ranges are unchanged: [-3, 4) from a fresh stream.
  Generator a(1);
  for (int i = 0; i < 100; ++i) {
    const std::int64_t v = a.integer(-3, 4);
    CHECK((v >= -3 && v < 4));
  }
}
