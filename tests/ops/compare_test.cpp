// Tests of ops/compare: exact small-integer forwards of every op on float32, float64 and int64
// (broadcasting, NaN, infinities, scalar operands), the gradients at ties and at NaN, golden values
// from PyTorch 1.13 (scripts/make_compare_golden.py) for where, maximum, minimum, masked_fill,
// masked_select, topk and sort with their gradients, the op harness (support/op_check.h: float64
// gradcheck, float32 against float64, CUDA against the CPU) over broadcast shapes, the metric
// one-liners the header is for, and one test per error message.
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "ops/compare.h"
#include "support/op_check.h"

namespace {

using namespace convtape;
using ct_test::identical;
using ct_test::leaf;
using ct_test::OpCheck;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

Tensor i64(const std::vector<std::int64_t>& v, const Shape& shape) {
  return from_vector(v, shape);
}

// The same small values in dtype (int64 for integers).
Tensor as(DType dtype, const std::vector<double>& v, const Shape& shape) {
  return tensor(v, shape, kFloat64).to(dtype);
}

const std::vector<DType> kAllDtypes = {kFloat32, kFloat64, kInt64};

// A float64 leaf of distinct values (no two closer than 1e-3): no ties for gradcheck.
Tensor distinct_leaf(const Shape& shape, std::uint64_t seed) {
  Generator gen(seed);
  const std::int64_t n = numel(shape);
  const Tensor perm = randint(0, 1 << 20, {n}, kInt64, &gen);
  std::vector<double> v(static_cast<std::size_t>(n));
  // A random permutation of 0 .. n-1, scaled, plus a small jitter: distinct by construction.
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::int64_t>(i);
  const auto keys = perm.to_vector<std::int64_t>();
  std::sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) {
    return keys[static_cast<std::size_t>(a)] < keys[static_cast<std::size_t>(b)] ||
           (keys[static_cast<std::size_t>(a)] == keys[static_cast<std::size_t>(b)] && a < b);
  });
  for (std::size_t i = 0; i < v.size(); ++i)
    v[static_cast<std::size_t>(order[i])] =
        -1.0 + 2.0 * static_cast<double>(i) / static_cast<double>(n);
  return tensor(v, shape, kFloat64).requires_grad_(true);
}

}  // namespace

// ---------------------------------------------------------------- comparisons

TEST_CASE("comparisons: exact masks of the operands' dtype, broadcast", "[ops][compare]") {
  for (const DType dt : kAllDtypes) {
    INFO(dtype_name(dt));
    const Tensor a = as(dt, {1, 2, 3, 4, 5, 6}, {2, 3});
    const Tensor b = as(dt, {2, 2, 7}, {3});
    REQUIRE(identical(eq(a, b), as(dt, {0, 1, 0, 0, 0, 0}, {2, 3})));
    REQUIRE(identical(ne(a, b), as(dt, {1, 0, 1, 1, 1, 1}, {2, 3})));
    REQUIRE(identical(lt(a, b), as(dt, {1, 0, 1, 0, 0, 1}, {2, 3})));
    REQUIRE(identical(le(a, b), as(dt, {1, 1, 1, 0, 0, 1}, {2, 3})));
    REQUIRE(identical(gt(a, b), as(dt, {0, 0, 0, 1, 1, 0}, {2, 3})));
    REQUIRE(identical(ge(a, b), as(dt, {0, 1, 0, 1, 1, 0}, {2, 3})));
    // [2, 1] against [3]: an outer product of comparisons.
    const Tensor c = as(dt, {2, 5}, {2, 1});
    REQUIRE(identical(lt(c, b), as(dt, {0, 0, 1, 0, 0, 1}, {2, 3})));
    // A 0-d operand, and a transposed one.
    REQUIRE(identical(ge(a, as(dt, {4}, {})), as(dt, {0, 0, 0, 1, 1, 1}, {2, 3})));
    REQUIRE(identical(eq(a.t(), a.t()), as(dt, {1, 1, 1, 1, 1, 1}, {3, 2})));
    REQUIRE(identical(gt(a.t(), as(dt, {3, 3}, {2})), as(dt, {0, 1, 0, 1, 0, 1}, {3, 2})));
    // Empty.
    REQUIRE(eq(as(dt, {}, {0, 3}), b).shape() == Shape{0, 3});
  }
}

