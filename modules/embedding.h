// Embedding: a lookup table of num_embeddings vectors of size embedding_dim, PyTorch's
// nn.Embedding without max_norm, scale_grad_by_freq and sparse:
//   indices int64 [*I] -> y [*I, embedding_dim] (ops/embedding.h)
// The parameter weight [num_embeddings, embedding_dim] is drawn from N(0, 1) (from the given
// generator, or the default one); with padding_idx (negative: counted from the end, stored
// wrapped as PyTorch's) its row is zeroed at construction and never receives a gradient.
// from_pretrained wraps a given 2-d tensor (shared, not copied; its padding row is left as it
// is, as PyTorch's), frozen (requires_grad false) unless freeze is false.
// Printout: "Embedding(10, 3)" or "Embedding(10, 3, padding_idx=9)".
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "core/random.h"
#include "modules/module.h"

namespace convtape::nn {

class Embedding : public Module {
 public:
  Embedding(std::int64_t num_embeddings, std::int64_t embedding_dim,
            std::optional<std::int64_t> padding_idx = std::nullopt, Generator* gen = nullptr);

  static std::shared_ptr<Embedding> from_pretrained(
      const Tensor& embeddings, bool freeze = true,
      std::optional<std::int64_t> padding_idx = std::nullopt);

  Tensor forward(const Tensor& indices) override;
  std::string type_name() const override { return "Embedding"; }
  std::string extra_repr() const override;
  // weight ~ N(0, 1), the padding row zeroed.
  void reset_parameters(Generator* gen = nullptr);

  std::int64_t num_embeddings() const { return num_embeddings_; }
  std::int64_t embedding_dim() const { return embedding_dim_; }
  std::optional<std::int64_t> padding_idx() const { return padding_idx_; }  // in [0, V)
  Tensor weight() const { return weight_; }

 private:
  struct Pretrained {};
  Embedding(Pretrained, const Tensor& embeddings, bool freeze,
            std::optional<std::int64_t> padding_idx);

  std::int64_t num_embeddings_, embedding_dim_;
  std::optional<std::int64_t> padding_idx_;
  Tensor weight_;
};

}  // namespace convtape::nn
