// Pooling for any number of spatial dims, x [N, C, *S] -> y [N, C, *S']:
//   max_pool / avg_pool    max or mean over each window: kernel size, stride (default: the
//                          kernel), padding (symmetric or per-dim (low, high)), dilation (max
//                          only), ceil_mode; avg_pool's divisor counts the padding
//                          (count_include_pad, default) or not, or is a fixed divisor_override.
//   max_pool_with_indices  also the argmax of each window as an int64 index into the flattened
//                          input plane (PyTorch's return_indices).
//   max_unpool             the inverse scatter: y [N, C, *U] zero but y[n, c, indices[n, c, o]] =
//                          x[n, c, o]; U defaults to (S - 1) * stride - pad_lo - pad_hi +
//                          dilation * (kernel - 1) + 1.
//   adaptive_avg_pool / adaptive_max_pool(_with_indices)  to any output size: output o of a dim
//                          of size in covers [floor(o * in / out), ceil((o + 1) * in / out)).
//   global_avg_pool        the mean of every plane, [N, C, 1, ..., 1].
//   *1d / *2d / *3d        the same with the rank checked.
// Output size per spatial dim: floor((in + pad_lo + pad_hi - dilation * (k - 1) - 1) / stride) + 1;
// with ceil_mode the division rounds up, and a last window that would start in the high padding
// (o * stride >= in + pad_lo) is dropped (PyTorch's rule). Padding may be at most half the kernel
// on each side, so padding never wins a max and every average window holds an input element.
// Max: NaN propagates (the first NaN of a window is its max); ties send the gradient to the first
// maximal element in the window's row-major order. The argmax starts at the window's first element
// inside the input (PyTorch's rule), so a window of -inf values returns -inf with that element's
// index and sends its gradient there. A dilated window whose taps all miss the input (PyTorch
// returns -inf and an index outside the input for it) is refused.
// Limits: output sizes, window bounds, default unpool sizes and byte counts are exact in 64 bits
// (core/checked.h), and kernels visit only each window's overlap with the input, so arguments up to
// 2^63 - 1 either give PyTorch's answer quickly or are refused with "<op>: expected ..., got ..."
// naming the values that do not fit (a dilated kernel extent, out * in of adaptive windows, a
// default unpool size, an output past 64 bits or past the allocator).
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace convtape {

// Per-dim values may be given once (used for every spatial dim) or once per spatial dim.
class PoolOptions {
 public:
  PoolOptions() = default;
  explicit PoolOptions(std::int64_t kernel_size) : kernel_size_{kernel_size} {}
  explicit PoolOptions(std::vector<std::int64_t> kernel_size)
      : kernel_size_(std::move(kernel_size)) {}

  PoolOptions& kernel_size(std::int64_t k) { return kernel_size(std::vector<std::int64_t>{k}); }
  PoolOptions& kernel_size(std::vector<std::int64_t> k) {
    kernel_size_ = std::move(k);
    return *this;
  }
  // Unset (the default), the stride is the kernel size.
  PoolOptions& stride(std::int64_t s) { return stride(std::vector<std::int64_t>{s}); }
  PoolOptions& stride(std::vector<std::int64_t> s) {
    stride_ = std::move(s);
    return *this;
  }
  // Symmetric padding: p on both sides of every dim, or p[d] on both sides of dim d.
  PoolOptions& padding(std::int64_t p) { return padding(std::vector<std::int64_t>{p}); }
  PoolOptions& padding(const std::vector<std::int64_t>& p);
  // Per-side padding: one (low, high) pair for every dim, or one per dim.
  PoolOptions& padding(std::vector<std::pair<std::int64_t, std::int64_t>> p) {
    padding_ = std::move(p);
    return *this;
  }
  PoolOptions& dilation(std::int64_t d) { return dilation(std::vector<std::int64_t>{d}); }
  PoolOptions& dilation(std::vector<std::int64_t> d) {
    dilation_ = std::move(d);
    return *this;
  }
  PoolOptions& ceil_mode(bool on = true) {
    ceil_mode_ = on;
    return *this;
  }
  // avg_pool: whether padded positions count in the divisor (default true, as in PyTorch).
  PoolOptions& count_include_pad(bool on = true) {
    count_include_pad_ = on;
    return *this;
  }
  // avg_pool: divide every window sum by d instead.
  PoolOptions& divisor_override(std::int64_t d) {
    divisor_override_ = d;
    return *this;
  }

  const std::vector<std::int64_t>& kernel_size() const { return kernel_size_; }
  const std::vector<std::int64_t>& stride() const { return stride_; }
  const std::vector<std::pair<std::int64_t, std::int64_t>>& padding() const { return padding_; }
  const std::vector<std::int64_t>& dilation() const { return dilation_; }
  bool ceil_mode() const { return ceil_mode_; }
  bool count_include_pad() const { return count_include_pad_; }
  const std::optional<std::int64_t>& divisor_override() const { return divisor_override_; }

 private:
  std::vector<std::int64_t> kernel_size_;
  std::vector<std::int64_t> stride_;  // empty: the kernel size
  std::vector<std::pair<std::int64_t, std::int64_t>> padding_{{0, 0}};
  std::vector<std::int64_t> dilation_{1};
  bool ceil_mode_ = false;
  bool count_include_pad_ = true;
  std::optional<std::int64_t> divisor_override_;
};

// The values of a max pooling and, per output, the flat index of its argmax within the input
// plane (int64, same shape as values).
struct PoolWithIndices {
  Tensor values;
  Tensor indices;
};

Tensor max_pool(const Tensor& x, const PoolOptions& options);
Tensor max_pool1d(const Tensor& x, const PoolOptions& options);
Tensor max_pool2d(const Tensor& x, const PoolOptions& options);
Tensor max_pool3d(const Tensor& x, const PoolOptions& options);
PoolWithIndices max_pool_with_indices(const Tensor& x, const PoolOptions& options);

Tensor avg_pool(const Tensor& x, const PoolOptions& options);
Tensor avg_pool1d(const Tensor& x, const PoolOptions& options);
Tensor avg_pool2d(const Tensor& x, const PoolOptions& options);
Tensor avg_pool3d(const Tensor& x, const PoolOptions& options);

// x and indices [N, C, *S] as max_pool_with_indices returned them, the options of that pooling;
// output_size: the spatial size (or the whole shape [N, C, *U]) of the unpooled result, empty for
// the default. Each dim of it must lie strictly within stride of the default size.
Tensor max_unpool(const Tensor& x, const Tensor& indices, const PoolOptions& options,
                  const Shape& output_size = {});
Tensor max_unpool1d(const Tensor& x, const Tensor& indices, const PoolOptions& options,
                    const Shape& output_size = {});
Tensor max_unpool2d(const Tensor& x, const Tensor& indices, const PoolOptions& options,
                    const Shape& output_size = {});
Tensor max_unpool3d(const Tensor& x, const Tensor& indices, const PoolOptions& options,
                    const Shape& output_size = {});

// output_size: one value for every spatial dim or one per dim, each >= 1.
Tensor adaptive_avg_pool(const Tensor& x, const Shape& output_size);
Tensor adaptive_max_pool(const Tensor& x, const Shape& output_size);
PoolWithIndices adaptive_max_pool_with_indices(const Tensor& x, const Shape& output_size);
Tensor global_avg_pool(const Tensor& x);

}  // namespace convtape
