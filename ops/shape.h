// Shape ops: views where the data need not move (reshape of contiguous data, view, flatten,
// permute, transpose, squeeze, unsqueeze, narrow, slice, expand), copies where it must
// (index_select, cat, stack, pad in every mode, flip, rot90). All are differentiable.
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace convtape {

// One extent may be -1 (inferred). A view when x is contiguous, a copy otherwise.
Tensor reshape(const Tensor& x, const Shape& shape);
// As reshape, but x must be contiguous (never copies).
Tensor view(const Tensor& x, const Shape& shape);
Tensor flatten(const Tensor& x, std::int64_t start_dim = 0, std::int64_t end_dim = -1);
Tensor permute(const Tensor& x, const std::vector<std::int64_t>& dims);
Tensor transpose(const Tensor& x, std::int64_t dim0, std::int64_t dim1);
Tensor squeeze(const Tensor& x);                    // drops every size-1 dim
Tensor squeeze(const Tensor& x, std::int64_t dim);  // drops dim if its size is 1
Tensor unsqueeze(const Tensor& x, std::int64_t dim);
Tensor narrow(const Tensor& x, std::int64_t dim, std::int64_t start, std::int64_t length);
// Python-style x[start:end:step] along dim: negative indices count from the end, bounds clamp, step
// > 0.
Tensor slice(const Tensor& x, std::int64_t dim, std::int64_t start, std::int64_t end,
             std::int64_t step = 1);
// Broadcasts size-1 dims (and new leading dims) to shape; -1 keeps a dim. A view with stride 0.
Tensor expand(const Tensor& x, const Shape& shape);
// Rows of x along dim picked by a 1-d int64 index.
Tensor index_select(const Tensor& x, std::int64_t dim, const Tensor& index);
Tensor cat(const std::vector<Tensor>& tensors, std::int64_t dim = 0);
Tensor stack(const std::vector<Tensor>& tensors, std::int64_t dim = 0);
// Constant padding. widths holds one (low, high) pair per trailing dim of x, in dim order:
// for an [N, C, H, W] tensor, {{1, 1}, {2, 0}} pads H by 1 on each side and W by 2 on the low side.
// Widths are >= 0 (PyTorch's negative widths, which crop, are refused).
Tensor pad(const Tensor& x, const std::vector<std::pair<std::int64_t, std::int64_t>>& widths,
           double value = 0.0);
// PyTorch's F.pad modes. Along a dim of size n, padded position p (p < 0 below, p >= n above) reads
//   Constant   value
//   Reflect    x[-p] below, x[2 (n - 1) - p] above (the edge itself is not repeated): widths < n
//   Replicate  x[clamp(p, 0, n - 1)] (the edge repeated): n >= 1 where a width is > 0
//   Circular   x[p mod n] (wrapping around): widths <= n
// widths as above (dim order, >= 0). A non-constant mode takes no value (PyTorch's rule: value must
// stay 0). Unlike F.pad, any number of trailing dims may be padded, whatever x's rank; the
// non-constant modes are index_select per padded dim, so their gradient sums the gradient of every
// copy of an element back into it. "zeros" (the conv layers' padding_mode) is Constant with 0.
enum class PadMode { Constant, Reflect, Replicate, Circular };
Tensor pad(const Tensor& x, const std::vector<std::pair<std::int64_t, std::int64_t>>& widths,
           PadMode mode, double value = 0.0);
// "constant", "reflect", "replicate" or "circular" (F.pad's names); op names the caller in the
// error of any other name.
PadMode pad_mode_from_string(std::string_view name, std::string_view op = "pad");
// The name pad_mode_from_string maps to mode.
const char* pad_mode_name(PadMode mode);
Tensor flip(const Tensor& x, const std::vector<std::int64_t>& dims);
// Rotates by k * 90 degrees in the plane of dims, from the first towards the second (NumPy's
// rot90).
Tensor rot90(const Tensor& x, std::int64_t k = 1,
             std::pair<std::int64_t, std::int64_t> dims = {0, 1});

}  // namespace convtape
