// Tests of ops/resample (interpolate): golden values from PyTorch 1.13 (tests/golden/resample.txt,
// scripts/make_resample_golden.py) for every mode and rank, align_corners both ways, size and
// scale_factor (integer, non-integer, downsampling, recompute_scale_factor), forward and gradient
// in float64 and float32; the op harness (float32 vs float64, CUDA vs CPU, float64 gradcheck) per
// mode; exact small-integer cases; and one test per error message.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "ops/resample.h"
#include "support/op_check.h"
#include "support/test_util.h"

namespace {

using namespace convtape;

const std::map<std::string, ct_test::GoldenCase>& golden() {
  static const auto cases = ct_test::load_golden("resample.txt");
  return cases;
}

std::vector<double> doubles(const ct_test::GoldenCase& c, const std::string& key) {
  return c.at(key).to_vector<double>();
}

// The call a golden case was computed with, rebuilt from its opt_* tensors.
InterpolateOptions golden_options(const ct_test::GoldenCase& c) {
  InterpolateOptions o;
  o.mode(static_cast<InterpolateMode>(static_cast<int>(doubles(c, "opt_mode").at(0))));
  if (c.count("opt_size")) {
    std::vector<std::int64_t> s;
    for (double v : doubles(c, "opt_size")) s.push_back(static_cast<std::int64_t>(v));
    o.size(s);
  }
  if (c.count("opt_scale")) o.scale_factor(doubles(c, "opt_scale"));
  if (c.count("opt_align")) o.align_corners(doubles(c, "opt_align").at(0) != 0);
  if (c.count("opt_recompute")) o.recompute_scale_factor(true);
  return o;
}

// Forward and d sum(y * g) / dx of interpolate in dtype.
std::pair<Tensor, Tensor> run(const ct_test::GoldenCase& c, const InterpolateOptions& o,
                              DType dtype) {
  const Tensor x = c.at("x").to(dtype).detach().requires_grad_(true);
  const Tensor y = interpolate(x, o);
  y.backward(c.at("g").to(dtype));
  return {y.detach(), x.grad()};
}

}  // namespace

TEST_CASE("interpolate: matches PyTorch 1.13 (forward and gradient, float64 and float32)",
          "[ops][resample][golden]") {
  std::set<std::string> modes;
  int cases = 0;
  for (const auto& [name, c] : golden()) {
    if (name.rfind("interp_", 0) != 0) continue;
    INFO("case " << name);
    ++cases;
    const InterpolateOptions o = golden_options(c);
    modes.insert(interpolate_mode_name(o.mode()));
    const bool nearest =
        o.mode() == InterpolateMode::Nearest || o.mode() == InterpolateMode::NearestExact;
    const auto [y64, gx64] = run(c, o, kFloat64);
    REQUIRE(y64.shape() == c.at("out").shape());
    // float64: the same source indices and weights as PyTorch's, summed in another order.
    CHECK(ct_test::close(y64, c.at("out"), {1e-13, 1e-14}));
    CHECK(ct_test::close(gx64, c.at("grad_x"), {1e-13, 1e-14}));
    // float32: the nearest modes copy elements, so the forward is exact (indices included).
    const auto [y32, gx32] = run(c, o, kFloat32);
    CHECK(ct_test::close(y32, c.at("out_f32").to(kFloat32),
                         nearest ? ct_test::kExact : ct_test::Tolerance{1e-5, 1e-6}));
    CHECK(ct_test::close(gx32, c.at("grad_x_f32").to(kFloat32), {1e-5, 1e-6}));
  }
  CHECK(cases >= 35);
  CHECK(modes ==
        std::set<std::string>{"nearest", "nearest-exact", "linear", "bilinear", "trilinear"});
}

