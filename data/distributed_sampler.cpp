// Samplers: the seeded epoch permutation and DistributedSampler's padded or trimmed, rank-strided
// shards (PyTorch's DistributedSampler semantics).
#include "data/distributed_sampler.h"

#include <numeric>
#include <utility>

#include "core/checked.h"
#include "core/error.h"
#include "core/random.h"

namespace convtape::data {

namespace {

// SplitMix64's finaliser: spreads (seed, epoch) over the generator's whole seed space, so that
// neighbouring seeds and epochs give unrelated permutations.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

std::vector<std::int64_t> epoch_permutation(std::int64_t n, std::uint64_t seed,
                                            std::int64_t epoch) {
  CT_CHECK(n >= 0, "epoch_permutation: expected n >= 0, got {}", n);
  std::vector<std::int64_t> indices(static_cast<std::size_t>(n));
  std::iota(indices.begin(), indices.end(), std::int64_t{0});
  Generator gen(mix(seed ^ mix(static_cast<std::uint64_t>(epoch))));
  for (std::int64_t i = n - 1; i > 0; --i)
    std::swap(indices[static_cast<std::size_t>(i)],
              indices[static_cast<std::size_t>(gen.integer(0, i + 1))]);
  return indices;
}

DistributedSampler::DistributedSampler(std::int64_t dataset_size, DistributedSamplerOptions options)
    : dataset_size_(dataset_size), options_(options) {
  const std::int64_t n = dataset_size_, r = options_.num_replicas();
  CT_CHECK(n >= 0, "DistributedSampler: expected a dataset size >= 0, got {}", n);
  CT_CHECK(r >= 1, "DistributedSampler: expected num_replicas >= 1, got {}", r);
  CT_CHECK(options_.rank() >= 0 && options_.rank() < r,
           "DistributedSampler: expected rank in [0, num_replicas) = [0, {}), got {}", r,
           options_.rank());
  // PyTorch returns empty shards here; an empty shard is always a mistake (a rank that trains on
  // nothing still waits in every collective).
  CT_CHECK(!options_.drop_last() || n >= r,
           "DistributedSampler: expected a dataset of at least num_replicas = {} samples with "
           "drop_last (each rank gets floor(N / num_replicas) of them), got N = {}",
           r, n);
  num_samples_ = options_.drop_last() ? n / r : checked::div_ceil(n, r);
  total_size_ = checked::mul(num_samples_, r, "DistributedSampler", "the padded dataset size");
}

std::vector<std::int64_t> DistributedSampler::indices(std::int64_t epoch) const {
  CT_CHECK(epoch >= 0, "DistributedSampler: expected epoch >= 0, got {}", epoch);
  std::vector<std::int64_t> all;
  if (options_.shuffle()) {
    all = epoch_permutation(dataset_size_, options_.seed(), epoch);
  } else {
    all.resize(static_cast<std::size_t>(dataset_size_));
    std::iota(all.begin(), all.end(), std::int64_t{0});
  }
  // Position p of the padded list is all[p % N]: padding repeats the list from its start, as
  // often as needed when N < num_replicas (empty when N = 0, where total_size_ = 0 too).
  const std::int64_t r = options_.num_replicas();
  std::vector<std::int64_t> shard;
  shard.reserve(static_cast<std::size_t>(num_samples_));
  for (std::int64_t j = 0; j < num_samples_; ++j) {
    const std::int64_t p = options_.rank() + j * r;  // < total_size_, so no overflow
    shard.push_back(all[static_cast<std::size_t>(p % dataset_size_)]);
  }
  return shard;
}

}  // namespace convtape::data
