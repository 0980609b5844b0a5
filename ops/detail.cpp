// Shared front-end checks and the broadcast-gradient reduction.
#include "ops/detail.h"

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
  for (std::int64_t i = 0; i < static_cast<std::int64_t>(shape.size()); ++i) {
    if (i < dim)
      s.outer *= shape[i];
    else if (i == dim)
      s.n = shape[i];
    else
      s.inner *= shape[i];
  }
  return s;
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

}  // namespace convtape::detail