TEST_CASE("comparisons with NaN are false except ne; infinities compare", "[ops][compare]") {
  const Tensor a = tensor({kNaN, kNaN, 1, kInf, -kInf, 0}, {6}, kFloat64);
  const Tensor b = tensor({kNaN, 1, kNaN, kInf, 0, -0.0}, {6}, kFloat64);
  REQUIRE(identical(eq(a, b), tensor({0, 0, 0, 1, 0, 1}, {6}, kFloat64)));
  REQUIRE(identical(ne(a, b), tensor({1, 1, 1, 0, 1, 0}, {6}, kFloat64)));
  REQUIRE(identical(lt(a, b), tensor({0, 0, 0, 0, 1, 0}, {6}, kFloat64)));
  REQUIRE(identical(le(a, b), tensor({0, 0, 0, 1, 1, 1}, {6}, kFloat64)));
  REQUIRE(identical(gt(a, b), tensor({0, 0, 0, 0, 0, 0}, {6}, kFloat64)));
  REQUIRE(identical(ge(a, b), tensor({0, 0, 0, 1, 0, 1}, {6}, kFloat64)));
  REQUIRE(identical(eq(a, kNaN), zeros({6}, kFloat64)));
  REQUIRE(identical(ne(a.to(kFloat32), kNaN), ones({6})));
}

TEST_CASE("comparisons with a scalar", "[ops][compare]") {
  const Tensor x = tensor({1, 2, 3}, {3});
  REQUIRE(identical(eq(x, 2), tensor({0, 1, 0}, {3})));
  REQUIRE(identical(ne(x, 2), tensor({1, 0, 1}, {3})));
  REQUIRE(identical(lt(x, 2), tensor({1, 0, 0}, {3})));
  REQUIRE(identical(le(x, 2), tensor({1, 1, 0}, {3})));
  REQUIRE(identical(gt(x, 2), tensor({0, 0, 1}, {3})));
  REQUIRE(identical(ge(x, 2), tensor({0, 1, 1}, {3})));
  // The scalar is converted to the tensor's dtype first (PyTorch): 0.1f == 0.1 in float32.
  REQUIRE(identical(eq(tensor({0.1}, {1}), 0.1), tensor({1}, {1})));
  REQUIRE(identical(eq(tensor({0.1}, {1}, kFloat64), 0.1), tensor({1}, {1}, kFloat64)));
  SECTION("int64 against integral and non-integral scalars: exact") {
    const Tensor l = i64({-3, 2, 3, 4}, {4});
    REQUIRE(identical(eq(l, 3), i64({0, 0, 1, 0}, {4})));
    REQUIRE(identical(lt(l, 2.5), i64({1, 1, 0, 0}, {4})));
    REQUIRE(identical(le(l, 2.5), i64({1, 1, 0, 0}, {4})));
    REQUIRE(identical(gt(l, 2.5), i64({0, 0, 1, 1}, {4})));
    REQUIRE(identical(ge(l, 2.5), i64({0, 0, 1, 1}, {4})));
    REQUIRE(identical(gt(l, -3.5), i64({1, 1, 1, 1}, {4})));
    REQUIRE(identical(eq(l, 2.5), i64({0, 0, 0, 0}, {4})));
    REQUIRE(identical(ne(l, 2.5), i64({1, 1, 1, 1}, {4})));
    REQUIRE(identical(lt(l, kInf), i64({1, 1, 1, 1}, {4})));
    REQUIRE(identical(gt(l, kInf), i64({0, 0, 0, 0}, {4})));
    REQUIRE(identical(ge(l, -kInf), i64({1, 1, 1, 1}, {4})));
    REQUIRE(identical(le(l, 0x1p70), i64({1, 1, 1, 1}, {4})));
    REQUIRE(identical(lt(l, kNaN), i64({0, 0, 0, 0}, {4})));
    REQUIRE(identical(ne(l, kNaN), i64({1, 1, 1, 1}, {4})));
    // Values past 2^53 compare exactly (no rounding through float or double).
    const std::int64_t big = (std::int64_t{1} << 60) + 1;
    REQUIRE(identical(eq(i64({big, big - 1}, {2}), i64({big}, {1})), i64({1, 0}, {2})));
  }
}

TEST_CASE("comparisons are not differentiable", "[ops][compare]") {
  const Tensor a = leaf({3});
  const Tensor b = leaf({3});
  REQUIRE_FALSE(eq(a, b).requires_grad());
  REQUIRE_FALSE(lt(a, 0.0).requires_grad());
  REQUIRE_FALSE(logical_and(a, b).requires_grad());
  REQUIRE_FALSE(logical_not(a).requires_grad());
  REQUIRE_FALSE(any(a).requires_grad());
  REQUIRE_FALSE(count_nonzero(a).requires_grad());
}

