// DataLoader: epoch orders (in order, seeded shuffles, or a sampler's), batch assembly (row
// copies or per-example gathers, per-sample transforms) and the worker threads that assemble
// batches ahead of the consumer.
#include "data/dataloader.h"

#include <condition_variable>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <numeric>
#include <thread>

#include "core/autograd.h"
#include "core/settings.h"

namespace convtape::data {

namespace {

std::size_t row_bytes(const Tensor& t) {
  std::int64_t n = 1;
  for (std::int64_t d = 1; d < t.dim(); ++d) n *= t.size(d);
  return static_cast<std::size_t>(n) * dtype_size(t.dtype());
}

// Contiguous, or empty (core calls some empty tensors strided; they hold no bytes to copy).
bool dense(const Tensor& t) {
  return t.is_contiguous() || t.numel() == 0;
}

Shape batch_shape(std::int64_t b, const Shape& example) {
  Shape s{b};
  s.insert(s.end(), example.begin(), example.end());
  return s;
}

// Copies rows `indices` of src [N, ...] (contiguous, CPU) into a new [B, ...] tensor.
Tensor gather_rows(const Tensor& src, const std::vector<std::int64_t>& indices) {
  Shape shape = src.shape();
  shape[0] = static_cast<std::int64_t>(indices.size());
  Tensor out = Tensor::empty_cpu(shape, src.dtype());
  const std::size_t bytes = row_bytes(src);
  if (bytes == 0) return out;
  const auto* from = static_cast<const std::uint8_t*>(src.raw_data());
  auto* to = static_cast<std::uint8_t*>(out.raw_data());
  for (std::size_t j = 0; j < indices.size(); ++j)
    std::memcpy(to + j * bytes, from + static_cast<std::size_t>(indices[j]) * bytes, bytes);
  return out;
}

// Stacks one tensor per example into [B, ...]; every example must match the first.
Tensor stack_examples(const std::vector<Tensor>& parts, std::string_view what) {
  const Tensor& first = parts.front();
  Tensor out = Tensor::empty_cpu(
      batch_shape(static_cast<std::int64_t>(parts.size()), first.shape()), first.dtype());
  const std::size_t bytes = static_cast<std::size_t>(first.numel()) * dtype_size(first.dtype());
  auto* to = static_cast<std::uint8_t*>(out.raw_data());
  for (std::size_t j = 0; j < parts.size(); ++j) {
    const Tensor& t = parts[j];
    CT_CHECK(t.defined() && t.shape() == first.shape() && t.dtype() == first.dtype(),
             "DataLoader: expected every example's {} to be {} {} like the first, got {} in "
             "example {} of the batch",
             what, to_string(first.shape()), dtype_name(first.dtype()),
             t.defined() ? fmt::format("{} {}", to_string(t.shape()), dtype_name(t.dtype()))
                         : std::string("an undefined tensor"),
             j);
    const Tensor host = t.detach().cpu().contiguous();
    if (bytes > 0) std::memcpy(to + j * bytes, host.raw_data(), bytes);
  }
  return out;
}

// SplitMix64's finaliser (as epoch_permutation's): neighbouring inputs, unrelated outputs.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The batch of samples indices[0, n): rows or gathered examples, each sample's data through the
// transform first, then the batch normalised. Reads only its arguments: safe in worker threads.
Batch assemble(const Dataset& dataset, const DataLoaderOptions& options,
               const std::int64_t* indices, std::size_t n, std::int64_t epoch) {
  CT_CHECK(n > 0, "DataLoader: expected at least one sample index for a batch, got none");
  const std::int64_t size = dataset.size();
  for (std::size_t j = 0; j < n; ++j)
    CT_CHECK(indices[j] >= 0 && indices[j] < size,
             "DataLoader: expected sample indices in [0, {}), got {}", size, indices[j]);
  const std::vector<std::int64_t> rows(indices, indices + n);
  NoGradGuard no_grad;
  Batch out;
  const Example* all = dataset.stacked();
  const Transform& transform = options.transform();
  if (all && !transform) {
    out.data = gather_rows(all->data, rows);
    out.target = gather_rows(all->target, rows);
  } else {
    std::vector<Tensor> data, target;
    data.reserve(n);
    if (!all) target.reserve(n);
    for (const std::int64_t i : rows) {
      Example e = all ? Example{all->data.narrow(0, i, 1).squeeze(0), Tensor()} : dataset.get(i);
      if (transform) {
        Generator gen(transform_seed(options.seed(), epoch, i));
        e.data = transform(e.data, gen);
      }
      data.push_back(std::move(e.data));
      if (!all) target.push_back(std::move(e.target));
    }
    out.data = stack_examples(data, "data");
    out.target = all ? gather_rows(all->target, rows) : stack_examples(target, "target");
  }
  if (options.normalize()) options.normalize()->apply_(out.data);
  return out;
}

}  // namespace

std::uint64_t transform_seed(std::uint64_t seed, std::int64_t epoch, std::int64_t index) {
  constexpr std::uint64_t kSalt = 0x7472616e73666f72ULL;  // "transfor": apart from the shuffle
  return mix(mix(mix(seed ^ kSalt) ^ static_cast<std::uint64_t>(epoch)) ^
             static_cast<std::uint64_t>(index));
}

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options)
    : dataset_(std::move(dataset)), options_(std::move(options)) {
  CT_CHECK(dataset_ != nullptr, "DataLoader: expected a dataset, got null");
  CT_CHECK(options_.batch_size() >= 1, "DataLoader: expected batch_size >= 1, got {}",
           options_.batch_size());
  CT_CHECK(!(options_.sampler() && options_.shuffle()),
           "DataLoader: expected shuffle(false) with a sampler (the sampler shuffles), got "
           "shuffle(true)");
  CT_CHECK(options_.num_workers() >= 0, "DataLoader: expected num_workers >= 0, got {}",
           options_.num_workers());
  CT_CHECK(options_.prefetch_factor() >= 1, "DataLoader: expected prefetch_factor >= 1, got {}",
           options_.prefetch_factor());
  if (const Example* all = dataset_->stacked()) {
    CT_CHECK(all->data.defined() && all->target.defined() && all->data.dim() >= 1 &&
                 all->target.dim() >= 1 && all->data.size(0) == dataset_->size() &&
                 all->target.size(0) == dataset_->size() && all->data.is_cpu() &&
                 all->target.is_cpu() && dense(all->data) && dense(all->target),
             "DataLoader: expected a dataset whose stacked() tensors are contiguous CPU [N, ...] "
             "with N = size() = {}, got others",
             dataset_->size());
  }
  // Catch a Normalize that does not fit the data now rather than at the first batch (with a
  // transform, which may change the samples' shape, the first batch checks it).
  if (options_.normalize() && !options_.transform() && dataset_->size() > 0) {
    const Example* all = dataset_->stacked();
    const Tensor sample = all ? all->data.narrow(0, 0, 1) : dataset_->get(0).data.unsqueeze(0);
    options_.normalize()->check(sample, "DataLoader");
  }
}

