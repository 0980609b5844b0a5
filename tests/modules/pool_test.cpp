// Tests of modules/pool: each pooling layer against the op it wraps (every rank, options passed
// through), output sizes, the adaptive layers, the printout of expanded options, and the errors
// (rank checks, option counts); the -inf argmax rule and extreme arguments through the layers.
#include <cstdint>
#include <limits>
#include <vector>

#include "support/test_util.h"

namespace {

using namespace convtape;
using ct_test::equal;

TEST_CASE("MaxPool / AvgPool 1d-3d: the ops with the layer's options") {
  manual_seed(41);
  const Tensor x1 = randn({2, 3, 11});
  const Tensor x2 = randn({2, 3, 9, 8});
  const Tensor x3 = randn({1, 2, 5, 6, 7});
  const PoolOptions o = PoolOptions(3).stride(2).padding(1).ceil_mode();
  CHECK(equal(nn::MaxPool1d(o)(x1), max_pool1d(x1, o)));
  CHECK(equal(nn::MaxPool2d(o)(x2), max_pool2d(x2, o)));
  CHECK(equal(nn::MaxPool3d(o)(x3), max_pool3d(x3, o)));
  const PoolOptions a = PoolOptions({2, 3}).padding({1, 1}).count_include_pad(false);
  CHECK(equal(nn::AvgPool2d(a)(x2), avg_pool2d(x2, a)));
  CHECK(equal(nn::AvgPool1d(2)(x1), avg_pool1d(x1, PoolOptions(2))));
  CHECK(equal(nn::AvgPool3d(2)(x3), avg_pool3d(x3, PoolOptions(2))));
  CHECK(nn::MaxPool2d(2)(x2).shape() == Shape{2, 3, 4, 4});
  // H: floor((9 - 2 - 1) / 2) + 1 = 4, W: floor((8 - 2 - 1) / 2) + 1 = 3
  CHECK(nn::MaxPool2d(PoolOptions(2).dilation(2))(x2).shape() == Shape{2, 3, 4, 3});
  // Exact small case: 2x2 windows of arange(16).
  const Tensor x = arange(16.0).reshape({1, 1, 4, 4});
  CHECK(equal(nn::MaxPool2d(2)(x), tensor({5, 7, 13, 15}, {1, 1, 2, 2})));
  CHECK(equal(nn::AvgPool2d(2)(x), tensor({2.5, 4.5, 10.5, 12.5}, {1, 1, 2, 2})));
}

TEST_CASE("Adaptive pooling layers") {
  manual_seed(42);
  const Tensor x = randn({2, 3, 7, 9});
  CHECK(equal(nn::AdaptiveAvgPool2d({3, 4})(x), adaptive_avg_pool(x, {3, 4})));
  CHECK(equal(nn::AdaptiveMaxPool2d({3, 4})(x), adaptive_max_pool(x, {3, 4})));
  CHECK(nn::AdaptiveAvgPool2d({1})(x).shape() == Shape{2, 3, 1, 1});
  CHECK(equal(nn::AdaptiveAvgPool2d({1})(x), global_avg_pool(x)));
  const Tensor x1 = randn({1, 2, 10});
  CHECK(equal(nn::AdaptiveAvgPool1d({4})(x1), adaptive_avg_pool(x1, {4})));
  CHECK(equal(nn::AdaptiveMaxPool1d({3})(x1), adaptive_max_pool(x1, {3})));
  const Tensor x3 = randn({1, 1, 4, 5, 6});
  CHECK(equal(nn::AdaptiveAvgPool3d({2, 2, 3})(x3), adaptive_avg_pool(x3, {2, 2, 3})));
  CHECK(equal(nn::AdaptiveMaxPool3d({2})(x3), adaptive_max_pool(x3, {2})));
  // Differentiable through the layer.
  const Tensor leaf = ct_test::leaf({1, 2, 5, 5});
  CT_REQUIRE_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        return nn::AdaptiveAvgPool2d({2, 3})(in[0]);
      },
      std::vector<Tensor>{leaf});
}

