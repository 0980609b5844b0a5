// nn::DistributedDataParallel: replica check and broadcast at construction, gradient buckets
// all-reduced (mean) as their gradients become final during backward, copied back at its end.
// See dist/ddp.h for the design.
#include "dist/ddp.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "ops/factory.h"
#include "ops/shape.h"

namespace convtape::nn {

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::int64_t cap_bytes(double mb, const char* what) {
  CT_CHECK(std::isfinite(mb) && mb > 0 && mb <= 1024 * 1024,
           "DistributedDataParallel: expected {} to be a positive number of MiB (at most 1 TiB), "
           "got {}",
           what, mb);
  return static_cast<std::int64_t>(mb * 1024.0 * 1024.0);
}

// One line per parameter and buffer: what every replica must agree on.
std::vector<std::string> describe(const Module& m) {
  std::vector<std::string> lines;
  for (const auto& [name, t] : m.named_parameters())
    lines.push_back(fmt::format("parameter '{}' {} {}{}", name, to_string(t.shape()),
                                dtype_name(t.dtype()), t.requires_grad() ? "" : " (frozen)"));
  for (const auto& [name, t] : m.named_buffers())
    lines.push_back(
        fmt::format("buffer '{}' {} {}", name, to_string(t.shape()), dtype_name(t.dtype())));
  return lines;
}

std::vector<std::uint8_t> join(const std::vector<std::string>& lines) {
  std::vector<std::uint8_t> bytes;
  for (const auto& l : lines) {
    bytes.insert(bytes.end(), l.begin(), l.end());
    bytes.push_back('\n');
  }
  return bytes;
}

std::vector<std::string> split(const std::vector<std::uint8_t>& bytes) {
  std::vector<std::string> lines;
  std::string cur;
  for (std::uint8_t b : bytes) {
    if (b == '\n') {
      lines.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.push_back(static_cast<char>(b));
    }
  }
  return lines;
}

}  // namespace

DistributedDataParallel::DistributedDataParallel(std::shared_ptr<Module> module,
                                                 DistributedDataParallelOptions options)
    : module_(std::move(module)),
      options_(options),
      group_(options.process_group() ? options.process_group() : &dist::ProcessGroup::world()) {
  CT_CHECK(module_ != nullptr, "DistributedDataParallel: expected a module, got nullptr");
  cap_bytes(options_.bucket_cap_mb(), "bucket_cap_mb");
  cap_bytes(options_.first_bucket_cap_mb(), "first_bucket_cap_mb");
  register_module("module", module_);
  for (const auto& [name, p] : module_->named_parameters()) {
    if (!p.requires_grad()) continue;
    names_.push_back(name);
    params_.push_back(p);
  }
  check_replicas_agree();
  {
    // Every replica starts from rank 0's values (its initialisation, or a loaded checkpoint).
    NoGradGuard no_grad;
    std::vector<dist::Work> works;
    for (const Tensor& p : module_->parameters()) works.push_back(group_->broadcast_async(p, 0));
    for (const Tensor& b : module_->buffers()) works.push_back(group_->broadcast_async(b, 0));
    for (auto& w : works) w.wait();
  }
  build_buckets();
  hooks_.reserve(params_.size());
  for (std::size_t i = 0; i < params_.size(); ++i)
    hooks_.push_back(autograd::register_post_accumulate_grad_hook(
        params_[i], [this, i](const Tensor&) { on_gradient_ready(i); }));
  ready_.assign(params_.size(), false);
}

DistributedDataParallel::~DistributedDataParallel() {
  for (auto& h : hooks_) h.remove();
}

std::string DistributedDataParallel::extra_repr() const {
  return fmt::format("world_size={}, buckets={}, bucket_cap_mb={:g}", group_->size(),
                     buckets_.size(), options_.bucket_cap_mb());
}

