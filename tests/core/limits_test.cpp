// Sizes at the int64 limits: factories, views and shape ops refuse shapes whose element or byte
// count overflows (before anything is allocated or addressed), and give PyTorch's answer for the
// valid extreme calls (empty tensors with huge extents, slices with INT64 bounds and steps).
#include <limits>

#include "support/test_util.h"

using namespace convtape;
using namespace ct_test;

namespace {
constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
constexpr std::int64_t k62 = std::int64_t{1} << 62;
constexpr std::int64_t k40 = std::int64_t{1} << 40;

Tensor f32(std::vector<double> v) {
  return tensor(v);
}
}  // namespace

TEST_CASE("factories refuse shapes whose element or byte count overflows", "[limits]") {
  CT_REQUIRE_ERROR(zeros({k62 + 1, 4}),
                   "zeros: expected a shape whose element count fits in 64 bits, got "
                   "[4611686018427387905, 4]");
  CT_REQUIRE_ERROR(empty({k40, k40}),
                   "empty: expected a shape whose element count fits in 64 bits");
  CT_REQUIRE_ERROR(ones({k62}), "ones: expected a tensor of at most 9223372036854775807 bytes");
  CT_REQUIRE_ERROR(full({kMax}, 1.0, kFloat64), "full: expected a tensor of at most");
  CT_REQUIRE_ERROR(rand({k62 + 1, 4}), "uniform: expected a shape whose element count fits");
  CT_REQUIRE_ERROR(randn({k62, k62}), "normal: expected a shape whose element count fits");
  CT_REQUIRE_ERROR(randint(0, 5, {k62}), "randint: expected a tensor of at most");
  CT_REQUIRE_ERROR(linspace(0, 1, kMax), "linspace: expected a tensor of at most");
  CT_REQUIRE_ERROR(arange(0, 1e30), "arange: expected an element count that fits in 64 bits");
  CT_REQUIRE_ERROR(arange(-1e308, 1e308, 1e-300),
                   "arange: expected an element count that fits in 64 bits");
  CT_REQUIRE_ERROR(tensor({1, 2}, {k62 + 1, 4}),
                   "tensor: expected a shape whose element count fits in 64 bits");
  CT_REQUIRE_ERROR(tensor({1, 2}, {-1, -2}), "tensor: expected non-negative sizes");
  CT_REQUIRE_ERROR(from_vector(std::vector<float>{1, 2}, {k40, k40}),
                   "from_vector: expected a shape whose element count fits in 64 bits");
  CT_REQUIRE_ERROR(Tensor::empty_cpu({k62 + 1, 4}, kFloat32),
                   "empty: expected a shape whose element count fits in 64 bits");
  // A byte count that fits int64 but no machine has: an Error, not std::bad_alloc.
  CT_REQUIRE_ERROR(empty({std::int64_t{1} << 60}, kFloat32), "allocate: expected at most");
  CT_REQUIRE_ERROR(empty({k40}, kFloat64), "allocate: expected at most");
  // Empty shapes with huge extents beside their zero are valid (PyTorch too).
  const Tensor e = empty({0, k62, k62});
  CHECK(e.numel() == 0);
  CHECK(e.shape() == Shape{0, k62, k62});
  CHECK(zeros({k62, 0}).numel() == 0);
}

TEST_CASE("Tensor::make refuses views whose sizes or offsets overflow", "[limits]") {
  const Tensor base = zeros({16});
  const auto& st = base.storage();
  CT_REQUIRE_ERROR(Tensor::make(st, {k62 + 1, 4}, {0, 0}, 0, kFloat32),
                   "tensor: expected a shape whose element count fits in 64 bits");
  CT_REQUIRE_ERROR(Tensor::make(st, {2, 2}, {kMax, 1}, 0, kFloat32),
                   "tensor: expected a view whose element offsets fit in 64 bits");
  CT_REQUIRE_ERROR(Tensor::make(st, {3, 2}, {k62, k62}, 0, kFloat32),
                   "tensor: expected a view whose element offsets fit in 64 bits");
  CT_REQUIRE_ERROR(Tensor::make(st, {2}, {1}, kMax, kFloat32),
                   "tensor: expected a view whose element offsets fit in 64 bits");
  CT_REQUIRE_ERROR(Tensor::make(st, {2}, {kMin / 2}, kMax, kFloat32),
                   "tensor: expected a view inside its storage of 16 elements");
  CT_REQUIRE_ERROR(Tensor::make(st, {4, 5}, {4, 1}, 0, kFloat32),
                   "tensor: expected a view inside its storage of 16 elements, got shape [4, 5], "
                   "strides [4, 1], offset 0 (addressing elements 0 to 16)");
  // An empty view addresses nothing, wherever it points; its offset is dropped.
  const Tensor ev = Tensor::make(st, {0, k62}, {kMax, kMax}, kMax, kFloat32);
  CHECK(ev.numel() == 0);
  CHECK(ev.offset() == 0);
  // A view with a huge stride-0 extent is valid: nothing past the storage is addressed.
  const Tensor wide = Tensor::make(st, {k62}, {0}, 3, kFloat32);
  CHECK(wide.numel() == k62);
}

