// CUDA reductions (cuda/reduce.h) against the CPU backend, through the public ops: sum, mean, max,
// min over every set of dims of ranks 0 to 4 with and without keepdim, argmax / argmin over all
// elements and per dim, forward and backward on CPU and CUDA copies of one input with one upstream
// gradient (the op harness, support/op_check.h). float32 within rtol 1e-4 / atol 1e-5, float64
// within 1e-12; indices, and sums of small integers, exactly. Cases: ties (the first extreme and
// its gradient), NaN (the first NaN wins), infinities, empty reductions, long axes cut into parts
// (a sum of a million elements, one long axis beside a short one), many short ones, then float64
// gradcheck on the GPU.
#include <algorithm>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "support/op_check.h"

namespace {

using namespace convtape;
using Dims = std::vector<std::int64_t>;
using Fn = std::function<Tensor(const Tensor&)>;

const Device kGpu(DeviceType::CUDA, 0);  // named only: the main checks that it exists

Tensor dev(const Tensor& x) {
  return x.to(kGpu);
}

// A CUDA result against the CPU's: on the device, the same dtype and shape; indices exactly.
// f64_atol grows for sums of many terms, which the GPU adds in another order.
bool matches(const Tensor& on_cuda, const Tensor& on_cpu, double f64_atol = 1e-12) {
  if (!on_cuda.is_cuda()) {
    UNSCOPED_INFO("the result lives on " << on_cuda.device().str());
    return false;
  }
  ct_test::Tolerance tol = ct_test::default_tolerance(on_cpu.dtype());
  if (on_cpu.dtype() == kFloat64) tol.atol = f64_atol;
  return ct_test::close(on_cuda, on_cpu, tol);
}

// f on a CPU leaf and on its CUDA copy, in x's dtype: the outputs, and for a floating output the
// gradients of one random upstream gradient, agree (the gradients within the default tolerance).
void check_against_cpu(const Fn& f, const Tensor& x, double f64_atol = 1e-12) {
  ct_test::OpCheck("reduction", [f](const std::vector<Tensor>& v) { return f(v[0]); },
                   {x.detach().to(kFloat64).requires_grad_(true)})
      .cuda_only()
      .dtypes({x.dtype()})
      .tolerance(kFloat64, {1e-12, f64_atol}, ct_test::default_tolerance(kFloat64))
      .run();
}

// Every non-empty set of dims of a rank (as sorted lists), plus one negative and one unsorted.
std::vector<Dims> dim_sets(std::int64_t rank) {
  std::vector<Dims> sets;
  for (std::int64_t mask = 1; mask < (std::int64_t{1} << rank); ++mask) {
    Dims d;
    for (std::int64_t i = 0; i < rank; ++i)
      if (mask & (std::int64_t{1} << i)) d.push_back(i);
    sets.push_back(d);
  }
  if (rank >= 2) {
    sets.push_back({-1});
    sets.push_back({rank - 1, 0});
  }
  return sets;
}

const std::vector<Shape> kShapes = {{7}, {3, 4}, {2, 3, 4}, {2, 1, 3, 5}, {4, 1}, {1, 6, 1}};

// Values in {0, 1, 2, 3}: every reduced slice of more than four elements has tied extremes.
Tensor tied(const Shape& shape, DType dtype) {
  return randint(0, 4, shape).to(dtype);
}

std::string describe(const Shape& s, const Dims& d, bool keepdim, DType dt) {
  std::string r = to_string(s) + " dims [";
  for (auto v : d) r += std::to_string(v) + " ";
  return r + "] keepdim " + std::to_string(keepdim) + " " + std::string(dtype_name(dt));
}

void require_gradcheck(const GradcheckFn& fn, const std::vector<Tensor>& inputs) {
  CT_REQUIRE_GRADCHECK(fn, inputs);
}

}  // namespace

