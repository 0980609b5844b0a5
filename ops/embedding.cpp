// embedding: a gather of weight rows by the flattened indices (backend::index_select), recorded as
// one node whose backward sums dy's rows into the weight's (backend::index_add) and leaves the
// padding row at zero; for create_graph, the sum is index_add_into_zeros, an op that records.
// See embedding.h.
#include "ops/embedding.h"

#include "core/autograd.h"
#include "core/checked.h"
#include "ops/backend.h"
#include "ops/compare.h"
#include "ops/detail.h"
#include "ops/factory.h"
#include "ops/index_maps.h"
#include "ops/shape.h"

namespace convtape {

std::int64_t embedding_padding_index(std::string_view op, std::int64_t padding_idx,
                                     std::int64_t num_embeddings) {
  CT_CHECK(padding_idx >= -num_embeddings && padding_idx < num_embeddings,
           "{}: expected padding_idx in [-{}, {}) (num_embeddings = {}), got {}", op,
           num_embeddings, num_embeddings, num_embeddings, padding_idx);
  return padding_idx < 0 ? padding_idx + num_embeddings : padding_idx;
}

Tensor embedding(const Tensor& indices, const Tensor& weight,
                 std::optional<std::int64_t> padding_idx) {
  detail::check_defined("embedding", indices, "indices");
  detail::check_defined("embedding", weight, "weight");
  CT_CHECK(indices.dtype() == kInt64, "embedding: expected int64 indices, got {} of shape {}",
           dtype_name(indices.dtype()), to_string(indices.shape()));
  CT_CHECK(weight.is_floating_point() && weight.dim() == 2,
           "embedding: expected a floating-point weight [num_embeddings, embedding_dim], got {} "
           "of shape {}",
           dtype_name(weight.dtype()), to_string(weight.shape()));
  detail::check_same_device("embedding", {indices, weight});
  const std::int64_t v = weight.size(0), d = weight.size(1);
  const std::int64_t pad =
      padding_idx ? embedding_padding_index("embedding", *padding_idx, v) : std::int64_t{-1};
  const Tensor idx = reshape(indices, {indices.numel()}).contiguous();
  const OutOfRange bad = detail::find_out_of_range(idx, 0, v);
  CT_CHECK(!bad.found(),
           "embedding: expected indices in [0, {}) (num_embeddings), got {} at flat position {} of "
           "indices {}",
           v, bad.value, bad.position, to_string(indices.shape()));
  Shape out = indices.shape();
  out.push_back(d);
  checked::nbytes(out, dtype_size(weight.dtype()), "embedding");
  const std::int64_t m = idx.numel();
  Tensor y = m == 0 || d == 0
                 ? zeros(out, weight.options())
                 : reshape(backend::index_select(weight.detach().contiguous(), 1, v, d, idx), out)
                       .detach();
  record(y, "embedding", {weight}, /*saved=*/{idx},
         [v, d, m, pad](const Saved& s, const Tensor& dy, const GradMask&) {
           if (autograd::creating_graph()) {
             // The same sum as an op that records (its own gradient gathers the rows again); the
             // rows of padding indices are dropped first instead of zeroing the row after.
             Tensor rows = reshape(dy, {m, d});
             if (pad >= 0)
               rows = where(reshape(ne(s[0], static_cast<double>(pad)), {m, 1}), rows, 0.0);
             return std::vector<Tensor>{detail::index_add_into_zeros(rows, 0, s[0], v)};
           }
           if (m == 0 || d == 0) return std::vector<Tensor>{zeros({v, d}, dy.options())};
           Tensor g = reshape(
               backend::index_add(reshape(dy, {1, m, d}).contiguous(), 1, v, d, s[0]), {v, d});
           if (pad >= 0) narrow(g, 0, pad, 1).zero_();
           return std::vector<Tensor>{g};
         });
  return y;
}

}  // namespace convtape
