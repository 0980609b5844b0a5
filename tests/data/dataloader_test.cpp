// DataLoader: batch counts with and without drop_last, each sample once per epoch, seeded orders
// that are fixed across machines and differ across seeds and epochs, batch shapes and contents
// (row copies for in-memory datasets, per-example gathers for others), normalisation, and a full
// Fashion-MNIST epoch where the data set is installed.
#include <algorithm>
#include <numeric>
#include <set>

#include "data/dataloader.h"
#include "support/test_util.h"

using namespace convtape;
using convtape::data::Batch;
using convtape::data::DataLoader;
using convtape::data::DataLoaderOptions;
using convtape::data::Normalize;
using convtape::data::TensorDataset;

namespace {

// n samples: data row i = [i, -i] (float32), target i (int64).
TensorDataset numbered(std::int64_t n) {
  std::vector<float> data;
  std::vector<std::int64_t> target;
  for (std::int64_t i = 0; i < n; ++i) {
    data.push_back(static_cast<float>(i));
    data.push_back(static_cast<float>(-i));
    target.push_back(i);
  }
  return TensorDataset(from_vector(data, {n, 2}), from_vector(target, {n}));
}

// The targets of one epoch, in the order the loader yields them; checks each batch's rows.
std::vector<std::int64_t> epoch_targets(DataLoader& loader) {
  std::vector<std::int64_t> seen;
  for (const Batch& b : loader) {
    const auto t = b.target.to_vector<std::int64_t>();
    const auto d = b.data.to_vector<float>();
    REQUIRE(d.size() == 2 * t.size());
    for (std::size_t j = 0; j < t.size(); ++j) {
      REQUIRE(d[2 * j] == static_cast<float>(t[j]));
      REQUIRE(d[2 * j + 1] == -static_cast<float>(t[j]));
    }
    seen.insert(seen.end(), t.begin(), t.end());
  }
  return seen;
}

// A dataset that is not held in memory: example i is a [2, 2] tensor full of i, target i.
class Computed : public data::Dataset {
 public:
  explicit Computed(std::int64_t n, std::int64_t odd = -1) : n_(n), odd_(odd) {}
  std::int64_t size() const override { return n_; }
  data::Example get(std::int64_t i) const override {
    const Shape shape = i == odd_ ? Shape{3} : Shape{2, 2};
    return {full(shape, static_cast<double>(i)), tensor({static_cast<double>(i)}, Shape{}, kInt64)};
  }

 private:
  std::int64_t n_, odd_;
};

}  // namespace

TEST_CASE("the number of batches and the last batch's shape follow drop_last", "[dataloader]") {
  const TensorDataset ds = numbered(10);
  DataLoader keep(ds, DataLoaderOptions().batch_size(3));
  DataLoader drop(ds, DataLoaderOptions().batch_size(3).drop_last(true));
  CHECK(keep.size() == 4);
  CHECK(drop.size() == 3);
  std::vector<std::int64_t> sizes;
  for (const Batch& b : keep) {
    CHECK(b.data.shape() == Shape{b.target.size(0), 2});
    CHECK(b.data.is_contiguous());
    sizes.push_back(b.target.size(0));
  }
  CHECK(sizes == std::vector<std::int64_t>{3, 3, 3, 1});
  sizes.clear();
  for (const Batch& b : drop) sizes.push_back(b.target.size(0));
  CHECK(sizes == std::vector<std::int64_t>{3, 3, 3});

  CHECK(DataLoader(ds, DataLoaderOptions().batch_size(5).drop_last(true)).size() == 2);
  CHECK(DataLoader(ds, DataLoaderOptions().batch_size(11).drop_last(true)).size() == 0);
  CHECK(DataLoader(ds, DataLoaderOptions().batch_size(11)).size() == 1);
  CHECK(DataLoader(ds).size() == 10);  // batch size 1 by default

  // Samples that hold no values still make batches of the right shape.
  DataLoader hollow(TensorDataset(zeros({4, 0}), arange(4, kInt64)),
                    DataLoaderOptions().batch_size(3));
  sizes.clear();
  for (const Batch& b : hollow) {
    CHECK(b.data.shape() == Shape{b.target.size(0), 0});
    sizes.push_back(b.target.size(0));
  }
  CHECK(sizes == std::vector<std::int64_t>{3, 1});

  DataLoader none(numbered(0), DataLoaderOptions().batch_size(4));
  CHECK(none.size() == 0);
  CHECK(none.begin() == none.end());
  CT_REQUIRE_ERROR(DataLoader(ds, DataLoaderOptions().batch_size(0)),
                   "DataLoader: expected batch_size >= 1, got 0");
}

TEST_CASE("every sample comes once per epoch, in order unless shuffled", "[dataloader]") {
  DataLoader ordered(numbered(23), DataLoaderOptions().batch_size(5));
  std::vector<std::int64_t> all(23);
  std::iota(all.begin(), all.end(), 0);
  CHECK(epoch_targets(ordered) == all);
  CHECK(epoch_targets(ordered) == all);

  DataLoader shuffled(numbered(23), DataLoaderOptions().batch_size(5).shuffle(true).seed(7));
  for (int epoch = 0; epoch < 3; ++epoch) {
    auto seen = epoch_targets(shuffled);
    CHECK(seen != all);
    std::sort(seen.begin(), seen.end());
    CHECK(seen == all);
  }
  CHECK(shuffled.epoch() == 3);
}

