// Seeded float64 gradcheck sweeps of ops/conv: conv (spatial ranks 1 to 3, groups including
// depthwise, strides, symmetric / per-side / SAME / SAME_LOWER / VALID padding, kernel and input
// dilation, bias, flipped kernels, conv1d/2d/3d), conv_transpose (stride, padding,
// output_padding, dilation, groups, bias) and conv_general (layouts, feature and batch groups,
// lhs / rhs dilation). Each configuration reads at least one input element, so no check is
// vacuous. The configurations and the reference: tests/support/conv_reference.h.
#include <cstdint>
#include <vector>

#include "support/conv_reference.h"

using namespace ct_conv;

// ============================================================================ gradcheck sweeps

TEST_CASE("conv: seeded gradcheck sweep over ranks, groups, strides, paddings and dilations",
          "[ops][conv][gradcheck]") {
  manual_seed(101);
  Draw d(20240601u);
  int configs = 0;
  std::map<std::string, int> seen;  // how often each feature was drawn
  const auto any_above_one = [](const Shape& v) {
    return std::any_of(v.begin(), v.end(), [](std::int64_t e) { return e > 1; });
  };
  for (int i = 0; i < 150; ++i) {
    const ConvSpec c = random_conv(d, static_cast<std::size_t>(1 + i % 3));
    seen["rank " + std::to_string(c.rank())]++;
    seen[c.mode == PaddingKind::Explicit ? (c.symmetric ? "symmetric" : "per-side")
                                         : mode_name(c.mode)]++;
    seen["groups"] += c.groups > 1 && c.groups < c.channels;
    seen["depthwise"] += c.groups > 1 && c.groups == c.channels;
    seen["stride"] += any_above_one(c.stride);
    seen["dilation"] += any_above_one(c.dilation);
    seen["input dilation"] += any_above_one(c.input_dilation);
    seen["bias"] += c.bias;
    seen["flip"] += c.flip;
    seen["conv1d/2d/3d"] += c.wrapper;
    std::vector<Tensor> inputs{leaf(c.x_shape()), leaf(c.w_shape())};
    if (c.bias) inputs.push_back(leaf(c.b_shape()));
    configs += check_gradients(
        c.describe(),
        [c](const std::vector<Tensor>& v) { return c.apply(v[0], v[1], c.bias ? v[2] : Tensor()); },
        inputs);
  }
  REQUIRE(configs == 150);
  for (const char* feature : {"rank 1", "rank 2", "rank 3", "symmetric", "per-side", "SAME",
                              "SAME_LOWER", "VALID", "groups", "depthwise", "stride", "dilation",
                              "input dilation", "bias", "flip", "conv1d/2d/3d"}) {
    INFO(feature);
    CHECK(seen[feature] >= 5);
  }
}

TEST_CASE("conv_transpose: seeded gradcheck sweep", "[ops][conv][gradcheck]") {
  manual_seed(102);
  Draw d(777u);
  int configs = 0, output_padded = 0, grouped = 0;
  for (int i = 0; i < 60; ++i) {
    const TransposeSpec t = random_transpose(d, static_cast<std::size_t>(1 + i % 3));
    output_padded += std::any_of(t.output_padding.begin(), t.output_padding.end(),
                                 [](std::int64_t e) { return e > 0; });
    grouped += t.groups > 1;
    std::vector<Tensor> inputs{leaf(t.x_shape()), leaf(t.w_shape())};
    if (t.bias) inputs.push_back(leaf(t.b_shape()));
    configs += check_gradients(
        t.describe(),
        [t](const std::vector<Tensor>& v) { return t.apply(v[0], v[1], t.bias ? v[2] : Tensor()); },
        inputs);
  }
  REQUIRE(configs == 60);
  CHECK(output_padded >= 10);
  CHECK(grouped >= 10);
}

TEST_CASE("conv_general: seeded gradcheck sweep over layouts and group counts",
          "[ops][conv][gradcheck]") {
  manual_seed(103);
  Draw d(4242u);
  int configs = 0, batch_grouped = 0, feature_grouped = 0, three_d = 0;
  for (int i = 0; i < 45; ++i) {
    const GeneralSpec c = random_general(d);
    batch_grouped += c.bgc > 1;
    feature_grouped += c.fgc > 1;
    three_d += c.rank() == 3;
    const ConvGeneralOptions o = c.options();
    configs += check_gradients(
        c.describe(), [o](const std::vector<Tensor>& v) { return conv_general(v[0], v[1], o); },
        {leaf(c.lhs_shape()), leaf(c.rhs_shape())});
  }
  REQUIRE(configs == 45);
  CHECK(batch_grouped >= 5);
  CHECK(feature_grouped >= 5);
  CHECK(three_d >= 5);
}
