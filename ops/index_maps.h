// Index maps as ops on the tape, for the backward closures that scatter or gather at fixed int64
// indices (index_select and embedding; max pooling, max_unpool and adaptive max pooling; topk and
// sort). Each map's gradient is its adjoint at the same indices, whose gradient is the map again,
// so every derivative of these ops, to any order, is one of the pair. Internal to the library.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace convtape::detail {

// Zeros of src's shape with dim resized to n, into which src's slices along dim are summed at
// the 1-d int64 index (values in [0, n), checked by the caller; repeats add up):
// out[..., index[j], ...] += src[..., j, ...]. It records, and its gradient is
// index_select(dout, dim, index), whose own gradient is this op again: every derivative of an
// index_select, to any order, is one of the two.
Tensor index_add_into_zeros(const Tensor& src, std::int64_t dim, const Tensor& index,
                            std::int64_t n);

// Zeros [N, C, *plane] into which src [N, C, *m] is summed at the per-plane int64 indices
// [N, C, *m] (backend::index_scatter with accumulate; negative indices are skipped), and its
// adjoint, the gather of src [N, C, *plane] at the indices.
Tensor plane_scatter(const Tensor& src, const Tensor& indices, const Shape& plane);
Tensor plane_gather(const Tensor& src, const Tensor& indices);

}  // namespace convtape::detail
