// Comparison and selection ops, so that metrics (accuracy, IoU, ...) run as tensor ops.
//
// Masks. convtape has no bool dtype: a comparison returns a mask of its operands' dtype (float32,
// float64 or int64) holding 1 where true and 0 where false, so that sum(eq(pred, target)) counts
// and masks multiply. Every op that takes a mask (cond, mask, logical_*) reads nonzero as true,
// NaN included. Tensor-tensor ops take operands of one dtype (mixed dtypes are refused: convert
// with to(dtype)) and broadcast as add does; results are new contiguous tensors.
//
// Comparisons follow IEEE (and PyTorch): with a NaN operand every comparison is false except ne.
// A scalar operand is converted to the tensor's dtype first, as PyTorch converts it; for an int64
// tensor the comparison with a non-integral (or out-of-range, infinite, NaN) scalar is exact, e.g.
// lt(x, 2.5) is le(x, 2) (PyTorch would compare in float32 there).
//
// Gradients: comparisons, logical ops and the any / all / count_nonzero reductions are not
// differentiable (their results never require grad). where, maximum, minimum, masked_fill,
// masked_select and topk (values) are; the gradient of a broadcast operand is summed back to its
// shape.
//
// argmax / argmin (the int64 positions of the extremes along a dim) live with the reductions:
// ops/reduce.h.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace convtape {

// a op b elementwise over broadcast(a, b) -> mask of that shape.
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, double b);
Tensor ne(const Tensor& a, double b);
Tensor lt(const Tensor& a, double b);
Tensor le(const Tensor& a, double b);
Tensor gt(const Tensor& a, double b);
Tensor ge(const Tensor& a, double b);

// (a != 0) and / or (b != 0), over broadcast(a, b); not: x == 0. Masks of the operands' dtype.
Tensor logical_and(const Tensor& a, const Tensor& b);
Tensor logical_or(const Tensor& a, const Tensor& b);
Tensor logical_not(const Tensor& x);

// cond ? a : b elementwise over broadcast(cond, a, b); cond of any dtype (nonzero is true), a and
// b of one dtype, which the result has. A true select: an inf or NaN in the branch not taken never
// reaches the result or the gradient. da = dy where cond (0 elsewhere), db = dy where not cond,
// each summed to its operand's shape. A scalar branch is a 0-d tensor of the other's dtype.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor where(const Tensor& cond, const Tensor& a, double b);
Tensor where(const Tensor& cond, double a, const Tensor& b);

// Elementwise larger / smaller of a and b over broadcast(a, b); NaN when either is NaN. The
// gradient is PyTorch's: all of dy to the larger (smaller) operand, half to each where a == b,
// and all of dy to both where either is NaN.
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);

// x with value where mask is nonzero, over broadcast(x, mask) (as torch.masked_fill). dx = dy where
// the mask is 0, summed to x's shape. value must be representable in x's dtype (int64: finite and
// in range).
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);
// The elements of x where mask is nonzero, x and mask broadcast together, in row-major order ->
// 1-d [count]. dx: dy scattered back to those elements (summed where x was broadcast).
Tensor masked_select(const Tensor& x, const Tensor& mask);

// Values and their int64 positions along the dim (both of the output shape).
struct TopkResult {
  Tensor values;
  Tensor indices;
};

// The k largest (largest = false: smallest) elements of x along dim -> values and indices of x's
// shape with that dim k; 0 <= k <= x.size(dim) (k = 1 for a 0-d x). Always returned in order
// (sorted = false is accepted and changes nothing: any order is PyTorch's contract then). NaN
// ranks above every number; among equal values the lower position comes first (PyTorch leaves
// that choice unspecified, and its CPU and CUDA kernels differ). d values / dx: dy scattered to
// the indices, 0 elsewhere. O(n log k) per row on the CPU, O(n k) per row on CUDA.
TopkResult topk(const Tensor& x, std::int64_t k, std::int64_t dim = -1, bool largest = true,
                bool sorted = true);
// The whole dim in ascending (descending) order, stable (equal values keep their order, NaN last
// ascending, first descending): topk with k = x.size(dim). On CUDA O(n^2) per row.
TopkResult sort(const Tensor& x, std::int64_t dim = -1, bool descending = false);

// Reductions of x != 0 (no gradient): any / all -> masks of x's dtype (any of nothing is 0, all of
// nothing is 1), count_nonzero -> int64. The forms with dims reduce those dims (keepdim keeps them
// as size 1); the others the whole tensor, to a 0-d result.
Tensor any(const Tensor& x);
Tensor any(const Tensor& x, std::int64_t dim, bool keepdim = false);
Tensor all(const Tensor& x);
Tensor all(const Tensor& x, std::int64_t dim, bool keepdim = false);
Tensor count_nonzero(const Tensor& x);
Tensor count_nonzero(const Tensor& x, const std::vector<std::int64_t>& dims);

}  // namespace convtape
