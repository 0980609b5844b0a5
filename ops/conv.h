// Convolution in full generality, for any number of spatial dims:
//   conv            x [N, C, *S], w [K, C/groups, *R], b [K] or undefined -> y [N, K, *S']
//                   stride, padding (symmetric, per-dim (low, high), SAME / SAME_LOWER / VALID),
//                   kernel (rhs) dilation, input (lhs) dilation, groups, cross-correlation by
//                   default or true convolution (flipped kernel).
//   conv1d/2d/3d    conv with the rank checked.
//   conv_transpose  x [N, C_in, *S], w [C_in, C_out/groups, *R], b [C_out] -> y [N, C_out, *S'],
//                   S' = (S - 1) * stride - 2 * padding + dilation * (R - 1) + output_padding + 1.
//   conv_general    JAX's lax.conv_general_dilated: layout strings for the operands and the
//                   result ("NHWC", "HWIO", "NHWC"; "NCHW", "OIHW", "NCHW"; "NWC", "WIO", "NWC";
//                   "NHWDC", "HWDIO", "NHWDC"; ...), window strides, padding, lhs / rhs dilation,
//                   feature_group_count and batch_group_count.
// On the CPU, float32 stride-1 3x3 2-D convs where it pays run through Winograd F(4x4, 3x3), whose
// transforms round differently from a plain sum of products; exact (an option of each of the
// three, or CONVTAPE_CONV_EXACT=1 for every conv, read once) forces the exact GEMM path. CUDA
// ignores it (cuDNN chooses; TF32 is off).
// Output size per spatial dim: floor((in' + pad_lo + pad_hi - dilation * (k - 1) - 1) / stride) + 1
// with in' = (in - 1) * input_dilation + 1. SAME (JAX's rule): out = ceil(in' / stride), total
// padding max((out - 1) * stride + (k - 1) * dilation + 1 - in', 0), low = total / 2 (SAME_LOWER:
// the rest); without input dilation in' = in. conv_general follows JAX's lax.conv_general_dilated
// exactly: it refuses string padding together with lhs dilation (JAX does: "String padding is not
// implemented for transposed convolution"), and it takes negative padding, which crops the
// lhs-dilated input (pads (-1, -2) drop its first position and its last two).
// Every extent is computed in checked arithmetic (core/checked.h): one past int64 is refused as
// "<op>: expected ... to fit in 64 bits, got <the user's values>", an output past the allocator's
// byte limit by its size; whatever fits gives PyTorch's / JAX's answer (a stride of 2^62 gives one
// output position, a padding of 2^61 a huge output that is then refused by its size).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace convtape {

enum class PaddingKind { Explicit, Same, SameLower, Valid };

// Per-dim values may be given once (used for every spatial dim) or once per spatial dim.
class ConvOptions {
 public:
  ConvOptions() = default;

  ConvOptions& stride(std::int64_t s) { return stride(std::vector<std::int64_t>{s}); }
  ConvOptions& stride(std::vector<std::int64_t> s) {
    stride_ = std::move(s);
    return *this;
  }
  // Symmetric padding: p on both sides of every dim, or p[d] on both sides of dim d.
  ConvOptions& padding(std::int64_t p) { return padding(std::vector<std::int64_t>{p}); }
  ConvOptions& padding(const std::vector<std::int64_t>& p);
  // Per-side padding: one (low, high) pair for every dim, or one per dim.
  ConvOptions& padding(std::vector<std::pair<std::int64_t, std::int64_t>> p) {
    padding_ = std::move(p);
    mode_ = PaddingKind::Explicit;
    return *this;
  }
  ConvOptions& padding(PaddingKind mode) {
    mode_ = mode;
    padding_.clear();
    return *this;
  }
  ConvOptions& dilation(std::int64_t d) { return dilation(std::vector<std::int64_t>{d}); }
  ConvOptions& dilation(std::vector<std::int64_t> d) {
    dilation_ = std::move(d);
    return *this;
  }
  ConvOptions& input_dilation(std::int64_t d) {
    return input_dilation(std::vector<std::int64_t>{d});
  }
  ConvOptions& input_dilation(std::vector<std::int64_t> d) {
    input_dilation_ = std::move(d);
    return *this;
  }
  ConvOptions& groups(std::int64_t g) {
    groups_ = g;
    return *this;
  }
  // true: convolution in the mathematical sense (the kernel is flipped along every spatial dim).
  ConvOptions& flip_kernel(bool flip = true) {
    flip_kernel_ = flip;
    return *this;
  }
  // true: forces the exact GEMM path on the CPU (im2col / implicit / 1x1 GEMM or the direct
  // kernels: every output an ordinary sum of products) for this conv and its gradients, never
  // Winograd, whose input and output transforms round differently (its accuracy is a measured
  // contract, docs/architecture.md). CONVTAPE_CONV_EXACT=1 in the environment (read once) does the
  // same for every conv. CUDA ignores it: cuDNN chooses its algorithm, and TF32 is already off.
  ConvOptions& exact(bool on = true) {
    exact_ = on;
    return *this;
  }

  const std::vector<std::int64_t>& stride() const { return stride_; }
  const std::vector<std::pair<std::int64_t, std::int64_t>>& padding() const { return padding_; }
  PaddingKind padding_kind() const { return mode_; }
  const std::vector<std::int64_t>& dilation() const { return dilation_; }
  const std::vector<std::int64_t>& input_dilation() const { return input_dilation_; }
  std::int64_t groups() const { return groups_; }
  bool flip_kernel() const { return flip_kernel_; }
  bool exact() const { return exact_; }

