// Tests of ops/linalg (matmul, linear): every operand-rank combination of the PyTorch rules (1-d x
// 1-d, 1-d x 2-d, 2-d x 1-d, 2-d x 2-d, batched with broadcast batch dims), transposed operands,
// exact small-integer results against a loop reference, float64 gradchecks, and the argument
// errors.
#include <array>
#include <utility>
#include <vector>

#include "support/test_util.h"

namespace {

using namespace convtape;
using ct_test::equal;
using ct_test::leaf;

Tensor f32(const std::vector<double>& v, const Shape& shape) {
  return tensor(v, shape);
}

// Small integers in [-4, 4]: products and sums stay exact in float32 for the sizes used here.
Tensor small_ints(const Shape& shape, int salt = 0, DType dtype = kFloat32) {
  std::vector<double> v(static_cast<std::size_t>(numel(shape)));
  for (std::size_t i = 0; i < v.size(); ++i)
    v[i] = static_cast<double>(
        static_cast<int>((i * 5 + static_cast<std::size_t>(salt) * 3 + 1) % 9) - 4);
  return tensor(v, shape, dtype);
}

// Loop reference for a [B, M, K] x [B, K, N] product of contiguous row-major values, in double.
std::vector<double> bmm_reference(const std::vector<double>& a, const std::vector<double>& b,
                                  std::int64_t batch, std::int64_t m, std::int64_t k,
                                  std::int64_t n) {
  std::vector<double> c(static_cast<std::size_t>(batch * m * n), 0.0);
  for (std::int64_t p = 0; p < batch; ++p)
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t j = 0; j < n; ++j) {
        double s = 0.0;
        for (std::int64_t q = 0; q < k; ++q)
          s += a[static_cast<std::size_t>((p * m + i) * k + q)] *
               b[static_cast<std::size_t>((p * k + q) * n + j)];
        c[static_cast<std::size_t>((p * m + i) * n + j)] = s;
      }
  return c;
}

Tensor matmul_fn(const std::vector<Tensor>& v) {
  return matmul(v[0], v[1]);
}

Tensor linear_fn(const std::vector<Tensor>& v) {
  return linear(v[0], v[1], v.size() > 2 ? v[2] : Tensor());
}

}  // namespace

TEST_CASE("matmul: 1-d x 1-d is a dot product of shape []", "[ops][linalg]") {
  const Tensor y = matmul(f32({1, 2, 3}, {3}), f32({4, 5, 6}, {3}));
  REQUIRE(y.shape() == Shape{});
  REQUIRE(equal(y, f32({32}, {})));
  REQUIRE(equal(matmul(f32({-2}, {1}), f32({3}, {1})), f32({-6}, {})));
}

TEST_CASE("matmul: 1-d x 2-d treats the left operand as a row vector", "[ops][linalg]") {
  const Tensor y = matmul(f32({1, 2}, {2}), f32({1, 2, 3, 4, 5, 6}, {2, 3}));
  REQUIRE(equal(y, f32({9, 12, 15}, {3})));
}

TEST_CASE("matmul: 2-d x 1-d treats the right operand as a column vector", "[ops][linalg]") {
  const Tensor y = matmul(f32({1, 2, 3, 4, 5, 6}, {2, 3}), f32({1, 0, -1}, {3}));
  REQUIRE(equal(y, f32({-2, -2}, {2})));
}