TEST_CASE("logical_and, logical_or, logical_not: nonzero (NaN too) is true", "[ops][compare]") {
  for (const DType dt : kAllDtypes) {
    INFO(dtype_name(dt));
    const Tensor a = as(dt, {0, 0, 2, -3}, {4});
    const Tensor b = as(dt, {0, 5, 0, 1}, {4});
    REQUIRE(identical(logical_and(a, b), as(dt, {0, 0, 0, 1}, {4})));
    REQUIRE(identical(logical_or(a, b), as(dt, {0, 1, 1, 1}, {4})));
    REQUIRE(identical(logical_not(a), as(dt, {1, 1, 0, 0}, {4})));
    REQUIRE(identical(logical_and(as(dt, {1, 0}, {2, 1}), as(dt, {1, 1, 0}, {3})),
                      as(dt, {1, 1, 0, 0, 0, 0}, {2, 3})));
  }
  const Tensor n = tensor({kNaN, 0}, {2});
  REQUIRE(identical(logical_and(n, tensor({1, 1}, {2})), tensor({1, 0}, {2})));
  REQUIRE(identical(logical_not(n), tensor({0, 1}, {2})));
}

// ---------------------------------------------------------------- where, maximum, minimum

TEST_CASE("where: a true select, broadcast, any cond dtype", "[ops][compare]") {
  for (const DType dt : kAllDtypes) {
    INFO(dtype_name(dt));
    const Tensor cond = as(dt, {1, 0, 2}, {3});
    REQUIRE(identical(where(cond, as(dt, {1, 2, 3}, {3}), as(dt, {7, 8, 9}, {3})),
                      as(dt, {1, 8, 3}, {3})));
    // cond [2, 1], a [3], b 0-d.
    REQUIRE(identical(where(as(dt, {0, 1}, {2, 1}), as(dt, {1, 2, 3}, {3}), as(dt, {-1}, {})),
                      as(dt, {-1, -1, -1, 1, 2, 3}, {2, 3})));
    // Scalar branches take the tensor's dtype.
    REQUIRE(identical(where(cond, as(dt, {1, 2, 3}, {3}), 5.0), as(dt, {1, 5, 3}, {3})));
    REQUIRE(identical(where(cond, 5.0, as(dt, {1, 2, 3}, {3})), as(dt, {5, 2, 5}, {3})));
  }
  // A cond of another dtype: nonzero is true, however small (1e-300 is 0 as a float32).
  REQUIRE(identical(where(tensor({1e-300, 0, kNaN}, {3}, kFloat64), tensor({1, 2, 3}, {3}),
                          tensor({7, 8, 9}, {3})),
                    tensor({1, 8, 3}, {3})));
  REQUIRE(identical(where(i64({0, 3}, {2}), tensor({1, 2}, {2}), 0.0), tensor({0, 2}, {2})));
  // inf and NaN in the branch not taken reach neither the result nor the gradient (0 * inf would).
  const Tensor a = tensor({kInf, 1, kNaN}, {3}, kFloat64).requires_grad_(true);
  const Tensor b = tensor({2, kInf, 3}, {3}, kFloat64).requires_grad_(true);
  const Tensor y = where(tensor({0, 1, 0}, {3}, kFloat64), a, b);
  REQUIRE(identical(y.detach(), tensor({2, 1, 3}, {3}, kFloat64)));
  sum(y).backward();
  REQUIRE(identical(a.grad(), tensor({0, 1, 0}, {3}, kFloat64)));
  REQUIRE(identical(b.grad(), tensor({1, 0, 1}, {3}, kFloat64)));
}

TEST_CASE("where: gradients summed over broadcast dims", "[ops][compare]") {
  const Tensor a = tensor({1, 2, 3}, {3}, kFloat64).requires_grad_(true);
  const Tensor b = tensor({5}, {}, kFloat64).requires_grad_(true);
  const Tensor cond = tensor({1, 0, 0, 1, 1, 0}, {2, 3}, kFloat64);
  sum(where(cond, a, b) * tensor({1, 2, 4, 8, 16, 32}, {2, 3}, kFloat64)).backward();
  REQUIRE(identical(a.grad(), tensor({9, 16, 0}, {3}, kFloat64)));
  REQUIRE(identical(b.grad(), tensor({38}, {}, kFloat64)));
}

TEST_CASE("maximum and minimum: NaN wins, ties keep the first operand, int64", "[ops][compare]") {
  for (const DType dt : kAllDtypes) {
    INFO(dtype_name(dt));
    const Tensor a = as(dt, {1, 5, 3, -2}, {4});
    const Tensor b = as(dt, {2, 4, 3, -7}, {4});
    REQUIRE(identical(maximum(a, b), as(dt, {2, 5, 3, -2}, {4})));
    REQUIRE(identical(minimum(a, b), as(dt, {1, 4, 3, -7}, {4})));
    REQUIRE(identical(maximum(as(dt, {0, 4}, {2, 1}), as(dt, {1, 2, 3}, {3})),
                      as(dt, {1, 2, 3, 4, 4, 4}, {2, 3})));
  }
  const Tensor a = tensor({kNaN, 1, 0, -0.0, kInf}, {5}, kFloat64);
  const Tensor b = tensor({1, kNaN, -0.0, 0, 2}, {5}, kFloat64);
  const auto mx = maximum(a, b).to_vector<double>(), mn = minimum(a, b).to_vector<double>();
  REQUIRE((std::isnan(mx[0]) && std::isnan(mx[1]) && std::isnan(mn[0]) && std::isnan(mn[1])));
  // torch.maximum(0., -0.) is 0. and torch.maximum(-0., 0.) is -0.: the first operand on a tie.
  REQUIRE(
      (!std::signbit(mx[2]) && std::signbit(mx[3]) && !std::signbit(mn[2]) && std::signbit(mn[3])));
  REQUIRE((mx[4] == kInf && mn[4] == 2));
}

