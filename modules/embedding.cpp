// Embedding: the weight table, its initialisation with the padding row zeroed, from_pretrained,
// and forward through ops/embedding. See embedding.h.
#include "modules/embedding.h"

#include <fmt/format.h>

#include "core/autograd.h"
#include "modules/init.h"
#include "ops/embedding.h"
#include "ops/factory.h"
#include "ops/shape.h"

namespace convtape::nn {

Embedding::Embedding(std::int64_t num_embeddings, std::int64_t embedding_dim,
                     std::optional<std::int64_t> padding_idx, Generator* gen)
    : num_embeddings_(num_embeddings), embedding_dim_(embedding_dim) {
  CT_CHECK(num_embeddings > 0 && embedding_dim > 0,
           "Embedding: expected num_embeddings > 0 and embedding_dim > 0, got {} and {}",
           num_embeddings, embedding_dim);
  if (padding_idx)
    padding_idx_ = embedding_padding_index("Embedding", *padding_idx, num_embeddings);
  weight_ = register_parameter("weight", empty({num_embeddings, embedding_dim}));
  reset_parameters(gen);
}

Embedding::Embedding(Pretrained, const Tensor& embeddings, bool freeze,
                     std::optional<std::int64_t> padding_idx)
    : num_embeddings_(0), embedding_dim_(0) {
  CT_CHECK(embeddings.defined() && embeddings.dim() == 2 && embeddings.is_floating_point(),
           "Embedding::from_pretrained: expected a 2-d floating-point tensor [num_embeddings, "
           "embedding_dim], got {}",
           embeddings.defined() ? fmt::format("{} of shape {}", dtype_name(embeddings.dtype()),
                                              to_string(embeddings.shape()))
                                : std::string("an undefined one"));
  num_embeddings_ = embeddings.size(0);
  embedding_dim_ = embeddings.size(1);
  if (padding_idx)
    padding_idx_ = embedding_padding_index("Embedding", *padding_idx, num_embeddings_);
  weight_ = register_parameter("weight", embeddings.detach(), /*requires_grad=*/!freeze);
}

std::shared_ptr<Embedding> Embedding::from_pretrained(const Tensor& embeddings, bool freeze,
                                                      std::optional<std::int64_t> padding_idx) {
  return std::shared_ptr<Embedding>(new Embedding(Pretrained{}, embeddings, freeze, padding_idx));
}

void Embedding::reset_parameters(Generator* gen) {
  init::normal_(weight_, 0.0, 1.0, gen);
  if (padding_idx_) {
    NoGradGuard no_grad;
    narrow(weight_, 0, *padding_idx_, 1).zero_();
  }
}

Tensor Embedding::forward(const Tensor& indices) {
  return embedding(indices, weight_, padding_idx_);
}

std::string Embedding::extra_repr() const {
  std::string out = fmt::format("{}, {}", num_embeddings_, embedding_dim_);
  if (padding_idx_) out += fmt::format(", padding_idx={}", *padding_idx_);
  return out;
}

}  // namespace convtape::nn
