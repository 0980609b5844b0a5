// Tests of pad's non-constant modes (ops/shape.h: reflect, replicate, circular): golden values
// from PyTorch 1.13's F.pad (tests/golden/resample.txt, scripts/make_resample_golden.py) over 1 to
// 3 trailing dims and asymmetric widths, forward and gradient in float64 and float32; the op
// harness (float32 vs float64, CUDA vs CPU, float64 gradcheck) per mode; exact small-integer
// cases; the mode names; and one test per error message. The constant mode's tests are in
// shape_test.cpp.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "support/op_check.h"
#include "support/test_util.h"

namespace {

using namespace convtape;

using Widths = std::vector<std::pair<std::int64_t, std::int64_t>>;

Widths golden_widths(const ct_test::GoldenCase& c) {
  const auto lo = c.at("opt_lo").to_vector<double>(), hi = c.at("opt_hi").to_vector<double>();
  Widths w;
  for (std::size_t i = 0; i < lo.size(); ++i)
    w.emplace_back(static_cast<std::int64_t>(lo[i]), static_cast<std::int64_t>(hi.at(i)));
  return w;
}

Tensor ints(std::vector<double> v, const Shape& shape) {
  return tensor(v, shape, kFloat64);
}

}  // namespace

TEST_CASE("pad modes: match PyTorch 1.13's F.pad (forward and gradient)", "[ops][shape][golden]") {
  int cases = 0;
  std::map<PadMode, int> per_mode;
  for (const auto& [name, c] : ct_test::load_golden("resample.txt")) {
    if (name.rfind("pad_", 0) != 0) continue;
    INFO("case " << name);
    ++cases;
    const auto mode = static_cast<PadMode>(static_cast<int>(c.at("opt_mode").item<double>()));
    ++per_mode[mode];
    const Widths w = golden_widths(c);
    for (const DType dtype : {kFloat64, kFloat32}) {
      const std::string suffix = dtype == kFloat32 ? "_f32" : "";
      const Tensor x = c.at("x").to(dtype).detach().requires_grad_(true);
      const Tensor y = pad(x, w, mode);
      // Copies only: the forward is exact; a gradient sums at most a few copies.
      CHECK(ct_test::identical(y.detach(), c.at("out" + suffix).to(dtype)));
      y.backward(c.at("g").to(dtype));
      CHECK(ct_test::close(
          x.grad(), c.at("grad_x" + suffix).to(dtype),
          dtype == kFloat32 ? ct_test::Tolerance{1e-6, 1e-6} : ct_test::Tolerance{1e-15, 1e-15}));
    }
  }
  CHECK(cases >= 15);
  CHECK(per_mode.size() == 3);
}

TEST_CASE("pad modes: exact small-integer cases", "[ops][shape]") {
  const Tensor x = ints({1, 2, 3, 4}, {1, 4});
  CHECK(ct_test::identical(pad(x, {{3, 2}}, PadMode::Reflect),
                           ints({4, 3, 2, 1, 2, 3, 4, 3, 2}, {1, 9})));
  CHECK(ct_test::identical(pad(x, {{2, 3}}, PadMode::Replicate),
                           ints({1, 1, 1, 2, 3, 4, 4, 4, 4}, {1, 9})));
  CHECK(ct_test::identical(pad(x, {{4, 1}}, PadMode::Circular),
                           ints({1, 2, 3, 4, 1, 2, 3, 4, 1}, {1, 9})));
  // Two dims: rows then columns; widths in dim order.
  const Tensor m = ints({1, 2, 3, 4}, {2, 2});
  CHECK(ct_test::identical(pad(m, {{1, 0}, {0, 1}}, PadMode::Reflect),
                           ints({3, 4, 3, 1, 2, 1, 3, 4, 3}, {3, 3})));
  CHECK(ct_test::identical(pad(m, {{0, 1}, {1, 0}}, PadMode::Circular),
                           ints({2, 1, 2, 4, 3, 4, 2, 1, 2}, {3, 3})));
  // The gradient gathers every copy: replicate sends the whole padding to the edges.
  const Tensor v = ints({1, 2, 3}, {3}).requires_grad_(true);
  pad(v, {{2, 1}}, PadMode::Replicate).backward(ones({6}, kFloat64));
  CHECK(ct_test::identical(v.grad(), ints({3, 1, 2}, {3})));
  // A leading dim left alone, int64, zero widths (a copy), widths 0 on an empty dim.
  CHECK(ct_test::identical(
      pad(from_vector(std::vector<std::int64_t>{5, 6}, {1, 2}), {{0, 0}, {1, 1}}, PadMode::Reflect),
      from_vector(std::vector<std::int64_t>{6, 5, 6, 5}, {1, 4})));
  const Tensor same = pad(x, {{0, 0}}, PadMode::Circular);
  CHECK(ct_test::identical(same, x));
  CHECK(same.data_ptr<double>() != x.data_ptr<double>());
  CHECK(pad(zeros({0, 3}), {{0, 0}, {1, 2}}, PadMode::Replicate).shape() == Shape{0, 6});
  // Constant through the mode overload is the old pad.
  CHECK(ct_test::identical(pad(x, {{1, 1}}, PadMode::Constant, 7), pad(x, {{1, 1}}, 7)));
}

