// CPU pooling kernels for any spatial rank, on contiguous planes p = (n, c) of x [N, C, *in]:
//   max:      y[p, o] = max_{r, valid} x[p, w(o, r)],  index[p, o] = flat in-plane argmax
//   avg:      y[p, o] = sum_{r, valid} x[p, w(o, r)] / divisor(o)
//   unpool:   y[p, index[p, o]] = x[p, o]  (zeros elsewhere)
// where the window of output o along dim d is w = o * stride - pad_lo + r * dilation for
// r in [0, kernel) (taps in the padding are skipped), or, for adaptive pooling, the input range
// [floor(o * in / out), ceil((o + 1) * in / out)).
// Max takes the first maximal element in the window's row-major order; a NaN wins over any number
// and the first NaN is kept. The argmax starts at the window's first element inside the input
// (PyTorch's rule), so a window of -inf values gives -inf and that element's index, and its
// gradient goes there; a window with no element inside the input (dilated taps that all land in
// the padding, which ops/pool.cpp refuses) gives -inf and index -1. Loops run over each window's
// overlap with the input, not over the nominal kernel, so a kernel of 2^62 costs what the input
// costs.
// Planes run in parallel (OpenMP); inner loops run along contiguous output lines and are compiled
// for AVX-512, AVX2 and plain x86-64; each op takes the path cpu::isa() names at its start
// (cpu/isa.h).
#pragma once

#include <cstdint>

#include "core/kernel_args.h"
#include "core/tensor.h"

namespace convtape::cpu {

using convtape::PoolGeometry;
using convtape::PoolResult;

// x [N, C, *in] contiguous -> values [N, C, *out] and, with_indices, int64 indices of that shape.
PoolResult max_pool_forward(const Tensor& x, const PoolGeometry& g, bool with_indices);
// x [N, C, *in] contiguous -> y [N, C, *out].
Tensor avg_pool_forward(const Tensor& x, const PoolGeometry& g);
// dy [N, C, *out] contiguous -> dx [N, C, *in]: the adjoint of avg_pool_forward.
Tensor avg_pool_backward(const Tensor& dy, const PoolGeometry& g);
// src [N, C, *m] and int64 indices of its shape (contiguous) -> [N, C, *plane]: zeros, then
// out[n, c, indices[n, c, o]] += src[n, c, o] (accumulate: max pooling's gradient) or
// = src[n, c, o] (max_unpool: a later duplicate overwrites). Negative indices are skipped; the
// others must lie in [0, numel(plane)).
Tensor index_scatter(const Tensor& src, const Tensor& indices, const Shape& plane, bool accumulate);
// src [N, C, *plane], int64 indices [N, C, *m] (contiguous) -> [N, C, *m]:
// out[n, c, o] = src[n, c, indices[n, c, o]] (0 for a negative index). The adjoint of
// index_scatter.
Tensor index_gather(const Tensor& src, const Tensor& indices);

}  // namespace convtape::cpu
