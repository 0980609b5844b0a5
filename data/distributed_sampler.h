// Samplers: the sample indices a DataLoader visits in each epoch.
//   Sampler             the interface: indices(epoch), a list of size() indices into a dataset.
//   DistributedSampler  one replica's shard for data-parallel training, as PyTorch's
//                       torch.utils.data.DistributedSampler: the epoch's order of all N indices
//                       (epoch_permutation when shuffled, 0..N-1 otherwise) is padded by repeating
//                       its start to total_size = ceil(N / R) * R, or trimmed to floor(N / R) * R
//                       with drop_last, and rank r takes positions r, r + R, r + 2R, ... So the R
//                       shards are equal in size, cover every index, and (without padding) are
//                       disjoint; every rank draws the same permutation from (seed, epoch), so the
//                       ranks agree without talking to each other.
//   epoch_permutation   the seeded shuffle shared with DataLoader(shuffle(true)): a Fisher-Yates
//                       permutation of 0..N-1 drawn from a Generator seeded with a SplitMix64 mix
//                       of (seed, epoch); the same on every machine.
//
//   DistributedSampler s(60000, DistributedSamplerOptions().num_replicas(4).rank(1).seed(1));
//   s.indices(e)   // 15000 indices, rank 1's shard of epoch e
#pragma once

#include <cstdint>
#include <vector>

namespace convtape::data {

// A permutation of 0..n-1 that depends only on (seed, epoch).
std::vector<std::int64_t> epoch_permutation(std::int64_t n, std::uint64_t seed, std::int64_t epoch);

class Sampler {
 public:
  virtual ~Sampler() = default;
  // The indices epoch `epoch` visits, in order: size() of them.
  virtual std::vector<std::int64_t> indices(std::int64_t epoch) const = 0;
  // Indices per epoch.
  virtual std::int64_t size() const = 0;

 protected:
  Sampler() = default;
  Sampler(const Sampler&) = default;
  Sampler& operator=(const Sampler&) = default;
};

class DistributedSamplerOptions {
 public:
  DistributedSamplerOptions& num_replicas(std::int64_t r) {
    num_replicas_ = r;
    return *this;
  }
  DistributedSamplerOptions& rank(std::int64_t r) {
    rank_ = r;
    return *this;
  }
  DistributedSamplerOptions& shuffle(bool s) {
    shuffle_ = s;
    return *this;
  }
  DistributedSamplerOptions& seed(std::uint64_t s) {
    seed_ = s;
    return *this;
  }
  DistributedSamplerOptions& drop_last(bool d) {
    drop_last_ = d;
    return *this;
  }

  std::int64_t num_replicas() const { return num_replicas_; }
  std::int64_t rank() const { return rank_; }
  bool shuffle() const { return shuffle_; }
  std::uint64_t seed() const { return seed_; }
  bool drop_last() const { return drop_last_; }

 private:
  std::int64_t num_replicas_ = 1;
  std::int64_t rank_ = 0;
  bool shuffle_ = true;
  std::uint64_t seed_ = 0;
  bool drop_last_ = false;
};

class DistributedSampler : public Sampler {
 public:
  DistributedSampler(std::int64_t dataset_size, DistributedSamplerOptions options = {});

  std::vector<std::int64_t> indices(std::int64_t epoch) const override;
  std::int64_t size() const override { return num_samples_; }

  std::int64_t dataset_size() const { return dataset_size_; }
  // Indices over all replicas: size() * num_replicas.
  std::int64_t total_size() const { return total_size_; }
  const DistributedSamplerOptions& options() const { return options_; }

 private:
  std::int64_t dataset_size_;
  DistributedSamplerOptions options_;
  std::int64_t num_samples_ = 0;
  std::int64_t total_size_ = 0;
};

}  // namespace convtape::data
