// CPU reductions over the middle axis of a contiguous tensor viewed as [outer, mid, inner]:
// sum (accumulated in double), max and min (NaN wins; the first extreme element wins ties, and its
// position along mid is returned as int64 when asked for). The front end permutes any set of
// reduced dims into that middle block.
#pragma once

#include <cstdint>

#include "core/kernel_args.h"
#include "core/tensor.h"

namespace convtape::cpu {

using convtape::Reduce;

// x contiguous with numel = outer * mid * inner; returns [outer, inner] (x's dtype). When indices
// is non-null (Max/Min), it receives the int64 [outer, inner] positions along mid.
Tensor reduce(Reduce op, const Tensor& x, std::int64_t outer, std::int64_t mid, std::int64_t inner,
              Tensor* indices = nullptr);

}  // namespace convtape::cpu

namespace convtape::cpu {
// Gradient of a max/min reduction: dy [outer, inner] scattered to [outer, mid, inner] at the
// positions in indices (int64 [outer, inner]); zero elsewhere.
Tensor reduce_scatter(const Tensor& dy, const Tensor& indices, std::int64_t outer, std::int64_t mid,
                      std::int64_t inner);
}  // namespace convtape::cpu
