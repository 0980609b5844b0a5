// Pooling layers: construction checks (per-dim value counts) and forward through ops/pool. See
// pool.h.
#include "modules/pool.h"

#include <algorithm>

#include "modules/conv.h"
#include "ops/detail.h"

namespace convtape::nn {

namespace {

template <class V>
V expand(const V& v, std::int64_t rank) {
  return v.size() == 1 ? V(static_cast<std::size_t>(rank), v[0]) : v;
}

}  // namespace

PoolNd::PoolNd(Kind kind, std::int64_t rank, const PoolOptions& options)
    : kind_(kind), rank_(rank), options_(options) {
  const std::string owner = type_name();
  CT_CHECK(rank >= 1 && rank <= 3, "{}: expected rank 1, 2 or 3, got {}", owner, rank);
  CT_CHECK(!options.kernel_size().empty(), "{}: expected a kernel_size, got none", owner);
  convtape::detail::check_per_dim_count(owner, "kernel_size", options.kernel_size().size(), rank,
                                        false);
  convtape::detail::check_per_dim_count(owner, "stride", options.stride().size(), rank, true);
  convtape::detail::check_per_dim_count(owner, "padding", options.padding().size(), rank, false);
  convtape::detail::check_per_dim_count(owner, "dilation", options.dilation().size(), rank, false);
}

Tensor PoolNd::forward(const Tensor& x) {
  if (kind_ == Kind::Max) {
    switch (rank_) {
      case 1:
        return max_pool1d(x, options_);
      case 2:
        return max_pool2d(x, options_);
      default:
        return max_pool3d(x, options_);
    }
  }
  switch (rank_) {
    case 1:
      return avg_pool1d(x, options_);
    case 2:
      return avg_pool2d(x, options_);
    default:
      return avg_pool3d(x, options_);
  }
}

std::string PoolNd::type_name() const {
  return fmt::format("{}Pool{}d", kind_ == Kind::Max ? "Max" : "Avg", rank_);
}

std::string PoolNd::extra_repr() const {
  const PoolOptions& o = options_;
  const auto kernel = expand(o.kernel_size(), rank_);
  const auto stride = o.stride().empty() ? kernel : expand(o.stride(), rank_);
  const auto padding = expand(o.padding(), rank_);
  std::string pad;
  if (std::all_of(padding.begin(), padding.end(),
                  [](const auto& p) { return p.first == p.second; })) {
    std::vector<std::int64_t> v;
    for (const auto& p : padding) v.push_back(p.first);
    pad = format_per_dim(v);
  } else {
    std::vector<std::string> v;
    for (const auto& [lo, hi] : padding) v.push_back(fmt::format("({}, {})", lo, hi));
    pad = fmt::format("[{}]", fmt::join(v, ", "));
  }
  std::string s = fmt::format("kernel_size={}, stride={}, padding={}", format_per_dim(kernel),
                              format_per_dim(stride), pad);
  if (kind_ == Kind::Max) s += ", dilation=" + format_per_dim(expand(o.dilation(), rank_));
  s += fmt::format(", ceil_mode={}", o.ceil_mode());
  if (kind_ == Kind::Avg) {
    s += fmt::format(", count_include_pad={}", o.count_include_pad());
    if (o.divisor_override()) s += fmt::format(", divisor_override={}", *o.divisor_override());
  }
  return s;
}

AdaptivePoolNd::AdaptivePoolNd(Kind kind, std::int64_t rank, Shape output_size)
    : kind_(kind), rank_(rank), output_size_(std::move(output_size)) {
  const std::string owner = type_name();
  convtape::detail::check_per_dim_count(owner, "output_size", output_size_.size(), rank);
  CT_CHECK(
      std::all_of(output_size_.begin(), output_size_.end(), [](std::int64_t v) { return v >= 1; }),
      "{}: expected output_size >= 1, got {}", owner, format_per_dim(output_size_));
  output_size_ = expand(output_size_, rank);
}

Tensor AdaptivePoolNd::forward(const Tensor& x) {
  CT_CHECK(x.defined(), "{}: expected an input tensor, got an undefined one", type_name());
  CT_CHECK(x.dim() == rank_ + 2, "{}: expected input of rank {} ([N, C, {} spatial dim{}]), got {}",
           type_name(), rank_ + 2, rank_, rank_ == 1 ? "" : "s", to_string(x.shape()));
  return kind_ == Kind::Max ? adaptive_max_pool(x, output_size_)
                            : adaptive_avg_pool(x, output_size_);
}

std::string AdaptivePoolNd::type_name() const {
  return fmt::format("Adaptive{}Pool{}d", kind_ == Kind::Max ? "Max" : "Avg", rank_);
}

std::string AdaptivePoolNd::extra_repr() const {
  return "output_size=" + format_per_dim(output_size_);
}

}  // namespace convtape::nn
