// Tests of ops/shape: the views (reshape of contiguous data, view, flatten, permute, transpose,
// squeeze, unsqueeze, narrow, slice, expand: storage shared, checked through .storage()) and the
// copies (reshape of strided data, index_select, cat, stack, pad, flip, rot90) against hand-written
// small-integer expectations, a float64 gradcheck of each, and the argument errors.
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
Tensor i64(const std::vector<std::int64_t>& v) {
  return from_vector(v, {static_cast<std::int64_t>(v.size())});
}

// 0, 1, 2, ... as float32 with the given shape.
Tensor iota(const Shape& shape) {
  return arange(static_cast<double>(numel(shape))).reshape(shape);
}

bool shares(const Tensor& a, const Tensor& b) {
  return a.storage() == b.storage();
}

using Fn = GradcheckFn;
void gradcheck1(const Fn& fn, const Shape& shape) {
  CT_REQUIRE_GRADCHECK(fn, std::vector<Tensor>{leaf(shape)});
}

}  // namespace

// ---------------------------------------------------------------- reshape / view / flatten

TEST_CASE("reshape: -1 inference, views of contiguous data, copies of strided data",
          "[ops][shape]") {
  const Tensor x = iota({24});
  SECTION("inference") {
    REQUIRE(x.reshape({2, -1, 4}).shape() == Shape{2, 3, 4});
    REQUIRE(x.reshape({-1}).shape() == Shape{24});
    REQUIRE(x.reshape({4, 6, -1}).shape() == Shape{4, 6, 1});
    REQUIRE(reshape(x, {-1, 12}).shape() == Shape{2, 12});
    REQUIRE(reshape(zeros({0, 3}), {-1, 6}).shape() == Shape{0, 6});
    REQUIRE(reshape(f32({7}, {}), {1, 1}).shape() == Shape{1, 1});
    REQUIRE(reshape(f32({7}, {1, 1}), {}).shape() == Shape{});
  }
  SECTION("a view of contiguous data shares storage") {
    const Tensor y = x.reshape({2, 3, 4});
    REQUIRE(shares(y, x));
    REQUIRE(y.is_contiguous());
    REQUIRE(y.at<float>({1, 2, 3}) == 23.0f);
    REQUIRE(y.at<float>({0, 1, 2}) == 6.0f);
    // Contiguous with an offset (rows 1..2 of a [4, 6] matrix).
    const Tensor rows = x.reshape({4, 6}).narrow(0, 1, 2);
    const Tensor flat = rows.reshape({12});
    REQUIRE(shares(flat, x));
    REQUIRE(equal(flat, arange(6, 18)));
  }
  SECTION("strided data is copied into row-major order") {
    const Tensor t = x.reshape({4, 6}).transpose(0, 1);  // [6, 4], t[i][j] = 6 j + i
    REQUIRE(!t.is_contiguous());
    const Tensor y = t.reshape({24});
    REQUIRE(!shares(y, x));
    std::vector<double> want;
    for (int i = 0; i < 6; ++i)
      for (int j = 0; j < 4; ++j) want.push_back(6 * j + i);
    REQUIRE(equal(y, f32(want, {24})));
    REQUIRE(equal(t.reshape({3, 8}), f32(want, {3, 8})));
  }
}

TEST_CASE("view: shares storage and refuses strided data", "[ops][shape]") {
  const Tensor x = iota({2, 6});
  const Tensor v = view(x, {3, -1});
  REQUIRE(v.shape() == Shape{3, 4});
  REQUIRE(shares(v, x));
  REQUIRE(equal(v, iota({3, 4})));
  REQUIRE(shares(x.view({12}), x));
  CT_REQUIRE_ERROR(view(x.t(), {12}),
                   "view: expected a contiguous tensor, got shape [6, 2] with strides [1, 6]");
  CT_REQUIRE_ERROR(x.transpose(0, 1).view({-1}), "use reshape");
  CT_REQUIRE_ERROR(view(x, {5, -1}), "view: expected a shape compatible with [2, 6]");
}

TEST_CASE("flatten", "[ops][shape]") {
  const Tensor x = iota({2, 3, 4, 5});
  REQUIRE(flatten(x).shape() == Shape{120});
  REQUIRE(flatten(x, 1).shape() == Shape{2, 60});
  REQUIRE(flatten(x, 1, 2).shape() == Shape{2, 12, 5});
  REQUIRE(flatten(x, -2).shape() == Shape{2, 3, 20});
  REQUIRE(flatten(x, 0, -3).shape() == Shape{6, 4, 5});
  REQUIRE(flatten(x, 2, 2).shape() == Shape{2, 3, 4, 5});
  REQUIRE(x.flatten(1, 2).shape() == Shape{2, 12, 5});
  REQUIRE(shares(flatten(x, 1), x));
  REQUIRE(equal(flatten(x), arange(120)));
  REQUIRE(flatten(f32({3}, {})).shape() == Shape{1});
  // Strided input: flattened in logical order.
  REQUIRE(equal(flatten(iota({2, 3}).t()), f32({0, 3, 1, 4, 2, 5}, {6})));
}