void DistributedDataParallel::check_replicas_agree() {
  const std::vector<std::string> mine = describe(*module_);
  const auto all = group_->all_gather_bytes(join(mine));
  const std::vector<std::string> first = split(all[0]);
  for (std::size_t r = 1; r < all.size(); ++r) {
    const std::vector<std::string> theirs = split(all[r]);
    const std::size_t n = std::min(first.size(), theirs.size());
    for (std::size_t i = 0; i < n; ++i)
      CT_CHECK(first[i] == theirs[i],
               "DistributedDataParallel: expected the same parameters and buffers on every rank, "
               "got {} on rank 0 and {} on rank {}",
               first[i], theirs[i], r);
    CT_CHECK(
        first.size() == theirs.size(),
        "DistributedDataParallel: expected the same parameters and buffers on every rank, "
        "got {} entries on rank 0 and {} on rank {} (first extra: {})",
        first.size(), theirs.size(), r,
        first.size() > n ? first[n] + " on rank 0" : theirs[n] + fmt::format(" on rank {}", r));
  }
}

void DistributedDataParallel::build_buckets() {
  const std::int64_t first_cap = cap_bytes(options_.first_bucket_cap_mb(), "first_bucket_cap_mb");
  const std::int64_t cap = cap_bytes(options_.bucket_cap_mb(), "bucket_cap_mb");
  bucket_of_.assign(params_.size(), 0);
  std::int64_t bytes = 0;
  // Reverse registration order: roughly the order in which backward finishes the gradients.
  for (std::size_t k = params_.size(); k-- > 0;) {
    const Tensor& p = params_[k];
    const std::int64_t size = p.numel() * static_cast<std::int64_t>(dtype_size(p.dtype()));
    const std::int64_t limit = buckets_.size() <= 1 ? first_cap : cap;
    const bool fits = !buckets_.empty() && bytes + size <= limit &&
                      buckets_.back().flat.dtype() == p.dtype() &&
                      buckets_.back().flat.device() == p.device();
    if (!fits) {
      buckets_.emplace_back();
      buckets_.back().flat = empty({0}, p.options());  // dtype and device; sized below
      bytes = 0;
    }
    Bucket& b = buckets_.back();
    b.offsets.push_back(b.numel);
    b.params.push_back(k);
    b.numel += p.numel();
    bytes += size;
    bucket_of_[k] = buckets_.size() - 1;
  }
  // One buffer per dtype and device, the buckets as consecutive ranges of it in bucket order.
  std::vector<std::int64_t> sizes;
  for (Bucket& b : buckets_) {
    std::size_t k = 0;
    while (k < buffers_.size() &&
           !(buffers_[k].dtype() == b.flat.dtype() && buffers_[k].device() == b.flat.device()))
      ++k;
    if (k == buffers_.size()) {
      buffers_.push_back(b.flat);
      sizes.push_back(0);
    }
    b.buffer = k;
    b.start = sizes[k];
    sizes[k] += b.numel;
  }
  for (std::size_t k = 0; k < buffers_.size(); ++k)
    buffers_[k] = empty({sizes[k]}, buffers_[k].options());
  for (Bucket& b : buckets_) b.flat = narrow(buffers_[b.buffer], 0, b.start, b.numel);
}

std::vector<std::vector<std::string>> DistributedDataParallel::bucket_names() const {
  std::vector<std::vector<std::string>> out;
  for (const Bucket& b : buckets_) {
    out.emplace_back();
    for (std::size_t i : b.params) out.back().push_back(names_[i]);
  }
  return out;
}

void DistributedDataParallel::reset_step() {
  // A backward that ended in an error may have left buckets running: they must finish (they are
  // collectives the other ranks take part in) before the next step starts new ones.
  for (Bucket& b : buckets_) {
    if (b.started) {
      try {
        b.work.wait();
      } catch (...) {  // reported already by the step that failed
      }
    }
    b.started = false;
    b.pending = b.params.size();
    b.work = {};
  }
  std::fill(ready_.begin(), ready_.end(), false);
  next_bucket_ = 0;
  armed_ = false;
  ready_count_ = 0;
  ready_at_start_.assign(buckets_.size(), 0);
  stats_ = {};
  stats_.gradients_after_start.assign(buckets_.size(), 0);
  stats_.started_in_backward.assign(buckets_.size(), false);
}

void DistributedDataParallel::broadcast_buffers() {
  if (!options_.broadcast_buffers() || group_->size() == 1) return;
  NoGradGuard no_grad;
  std::vector<dist::Work> works;
  for (const Tensor& b : module_->buffers()) works.push_back(group_->broadcast_async(b, 0));
  for (auto& w : works) w.wait();
}

Tensor DistributedDataParallel::forward(const Tensor& x) {
  if (armed_) reset_step();
  if (is_training()) broadcast_buffers();
  return (*module_)(x);
}

