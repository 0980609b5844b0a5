// Tests of ops/reduce: sum / mean / max / min over all elements and over sets of dims (adjacent,
// non-adjacent, negative, keepdim), argmax / argmin, NaN propagation, first-element tie breaking
// for values and gradients, float64 gradchecks, and the argument errors. Small-integer float32
// data makes every expected value exact.
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "support/test_util.h"

namespace {

using namespace convtape;
using ct_test::equal;

using Dims = std::vector<std::int64_t>;

Tensor f32(const std::vector<double>& v, const Shape& shape) {
  return tensor(v, shape);
}
Tensor i64(const std::vector<std::int64_t>& v, const Shape& shape) {
  return from_vector(v, shape);
}

// Small integers in [-4, 4] (float32): sums of a few dozen of them are exact.
Tensor small_ints(const Shape& shape) {
  std::vector<double> v(static_cast<std::size_t>(numel(shape)));
  for (std::size_t i = 0; i < v.size(); ++i)
    v[i] = static_cast<double>(static_cast<int>((i * 7 + 3) % 9) - 4);
  return tensor(v, shape);
}

// Distinct values (a shuffled 0.1-spaced ladder), so that max / min have no ties and the finite
// differences of gradcheck never cross one.
Tensor distinct_leaf(const Shape& shape, unsigned seed = 1) {
  std::vector<double> v(static_cast<std::size_t>(numel(shape)));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = 0.1 * static_cast<double>(i) - 1.0;
  std::shuffle(v.begin(), v.end(), std::mt19937(seed));
  return tensor(v, shape, kFloat64).requires_grad_(true);
}

// Reference reduction over `dims` of a row-major tensor, in double, written with plain loops.
enum class Op { Sum, Mean, Max, Min };
Tensor reference(const Tensor& x, Dims dims, bool keepdim, Op op) {
  const Shape& shape = x.shape();
  const auto r = static_cast<std::int64_t>(shape.size());
  std::vector<bool> red(shape.size(), false);
  for (auto d : dims) red[static_cast<std::size_t>(d < 0 ? d + r : d)] = true;
  Shape keep, out;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    keep.push_back(red[i] ? 1 : shape[i]);
    if (!red[i]) out.push_back(shape[i]);
  }
  const auto v = x.to_vector<double>();
  const Shape ks = contiguous_strides(keep);
  std::vector<double> acc(static_cast<std::size_t>(numel(keep)), 0.0);
  std::vector<std::int64_t> count(acc.size(), 0);
  std::vector<std::int64_t> idx(shape.size(), 0);
  for (std::size_t flat = 0; flat < v.size(); ++flat) {
    std::int64_t rem = static_cast<std::int64_t>(flat), o = 0;
    for (std::size_t d = shape.size(); d-- > 0;) {
      idx[d] = rem % shape[d];
      rem /= shape[d];
      if (!red[d]) o += idx[d] * ks[d];
    }
    auto& a = acc[static_cast<std::size_t>(o)];
    auto& c = count[static_cast<std::size_t>(o)];
    if (op == Op::Sum || op == Op::Mean)
      a += v[flat];
    else if (c == 0)
      a = v[flat];
    else
      a = op == Op::Max ? std::max(a, v[flat]) : std::min(a, v[flat]);
    ++c;
  }
  if (op == Op::Mean)
    for (std::size_t i = 0; i < acc.size(); ++i) acc[i] /= static_cast<double>(count[i]);
  return tensor(acc, keepdim ? keep : out, x.dtype());
}

Tensor run(Op op, const Tensor& x, const Dims& dims, bool keepdim) {
  switch (op) {
    case Op::Sum:
      return sum(x, dims, keepdim);
    case Op::Mean:
      return mean(x, dims, keepdim);
    case Op::Max:
      return max(x, dims, keepdim);
    case Op::Min:
      return min(x, dims, keepdim);
  }
  return {};
}

const char* name(Op op) {
  switch (op) {
    case Op::Sum:
      return "sum";
    case Op::Mean:
      return "mean";
    case Op::Max:
      return "max";
    case Op::Min:
      return "min";
  }
  return "?";
}