TEST_CASE("maximum and minimum: PyTorch's gradient at ties (half each) and at NaN (all to both)",
          "[ops][compare]") {
  // The cases checked against torch 1.13 by hand: a = [1, 2, 3, nan, 5], b = [1, 3, 2, 1, nan].
  const std::vector<double> av = {1, 2, 3, kNaN, 5}, bv = {1, 3, 2, 1, kNaN};
  for (const bool is_max : {true, false}) {
    INFO((is_max ? "maximum" : "minimum"));
    const Tensor a = tensor(av, {5}, kFloat64).requires_grad_(true);
    const Tensor b = tensor(bv, {5}, kFloat64).requires_grad_(true);
    sum(is_max ? maximum(a, b) : minimum(a, b)).backward();
    REQUIRE(identical(a.grad(),
                      tensor({0.5, is_max ? 0.0 : 1.0, is_max ? 1.0 : 0.0, 1, 1}, {5}, kFloat64)));
    REQUIRE(identical(b.grad(),
                      tensor({0.5, is_max ? 1.0 : 0.0, is_max ? 0.0 : 1.0, 1, 1}, {5}, kFloat64)));
  }
}

// ---------------------------------------------------------------- masked_fill, masked_select

TEST_CASE("masked_fill and masked_select: exact, broadcast, any mask dtype", "[ops][compare]") {
  for (const DType dt : kAllDtypes) {
    INFO(dtype_name(dt));
    const Tensor x = as(dt, {1, 2, 3, 4, 5, 6}, {2, 3});
    REQUIRE(identical(masked_fill(x, as(dt, {1, 0, 3}, {3}), -1),
                      as(dt, {-1, 2, -1, -1, 5, -1}, {2, 3})));
    REQUIRE(identical(masked_select(x, as(dt, {0, 1, 1}, {3})), as(dt, {2, 3, 5, 6}, {4})));
    REQUIRE(identical(masked_select(x, as(dt, {0, 1}, {2, 1})), as(dt, {4, 5, 6}, {3})));
    REQUIRE(identical(masked_select(x, zeros({2, 3}, dt)), as(dt, {}, {0})));
    // x broadcast to the mask's shape.
    REQUIRE(identical(masked_select(as(dt, {7, 8}, {2}), as(dt, {1, 0, 1, 1}, {2, 2})),
                      as(dt, {7, 7, 8}, {3})));
    REQUIRE(identical(masked_fill(as(dt, {7, 8}, {2, 1}), as(dt, {1, 0}, {2}), 0),
                      as(dt, {0, 7, 0, 8}, {2, 2})));
  }
  // A mask of another dtype, and a NaN mask element (true).
  REQUIRE(identical(masked_fill(tensor({1, 2, 3}, {3}), i64({0, 1, 0}, {3}), kInf),
                    tensor({1, kInf, 3}, {3})));
  REQUIRE(identical(masked_select(i64({4, 5}, {2}), tensor({kNaN, 0}, {2})), i64({4}, {1})));
  // A filled inf does not leak into the gradient.
  const Tensor x = tensor({1, 2, 3}, {3}, kFloat64).requires_grad_(true);
  sum(masked_fill(x, tensor({0, 1, 0}, {3}), kInf) * 2.0).backward();
  REQUIRE(identical(x.grad(), tensor({2, 0, 2}, {3}, kFloat64)));
  // masked_select's gradient is summed where x was broadcast.
  const Tensor y = tensor({7, 8}, {2}, kFloat64).requires_grad_(true);
  sum(masked_select(y, tensor({1, 0, 1, 1}, {2, 2}, kFloat64)) * tensor({1, 2, 4}, {3}, kFloat64))
      .backward();
  REQUIRE(identical(y.grad(), tensor({3, 4}, {2}, kFloat64)));
}

// ---------------------------------------------------------------- topk, sort