TEST_CASE("sum and mean over every set of dims match the CPU", "[cuda][reduce]") {
  for (const DType dt : {kFloat32, kFloat64})
    for (const auto& shape : kShapes)
      for (const auto& dims : dim_sets(static_cast<std::int64_t>(shape.size())))
        for (const bool keepdim : {false, true}) {
          INFO(describe(shape, dims, keepdim, dt));
          const Tensor x = randn(shape, dt);
          check_against_cpu([&](const Tensor& t) { return sum(t, dims, keepdim); }, x);
          check_against_cpu([&](const Tensor& t) { return mean(t, dims, keepdim); }, x);
          // Small integers: the sums are exact on both devices.
          const Tensor ints = tied(shape, dt);
          CHECK(ct_test::equal(sum(dev(ints), dims, keepdim).cpu(), sum(ints, dims, keepdim)));
        }
  for (const DType dt : {kFloat32, kFloat64}) {
    const Tensor x = randn({3, 4, 5}, dt);
    check_against_cpu([](const Tensor& t) { return sum(t); }, x);
    check_against_cpu([](const Tensor& t) { return mean(t); }, x);
    // A scalar reduces to itself.
    check_against_cpu([](const Tensor& t) { return sum(t); }, full({}, 2.5, dt));
    check_against_cpu([](const Tensor& t) { return mean(t, {0}); }, full({}, 2.5, dt));
  }
}

TEST_CASE("max and min over every set of dims match the CPU, ties and gradients included",
          "[cuda][reduce]") {
  for (const DType dt : {kFloat32, kFloat64})
    for (const auto& shape : kShapes)
      for (const auto& dims : dim_sets(static_cast<std::int64_t>(shape.size())))
        for (const bool keepdim : {false, true}) {
          INFO(describe(shape, dims, keepdim, dt));
          for (const Tensor& x : {randn(shape, dt), tied(shape, dt)}) {
            check_against_cpu([&](const Tensor& t) { return max(t, dims, keepdim); }, x);
            check_against_cpu([&](const Tensor& t) { return min(t, dims, keepdim); }, x);
          }
        }
  for (const DType dt : {kFloat32, kFloat64}) {
    const Tensor x = tied({4, 5, 6}, dt);
    check_against_cpu([](const Tensor& t) { return max(t); }, x);
    check_against_cpu([](const Tensor& t) { return min(t); }, x);
  }
}

TEST_CASE("argmax and argmin return the CPU's first extreme", "[cuda][reduce]") {
  for (const DType dt : {kFloat32, kFloat64})
    for (const auto& shape : kShapes) {
      const Tensor x = tied(shape, dt);
      const Tensor xd = dev(x);
      INFO(to_string(shape) << " " << dtype_name(dt));
      CHECK(matches(argmax(xd), argmax(x)));
      CHECK(matches(argmin(xd), argmin(x)));
      for (std::int64_t d = -static_cast<std::int64_t>(shape.size());
           d < static_cast<std::int64_t>(shape.size()); ++d)
        for (const bool keepdim : {false, true}) {
          INFO("dim " << d << " keepdim " << keepdim);
          CHECK(matches(argmax(xd, d, keepdim), argmax(x, d, keepdim)));
          CHECK(matches(argmin(xd, d, keepdim), argmin(x, d, keepdim)));
        }
    }
}

TEST_CASE("NaN wins max and min on the GPU as on the CPU; infinities take part", "[cuda][reduce]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (const DType dt : {kFloat32, kFloat64}) {
    INFO(dtype_name(dt));
    // Rows: NaN first, NaN twice later, no NaN with infinities, NaN last.
    const Tensor x =
        tensor({nan, 1, 2, 3, 1, nan, 4, nan, inf, -inf, 2, 0, 1, 2, 3, nan}, {4, 4}, dt);
    for (const std::int64_t d : {0, 1}) {
      check_against_cpu([d](const Tensor& t) { return max(t, {d}); }, x);
      check_against_cpu([d](const Tensor& t) { return min(t, {d}); }, x);
      CHECK(matches(argmax(dev(x), d), argmax(x, d)));
      CHECK(matches(argmin(dev(x), d), argmin(x, d)));
    }
    CHECK(matches(argmax(dev(x)), argmax(x)));
    CHECK(argmax(dev(x)).item<std::int64_t>() == 0);
  }
}

