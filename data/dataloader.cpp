// DataLoader: epoch orders (in order, seeded shuffles, or a sampler's) and batch assembly (row
// copies or per-example gathers).
#include "data/dataloader.h"

#include <cstring>
#include <numeric>

#include "core/autograd.h"

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

}  // namespace

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options)
    : dataset_(std::move(dataset)), options_(std::move(options)) {
  CT_CHECK(dataset_ != nullptr, "DataLoader: expected a dataset, got null");
  CT_CHECK(options_.batch_size() >= 1, "DataLoader: expected batch_size >= 1, got {}",
           options_.batch_size());
  CT_CHECK(!(options_.sampler() && options_.shuffle()),
           "DataLoader: expected shuffle(false) with a sampler (the sampler shuffles), got "
           "shuffle(true)");
  if (const Example* all = dataset_->stacked()) {
    CT_CHECK(all->data.defined() && all->target.defined() && all->data.dim() >= 1 &&
                 all->target.dim() >= 1 && all->data.size(0) == dataset_->size() &&
                 all->target.size(0) == dataset_->size() && all->data.is_cpu() &&
                 all->target.is_cpu() && dense(all->data) && dense(all->target),
             "DataLoader: expected a dataset whose stacked() tensors are contiguous CPU [N, ...] "
             "with N = size() = {}, got others",
             dataset_->size());
  }
  // Catch a Normalize that does not fit the data now rather than at the first batch.
  if (options_.normalize() && dataset_->size() > 0) {
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

Batch DataLoader::batch(const std::vector<std::int64_t>& indices) const {
  CT_CHECK(!indices.empty(),
           "DataLoader: expected at least one sample index for a batch, got none");
  const std::int64_t n = dataset_->size();
  for (const std::int64_t i : indices)
    CT_CHECK(i >= 0 && i < n, "DataLoader: expected sample indices in [0, {}), got {}", n, i);
  NoGradGuard no_grad;
  Batch out;
  if (const Example* all = dataset_->stacked()) {
    out.data = gather_rows(all->data, indices);
    out.target = gather_rows(all->target, indices);
  } else {
    std::vector<Tensor> data, target;
    data.reserve(indices.size());
    target.reserve(indices.size());
    for (const std::int64_t i : indices) {
      Example e = dataset_->get(i);
      data.push_back(std::move(e.data));
      target.push_back(std::move(e.target));
    }
    out.data = stack_examples(data, "data");
    out.target = stack_examples(target, "target");
  }
  if (options_.normalize()) options_.normalize()->apply_(out.data);
  return out;
}

DataLoader::Iterator DataLoader::begin() {
  auto indices = std::make_shared<const std::vector<std::int64_t>>(order(epoch_));
  ++epoch_;
  return Iterator(this, std::move(indices), 0);
}

DataLoader::Iterator DataLoader::end() const {
  return Iterator(this, nullptr, size());
}

const Batch& DataLoader::Iterator::current() const {
  CT_CHECK(loader_ != nullptr && order_ != nullptr && index_ < loader_->size(),
           "DataLoader: expected an iterator to a batch, got one past the end");
  if (!current_) {
    const std::int64_t b = loader_->options().batch_size();
    const std::int64_t start = index_ * b;
    const std::int64_t stop = std::min<std::int64_t>(start + b, order_->size());
    current_ =
        loader_->batch(std::vector<std::int64_t>(order_->begin() + start, order_->begin() + stop));
  }
  return *current_;
}

DataLoader::Iterator& DataLoader::Iterator::operator++() {
  ++index_;
  current_.reset();
  return *this;
}

}  // namespace convtape::data