// ---------------------------------------------------------------- permute / transpose

TEST_CASE("permute and transpose are views with permuted strides", "[ops][shape]") {
  const Tensor x = iota({2, 3, 4});
  const Tensor p = permute(x, {2, 0, 1});
  REQUIRE(p.shape() == Shape{4, 2, 3});
  REQUIRE(shares(p, x));
  for (std::int64_t i = 0; i < 2; ++i)
    for (std::int64_t j = 0; j < 3; ++j)
      for (std::int64_t k = 0; k < 4; ++k)
        REQUIRE(p.at<float>({k, i, j}) == x.at<float>({i, j, k}));
  REQUIRE(equal(permute(x, {-1, 0, -2}), p));
  REQUIRE(equal(x.permute({0, 1, 2}), x));
  REQUIRE(equal(permute(p, {1, 2, 0}).contiguous(), x));  // the inverse permutation

  const Tensor m = f32({1, 2, 3, 4, 5, 6}, {2, 3});
  REQUIRE(equal(transpose(m, 0, 1).contiguous(), f32({1, 4, 2, 5, 3, 6}, {3, 2})));
  REQUIRE(equal(m.t().contiguous(), f32({1, 4, 2, 5, 3, 6}, {3, 2})));
  REQUIRE(equal(transpose(m, -1, -2).contiguous(), f32({1, 4, 2, 5, 3, 6}, {3, 2})));
  REQUIRE(equal(transpose(m, 1, 1), m));
  REQUIRE(shares(m.t(), m));
  REQUIRE(m.t().strides() == Shape{1, 3});
  const Tensor t3 = transpose(x, 0, 2);
  REQUIRE(t3.shape() == Shape{4, 3, 2});
  REQUIRE(t3.at<float>({3, 1, 0}) == x.at<float>({0, 1, 3}));
  REQUIRE(f32({1, 2}, {2}).t().shape() == Shape{2});
}

// ---------------------------------------------------------------- squeeze / unsqueeze

TEST_CASE("squeeze and unsqueeze", "[ops][shape]") {
  const Tensor x = iota({1, 3, 1, 2});
  REQUIRE(squeeze(x).shape() == Shape{3, 2});
  REQUIRE(squeeze(x, 0).shape() == Shape{3, 1, 2});
  REQUIRE(squeeze(x, 1).shape() == Shape{1, 3, 1, 2});  // size 3: unchanged
  REQUIRE(squeeze(x, -2).shape() == Shape{1, 3, 2});
  REQUIRE(x.squeeze().shape() == Shape{3, 2});
  REQUIRE(squeeze(f32({5}, {1, 1})).shape() == Shape{});
  REQUIRE(squeeze(f32({5}, {}), 0).shape() == Shape{});
  REQUIRE(shares(squeeze(x), x));
  REQUIRE(equal(squeeze(x), iota({3, 2})));

  const Tensor y = iota({2, 3});
  REQUIRE(unsqueeze(y, 0).shape() == Shape{1, 2, 3});
  REQUIRE(unsqueeze(y, 1).shape() == Shape{2, 1, 3});
  REQUIRE(unsqueeze(y, 2).shape() == Shape{2, 3, 1});
  REQUIRE(unsqueeze(y, -1).shape() == Shape{2, 3, 1});
  REQUIRE(unsqueeze(y, -3).shape() == Shape{1, 2, 3});
  REQUIRE(unsqueeze(f32({5}, {}), 0).shape() == Shape{1});
  REQUIRE(shares(unsqueeze(y, 1), y));
  REQUIRE(equal(unsqueeze(y, 1).reshape({6}), arange(6)));
  REQUIRE(equal(squeeze(unsqueeze(y, 2), 2), y));
  // Of a strided tensor: the new dim keeps the element order.
  const Tensor u = unsqueeze(y.t(), 1);  // [3, 1, 2]
  REQUIRE(u.shape() == Shape{3, 1, 2});
  REQUIRE(equal(u.contiguous().reshape({6}), f32({0, 3, 1, 4, 2, 5}, {6})));
}

// ---------------------------------------------------------------- narrow / slice

TEST_CASE("narrow", "[ops][shape]") {
  const Tensor x = iota({4, 5});
  const Tensor n = narrow(x, 1, 1, 3);
  REQUIRE(shares(n, x));
  REQUIRE(equal(n.contiguous(), f32({1, 2, 3, 6, 7, 8, 11, 12, 13, 16, 17, 18}, {4, 3})));
  REQUIRE(equal(narrow(x, 0, -2, 2).contiguous(),
                f32({10, 11, 12, 13, 14, 15, 16, 17, 18, 19}, {2, 5})));
  REQUIRE(equal(x.narrow(-1, 4, 1).contiguous(), f32({4, 9, 14, 19}, {4, 1})));
  REQUIRE(narrow(x, 0, 4, 0).shape() == Shape{0, 5});
  REQUIRE(narrow(x, 1, 0, 5).shape() == Shape{4, 5});
}