// Dim sets for a rank-4 tensor: single, adjacent, non-adjacent, negative, all.
const std::vector<Dims> kDimSets = {{0},      {1},       {3},       {-1},        {0, 1}, {1, 2},
                                    {2, 3},   {1, 2, 3}, {0, 2},    {1, 3},      {0, 3}, {0, 2, 3},
                                    {-1, -3}, {3, 0},    {2, 0, 1}, {0, 1, 2, 3}};

}  // namespace

// ---------------------------------------------------------------- forward values

TEST_CASE("reductions over all elements: exact values", "[ops][reduce]") {
  const Tensor x = f32({1, 2, 3, 4, 5, 6}, {2, 3});
  REQUIRE(equal(sum(x), f32({21}, {})));
  REQUIRE(equal(mean(x), f32({3.5}, {})));
  REQUIRE(equal(max(x), f32({6}, {})));
  REQUIRE(equal(min(x), f32({1}, {})));
  REQUIRE(equal(x.sum(), sum(x)));
  REQUIRE(equal(x.mean(), mean(x)));
  REQUIRE(equal(x.max(), max(x)));
  REQUIRE(equal(x.min(), min(x)));
  REQUIRE(sum(x).dim() == 0);
  REQUIRE(sum(x).dtype() == kFloat32);
  REQUIRE(sum(tensor({1, 2}, kFloat64)).dtype() == kFloat64);

  const Tensor big = arange(1, 101).reshape({4, 25});  // 1..100
  REQUIRE(sum(big).item() == 5050.0);
  REQUIRE(mean(big).item() == 50.5);
  REQUIRE(max(big).item() == 100.0);
  REQUIRE(min(big).item() == 1.0);
}

TEST_CASE("reductions over dims: hand-written values", "[ops][reduce]") {
  const Tensor x = f32({1, 2, 3, 4, 5, 6}, {2, 3});
  REQUIRE(equal(sum(x, {0}), f32({5, 7, 9}, {3})));
  REQUIRE(equal(sum(x, {1}), f32({6, 15}, {2})));
  REQUIRE(equal(sum(x, {-1}, true), f32({6, 15}, {2, 1})));
  REQUIRE(equal(sum(x, {0}, true), f32({5, 7, 9}, {1, 3})));
  REQUIRE(equal(sum(x, {0, 1}), f32({21}, {})));
  REQUIRE(equal(sum(x, {1, 0}, true), f32({21}, {1, 1})));
  REQUIRE(equal(mean(x, {0}), f32({2.5, 3.5, 4.5}, {3})));
  REQUIRE(equal(mean(x, {1}, true), f32({2, 5}, {2, 1})));
  REQUIRE(equal(max(x, {1}), f32({3, 6}, {2})));
  REQUIRE(equal(max(x, {0}, true), f32({4, 5, 6}, {1, 3})));
  REQUIRE(equal(min(x, {0}), f32({1, 2, 3}, {3})));
  REQUIRE(equal(min(x, {-1}, true), f32({1, 4}, {2, 1})));
  REQUIRE(equal(x.sum({1}), sum(x, {1})));
  REQUIRE(equal(x.mean({0}, true), mean(x, {0}, true)));

  // [2, 2, 2]: non-adjacent dims 0 and 2 leave dim 1.
  const Tensor c = f32({1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 2});
  REQUIRE(equal(sum(c, {0, 2}), f32({1 + 2 + 5 + 6, 3 + 4 + 7 + 8}, {2})));
  REQUIRE(equal(sum(c, {0, 2}, true), f32({14, 22}, {1, 2, 1})));
  REQUIRE(equal(max(c, {0, 2}), f32({6, 8}, {2})));
  REQUIRE(equal(min(c, {2, 0}), f32({1, 3}, {2})));
  REQUIRE(equal(mean(c, {-1, -3}), f32({3.5, 5.5}, {2})));
}

