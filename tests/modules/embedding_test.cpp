// Tests of modules/embedding: the weight's name, shape and N(0, 1) initialisation (from the given
// generator), the padding row zeroed and without gradient (negative padding_idx wrapped),
// from_pretrained (shared weight, frozen or not, padding row kept), forward equal to the
// functional lookup, the state-dict round trip, the printouts, and one test per error message.
#include <cmath>
#include <string>
#include <vector>

#include "modules/embedding.h"
#include "ops/embedding.h"
#include "support/test_util.h"

namespace {

using namespace convtape;
using ct_test::equal;

TEST_CASE("Embedding: weight, initialisation, forward and printout") {
  Generator gen(181);
  nn::Embedding emb(1000, 8, std::nullopt, &gen);
  const auto named = emb.named_parameters();
  REQUIRE(named.size() == 1);
  CHECK(named[0].first == "weight");
  CHECK(emb.weight().shape() == Shape{1000, 8});
  CHECK(emb.weight().requires_grad());
  // N(0, 1): the sample mean and variance of 8000 draws.
  const double m = mean(emb.weight()).item();
  const double var = mean(emb.weight() * emb.weight()).item() - m * m;
  CHECK(std::abs(m) < 0.05);
  CHECK(std::abs(var - 1.0) < 0.1);
  CHECK(emb.str() == "Embedding(1000, 8)");
  const Tensor idx = from_vector(std::vector<std::int64_t>{3, 999, 3, 0, 7, 1}, {2, 3});
  const Tensor y = emb(idx);
  CHECK(y.shape() == Shape{2, 3, 8});
  CHECK(equal(y, embedding(idx, emb.weight())));
  Generator again(181);
  nn::Embedding same(1000, 8, std::nullopt, &again);
  CHECK(equal(same.weight(), emb.weight()));
  nn::Embedding copy(1000, 8);
  copy.load_state_dict(emb.state_dict());
  CHECK(equal(copy(idx), y));
}

TEST_CASE("Embedding: the padding row is zero and gets no gradient") {
  manual_seed(182);
  nn::Embedding emb(5, 3, -2);  // row 3
  REQUIRE(emb.padding_idx() == 3);
  CHECK(emb.str() == "Embedding(5, 3, padding_idx=3)");
  CHECK(equal(narrow(emb.weight(), 0, 3, 1), zeros({1, 3})));
  CHECK_FALSE(equal(narrow(emb.weight(), 0, 2, 1), zeros({1, 3})));
  const Tensor idx = from_vector(std::vector<std::int64_t>{3, 1, 3}, {3});
  sum(emb(idx) * 2.0).backward();
  CHECK(equal(emb.weight().grad(), tensor({0, 0, 0, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {5, 3})));
}

TEST_CASE("Embedding::from_pretrained: shared weight, frozen by default") {
  const Tensor table = tensor({1, 2, 3, 4, 5, 6}, {3, 2});
  const auto frozen = nn::Embedding::from_pretrained(table);
  CHECK(frozen->num_embeddings() == 3);
  CHECK(frozen->embedding_dim() == 2);
  CHECK_FALSE(frozen->weight().requires_grad());
  CHECK(frozen->num_parameters(/*trainable_only=*/true) == 0);
  CHECK(frozen->weight().storage() == table.storage());  // shared, as PyTorch's
  CHECK(equal((*frozen)(from_vector(std::vector<std::int64_t>{2}, {1})), tensor({5, 6}, {1, 2})));
  const auto tuned = nn::Embedding::from_pretrained(table, /*freeze=*/false, 0);
  CHECK(tuned->weight().requires_grad());
  CHECK(tuned->padding_idx() == 0);
  // The padding row of a pretrained table is left as it is; it still gets no gradient.
  const Tensor y = (*tuned)(from_vector(std::vector<std::int64_t>{0, 1}, {2}));
  CHECK(equal(y, tensor({1, 2, 3, 4}, {2, 2})));
  sum(y).backward();
  CHECK(equal(tuned->weight().grad(), tensor({0, 0, 1, 1, 0, 0}, {3, 2})));
  CHECK(tuned->str() == "Embedding(3, 2, padding_idx=0)");
}

TEST_CASE("Embedding: errors") {
  CT_REQUIRE_ERROR(nn::Embedding(0, 3),
                   "Embedding: expected num_embeddings > 0 and embedding_dim > 0, got 0 and 3");
  CT_REQUIRE_ERROR(nn::Embedding(4, 3, 4),
                   "Embedding: expected padding_idx in [-4, 4) (num_embeddings = 4), got 4");
  CT_REQUIRE_ERROR(nn::Embedding::from_pretrained(ones({3})),
                   "Embedding::from_pretrained: expected a 2-d floating-point tensor "
                   "[num_embeddings, embedding_dim], got float32 of shape [3]");
  CT_REQUIRE_ERROR(nn::Embedding::from_pretrained(Tensor()), "got an undefined one");
  nn::Embedding emb(4, 3);
  CT_REQUIRE_ERROR(emb(from_vector(std::vector<std::int64_t>{4}, {1})),
                   "embedding: expected indices in [0, 4)");
}

}  // namespace