TEST_CASE("reductions over long axes (cut into parts on the GPU) match the CPU",
          "[cuda][reduce][slow]") {
  for (const DType dt : {kFloat32, kFloat64}) {
    INFO(dtype_name(dt));
    // A whole tensor of a million elements.
    const Tensor big = randn({1000000}, dt);
    // A sum of a million randn values is about 1000 and may cancel to near 0: an absolute
    // tolerance of sqrt(n) * 1e-12.
    check_against_cpu([](const Tensor& t) { return sum(t); }, big, 1e-9);
    check_against_cpu([](const Tensor& t) { return mean(t); }, big);
    check_against_cpu([](const Tensor& t) { return max(t); }, big);
    check_against_cpu([](const Tensor& t) { return min(t); }, big);
    const Tensor ties = tied({1000000}, dt);
    CHECK(matches(argmax(dev(ties)), argmax(ties)));
    CHECK(matches(argmin(dev(ties)), argmin(ties)));
    check_against_cpu([](const Tensor& t) { return max(t); }, ties);
    CHECK(ct_test::equal(sum(dev(ties)).cpu(), sum(ties)));
    // A long axis before a short one, and after it.
    const Tensor cols = tied({200000, 3}, dt);
    check_against_cpu([](const Tensor& t) { return sum(t, {0}); }, cols);
    check_against_cpu([](const Tensor& t) { return max(t, {0}); }, cols);
    CHECK(matches(argmin(dev(cols), 0), argmin(cols, 0)));
    const Tensor rows = randn({3, 200000}, dt);
    check_against_cpu([](const Tensor& t) { return mean(t, {1}, true); }, rows);
    check_against_cpu([](const Tensor& t) { return min(t, {1}); }, rows);
    // Many short rows: one thread per output.
    const Tensor many = randn({4096, 513}, dt);
    check_against_cpu([](const Tensor& t) { return sum(t, {1}); }, many);
    check_against_cpu([](const Tensor& t) { return max(t, {0}); }, many);
    // A NaN deep inside a long axis.
    Tensor with_nan = randn({300000}, dt);
    with_nan.put_({123457}, std::numeric_limits<double>::quiet_NaN());
    with_nan.put_({250000}, std::numeric_limits<double>::quiet_NaN());
    CHECK(argmax(dev(with_nan)).item<std::int64_t>() == 123457);
    CHECK(argmin(dev(with_nan)).item<std::int64_t>() == 123457);
  }
}

TEST_CASE("empty reductions: sums are 0, max / min refuse as on the CPU", "[cuda][reduce]") {
  for (const DType dt : {kFloat32, kFloat64}) {
    const Tensor x = Tensor::empty_cpu({0, 3}, dt);
    check_against_cpu([](const Tensor& t) { return sum(t, {0}); }, x);
    check_against_cpu([](const Tensor& t) { return sum(t, {1}); }, x);
    CHECK(matches(sum(dev(x)), sum(x)));
    CT_REQUIRE_ERROR(max(dev(x), {0}), "max: expected a non-empty reduction");
    CT_REQUIRE_ERROR(argmin(dev(x), 0), "argmin: expected a non-empty reduction");
    // Nothing to reduce into.
    CHECK(matches(max(dev(x), {1}), max(x, {1})));
  }
}

TEST_CASE("float64 gradcheck of the reductions on the GPU", "[cuda][reduce]") {
  auto cuda_leaf = [](const Shape& shape) {
    return dev(uniform(shape, -1, 1, kFloat64)).detach().requires_grad_(true);
  };
  const Tensor x = cuda_leaf({3, 4, 5});
  require_gradcheck([](const std::vector<Tensor>& v) { return sum(v[0], {0, 2}); }, {x});
  require_gradcheck([](const std::vector<Tensor>& v) { return mean(v[0], {1}, true); }, {x});
  require_gradcheck([](const std::vector<Tensor>& v) { return mul(sum(v[0]), 0.5); }, {x});
  // Distinct values spaced far more than the finite-difference step: no extreme changes hands.
  std::vector<double> ladder(60);
  for (std::size_t i = 0; i < ladder.size(); ++i) ladder[i] = 0.05 * static_cast<double>(i) - 1.0;
  std::shuffle(ladder.begin(), ladder.end(), std::mt19937(3));
  const Tensor d = dev(tensor(ladder, {3, 4, 5}, kFloat64)).detach().requires_grad_(true);
  require_gradcheck([](const std::vector<Tensor>& v) { return max(v[0], {1}); }, {d});
  require_gradcheck([](const std::vector<Tensor>& v) { return min(v[0], {0, 2}); }, {d});
  require_gradcheck([](const std::vector<Tensor>& v) { return max(v[0]); }, {d});
}
