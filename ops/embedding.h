// Embedding lookup, PyTorch's torch.nn.functional.embedding without max_norm:
//   indices int64 of any shape [*I] (0-d included), weight [V, D] (V = num_embeddings) -> y [*I,
//   D], y[i, :] = weight[indices[i], :] dweight[v, :] = sum over the positions i with indices[i] =
//   v of dy[i, :], except the row padding_idx, which gets no gradient (its output rows are still
//   weight[padding_idx]).
// padding_idx may be negative, counting from the end (-1 is V - 1), as PyTorch's. The lookup is
// index_select on the flattened indices; an index outside [0, V) is an Error. float32 and float64
// weights, CPU and CUDA (the index_select / index_add kernels).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "core/tensor.h"

namespace convtape {

Tensor embedding(const Tensor& indices, const Tensor& weight,
                 std::optional<std::int64_t> padding_idx = std::nullopt);

// padding_idx as a row index in [0, num_embeddings) (a negative one counted from the end); the
// check and the message embedding and nn::Embedding share.
std::int64_t embedding_padding_index(std::string_view op, std::int64_t padding_idx,
                                     std::int64_t num_embeddings);

}  // namespace convtape