TEST_CASE("topk: values and indices along any dim, ties by position, NaN largest",
          "[ops][compare]") {
  for (const DType dt : kAllDtypes) {
    INFO(dtype_name(dt));
    const Tensor x = as(dt, {1, 3, 3, 2, 3, 0, 4, -1, 4, 2}, {2, 5});
    auto [v, i] = topk(x, 2);
    REQUIRE(identical(v, as(dt, {3, 3, 4, 4}, {2, 2})));
    REQUIRE(identical(i, i64({1, 2, 1, 3}, {2, 2})));
    auto [vs, is] = topk(x, 3, 1, /*largest=*/false);
    REQUIRE(identical(vs, as(dt, {1, 2, 3, -1, 0, 2}, {2, 3})));
    REQUIRE(identical(is, i64({0, 3, 1, 2, 0, 4}, {2, 3})));
    // Along dim 0, and a negative dim.
    auto [v0, i0] = topk(x, 1, 0);
    REQUIRE(identical(v0, as(dt, {1, 4, 3, 4, 3}, {1, 5})));
    REQUIRE(identical(i0, i64({0, 1, 0, 1, 0}, {1, 5})));
    REQUIRE(identical(topk(x, 1, -2).indices, i0));
    // k = 0 and k = n.
    REQUIRE(topk(x, 0).values.shape() == Shape{2, 0});
    REQUIRE(identical(topk(x, 5).indices, i64({1, 2, 4, 3, 0, 1, 3, 4, 0, 2}, {2, 5})));
    // A 3-d tensor along its middle dim.
    const Tensor y = as(dt, {5, 0, 1, 7, 3, 2, 9, 4, 8, 6, 11, 10}, {2, 3, 2});
    REQUIRE(identical(topk(y, 2, 1).values, as(dt, {5, 7, 3, 2, 11, 10, 9, 6}, {2, 2, 2})));
    REQUIRE(identical(topk(y, 2, 1).indices, i64({0, 1, 2, 2, 2, 2, 0, 1}, {2, 2, 2})));
    // A 0-d tensor, an empty one.
    REQUIRE(identical(topk(as(dt, {3}, {}), 1).values, as(dt, {3}, {})));
    REQUIRE(identical(topk(as(dt, {3}, {}), 1).indices, i64({0}, {})));
    REQUIRE(topk(as(dt, {}, {0, 4}), 2).indices.shape() == Shape{0, 2});
  }
  // NaN ranks above every number (torch.topk / torch.sort: first when largest, last otherwise).
  const Tensor x = tensor({1, kNaN, 3, 2}, {4}, kFloat64);
  REQUIRE(identical(topk(x, 2).indices, i64({1, 2}, {2})));
  REQUIRE(identical(topk(x, 2, 0, false).indices, i64({0, 3}, {2})));
  REQUIRE(identical(sort(x).indices, i64({0, 3, 2, 1}, {4})));
  REQUIRE(identical(sort(x, 0, true).indices, i64({1, 2, 3, 0}, {4})));
}

TEST_CASE("topk: the gradient goes to the indices; sort is stable", "[ops][compare]") {
  const Tensor x = tensor({1, 3, 3, 2, 3, 0, 4, -1, 4, 2}, {2, 5}, kFloat64).requires_grad_(true);
  sum(topk(x, 2).values * tensor({1, 2, 4, 8}, {2, 2}, kFloat64)).backward();
  REQUIRE(identical(x.grad(), tensor({0, 1, 2, 0, 0, 0, 4, 0, 8, 0}, {2, 5}, kFloat64)));
  const Tensor s = tensor({2, 1, 2, 1}, {4}, kFloat64);
  REQUIRE(identical(sort(s).indices, i64({1, 3, 0, 2}, {4})));
  REQUIRE(identical(sort(s, -1, true).indices, i64({0, 2, 1, 3}, {4})));
  REQUIRE(identical(sort(s).values, tensor({1, 1, 2, 2}, {4}, kFloat64)));
  // An empty topk still has a (zero) gradient.
  const Tensor z = leaf({3});
  sum(topk(z, 0).values).backward();
  REQUIRE(identical(z.grad(), zeros({3}, kFloat64)));
}

// ---------------------------------------------------------------- any, all, count_nonzero

TEST_CASE("any, all, count_nonzero", "[ops][compare]") {
  for (const DType dt : kAllDtypes) {
    INFO(dtype_name(dt));
    const Tensor x = as(dt, {0, 1, 0, 2, 3, 0}, {2, 3});
    REQUIRE(identical(any(x), as(dt, {1}, {})));
    REQUIRE(identical(all(x), as(dt, {0}, {})));
    REQUIRE(identical(any(x, 0), as(dt, {1, 1, 0}, {3})));
    REQUIRE(identical(all(x, 0), as(dt, {0, 1, 0}, {3})));
    REQUIRE(identical(all(x, 1, true), as(dt, {0, 0}, {2, 1})));
    REQUIRE(identical(any(x, -1, true), as(dt, {1, 1}, {2, 1})));
    REQUIRE(identical(count_nonzero(x), i64({3}, {})));
    REQUIRE(identical(count_nonzero(x, {0}), i64({1, 2, 0}, {3})));
    REQUIRE(identical(count_nonzero(x, {0, 1}), i64({3}, {})));
    // Nothing to reduce: any is false, all is true.
    REQUIRE(identical(any(as(dt, {}, {0})), as(dt, {0}, {})));
    REQUIRE(identical(all(as(dt, {}, {0})), as(dt, {1}, {})));
  }
  REQUIRE(identical(all(tensor({kNaN, 1}, {2})), full({}, 1.0)));
}