TEST_CASE("reductions over every dim set match a loop reference", "[ops][reduce]") {
  const Tensor x = small_ints({2, 3, 4, 5});
  for (Op op : {Op::Sum, Op::Mean, Op::Max, Op::Min}) {
    for (const auto& dims : kDimSets) {
      for (bool keepdim : {false, true}) {
        INFO(name(op) << " over [" << dims.size() << " dims starting " << dims[0] << "], keepdim "
                      << keepdim);
        const Tensor y = run(op, x, dims, keepdim);
        const Tensor want = reference(x, dims, keepdim, op);
        REQUIRE(y.shape() == want.shape());
        if (op == Op::Mean)
          REQUIRE(ct_test::allclose(y, want, 1e-6, 1e-6));
        else
          REQUIRE(equal(y, want));
      }
    }
  }
}

TEST_CASE("reductions of a non-contiguous input", "[ops][reduce]") {
  const Tensor x = small_ints({3, 4, 5}).permute({2, 0, 1});  // [5, 3, 4]
  REQUIRE(!x.is_contiguous());
  for (const Dims& dims : {Dims{0}, Dims{1}, Dims{2}, Dims{0, 2}, Dims{1, 2}}) {
    REQUIRE(equal(sum(x, dims), reference(x, dims, false, Op::Sum)));
    REQUIRE(equal(max(x, dims, true), reference(x, dims, true, Op::Max)));
    REQUIRE(equal(min(x, dims), reference(x, dims, false, Op::Min)));
  }
  REQUIRE(equal(sum(x), reference(x, {0, 1, 2}, false, Op::Sum)));
}

TEST_CASE("reductions over a long axis and a wide inner block", "[ops][reduce]") {
  // Inner extent above the kernel's chunk width and enough work to go parallel.
  const Tensor x = small_ints({3, 40, 700});
  for (const Dims& dims : {Dims{1}, Dims{0}, Dims{2}, Dims{0, 2}}) {
    REQUIRE(equal(sum(x, dims), reference(x, dims, false, Op::Sum)));
    REQUIRE(equal(max(x, dims), reference(x, dims, false, Op::Max)));
    REQUIRE(equal(min(x, dims), reference(x, dims, false, Op::Min)));
  }
}

TEST_CASE("mean is a true division: exact quotients stay exact", "[ops][reduce]") {
  // mean(c repeated n times) is c: sum * (1 / n) would round twice (343 * (1 / 49) != 7).
  for (std::int64_t n : {3, 7, 49, 98, 100}) {
    for (int c : {-16, -7, 1, 3, 7, 13}) {
      INFO("n = " << n << ", c = " << c);
      REQUIRE(mean(full({n}, c, kFloat64)).item() == static_cast<double>(c));
      REQUIRE(mean(full({n}, c, kFloat32)).item() == static_cast<double>(c));
      REQUIRE(mean(full({2, n}, c, kFloat64), {1}).to_vector<double>() ==
              std::vector<double>{1.0 * c, 1.0 * c});
    }
  }
}

TEST_CASE("reductions of scalars and empty tensors", "[ops][reduce]") {
  const Tensor s = f32({5}, {});
  REQUIRE(equal(sum(s), s));
  REQUIRE(equal(max(s), s));
  REQUIRE(equal(sum(s, {0}), s));
  REQUIRE(equal(sum(s, {-1}, true), s));
  REQUIRE(equal(argmax(s), i64({0}, {})));

  REQUIRE(equal(sum(zeros({0})), f32({0}, {})));
  REQUIRE(equal(sum(zeros({2, 0}), {1}), f32({0, 0}, {2})));
  REQUIRE(sum(zeros({2, 0}), {0}).shape() == Shape{0});
  REQUIRE(max(zeros({0, 3}), {1}).shape() == Shape{0});  // nothing to reduce per slice, no slice
}

