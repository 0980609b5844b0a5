// Host tests of the CUDA reduction kernels (cuda/reduce_body.h): the same functors and pass chains
// that cuda/reduce.cu launches, run here over host buffers and compared with cpu::reduce and
// cpu::reduce_scatter. x is [outer, mid, inner]; sums accumulate in double; max / min keep the
// first NaN and the first of equal extremes. One-pass reductions must match the CPU bit for bit;
// reductions cut into parts (long mid, few outputs) match it exactly on small integers and within
// double rounding otherwise, and their indices always exactly.
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "cpu/reduce.h"
#include "cuda/reduce_body.h"
#include "support/host_launch.h"
#include "support/test_util.h"

namespace {

using namespace convtape;
using cuda::plan_reduce;

struct Case {
  std::int64_t outer, mid, inner;
};

// The launch the chains are given on the host: every work item in order, status 0.
const auto host = [](std::int64_t n, const auto& f) {
  ct_test::run_on_host(n, f);
  return 0;
};

// cuda::reduce's work on the host: the same plan, scratch and passes.
Tensor body_reduce(Reduce op, const Tensor& x, std::int64_t outer, std::int64_t mid,
                   std::int64_t inner, Tensor* indices = nullptr) {
  Tensor out = Tensor::empty_cpu({outer, inner}, x.dtype());
  const bool want_idx = indices && op != Reduce::Sum;
  if (want_idx) *indices = Tensor::empty_cpu({outer, inner}, kInt64);
  if (out.numel() == 0) return out;
  const auto scratch =
      static_cast<std::size_t>(outer * inner * plan_reduce(outer * inner, mid).scratch_per_line());
  dispatch_floating(x.dtype(), [&]<class T>() {
    int status = 0;
    if (op == Reduce::Sum) {
      std::vector<double> a(scratch), b(scratch);
      status = cuda::reduce_sum_passes(host, x.data_ptr<T>(), out.data_ptr<T>(), outer, mid, inner,
                                       a.data(), b.data());
    } else {
      std::vector<T> va(scratch), vb(scratch);
      std::vector<std::int64_t> ia(want_idx ? scratch : 0), ib(want_idx ? scratch : 0);
      status = cuda::reduce_extreme_passes(
          host, op == Reduce::Max, x.data_ptr<T>(), out.data_ptr<T>(),
          want_idx ? indices->data_ptr<std::int64_t>() : nullptr, outer, mid, inner, va.data(),
          vb.data(), want_idx ? ia.data() : nullptr, want_idx ? ib.data() : nullptr);
    }
    REQUIRE(status == 0);
  });
  return out;
}

// Same dtype, shape and bytes (NaN payloads and signed zeros included).
bool identical(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  const auto* pa = static_cast<const unsigned char*>(a.raw_data());
  const auto* pb = static_cast<const unsigned char*>(b.raw_data());
  const auto size = static_cast<std::size_t>(dtype_size(a.dtype()));
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    const auto at = static_cast<std::size_t>(i) * size;
    if (std::memcmp(pa + at, pb + at, size) != 0) {
      UNSCOPED_INFO("element " << i
                               << " differs: " << a.to_vector<double>()[static_cast<std::size_t>(i)]
                               << " vs " << b.to_vector<double>()[static_cast<std::size_t>(i)]);
      return false;
    }
  }
  return true;
}

// Values in {0, 1, 2, 3}: every slice of more than four has ties at its extremes.
Tensor tied(const Shape& shape, DType dtype, unsigned seed) {
  Generator gen(seed);
  return randint(0, 4, shape, kInt64, &gen).to(dtype);
}

// Writes NaN at the given flat positions.
Tensor with_nans(Tensor x, const std::vector<std::int64_t>& at) {
  for (auto i : at) x.flatten().put_({i}, std::numeric_limits<double>::quiet_NaN());
  return x;
}

const std::vector<Case> kOnePass = {{1, 1, 1},  {3, 5, 1},  {2, 7, 3},   {4, 1, 5},
                                    {1, 9, 17}, {5, 16, 2}, {1, 127, 1}, {2, 100, 3}};
