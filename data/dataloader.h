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
//
// Transforms (data/transforms.h): transform(t) applies t to each sample's data before collation
// (targets are left alone), with a Generator seeded with transform_seed(seed, epoch, index), index
// being the sample's index in the dataset. A sample's augmentation thus depends on nothing but the
// loader's seed, the epoch and the sample: not on the batch size, the sampler, the rank or the
// number of workers, and set_epoch(e) replays epoch e exactly.
//
//   DataLoader loader(train, DataLoaderOptions().batch_size(64).shuffle(true).seed(1)
//       .transform(transforms::Compose({transforms::RandomCrop(
//           transforms::RandomCropOptions(28).padding(2)), transforms::RandomHorizontalFlip()}))
//       .num_workers(2));
//
// Workers: num_workers(0) (the default) builds each batch in the calling thread when the iterator
// reaches it. num_workers(N >= 1) starts N threads at begin() that build whole batches ahead of the
// consumer, at most N * prefetch_factor (default 2, as PyTorch) batches claimed but not yet passed;
// batches come out in exactly the order, and with exactly the bits, of num_workers(0). The threads
// belong to the epoch's iterator (copies share them): destroying it mid-epoch (a break out of the
// range-for) stops the workers once their current batch is done and joins them, and an iterator
// keeps what it reads alive, so it may outlive the loader. A failure while building a batch (a
// dataset or transform that throws) surfaces when the consumer reaches that batch, with any
// num_workers, as an Error "DataLoader: batch <b> of epoch <e> failed: <what it said>"; the later
// batches are still delivered. Each worker sets its OpenMP team to one thread
// (set_num_threads(1) is per thread; the consumer's setting is untouched): a worker's work is a
// row copy per sample plus per-sample transforms, single-threaded loops, so N workers add at most
// N busy threads to the consumer's kernels rather than N OpenMP teams. Dataset::get and the
// transform are called from the worker threads concurrently: they must be safe to call so
// (TensorDataset, FashionMNIST and the transforms of data/transforms.h are).
#pragma once

#include <concepts>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <vector>

#include "data/dataset.h"
#include "data/distributed_sampler.h"
#include "data/transforms.h"

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
  // Applied to each sample's data before collation (see above); an empty function means none.
  DataLoaderOptions& transform(Transform t) {
    transform_ = std::move(t);
    return *this;
  }
  // Threads that build batches ahead of the consumer; 0: none, batches are built on demand.
  DataLoaderOptions& num_workers(int n) {
    num_workers_ = n;
    return *this;
  }
  // Batches in flight per worker, >= 1.
  DataLoaderOptions& prefetch_factor(int n) {
    prefetch_factor_ = n;
    return *this;
  }

  std::int64_t batch_size() const { return batch_size_; }
  bool shuffle() const { return shuffle_; }
  std::uint64_t seed() const { return seed_; }
  bool drop_last() const { return drop_last_; }
  const std::optional<Normalize>& normalize() const { return normalize_; }
  const std::shared_ptr<const Sampler>& sampler() const { return sampler_; }
  const Transform& transform() const { return transform_; }
  int num_workers() const { return num_workers_; }
  int prefetch_factor() const { return prefetch_factor_; }

 private:
  std::int64_t batch_size_ = 1;
  bool shuffle_ = false;
  std::uint64_t seed_ = 0;
  bool drop_last_ = false;
  std::optional<Normalize> normalize_;
  std::shared_ptr<const Sampler> sampler_;
  Transform transform_;
  int num_workers_ = 0;
  int prefetch_factor_ = 2;
};

// The seed of the Generator a loader's transform gets for sample `index` in epoch `epoch`: a
// SplitMix64 mix of the three, unrelated to the shuffle's stream.
std::uint64_t transform_seed(std::uint64_t seed, std::int64_t epoch, std::int64_t index);

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
  // The batch of the given samples, transformed (with epoch's seeds) and normalised if the options
  // say so; built in the calling thread.
  Batch batch(const std::vector<std::int64_t>& indices, std::int64_t epoch = 0) const;

 private:
  // One epoch's batches: the order, what builds them and, with workers, the threads
  // (dataloader.cpp).
  class Epoch;

 public:
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
    Iterator(std::shared_ptr<Epoch> epoch, std::int64_t index)
        : epoch_(std::move(epoch)), index_(index) {}

    const Batch& current() const;

    // Shared by copies; with workers, the iterators are single-pass: a copy left behind the
    // furthest one can no longer read its batch.
    std::shared_ptr<Epoch> epoch_;
    std::int64_t index_ = 0;
    mutable std::optional<Batch> current_;
  };

 private:
  std::shared_ptr<const Dataset> dataset_;
  DataLoaderOptions options_;
  std::int64_t epoch_ = 0;
};

}  // namespace convtape::data
