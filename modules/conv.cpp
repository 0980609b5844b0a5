// Convolution layers: option builders (checked per dim as they are set), PuzzleLib's parameter
// mapping, construction checks, initialisation and forward through ops/conv. See conv.h.
#include "modules/conv.h"

#include <algorithm>

#include "core/autograd.h"
#include "core/checked.h"
#include "ops/detail.h"
#include "ops/factory.h"

namespace convtape::nn {

namespace {

void check_channels(const char* owner, std::int64_t in, std::int64_t out, std::int64_t groups) {
  CT_CHECK(in > 0 && out > 0, "{}: expected positive in_channels and out_channels, got {} and {}",
           owner, in, out);
  CT_CHECK(groups > 0, "{}: expected groups > 0, got {}", owner, groups);
  CT_CHECK(in % groups == 0 && out % groups == 0,
           "{}: expected in_channels and out_channels divisible by groups = {}, got {} and {}",
           owner, groups, in, out);
}

// The spatial ranks ops/conv.h serves; checked before any per-dim vector of `rank` values is made.
constexpr std::int64_t kMaxRank = 8;

// The weight's shape, refused under the layer's name when its size does not fit (in_channels,
// out_channels and kernel sizes are each valid, but their product may not be).
void check_weight(const std::string& owner, const Shape& w) {
  checked::nbytes(w, sizeof(float), owner);
}

std::string rank_name(const char* base, std::int64_t rank) {
  return fmt::format("{}{}d", base, rank);
}

}  // namespace

std::string format_per_dim(const std::vector<std::int64_t>& v) {
  return fmt::format("[{}]", fmt::join(v, ", "));
}

// ---- ConvLayerOptions: the settings both kinds share

template <class Derived>
ConvLayerOptions<Derived>::ConvLayerOptions(std::int64_t rank, std::int64_t in_channels,
                                            std::int64_t out_channels, PerDim kernel_size)
    : rank_(rank), in_channels_(in_channels), out_channels_(out_channels) {
  CT_CHECK(rank >= 1 && rank <= kMaxRank, "{}: expected rank 1 to {}, got {}", Derived::kName,
           kMaxRank, rank);
  kernel_size_ = checked_per_dim("kernel_size", kernel_size, 1);
  stride_.assign(static_cast<std::size_t>(rank), 1);
  dilation_.assign(static_cast<std::size_t>(rank), 1);
}

template <class Derived>
std::vector<std::int64_t> ConvLayerOptions<Derived>::checked_per_dim(const char* what,
                                                                     const PerDim& v,
                                                                     std::int64_t min) const {
  auto values = convtape::detail::per_dim(Derived::kName, what, v.values, rank_);
  convtape::detail::check_at_least(Derived::kName, what, values, min);
  return values;
}

template <class Derived>
Derived& ConvLayerOptions<Derived>::stride(PerDim s) {
  stride_ = checked_per_dim("stride", s, 1);
  return self();
}

template <class Derived>
Derived& ConvLayerOptions<Derived>::dilation(PerDim d) {
  dilation_ = checked_per_dim("dilation", d, 1);
  return self();
}

template <class Derived>
Derived& ConvLayerOptions<Derived>::groups(std::int64_t g) {
  CT_CHECK(g >= 1, "{}: expected groups >= 1, got {}", Derived::kName, g);
  groups_ = g;
  return self();
}

template <class Derived>
Derived& ConvLayerOptions<Derived>::bias(bool on) {
  bias_ = on;
  return self();
}

template <class Derived>
Derived& ConvLayerOptions<Derived>::exact(bool on) {
  exact_ = on;
  return self();
}

template <class Derived>
Derived& ConvLayerOptions<Derived>::init(init::Scheme weight_init) {
  init_ = std::move(weight_init);
  return self();
}

template <class Derived>
Derived& ConvLayerOptions<Derived>::bias_init(init::Scheme bias_init) {
  bias_init_ = std::move(bias_init);
  return self();
}

template class ConvLayerOptions<ConvNdOptions>;
template class ConvLayerOptions<ConvTransposeNdOptions>;

// ---- ConvNdOptions

ConvNdOptions::ConvNdOptions(std::int64_t rank, std::int64_t in_channels, std::int64_t out_channels,
                             PerDim kernel_size)
    : ConvLayerOptions(rank, in_channels, out_channels, std::move(kernel_size)) {
  padding_.assign(static_cast<std::size_t>(rank), {0, 0});
}

ConvNdOptions& ConvNdOptions::padding(PerDim p) {
  const auto v = checked_per_dim("padding", p, 0);
  padding_.clear();
  for (auto x : v) padding_.emplace_back(x, x);
  padding_kind_ = PaddingKind::Explicit;
  return *this;
}

ConvNdOptions& ConvNdOptions::padding(std::vector<std::pair<std::int64_t, std::int64_t>> p) {
  CT_CHECK(p.size() == 1 || static_cast<std::int64_t>(p.size()) == rank_,
           "ConvNdOptions: expected 1 or {} (low, high) padding pairs, got {}", rank_, p.size());
  for (const auto& [lo, hi] : p)
    CT_CHECK(lo >= 0 && hi >= 0, "ConvNdOptions: expected padding >= 0, got ({}, {})", lo, hi);
  if (p.size() == 1) p.assign(static_cast<std::size_t>(rank_), p[0]);
  padding_ = std::move(p);
  padding_kind_ = PaddingKind::Explicit;
  return *this;
}

ConvNdOptions& ConvNdOptions::padding(PaddingKind mode) {
  padding_kind_ = mode;
  if (mode == PaddingKind::Explicit) padding_.assign(static_cast<std::size_t>(rank_), {0, 0});
  return *this;
}

PaddingKind ConvNdOptions::padding_kind_from_name(std::string_view name) {
  return padding_kind_from_string(name, "ConvNdOptions");
}

ConvNdOptions& ConvNdOptions::padding_mode(PadMode mode) {
  padding_mode_ = mode;
  return *this;
}

ConvNdOptions& ConvNdOptions::padding_mode(std::string_view name) {
  return padding_mode(padding_mode_from_name(name));
}

PadMode ConvNdOptions::padding_mode_from_name(std::string_view name) {
  if (name == "zeros") return PadMode::Constant;
  if (name == "reflect") return PadMode::Reflect;
  if (name == "replicate") return PadMode::Replicate;
  if (name == "circular") return PadMode::Circular;
  CT_FAIL(
      "ConvNdOptions: expected padding_mode 'zeros', 'reflect', 'replicate' or 'circular', got "
      "'{}'",
      name);
}

ConvOptions ConvNdOptions::conv_options() const {
  ConvOptions o;
  o.stride(stride_).dilation(dilation_).groups(groups_).exact(exact_);
  if (padding_mode_ != PadMode::Constant)
    o.padding(0);
  else if (padding_kind_ == PaddingKind::Explicit)
    o.padding(padding_);
  else
    o.padding(padding_kind_);
  return o;
}

std::vector<std::pair<std::int64_t, std::int64_t>> ConvNdOptions::padding_for(
    const Shape& spatial) const {
  CT_CHECK(static_cast<std::int64_t>(spatial.size()) == rank_,
           "ConvNdOptions: expected {} spatial sizes, got {}", rank_, to_string(spatial));
  if (padding_kind_ == PaddingKind::Explicit) return padding_;
  std::vector<std::pair<std::int64_t, std::int64_t>> pads;
  for (std::size_t d = 0; d < spatial.size(); ++d) {
    if (padding_kind_ == PaddingKind::Valid) {
      pads.emplace_back(0, 0);
      continue;
    }
    // The op's rule for "same" (ops/conv.cpp; PyTorch's for stride 1): out = ceil(in / stride),
    // total padding max((out - 1) * stride + dilation * (kernel - 1) + 1 - in, 0), the odd one on
    // the high side ("same") or the low side ("same_lower").
    const std::int64_t in = spatial[d], st = stride_[d];
    const std::int64_t dk = checked::add(
        checked::mul(dilation_[d], kernel_size_[d] - 1, "ConvNdOptions", "the dilated kernel"), 1,
        "ConvNdOptions", "the dilated kernel");
    const std::int64_t out = checked::div_ceil(in, st);
    const std::int64_t total = std::max<std::int64_t>(dk + ((out - 1) * st - in), 0);
    const std::int64_t lo = padding_kind_ == PaddingKind::Same ? total / 2 : total - total / 2;
    pads.emplace_back(lo, total - lo);
  }
  return pads;
}

// ---- ConvNd

ConvNd::ConvNd(const ConvNdOptions& options) : ConvNd(options.rank(), options, nullptr) {}

ConvNd::ConvNd(std::int64_t rank, const ConvNdOptions& options, const char* name)
    : options_(options) {
  const std::string owner = name ? std::string(name) : rank_name("Conv", options.rank());
  CT_CHECK(options.rank() == rank, "{}: expected options of rank {}, got rank {}", owner, rank,
           options.rank());
  check_channels(owner.c_str(), options.in_channels(), options.out_channels(), options.groups());
  conv_ = options.conv_options();
  Shape w{options.out_channels(), options.in_channels() / options.groups()};
  w.insert(w.end(), options.kernel_size().begin(), options.kernel_size().end());
  check_weight(owner, w);
  weight_ = register_parameter("weight", empty(w));
  if (options.bias()) bias_ = register_parameter("bias", empty({options.out_channels()}));
  reset_parameters();
}

void ConvNd::reset_parameters(Generator* gen) {
  const init::Fans fans = init::calculate_fans(weight_);
  options_.init().apply(weight_, fans, gen);
  if (bias_.defined()) options_.bias_init().apply(bias_, fans, gen);
}

Tensor ConvNd::forward(const Tensor& input) {
  Tensor x = input;
  if (options_.padding_mode() != PadMode::Constant && x.defined() && x.dim() >= options_.rank()) {
    // PyTorch's order: pad in the mode, then an unpadded convolution (whose checks see x padded).
    const Shape spatial(x.shape().end() - options_.rank(), x.shape().end());
    x = pad(x, options_.padding_for(spatial), options_.padding_mode());
  }
  switch (options_.rank()) {
    case 1:
      return conv1d(x, weight_, bias_, conv_);
    case 2:
      return conv2d(x, weight_, bias_, conv_);
    case 3:
      return conv3d(x, weight_, bias_, conv_);
    default:
      return conv(x, weight_, bias_, conv_);
  }
}

std::string ConvNd::type_name() const {
  return rank_name("Conv", options_.rank());
}

std::string ConvNd::extra_repr() const {
  const ConvNdOptions& o = options_;
  std::string s =
      fmt::format("{}, {}, kernel_size={}, stride={}", o.in_channels(), o.out_channels(),
                  format_per_dim(o.kernel_size()), format_per_dim(o.stride()));
  switch (o.padding_kind()) {
    case PaddingKind::Same:
      s += ", padding=same";
      break;
    case PaddingKind::SameLower:
      s += ", padding=same_lower";
      break;
    case PaddingKind::Valid:
      s += ", padding=valid";
      break;
    case PaddingKind::Explicit: {
      const auto& p = o.padding();
      const bool symmetric =
          std::all_of(p.begin(), p.end(), [](const auto& e) { return e.first == e.second; });
      const bool zero = std::all_of(p.begin(), p.end(),
                                    [](const auto& e) { return e.first == 0 && e.second == 0; });
      if (zero) break;
      if (symmetric) {
        std::vector<std::int64_t> v;
        for (const auto& e : p) v.push_back(e.first);
        s += ", padding=" + format_per_dim(v);
      } else {
        std::vector<std::string> v;
        for (const auto& [lo, hi] : p) v.push_back(fmt::format("({}, {})", lo, hi));
        s += fmt::format(", padding=[{}]", fmt::join(v, ", "));
      }
      break;
    }
  }
  const auto& d = o.dilation();
  if (std::any_of(d.begin(), d.end(), [](std::int64_t x) { return x != 1; }))
    s += ", dilation=" + format_per_dim(d);
  if (o.groups() != 1) s += fmt::format(", groups={}", o.groups());
  if (!o.bias()) s += ", bias=false";
  if (o.padding_mode() != PadMode::Constant)
    s += fmt::format(", padding_mode={}", pad_mode_name(o.padding_mode()));
  if (o.exact()) s += ", exact=true";
  return s;
}

// ---- ConvTransposeNdOptions

ConvTransposeNdOptions::ConvTransposeNdOptions(std::int64_t rank, std::int64_t in_channels,
                                               std::int64_t out_channels, PerDim kernel_size)
    : ConvLayerOptions(rank, in_channels, out_channels, std::move(kernel_size)) {
  padding_.assign(static_cast<std::size_t>(rank), 0);
  output_padding_.assign(static_cast<std::size_t>(rank), 0);
}

ConvTransposeNdOptions& ConvTransposeNdOptions::padding(PerDim p) {
  padding_ = checked_per_dim("padding", p, 0);
  return *this;
}

ConvTransposeNdOptions& ConvTransposeNdOptions::output_padding(PerDim p) {
  output_padding_ = checked_per_dim("output_padding", p, 0);
  return *this;
}

ConvTransposeOptions ConvTransposeNdOptions::conv_transpose_options() const {
  ConvTransposeOptions o;
  o.stride(stride_)
      .padding(padding_)
      .output_padding(output_padding_)
      .dilation(dilation_)
      .groups(groups_)
      .exact(exact_);
  return o;
}

// ---- ConvTransposeNd

ConvTransposeNd::ConvTransposeNd(const ConvTransposeNdOptions& options)
    : ConvTransposeNd(options.rank(), options, nullptr) {}

ConvTransposeNd::ConvTransposeNd(std::int64_t rank, const ConvTransposeNdOptions& options,
                                 const char* name)
    : options_(options) {
  const std::string owner = name ? std::string(name) : rank_name("ConvTranspose", options.rank());
  CT_CHECK(options.rank() == rank, "{}: expected options of rank {}, got rank {}", owner, rank,
           options.rank());
  check_channels(owner.c_str(), options.in_channels(), options.out_channels(), options.groups());
  for (std::size_t d = 0; d < options.stride().size(); ++d)
    CT_CHECK(options.output_padding()[d] < std::max(options.stride()[d], options.dilation()[d]),
             "{}: expected output_padding smaller than stride or dilation, got output_padding {}, "
             "stride {}, dilation {}",
             owner, format_per_dim(options.output_padding()), format_per_dim(options.stride()),
             format_per_dim(options.dilation()));
  conv_ = options.conv_transpose_options();
  Shape w{options.in_channels(), options.out_channels() / options.groups()};
  w.insert(w.end(), options.kernel_size().begin(), options.kernel_size().end());
  check_weight(owner, w);
  weight_ = register_parameter("weight", empty(w));
  if (options.bias()) bias_ = register_parameter("bias", empty({options.out_channels()}));
  reset_parameters();
}

void ConvTransposeNd::reset_parameters(Generator* gen) {
  const init::Fans fans = init::calculate_fans(weight_);
  options_.init().apply(weight_, fans, gen);
  if (bias_.defined()) options_.bias_init().apply(bias_, fans, gen);
}

Tensor ConvTransposeNd::forward(const Tensor& x) {
  switch (options_.rank()) {
    case 1:
      return conv_transpose1d(x, weight_, bias_, conv_);
    case 2:
      return conv_transpose2d(x, weight_, bias_, conv_);
    case 3:
      return conv_transpose3d(x, weight_, bias_, conv_);
    default:
      return conv_transpose(x, weight_, bias_, conv_);
  }
}

std::string ConvTransposeNd::type_name() const {
  return rank_name("ConvTranspose", options_.rank());
}

std::string ConvTransposeNd::extra_repr() const {
  const ConvTransposeNdOptions& o = options_;
  const auto any = [](const std::vector<std::int64_t>& v, std::int64_t dflt) {
    return std::any_of(v.begin(), v.end(), [&](std::int64_t x) { return x != dflt; });
  };
  std::string s =
      fmt::format("{}, {}, kernel_size={}, stride={}", o.in_channels(), o.out_channels(),
                  format_per_dim(o.kernel_size()), format_per_dim(o.stride()));
  if (any(o.padding(), 0)) s += ", padding=" + format_per_dim(o.padding());
  if (any(o.output_padding(), 0)) s += ", output_padding=" + format_per_dim(o.output_padding());
  if (any(o.dilation(), 1)) s += ", dilation=" + format_per_dim(o.dilation());
  if (o.groups() != 1) s += fmt::format(", groups={}", o.groups());
  if (!o.bias()) s += ", bias=false";
  if (o.exact()) s += ", exact=true";
  return s;
}

}  // namespace convtape::nn