TEST_CASE("matmul: 2-d x 2-d", "[ops][linalg]") {
  const Tensor a = f32({1, 2, 3, 4, 5, 6}, {2, 3});
  const Tensor b = f32({7, 8, 9, 10, 11, 12}, {3, 2});
  REQUIRE(equal(matmul(a, b), f32({58, 64, 139, 154}, {2, 2})));
  REQUIRE(equal(a.matmul(b), matmul(a, b)));
  REQUIRE(equal(matmul(b, a), f32({39, 54, 69, 49, 68, 87, 59, 82, 105}, {3, 3})));
  // Identity and transposed (non-contiguous) operands.
  const Tensor eye = f32({1, 0, 0, 0, 1, 0, 0, 0, 1}, {3, 3});
  REQUIRE(equal(matmul(a, eye), a));
  REQUIRE(equal(matmul(b.t(), a.t()), matmul(a, b).t().contiguous()));
  REQUIRE(matmul(a, b).dtype() == kFloat32);
  REQUIRE(matmul(a.to(kFloat64), b.to(kFloat64)).dtype() == kFloat64);
  // Empty inner dim gives zeros; empty outer dims give empty results.
  REQUIRE(equal(matmul(zeros({2, 0}), zeros({0, 3})), zeros({2, 3})));
  REQUIRE(matmul(zeros({0, 4}), zeros({4, 3})).shape() == Shape{0, 3});
}

TEST_CASE("matmul: sizes across the kernel's blocking, against a loop reference", "[ops][linalg]") {
  for (const auto& [m, k, n] : std::vector<std::array<std::int64_t, 3>>{{1, 1, 1},
                                                                        {1, 7, 1},
                                                                        {5, 1, 3},
                                                                        {17, 9, 13},
                                                                        {37, 53, 29},
                                                                        {64, 64, 64},
                                                                        {3, 130, 70}}) {
    INFO(m << " x " << k << " x " << n);
    for (DType dt : {kFloat32, kFloat64}) {
      const Tensor a = small_ints({m, k}, 1, dt);
      const Tensor b = small_ints({k, n}, 2, dt);
      const auto want = bmm_reference(a.to_vector<double>(), b.to_vector<double>(), 1, m, k, n);
      REQUIRE(equal(matmul(a, b), tensor(want, {m, n}, dt)));
      // Transposed operands (strided views) give the same product.
      const Tensor at = small_ints({k, m}, 1, dt).t();
      const Tensor bt = small_ints({n, k}, 2, dt).t();
      const auto want_t = bmm_reference(at.to_vector<double>(), bt.to_vector<double>(), 1, m, k, n);
      REQUIRE(equal(matmul(at, bt), tensor(want_t, {m, n}, dt)));
      // Batches of transposed matrices (each operand the transpose of a contiguous batch) reach
      // the kernel without a copy, one layout per operand.
      const Tensor ab = small_ints({3, k, m}, 4, dt).transpose(1, 2);
      const Tensor bb = small_ints({3, n, k}, 5, dt).transpose(1, 2);
      const Tensor bc = small_ints({3, k, n}, 6, dt);
      const auto av = ab.to_vector<double>(), bv = bb.to_vector<double>();
      REQUIRE(equal(matmul(ab, bb), tensor(bmm_reference(av, bv, 3, m, k, n), {3, m, n}, dt)));
      REQUIRE(equal(matmul(ab, bc),
                    tensor(bmm_reference(av, bc.to_vector<double>(), 3, m, k, n), {3, m, n}, dt)));
    }
  }
}

