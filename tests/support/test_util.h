// Shared test helpers: gradcheck assertions, tolerant and exact tensor comparisons, error-message
// assertions, and the golden-value reader (files written by scripts/make_golden.py).
#pragma once

#include <catch2/catch.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "convtape.h"

namespace ct_test {

// REQUIRE that gradcheck passes, printing its report either way.
#define CT_REQUIRE_GRADCHECK(fn, inputs)                       \
  do {                                                         \
    const auto ct_gc_ = ::convtape::gradcheck((fn), (inputs)); \
    INFO(ct_gc_.report);                                       \
    REQUIRE(ct_gc_.ok);                                        \
  } while (0)

// Matches a convtape::Error whose message contains a substring.
class ErrorContains : public Catch::MatcherBase<convtape::Error> {
 public:
  explicit ErrorContains(std::string part) : part_(std::move(part)) {}
  bool match(const convtape::Error& e) const override {
    return e.message().find(part_) != std::string::npos;
  }
  std::string describe() const override { return "has a message containing \"" + part_ + "\""; }

 private:
  std::string part_;
};

// REQUIRE that expr throws convtape::Error whose message contains substring.
#define CT_REQUIRE_ERROR(expr, substring) \
  REQUIRE_THROWS_MATCHES(expr, ::convtape::Error, ::ct_test::ErrorContains(substring))

// A float64 leaf with values from the default generator, requiring grad.
convtape::Tensor leaf(const convtape::Shape& shape, double low = -1.0, double high = 1.0);
// A float64 leaf of distinct values at least 0.1 apart (no ties for max pooling or topk, even after
// finite-difference steps), in an order shuffled by seed; requires grad.
convtape::Tensor distinct(const convtape::Shape& shape, std::uint32_t seed);

// Same dtype, shape and bytes (NaN payloads and the sign of zero included).
bool bits_equal(const convtape::Tensor& a, const convtape::Tensor& b);
// Same names in the same order, each tensor bits_equal (Catch2 assertions, one per entry).
void require_same(const convtape::StateDict& a, const convtape::StateDict& b);

// Elementwise |a - b| <= atol + rtol * |b|; the first mismatch is reported through INFO.
bool allclose(const convtape::Tensor& a, const convtape::Tensor& b, double rtol = 1e-4,
              double atol = 1e-5);
// Same shape and bit-identical values.
bool equal(const convtape::Tensor& a, const convtape::Tensor& b);

// Per-side padding, (low, high) per spatial dim, as the conv and pool options take it.
using Pads = std::vector<std::pair<std::int64_t, std::int64_t>>;
// "[2, 3]" and "[(1, 0), (2, 2)]": shapes and paddings in the sweeps' case descriptions.
std::string str(const convtape::Shape& v);
std::string str(const Pads& p);

// Golden cases: each case maps names ("x", "out", "grad_x", ...) to tensors (float64 values).
using GoldenCase = std::map<std::string, convtape::Tensor>;
std::map<std::string, GoldenCase> load_golden(const std::string& file);
// The tensor `name` of a golden case; throws std::runtime_error naming it when the case has none.
const convtape::Tensor& in(const GoldenCase& c, const std::string& name);

}  // namespace ct_test