TEST_CASE("slice with step, negative indices and clamped bounds", "[ops][shape]") {
  const Tensor x = arange(10);
  REQUIRE(equal(slice(x, 0, 1, 8, 3), f32({1, 4, 7}, {3})));
  REQUIRE(equal(slice(x, 0, 0, 10, 4), f32({0, 4, 8}, {3})));
  REQUIRE(equal(slice(x, 0, -3, 100), f32({7, 8, 9}, {3})));
  REQUIRE(equal(slice(x, 0, -100, 3), f32({0, 1, 2}, {3})));
  REQUIRE(equal(slice(x, 0, 2, -5, 2), f32({2, 4}, {2})));
  REQUIRE(equal(slice(x, -1, 9, 10, 5), f32({9}, {1})));
  REQUIRE(slice(x, 0, 5, 2).shape() == Shape{0});
  REQUIRE(slice(x, 0, 10, 20).shape() == Shape{0});
  REQUIRE(shares(slice(x, 0, 1, 8, 3), x));
  REQUIRE(slice(x, 0, 1, 8, 3).strides() == Shape{3});

  const Tensor m = iota({3, 5});
  REQUIRE(equal(slice(m, 1, 0, 5, 2).contiguous(), f32({0, 2, 4, 5, 7, 9, 10, 12, 14}, {3, 3})));
  REQUIRE(equal(slice(m, 0, 1, 3).contiguous(), f32({5, 6, 7, 8, 9, 10, 11, 12, 13, 14}, {2, 5})));
  // A slice of a slice.
  REQUIRE(equal(slice(slice(m, 1, 1, 5, 2), 0, 0, 3, 2).contiguous(), f32({1, 3, 11, 13}, {2, 2})));
}

// ---------------------------------------------------------------- expand

TEST_CASE("expand: a stride-0 view", "[ops][shape]") {
  const Tensor x = f32({1, 2, 3}, {3, 1});
  const Tensor e = expand(x, {2, 3, 4});
  REQUIRE(e.shape() == Shape{2, 3, 4});
  REQUIRE(e.strides() == Shape{0, 1, 0});
  REQUIRE(shares(e, x));
  for (std::int64_t i = 0; i < 2; ++i)
    for (std::int64_t j = 0; j < 3; ++j)
      for (std::int64_t k = 0; k < 4; ++k)
        REQUIRE(e.at<float>({i, j, k}) == static_cast<float>(j + 1));
  REQUIRE(equal(expand(x, {-1, 2}).contiguous(), f32({1, 1, 2, 2, 3, 3}, {3, 2})));
  REQUIRE(equal(x.expand({3, 1}), x));
  REQUIRE(equal(expand(f32({7}, {}), {2, 2}).contiguous(), f32({7, 7, 7, 7}, {2, 2})));
  REQUIRE(expand(x, {0, 3, 1}).shape() == Shape{0, 3, 1});
  // Expanding a transposed tensor keeps its strides on the kept dims.
  const Tensor t = iota({1, 3}).t();  // [3, 1]
  REQUIRE(equal(expand(t, {3, 2}).contiguous(), f32({0, 0, 1, 1, 2, 2}, {3, 2})));
}

// ---------------------------------------------------------------- index_select

TEST_CASE("index_select picks rows along a dim", "[ops][shape]") {
  const Tensor x = iota({3, 4});
  REQUIRE(equal(index_select(x, 0, i64({2, 0, 2})),
                f32({8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11}, {3, 4})));
  REQUIRE(equal(index_select(x, 1, i64({3, 1})), f32({3, 1, 7, 5, 11, 9}, {3, 2})));
  REQUIRE(equal(index_select(x, -1, i64({0})), f32({0, 4, 8}, {3, 1})));
  REQUIRE(index_select(x, 0, i64({})).shape() == Shape{0, 4});
  // Middle dim of a 3-d tensor, strided input and index.
  const Tensor y = iota({2, 3, 2});
  REQUIRE(equal(index_select(y, 1, i64({1, 1})), f32({2, 3, 2, 3, 8, 9, 8, 9}, {2, 2, 2})));
  REQUIRE(equal(index_select(x.t(), 0, i64({1})), f32({1, 5, 9}, {1, 3})));
  const Tensor strided_index =
      from_vector(std::vector<std::int64_t>{2, 7, 0, 7}, {2, 2}).narrow(1, 0, 1).squeeze(1);
  REQUIRE(equal(index_select(x, 0, strided_index), f32({8, 9, 10, 11, 0, 1, 2, 3}, {2, 4})));
  // int64 data works too.
  REQUIRE(equal(index_select(from_vector(std::vector<std::int64_t>{5, 6, 7}, {3}), 0, i64({2, 0})),
                i64({7, 5})));
}