const std::vector<Case> kCut = {{1, 128, 1},  {1, 1000, 1}, {2, 1024, 3}, {1, 100000, 1},
                                {3, 5000, 1}, {2, 3000, 3}, {1, 1025, 2}, {7, 4099, 5}};

}  // namespace

TEST_CASE("reduce plan: one pass for short axes or many outputs, cuts otherwise",
          "[cpu][cuda_body]") {
  CHECK(plan_reduce(1, 1).passes == 1);
  CHECK(plan_reduce(1, 127).passes == 1);
  CHECK(plan_reduce(1, 128).passes == 2);
  CHECK(plan_reduce(1 << 17, 1 << 20).passes == 1);
  CHECK(plan_reduce(70000, 1 << 20).passes == 1);
  CHECK(plan_reduce(0, 1 << 20).passes == 1);
  CHECK(plan_reduce(1, 0).passes == 1);
  for (const Shape& lines_n : std::vector<Shape>{{1, 128},
                                                 {64, 1024},
                                                 {1, 100000},
                                                 {3, 5000},
                                                 {1000, 100000},
                                                 {65536, 1000},
                                                 {1, std::int64_t{1} << 40},
                                                 {1, std::numeric_limits<std::int64_t>::max()}}) {
    const auto p = plan_reduce(lines_n[0], lines_n[1]);
    INFO("lines " << lines_n[0] << ", n " << lines_n[1] << ": " << p.passes << " passes");
    REQUIRE(p.passes >= 2);
    REQUIRE(p.passes <= cuda::kReduceMaxPasses);
    CHECK(p.len[0] == lines_n[1]);
    CHECK(p.chunks[p.passes - 1] == 1);
    CHECK(p.len[p.passes - 1] < 2 * cuda::kReduceMinPerItem);
    CHECK(lines_n[0] * p.chunks[0] <= cuda::kReduceTargetItems);
    CHECK(p.scratch_per_line() == p.chunks[0]);
    for (int i = 0; i + 1 < p.passes; ++i) {
      CHECK(p.len[i + 1] == p.chunks[i]);
      CHECK(p.chunks[i] * cuda::kReduceMinPerItem <= p.len[i]);
    }
  }
}

TEST_CASE("reduce body: one-pass sums match cpu::reduce bit for bit", "[cpu][cuda_body]") {
  for (const DType dt : {kFloat32, kFloat64})
    for (const auto& c : kOnePass) {
      INFO(dtype_name(dt) << " [" << c.outer << ", " << c.mid << ", " << c.inner << "]");
      REQUIRE(plan_reduce(c.outer * c.inner, c.mid).passes == 1);
      const Tensor x = randn({c.outer, c.mid, c.inner}, dt);
      CHECK(identical(body_reduce(Reduce::Sum, x, c.outer, c.mid, c.inner),
                      cpu::reduce(Reduce::Sum, x, c.outer, c.mid, c.inner)));
    }
}

TEST_CASE("reduce body: sums cut into parts match cpu::reduce", "[cpu][cuda_body]") {
  for (const DType dt : {kFloat32, kFloat64})
    for (const auto& c : kCut) {
      INFO(dtype_name(dt) << " [" << c.outer << ", " << c.mid << ", " << c.inner << "]");
      REQUIRE(plan_reduce(c.outer * c.inner, c.mid).passes >= 2);
      // Small integers: every partial sum is exact, so any order gives the CPU's bits.
      const Tensor ints = tied({c.outer, c.mid, c.inner}, dt, 7);
      CHECK(identical(body_reduce(Reduce::Sum, ints, c.outer, c.mid, c.inner),
                      cpu::reduce(Reduce::Sum, ints, c.outer, c.mid, c.inner)));
      const Tensor x = randn({c.outer, c.mid, c.inner}, dt);
      const Tensor got = body_reduce(Reduce::Sum, x, c.outer, c.mid, c.inner);
      const Tensor want = cpu::reduce(Reduce::Sum, x, c.outer, c.mid, c.inner);
      CHECK(ct_test::allclose(got, want, dt == kFloat32 ? 1e-6 : 1e-12,
                              dt == kFloat32 ? 1e-6 : 1e-11));
      // The parts together cover every element exactly once: a sum of ones counts them.
      const Tensor ones_x = ones({c.outer, c.mid, c.inner}, dt);
      CHECK(ct_test::equal(body_reduce(Reduce::Sum, ones_x, c.outer, c.mid, c.inner),
                           full({c.outer, c.inner}, static_cast<double>(c.mid), dt)));
    }
}