TEST_CASE("reshape, view and flatten with huge empty shapes", "[limits]") {
  const Tensor e = empty({0, k62, k62});
  CHECK(reshape(e, {-1, 5}).shape() == Shape{0, 5});
  CHECK(reshape(e, {k62, -1}).shape() == Shape{k62, 0});
  // The extents beside the -1 multiply past int64: only 0 fits an empty input.
  CHECK(reshape(e, {k62, k62, -1}).shape() == Shape{k62, k62, 0});
  CHECK(view(e, {0}).shape() == Shape{0});
  CT_REQUIRE_ERROR(reshape(e, {0, -1}),
                   "reshape: expected a shape compatible with [0, "
                   "4611686018427387904, 4611686018427387904] (0 elements)");
  CT_REQUIRE_ERROR(reshape(e, {k62, k62}),
                   "reshape: expected a shape with 0 elements (input [0, 4611686018427387904, "
                   "4611686018427387904]), got [4611686018427387904, 4611686018427387904] with "
                   "more than 2^63 - 1");
  CT_REQUIRE_ERROR(reshape(f32({1, 2, 3, 4}), {k62, k62, -1}),
                   "reshape: expected a shape compatible with [4] (4 elements)");
  CT_REQUIRE_ERROR(reshape(f32({1, 2, 3, 4}), {kMax, kMax}),
                   "reshape: expected a shape with 4 elements (input [4]), got");
  CHECK(flatten(e).shape() == Shape{0});
  CHECK(flatten(e, 0, 1).shape() == Shape{0, k62});
  CT_REQUIRE_ERROR(flatten(e, 1),
                   "flatten: expected the flattened extent of dims 1 to 2 to fit in 64 bits");
  CHECK(unsqueeze(e, 1).shape() == Shape{0, 1, k62, k62});
  CHECK(unsqueeze(e, 0).shape() == Shape{1, 0, k62, k62});
  CHECK(permute(e, {2, 0, 1}).shape() == Shape{k62, 0, k62});
  CHECK(e.contiguous().shape() == e.shape());
  CHECK(e.clone().shape() == e.shape());
  CHECK(sum(e).item() == 0.0);
  CHECK(std::isnan(mean(e).item()));
  CHECK(sum(e, {1}).shape() == Shape{0, k62});
  CHECK(sum(e, {1, 2}).shape() == Shape{0});
  CHECK(max(e, {1}).shape() == Shape{0, k62});
  CHECK(argmax(e, 2).shape() == Shape{0, k62});
  CT_REQUIRE_ERROR(sum(e, {0}), "sum: expected a shape whose element count fits in 64 bits");
  CT_REQUIRE_ERROR(max(e, {0, 1}), "max: expected a non-empty reduction");
  CHECK(index_select(e, 1, from_vector(std::vector<std::int64_t>{0, 1}, {2})).shape() ==
        Shape{0, 2, k62});
}