TEST_CASE("shuffled orders depend only on the seed and the epoch", "[dataloader]") {
  const auto opts = [](std::uint64_t seed) {
    return DataLoaderOptions().batch_size(4).shuffle(true).seed(seed);
  };
  DataLoader a(numbered(50), opts(42)), b(numbered(50), opts(42)), c(numbered(50), opts(43));
  const auto a0 = epoch_targets(a), a1 = epoch_targets(a);
  CHECK(epoch_targets(b) == a0);
  CHECK(epoch_targets(b) == a1);
  CHECK(a0 != a1);                // reshuffled every epoch
  CHECK(epoch_targets(c) != a0);  // another seed, another order
  CHECK(a.order(0) == a0);
  CHECK(a.order(1) == a1);

  // Resuming at epoch 1 repeats epoch 1's order.
  DataLoader resumed(numbered(50), opts(42));
  resumed.set_epoch(1);
  CHECK(epoch_targets(resumed) == a1);
  CHECK(resumed.epoch() == 2);

  // The same permutation on every machine: the generator and the shuffle are portable.
  DataLoader small(numbered(10), DataLoaderOptions().shuffle(true).seed(42));
  CHECK(small.order(0) == std::vector<std::int64_t>{9, 6, 2, 0, 1, 4, 3, 8, 5, 7});
  CHECK(small.order(3) == std::vector<std::int64_t>{6, 5, 7, 9, 4, 2, 0, 8, 3, 1});
}

TEST_CASE("batches gather examples from datasets that are not in memory", "[dataloader]") {
  DataLoader loader(Computed(5), DataLoaderOptions().batch_size(2).shuffle(true).seed(1));
  std::set<std::int64_t> seen;
  for (const Batch& b : loader) {
    REQUIRE(b.data.dim() == 3);
    CHECK(b.data.size(1) == 2);
    CHECK(b.target.dim() == 1);
    const auto t = b.target.to_vector<std::int64_t>();
    const auto d = b.data.to_vector<double>();
    for (std::size_t j = 0; j < t.size(); ++j) {
      CHECK(d[4 * j] == static_cast<double>(t[j]));
      CHECK(d[4 * j + 3] == static_cast<double>(t[j]));
      seen.insert(t[j]);
    }
  }
  CHECK(seen == std::set<std::int64_t>{0, 1, 2, 3, 4});

  DataLoader odd(Computed(4, /*odd=*/2), DataLoaderOptions().batch_size(4));
  CT_REQUIRE_ERROR(*odd.begin(),
                   "DataLoader: expected every example's data to be [2, 2] float32 like the "
                   "first, got [3] float32 in example 2 of the batch");
  CT_REQUIRE_ERROR(odd.batch({0, 9}), "DataLoader: expected sample indices in [0, 4), got 9");
}

TEST_CASE("the loader normalises each batch and leaves the dataset alone", "[dataloader]") {
  // [N = 4, C = 2, 1]: channel 0 = i, channel 1 = 10 i.
  std::vector<float> values;
  for (int i = 0; i < 4; ++i) {
    values.push_back(static_cast<float>(i));
    values.push_back(static_cast<float>(10 * i));
  }
  const TensorDataset ds(from_vector(values, {4, 2, 1}), arange(4, kInt64));
  DataLoader loader(ds, DataLoaderOptions().batch_size(3).normalize(Normalize({1, 10}, {2, 5})));
  const Batch& first = *loader.begin();
  CHECK(first.data.shape() == Shape{3, 2, 1});
  CHECK(first.data.to_vector<float>() == std::vector<float>{-0.5f, -2, 0, 0, 0.5f, 2});
  CHECK(ds.data().to_vector<float>() == values);

  CT_REQUIRE_ERROR(DataLoader(ds, DataLoaderOptions().normalize(Normalize({0, 0, 0}, {1, 1, 1}))),
                   "DataLoader: expected data with 3 channels (dim 1) for Normalize's 3 means, "
                   "got shape [1, 2, 1]");
  CT_REQUIRE_ERROR(DataLoader(TensorDataset(arange(4, kInt64), arange(4, kInt64)),
                              DataLoaderOptions().normalize(Normalize({0}, {1}))),
                   "DataLoader: expected float32 or float64 data to normalise, got int64");
}

TEST_CASE("a Fashion-MNIST epoch in batches of 64", "[dataloader][fashion]") {
  if (!data::FashionMNIST::available()) {
    WARN("SKIPPED: Fashion-MNIST is not installed at " << data::kFashionMnistRoot);
    return;
  }
  DataLoader loader(data::FashionMNIST(),
                    DataLoaderOptions().batch_size(64).shuffle(true).seed(0).normalize(
                        Normalize({0.2860}, {0.3530})));
  REQUIRE(loader.size() == 938);
  std::int64_t samples = 0, batches = 0;
  std::vector<std::int64_t> per_class(10, 0);
  double sum = 0;
  for (const Batch& b : loader) {
    ++batches;
    samples += b.target.size(0);
    CHECK(b.data.size(0) == b.target.size(0));
    for (const std::int64_t l : b.target.to_vector<std::int64_t>())
      ++per_class.at(static_cast<std::size_t>(l));
    sum += b.data.sum().item();
    if (batches == 938) CHECK(b.data.shape() == Shape{32, 1, 28, 28});
    if (batches == 1) CHECK(b.data.shape() == Shape{64, 1, 28, 28});
  }
  CHECK(batches == 938);
  CHECK(samples == 60000);
  CHECK(per_class == std::vector<std::int64_t>(10, 6000));
  // Normalised with the training set's own mean, the data sums to about zero.
  CHECK(std::abs(sum / (60000.0 * 784.0)) < 1e-3);
}