TEST_CASE("interpolate: exact small-integer cases", "[ops][resample]") {
  const Tensor x1 = tensor({0, 1, 2}, {1, 1, 3});
  CHECK(ct_test::identical(interpolate(x1, InterpolateOptions().scale_factor(2)),
                           tensor({0, 0, 1, 1, 2, 2}, {1, 1, 6})));
  // in / out = 3 / 4: floor(o * 0.75) = 0, 0, 1, 2.
  CHECK(ct_test::identical(interpolate(x1, InterpolateOptions().size(4)),
                           tensor({0, 0, 1, 2}, {1, 1, 4})));
  // nearest-exact rounds to the nearest centre: floor((o + 0.5) * 0.75) = 0, 1, 1, 2.
  CHECK(ct_test::identical(interpolate(x1, InterpolateOptions().size(4).mode("nearest-exact")),
                           tensor({0, 1, 1, 2}, {1, 1, 4})));
  // Downsampling by 2 keeps the even positions.
  CHECK(ct_test::identical(
      interpolate(tensor({0, 1, 2, 3, 4, 5}, {1, 1, 6}), InterpolateOptions().scale_factor(0.5)),
      tensor({0, 2, 4}, {1, 1, 3})));
  // linear with align_corners: the corners stay, the rest is evenly spaced.
  CHECK(ct_test::identical(
      interpolate(tensor({0, 4, 8}, {1, 1, 3}),
                  InterpolateOptions().size(5).mode("linear").align_corners(true)),
      tensor({0, 2, 4, 6, 8}, {1, 1, 5})));
  // bilinear without align_corners, scale 2: source (o + 0.5) / 2 - 0.5, clamped at the edges, so
  // each dim of [0, 4] reads [0, 1, 3, 4].
  const Tensor x2 = tensor({0, 4, 8, 12}, {1, 1, 2, 2});
  CHECK(ct_test::identical(
      interpolate(x2, InterpolateOptions().scale_factor(2).mode("bilinear")),
      tensor({0, 1, 3, 4, 2, 3, 5, 6, 6, 7, 9, 10, 8, 9, 11, 12}, {1, 1, 4, 4})));
  // trilinear of a constant is the constant.
  CHECK(ct_test::identical(
      interpolate(full({1, 2, 2, 3, 2}, 5), InterpolateOptions().size({3, 5, 4}).mode("trilinear")),
      full({1, 2, 3, 5, 4}, 5)));
  // nearest takes int64 tensors.
  CHECK(ct_test::identical(interpolate(from_vector(std::vector<std::int64_t>{7, 8}, {1, 1, 2}),
                                       InterpolateOptions().size(3)),
                           from_vector(std::vector<std::int64_t>{7, 7, 8}, {1, 1, 3})));
  // A linear mode that keeps every size returns a copy.
  const Tensor same = interpolate(x1, InterpolateOptions().scale_factor(1.2).mode("linear"));
  CHECK(ct_test::identical(same, x1));
  CHECK(same.data_ptr<float>() != x1.data_ptr<float>());
  // Empty batches and channels pass through.
  CHECK(interpolate(zeros({0, 3, 4, 4}), InterpolateOptions().scale_factor(2).mode("bilinear"))
            .shape() == Shape{0, 3, 8, 8});
  CHECK(interpolate(zeros({2, 0, 4}), InterpolateOptions().size(7)).shape() == Shape{2, 0, 7});
}

TEST_CASE("interpolate: the op harness over modes, ranks and sizes", "[ops][resample][grad]") {
  struct Case {
    const char* name;
    Shape shape;
    InterpolateOptions options;
  };
  // Scales whose float32 and float64 source indices agree (the nearest modes choose indices in the
  // input's dtype).
  const std::vector<Case> cases = {
      {"nearest1d_up", {2, 3, 5}, InterpolateOptions().size(9)},
      {"nearest1d_down", {1, 2, 8}, InterpolateOptions().scale_factor(0.5)},
      {"nearest2d", {1, 2, 3, 4}, InterpolateOptions().scale_factor({2, 1.5})},
      {"nearest3d", {1, 1, 2, 3, 2}, InterpolateOptions().size({3, 4, 5})},
      {"nearest_exact2d", {1, 2, 4, 3}, InterpolateOptions().size({3, 5}).mode("nearest-exact")},
      {"linear1d", {2, 2, 5}, InterpolateOptions().size(8).mode("linear")},
      {"linear1d_down_ac",
       {1, 2, 9},
       InterpolateOptions().scale_factor(0.6).mode("linear").align_corners(true)},
      {"bilinear", {1, 2, 3, 4}, InterpolateOptions().scale_factor({1.7, 1.25}).mode("bilinear")},
      {"bilinear_ac",
       {2, 1, 4, 3},
       InterpolateOptions().size({3, 7}).mode("bilinear").align_corners(true)},
      {"trilinear", {1, 2, 2, 3, 3}, InterpolateOptions().size({3, 2, 5}).mode("trilinear")},
      {"trilinear_ac",
       {1, 1, 3, 2, 4},
       InterpolateOptions().scale_factor(1.5).mode("trilinear").align_corners(true)},
  };
  manual_seed(15);
  for (const Case& c : cases) {
    INFO(c.name);
    const InterpolateOptions o = c.options;
    ct_test::OpCheck(c.name, [o](const std::vector<Tensor>& in) { return interpolate(in[0], o); },
                     {ct_test::leaf(c.shape)})
        .run();
  }
}