TEST_CASE("slice and narrow at the int64 limits give Python's answers", "[limits]") {
  const Tensor x = tensor({0, 1, 2, 3});
  auto values = [](const Tensor& t) { return t.to_vector<double>(); };
  using V = std::vector<double>;
  CHECK(values(slice(x, 0, 0, 4, kMax)) == V{0});  // list(range(4))[0:4:2**63-1]
  CHECK(values(slice(x, 0, 1, kMax, kMax)) == V{1});
  CHECK(values(slice(x, 0, kMin, kMax)) == V{0, 1, 2, 3});
  CHECK(values(slice(x, 0, kMin, kMin)).empty());
  CHECK(values(slice(x, 0, kMax, kMin)).empty());
  CHECK(values(slice(x, 0, kMax, kMax)).empty());
  CHECK(values(slice(x, 0, -5, 2)) == V{0, 1});
  CHECK(values(slice(x, 0, 3, 1)).empty());
  CHECK(values(slice(x, 0, kMin, kMax, kMax)) == V{0});
  CHECK(values(slice(x, 0, 1, kMax, 2)) == V{1, 3});
  CHECK(values(slice(x, 0, -1, kMax)) == V{3});
  // The gradient of an extreme slice lands where the element came from.
  const Tensor w = tensor({0, 1, 2, 3}, kFloat64).requires_grad_();
  sum(slice(w, 0, 1, kMax, kMax)).backward();
  CHECK(values(w.grad()) == V{0, 1, 0, 0});
  // Empty tensors with huge extents slice without overflowing their offsets.
  const Tensor e = empty({0, k62});
  CHECK(slice(e, 1, k62 - 1, kMax).shape() == Shape{0, 1});
  CHECK(slice(e, 1, 0, kMax, 3).shape() == Shape{0, k62 / 3 + 1});
  CT_REQUIRE_ERROR(slice(x, 0, 0, 4, 0), "slice: expected step > 0, got 0");

  CT_REQUIRE_ERROR(narrow(x, 0, 2, kMax),
                   "narrow: expected start and length inside dim 0 of size 4, got start = 2, "
                   "length = 9223372036854775807");
  CT_REQUIRE_ERROR(narrow(x, 0, kMax, 1), "got start = 9223372036854775807, length = 1");
  CT_REQUIRE_ERROR(narrow(x, 0, kMin, 1), "got start = -9223372036854775808, length = 1");
  CT_REQUIRE_ERROR(narrow(x, 0, -1, 2), "got start = -1, length = 2");
  CT_REQUIRE_ERROR(narrow(x, 0, 1, kMin), "got start = 1, length = -9223372036854775808");
  CHECK(values(narrow(x, 0, -1, 1)) == V{3});
  CHECK(narrow(x, 0, 4, 0).numel() == 0);
}

TEST_CASE("expand, cat, pad and index_select check their output sizes", "[limits]") {
  const Tensor s = full({}, 2.0);
  // A scalar expanded to 2^62 elements is a valid view (PyTorch too): shape and strides only.
  const Tensor big = expand(s, {k62});
  CHECK(big.shape() == Shape{k62});
  CHECK(big.strides() == Shape{0});
  CHECK(expand(tensor({1}), {kMax}).numel() == kMax);
  CT_REQUIRE_ERROR(expand(tensor({1}), {k62, k62}),
                   "expand: expected a shape whose element count fits in 64 bits, got "
                   "[4611686018427387904, 4611686018427387904]");
  CT_REQUIRE_ERROR(expand(tensor({1}), {-2}), "expand: expected sizes >= 0 (or -1 to keep a dim)");
  CT_REQUIRE_ERROR(expand(tensor({1}), {-1, 3}), "expand: expected sizes >= 0 for new dims");
  // Materialising it is refused by size, not attempted.
  CT_REQUIRE_ERROR(big.contiguous(), "empty: expected a tensor of at most");
  CT_REQUIRE_ERROR(cat({big, big}),
                   "cat: expected the joined extent to fit in 64 bits, got "
                   "4611686018427387904 + 4611686018427387904");
  CT_REQUIRE_ERROR(cat({big, tensor({1})}), "cat: expected a tensor of at most");
  CT_REQUIRE_ERROR(stack({big, big}), "cat: expected a shape whose element count fits");
  CT_REQUIRE_ERROR(
      pad(tensor({1}), {{kMax, 1}}),
      "pad: expected the padded extent to fit in 64 bits, got 9223372036854775807 + 1");
  CT_REQUIRE_ERROR(
      pad(tensor({1}), {{kMax, 0}}),
      "pad: expected the padded extent to fit in 64 bits, got 1 + 9223372036854775807");
  CT_REQUIRE_ERROR(pad(tensor({1, 2}, {1, 2}), {{0, 0}, {k62, 0}}),
                   "pad: expected a tensor of at most");
  const Tensor idx = from_vector(std::vector<std::int64_t>{0, 0}, {2});
  CT_REQUIRE_ERROR(index_select(expand(s, {k62 / 2, 1}), 1, idx),
                   "index_select: expected a tensor of at most");
}

