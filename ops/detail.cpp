// Shared front-end checks and the broadcast-gradient reduction.
#include "ops/detail.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "ops/backend.h"
#include "ops/reduce.h"
#include "ops/shape.h"

namespace convtape::detail {

void check_defined(std::string_view op, const Tensor& t, std::string_view what) {
  CT_CHECK(t.defined(), "{}: expected a defined {} tensor, got an undefined one", op, what);
}

void check_same_device(std::string_view op, const std::vector<Tensor>& tensors) {
  const Tensor* first = nullptr;
  for (const auto& t : tensors) {
    if (!t.defined()) continue;
    if (!first) {
      first = &t;
      continue;
    }
    CT_CHECK(t.device() == first->device(), "{}: expected tensors on one device, got {} and {}", op,
             first->device().str(), t.device().str());
  }
}

void check_floating_same(std::string_view op, const std::vector<Tensor>& tensors) {
  const Tensor* first = nullptr;
  for (const auto& t : tensors) {
    check_defined(op, t);
    CT_CHECK(t.is_floating_point(),
             "{}: expected a floating-point tensor (float32 or float64), got {} of shape {}", op,
             dtype_name(t.dtype()), to_string(t.shape()));
    if (!first) {
      first = &t;
      continue;
    }
    CT_CHECK(t.dtype() == first->dtype(), "{}: expected tensors of one dtype, got {} and {}", op,
             dtype_name(first->dtype()), dtype_name(t.dtype()));
  }
  check_same_device(op, tensors);
}

void check_cpu(std::string_view op, const std::vector<Tensor>& tensors) {
  for (const auto& t : tensors)
    CT_CHECK(!t.defined() || t.is_cpu(),
             "{}: expected CPU tensors, got one on {} (this op has no CUDA kernel yet)", op,
             t.device().str());
}

Split3 split_at(const Shape& shape, std::int64_t dim) {
  Split3 s;
  bool overflow = false;
  for (std::int64_t i = 0; i < static_cast<std::int64_t>(shape.size()); ++i) {
    if (i < dim)
      overflow = overflow || __builtin_mul_overflow(s.outer, shape[i], &s.outer);
    else if (i == dim)
      s.n = shape[i];
    else
      overflow = overflow || __builtin_mul_overflow(s.inner, shape[i], &s.inner);
  }
  // Only an empty shape gets here (a tensor's element count fits in int64): a zero beside huge
  // extents. Its [outer, inner] slab is then empty too, or so large that the caller has refused
  // the output already; either way nothing may be visited.
  if (overflow) s.outer = s.inner = 0;
  return s;
}

void check_element_value(std::string_view op, double value, DType dtype) {
  if (dtype != DType::Int64) return;
  // [-2^63, 2^63) as doubles; NaN fails both comparisons.
  CT_CHECK(value >= -0x1p63 && value < 0x1p63,
           "{}: expected a value that converts to int64 without overflow, got {}", op, value);
}

Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  const std::int64_t lead = g.dim() - static_cast<std::int64_t>(shape.size());
  CT_CHECK(lead >= 0, "sum_to: expected a target shape of rank <= {}, got {}", g.dim(),
           to_string(shape));
  std::vector<std::int64_t> dims;
  for (std::int64_t i = 0; i < g.dim(); ++i)
    if (i < lead || (shape[i - lead] == 1 && g.size(i) != 1)) dims.push_back(i);
  Tensor s = dims.empty() ? g : sum(g, dims, /*keepdim=*/true);
  return reshape(s, shape);
}

void check_per_dim_count(std::string_view op, std::string_view what, std::size_t count,
                         std::int64_t s, bool allow_empty) {
  CT_CHECK((allow_empty && count == 0) || count == 1 || static_cast<std::int64_t>(count) == s,
           "{}: expected {} with {} (one per spatial dim), got {}", op, what,
           s == 1 ? std::string("1 value") : fmt::format("1 or {} values", s), count);
}

void check_at_least(std::string_view op, std::string_view what, const std::vector<std::int64_t>& v,
                    std::int64_t min) {
  for (auto x : v)
    CT_CHECK(x >= min, "{}: expected {} >= {}, got [{}]", op, what, min, fmt::join(v, ", "));
}

void check_positive(std::string_view op, std::string_view what,
                    const std::vector<std::int64_t>& v) {
  for (auto x : v) CT_CHECK(x > 0, "{}: expected {} > 0, got [{}]", op, what, fmt::join(v, ", "));
}

std::string dims_string(const Shape& s) {
  return fmt::format("{}", fmt::join(s, " x "));
}

OutOfRange find_out_of_range(const Tensor& values, std::int64_t lo, std::int64_t hi) {
  return backend::find_out_of_range(values, lo, hi);
}

}  // namespace convtape::detail
