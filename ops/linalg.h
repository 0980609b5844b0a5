// Matrix products: matmul of 1-d, 2-d and batched (broadcast batch dims) operands, PyTorch rules.
//   [K] x [K] -> []       [M, K] x [K, N] -> [M, N]       [..., M, K] x [..., K, N] -> [..., M, N]
// A 1-d left operand is a row vector, a 1-d right operand a column vector; that dim is dropped.
#pragma once

#include "core/tensor.h"

namespace convtape {

Tensor matmul(const Tensor& a, const Tensor& b);

}  // namespace convtape