// ---------------------------------------------------------------- metrics

TEST_CASE("metrics as tensor ops: accuracy and IoU", "[ops][compare]") {
  const Tensor logits = tensor({2, 1, 0, 0, 3, 1, 5, 1, 2, 0, 0, 1}, {4, 3});
  const Tensor labels = i64({0, 1, 2, 2}, {4});
  // Accuracy: argmax along the classes against int64 labels.
  const Tensor correct = count_nonzero(eq(argmax(logits, 1), labels));
  REQUIRE(correct.item<std::int64_t>() == 3);
  // IoU of two binary masks.
  const Tensor p = tensor({1, 1, 0, 0, 1, 0}, {2, 3}), t = tensor({1, 0, 0, 1, 1, 0}, {2, 3});
  const Tensor iou = sum(logical_and(p, t)) / sum(logical_or(p, t));
  REQUIRE(iou.item<float>() == 0.5f);
  // Top-2 accuracy.
  const Tensor top2 = topk(logits, 2, 1).indices;
  REQUIRE(count_nonzero(eq(top2, labels.unsqueeze(1))).item<std::int64_t>() == 4);
}

// ---------------------------------------------------------------- golden values

namespace {

const std::map<std::string, ct_test::GoldenCase>& golden() {
  static const auto cases = ct_test::load_golden("compare.txt");
  return cases;
}

// Runs fn on the case's inputs (the named ones as fresh leaves), then compares exactly out (and the
// indices unless skipped) and d sum(out * g) / d input with the stored ones.
void check_golden(const std::string& name, const std::vector<std::string>& leaves,
                  const std::vector<std::string>& constants,
                  const std::function<TopkResult(const std::vector<Tensor>&)>& fn,
                  bool compare_indices = true) {
  INFO("golden case " << name);
  const auto& c = golden().at(name);
  std::vector<Tensor> in;
  for (const auto& l : leaves) in.push_back(c.at(l).clone().requires_grad_(true));
  for (const auto& k : constants) in.push_back(c.at(k).clone());
  const TopkResult r = fn(in);
  REQUIRE(ct_test::close(r.values.detach(), c.at("out"), ct_test::kExact));
  if (r.indices.defined() && compare_indices)
    REQUIRE(identical(r.indices, c.at("indices").to(kInt64)));
  sum(r.values * c.at("g")).backward();
  for (std::size_t i = 0; i < leaves.size(); ++i) {
    INFO("gradient of " << leaves[i]);
    REQUIRE(ct_test::close(in[i].grad(), c.at("grad_" + leaves[i]), ct_test::kExact));
  }
}

TopkResult only(const Tensor& t) {
  return {t, Tensor()};
}

}  // namespace

TEST_CASE("golden values from PyTorch: where, maximum, minimum, masked_fill, masked_select",
          "[ops][compare][golden]") {
  for (const std::string name : {"where_bcast", "where_3d"})
    check_golden(name, {"a", "b"}, {"cond"},
                 [](const std::vector<Tensor>& v) { return only(where(v[2], v[0], v[1])); });
  for (const std::string name : {"maximum_ties", "maximum_bcast", "maximum_random"})
    check_golden(name, {"input", "other"}, {},
                 [](const std::vector<Tensor>& v) { return only(maximum(v[0], v[1])); });
  for (const std::string name : {"minimum_ties", "minimum_bcast"})
    check_golden(name, {"input", "other"}, {},
                 [](const std::vector<Tensor>& v) { return only(minimum(v[0], v[1])); });
  check_golden("masked_fill", {"x"}, {"mask"},
               [](const std::vector<Tensor>& v) { return only(masked_fill(v[0], v[1], -2.5)); });
  check_golden("masked_fill_bcast", {"x"}, {"mask"},
               [](const std::vector<Tensor>& v) { return only(masked_fill(v[0], v[1], 7.0)); });
  for (const std::string name : {"masked_select", "masked_select_bcast"})
    check_golden(name, {"x"}, {"mask"},
                 [](const std::vector<Tensor>& v) { return only(masked_select(v[0], v[1])); });
}