TEST_CASE("argmax and argmin", "[ops][reduce]") {
  const Tensor x = f32({1, 5, 3, 7, 2, 7}, {2, 3});
  REQUIRE(equal(argmax(x), i64({3}, {})));  // index into the flattened tensor; first of the tied 7s
  REQUIRE(equal(argmin(x), i64({0}, {})));
  REQUIRE(equal(argmax(x, 1), i64({1, 0}, {2})));
  REQUIRE(equal(argmax(x, -1, true), i64({1, 0}, {2, 1})));
  REQUIRE(equal(argmax(x, 0), i64({1, 0, 1}, {3})));
  REQUIRE(equal(argmin(x, 0), i64({0, 1, 0}, {3})));
  REQUIRE(equal(argmin(x, 1, true), i64({0, 1}, {2, 1})));
  REQUIRE(argmax(x).dtype() == kInt64);
  REQUIRE(equal(x.argmax(), argmax(x)));
  REQUIRE(equal(x.argmax(0, true), argmax(x, 0, true)));

  SECTION("ties pick the first extreme element") {
    const Tensor t = f32({2, 2, 2, 1, 1, 1}, {2, 3});
    REQUIRE(equal(argmax(t), i64({0}, {})));
    REQUIRE(equal(argmin(t), i64({3}, {})));
    REQUIRE(equal(argmax(t, 1), i64({0, 0}, {2})));
    REQUIRE(equal(argmin(t, 0), i64({1, 1, 1}, {3})));
  }
  SECTION("non-contiguous and 3-d inputs") {
    const Tensor t = distinct_leaf({3, 4, 5}).detach().transpose(0, 2);  // [5, 4, 3]
    REQUIRE(!t.is_contiguous());
    for (std::int64_t d = 0; d < 3; ++d) {
      REQUIRE(equal(argmax(t, d), argmax(t.contiguous(), d)));
      REQUIRE(equal(argmin(t, d, true), argmin(t.contiguous(), d, true)));
    }
    REQUIRE(equal(argmax(t), argmax(t.contiguous())));
    // Flattened argmax of a transposed tensor counts in its logical row-major order.
    const Tensor u = f32({0, 9, 1, 2}, {2, 2}).t();  // [[0, 1], [9, 2]]
    REQUIRE(equal(argmax(u), i64({2}, {})));
    REQUIRE(equal(argmax(u, 0), i64({1, 1}, {2})));
  }
}

TEST_CASE("argmax agrees with max along every dim", "[ops][reduce]") {
  const Tensor x = distinct_leaf({3, 4, 5}).detach();
  const auto v = x.to_vector<double>();
  for (std::int64_t d = 0; d < 3; ++d) {
    for (bool keepdim : {false, true}) {
      const auto am = argmax(x, d, keepdim).to_vector<std::int64_t>();
      const auto an = argmin(x, d, keepdim).to_vector<std::int64_t>();
      const auto mx = max(x, {d}, keepdim).to_vector<double>();
      const auto mn = min(x, {d}, keepdim).to_vector<double>();
      // Walk the output positions and read x at the chosen index.
      const Shape& s = x.shape();
      const Shape st = contiguous_strides(s);
      std::size_t o = 0;
      for (std::int64_t i = 0; i < s[0]; ++i)
        for (std::int64_t j = 0; j < s[1]; ++j)
          for (std::int64_t k = 0; k < s[2]; ++k) {
            const std::int64_t pos[3] = {i, j, k};
            if (pos[d] != 0) continue;
            std::int64_t base = i * st[0] + j * st[1] + k * st[2];
            REQUIRE(v[static_cast<std::size_t>(base + am[o] * st[static_cast<std::size_t>(d)])] ==
                    mx[o]);
            REQUIRE(v[static_cast<std::size_t>(base + an[o] * st[static_cast<std::size_t>(d)])] ==
                    mn[o]);
            ++o;
          }
      REQUIRE(o == mx.size());
    }
  }
}

TEST_CASE("NaN propagates through max and min", "[ops][reduce]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Tensor x = tensor({1, nan, 3, 4, 5, 6}, {2, 3}, kFloat64);
  REQUIRE(std::isnan(max(x).item()));
  REQUIRE(std::isnan(min(x).item()));
  const auto by_row = max(x, {1}).to_vector<double>();
  REQUIRE(std::isnan(by_row[0]));
  REQUIRE(by_row[1] == 6.0);
  const auto by_col = min(x, {0}).to_vector<double>();
  REQUIRE(by_col[0] == 1.0);
  REQUIRE(std::isnan(by_col[1]));
  REQUIRE(by_col[2] == 3.0);
  REQUIRE(equal(argmax(x), i64({1}, {})));
  REQUIRE(equal(argmin(x, 1), i64({1, 0}, {2})));
  // NaN last in its slice still wins, and the first NaN is the one reported.
  const Tensor y = tensor({1, 2, nan, nan}, kFloat32);
  REQUIRE(std::isnan(max(y).item()));
  REQUIRE(equal(argmax(y), i64({2}, {})));
  REQUIRE(std::isnan(sum(y).item()));
}

