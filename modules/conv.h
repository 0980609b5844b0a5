// Convolution layers. One N-d class of each kind serves every rank:
//   ConvNd (Conv1d / Conv2d / Conv3d)  x [N, C, *S] -> y [N, K, *S'] = conv(x, weight, bias)
//       weight [K, C/groups, *R], bias [K]; stride, padding (symmetric, per-dim, per-side
//       (low, high) pairs, or "same" / "same_lower" / "valid"), dilation, groups.
//       S' = floor((S + pad_lo + pad_hi - dilation * (R - 1) - 1) / stride) + 1; "same" gives
//       ceil(S / stride) (the extra padding on the high side), "valid" no padding. padding_mode
//       ("zeros", "reflect", "replicate", "circular", PyTorch's) says what the padding reads.
//   ConvTransposeNd (ConvTranspose1d / 2d / 3d)  x [N, C, *S] -> y [N, K, *S']
//       weight [C, K/groups, *R], bias [K]; zero padding only (PyTorch has no other
//       padding_mode for them either);
//       S' = (S - 1) * stride - 2 * padding + dilation * (R - 1) + output_padding + 1.
// Options are PyTorch-style builders: Conv2dOptions(3, 16, 3).stride(2).padding(1).groups(1)
// .bias(false). Per-dim values are given once (every spatial dim) or once per dim.
// Default initialisation (PyTorch's): weight kaiming_uniform(a = sqrt(5)), i.e. U(-b, b) with
// b = 1 / sqrt(fan_in), bias U(-1 / sqrt(fan_in), 1 / sqrt(fan_in)), where fan_in =
// weight.size(1) * prod(R): C/groups * prod(R) for ConvNd, K/groups * prod(R) for ConvTransposeNd.
// .init(scheme) / .bias_init(scheme) replace them (see modules/init.h); reset_parameters(gen)
// draws again.
// PuzzleLib's Conv1D / Conv2D / Conv3D parameter set maps onto the options through
// ConvNdOptions::puzzlelib (modules/puzzlelib.h documents each parameter).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "modules/init.h"
#include "modules/module.h"
#include "modules/per_dim.h"
#include "modules/puzzlelib.h"
#include "ops/conv.h"
#include "ops/shape.h"

namespace convtape::nn {

// The settings every conv layer shares: rank, channels, kernel_size, stride, dilation, groups,
// bias, exact and the initialisers, with setters that return the derived options (CRTP), so that
// ConvNdOptions and ConvTransposeNdOptions write each once and add only their padding forms.
// Errors name Derived::kName.
template <class Derived>
class ConvLayerOptions {
 public:
  Derived& stride(PerDim s);
  Derived& dilation(PerDim d);
  Derived& groups(std::int64_t g);
  Derived& bias(bool on);
  Derived& init(init::Scheme weight_init);
  Derived& bias_init(init::Scheme bias_init);
  // As ConvOptions::exact / ConvTransposeOptions::exact: the CPU never runs this layer's
  // convolution (or its gradients) through Winograd, so small-integer data gives exact results.
  // Off by default.
  Derived& exact(bool on = true);

  std::int64_t rank() const { return rank_; }
  std::int64_t in_channels() const { return in_channels_; }
  std::int64_t out_channels() const { return out_channels_; }
  const std::vector<std::int64_t>& kernel_size() const { return kernel_size_; }
  const std::vector<std::int64_t>& stride() const { return stride_; }
  const std::vector<std::int64_t>& dilation() const { return dilation_; }
  std::int64_t groups() const { return groups_; }
  bool bias() const { return bias_; }
  bool exact() const { return exact_; }
  const init::Scheme& init() const { return init_; }
  const init::Scheme& bias_init() const { return bias_init_; }

 protected:
  ConvLayerOptions(std::int64_t rank, std::int64_t in_channels, std::int64_t out_channels,
                   PerDim kernel_size);
  Derived& self() { return static_cast<Derived&>(*this); }
  // A per-dim setting of rank values, each >= min.
  std::vector<std::int64_t> checked_per_dim(const char* what, const PerDim& v,
                                            std::int64_t min) const;