TEST_CASE("reduce body: max / min values and first indices match cpu::reduce", "[cpu][cuda_body]") {
  std::vector<Case> all = kOnePass;
  all.insert(all.end(), kCut.begin(), kCut.end());
  for (const DType dt : {kFloat32, kFloat64})
    for (const Reduce op : {Reduce::Max, Reduce::Min})
      for (const auto& c : all) {
        INFO(dtype_name(dt) << (op == Reduce::Max ? " max" : " min") << " [" << c.outer << ", "
                            << c.mid << ", " << c.inner << "]");
        for (const Tensor& x :
             {randn({c.outer, c.mid, c.inner}, dt), tied({c.outer, c.mid, c.inner}, dt, 3)}) {
          Tensor gi, wi;
          const Tensor got = body_reduce(op, x, c.outer, c.mid, c.inner, &gi);
          const Tensor want = cpu::reduce(op, x, c.outer, c.mid, c.inner, &wi);
          CHECK(identical(got, want));
          CHECK(identical(gi, wi));
          // Without indices the values are the same.
          CHECK(identical(body_reduce(op, x, c.outer, c.mid, c.inner), want));
        }
      }
}

TEST_CASE("reduce body: ties go to the first extreme even across parts", "[cpu][cuda_body]") {
  // One long row of 0..3 values: the last of the many 3s (and 0s) is far from the first, and the
  // parts' own first extremes lie at many different positions.
  const std::int64_t mid = 100000;
  REQUIRE(plan_reduce(1, mid).passes >= 2);
  for (const DType dt : {kFloat32, kFloat64}) {
    const Tensor x = tied({1, mid, 1}, dt, 11);
    const auto v = x.to_vector<double>();
    std::int64_t first3 = -1, last3 = -1, first0 = -1;
    for (std::int64_t i = 0; i < mid; ++i) {
      if (v[static_cast<std::size_t>(i)] == 3.0) {
        if (first3 < 0) first3 = i;
        last3 = i;
      }
      if (first0 < 0 && v[static_cast<std::size_t>(i)] == 0.0) first0 = i;
    }
    REQUIRE(first3 != last3);
    Tensor imax, imin;
    CHECK(body_reduce(Reduce::Max, x, 1, mid, 1, &imax).item() == 3.0);
    CHECK(body_reduce(Reduce::Min, x, 1, mid, 1, &imin).item() == 0.0);
    CHECK(imax.item<std::int64_t>() == first3);
    CHECK(imin.item<std::int64_t>() == first0);
  }
}

