// Tests of modules/upsample: Upsample runs interpolate with its options (against the op, and
// PyTorch 1.13's values for one case of tests/golden/resample.txt), has no parameters, gives the
// same in training and eval mode, prints PyTorch's extra_repr, passes a float64 gradient check,
// and refuses options without exactly one of size and scale_factor, or with align_corners in a
// nearest mode.
#include <string>

#include "modules/module_check.h"
#include "modules/upsample.h"
#include "support/op_check.h"
#include "support/test_util.h"

namespace {

using namespace convtape;

TEST_CASE("Upsample: forward is interpolate with the options") {
  manual_seed(31);
  const Tensor x = randn({2, 3, 4, 5});
  nn::Upsample up(
      nn::UpsampleOptions().scale_factor({2, 1.5}).mode("bilinear").align_corners(true));
  const Tensor y = up(x);
  CHECK(y.shape() == Shape{2, 3, 8, 7});
  CHECK(ct_test::identical(
      y, interpolate(
             x, InterpolateOptions().scale_factor({2, 1.5}).mode("bilinear").align_corners(true))));
  CHECK(up.parameters().empty());
  up.eval();
  CHECK(ct_test::identical(up(x), y));
  CHECK(up.type_name() == "Upsample");
  CHECK(up.str() == "Upsample(scale_factor=(2.0, 1.5), mode='bilinear')");
}

TEST_CASE("Upsample: PyTorch 1.13's values") {
  const auto cases = ct_test::load_golden("resample.txt");
  const auto& c = cases.at("interp_trilinear3d_size_noac");
  nn::Upsample up(nn::UpsampleOptions().size({5, 3, 4}).mode("trilinear").align_corners(false));
  const Tensor x = c.at("x").detach().requires_grad_(true);
  const Tensor y = up(x);
  CHECK(ct_test::allclose(y, c.at("out"), 1e-13, 1e-14));
  y.backward(c.at("g"));
  CHECK(ct_test::allclose(x.grad(), c.at("grad_x"), 1e-13, 1e-14));
}

TEST_CASE("Upsample: extra_repr as PyTorch prints it") {
  CHECK(nn::Upsample(nn::UpsampleOptions().scale_factor(2)).extra_repr() ==
        "scale_factor=2.0, mode='nearest'");
  CHECK(nn::Upsample(nn::UpsampleOptions().scale_factor(0.5).mode("nearest-exact")).extra_repr() ==
        "scale_factor=0.5, mode='nearest-exact'");
  CHECK(nn::Upsample(nn::UpsampleOptions().size(7).mode("linear")).extra_repr() ==
        "size=7, mode='linear'");
  CHECK(nn::Upsample(nn::UpsampleOptions().size({4, 6}).mode("bilinear")).extra_repr() ==
        "size=(4, 6), mode='bilinear'");
}

TEST_CASE("Upsample: float64 gradient") {
  manual_seed(32);
  nn::Upsample up(nn::UpsampleOptions().scale_factor(1.7).mode("linear"));
  CT_REQUIRE_MODULE_GRADCHECK(up, randn({2, 2, 5}, kFloat64));
  nn::Upsample nearest(nn::UpsampleOptions().size({3, 5}));
  CT_REQUIRE_MODULE_GRADCHECK(nearest, randn({1, 2, 2, 3}, kFloat64));
}

TEST_CASE("Upsample: errors") {
  CT_REQUIRE_ERROR(nn::Upsample(nn::UpsampleOptions()),
                   "Upsample: expected either size or scale_factor, got neither");
  CT_REQUIRE_ERROR(nn::Upsample(nn::UpsampleOptions().size(3).scale_factor(2)),
                   "Upsample: expected either size or scale_factor, got both");
  CT_REQUIRE_ERROR(nn::Upsample(nn::UpsampleOptions().size(3).align_corners(true)),
                   "Upsample: expected no align_corners with mode 'nearest' (it applies to the "
                   "linear modes only)");
  // The rest is the op's, against the input.
  nn::Upsample up(nn::UpsampleOptions().size(3).mode("bilinear"));
  CT_REQUIRE_ERROR(up(zeros({1, 1, 4})),
                   "interpolate: expected a 4-d x [N, C, *S] for mode "
                   "'bilinear', got shape [1, 1, 4]");
}

}  // namespace