// ---------------------------------------------------------------- gradients

TEST_CASE("sum and mean: gradcheck over dim sets", "[ops][reduce][grad]") {
  const Tensor x = ct_test::leaf({2, 3, 2, 3});
  CT_REQUIRE_GRADCHECK([](const std::vector<Tensor>& v) { return sum(v[0]); },
                       std::vector<Tensor>{x});
  CT_REQUIRE_GRADCHECK([](const std::vector<Tensor>& v) { return mean(v[0]); },
                       std::vector<Tensor>{x});
  for (const auto& dims : kDimSets) {
    for (bool keepdim : {false, true}) {
      INFO(dims.size() << " dims starting " << dims[0] << ", keepdim " << keepdim);
      CT_REQUIRE_GRADCHECK([&](const std::vector<Tensor>& v) { return sum(v[0], dims, keepdim); },
                           std::vector<Tensor>{x});
      CT_REQUIRE_GRADCHECK([&](const std::vector<Tensor>& v) { return mean(v[0], dims, keepdim); },
                           std::vector<Tensor>{x});
    }
  }
  // Composed with elementwise work and a non-contiguous input.
  CT_REQUIRE_GRADCHECK(
      [](const std::vector<Tensor>& v) {
        return sum(v[0].transpose(0, 3) * v[0].transpose(0, 3), {1, 3});
      },
      std::vector<Tensor>{x});
}

TEST_CASE("max and min: gradcheck over dim sets without ties", "[ops][reduce][grad]") {
  const Tensor x = distinct_leaf({2, 3, 2, 3});
  CT_REQUIRE_GRADCHECK([](const std::vector<Tensor>& v) { return max(v[0]); },
                       std::vector<Tensor>{x});
  CT_REQUIRE_GRADCHECK([](const std::vector<Tensor>& v) { return min(v[0]); },
                       std::vector<Tensor>{x});
  for (const auto& dims : kDimSets) {
    for (bool keepdim : {false, true}) {
      INFO(dims.size() << " dims starting " << dims[0] << ", keepdim " << keepdim);
      CT_REQUIRE_GRADCHECK([&](const std::vector<Tensor>& v) { return max(v[0], dims, keepdim); },
                           std::vector<Tensor>{x});
      CT_REQUIRE_GRADCHECK([&](const std::vector<Tensor>& v) { return min(v[0], dims, keepdim); },
                           std::vector<Tensor>{x});
    }
  }
  CT_REQUIRE_GRADCHECK(
      [](const std::vector<Tensor>& v) {
        return max(v[0].permute({3, 1, 0, 2}), {0, 2}) * 2.0;
      },
      std::vector<Tensor>{x});
}

TEST_CASE("gradients of sum and mean have the expected values", "[ops][reduce][grad]") {
  Tensor x = f32({1, 2, 3, 4, 5, 6}, {2, 3}).requires_grad_(true);
  sum(x, {1}).backward(f32({1, 2}, {2}));
  REQUIRE(equal(x.grad(), f32({1, 1, 1, 2, 2, 2}, {2, 3})));
  x.zero_grad();
  mean(x, {0}, true).backward(f32({2, 4, 6}, {1, 3}));
  REQUIRE(equal(x.grad(), f32({1, 2, 3, 1, 2, 3}, {2, 3})));
  x.zero_grad();
  mean(x).backward();
  REQUIRE(ct_test::allclose(x.grad(), full({2, 3}, 1.0 / 6.0), 1e-7, 0));
}