std::int64_t DataLoader::size() const {
  const std::int64_t n = options_.sampler() ? options_.sampler()->size() : dataset_->size();
  const std::int64_t b = options_.batch_size();
  return options_.drop_last() ? n / b : (n + b - 1) / b;
}

void DataLoader::set_epoch(std::int64_t epoch) {
  CT_CHECK(epoch >= 0, "DataLoader: expected epoch >= 0, got {}", epoch);
  epoch_ = epoch;
}

std::vector<std::int64_t> DataLoader::order(std::int64_t epoch) const {
  if (const auto& sampler = options_.sampler()) {
    std::vector<std::int64_t> indices = sampler->indices(epoch);
    // The iterator cuts batches by size(); a sampler that breaks its own contract must not make
    // it read past the list.
    CT_CHECK(static_cast<std::int64_t>(indices.size()) == sampler->size(),
             "DataLoader: expected the sampler's indices({}) to hold its size() = {} indices, got "
             "{}",
             epoch, sampler->size(), indices.size());
    return indices;
  }
  if (options_.shuffle()) return epoch_permutation(dataset_->size(), options_.seed(), epoch);
  std::vector<std::int64_t> indices(static_cast<std::size_t>(dataset_->size()));
  std::iota(indices.begin(), indices.end(), std::int64_t{0});
  return indices;
}

Batch DataLoader::batch(const std::vector<std::int64_t>& indices, std::int64_t epoch) const {
  return assemble(*dataset_, options_, indices.data(), indices.size(), epoch);
}

// One epoch: what it needs to build its batches (shared with the loader, so that it may outlive
// it) and, with workers, the threads and the batches they have built. Workers claim batches in
// order, at most `window_` ahead of the consumer, and file each result (a batch or the exception
// that building it threw) under its number; the consumer takes them by number.
class DataLoader::Epoch {
 public:
  Epoch(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options,
        std::vector<std::int64_t> order, std::int64_t epoch, std::int64_t batches)
      : dataset_(std::move(dataset)),
        options_(std::move(options)),
        order_(std::move(order)),
        epoch_(epoch),
        batches_(batches),
        window_(static_cast<std::int64_t>(options_.num_workers()) * options_.prefetch_factor()) {
    const std::int64_t threads = std::min<std::int64_t>(options_.num_workers(), batches_);
    threads_.reserve(static_cast<std::size_t>(threads));
    try {
      for (std::int64_t w = 0; w < threads; ++w) threads_.emplace_back([this] { work(); });
    } catch (...) {
      stop();
      throw;
    }
  }
  ~Epoch() { stop(); }
  Epoch(const Epoch&) = delete;
  Epoch& operator=(const Epoch&) = delete;

