// PerDim: a layer option given once for every spatial dim or once per dim (conv layers, PuzzleLib's
// parameter set).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <utility>
#include <vector>

namespace convtape::nn {

// One value for every spatial dim, or one per dim: 2 or {2, 4}.
struct PerDim {
  PerDim(std::int64_t v) : values{v} {}  // NOLINT(google-explicit-constructor)
  PerDim(std::initializer_list<std::int64_t> v) : values(v) {}
  PerDim(std::vector<std::int64_t> v) : values(std::move(v)) {}  // NOLINT
  std::vector<std::int64_t> values;
};

}  // namespace convtape::nn