TEST_CASE("matmul: batched with broadcast batch dims", "[ops][linalg]") {
  SECTION("[2, 2, 2] x [2, 2]: the matrix is shared by the batch") {
    const Tensor a = f32({1, 2, 3, 4, 0, 1, 1, 0}, {2, 2, 2});
    const Tensor b = f32({1, 1, 0, 2}, {2, 2});
    REQUIRE(equal(matmul(a, b), f32({1, 5, 3, 11, 0, 2, 1, 1}, {2, 2, 2})));
  }
  SECTION("[2, 1, 3, 4] x [5, 4, 2] -> [2, 5, 3, 2]") {
    const Tensor a = small_ints({2, 1, 3, 4}, 1);
    const Tensor b = small_ints({5, 4, 2}, 2);
    const Tensor y = matmul(a, b);
    REQUIRE(y.shape() == Shape{2, 5, 3, 2});
    // Expand both to [2, 5, ...] and compare with the loop reference.
    const auto av = a.expand({2, 5, 3, 4}).to_vector<double>();
    const auto bv = b.expand({2, 5, 4, 2}).to_vector<double>();
    REQUIRE(equal(y, tensor(bmm_reference(av, bv, 10, 3, 4, 2), {2, 5, 3, 2})));
  }
  SECTION("batched x 1-d and 1-d x batched") {
    const Tensor a = small_ints({3, 2, 4}, 1);
    const Tensor v = f32({1, -1, 2, 0}, {4});
    const Tensor y = matmul(a, v);
    REQUIRE(y.shape() == Shape{3, 2});
    REQUIRE(equal(y, matmul(a, v.unsqueeze(1)).squeeze(2)));
    const Tensor w = f32({1, 2}, {2});
    const Tensor z = matmul(w, a);
    REQUIRE(z.shape() == Shape{3, 4});
    REQUIRE(equal(z, matmul(w.unsqueeze(0).expand({3, 1, 2}), a).squeeze(1)));
    const auto av = a.to_vector<double>();
    for (std::int64_t p = 0; p < 3; ++p)
      for (std::int64_t j = 0; j < 4; ++j)
        REQUIRE(z.at<float>({p, j}) ==
                static_cast<float>(av[static_cast<std::size_t>(p * 8 + j)] +
                                   2 * av[static_cast<std::size_t>(p * 8 + 4 + j)]));
  }
  SECTION("both batched with size-1 dims on each side: [3, 1, 2, 2] x [1, 4, 2, 3]") {
    const Tensor a = small_ints({3, 1, 2, 2}, 3);
    const Tensor b = small_ints({1, 4, 2, 3}, 4);
    const auto av = a.expand({3, 4, 2, 2}).to_vector<double>();
    const auto bv = b.expand({3, 4, 2, 3}).to_vector<double>();
    REQUIRE(equal(matmul(a, b), tensor(bmm_reference(av, bv, 12, 2, 2, 3), {3, 4, 2, 3})));
  }
}

TEST_CASE("matmul: gradcheck for every rank combination", "[ops][linalg][grad]") {
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{4}, {4}},
      {{3}, {3, 2}},
      {{2, 3}, {3}},
      {{2, 3}, {3, 4}},
      {{1, 1}, {1, 1}},
      {{2, 3, 4}, {4, 2}},
      {{3, 4}, {2, 4, 5}},
      {{2, 1, 3, 4}, {5, 4, 2}},
      {{4}, {2, 4, 3}},
      {{2, 3, 4}, {4}},
      {{3, 1, 2, 2}, {1, 4, 2, 3}},
  };
  for (const auto& [sa, sb] : cases) {
    INFO(to_string(sa) << " x " << to_string(sb));
    CT_REQUIRE_GRADCHECK(matmul_fn, (std::vector<Tensor>{leaf(sa), leaf(sb)}));
  }
  SECTION("one operand without grad") {
    CT_REQUIRE_GRADCHECK(matmul_fn,
                         (std::vector<Tensor>{leaf({2, 3}), small_ints({3, 2}, 0, kFloat64)}));
    CT_REQUIRE_GRADCHECK(
        matmul_fn, (std::vector<Tensor>{small_ints({1, 2, 3}, 0, kFloat64), leaf({4, 3, 2})}));
  }
  SECTION("transposed operands and reuse of one input") {
    CT_REQUIRE_GRADCHECK([](const std::vector<Tensor>& v) { return matmul(v[0].t(), v[1].t()); },
                         (std::vector<Tensor>{leaf({3, 2}), leaf({4, 3})}));
    CT_REQUIRE_GRADCHECK([](const std::vector<Tensor>& v) { return matmul(v[0], v[0].t()); },
                         std::vector<Tensor>{leaf({3, 4})});
  }
  SECTION("a larger product checked along random directions") {
    CT_REQUIRE_GRADCHECK(matmul_fn, (std::vector<Tensor>{leaf({2, 20, 30}), leaf({30, 25})}));
  }
}

