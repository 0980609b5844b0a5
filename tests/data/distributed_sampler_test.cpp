// DistributedSampler: shards that are equal in size, cover every index and are disjoint up to
// padding, padded and drop_last sizes, orders fixed by (seed, epoch), a 1-replica sampler that
// reproduces DataLoader's own shuffle, rank-strided order without shuffling, a DataLoader that
// batches a sampler's indices, and every argument error.
#include <algorithm>
#include <map>
#include <numeric>
#include <set>
#include <utility>

#include "data/dataloader.h"
#include "data/distributed_sampler.h"
#include "support/test_util.h"

using namespace convtape;
using convtape::data::Batch;
using convtape::data::DataLoader;
using convtape::data::DataLoaderOptions;
using convtape::data::DistributedSampler;
using convtape::data::DistributedSamplerOptions;
using convtape::data::TensorDataset;

namespace {

// n samples: data row i = [i], target i.
TensorDataset numbered(std::int64_t n) {
  std::vector<float> data;
  std::vector<std::int64_t> target;
  for (std::int64_t i = 0; i < n; ++i) {
    data.push_back(static_cast<float>(i));
    target.push_back(i);
  }
  return TensorDataset(from_vector(data, {n, 1}), from_vector(target, {n}));
}

DistributedSampler sampler(std::int64_t n, std::int64_t replicas, std::int64_t rank,
                           bool drop_last = false, std::uint64_t seed = 0) {
  return DistributedSampler(
      n, DistributedSamplerOptions().num_replicas(replicas).rank(rank).drop_last(drop_last).seed(
             seed));
}

std::int64_t ceil_div(std::int64_t a, std::int64_t b) {
  return (a + b - 1) / b;
}

}  // namespace

TEST_CASE("shards are equal, cover every index, and overlap only in padding", "[sampler]") {
  const std::vector<std::pair<std::int64_t, std::int64_t>> cases = {
      {12, 4}, {10, 4}, {7, 3}, {1, 1}, {5, 1}, {3, 5}, {1, 4}, {100, 7}, {0, 3}};
  for (const auto& [n, r] : cases) {
    INFO("N = " << n << ", R = " << r);
    const std::int64_t per_rank = ceil_div(n, r), padding = per_rank * r - n;
    for (std::int64_t epoch = 0; epoch < 2; ++epoch) {
      std::map<std::int64_t, std::int64_t> count;
      for (std::int64_t rank = 0; rank < r; ++rank) {
        const DistributedSampler s = sampler(n, r, rank);
        CHECK(s.size() == per_rank);
        CHECK(s.total_size() == per_rank * r);
        const auto shard = s.indices(epoch);
        CHECK(static_cast<std::int64_t>(shard.size()) == per_rank);
        for (const std::int64_t i : shard) {
          CHECK((i >= 0 && i < n));
          ++count[i];
        }
      }
      // Union: every index. Disjoint: each once, except the `padding` repeated ones.
      CHECK(static_cast<std::int64_t>(count.size()) == n);
      std::int64_t extra = 0;
      for (const auto& [i, c] : count) extra += c - 1;
      CHECK(extra == padding);
      if (padding == 0) {
        for (const auto& [i, c] : count) CHECK(c == 1);
      }
    }
  }
}

TEST_CASE("drop_last trims to floor(N / R) per rank, disjoint", "[sampler]") {
  const std::vector<std::pair<std::int64_t, std::int64_t>> cases = {
      {10, 4}, {12, 4}, {7, 3}, {4, 4}, {100, 7}};
  for (const auto& [n, r] : cases) {
    INFO("N = " << n << ", R = " << r);
    std::set<std::int64_t> seen;
    for (std::int64_t rank = 0; rank < r; ++rank) {
      const DistributedSampler s = sampler(n, r, rank, /*drop_last=*/true);
      CHECK(s.size() == n / r);
      CHECK(s.total_size() == n / r * r);
      for (const std::int64_t i : s.indices(3)) CHECK(seen.insert(i).second);
    }
    CHECK(static_cast<std::int64_t>(seen.size()) == n / r * r);
  }
  // Sizes as PyTorch gives them: 10 over 4 is 3 per rank padded, 2 per rank trimmed.
  CHECK(sampler(10, 4, 0).size() == 3);
  CHECK(sampler(10, 4, 0, true).size() == 2);
}