TEST_CASE("index_select: repeated indices accumulate their gradients", "[ops][shape][grad]") {
  Tensor x = iota({3, 2}).requires_grad_(true);
  sum(index_select(x, 0, i64({2, 0, 2}))).backward();
  REQUIRE(equal(x.grad(), f32({1, 1, 0, 0, 2, 2}, {3, 2})));
}

// ---------------------------------------------------------------- cat / stack

TEST_CASE("cat joins along an existing dim", "[ops][shape]") {
  const Tensor a = f32({1, 2, 3, 4, 5, 6}, {2, 3});
  const Tensor b = f32({7, 8, 9}, {1, 3});
  const Tensor c = f32({0, -1, -2, -3}, {2, 2});
  REQUIRE(equal(cat({a, b}), f32({1, 2, 3, 4, 5, 6, 7, 8, 9}, {3, 3})));
  REQUIRE(equal(cat({b, a}, 0), f32({7, 8, 9, 1, 2, 3, 4, 5, 6}, {3, 3})));
  REQUIRE(equal(cat({a, c}, 1), f32({1, 2, 3, 0, -1, 4, 5, 6, -2, -3}, {2, 5})));
  REQUIRE(equal(cat({c, a, c}, -1), f32({0, -1, 1, 2, 3, 0, -1, -2, -3, 4, 5, 6, -2, -3}, {2, 7})));
  REQUIRE(equal(cat({a}), a));
  REQUIRE(!shares(cat({a}), a));
  REQUIRE(equal(cat({a, zeros({0, 3})}), a));
  // Strided inputs.
  REQUIRE(equal(cat({a.t(), c}, 0), f32({1, 4, 2, 5, 3, 6, 0, -1, -2, -3}, {5, 2})));
  // int64 tensors.
  REQUIRE(equal(cat({i64({1, 2}), i64({3})}), i64({1, 2, 3})));
}

TEST_CASE("stack joins along a new dim", "[ops][shape]") {
  const Tensor a = f32({1, 2, 3, 4, 5, 6}, {2, 3});
  const Tensor b = f32({11, 12, 13, 14, 15, 16}, {2, 3});
  REQUIRE(equal(stack({a, b}), f32({1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16}, {2, 2, 3})));
  REQUIRE(equal(stack({a, b}, 1), f32({1, 2, 3, 11, 12, 13, 4, 5, 6, 14, 15, 16}, {2, 2, 3})));
  REQUIRE(equal(stack({a, b}, 2), f32({1, 11, 2, 12, 3, 13, 4, 14, 5, 15, 6, 16}, {2, 3, 2})));
  REQUIRE(equal(stack({a, b}, -1), stack({a, b}, 2)));
  REQUIRE(equal(stack({a, b, a}, -3).narrow(0, 2, 1).squeeze(0), a));
  REQUIRE(equal(stack({f32({1}, {}), f32({2}, {})}), f32({1, 2}, {2})));
}

// ---------------------------------------------------------------- pad

TEST_CASE("pad: per-side widths on the trailing dims, with a value", "[ops][shape]") {
  const Tensor x = f32({1, 2, 3, 4, 5, 6}, {2, 3});
  REQUIRE(equal(pad(x, {{1, 0}, {0, 2}}, -1), f32({-1, -1, -1, -1, -1,  //
                                                   1, 2, 3, -1, -1,     //
                                                   4, 5, 6, -1, -1},
                                                  {3, 5})));
  REQUIRE(equal(pad(x, {{1, 2}}), f32({0, 1, 2, 3, 0, 0, 0, 4, 5, 6, 0, 0}, {2, 6})));
  REQUIRE(equal(pad(x, {{0, 0}, {0, 0}}), x));
  REQUIRE(equal(pad(x, {}), x));
  REQUIRE(equal(pad(f32({1, 2, 3, 4}, {1, 2, 2}), {{0, 1}, {1, 0}}, 9),
                f32({9, 1, 2, 9, 3, 4, 9, 9, 9}, {1, 3, 3})));
  REQUIRE(equal(pad(x.t(), {{0, 1}}, 7), f32({1, 4, 7, 2, 5, 7, 3, 6, 7}, {3, 3})));
  REQUIRE(equal(pad(zeros({0}), {{1, 1}}, 2), f32({2, 2}, {2})));
  REQUIRE(pad(x.to(kFloat64), {{1, 1}}).dtype() == kFloat64);
}

// ---------------------------------------------------------------- flip / rot90

