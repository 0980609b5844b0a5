// The tensor-level comparison and selection kernels of cuda/select.h: checks, outputs and scratch
// on the operands' device, the layout plans (cuda/select_plan.h), then the launchers of
// cuda/select_launch.h.
#include "cuda/select.h"

#include <algorithm>
#include <cstddef>
#include <string_view>

#include "core/error.h"
#include "cuda/check.h"
#include "cuda/cuda.h"
#include "cuda/device_scope.h"
#include "cuda/operands.h"
#include "cuda/select_launch.h"
#include "cuda/select_plan.h"

namespace convtape::cuda {

namespace {

// Defined, on a CUDA device; with first, on its device and of its dtype.
void check_operand(std::string_view op, const Tensor& t, std::string_view what,
                   const Tensor* first = nullptr) {
  check_device_operand(op, t, what, first);
  if (!first) return;
  CT_CHECK(t.dtype() == first->dtype(), "{}: expected the {} of dtype {}, got {}", op, what,
           dtype_name(first->dtype()), dtype_name(t.dtype()));
}

}  // namespace

Tensor compare(Compare op, const Tensor& a, const Tensor& b) {
  constexpr std::string_view name = "compare";
  check_operand(name, a, "first operand");
  check_operand(name, b, "second operand", &a);
  const CompareKind kind = compare_kind(op);
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  DeviceScope scope(name, a.device());
  Tensor y = device_empty(shape, a.dtype(), a.device());
  if (y.numel() == 0) return y;
  const MapLayout layout = plan_binary(name, a, b, shape);
  CT_CUDA_CHECK(name, kernels::compare(kind, a.dtype(), a.raw_data(), b.raw_data(), y.raw_data(),
                                       y.numel(), layout));
  return y;
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  constexpr std::string_view name = "where";
  check_operand(name, a, "first branch");
  check_operand(name, b, "second branch", &a);
  check_operand(name, cond, "condition", &a);
  const Shape shape =
      broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), name), b.shape(), name);
  DeviceScope scope(name, a.device());
  Tensor y = device_empty(shape, a.dtype(), a.device());
  if (y.numel() == 0) return y;
  const MapLayout layout = plan_where(name, cond, a, b, shape);
  CT_CUDA_CHECK(name, kernels::where(a.dtype(), cond.raw_data(), a.raw_data(), b.raw_data(),
                                     y.raw_data(), y.numel(), layout));
  return y;
}

Tensor nonzero_flat(const Tensor& mask) {
  constexpr std::string_view name = "masked_select";
  check_operand(name, mask, "mask");
  check_contiguous(name, mask, "mask");
  const Device device = mask.device();
  const std::int64_t n = mask.numel();
  if (n == 0) return device_empty({0}, kInt64, device);
  // CUB's scan counts its items in int.
  CT_CHECK(n < (std::int64_t{1} << 31),
           "{}: expected a mask of fewer than 2^31 elements on CUDA, got {} (shape {})", name, n,
           to_string(mask.shape()));
  DeviceScope scope(name, device);
  std::size_t bytes = 0;
  CT_CUDA_CHECK(name, kernels::nonzero_scratch(n, &bytes));
  const auto words =
      static_cast<std::int64_t>((bytes + sizeof(std::int64_t) - 1) / sizeof(std::int64_t));
  const Tensor scratch = device_empty({std::max<std::int64_t>(words, 1)}, kInt64, device);
  const Tensor flags = device_empty({n}, kInt64, device), pos = device_empty({n}, kInt64, device);
  std::int64_t count = 0;
  CT_CUDA_CHECK(name, kernels::nonzero_count(
                          mask.dtype(), mask.raw_data(), n, flags.data_ptr<std::int64_t>(),
                          pos.data_ptr<std::int64_t>(), scratch.raw_data(), bytes, &count));
  Tensor out = device_empty({count}, kInt64, device);
  if (count > 0)
    CT_CUDA_CHECK(
        name, kernels::nonzero_scatter(flags.data_ptr<std::int64_t>(), pos.data_ptr<std::int64_t>(),
                                       n, out.data_ptr<std::int64_t>()));
  return out;
}

Tensor topk(const Tensor& x, std::int64_t k, bool largest, Tensor* indices) {
  constexpr std::string_view name = "topk";
  check_operand(name, x, "input");
  check_contiguous(name, x, "input");
  CT_CHECK(x.dim() == 2, "{}: expected an input [rows, n], got {}", name, to_string(x.shape()));
  const std::int64_t rows = x.size(0), n = x.size(1);
  CT_CHECK(k >= 0 && k <= n, "{}: expected k in [0, {}], got {}", name, n, k);
  const Device device = x.device();
  Tensor values = device_empty({rows, k}, x.dtype(), device);
  Tensor idx = device_empty({rows, k}, kInt64, device);
  if (rows > 0 && k > 0) {
    DeviceScope scope(name, device);
    CT_CUDA_CHECK(name, kernels::topk(x.dtype(), x.raw_data(), values.raw_data(),
                                      idx.data_ptr<std::int64_t>(), rows, n, k, largest));
  }
  if (indices) *indices = idx;
  return values;
}

}  // namespace convtape::cuda