TEST_CASE("padding repeats the epoch's list from its start", "[sampler]") {
  // Unshuffled, 10 over 4: 0..9 padded with 0, 1; rank r takes positions r, r + 4, r + 8.
  const auto opts = [](std::int64_t rank) {
    return DistributedSamplerOptions().num_replicas(4).rank(rank).shuffle(false);
  };
  CHECK(DistributedSampler(10, opts(0)).indices(0) == std::vector<std::int64_t>{0, 4, 8});
  CHECK(DistributedSampler(10, opts(1)).indices(0) == std::vector<std::int64_t>{1, 5, 9});
  CHECK(DistributedSampler(10, opts(2)).indices(0) == std::vector<std::int64_t>{2, 6, 0});
  CHECK(DistributedSampler(10, opts(3)).indices(0) == std::vector<std::int64_t>{3, 7, 1});
  // Fewer samples than replicas: the list repeats as often as needed.
  CHECK(DistributedSampler(2, opts(2)).indices(0) == std::vector<std::int64_t>{0});
  CHECK(DistributedSampler(2, opts(3)).indices(0) == std::vector<std::int64_t>{1});

  // Shuffled, the padding is the permutation's own start.
  const auto perm = data::epoch_permutation(10, 5, 2);
  const auto last = sampler(10, 4, 3, false, 5).indices(2);
  CHECK(last == std::vector<std::int64_t>{perm[3], perm[7], perm[1]});
}

TEST_CASE("without shuffle, rank r takes r, r + R, r + 2R, ... of 0..N-1", "[sampler]") {
  for (std::int64_t rank = 0; rank < 3; ++rank) {
    const DistributedSampler s(
        9, DistributedSamplerOptions().num_replicas(3).rank(rank).shuffle(false).seed(99));
    const std::vector<std::int64_t> expected = {rank, rank + 3, rank + 6};
    CHECK(s.indices(0) == expected);
    CHECK(s.indices(5) == expected);  // the epoch does not matter
  }
  std::vector<std::int64_t> all(11);
  std::iota(all.begin(), all.end(), 0);
  CHECK(DistributedSampler(11, DistributedSamplerOptions().shuffle(false)).indices(0) == all);
}

TEST_CASE("shuffled shards depend only on the seed and the epoch", "[sampler]") {
  const DistributedSampler a = sampler(50, 4, 1, false, 42), b = sampler(50, 4, 1, false, 42);
  const DistributedSampler c = sampler(50, 4, 1, false, 43);
  CHECK(a.indices(0) == b.indices(0));
  CHECK(a.indices(7) == b.indices(7));
  CHECK(a.indices(0) == a.indices(0));
  CHECK(a.indices(0) != a.indices(1));  // a new order each epoch
  CHECK(a.indices(0) != c.indices(0));  // another seed, another order
  // Shuffled, a shard is not simply every R-th index.
  const auto unshuffled =
      DistributedSampler(50, DistributedSamplerOptions().num_replicas(4).rank(1).shuffle(false))
          .indices(0);
  CHECK(a.indices(0) != unshuffled);
  // The default options shuffle with seed 0.
  CHECK(DistributedSampler(50).indices(3) == data::epoch_permutation(50, 0, 3));
}

TEST_CASE("one replica gives exactly DataLoader's own shuffled order", "[sampler]") {
  for (const std::uint64_t seed : {0ULL, 1ULL, 42ULL}) {
    const DistributedSampler s(23, DistributedSamplerOptions().seed(seed));
    DataLoader loader(numbered(23), DataLoaderOptions().shuffle(true).seed(seed));
    for (std::int64_t epoch = 0; epoch < 4; ++epoch) CHECK(s.indices(epoch) == loader.order(epoch));
  }
  // The permutation pinned in the DataLoader tests.
  CHECK(DistributedSampler(10, DistributedSamplerOptions().seed(42)).indices(0) ==
        std::vector<std::int64_t>{9, 6, 2, 0, 1, 4, 3, 8, 5, 7});
}