TEST_CASE("flip", "[ops][shape]") {
  const Tensor x = f32({1, 2, 3, 4, 5, 6}, {2, 3});
  REQUIRE(equal(flip(x, {0}), f32({4, 5, 6, 1, 2, 3}, {2, 3})));
  REQUIRE(equal(flip(x, {1}), f32({3, 2, 1, 6, 5, 4}, {2, 3})));
  REQUIRE(equal(flip(x, {-1}), f32({3, 2, 1, 6, 5, 4}, {2, 3})));
  REQUIRE(equal(flip(x, {0, 1}), f32({6, 5, 4, 3, 2, 1}, {2, 3})));
  REQUIRE(equal(flip(x, {}), x));
  REQUIRE(!shares(flip(x, {0}), x));
  REQUIRE(equal(flip(x.t(), {0}), f32({3, 6, 2, 5, 1, 4}, {3, 2})));
  REQUIRE(equal(flip(flip(iota({2, 3, 4}), {0, 2}), {2, 0}), iota({2, 3, 4})));
  REQUIRE(equal(flip(iota({2, 2, 2}), {1}), f32({2, 3, 0, 1, 6, 7, 4, 5}, {2, 2, 2})));
  REQUIRE(flip(zeros({0, 3}), {0, 1}).shape() == Shape{0, 3});
  REQUIRE(equal(flip(f32({5}, {}), {}), f32({5}, {})));
  REQUIRE(equal(flip(f32({5}, {}), {0}), f32({5}, {})));
}

TEST_CASE("rot90 matches NumPy's rotation", "[ops][shape]") {
  const Tensor x = f32({1, 2, 3, 4, 5, 6}, {2, 3});
  const Tensor k1 = f32({3, 6, 2, 5, 1, 4}, {3, 2});
  const Tensor k2 = f32({6, 5, 4, 3, 2, 1}, {2, 3});
  const Tensor k3 = f32({4, 1, 5, 2, 6, 3}, {3, 2});
  REQUIRE(equal(rot90(x).contiguous(), k1));
  REQUIRE(equal(rot90(x, 1).contiguous(), k1));
  REQUIRE(equal(rot90(x, 2).contiguous(), k2));
  REQUIRE(equal(rot90(x, 3).contiguous(), k3));
  REQUIRE(equal(rot90(x, -1).contiguous(), k3));
  REQUIRE(equal(rot90(x, -2).contiguous(), k2));
  REQUIRE(equal(rot90(x, -3).contiguous(), k1));
  REQUIRE(equal(rot90(x, 5).contiguous(), k1));
  REQUIRE(equal(rot90(x, 0), x));
  REQUIRE(equal(rot90(x, 4), x));
  REQUIRE(!shares(rot90(x, 0), x));
  // The opposite plane orientation rotates the other way.
  REQUIRE(equal(rot90(x, 1, {1, 0}).contiguous(), k3));
  REQUIRE(equal(rot90(x, 1, {-1, -2}).contiguous(), k3));
  // Four quarter turns are the identity.
  REQUIRE(equal(rot90(rot90(rot90(rot90(x)))).contiguous(), x));
  // 3-d: in the plane of the last two dims, and of the first and last.
  const Tensor y = iota({2, 2, 2});
  REQUIRE(equal(rot90(y, 1, {1, 2}).contiguous(), f32({1, 3, 0, 2, 5, 7, 4, 6}, {2, 2, 2})));
  REQUIRE(equal(rot90(y, 1, {0, 2}).contiguous(), f32({1, 5, 3, 7, 0, 4, 2, 6}, {2, 2, 2})));
  REQUIRE(equal(rot90(y, -1, {2, 0}).contiguous(), f32({1, 5, 3, 7, 0, 4, 2, 6}, {2, 2, 2})));
}

// ---------------------------------------------------------------- gradients

TEST_CASE("view ops: gradcheck", "[ops][shape][grad]") {
  gradcheck1([](const std::vector<Tensor>& v) { return reshape(v[0], {3, -1}); }, {2, 3, 2});
  gradcheck1([](const std::vector<Tensor>& v) { return reshape(v[0].t(), {-1}); }, {3, 4});
  gradcheck1([](const std::vector<Tensor>& v) { return view(v[0], {4, 3}); }, {2, 6});
  gradcheck1([](const std::vector<Tensor>& v) { return flatten(v[0], 1); }, {2, 3, 2});
  gradcheck1([](const std::vector<Tensor>& v) { return flatten(v[0].transpose(0, 2)); }, {2, 3, 2});
  gradcheck1([](const std::vector<Tensor>& v) { return permute(v[0], {2, 0, 1}); }, {2, 3, 4});
  gradcheck1([](const std::vector<Tensor>& v) { return transpose(v[0], 0, -1); }, {2, 3, 4});
  gradcheck1([](const std::vector<Tensor>& v) { return v[0].t(); }, {3, 5});
  gradcheck1([](const std::vector<Tensor>& v) { return squeeze(v[0]); }, {1, 3, 1, 2});
  gradcheck1([](const std::vector<Tensor>& v) { return squeeze(v[0], 2); }, {2, 3, 1});
  gradcheck1([](const std::vector<Tensor>& v) { return unsqueeze(v[0], 1); }, {2, 3});
  gradcheck1([](const std::vector<Tensor>& v) { return unsqueeze(v[0].t(), -1); }, {2, 3});
  gradcheck1([](const std::vector<Tensor>& v) { return narrow(v[0], 1, 1, 2); }, {3, 4});
  gradcheck1([](const std::vector<Tensor>& v) { return narrow(v[0], 0, -2, 2); }, {3, 4});
  gradcheck1([](const std::vector<Tensor>& v) { return slice(v[0], 0, 1, 8, 3); }, {9});
  gradcheck1([](const std::vector<Tensor>& v) { return slice(v[0], 1, -4, 100, 2); }, {2, 5});
  gradcheck1(
      [](const std::vector<Tensor>& v) { return slice(slice(v[0].t(), 0, 0, 5, 2), 1, 1, 3); },
      {3, 5});
  gradcheck1([](const std::vector<Tensor>& v) { return expand(v[0], {2, 3, 4}); }, {3, 1});
  gradcheck1([](const std::vector<Tensor>& v) { return expand(v[0], {4, -1}); }, {3});
  gradcheck1([](const std::vector<Tensor>& v) { return expand(v[0], {2, 3}); }, {});
  // A view feeding elementwise work: gradients flow through the shared storage.
  gradcheck1(
      [](const std::vector<Tensor>& v) {
        return v[0].t() * narrow(v[0], 0, 0, 2).reshape({3, 2});
      },
      {2, 3});
}

