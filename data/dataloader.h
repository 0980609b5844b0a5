// DataLoader: batches of a Dataset, in order, shuffled, or in the order a Sampler gives.
//
//   DataLoader loader(train_set, DataLoaderOptions().batch_size(64).shuffle(true).seed(1));
//   for (const Batch& b : loader) { ... b.data [64, 1, 28, 28], b.target [64] ... }
//
// Each range-for (each begin()) is one epoch. Shuffled, epoch e visits the samples in a
// permutation drawn from a Generator seeded with a mix of the seed and e (Fisher-Yates), so the
// order depends only on (seed, e): the same on every machine, different from epoch to epoch, and
// reproducible after a restart with set_epoch(e). size() is the number of batches: ceil(N / B), or
// floor(N / B) with drop_last, which leaves out the last partial batch.
//
// A Sampler (data/distributed_sampler.h) takes over the order: epoch e visits sampler->indices(e),
// and N above is sampler->size(). As in PyTorch the sampler does the shuffling, so a sampler with
// shuffle(true) is refused. Data-parallel training gives each rank its own shard:
//
//   DataLoader loader(train, DataLoaderOptions().batch_size(32).sampler(
//       std::make_shared<DistributedSampler>(train.size(), DistributedSamplerOptions()
//           .num_replicas(dist::world_size()).rank(dist::rank()).seed(1))));
//   for (std::int64_t e = 0; e < epochs; ++e) {
//     loader.set_epoch(e);  // a new shard order each epoch; every rank shuffles alike
//     for (const Batch& b : loader) { ... }
//   }
//
// Batches are built on the CPU, contiguous: rows are copied with memcpy straight out of datasets
// that hold their contents as one tensor (Dataset::stacked), and gathered example by example from
// the others. A Normalize option is applied to each batch's data.
#pragma once

#include <concepts>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <vector>

#include "data/dataset.h"
#include "data/distributed_sampler.h"

namespace convtape::data {

struct Batch {
  Tensor data;    // [B, ...]
  Tensor target;  // [B, ...]
};

class DataLoaderOptions {
 public:
  DataLoaderOptions& batch_size(std::int64_t b) {
    batch_size_ = b;
    return *this;
  }
  DataLoaderOptions& shuffle(bool s) {
    shuffle_ = s;
    return *this;
  }
  DataLoaderOptions& seed(std::uint64_t s) {
    seed_ = s;
    return *this;
  }
  DataLoaderOptions& drop_last(bool d) {
    drop_last_ = d;
    return *this;
  }
  DataLoaderOptions& normalize(Normalize n) {
    normalize_ = std::move(n);
    return *this;
  }
  // Epoch e visits sampler->indices(e) instead of 0..N-1 or the seeded shuffle.
  DataLoaderOptions& sampler(std::shared_ptr<const Sampler> s) {
    sampler_ = std::move(s);
    return *this;
  }

  std::int64_t batch_size() const { return batch_size_; }
  bool shuffle() const { return shuffle_; }
  std::uint64_t seed() const { return seed_; }
  bool drop_last() const { return drop_last_; }
  const std::optional<Normalize>& normalize() const { return normalize_; }
  const std::shared_ptr<const Sampler>& sampler() const { return sampler_; }

 private:
  std::int64_t batch_size_ = 1;
  bool shuffle_ = false;
  std::uint64_t seed_ = 0;
  bool drop_last_ = false;
  std::optional<Normalize> normalize_;
  std::shared_ptr<const Sampler> sampler_;
};

class DataLoader {
 public:
  class Iterator;

  DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options = {});
  // Takes a copy of the dataset (cheap for in-memory datasets: their tensors share storage).
  template <class D>
  requires std::derived_from<D, Dataset>
  explicit DataLoader(D dataset, DataLoaderOptions options = {})
      : DataLoader(std::make_shared<const D>(std::move(dataset)), std::move(options)) {}

  // Starts the next epoch.
  Iterator begin();
  Iterator end() const;

  std::int64_t size() const;  // batches per epoch
  const Dataset& dataset() const { return *dataset_; }
  const DataLoaderOptions& options() const { return options_; }
  // The epoch that the next begin() starts (0 at first); set it to resume a run.
  std::int64_t epoch() const { return epoch_; }
  void set_epoch(std::int64_t epoch);

  // The order in which an epoch visits the samples (the sampler's indices when there is one).
  std::vector<std::int64_t> order(std::int64_t epoch) const;
  // The batch of the given samples, normalised if the options say so.
  Batch batch(const std::vector<std::int64_t>& indices) const;

  class Iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Batch;
    using difference_type = std::ptrdiff_t;
    using pointer = const Batch*;
    using reference = Batch;  // tensors are handles: a copy shares the batch's storage

    Iterator() = default;
    // The current batch, built on first access (and kept until the iterator moves).
    Batch operator*() const { return current(); }
    const Batch* operator->() const { return &current(); }
    Iterator& operator++();
    void operator++(int) { ++*this; }
    bool operator==(const Iterator& other) const { return index_ == other.index_; }

   private:
    friend class DataLoader;
    Iterator(const DataLoader* loader, std::shared_ptr<const std::vector<std::int64_t>> order,
             std::int64_t index)
        : loader_(loader), order_(std::move(order)), index_(index) {}

    const Batch& current() const;

    const DataLoader* loader_ = nullptr;
    std::shared_ptr<const std::vector<std::int64_t>> order_;
    std::int64_t index_ = 0;
    mutable std::optional<Batch> current_;
  };

 private:
  std::shared_ptr<const Dataset> dataset_;
  DataLoaderOptions options_;
  std::int64_t epoch_ = 0;
};

}  // namespace convtape::data