TEST_CASE("a DataLoader with a sampler batches exactly the sampler's indices", "[sampler]") {
  const TensorDataset ds = numbered(10);
  for (std::int64_t rank = 0; rank < 3; ++rank) {
    INFO("rank " << rank);
    auto s = std::make_shared<DistributedSampler>(
        ds.size(), DistributedSamplerOptions().num_replicas(3).rank(rank).seed(1));
    DataLoader loader(ds, DataLoaderOptions().batch_size(3).sampler(s));
    REQUIRE(s->size() == 4);
    CHECK(loader.size() == 2);  // ceil(4 / 3)
    for (std::int64_t epoch = 0; epoch < 3; ++epoch) {
      loader.set_epoch(epoch);
      std::vector<std::int64_t> seen, sizes;
      for (const Batch& b : loader) {
        const auto t = b.target.to_vector<std::int64_t>();
        const auto d = b.data.to_vector<float>();
        REQUIRE(d.size() == t.size());
        for (std::size_t j = 0; j < t.size(); ++j) CHECK(d[j] == static_cast<float>(t[j]));
        sizes.push_back(b.target.size(0));
        seen.insert(seen.end(), t.begin(), t.end());
      }
      CHECK(sizes == std::vector<std::int64_t>{3, 1});
      CHECK(seen == s->indices(epoch));
      CHECK(loader.order(epoch) == s->indices(epoch));
    }
    CHECK(loader.order(0) != loader.order(1));  // set_epoch reshuffles the shard

    DataLoader dropped(ds, DataLoaderOptions().batch_size(3).drop_last(true).sampler(s));
    CHECK(dropped.size() == 1);
  }
}

TEST_CASE("DistributedSampler and DataLoader refuse bad arguments", "[sampler]") {
  CT_REQUIRE_ERROR(DistributedSampler(10, DistributedSamplerOptions().num_replicas(0)),
                   "DistributedSampler: expected num_replicas >= 1, got 0");
  CT_REQUIRE_ERROR(DistributedSampler(10, DistributedSamplerOptions().num_replicas(4).rank(4)),
                   "DistributedSampler: expected rank in [0, num_replicas) = [0, 4), got 4");
  CT_REQUIRE_ERROR(DistributedSampler(10, DistributedSamplerOptions().num_replicas(4).rank(-1)),
                   "DistributedSampler: expected rank in [0, num_replicas) = [0, 4), got -1");
  CT_REQUIRE_ERROR(DistributedSampler(-1),
                   "DistributedSampler: expected a dataset size >= 0, got -1");
  CT_REQUIRE_ERROR(
      DistributedSampler(3, DistributedSamplerOptions().num_replicas(4).rank(0).drop_last(true)),
      "DistributedSampler: expected a dataset of at least num_replicas = 4 samples with "
      "drop_last (each rank gets floor(N / num_replicas) of them), got N = 3");
  CT_REQUIRE_ERROR(DistributedSampler(10).indices(-1),
                   "DistributedSampler: expected epoch >= 0, got -1");
  CT_REQUIRE_ERROR(DataLoader(numbered(4), DataLoaderOptions().shuffle(true).sampler(
                                               std::make_shared<DistributedSampler>(4))),
                   "DataLoader: expected shuffle(false) with a sampler (the sampler shuffles), got "
                   "shuffle(true)");

  // A sampler whose indices disagree with its size(), or point outside the dataset.
  struct Liar : data::Sampler {
    std::vector<std::int64_t> indices(std::int64_t) const override { return {0, 1}; }
    std::int64_t size() const override { return 5; }
  };
  DataLoader lied(numbered(4), DataLoaderOptions().sampler(std::make_shared<Liar>()));
  CT_REQUIRE_ERROR(lied.begin(),
                   "DataLoader: expected the sampler's indices(0) to hold its size() = 5 "
                   "indices, got 2");
  struct Beyond : data::Sampler {
    std::vector<std::int64_t> indices(std::int64_t) const override { return {7}; }
    std::int64_t size() const override { return 1; }
  };
  DataLoader outside(numbered(4), DataLoaderOptions().sampler(std::make_shared<Beyond>()));
  CT_REQUIRE_ERROR(*outside.begin(), "DataLoader: expected sample indices in [0, 4), got 7");
}
