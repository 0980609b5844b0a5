// Shape helpers: element counts, strides, dim wrapping and broadcasting rules.
#include <limits>

#include "support/test_util.h"

using namespace convtape;

TEST_CASE("shape helpers", "[shape]") {
  CHECK(numel({}) == 1);
  CHECK(numel({2, 0, 3}) == 0);
  CHECK(numel({2, 3, 4}) == 24);
  CHECK(to_string({2, 3}) == "[2, 3]");
  CHECK(to_string({}) == "[]");
  CHECK(contiguous_strides({2, 3, 4}) == Shape{12, 4, 1});
  CHECK(contiguous_strides({2, 0, 3}) == Shape{3, 3, 1});
  // An empty shape may carry extents whose product overflows int64: the strides saturate.
  const std::int64_t big = std::int64_t{1} << 40;
  CHECK(contiguous_strides({big, big, big, 0}) ==
        Shape{std::numeric_limits<std::int64_t>::max(), big, 1, 1});
  CHECK(wrap_dim(-1, 3, "op") == 2);
  CHECK(wrap_dim(0, 0, "op") == 0);
  CHECK(broadcast_shapes({3, 1, 4}, {2, 1}, "op") == Shape{3, 2, 4});
  CHECK(broadcast_shapes({}, {2, 3}, "op") == Shape{2, 3});
  CT_REQUIRE_ERROR(wrap_dim(3, 3, "op"), "op: expected dim in [-3, 3), got 3");
  CT_REQUIRE_ERROR(broadcast_shapes({2, 3}, {4, 3}, "add"),
                   "add: expected broadcastable shapes, got [2, 3] and [4, 3] (dim 0: 2 vs 4)");
}
