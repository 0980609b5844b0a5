// DataLoader: batch counts with and without drop_last, each sample once per epoch, seeded orders
// that are fixed across machines and differ across seeds and epochs, batch shapes and contents
// (row copies for in-memory datasets, per-example gathers for others), normalisation, per-sample
// transforms seeded by (seed, epoch, index), worker threads (the same bits as without, early
// abandonment, the loader destroyed under a running epoch, failures named by batch), and a full
// Fashion-MNIST epoch where the data set is installed.
#include <algorithm>
#include <atomic>
#include <numeric>
#include <set>
#include <stdexcept>

#include "data/dataloader.h"
#include "support/test_util.h"

using namespace convtape;
using convtape::data::Batch;
using convtape::data::DataLoader;
using convtape::data::DataLoaderOptions;
using convtape::data::Normalize;
using convtape::data::TensorDataset;
namespace transforms = convtape::data::transforms;

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

// n images [1, 5, 6] with distinct values, targets 0..n-1.
TensorDataset images(std::int64_t n) {
  return TensorDataset(reshape(mul(arange(static_cast<double>(n * 30)), 0.5), {n, 1, 5, 6}),
                       arange(static_cast<double>(n), kInt64));
}

data::Transform augment() {
  return transforms::Compose({transforms::RandomCrop(transforms::RandomCropOptions(5).padding(1)),
                              transforms::RandomHorizontalFlip()});
}

// Every batch of `epochs` epochs, in the order the loader yields them.
std::vector<Batch> all_batches(DataLoader& loader, int epochs) {
  std::vector<Batch> out;
  for (int e = 0; e < epochs; ++e)
    for (const Batch& b : loader) out.push_back(b);
  return out;
}

// Example i holds i; example `bad` throws.
class Throwing : public data::Dataset {
 public:
  Throwing(std::int64_t n, std::int64_t bad, bool convtape_error)
      : n_(n), bad_(bad), convtape_error_(convtape_error) {}
  std::int64_t size() const override { return n_; }
  data::Example get(std::int64_t i) const override {
    if (i == bad_) {
      if (convtape_error_) CT_FAIL("Throwing: expected a good sample, got sample {}", i);
      throw std::runtime_error("disk on fire");
    }
    return {full({1}, static_cast<double>(i)), tensor({static_cast<double>(i)}, Shape{}, kInt64)};
  }