 private:
  std::vector<std::int64_t> stride_{1};
  std::vector<std::pair<std::int64_t, std::int64_t>> padding_{{0, 0}};
  PaddingKind mode_ = PaddingKind::Explicit;
  std::vector<std::int64_t> dilation_{1};
  std::vector<std::int64_t> input_dilation_{1};
  std::int64_t groups_ = 1;
  bool flip_kernel_ = false;
  bool exact_ = false;
};

class ConvTransposeOptions {
 public:
  ConvTransposeOptions& stride(std::int64_t s) { return stride(std::vector<std::int64_t>{s}); }
  ConvTransposeOptions& stride(std::vector<std::int64_t> s) {
    stride_ = std::move(s);
    return *this;
  }
  ConvTransposeOptions& padding(std::int64_t p) { return padding(std::vector<std::int64_t>{p}); }
  ConvTransposeOptions& padding(std::vector<std::int64_t> p) {
    padding_ = std::move(p);
    return *this;
  }
  ConvTransposeOptions& output_padding(std::int64_t p) {
    return output_padding(std::vector<std::int64_t>{p});
  }
  ConvTransposeOptions& output_padding(std::vector<std::int64_t> p) {
    output_padding_ = std::move(p);
    return *this;
  }
  ConvTransposeOptions& dilation(std::int64_t d) { return dilation(std::vector<std::int64_t>{d}); }
  ConvTransposeOptions& dilation(std::vector<std::int64_t> d) {
    dilation_ = std::move(d);
    return *this;
  }
  ConvTransposeOptions& groups(std::int64_t g) {
    groups_ = g;
    return *this;
  }
  // As ConvOptions::exact: no Winograd on the CPU for this conv and its gradients.
  ConvTransposeOptions& exact(bool on = true) {
    exact_ = on;
    return *this;
  }

  const std::vector<std::int64_t>& stride() const { return stride_; }
  const std::vector<std::int64_t>& padding() const { return padding_; }
  const std::vector<std::int64_t>& output_padding() const { return output_padding_; }
  const std::vector<std::int64_t>& dilation() const { return dilation_; }
  std::int64_t groups() const { return groups_; }
  bool exact() const { return exact_; }

 private:
  std::vector<std::int64_t> stride_{1};
  std::vector<std::int64_t> padding_{0};
  std::vector<std::int64_t> output_padding_{0};
  std::vector<std::int64_t> dilation_{1};
  std::int64_t groups_ = 1;
  bool exact_ = false;
};

Tensor conv(const Tensor& x, const Tensor& w, const Tensor& b = {},
            const ConvOptions& options = {});
Tensor conv1d(const Tensor& x, const Tensor& w, const Tensor& b = {},
              const ConvOptions& options = {});
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b = {},
              const ConvOptions& options = {});
Tensor conv3d(const Tensor& x, const Tensor& w, const Tensor& b = {},
              const ConvOptions& options = {});

Tensor conv_transpose(const Tensor& x, const Tensor& w, const Tensor& b = {},
                      const ConvTransposeOptions& options = {});
Tensor conv_transpose1d(const Tensor& x, const Tensor& w, const Tensor& b = {},
                        const ConvTransposeOptions& options = {});
Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& b = {},
                        const ConvTransposeOptions& options = {});
Tensor conv_transpose3d(const Tensor& x, const Tensor& w, const Tensor& b = {},
                        const ConvTransposeOptions& options = {});

// The output shape conv / conv_transpose would give for operand shapes x and w, with every
// argument check of the op (not the dtypes or devices) and nothing allocated; JAX's
// lax.conv_general_shape_tuple / conv_transpose_shape_tuple. Errors name `op`.
Shape conv_output_shape(const Shape& x, const Shape& w, const ConvOptions& options = {},
                        std::string_view op = "conv");
Shape conv_transpose_output_shape(const Shape& x, const Shape& w,
                                  const ConvTransposeOptions& options = {},
                                  std::string_view op = "conv_transpose");

// JAX-style dimension numbers: one layout string per operand. N / C name the batch and feature
// dims of lhs and out, O / I the output and input feature dims of rhs; every other letter is a
// spatial dim, ordered as in the rhs string and matched by letter across the three strings.
struct ConvDimensionNumbers {
  std::string lhs = "NCHW";
  std::string rhs = "OIHW";
  std::string out = "NCHW";
};

struct ConvGeneralOptions {
  std::vector<std::int64_t> window_strides;  // empty: all 1
  std::vector<std::pair<std::int64_t, std::int64_t>>
      padding;  // per spatial dim, used with Explicit; negative values crop (JAX)
  PaddingKind padding_kind = PaddingKind::Explicit;  // or Same, SameLower, Valid
  std::vector<std::int64_t> lhs_dilation;            // empty: all 1
  std::vector<std::int64_t> rhs_dilation;            // empty: all 1
  ConvDimensionNumbers dimension_numbers;
  std::int64_t feature_group_count = 1;
  std::int64_t batch_group_count = 1;
  bool exact = false;  // as ConvOptions::exact
};

Tensor conv_general(const Tensor& lhs, const Tensor& rhs, const ConvGeneralOptions& options);
// "SAME", "SAME_LOWER" or "VALID" as JAX spells them, in any case ("same" as PyTorch spells it);
// op names the caller in the error of any other name.
PaddingKind padding_kind_from_string(std::string_view name, std::string_view op = "conv_general");

}  // namespace convtape