  std::int64_t rank_;
  std::int64_t in_channels_;
  std::int64_t out_channels_;
  std::vector<std::int64_t> kernel_size_;
  std::vector<std::int64_t> stride_;
  std::vector<std::int64_t> dilation_;
  std::int64_t groups_ = 1;
  bool bias_ = true;
  bool exact_ = false;
  init::Scheme init_ = init::Scheme::pytorch_default();
  init::Scheme bias_init_ = init::Scheme::fan_in_uniform();
};

class ConvNdOptions : public ConvLayerOptions<ConvNdOptions> {
 public:
  static constexpr const char* kName = "ConvNdOptions";
  ConvNdOptions(std::int64_t rank, std::int64_t in_channels, std::int64_t out_channels,
                PerDim kernel_size);
  // PuzzleLib's ConvND(nd, ...) as options of rank nd.
  static ConvNdOptions puzzlelib(std::int64_t rank, const PuzzleLibConv& p);

  // Symmetric padding, once or per dim.
  ConvNdOptions& padding(PerDim p);
  // Per-side padding: one (low, high) pair for every dim, or one per dim.
  ConvNdOptions& padding(std::vector<std::pair<std::int64_t, std::int64_t>> p);
  ConvNdOptions& padding(PaddingKind mode);
  // "same", "same_lower" or "valid" (any case). A template so that a braced list such as
  // padding({1, 2}) never binds to it.
  template <class S>
  requires std::is_convertible_v<const S&, std::string_view> ConvNdOptions& padding(const S& mode) {
    return padding(padding_kind_from_name(std::string_view(mode)));
  }

  // PyTorch's padding_mode: what the padding reads. PadMode::Constant is "zeros" (the default);
  // "reflect", "replicate" and "circular" pad the input with pad() in that mode (explicit padding
  // as given, "same" / "same_lower" as the op resolves it for the input's size, "valid" none) and
  // then convolve without padding, as PyTorch's Conv*d do.
  ConvNdOptions& padding_mode(PadMode mode);
  // "zeros", "reflect", "replicate" or "circular" (PyTorch's names).
  ConvNdOptions& padding_mode(std::string_view name);

  const std::vector<std::pair<std::int64_t, std::int64_t>>& padding() const { return padding_; }
  // Explicit (the padding() values), Same, SameLower or Valid.
  PaddingKind padding_kind() const { return padding_kind_; }
  PadMode padding_mode() const { return padding_mode_; }

  // The op's options for these settings. With a padding_mode other than zeros they hold no
  // padding: the layer pads the input first (padding_for).
  ConvOptions conv_options() const;
  // The (low, high) padding of every spatial dim for an input of these spatial sizes.
  std::vector<std::pair<std::int64_t, std::int64_t>> padding_for(const Shape& spatial) const;
  static PaddingKind padding_kind_from_name(std::string_view name);
  static PadMode padding_mode_from_name(std::string_view name);

 private:
  std::vector<std::pair<std::int64_t, std::int64_t>> padding_;
  PaddingKind padding_kind_ = PaddingKind::Explicit;
  PadMode padding_mode_ = PadMode::Constant;
};

// Rank-fixed spellings: Conv2dOptions(in, out, kernel) is ConvNdOptions(2, in, out, kernel).
class Conv1dOptions : public ConvNdOptions {
 public:
  Conv1dOptions(std::int64_t in_channels, std::int64_t out_channels, PerDim kernel_size)
      : ConvNdOptions(1, in_channels, out_channels, std::move(kernel_size)) {}
  static ConvNdOptions puzzlelib(const PuzzleLibConv& p) { return ConvNdOptions::puzzlelib(1, p); }
};
class Conv2dOptions : public ConvNdOptions {
 public:
  Conv2dOptions(std::int64_t in_channels, std::int64_t out_channels, PerDim kernel_size)
      : ConvNdOptions(2, in_channels, out_channels, std::move(kernel_size)) {}
  static ConvNdOptions puzzlelib(const PuzzleLibConv& p) { return ConvNdOptions::puzzlelib(2, p); }
  // PuzzleLib's positional order: Conv2D(inmaps, outmaps, size, stride, pad, dilation, wscale,
  // useBias, initscheme, groups) (name and empty left out).
  static ConvNdOptions puzzlelib(std::int64_t inmaps, std::int64_t outmaps, std::int64_t size,
                                 PerDim stride = 1, PerDim pad = 0, PerDim dilation = 1,
                                 double wscale = 1.0, bool use_bias = true,
                                 init::PuzzleLibInit initscheme = "xavier_uniform",
                                 std::int64_t groups = 1);
};
class Conv3dOptions : public ConvNdOptions {
 public:
  Conv3dOptions(std::int64_t in_channels, std::int64_t out_channels, PerDim kernel_size)
      : ConvNdOptions(3, in_channels, out_channels, std::move(kernel_size)) {}
  static ConvNdOptions puzzlelib(const PuzzleLibConv& p) { return ConvNdOptions::puzzlelib(3, p); }
};

// The N-d convolution layer; Conv1d / Conv2d / Conv3d fix its rank.
class ConvNd : public Module {
 public:
  explicit ConvNd(const ConvNdOptions& options);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override;
  std::string extra_repr() const override;
  // Draws the weight and bias again from the options' schemes.
  void reset_parameters(Generator* gen = nullptr);