TEST_CASE("pad modes: the op harness over modes and ranks", "[ops][shape][grad]") {
  struct Case {
    Shape shape;
    Widths widths;
  };
  const std::vector<Case> cases = {
      {{2, 3, 5}, {{2, 1}}},
      {{1, 2, 4, 5}, {{1, 3}, {2, 0}}},
      {{1, 1, 3, 4, 3}, {{2, 0}, {1, 2}, {1, 1}}},
      {{3, 4}, {{3, 3}}},
  };
  manual_seed(16);
  for (const PadMode mode : {PadMode::Reflect, PadMode::Replicate, PadMode::Circular})
    for (const Case& c : cases) {
      const std::string name =
          std::string("pad ") + pad_mode_name(mode) + " " + ct_test::str(c.shape);
      INFO(name);
      const Widths w = c.widths;
      ct_test::OpCheck(name,
                       [w, mode](const std::vector<Tensor>& in) { return pad(in[0], w, mode); },
                       {ct_test::leaf(c.shape)})
          .run();
    }
}

TEST_CASE("pad modes: names", "[ops][shape]") {
  CHECK(pad_mode_from_string("constant") == PadMode::Constant);
  CHECK(pad_mode_from_string("reflect") == PadMode::Reflect);
  CHECK(pad_mode_from_string("replicate") == PadMode::Replicate);
  CHECK(pad_mode_from_string("circular") == PadMode::Circular);
  CT_REQUIRE_ERROR(
      pad_mode_from_string("zeros"),
      "pad: expected mode 'constant', 'reflect', 'replicate' or 'circular', got 'zeros'");
  CT_REQUIRE_ERROR(pad_mode_from_string("Reflect", "my_op"), "my_op: expected mode 'constant'");
}

TEST_CASE("pad modes: errors", "[ops][shape][errors]") {
  const auto call = [](Widths w, PadMode mode, double value = 0.0) {
    return [w, mode, value](const std::vector<Tensor>& in) { return pad(in[0], w, mode, value); };
  };
  const Tensor x = zeros({2, 3, 4});
  SECTION("reflect widths < size") {
    ct_test::check_errors(
        "pad", {{call({{0, 4}}, PadMode::Reflect),
                 {x},
                 "pad: expected reflect widths smaller than the size 4 of dim 2 of shape [2, 3, "
                 "4], got (0, 4)"},
                {call({{3, 0}, {0, 0}}, PadMode::Reflect),
                 {x},
                 "expected reflect widths smaller than the size 3 of dim 1"}});
  }
  SECTION("circular widths <= size") {
    ct_test::check_errors(
        "pad", {{call({{5, 0}}, PadMode::Circular),
                 {x},
                 "pad: expected circular widths no larger than the size 4 of dim 2 of shape [2, "
                 "3, 4] (padding wraps around once at most), got (5, 0)"}});
  }
  SECTION("replicate needs elements") {
    ct_test::check_errors(
        "pad",
        {{call({{1, 0}}, PadMode::Replicate),
          {zeros({2, 0})},
          "pad: expected a non-empty dim 1 of shape [2, 0] to replicate, got widths (1, 0)"}});
  }
  SECTION("no value with a non-constant mode") {
    ct_test::check_errors("pad",
                          {{call({{1, 1}}, PadMode::Reflect, 2.5),
                            {x},
                            "pad: expected no value with mode 'reflect' (value 0), got 2.5"}});
  }
  SECTION("the checks every mode shares") {
    ct_test::check_errors(
        "pad", {{call({{-1, 0}}, PadMode::Circular),
                 {x},
                 "pad: expected non-negative widths, got (-1, 0) for dim 2"},
                {call({{0, 0}, {0, 0}, {0, 0}, {0, 0}}, PadMode::Replicate),
                 {x},
                 "pad: expected at most 3 (low, high) pairs for shape [2, 3, 4], got 4"}});
    CT_REQUIRE_ERROR(pad(Tensor(), {{1, 1}}, PadMode::Reflect),
                     "pad: expected a defined input tensor");
  }
}
