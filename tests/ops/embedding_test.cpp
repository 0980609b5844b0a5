// Tests of ops/embedding: the lookup and its gradient against PyTorch 1.13 (tests/golden/norm.txt:
// repeated indices, padding_idx 2, -1 and 0, 2-d and 3-d index tensors), the op harness (float32
// against float64, CUDA against CPU, float64 gradcheck of the weight), exact small-integer cases
// (a 0-d index, empty indices, the padding row's forward value and zero gradient), and one test
// per error message.
#include <optional>
#include <string>
#include <vector>

#include "ops/embedding.h"
#include "support/op_check.h"
#include "support/test_util.h"

namespace {

using namespace convtape;
using ct_test::equal;
using ct_test::leaf;
using ct_test::OpCheck;

TEST_CASE("embedding: golden values from PyTorch", "[golden]") {
  const auto golden = ct_test::load_golden("norm.txt");
  const std::vector<std::pair<std::string, std::optional<std::int64_t>>> cases = {
      {"embedding", std::nullopt},
      {"embedding_pad2", 2},
      {"embedding_pad_neg1", -1},
      {"embedding_3d_idx", 0}};
  std::size_t in_file = 0;
  for (const auto& [name, c] : golden) in_file += name.rfind("embedding", 0) == 0 ? 1 : 0;
  CHECK(in_file == cases.size());
  for (const auto& [name, pad] : cases) {
    INFO(name);
    const ct_test::GoldenCase& c = golden.at(name);
    const Tensor w = c.at("w").clone().requires_grad_(true);
    const Tensor out = embedding(c.at("idx").to(kInt64), w, pad);
    CHECK(ct_test::allclose(out, c.at("out"), 0, 0));  // a copy: exact
    out.backward(c.at("g"));
    CHECK(ct_test::allclose(w.grad(), c.at("grad_w"), 1e-12, 1e-14));
  }
}

TEST_CASE("embedding: op harness over index shapes", "[ops][grad]") {
  manual_seed(161);
  for (const Shape& s : {Shape{5}, Shape{2, 3}, Shape{2, 2, 3}}) {
    INFO(ct_test::str(s));
    const Tensor idx = randint(0, 4, s, kInt64);
    OpCheck("embedding", [](const std::vector<Tensor>& v) { return embedding(v[1], v[0]); },
            {leaf({4, 3}), idx})
        .run();
  }
}

TEST_CASE("embedding: exact cases", "[ops]") {
  Tensor w = tensor({1, 2, 3, 4, 5, 6}, {3, 2}, kFloat64).requires_grad_(true);
  const Tensor idx = from_vector(std::vector<std::int64_t>{2, 0, 2, 1}, {2, 2});
  const Tensor y = embedding(idx, w, 2);
  CHECK(y.shape() == Shape{2, 2, 2});
  CHECK(equal(y, tensor({5, 6, 1, 2, 5, 6, 3, 4}, {2, 2, 2}, kFloat64)));  // the padding row too
  CHECK(y.grad_fn_name() == "embedding");
  y.backward(tensor({1, 1, 2, 2, 3, 3, 4, 4}, {2, 2, 2}, kFloat64));
  // Row 0 from position 1, row 1 from position 3; row 2 (padding) gets nothing.
  CHECK(equal(w.grad(), tensor({2, 2, 4, 4, 0, 0}, {3, 2}, kFloat64)));
  SECTION("without padding the repeated row accumulates") {
    w.zero_grad();
    embedding(idx, w).backward(tensor({1, 1, 2, 2, 3, 3, 4, 4}, {2, 2, 2}, kFloat64));
    CHECK(equal(w.grad(), tensor({2, 2, 4, 4, 4, 4}, {3, 2}, kFloat64)));
  }
  SECTION("a 0-d index gives one row; empty indices give an empty result") {
    const Tensor one = embedding(full({}, 1, kInt64), w);
    CHECK(one.shape() == Shape{2});
    CHECK(equal(one, tensor({3, 4}, kFloat64)));
    const Tensor none = embedding(zeros({0, 3}, kInt64), w);
    CHECK(none.shape() == Shape{0, 3, 2});
    w.zero_grad();
    sum(none).backward();
    CHECK(equal(w.grad(), zeros({3, 2}, kFloat64)));
  }
}

TEST_CASE("embedding: errors", "[ops][errors]") {
  const Tensor w = ones({4, 3});
  const Tensor idx = from_vector(std::vector<std::int64_t>{0, 5}, {2});
  CT_REQUIRE_ERROR(embedding(idx, w),
                   "embedding: expected indices in [0, 4) (num_embeddings), got 5 at flat position "
                   "1 of indices [2]");
  CT_REQUIRE_ERROR(embedding(from_vector(std::vector<std::int64_t>{-1}, {1}), w),
                   "got -1 at flat position 0");
  CT_REQUIRE_ERROR(embedding(ones({2}), w), "embedding: expected int64 indices, got float32");
  CT_REQUIRE_ERROR(embedding(zeros({2}, kInt64), ones({4})),
                   "embedding: expected a floating-point weight [num_embeddings, embedding_dim], "
                   "got float32 of shape [4]");
  CT_REQUIRE_ERROR(embedding(zeros({2}, kInt64), zeros({4, 3}, kInt64)),
                   "expected a floating-point weight");
  CT_REQUIRE_ERROR(embedding(zeros({2}, kInt64), w, 4),
                   "embedding: expected padding_idx in [-4, 4) (num_embeddings = 4), got 4");
  CT_REQUIRE_ERROR(embedding(zeros({2}, kInt64), w, -5), "got -5");
  CT_REQUIRE_ERROR(embedding(Tensor(), w), "embedding: expected a defined indices tensor");
}

}  // namespace