TEST_CASE("Pooling layers: printout and errors") {
  CHECK(nn::MaxPool2d(2).str() ==
        "MaxPool2d(kernel_size=[2, 2], stride=[2, 2], padding=[0, 0], dilation=[1, 1], "
        "ceil_mode=false)");
  CHECK(nn::AvgPool1d(PoolOptions(3)
                          .stride(1)
                          .padding(std::vector<std::pair<std::int64_t, std::int64_t>>{{1, 0}})
                          .divisor_override(2))
            .str() ==
        "AvgPool1d(kernel_size=[3], stride=[1], padding=[(1, 0)], ceil_mode=false, "
        "count_include_pad=true, divisor_override=2)");
  CHECK(nn::AdaptiveAvgPool2d({1}).str() == "AdaptiveAvgPool2d(output_size=[1, 1])");
  CHECK(nn::AdaptiveMaxPool3d({1, 2, 3}).type_name() == "AdaptiveMaxPool3d");

  CT_REQUIRE_ERROR(nn::MaxPool2d(2)(zeros({1, 4, 4})), "max_pool2d: expected input of rank 4");
  CT_REQUIRE_ERROR(nn::AvgPool3d(2)(zeros({1, 1, 4, 4})), "avg_pool3d: expected input of rank 5");
  CT_REQUIRE_ERROR(
      nn::MaxPool2d(PoolOptions({2, 2, 2})),
      "MaxPool2d: expected kernel_size with 1 or 2 values (one per spatial dim), got 3");
  CT_REQUIRE_ERROR(nn::MaxPool2d(PoolOptions()), "MaxPool2d: expected a kernel_size, got none");
  CT_REQUIRE_ERROR(nn::AvgPool2d(PoolOptions(2).stride({1, 1, 1})),
                   "AvgPool2d: expected stride with 1 or 2 values (one per spatial dim), got 3");
  CT_REQUIRE_ERROR(nn::AdaptiveAvgPool2d({1})(zeros({1, 2, 3})),
                   "AdaptiveAvgPool2d: expected input of rank 4 ([N, C, 2 spatial dims]), got "
                   "[1, 2, 3]");
  CT_REQUIRE_ERROR(nn::AdaptiveMaxPool2d({0, 1}),
                   "AdaptiveMaxPool2d: expected output_size >= 1, got [0, 1]");
  CT_REQUIRE_ERROR(
      nn::AdaptiveAvgPool1d({1, 2}),
      "AdaptiveAvgPool1d: expected output_size with 1 value (one per spatial dim), got 2");
}

TEST_CASE("Pooling layers: -inf windows and arguments near 2^63 pass through to the ops") {
  const double inf = std::numeric_limits<double>::infinity();
  constexpr std::int64_t k2p62 = std::int64_t{1} << 62;
  // An all -inf window routes its gradient to its first element, through the layer too.
  Tensor x = full({1, 1, 4}, -inf, kFloat64).requires_grad_(true);
  nn::MaxPool1d(2)(x).backward(ones({1, 1, 2}, kFloat64));
  CHECK(x.grad().to_vector<double>() == std::vector<double>{1, 0, 1, 0});
  Tensor a = full({1, 1, 5}, -inf, kFloat64).requires_grad_(true);
  nn::AdaptiveMaxPool1d({3})(a).backward(ones({1, 1, 3}, kFloat64));
  CHECK(a.grad().to_vector<double>() == std::vector<double>{1, 1, 0, 1, 0});
  // One window of 2^62 over the plane, and an adaptive size refused with its operands.
  const Tensor r = arange(16.0).reshape({1, 1, 4, 4});
  CHECK(equal(nn::MaxPool2d(PoolOptions(k2p62).stride(k2p62).ceil_mode())(r),
              tensor({15}, {1, 1, 1, 1})));
  CT_REQUIRE_ERROR(nn::AdaptiveMaxPool1d({k2p62})(zeros({1, 1, 4})),
                   "adaptive_max_pool: expected output size * input size (the adaptive window "
                   "bounds) to fit in 64 bits, got 4611686018427387904 * 4");
}

}  // namespace