  const ConvNdOptions& options() const { return options_; }
  Tensor weight() const { return weight_; }
  Tensor bias() const { return bias_; }  // undefined without bias

 protected:
  ConvNd(std::int64_t rank, const ConvNdOptions& options, const char* name);

 private:
  ConvNdOptions options_;
  ConvOptions conv_;
  Tensor weight_;
  Tensor bias_;
};

class Conv1d : public ConvNd {
 public:
  explicit Conv1d(const ConvNdOptions& options) : ConvNd(1, options, "Conv1d") {}
};
class Conv2d : public ConvNd {
 public:
  explicit Conv2d(const ConvNdOptions& options) : ConvNd(2, options, "Conv2d") {}
};
class Conv3d : public ConvNd {
 public:
  explicit Conv3d(const ConvNdOptions& options) : ConvNd(3, options, "Conv3d") {}
};

class ConvTransposeNdOptions : public ConvLayerOptions<ConvTransposeNdOptions> {
 public:
  static constexpr const char* kName = "ConvTransposeNdOptions";
  ConvTransposeNdOptions(std::int64_t rank, std::int64_t in_channels, std::int64_t out_channels,
                         PerDim kernel_size);

  ConvTransposeNdOptions& padding(PerDim p);
  ConvTransposeNdOptions& output_padding(PerDim p);

  const std::vector<std::int64_t>& padding() const { return padding_; }
  const std::vector<std::int64_t>& output_padding() const { return output_padding_; }

  ConvTransposeOptions conv_transpose_options() const;

 private:
  std::vector<std::int64_t> padding_;
  std::vector<std::int64_t> output_padding_;
};

class ConvTranspose1dOptions : public ConvTransposeNdOptions {
 public:
  ConvTranspose1dOptions(std::int64_t in_channels, std::int64_t out_channels, PerDim kernel_size)
      : ConvTransposeNdOptions(1, in_channels, out_channels, std::move(kernel_size)) {}
};
class ConvTranspose2dOptions : public ConvTransposeNdOptions {
 public:
  ConvTranspose2dOptions(std::int64_t in_channels, std::int64_t out_channels, PerDim kernel_size)
      : ConvTransposeNdOptions(2, in_channels, out_channels, std::move(kernel_size)) {}
};
class ConvTranspose3dOptions : public ConvTransposeNdOptions {
 public:
  ConvTranspose3dOptions(std::int64_t in_channels, std::int64_t out_channels, PerDim kernel_size)
      : ConvTransposeNdOptions(3, in_channels, out_channels, std::move(kernel_size)) {}
};

class ConvTransposeNd : public Module {
 public:
  explicit ConvTransposeNd(const ConvTransposeNdOptions& options);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override;
  std::string extra_repr() const override;
  void reset_parameters(Generator* gen = nullptr);

  const ConvTransposeNdOptions& options() const { return options_; }
  Tensor weight() const { return weight_; }
  Tensor bias() const { return bias_; }

 protected:
  ConvTransposeNd(std::int64_t rank, const ConvTransposeNdOptions& options, const char* name);

 private:
  ConvTransposeNdOptions options_;
  ConvTransposeOptions conv_;
  Tensor weight_;
  Tensor bias_;
};

class ConvTranspose1d : public ConvTransposeNd {
 public:
  explicit ConvTranspose1d(const ConvTransposeNdOptions& options)
      : ConvTransposeNd(1, options, "ConvTranspose1d") {}
};
class ConvTranspose2d : public ConvTransposeNd {
 public:
  explicit ConvTranspose2d(const ConvTransposeNdOptions& options)
      : ConvTransposeNd(2, options, "ConvTranspose2d") {}
};
class ConvTranspose3d : public ConvTransposeNd {
 public:
  explicit ConvTranspose3d(const ConvTransposeNdOptions& options)
      : ConvTransposeNd(3, options, "ConvTranspose3d") {}
};

// "[1, 2]": the per-dim values as extra_repr prints them.
std::string format_per_dim(const std::vector<std::int64_t>& v);

}  // namespace convtape::nn
