// Matrix products: matmul of 1-d, 2-d and batched (broadcast batch dims) operands, PyTorch rules.
//   [K] x [K] -> []       [M, K] x [K, N] -> [M, N]       [..., M, K] x [..., K, N] -> [..., M, N]
// A 1-d left operand is a row vector, a 1-d right operand a column vector; that dim is dropped.
#pragma once

#include "core/tensor.h"

namespace convtape {

Tensor matmul(const Tensor& a, const Tensor& b);

// y = x w^T + b (PyTorch's F.linear): x [..., in_features], w [out_features, in_features], b
// [out_features] or undefined -> [..., out_features]. One node on the tape: the gradients are
// dy w, dy^T x (in w's layout, no transposed copy) and the sum of dy over rows.
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b = Tensor());

}  // namespace convtape