TEST_CASE("copying shape ops: gradcheck", "[ops][shape][grad]") {
  const Tensor idx = i64({2, 0, 2, 1});
  gradcheck1([idx](const std::vector<Tensor>& v) { return index_select(v[0], 0, idx); }, {3, 2});
  gradcheck1([idx](const std::vector<Tensor>& v) { return index_select(v[0], 1, idx); }, {2, 3, 2});
  gradcheck1([idx](const std::vector<Tensor>& v) { return index_select(v[0].t(), -1, idx); },
             {3, 2});
  CT_REQUIRE_GRADCHECK(
      [](const std::vector<Tensor>& v) {
        return cat({v[0], v[1], v[2]}, 0);
      },
      (std::vector<Tensor>{leaf({2, 3}), leaf({1, 3}), leaf({3, 3})}));
  CT_REQUIRE_GRADCHECK(
      [](const std::vector<Tensor>& v) {
        return cat({v[0], v[1].t()}, -1);
      },
      (std::vector<Tensor>{leaf({2, 3}), leaf({4, 2})}));
  // One input without grad, and the same input twice.
  CT_REQUIRE_GRADCHECK(
      [](const std::vector<Tensor>& v) {
        return cat({v[0], v[1], v[0]}, 1);
      },
      (std::vector<Tensor>{leaf({2, 2}), zeros({2, 1}, kFloat64)}));
  CT_REQUIRE_GRADCHECK(
      [](const std::vector<Tensor>& v) {
        return stack({v[0], v[1]}, 0);
      },
      (std::vector<Tensor>{leaf({2, 3}), leaf({2, 3})}));
  CT_REQUIRE_GRADCHECK(
      [](const std::vector<Tensor>& v) {
        return stack({v[0], v[1], v[0]}, -1);
      },
      (std::vector<Tensor>{leaf({2, 3}), leaf({2, 3})}));
  gradcheck1([](const std::vector<Tensor>& v) { return pad(v[0], {{1, 0}, {0, 2}}, 3.0); }, {2, 3});
  gradcheck1([](const std::vector<Tensor>& v) { return pad(v[0], {{2, 1}}); }, {2, 2, 3});
  gradcheck1([](const std::vector<Tensor>& v) { return pad(v[0].t(), {{1, 1}, {1, 1}}); }, {2, 3});
  gradcheck1([](const std::vector<Tensor>& v) { return flip(v[0], {0}); }, {3, 4});
  gradcheck1([](const std::vector<Tensor>& v) { return flip(v[0], {0, -1}); }, {2, 3, 2});
  gradcheck1([](const std::vector<Tensor>& v) { return flip(v[0].t(), {1}); }, {3, 4});
  for (std::int64_t k : {1, 2, 3, -1, 0}) {
    INFO("rot90 k = " << k);
    gradcheck1([k](const std::vector<Tensor>& v) { return rot90(v[0], k); }, {2, 3});
    gradcheck1([k](const std::vector<Tensor>& v) { return rot90(v[0], k, {2, 0}); }, {2, 3, 2});
  }
}

TEST_CASE("gradients of views and copies have the expected values", "[ops][shape][grad]") {
  Tensor x = iota({2, 3}).requires_grad_(true);
  const Tensor w = f32({1, 2, 3, 4, 5, 6}, {3, 2});
  sum(x.t() * w).backward();
  REQUIRE(equal(x.grad(), f32({1, 3, 5, 2, 4, 6}, {2, 3})));
  x.zero_grad();
  sum(slice(x, 1, 0, 3, 2) * 2.0).backward();
  REQUIRE(equal(x.grad(), f32({2, 0, 2, 2, 0, 2}, {2, 3})));
  x.zero_grad();
  sum(expand(unsqueeze(x, 0), {4, 2, 3})).backward();
  REQUIRE(equal(x.grad(), full({2, 3}, 4.0)));
  x.zero_grad();
  pad(x, {{1, 1}}, 5.0).backward(iota({2, 5}));
  REQUIRE(equal(x.grad(), f32({1, 2, 3, 6, 7, 8}, {2, 3})));
  x.zero_grad();
  rot90(x).backward(iota({3, 2}));
  REQUIRE(equal(x.grad(), rot90(iota({3, 2}), -1).contiguous()));
  x.zero_grad();
  const Tensor y = f32({10, 20}, {2}).requires_grad_(true);
  cat({x.flatten(), y}).backward(arange(8));
  REQUIRE(equal(x.grad(), iota({2, 3})));
  REQUIRE(equal(y.grad(), f32({6, 7}, {2})));
}