void DistributedDataParallel::train(bool on) {
  const bool was_training = is_training();
  Module::train(on);
  if (was_training && !on) broadcast_buffers();
}

void DistributedDataParallel::on_gradient_ready(std::size_t index) {
  if (no_sync_) return;
  if (!armed_) {
    reset_step();
    armed_ = true;
    first_hook_ = now_seconds();
    autograd::queue_callback([this] { finish_backward(); });
  }
  if (ready_[index]) return;
  ready_[index] = true;
  ++ready_count_;
  Bucket& b = buckets_[bucket_of_[index]];
  --b.pending;
  if (options_.overlap()) start_ready_buckets(true);
}

void DistributedDataParallel::start_ready_buckets(bool in_backward) {
  const std::size_t first = next_bucket_;
  while (next_bucket_ < buckets_.size() && buckets_[next_bucket_].pending == 0) ++next_bucket_;
  // Buckets [first, next_bucket_) can start: each run of them that is contiguous in one buffer is
  // one collective (fewer, larger all-reduces cost less than many small ones).
  for (std::size_t i = first; i < next_bucket_;) {
    std::size_t j = i + 1;
    while (j < next_bucket_ && buckets_[j].buffer == buckets_[i].buffer &&
           buckets_[j].start == buckets_[j - 1].start + buckets_[j - 1].numel)
      ++j;
    std::int64_t numel = 0;
    for (std::size_t k = i; k < j; ++k) {
      fill_bucket(k);
      numel += buckets_[k].numel;
    }
    const dist::Work work = group_->all_reduce_async(
        narrow(buffers_[buckets_[i].buffer], 0, buckets_[i].start, numel), dist::ReduceOp::Mean);
    for (std::size_t k = i; k < j; ++k) {
      buckets_[k].work = work;
      buckets_[k].started = true;
      ready_at_start_[k] = ready_count_;
      stats_.started_in_backward[k] = in_backward;
    }
    i = j;
  }
}

void DistributedDataParallel::fill_bucket(std::size_t index) {
  Bucket& b = buckets_[index];
  NoGradGuard no_grad;
  for (std::size_t j = 0; j < b.params.size(); ++j) {
    const Tensor& p = params_[b.params[j]];
    Tensor slot = narrow(b.flat, 0, b.offsets[j], p.numel());
    const Tensor g = p.grad();
    if (g.defined())
      slot.copy_(reshape(g, {p.numel()}));
    else
      slot.zero_();  // an unused parameter (find_unused_parameters) adds nothing
  }
}

void DistributedDataParallel::finish_backward() {
  std::vector<std::string> missing;
  for (std::size_t i = 0; i < params_.size(); ++i)
    if (!ready_[i]) missing.push_back(names_[i]);
  if (!missing.empty()) {
    CT_CHECK(options_.find_unused_parameters(),
             "DistributedDataParallel: expected a gradient for every trainable parameter in "
             "backward(), got none for {} on rank {} (pass find_unused_parameters(true) when "
             "some parameters may go unused in a step)",
             fmt::format("'{}'", fmt::join(missing, "', '")), group_->rank());
    for (std::size_t i = 0; i < params_.size(); ++i)
      if (!ready_[i]) {
        ready_[i] = true;
        --buckets_[bucket_of_[i]].pending;
      }
  }
  start_ready_buckets(false);
  const double t0 = now_seconds();
  NoGradGuard no_grad;
  for (std::size_t k = 0; k < buckets_.size(); ++k) {
    Bucket& b = buckets_[k];
    b.work.wait();
    b.started = false;
    stats_.gradients_after_start[k] =
        static_cast<int>(static_cast<std::int64_t>(params_.size()) - ready_at_start_[k]);
    for (std::size_t j = 0; j < b.params.size(); ++j) {
      Tensor& p = params_[b.params[j]];
      const Tensor mean = reshape(narrow(b.flat, 0, b.offsets[j], p.numel()), p.shape());
      Tensor g = p.grad();
      if (g.defined())
        g.copy_(mean);
      else
        p.set_grad(mean.clone());
    }
  }
  const double t1 = now_seconds();
  stats_.wait_seconds = t1 - t0;
  stats_.backward_seconds = t1 - first_hook_;
  armed_ = false;
}

}  // namespace convtape::nn
