// CUDA pooling, tensor level (cuda/pool.h): checks the operands, allocates the results on the
// operand's device, and runs the kernels of cuda/pool.cu under a DeviceScope. Windows wider than
// kSplitTaps in calls with few outputs are split over several threads per output (partial results
// combined in a second pass), so that global pooling of a few large planes does not leave one
// thread per plane reading it all.
#include "cuda/pool.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <string>
#include <string_view>

#include "core/error.h"
#include "cuda/check.h"
#include "cuda/cuda.h"
#include "cuda/device_scope.h"
#include "cuda/pool_launch.h"
#include "cuda/pool_plan.h"

namespace convtape::cuda {

namespace {

// A defined, contiguous CUDA tensor of the given shape; floating (and of dtype `like` when given)
// or, for indices, int64.
void check_operand(std::string_view op, const Tensor& t, std::string_view what, const Shape& shape,
                   bool indices, const Tensor& like = {}) {
  CT_CHECK(t.defined(), "{}: expected {}, got an undefined tensor", op, what);
  CT_CHECK(t.is_cuda(), "{}: expected {} on a CUDA device, got one on {}", op, what,
           t.device().str());
  if (indices)
    CT_CHECK(t.dtype() == kInt64, "{}: expected int64 {}, got {}", op, what, dtype_name(t.dtype()));
  else
    CT_CHECK(t.is_floating_point(), "{}: expected {} of dtype float32 or float64, got {}", op, what,
             dtype_name(t.dtype()));
  if (like.defined()) {
    CT_CHECK(t.device() == like.device(), "{}: expected {} on {}, got one on {}", op, what,
             like.device().str(), t.device().str());
    if (!indices)
      CT_CHECK(t.dtype() == like.dtype(), "{}: expected {} of dtype {}, got {}", op, what,
               dtype_name(like.dtype()), dtype_name(t.dtype()));
  }
  CT_CHECK(t.shape() == shape, "{}: expected {} of shape {}, got {}", op, what, to_string(shape),
           to_string(t.shape()));
  CT_CHECK(t.is_contiguous(), "{}: expected contiguous {}, got strides {}", op, what,
           to_string(t.strides()));
}

Shape with_planes(std::int64_t n, std::int64_t c, const Shape& spatial) {
  Shape s{n, c};
  s.insert(s.end(), spatial.begin(), spatial.end());
  return s;
}

Shape with_planes(const PoolGeometry& g, const Shape& spatial) {
  return with_planes(g.batch, g.channels, spatial);
}

TensorOptions on(const Tensor& t, DType dtype) {
  return TensorOptions(dtype).device(t.device());
}

std::string dims_string(const Shape& s) {
  return fmt::format("{}", fmt::join(s, " x "));
}

}  // namespace

PoolResult max_pool_forward(const Tensor& x, const PoolGeometry& g, bool with_indices) {
  constexpr std::string_view op = "max_pool";
  const PoolWindows pw = pool_windows(op, g);
  check_operand(op, x, "input", with_planes(g, g.in), false);
  DeviceScope scope(op, x.device());
  PoolResult r;
  r.values = empty(with_planes(g, g.out), on(x, x.dtype()));
  if (with_indices) r.indices = empty(with_planes(g, g.out), on(x, kInt64));
  const std::int64_t outputs = r.values.numel();
  if (outputs == 0) return r;
  const std::int64_t lanes = pool_lanes(pw, outputs);
  Tensor partial_values, partial_indices;
  if (lanes > 1) {
    partial_values = empty({outputs * lanes}, on(x, x.dtype()));
    partial_indices = empty({outputs * lanes}, on(x, kInt64));
  }
  CT_CUDA_CHECK(
      op, kernels::max_pool(x.dtype(), x.raw_data(), r.values.raw_data(),
                            with_indices ? r.indices.data_ptr<std::int64_t>() : nullptr, pw,
                            g.planes(), lanes, lanes > 1 ? partial_values.raw_data() : nullptr,
                            lanes > 1 ? partial_indices.data_ptr<std::int64_t>() : nullptr));
  return r;
}

Tensor avg_pool_forward(const Tensor& x, const PoolGeometry& g) {
  constexpr std::string_view op = "avg_pool";
  const PoolWindows pw = pool_windows(op, g);
  check_operand(op, x, "input", with_planes(g, g.in), false);
  DeviceScope scope(op, x.device());
  Tensor y = empty(with_planes(g, g.out), on(x, x.dtype()));
  const std::int64_t outputs = y.numel();
  if (outputs == 0) return y;
  const std::int64_t lanes = pool_lanes(pw, outputs);
  Tensor partial;
  if (lanes > 1) partial = empty({outputs * lanes}, on(x, x.dtype()));
  CT_CUDA_CHECK(op, kernels::avg_pool(x.dtype(), x.raw_data(), y.raw_data(), pw, g.planes(), lanes,
                                      lanes > 1 ? partial.raw_data() : nullptr));
  return y;
}

Tensor avg_pool_backward(const Tensor& dy, const PoolGeometry& g) {
  constexpr std::string_view op = "avg_pool";
  const PoolWindows pw = pool_windows(op, g);
  check_operand(op, dy, "gradient", with_planes(g, g.out), false);
  DeviceScope scope(op, dy.device());
  Tensor dx = empty(with_planes(g, g.in), on(dy, dy.dtype()));
  if (dx.numel() == 0) return dx;
  CT_CUDA_CHECK(
      op, kernels::avg_pool_backward(dy.dtype(), dy.raw_data(), dx.raw_data(), pw, g.planes()));
  return dx;
}

Tensor index_scatter(const Tensor& src, const Tensor& indices, const Shape& plane,
                     bool accumulate) {
  const std::string_view op = accumulate ? "max_pool" : "max_unpool";
  CT_CHECK(src.defined() && src.dim() >= 2, "{}: expected a source [N, C, ...], got {}", op,
           src.defined() ? to_string(src.shape()) : std::string("an undefined tensor"));
  check_operand(op, src, "source", src.shape(), false);
  check_operand(op, indices, "indices", src.shape(), true, src);
  DeviceScope scope(op, src.device());
  const std::int64_t planes = src.size(0) * src.size(1);
  const std::int64_t m = planes > 0 ? src.numel() / planes : 0, size = numel(plane);
  Tensor out = empty(with_planes(src.size(0), src.size(1), plane), on(src, src.dtype()));
  if (out.numel() == 0 && src.numel() == 0) return out;
  const auto* ind = indices.data_ptr<std::int64_t>();
  if (accumulate) {
    CT_CUDA_CHECK(op, kernels::index_scatter_add(src.dtype(), src.raw_data(), ind, out.raw_data(),
                                                 planes, m, size));
    return out;
  }
  // Indices were checked against the plane by the front end (ops/pool.cpp), once.
  const Tensor owner = empty({planes * size}, on(src, kInt64));
  CT_CUDA_CHECK(op, kernels::index_scatter_last(src.dtype(), src.raw_data(), ind, out.raw_data(),
                                                planes, m, size, owner.data_ptr<std::int64_t>()));
  return out;
}

Tensor index_gather(const Tensor& src, const Tensor& indices) {
  constexpr std::string_view op = "max_unpool";
  CT_CHECK(src.defined() && src.dim() >= 2, "{}: expected a source [N, C, ...], got {}", op,
           src.defined() ? to_string(src.shape()) : std::string("an undefined tensor"));
  check_operand(op, src, "source", src.shape(), false);
  CT_CHECK(indices.defined() && indices.dim() >= 2 && indices.size(0) == src.size(0) &&
               indices.size(1) == src.size(1),
           "{}: expected indices [{}, {}, ...], got {}", op, src.size(0), src.size(1),
           indices.defined() ? to_string(indices.shape()) : std::string("an undefined tensor"));
  check_operand(op, indices, "indices", indices.shape(), true, src);
  DeviceScope scope(op, src.device());
  const std::int64_t planes = src.size(0) * src.size(1);
  const std::int64_t size = planes > 0 ? src.numel() / planes : 0;
  const std::int64_t m = planes > 0 ? indices.numel() / planes : 0;
  Tensor out = empty(indices.shape(), on(src, src.dtype()));
  if (out.numel() == 0) return out;
  CT_CUDA_CHECK(op,
                kernels::index_gather(src.dtype(), src.raw_data(), indices.data_ptr<std::int64_t>(),
                                      out.raw_data(), planes, m, size));
  return out;
}

}  // namespace convtape::cuda