// ---------------------------------------------------------------- errors

TEST_CASE("shape op errors", "[ops][shape][errors]") {
  const Tensor x = zeros({2, 3, 4});
  SECTION("reshape and view") {
    CT_REQUIRE_ERROR(reshape(x, {-1, -1}),
                     "reshape: expected at most one -1 in the shape, got [-1, -1]");
    CT_REQUIRE_ERROR(
        reshape(x, {5, 5}),
        "reshape: expected a shape with 24 elements (input [2, 3, 4]), got [5, 5] with 25");
    CT_REQUIRE_ERROR(
        reshape(x, {-1, 5}),
        "reshape: expected a shape compatible with [2, 3, 4] (24 elements), got [-1, 5]");
    CT_REQUIRE_ERROR(reshape(x, {-2, -12}),
                     "reshape: expected non-negative sizes (or one -1), got [-2, -12]");
    CT_REQUIRE_ERROR(reshape(x, {0, -1}), "reshape: expected a shape compatible with");
    CT_REQUIRE_ERROR(view(x, {7}), "view: expected a shape with 24 elements");
    CT_REQUIRE_ERROR(reshape(Tensor(), {1}), "reshape: expected a defined input tensor");
  }
  SECTION("flatten, permute, transpose") {
    CT_REQUIRE_ERROR(flatten(x, 2, 1), "flatten: expected start_dim <= end_dim, got 2 and 1");
    CT_REQUIRE_ERROR(flatten(x, 3), "flatten: expected dim in [-3, 3), got 3");
    CT_REQUIRE_ERROR(permute(x, {0, 1}),
                     "permute: expected 3 dims for shape [2, 3, 4], got [0, 1]");
    CT_REQUIRE_ERROR(permute(x, {0, 0, 1}),
                     "permute: expected a permutation of the dims, got [0, 0, 1]");
    CT_REQUIRE_ERROR(permute(x, {0, 1, -1, 2}), "permute: expected 3 dims");
    CT_REQUIRE_ERROR(permute(x, {0, 1, 3}), "permute: expected dim in [-3, 3), got 3");
    CT_REQUIRE_ERROR(transpose(x, 0, 3), "transpose: expected dim in [-3, 3), got 3");
    CT_REQUIRE_ERROR(transpose(x, -4, 0), "transpose: expected dim in");
    CT_REQUIRE_ERROR(x.t(), "t: expected a tensor with at most 2 dims, got shape [2, 3, 4]");
  }
  SECTION("squeeze and unsqueeze") {
    CT_REQUIRE_ERROR(squeeze(x, 3), "squeeze: expected dim in [-3, 3), got 3");
    CT_REQUIRE_ERROR(unsqueeze(x, 4), "unsqueeze: expected dim in [-4, 4), got 4");
    CT_REQUIRE_ERROR(unsqueeze(x, -5), "unsqueeze: expected dim in [-4, 4), got -5");
  }
  SECTION("narrow and slice") {
    const Tensor m = zeros({4, 5});
    CT_REQUIRE_ERROR(
        narrow(m, 1, 3, 3),
        "narrow: expected start and length inside dim 1 of size 5, got start = 3, length = 3");
    CT_REQUIRE_ERROR(narrow(m, 0, -5, 1),
                     "narrow: expected start and length inside dim 0 of size 4");
    CT_REQUIRE_ERROR(narrow(m, 0, 0, -1), "narrow: expected start and length inside");
    CT_REQUIRE_ERROR(narrow(m, 2, 0, 1), "narrow: expected dim in [-2, 2), got 2");
    CT_REQUIRE_ERROR(narrow(f32({1}, {}), 0, 0, 1),
                     "narrow: expected a tensor with at least one dim, got a scalar");
    CT_REQUIRE_ERROR(slice(m, 0, 0, 4, 0), "slice: expected step > 0, got 0");
    CT_REQUIRE_ERROR(slice(m, 0, 4, 0, -1), "slice: expected step > 0, got -1");
    CT_REQUIRE_ERROR(slice(m, -3, 0, 1), "slice: expected dim in [-2, 2), got -3");
    CT_REQUIRE_ERROR(slice(f32({1}, {}), 0, 0, 1),
                     "slice: expected a tensor with at least one dim");
  }
  SECTION("expand") {
    CT_REQUIRE_ERROR(expand(zeros({3}), {4}),
                     "expand: expected size 3 or a size-1 dim at dim 0 of input [3], got [4]");
    CT_REQUIRE_ERROR(expand(zeros({2, 3}), {3}),
                     "expand: expected at least 2 dims for input [2, 3], got [3]");
    CT_REQUIRE_ERROR(expand(zeros({3, 1}), {2, 3, 1, 5}),
                     "expand: expected size 3 or a size-1 dim at dim 0");
    CT_REQUIRE_ERROR(expand(zeros({3}), {-1, 3}),
                     "expand: expected sizes >= 0 for new dims, got [-1, 3]");
  }
  SECTION("index_select") {
    const Tensor m = zeros({3, 4});
    CT_REQUIRE_ERROR(
        index_select(m, 0, i64({0, 3})),
        "index_select: expected indices in [0, 3) for dim 0 of shape [3, 4], got 3 at 1");
    CT_REQUIRE_ERROR(index_select(m, 1, i64({-1})),
                     "index_select: expected indices in [0, 4) for dim 1");
    CT_REQUIRE_ERROR(index_select(m, 0, tensor({0, 1})),
                     "index_select: expected a 1-d int64 index, got float32 of shape [2]");
    CT_REQUIRE_ERROR(index_select(m, 0, from_vector(std::vector<std::int64_t>{0, 1}, {1, 2})),
                     "index_select: expected a 1-d int64 index, got int64 of shape [1, 2]");
    CT_REQUIRE_ERROR(index_select(m, 2, i64({0})), "index_select: expected dim in [-2, 2), got 2");
    CT_REQUIRE_ERROR(index_select(f32({1}, {}), 0, i64({0})),
                     "index_select: expected a tensor with at least one dim");
    CT_REQUIRE_ERROR(index_select(m, 0, Tensor()), "index_select: expected a defined index tensor");
  }
  SECTION("cat and stack") {
    const Tensor a = zeros({2, 3});
    CT_REQUIRE_ERROR(
        cat({a, zeros({2, 4})}),
        "cat: expected shapes that match [2, 3] except in dim 0, got [2, 4] (tensor 1)");
    CT_REQUIRE_ERROR(cat({a, zeros({3})}, 0),
                     "cat: expected shapes that match [2, 3] except in dim 0, got [3]");
    CT_REQUIRE_ERROR(cat({a, zeros({2, 3}, kFloat64)}),
                     "cat: expected tensors of one dtype, got float32 and float64 (tensor 1)");
    CT_REQUIRE_ERROR(cat({}), "cat: expected at least one tensor, got none");
    CT_REQUIRE_ERROR(cat({f32({1}, {}), f32({2}, {})}),
                     "cat: expected tensors with at least one dim, got a scalar");
    CT_REQUIRE_ERROR(cat({a, a}, 2), "cat: expected dim in [-2, 2), got 2");
    CT_REQUIRE_ERROR(cat({a, Tensor()}), "cat: expected a defined input tensor");
    CT_REQUIRE_ERROR(stack({a, zeros({3, 2})}),
                     "stack: expected tensors of one shape [2, 3], got [3, 2] (tensor 1)");
    CT_REQUIRE_ERROR(stack({a, a}, 3), "stack: expected dim in [-3, 3), got 3");
    CT_REQUIRE_ERROR(stack({a, a}, -4), "stack: expected dim in [-3, 3), got -4");
    CT_REQUIRE_ERROR(stack({}), "stack: expected at least one tensor, got none");
  }
  SECTION("pad") {
    CT_REQUIRE_ERROR(pad(zeros({2, 3}), {{-1, 0}}),
                     "pad: expected non-negative widths, got (-1, 0) for dim 1");
    CT_REQUIRE_ERROR(pad(zeros({2, 3}), {{0, 0}, {1, -2}}),
                     "pad: expected non-negative widths, got (1, -2) for dim 1");
    CT_REQUIRE_ERROR(pad(zeros({2, 3}), {{0, 0}, {0, 0}, {0, 0}}),
                     "pad: expected at most 2 (low, high) pairs for shape [2, 3], got 3");
  }
  SECTION("flip and rot90") {
    CT_REQUIRE_ERROR(flip(x, {0, 0}), "flip: expected distinct dims, got [0, 0]");
    CT_REQUIRE_ERROR(flip(x, {1, -2}), "flip: expected distinct dims, got [1, -2]");
    CT_REQUIRE_ERROR(flip(x, {3}), "flip: expected dim in [-3, 3), got 3");
    CT_REQUIRE_ERROR(rot90(zeros({4})),
                     "rot90: expected a tensor with at least 2 dims, got shape [4]");
    CT_REQUIRE_ERROR(rot90(x, 1, {1, 1}), "rot90: expected two different dims, got 1 and 1");
    CT_REQUIRE_ERROR(rot90(x, 1, {0, -3}), "rot90: expected two different dims, got 0 and -3");
    CT_REQUIRE_ERROR(rot90(x, 1, {0, 3}), "rot90: expected dim in [-3, 3), got 3");
  }
}