  std::int64_t batches() const { return batches_; }

  // Batch b: built now without workers, else waited for.
  Batch get(std::int64_t b) {
    if (threads_.empty()) return build(b);
    std::unique_lock lock(mutex_);
    CT_CHECK(b >= passed_,
             "DataLoader: expected to read batch {} before the iterator moved past it, got a read "
             "after (with workers the iterators are single-pass)",
             b);
    ready_.wait(lock, [&] { return done_.count(b) > 0; });
    const Result& r = done_.at(b);
    if (r.error) std::rethrow_exception(r.error);
    return r.batch;
  }

  // The consumer moved past batch b: its slot, and those before, are free for the workers.
  void pass(std::int64_t b) {
    if (threads_.empty()) return;
    {
      std::lock_guard lock(mutex_);
      passed_ = std::max(passed_, b + 1);
      done_.erase(done_.begin(), done_.lower_bound(passed_));
    }
    wake_.notify_all();
  }

 private:
  struct Result {
    Batch batch;
    std::exception_ptr error;
  };

  // Batch b, or an Error naming it (the same text with any number of workers).
  Batch build(std::int64_t b) const {
    const std::int64_t size = options_.batch_size();
    const std::int64_t start = b * size;
    const std::int64_t stop = std::min<std::int64_t>(start + size, order_.size());
    try {
      return assemble(*dataset_, options_, order_.data() + start,
                      static_cast<std::size_t>(stop - start), epoch_);
    } catch (const Error& e) {
      CT_FAIL("DataLoader: batch {} of epoch {} failed: {}", b, epoch_, e.message());
    } catch (const std::exception& e) {
      CT_FAIL("DataLoader: batch {} of epoch {} failed: {}", b, epoch_, e.what());
    } catch (...) {
      CT_FAIL(
          "DataLoader: batch {} of epoch {} failed: an exception that is not a "
          "std::exception",
          b, epoch_);
    }
  }

  void work() {
    // Per-sample loops and row copies: one OpenMP thread for anything a worker calls (a dataset's
    // or a transform's tensor ops), so that workers do not each start a team beside the consumer's.
    set_num_threads(1);
    NoGradGuard no_grad;
    for (;;) {
      std::int64_t b = 0;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] {
          return stopping_ || claimed_ >= batches_ || claimed_ < passed_ + window_;
        });
        if (stopping_ || claimed_ >= batches_) return;
        b = claimed_++;
      }
      Result r;
      try {
        r.batch = build(b);
      } catch (...) {
        r.error = std::current_exception();
      }
      {
        std::lock_guard lock(mutex_);
        if (stopping_) return;
        if (b >= passed_) done_.emplace(b, std::move(r));
      }
      ready_.notify_all();
    }
  }

  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (std::thread& t : threads_)
      if (t.joinable()) t.join();
  }

  const std::shared_ptr<const Dataset> dataset_;
  const DataLoaderOptions options_;
  const std::vector<std::int64_t> order_;
  const std::int64_t epoch_;
  const std::int64_t batches_;
  const std::int64_t window_;  // batches claimed but not passed, at most

  std::mutex mutex_;
  std::condition_variable wake_;   // workers: a slot freed, or stop
  std::condition_variable ready_;  // consumer: a batch filed
  std::int64_t claimed_ = 0;       // the next batch a worker takes
  std::int64_t passed_ = 0;        // batches before this one are behind the consumer
  bool stopping_ = false;
  std::map<std::int64_t, Result> done_;
  std::vector<std::thread> threads_;
};

DataLoader::Iterator DataLoader::begin() {
  std::vector<std::int64_t> indices = order(epoch_);
  auto run = std::make_shared<Epoch>(dataset_, options_, std::move(indices), epoch_, size());
  ++epoch_;
  return Iterator(std::move(run), 0);
}

DataLoader::Iterator DataLoader::end() const {
  return Iterator(nullptr, size());
}

const Batch& DataLoader::Iterator::current() const {
  CT_CHECK(epoch_ != nullptr && index_ < epoch_->batches(),
           "DataLoader: expected an iterator to a batch, got one past the end");
  if (!current_) current_ = epoch_->get(index_);
  return *current_;
}

DataLoader::Iterator& DataLoader::Iterator::operator++() {
  if (epoch_) epoch_->pass(index_);
  ++index_;
  current_.reset();
  return *this;
}

}  // namespace convtape::data