TEST_CASE("golden values from PyTorch: topk and sort", "[ops][compare][golden]") {
  check_golden("topk_dim1", {"x"}, {},
               [](const std::vector<Tensor>& v) { return topk(v[0], 2, 1, true); });
  check_golden("topk_dim0_smallest", {"x"}, {},
               [](const std::vector<Tensor>& v) { return topk(v[0], 3, 0, false); });
  check_golden("topk_3d", {"x"}, {}, [](const std::vector<Tensor>& v) { return topk(v[0], 2, 1); });
  // Ties: torch orders the tied indices its own way ([1, 0, 4] where ours is [0, 1, 4]); the
  // values and (with g = 1) the gradient do not depend on it.
  check_golden(
      "topk_ties", {"x"}, {}, [](const std::vector<Tensor>& v) { return topk(v[0], 3, 1); },
      /*compare_indices=*/false);
  check_golden("sort_desc", {"x"}, {},
               [](const std::vector<Tensor>& v) { return sort(v[0], 0, true); });
}

// ---------------------------------------------------------------- the op harness

TEST_CASE("where, maximum, minimum: op harness over broadcast shapes", "[ops][compare][grad]") {
  const std::vector<std::vector<Shape>> shapes = {{{3, 4}, {3, 4}, {3, 4}},
                                                  {{3, 1}, {1, 4}, {3, 4}},
                                                  {{2, 1, 3}, {4, 1}, {}},
                                                  {{5}, {}, {2, 5}}};
  for (const auto& s : shapes) {
    INFO(ct_test::str(s[0]) << " " << ct_test::str(s[1]) << " " << ct_test::str(s[2]));
    Generator gen(7);
    const Tensor cond = randint(0, 2, s[0], kInt64, &gen).to(kFloat64);
    OpCheck("where", [](const std::vector<Tensor>& v) { return where(v[0], v[1], v[2]); },
            {cond, leaf(s[1]), leaf(s[2])})
        .run();
    const Tensor a = distinct_leaf(s[1], 11), b = distinct_leaf(s[2], 12);
    // Shift b by a third of the spacing: no element of a equals (or nears) one of b.
    const Tensor b2 =
        (b.detach() + 1.0 / (3.0 * static_cast<double>(std::max<std::int64_t>(1, numel(s[2])))))
            .requires_grad_(true);
    OpCheck("maximum", [](const std::vector<Tensor>& v) { return maximum(v[0], v[1]); }, {a, b2})
        .run();
    OpCheck("minimum", [](const std::vector<Tensor>& v) { return minimum(v[0], v[1]); }, {a, b2})
        .run();
  }
}

TEST_CASE("masked_fill, masked_select: op harness", "[ops][compare][grad]") {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{3, 4}, {3, 4}}, {{3, 4}, {4}}, {{2, 1, 3}, {4, 1}}, {{5}, {2, 5}}};
  for (const auto& [xs, ms] : shapes) {
    INFO(ct_test::str(xs) << " " << ct_test::str(ms));
    // Every third element masked: some of each kind whatever the broadcast.
    std::vector<double> m(static_cast<std::size_t>(numel(ms)));
    for (std::size_t i = 0; i < m.size(); ++i) m[i] = i % 3 == 1 ? 1.0 : 0.0;
    const Tensor mask = tensor(m, ms, kFloat64);
    OpCheck("masked_fill",
            [](const std::vector<Tensor>& v) { return masked_fill(v[0], v[1], -3.0); },
            {leaf(xs), mask})
        .run();
    OpCheck("masked_select", [](const std::vector<Tensor>& v) { return masked_select(v[0], v[1]); },
            {leaf(xs), mask})
        .run();
  }
}

TEST_CASE("topk, sort: op harness over dims", "[ops][compare][grad]") {
  const Tensor x = distinct_leaf({3, 4, 5}, 5);
  for (std::int64_t dim = -3; dim < 3; ++dim) {
    INFO("dim " << dim);
    for (const bool largest : {true, false})
      OpCheck("topk",
              [dim, largest](const std::vector<Tensor>& v) {
                return topk(v[0], 2, dim, largest).values;
              },
              {x})
          .run();
    OpCheck("sort", [dim](const std::vector<Tensor>& v) { return sort(v[0], dim).values; }, {x})
        .run();
  }
  // The indices, as an int64 output: CUDA against the CPU.
  OpCheck("topk indices", [](const std::vector<Tensor>& v) { return topk(v[0], 3, 1).indices; },
          {x.detach()})
      .no_gradcheck()
      .run();
}

TEST_CASE("comparisons and logical ops: op harness (CUDA against the CPU)", "[ops][compare]") {
  Generator gen(9);
  const Tensor a = randint(0, 3, {3, 4}, kInt64, &gen).to(kFloat64);
  const Tensor b = randint(0, 3, {4}, kInt64, &gen).to(kFloat64);
  using F = Tensor (*)(const Tensor&, const Tensor&);
  const std::vector<std::pair<std::string, F>> ops = {{"eq", eq},
                                                      {"ne", ne},
                                                      {"lt", lt},
                                                      {"le", le},
                                                      {"gt", gt},
                                                      {"ge", ge},
                                                      {"logical_and", logical_and},
                                                      {"logical_or", logical_or}};
  for (const auto& [name, f] : ops)
    OpCheck(name, [f](const std::vector<Tensor>& v) { return f(v[0], v[1]); }, {a, b})
        .no_gradcheck()
        .run();
}