TEST_CASE("matmul: gradients of a small product have the expected values", "[ops][linalg][grad]") {
  Tensor a = f32({1, 2, 3, 4}, {2, 2}).requires_grad_(true);
  Tensor b = f32({1, 0, -1, 2}, {2, 2}).requires_grad_(true);
  sum(matmul(a, b)).backward();
  REQUIRE(equal(a.grad(), f32({1, 1, 1, 1}, {2, 2})));  // dy b^T with dy = ones: row sums of b
  REQUIRE(equal(b.grad(), f32({4, 4, 6, 6}, {2, 2})));  // a^T dy: column sums of a
  // A broadcast matrix accumulates the gradient of every batch entry.
  Tensor m = f32({1, 2, 3, 4}, {2, 2}).requires_grad_(true);
  const Tensor batch = ones({3, 2, 2});
  sum(matmul(batch, m)).backward();
  REQUIRE(equal(m.grad(), full({2, 2}, 6.0)));
}

TEST_CASE("matmul errors", "[ops][linalg][errors]") {
  SECTION("inner-dim mismatch") {
    CT_REQUIRE_ERROR(matmul(zeros({2, 3}), zeros({4, 2})),
                     "matmul: expected inner dims to match, got [2, 3] and [4, 2]");
    CT_REQUIRE_ERROR(matmul(zeros({3}), zeros({4})), "matmul: expected inner dims to match");
    CT_REQUIRE_ERROR(matmul(zeros({3}), zeros({2, 3})), "matmul: expected inner dims to match");
    CT_REQUIRE_ERROR(matmul(zeros({2, 3}), zeros({2})), "matmul: expected inner dims to match");
    CT_REQUIRE_ERROR(matmul(zeros({5, 2, 3}), zeros({5, 2, 3})), "(3 vs 2)");
  }
  SECTION("0-d operands") {
    CT_REQUIRE_ERROR(matmul(zeros({}), zeros({3})),
                     "matmul: expected operands with at least 1 dim, got [] and [3]");
    CT_REQUIRE_ERROR(matmul(zeros({2, 2}), zeros({})),
                     "matmul: expected operands with at least 1 dim");
  }
  SECTION("batch dims that do not broadcast") {
    CT_REQUIRE_ERROR(matmul(zeros({2, 3, 4}), zeros({3, 4, 5})),
                     "matmul: expected broadcastable shapes");
  }
  SECTION("dtypes and undefined operands") {
    CT_REQUIRE_ERROR(matmul(zeros({2, 2}), zeros({2, 2}, kFloat64)),
                     "matmul: expected tensors of one dtype");
    CT_REQUIRE_ERROR(matmul(zeros({2, 2}, kInt64), zeros({2, 2}, kInt64)),
                     "matmul: expected a floating-point tensor");
    CT_REQUIRE_ERROR(matmul(Tensor(), zeros({2})), "matmul: expected a defined input tensor");
  }
}

TEST_CASE("linear: x w^T + b exactly, for 1-d, 2-d and batched inputs, against matmul and add",
          "[ops][linalg]") {
  for (const Shape& xs : std::vector<Shape>{{5}, {4, 5}, {2, 3, 5}, {1, 5}}) {
    INFO("input " << to_string(xs));
    for (DType dt : {kFloat32, kFloat64}) {
      const Tensor x = small_ints(xs, 1, dt), w = small_ints({7, 5}, 2, dt);
      const Tensor b = small_ints({7}, 3, dt);
      const Tensor want = add(matmul(x, w.t()), b);
      REQUIRE(equal(linear(x, w, b), want));
      REQUIRE(equal(linear(x, w), matmul(x, w.t())));
    }
  }
  // Empty products follow matmul: no rows, no outputs, and in_features 0 (zeros plus the bias).
  CHECK(linear(zeros({0, 3}), zeros({4, 3})).shape() == Shape{0, 4});
  CHECK(linear(zeros({2, 3}), zeros({0, 3})).shape() == Shape{2, 0});
  CHECK(equal(linear(zeros({2, 0}), zeros({3, 0}), f32({1, 2, 3}, {3})),
              f32({1, 2, 3, 1, 2, 3}, {2, 3})));
}