TEST_CASE("numel, matmul and softmax at the limits", "[limits]") {
  CT_REQUIRE_ERROR(numel({k62, 4}), "numel: expected a shape whose element count fits in 64 bits");
  CHECK(numel({k62, k62, 0}) == 0);
  const Tensor s = full({}, 1.0, kFloat64);
  // Broadcast batches that multiply past int64, and outputs past the allocator.
  CT_REQUIRE_ERROR(matmul(expand(s, {k40, 1, 2, 2}), expand(s, {k40, 2, 2})),
                   "matmul: expected a shape whose element count fits in 64 bits");
  const std::int64_t k31 = std::int64_t{1} << 31;
  CT_REQUIRE_ERROR(matmul(expand(s, {k31, 1}), expand(s, {1, k31})),
                   "matmul: expected a tensor of at most");
  // Empty operands with huge extents: no product is formed.
  CHECK(matmul(empty({0, k62 / 4}, kFloat64), expand(s, {k62 / 4, 3})).shape() == Shape{0, 3});
  CT_REQUIRE_ERROR(matmul(empty({2, 0}, kFloat64), empty({0, k62 / 2}, kFloat64)),
                   "matmul: expected a tensor of at most");
  // An empty inner dim gives zeros, with zero (empty) gradients.
  const Tensor a = zeros({2, 0}, kFloat64).requires_grad_();
  const Tensor b = zeros({0, 3}, kFloat64).requires_grad_();
  const Tensor y = matmul(a, b);
  CHECK(y.to_vector<double>() == std::vector<double>(6, 0.0));
  sum(y).backward();
  CHECK(a.grad().shape() == Shape{2, 0});
  CHECK(b.grad().shape() == Shape{0, 3});
  CHECK(softmax(empty({0, k62, k62}), 1).shape() == Shape{0, k62, k62});
  CHECK(log_softmax(empty({3, 0}), 1).shape() == Shape{3, 0});
}

TEST_CASE("doubles stored as int64 elements are refused outside int64, truncated inside",
          "[limits]") {
  // Converting NaN, an infinity or a value past 2^63 to int64 is undefined behaviour; PyTorch
  // refuses them ("cannot be converted to type int64_t without overflow"). Found by the ops fuzzer
  // through pad's fill value.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const auto i64 = TensorOptions().dtype(kInt64);
  for (const double v : {nan, inf, -inf, 1e308, 0x1p63}) {
    CT_REQUIRE_ERROR(full({2}, v, i64), "full: expected a value that converts to int64");
    CT_REQUIRE_ERROR(zeros({2}, i64).fill_(v), "fill_: expected a value that converts to int64");
    CT_REQUIRE_ERROR(zeros({2}, i64).put_({1}, v), "put_: expected a value that converts to int64");
    CT_REQUIRE_ERROR(pad(zeros({2}, i64), {{1, 1}}, v),
                     "pad: expected a value that converts to int64");
    CT_REQUIRE_ERROR(tensor({1.0, v}, i64), "tensor: expected a value that converts to int64");
    CT_REQUIRE_ERROR(linspace(0.0, v, 3, i64), "linspace: expected a value that converts to int64");
  }
  CT_REQUIRE_ERROR(arange(1e300, 1e300 + 1e290, 1e289, i64),
                   "arange: expected a value that converts to int64 without overflow, got 1e+300");
  // -2^63 is the smallest int64; values inside truncate toward zero, as in PyTorch.
  const Tensor t = pad(zeros({2}, i64), {{1, 1}}, -0x1p63);
  CHECK(t.at<std::int64_t>({0}) == std::numeric_limits<std::int64_t>::min());
  CHECK(full({1}, 2.5, i64).at<std::int64_t>({0}) == 2);
  CHECK(full({1}, -3.7, i64).at<std::int64_t>({0}) == -3);
  // float tensors take NaN and infinities as they are.
  CHECK(std::isnan(full({1}, nan).at<float>({0})));
}

TEST_CASE("flip and reductions of empty tensors with huge extents", "[limits]") {
  // flip moved its offset by (extent - 1) * stride even for an empty tensor (signed overflow,
  // found by the ops fuzzer); an empty tensor addresses nothing, so nothing moves.
  const Tensor e = zeros({0, kMax, 5, 3});
  const Tensor f = flip(e, {1});
  CHECK(f.shape() == e.shape());
  CHECK(f.numel() == 0);
  // sum over the zero dim of [2, 0, 3] gives zeros; over a huge dim of an empty tensor, an empty
  // result.
  CHECK(sum(zeros({2, 0, 3}), {1}).shape() == Shape{2, 3});
  CHECK(sum(zeros({kMax, 0}), {0}).shape() == Shape{0});
  CT_REQUIRE_ERROR(sum(zeros({0, kMax}), {0}),
                   "sum: expected a tensor of at most 9223372036854775807 bytes, got shape "
                   "[9223372036854775807]");
}