// ---------------------------------------------------------------- errors

TEST_CASE("errors: shapes that do not broadcast", "[ops][compare][errors]") {
  const Tensor a = zeros({2, 3}), b = zeros({4});
  CT_REQUIRE_ERROR(eq(a, b), "eq: expected broadcastable shapes, got [2, 3] and [4]");
  CT_REQUIRE_ERROR(logical_or(a, b), "logical_or: expected broadcastable shapes");
  CT_REQUIRE_ERROR(maximum(a, b), "maximum: expected broadcastable shapes");
  CT_REQUIRE_ERROR(where(zeros({3}), a, zeros({2, 2})), "where: expected broadcastable shapes");
  CT_REQUIRE_ERROR(where(zeros({4}), a, a), "where: expected broadcastable shapes");
  ct_test::check_errors("compare", {{[](const std::vector<Tensor>& v) { return lt(v[0], v[1]); },
                                     {a, b},
                                     "lt: expected broadcastable shapes"}});
}

TEST_CASE("errors: mask shape not broadcastable", "[ops][compare][errors]") {
  const Tensor x = zeros({2, 3});
  CT_REQUIRE_ERROR(masked_fill(x, zeros({2}), 1.0),
                   "masked_fill: expected broadcastable shapes, got [2, 3] and [2]");
  CT_REQUIRE_ERROR(masked_select(x, zeros({4, 1, 2})),
                   "masked_select: expected broadcastable shapes");
}

TEST_CASE("errors: mixed dtypes are refused", "[ops][compare][errors]") {
  const Tensor f = zeros({3}), l = i64({1, 2, 3}, {3});
  CT_REQUIRE_ERROR(eq(l, f), "eq: expected operands of one dtype, got int64 and float32");
  CT_REQUIRE_ERROR(logical_and(f, f.to(kFloat64)),
                   "logical_and: expected operands of one dtype, got float32 and float64");
  CT_REQUIRE_ERROR(maximum(f, l), "maximum: expected operands of one dtype");
  CT_REQUIRE_ERROR(where(f, f, l), "where: expected operands of one dtype");
}

TEST_CASE("errors: a value that int64 cannot hold", "[ops][compare][errors]") {
  const Tensor l = i64({1, 2, 3}, {3});
  CT_REQUIRE_ERROR(masked_fill(l, l, kNaN),
                   "masked_fill: expected a value that converts to int64 without overflow");
  CT_REQUIRE_ERROR(where(l, l, 0x1p64), "where: expected a value that converts to int64");
}

TEST_CASE("errors: topk's k outside [0, n]", "[ops][compare][errors]") {
  const Tensor x = zeros({2, 3});
  CT_REQUIRE_ERROR(topk(x, 4),
                   "topk: expected k in [0, 3] (the size of dim 1 of shape [2, 3]), got 4");
  CT_REQUIRE_ERROR(topk(x, 3, 0),
                   "topk: expected k in [0, 2] (the size of dim 0 of shape [2, 3]), got 3");
  CT_REQUIRE_ERROR(topk(x, -1), "topk: expected k in [0, 3]");
}

TEST_CASE("errors: topk of a 0-d tensor with k other than 1", "[ops][compare][errors]") {
  CT_REQUIRE_ERROR(topk(zeros({}), 0), "topk: expected k = 1 for a 0-d input, got 0");
}

TEST_CASE("errors: dim out of range", "[ops][compare][errors]") {
  const Tensor x = zeros({2, 3});
  CT_REQUIRE_ERROR(topk(x, 1, 2), "topk: expected dim in [-2, 2), got 2");
  CT_REQUIRE_ERROR(sort(x, -3), "sort: expected dim in [-2, 2), got -3");
  CT_REQUIRE_ERROR(any(x, 2), "any: expected dim in [-2, 2), got 2");
  CT_REQUIRE_ERROR(all(x, -3), "all: expected dim in [-2, 2)");
  CT_REQUIRE_ERROR(count_nonzero(x, {5}), "count_nonzero: expected dim in [-2, 2)");
}

TEST_CASE("errors: undefined operands", "[ops][compare][errors]") {
  CT_REQUIRE_ERROR(eq(Tensor(), zeros({1})), "eq: expected a defined input tensor");
  CT_REQUIRE_ERROR(where(Tensor(), zeros({1}), zeros({1})),
                   "where: expected a defined condition tensor");
  CT_REQUIRE_ERROR(masked_select(zeros({1}), Tensor()), "masked_select: expected a defined mask");
}