 private:
  std::int64_t n_, bad_;
  bool convtape_error_;
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

TEST_CASE("a transform sees each sample with a generator seeded by (seed, epoch, index)",
          "[dataloader][transforms]") {
  const TensorDataset ds = images(10);
  DataLoader loader(ds,
                    DataLoaderOptions().batch_size(4).shuffle(true).seed(3).transform(augment()));
  const data::Transform t = augment();
  for (std::int64_t epoch = 0; epoch < 2; ++epoch) {
    const std::vector<std::int64_t> order = loader.order(epoch);
    std::size_t k = 0;
    for (const Batch& b : loader) {
      REQUIRE(b.data.size(0) == b.target.size(0));
      CHECK(b.data.shape() == Shape{b.target.size(0), 1, 5, 5});
      for (std::int64_t j = 0; j < b.data.size(0); ++j, ++k) {
        const std::int64_t i = order[k];
        CHECK(b.target.to_vector<std::int64_t>()[static_cast<std::size_t>(j)] == i);
        Generator gen(data::transform_seed(3, epoch, i));
        CHECK(ct_test::equal(b.data.narrow(0, j, 1).squeeze(0), t(ds.get(i).data, gen)));
      }
    }
    CHECK(k == 10);
  }
  // Epochs differ, set_epoch replays one, batch() takes the epoch.
  DataLoader plain(ds, DataLoaderOptions().batch_size(10).transform(augment()).seed(3));
  const Batch e0 = *plain.begin(), e1 = *plain.begin();
  CHECK_FALSE(ct_test::equal(e0.data, e1.data));
  plain.set_epoch(1);
  CHECK(ct_test::equal((*plain.begin()).data, e1.data));
  std::vector<std::int64_t> all(10);
  std::iota(all.begin(), all.end(), 0);
  CHECK(ct_test::equal(plain.batch(all, 1).data, e1.data));
  CHECK(ct_test::equal(plain.batch(all).data, e0.data));
  // The dataset is left alone, and the batch Normalize follows the transform.
  CHECK(ct_test::equal(ds.data(), images(10).data()));
  DataLoader normalised(ds,
                        DataLoaderOptions().batch_size(10).transform(augment()).seed(3).normalize(
                            Normalize({1}, {2})));
  CHECK(ct_test::equal((*normalised.begin()).data, div(sub(e0.data, 1.0), 2.0)));
}

TEST_CASE("workers give the batches of num_workers(0), bit for bit", "[dataloader][workers]") {
  const TensorDataset ds = images(23);
  struct Config {
    std::string name;
    DataLoaderOptions options;
  };
  const auto sampler = std::make_shared<data::DistributedSampler>(
      23, data::DistributedSamplerOptions().num_replicas(2).rank(1).seed(5));
  const std::vector<Config> configs = {
      {"in order", DataLoaderOptions().batch_size(4)},
      {"shuffled, augmented",
       DataLoaderOptions().batch_size(4).shuffle(true).seed(9).transform(augment())},
      {"drop_last, augmented, normalised", DataLoaderOptions()
                                               .batch_size(5)
                                               .drop_last(true)
                                               .shuffle(true)
                                               .seed(1)
                                               .transform(augment())
                                               .normalize(Normalize({0.5}, {2}))},
      {"sampler, augmented",
       DataLoaderOptions().batch_size(3).sampler(sampler).transform(augment())},
      {"prefetch 1", DataLoaderOptions().batch_size(2).prefetch_factor(1).transform(augment())},
  };
  for (const Config& c : configs) {
    DataLoader serial(ds, c.options);
    const std::vector<Batch> expected = all_batches(serial, 2);
    for (const int workers : {1, 2, 3}) {
      INFO(c.name << ", " << workers << " workers");
      DataLoader threaded(ds, DataLoaderOptions(c.options).num_workers(workers));
      const std::vector<Batch> got = all_batches(threaded, 2);
      REQUIRE(got.size() == expected.size());
      for (std::size_t i = 0; i < got.size(); ++i) {
        CHECK(ct_test::equal(got[i].data, expected[i].data));
        CHECK(ct_test::equal(got[i].target, expected[i].target));
      }
    }
  }
  // Datasets that are not in memory, and more workers than batches.
  DataLoader serial(Computed(7), DataLoaderOptions().batch_size(3).shuffle(true));
  DataLoader threaded(Computed(7), DataLoaderOptions().batch_size(3).shuffle(true).num_workers(8));
  const auto a = all_batches(serial, 1), b = all_batches(threaded, 1);
  REQUIRE(a.size() == 3);
  REQUIRE(b.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) CHECK(ct_test::equal(a[i].data, b[i].data));
  DataLoader none(numbered(0), DataLoaderOptions().num_workers(2));
  CHECK(none.begin() == none.end());
}

TEST_CASE("an epoch abandoned early, or a destroyed loader, stops the workers",
          "[dataloader][workers]") {
  // 400 batches of one sample; 3 workers, 4 batches in flight each. The counter sees every sample
  // a worker builds.
  auto built = std::make_shared<std::atomic<int>>(0);
  const auto counting = [built](const Tensor& x, Generator&) {
    built->fetch_add(1);
    return x;
  };
  DataLoader loader(numbered(400),
                    DataLoaderOptions().num_workers(3).prefetch_factor(4).transform(counting));
  for (int round = 0; round < 3; ++round) {
    built->store(0);
    std::int64_t seen = 0;
    for (const Batch& b : loader) {
      CHECK(b.target.to_vector<std::int64_t>()[0] == seen);
      if (++seen == 2) break;
    }
    // The workers are joined: nothing is built any more, and never more than 12 batches ahead.
    const int at_exit = built->load();
    CHECK(at_exit <= 2 + 12);
    CHECK(at_exit >= 2);
    CHECK(built->load() == at_exit);
  }
  CHECK(loader.epoch() == 3);

  // An iterator destroyed right away, before anything was read.
  { auto it = loader.begin(); }

  // The loader destroyed under a running epoch: the iterator keeps what it reads alive.
  auto owned = std::make_unique<DataLoader>(
      images(9), DataLoaderOptions().batch_size(2).num_workers(2).transform(augment()).seed(4));
  DataLoader twin(images(9), DataLoaderOptions().batch_size(2).transform(augment()).seed(4));
  const std::vector<Batch> expected = all_batches(twin, 1);
  auto it = owned->begin();
  const auto stop = owned->end();
  owned.reset();
  std::size_t k = 0;
  for (; it != stop; ++it, ++k) CHECK(ct_test::equal(it->data, expected.at(k).data));
  CHECK(k == expected.size());
  // And destroyed with the iterator mid-epoch.
  owned = std::make_unique<DataLoader>(numbered(100), DataLoaderOptions().num_workers(2));
  auto half = owned->begin();
  ++half;
  owned.reset();
  CHECK(half->target.to_vector<std::int64_t>() == std::vector<std::int64_t>{1});
}

TEST_CASE("a failure while building a batch names the batch, with or without workers",
          "[dataloader][workers]") {
  for (const int workers : {0, 1, 3}) {
    for (const bool convtape_error : {true, false}) {
      INFO(workers << " workers");
      // Sample 13 is in batch 3 (batches of 4, in order).
      DataLoader loader(Throwing(22, 13, convtape_error),
                        DataLoaderOptions().batch_size(4).num_workers(workers));
      std::vector<std::int64_t> good;
      int failures = 0;
      for (auto it = loader.begin(); it != loader.end(); ++it) {
        try {
          const auto t = it->target.to_vector<std::int64_t>();
          good.push_back(t.front());
        } catch (const Error& e) {
          ++failures;
          const std::string what = e.message();
          CHECK(what.find("DataLoader: batch 3 of epoch 0 failed: ") == 0);
          CHECK(what.find(convtape_error ? "Throwing: expected a good sample, got sample 13"
                                         : "disk on fire") != std::string::npos);
        }
      }
      CHECK(failures == 1);
      CHECK(good == std::vector<std::int64_t>{0, 4, 8, 16, 20});  // the later batches still come
    }
  }
}

TEST_CASE("the loader refuses a negative num_workers", "[dataloader][workers]") {
  CT_REQUIRE_ERROR(DataLoader(numbered(4), DataLoaderOptions().num_workers(-1)),
                   "DataLoader: expected num_workers >= 0, got -1");
}

TEST_CASE("the loader refuses a prefetch_factor below 1", "[dataloader][workers]") {
  CT_REQUIRE_ERROR(DataLoader(numbered(4), DataLoaderOptions().num_workers(2).prefetch_factor(0)),
                   "DataLoader: expected prefetch_factor >= 1, got 0");
}

TEST_CASE("with workers, an iterator left behind cannot read its batch", "[dataloader][workers]") {
  DataLoader loader(numbered(6), DataLoaderOptions().batch_size(2).num_workers(2));
  auto a = loader.begin();
  auto b = a;
  ++b;
  CT_REQUIRE_ERROR(*a,
                   "DataLoader: expected to read batch 0 before the iterator moved past it, got a "
                   "read after (with workers the iterators are single-pass)");
  CHECK(b->target.to_vector<std::int64_t>() == std::vector<std::int64_t>{2, 3});
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