TEST_CASE("max and min with ties: the gradient goes to the first extreme element",
          "[ops][reduce][grad]") {
  SECTION("over all elements") {
    Tensor x = f32({1, 3, 3, 2, 3, 0}, {2, 3}).requires_grad_(true);
    max(x).backward();
    REQUIRE(equal(x.grad(), f32({0, 1, 0, 0, 0, 0}, {2, 3})));
    x.zero_grad();
    Tensor z = f32({0, 3, 0, 2}, {4}).requires_grad_(true);
    min(z).backward();
    REQUIRE(equal(z.grad(), f32({1, 0, 0, 0}, {4})));
  }
  SECTION("over one dim") {
    Tensor x = f32({3, 3, 1, 1}, {2, 2}).requires_grad_(true);
    max(x, {0}).backward(f32({1, 1}, {2}));
    REQUIRE(equal(x.grad(), f32({1, 1, 0, 0}, {2, 2})));
    x.zero_grad();
    max(x, {1}).backward(f32({1, 1}, {2}));
    REQUIRE(equal(x.grad(), f32({1, 0, 1, 0}, {2, 2})));
    x.zero_grad();
    min(x, {1}, true).backward(f32({5, 7}, {2, 1}));
    REQUIRE(equal(x.grad(), f32({5, 0, 7, 0}, {2, 2})));
  }
  SECTION("over non-adjacent dims: first in row-major order of the reduced dims") {
    Tensor x = full({2, 2, 2}, 4.0).requires_grad_(true);
    max(x, {0, 2}).backward(f32({1, 2}, {2}));
    // Slices j = 0 and j = 1; the first element of each is (0, j, 0).
    REQUIRE(equal(x.grad(), f32({1, 0, 2, 0, 0, 0, 0, 0}, {2, 2, 2})));
  }
}

// ---------------------------------------------------------------- errors

TEST_CASE("reduction errors", "[ops][reduce][errors]") {
  const Tensor x = zeros({2, 3, 4});
  SECTION("bad dim") {
    CT_REQUIRE_ERROR(sum(x, {3}), "sum: expected dim in [-3, 3), got 3");
    CT_REQUIRE_ERROR(mean(x, {-4}), "mean: expected dim in [-3, 3), got -4");
    CT_REQUIRE_ERROR(max(x, {0, 5}), "max: expected dim in [-3, 3), got 5");
    CT_REQUIRE_ERROR(min(x, {7}), "min: expected dim in");
    CT_REQUIRE_ERROR(argmax(x, 3), "argmax: expected dim in [-3, 3), got 3");
    CT_REQUIRE_ERROR(argmin(x, -4), "argmin: expected dim in");
    CT_REQUIRE_ERROR(sum(f32({1}, {}), {1}), "sum: expected dim in [-1, 1), got 1");
  }
  SECTION("duplicate dims") {
    CT_REQUIRE_ERROR(sum(x, {1, 1}), "sum: expected distinct dims, got [1, 1]");
    CT_REQUIRE_ERROR(mean(x, {0, -3}), "mean: expected distinct dims, got [0, -3]");
    CT_REQUIRE_ERROR(max(x, {2, 0, -1}), "max: expected distinct dims");
    CT_REQUIRE_ERROR(min(x, {-2, 1}), "min: expected distinct dims");
  }
  SECTION("empty max / min / argmax") {
    CT_REQUIRE_ERROR(max(zeros({0})), "max: expected a non-empty reduction");
    CT_REQUIRE_ERROR(min(zeros({3, 0})), "min: expected a non-empty reduction");
    CT_REQUIRE_ERROR(max(zeros({3, 0}), {1}),
                     "max: expected a non-empty reduction, got shape [3, 0]");
    CT_REQUIRE_ERROR(argmax(zeros({0})), "argmax: expected a non-empty reduction");
    CT_REQUIRE_ERROR(argmin(zeros({2, 0}), 1), "argmin: expected a non-empty reduction");
  }
  SECTION("non-floating or undefined input") {
    CT_REQUIRE_ERROR(sum(zeros({3}, kInt64)), "sum: expected a floating-point tensor");
    CT_REQUIRE_ERROR(max(zeros({3}, kInt64), {0}), "max: expected a floating-point tensor");
    CT_REQUIRE_ERROR(mean(Tensor()), "expected a defined");
  }
}
