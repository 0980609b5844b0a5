// Checked size arithmetic: exact results inside int64, Errors naming the operands outside it.
#include "core/checked.h"

#include <limits>

#include "support/test_util.h"

using namespace convtape;

namespace {
constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
}  // namespace

TEST_CASE("checked add, sub and mul give exact results or name the operands", "[checked]") {
  CHECK(checked::mul(3, -4, "op", "x") == -12);
  CHECK(checked::add(kMax - 1, 1, "op", "x") == kMax);
  CHECK(checked::sub(kMin + 1, 1, "op", "x") == kMin);
  CHECK_FALSE(checked::try_mul(std::int64_t{1} << 32, std::int64_t{1} << 31).has_value());
  CHECK(checked::try_mul(std::int64_t{1} << 31, std::int64_t{1} << 31) == std::int64_t{1} << 62);
  CHECK_FALSE(checked::try_add(kMax, 1).has_value());
  CHECK_FALSE(checked::try_sub(kMin, 1).has_value());
  CT_REQUIRE_ERROR(
      checked::mul(kMax, 2, "conv", "the padded extent"),
      "conv: expected the padded extent to fit in 64 bits, got 9223372036854775807 * 2");
  CT_REQUIRE_ERROR(checked::add(kMax, 5, "pool", "the window end"),
                   "pool: expected the window end to fit in 64 bits, got 9223372036854775807 + 5");
  CT_REQUIRE_ERROR(checked::sub(kMin, 5, "slice", "the start"),
                   "slice: expected the start to fit in 64 bits, got -9223372036854775808 - 5");
}

TEST_CASE("checked numel and nbytes refuse shapes past int64 and past the allocator", "[checked]") {
  CHECK(checked::numel({}, "op") == 1);
  CHECK(checked::numel({2, 3, 4}, "op") == 24);
  // A zero extent makes any shape empty, however large its other extents.
  CHECK(checked::numel({kMax, kMax, 0}, "op") == 0);
  CHECK(checked::numel({kMax}, "op") == kMax);
  CT_REQUIRE_ERROR(checked::numel({(std::int64_t{1} << 62) + 1, 4}, "zeros"),
                   "zeros: expected a shape whose element count fits in 64 bits, got "
                   "[4611686018427387905, 4]");
  CHECK(checked::nbytes({1024, 1024}, 4, "op") == 4 * 1024 * 1024);
  CT_REQUIRE_ERROR(checked::nbytes({std::int64_t{1} << 60, 4}, 4, "zeros"),
                   "zeros: expected a tensor of at most 9223372036854775807 bytes, got shape "
                   "[1152921504606846976, 4] (4611686018427387904 elements of 4 bytes)");
  CT_REQUIRE_ERROR(checked::nbytes({kMax}, 1 + 1, "empty"), "empty: expected a tensor of at most");
}

TEST_CASE("checked floor and ceil division never form a + b - 1", "[checked]") {
  CHECK(checked::div_ceil(7, 2) == 4);
  CHECK(checked::div_ceil(8, 2) == 4);
  CHECK(checked::div_ceil(-7, 2) == -3);
  CHECK(checked::div_ceil(kMax, 2) == kMax / 2 + 1);
  CHECK(checked::div_ceil(kMax, kMax) == 1);
  CHECK(checked::div_floor(-7, 2) == -4);
  CHECK(checked::div_floor(7, 2) == 3);
  CHECK(checked::div_floor(kMin, 3) == kMin / 3 - 1);
}