TEST_CASE("linear: gradcheck, and the weight's gradient in its own layout", "[ops][linalg][grad]") {
  CT_REQUIRE_GRADCHECK(linear_fn, (std::vector<Tensor>{leaf({4, 5}), leaf({3, 5}), leaf({3})}));
  CT_REQUIRE_GRADCHECK(linear_fn, (std::vector<Tensor>{leaf({2, 3, 5}), leaf({6, 5})}));
  CT_REQUIRE_GRADCHECK(linear_fn, (std::vector<Tensor>{leaf({5}), leaf({2, 5}), leaf({2})}));
  SECTION("inputs without grad, and a transposed input") {
    CT_REQUIRE_GRADCHECK(
        linear_fn, (std::vector<Tensor>{small_ints({4, 5}, 1, kFloat64), leaf({3, 5}), leaf({3})}));
    CT_REQUIRE_GRADCHECK(
        [](const std::vector<Tensor>& v) { return linear(v[0].t(), v[1], v[2]); },
        (std::vector<Tensor>{leaf({5, 4}), leaf({3, 5}), small_ints({3}, 2, kFloat64)}));
  }
  // dW = dy^T x, db = column sums of dy, dx = dy W, with dy = ones: exact values.
  Tensor x = f32({1, 2, 3, 4, 5, 6}, {2, 3}).requires_grad_(true);
  Tensor w = f32({1, 0, -1, 2, 1, 0}, {2, 3}).requires_grad_(true);
  Tensor b = f32({0, 0}, {2}).requires_grad_(true);
  sum(linear(x, w, b)).backward();
  REQUIRE(equal(w.grad(), f32({5, 7, 9, 5, 7, 9}, {2, 3})));
  REQUIRE(w.grad().is_contiguous());
  REQUIRE(equal(b.grad(), f32({2, 2}, {2})));
  REQUIRE(equal(x.grad(), f32({3, 1, -1, 3, 1, -1}, {2, 3})));
}

TEST_CASE("linear errors", "[ops][linalg][errors]") {
  CT_REQUIRE_ERROR(linear(zeros({2, 3}), zeros({4, 2})),
                   "linear: expected input with last dim 2, got [2, 3]");
  CT_REQUIRE_ERROR(linear(zeros({2, 3}), zeros({3})),
                   "linear: expected a weight [out_features, in_features], got [3]");
  CT_REQUIRE_ERROR(linear(zeros({2, 3}), zeros({4, 3}), zeros({3})),
                   "linear: expected a bias [4], got [3]");
  CT_REQUIRE_ERROR(linear(zeros({2, 3}), zeros({4, 3}, kFloat64)),
                   "linear: expected tensors of one dtype");
  CT_REQUIRE_ERROR(linear(zeros({2, 3}), zeros({4, 3}), zeros({4}, kFloat64)),
                   "linear: expected tensors of one dtype");
  CT_REQUIRE_ERROR(linear(zeros({2, 3}, kInt64), zeros({4, 3}, kInt64)),
                   "linear: expected a floating-point tensor");
  CT_REQUIRE_ERROR(linear(Tensor(), zeros({4, 3})), "linear: expected a defined input tensor");
  CT_REQUIRE_ERROR(linear(zeros({2, 3}), Tensor()), "linear: expected a defined weight");
  CT_REQUIRE_ERROR(linear(zeros({}), zeros({4, 3})),
                   "linear: expected input with last dim 3, got []");
}