TEST_CASE("interpolate: errors", "[ops][resample][errors]") {
  const Tensor x = zeros({1, 2, 4, 4});
  const auto call = [](InterpolateOptions o) {
    return [o](const std::vector<Tensor>& in) { return interpolate(in[0], o); };
  };
  SECTION("mode names") {
    CT_REQUIRE_ERROR(InterpolateOptions().mode("bicubic"),
                     "interpolate: expected mode 'nearest', 'nearest-exact', 'linear', "
                     "'bilinear' or 'trilinear', got 'bicubic'");
    CT_REQUIRE_ERROR(interpolate_mode_from_string("Linear", "Upsample"),
                     "Upsample: expected mode 'nearest'");
  }
  SECTION("size and scale_factor: exactly one") {
    ct_test::check_errors(
        "interpolate",
        {{call(InterpolateOptions()), {x}, "expected either size or scale_factor, got neither"},
         {call(InterpolateOptions().size(3).scale_factor(2)),
          {x},
          "expected either size or scale_factor, got both"}});
  }
  SECTION("the rank of x") {
    ct_test::check_errors(
        "interpolate",
        {{call(InterpolateOptions().size(3)),
          {zeros({2, 4})},
          "interpolate: expected x [N, C, *S] with 1 to 3 spatial dims (3-d to 5-d), got shape "
          "[2, 4]"},
         {call(InterpolateOptions().size(3)),
          {zeros({1, 1, 2, 2, 2, 2})},
          "with 1 to 3 spatial dims (3-d to 5-d), got shape [1, 1, 2, 2, 2, 2]"}});
  }
  SECTION("a linear mode's name fixes the rank") {
    ct_test::check_errors(
        "interpolate",
        {{call(InterpolateOptions().size(3).mode("linear")),
          {x},
          "interpolate: expected a 3-d x [N, C, *S] for mode 'linear', got shape [1, 2, 4, 4]"},
         {call(InterpolateOptions().size(3).mode("trilinear")),
          {x},
          "expected a 5-d x [N, C, *S] for mode 'trilinear'"}});
  }
  SECTION("align_corners with a nearest mode") {
    ct_test::check_errors(
        "interpolate", {{call(InterpolateOptions().size(3).align_corners(false)),
                         {x},
                         "interpolate: expected no align_corners with mode 'nearest' (it applies "
                         "to the linear modes only), got align_corners = false"}});
  }
  SECTION("linear modes need floating point") {
    ct_test::check_errors(
        "interpolate",
        {{call(InterpolateOptions().size(3).mode("bilinear")),
          {zeros({1, 1, 2, 2}, kInt64)},
          "interpolate: expected a floating-point x for mode 'bilinear', got int64"}});
  }
  SECTION("one value or one per spatial dim") {
    ct_test::check_errors(
        "interpolate",
        {{call(InterpolateOptions().size({2, 3, 4})),
          {x},
          "interpolate: expected size with 1 or 2 values (one per spatial dim), got 3"},
         {call(InterpolateOptions().scale_factor({2, 3, 4})),
          {x},
          "interpolate: expected scale_factor with 1 or 2 values (one per spatial dim), got 3"}});
  }
  SECTION("scale_factor positive and finite") {
    ct_test::check_errors(
        "interpolate", {{call(InterpolateOptions().scale_factor({2, -1})),
                         {x},
                         "interpolate: expected positive finite scale_factor values, got [2, -1]"},
                        {call(InterpolateOptions().scale_factor(std::nan(""))),
                         {x},
                         "expected positive finite scale_factor values, got [nan]"}});
  }
  SECTION("output sizes > 0") {
    ct_test::check_errors(
        "interpolate",
        {{call(InterpolateOptions().size({3, 0})),
          {x},
          "interpolate: expected output sizes > 0, got [3, 0] for input shape [1, 2, 4, 4]"},
         {call(InterpolateOptions().scale_factor(0.2)),
          {x},
          "expected output sizes > 0, got [0, 0] for input shape [1, 2, 4, 4]"}});
  }
  SECTION("non-empty spatial dims") {
    ct_test::check_errors("interpolate",
                          {{call(InterpolateOptions().size(3)),
                            {zeros({1, 1, 0})},
                            "interpolate: expected non-empty spatial dims, got shape [1, 1, 0]"}});
  }
  SECTION("recompute_scale_factor needs scale_factor") {
    ct_test::check_errors(
        "interpolate",
        {{call(InterpolateOptions().size({5, 6}).recompute_scale_factor(true)),
          {x},
          "interpolate: expected scale_factor with recompute_scale_factor, got size 5, 6"}});
  }
  SECTION("output sizes that do not fit") {
    ct_test::check_errors(
        "interpolate",
        {{call(InterpolateOptions().scale_factor(1e300)),
          {x},
          "interpolate: expected an output size below 2^62, got 4 * 1e+300"},
         {call(InterpolateOptions().size(std::int64_t{1} << 40)), {x}, "interpolate"}});
  }
  SECTION("an undefined x") {
    CT_REQUIRE_ERROR(interpolate(Tensor(), InterpolateOptions().size(3)),
                     "interpolate: expected a defined input tensor");
  }
}