TEST_CASE("reduce body: NaN wins and the first NaN is kept, in one pass and across parts",
          "[cpu][cuda_body]") {
  for (const DType dt : {kFloat32, kFloat64})
    for (const Reduce op : {Reduce::Max, Reduce::Min})
      for (const Case c : {Case{2, 9, 3}, Case{1, 100000, 1}, Case{2, 3000, 3}}) {
        INFO(dtype_name(dt) << (op == Reduce::Max ? " max" : " min") << " [" << c.outer << ", "
                            << c.mid << ", " << c.inner << "]");
        const std::int64_t n = c.outer * c.mid * c.inner;
        // NaNs at the very start, in the middle of later slices, twice in one slice, at the end.
        const Tensor x =
            with_nans(randn({c.outer, c.mid, c.inner}, dt), {0, n / 2, n / 2 + 5 * c.inner, n - 1});
        Tensor gi, wi;
        const Tensor got = body_reduce(op, x, c.outer, c.mid, c.inner, &gi);
        const Tensor want = cpu::reduce(op, x, c.outer, c.mid, c.inner, &wi);
        CHECK(identical(got, want));
        CHECK(identical(gi, wi));
        CHECK(std::isnan(got.to_vector<double>()[0]));
      }
  // Cut into C parts, position C - 1 lies in the last part and position C + 3 in the fourth: the
  // first NaN is found in a later part than another one.
  for (const DType dt : {kFloat32, kFloat64})
    for (const Reduce op : {Reduce::Max, Reduce::Min}) {
      const std::int64_t mid = 100000, parts = plan_reduce(1, mid).chunks[0];
      REQUIRE(parts > 4);
      const Tensor x = with_nans(randn({1, mid, 1}, dt), {parts + 3, parts - 1, 2 * parts});
      Tensor gi;
      CHECK(std::isnan(body_reduce(op, x, 1, mid, 1, &gi).item()));
      CHECK(gi.item<std::int64_t>() == parts - 1);
    }
  // inf and -inf take part like any value.
  const double inf = std::numeric_limits<double>::infinity();
  const Tensor x = tensor({1, inf, -inf, inf, 2, -inf}, {1, 6, 1}, kFloat64);
  Tensor i;
  CHECK(body_reduce(Reduce::Max, x, 1, 6, 1, &i).item() == inf);
  CHECK(i.item<std::int64_t>() == 1);
  CHECK(body_reduce(Reduce::Min, x, 1, 6, 1, &i).item() == -inf);
  CHECK(i.item<std::int64_t>() == 2);
}

TEST_CASE("reduce body: an empty axis sums to 0 and reduces to 0 at position 0",
          "[cpu][cuda_body]") {
  for (const DType dt : {kFloat32, kFloat64}) {
    const Tensor x = Tensor::empty_cpu({3, 0, 4}, dt);
    CHECK(identical(body_reduce(Reduce::Sum, x, 3, 0, 4), cpu::reduce(Reduce::Sum, x, 3, 0, 4)));
    Tensor i;
    CHECK(identical(body_reduce(Reduce::Max, x, 3, 0, 4, &i), zeros({3, 4}, dt)));
    CHECK(identical(i, zeros({3, 4}, kInt64)));
    // No outputs at all: nothing runs.
    CHECK(body_reduce(Reduce::Min, Tensor::empty_cpu({0, 5, 2}, dt), 0, 5, 2, &i).numel() == 0);
  }
}

TEST_CASE("reduce body: the max / min gradient scatter matches cpu::reduce_scatter",
          "[cpu][cuda_body]") {
  for (const DType dt : {kFloat32, kFloat64})
    for (const auto& c : kOnePass) {
      INFO(dtype_name(dt) << " [" << c.outer << ", " << c.mid << ", " << c.inner << "]");
      const Tensor x = tied({c.outer, c.mid, c.inner}, dt, 5);
      Tensor idx;
      cpu::reduce(Reduce::Max, x, c.outer, c.mid, c.inner, &idx);
      const Tensor dy = randn({c.outer, c.inner}, dt);
      Tensor dx = Tensor::empty_cpu({c.outer, c.mid, c.inner}, dt);
      dispatch_floating(dt, [&]<class T>() {
        ct_test::run_on_host(dx.numel(),
                             cuda::ReduceScatter<T>{dy.data_ptr<T>(), idx.data_ptr<std::int64_t>(),
                                                    dx.data_ptr<T>(), c.mid, c.inner});
      });
      CHECK(identical(dx, cpu::reduce_scatter(dy, idx, c.outer, c.mid, c.inner)));
      // Exactly one non-zero per output, holding dy.
      CHECK(ct_test::equal(cpu::reduce(Reduce::Sum, dx, c.outer, c.mid, c.inner), dy));
    }
}
