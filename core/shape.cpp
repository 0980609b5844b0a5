// Shape helpers: element counts, strides, dim wrapping and NumPy broadcasting.
#include "core/shape.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <limits>

#include "core/checked.h"
#include "core/error.h"

namespace convtape {

std::int64_t numel(const Shape& shape) {
  return checked::numel(shape, "numel");
}

std::string to_string(const Shape& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  std::int64_t s = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    strides[i] = s;
    // Saturates instead of overflowing: an empty tensor may have huge extents beside its zero,
    // and its strides are never used to address an element.
    if (__builtin_mul_overflow(s, std::max<std::int64_t>(shape[i], 1), &s))
      s = std::numeric_limits<std::int64_t>::max();
  }
  return strides;
}

std::int64_t wrap_dim(std::int64_t dim, std::int64_t rank, std::string_view op) {
  const std::int64_t r = std::max<std::int64_t>(rank, 1);  // a scalar accepts dim 0 and -1
  CT_CHECK(dim >= -r && dim < r, "{}: expected dim in [{}, {}), got {}", op, -r, r, dim);
  return dim < 0 ? dim + r : dim;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, std::string_view op) {
  const std::size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const std::int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    CT_CHECK(da == db || da == 1 || db == 1,
             "{}: expected broadcastable shapes, got {} and {} (dim {}: {} vs {})", op,
             to_string(a), to_string(b), i, da, db);
    out[i] = da == 1 ? db : da;
  }
  return out;
}

}  // namespace convtape
