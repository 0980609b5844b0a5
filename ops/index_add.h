// index_select's adjoint as an op on the tape, for the backward closures that scatter rows (those
// of index_select and embedding). Internal to the library.
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

}  // namespace convtape::detail
