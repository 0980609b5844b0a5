// What the op front ends hand to either backend (cpu/ and cuda/ take the same arguments): the
// elementwise and reduction selectors, the fully resolved geometries of convolution, pooling and
// correlation, and the hyper-parameters of a fused optimizer step. The front ends (ops/, optim/)
// check and resolve; the kernels trust these values.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "core/shape.h"
#include "core/tensor.h"

namespace convtape {

enum class Unary {
  Neg,
  Exp,
  Log,
  Sqrt,
  Abs,
  Sign,
  Relu,
  Sigmoid,
  Tanh,
  LeakyRelu,   // p0 = negative slope
  Clamp,       // p0 = low, p1 = high (NaN passes through)
  PowScalar,   // x ^ p0
  AddScalar,   // x + p0
  MulScalar,   // x * p0
  DivScalar,   // x / p0 (a true division: x * (1 / p0) would round twice)
  RSubScalar,  // p0 - x
  RDivScalar,  // p0 / x
};

enum class Binary {
  Add,
  Sub,
  Mul,
  Div,
  Pow,
  // Gradient maps: a = dy, b = the saved tensor named in the comment.
  ReluGrad,       // b = x
  LeakyReluGrad,  // b = x, p0 = slope
  SigmoidGrad,    // b = y
  TanhGrad,       // b = y
  AbsGrad,        // b = x
  ClampGrad,      // b = x, p0 = low, p1 = high
  SqrtGrad,       // b = y
  PowScalarGrad,  // b = x, p0 = exponent
};

// Reductions over the middle axis of [outer, mid, inner].
enum class Reduce { Sum, Max, Min };

// The maps of the compare kernel (ops/compare.h), over operands of one dtype (float32, float64 or
// int64), giving the operands' dtype: the comparisons 1 where true and 0 where false (false for a
// NaN operand, except Ne: true); And / Or read nonzero as true (NaN too); Max / Min the larger /
// smaller operand, NaN when either is NaN, the first operand when they compare equal.
enum class Compare { Eq, Ne, Lt, Le, Gt, Ge, And, Or, Max, Min };

// A fully resolved convolution: every per-dim vector has one entry per spatial dim. Only pad_lo
// enters the index maths; out fixes the output size (callers derive it, including pad_hi).
struct ConvGeometry {
  std::int64_t batch = 0, channels = 0, out_channels = 0, groups = 1;
  Shape in, out, kernel;
  Shape stride, dilation, input_dilation, pad_lo;
  // ConvOptions::exact: the CPU runs only the exact GEMM / direct paths, never Winograd (whose
  // transforms round differently). The CUDA backend ignores it: cuDNN chooses its algorithm, and
  // TF32 is already off.
  bool exact = false;

  std::int64_t spatial() const { return static_cast<std::int64_t>(in.size()); }
  std::int64_t in_numel() const { return numel(in); }
  std::int64_t out_numel() const { return numel(out); }
  std::int64_t kernel_numel() const { return numel(kernel); }
  std::int64_t group_channels() const { return channels / groups; }
  std::int64_t group_out_channels() const { return out_channels / groups; }
  // 1x1 kernel, unit strides and dilations, no padding: the input is already the column matrix.
  bool pointwise() const {
    for (std::size_t d = 0; d < in.size(); ++d)
      if (kernel[d] != 1 || stride[d] != 1 || input_dilation[d] != 1 || pad_lo[d] != 0 ||
          out[d] != in[d])
        return false;
    return true;
  }
};

// A fully resolved pooling of x [N, C, *in] into [N, C, *out]: per-dim vectors hold one entry per
// spatial dim. Adaptive pooling uses only batch, channels, in and out.
struct PoolGeometry {
  std::int64_t batch = 0, channels = 0;
  Shape in, out;
  Shape kernel, stride, dilation, pad_lo, pad_hi;
  bool adaptive = false;
  // Average pooling's divisor: with count_include_pad the window clipped to the padded extent
  // [-pad_lo, in + pad_hi), else the number of input elements it covers; a non-zero
  // divisor_override replaces both. Adaptive windows divide by their size.
  bool count_include_pad = true;
  std::int64_t divisor_override = 0;

  std::int64_t planes() const { return batch * channels; }
  std::int64_t spatial() const { return static_cast<std::int64_t>(in.size()); }
  std::int64_t in_numel() const { return numel(in); }
  std::int64_t out_numel() const { return numel(out); }
};

// bmm's operands (core/kernels.def): a [B, R, C] operand is row-major, or the transpose of a
// row-major [B, C, R] batch (strides R C, 1, R). True for the transpose; any other layout is
// refused with an error naming the operand. Both backends check it here.
inline bool bmm_operand_transposed(const Tensor& t, const char* name) {
  if (t.is_contiguous()) return false;
  const std::int64_t r = t.size(1), c = t.size(2);
  CT_CHECK(
      t.strides()[1] == 1 && t.strides()[2] == r && (t.size(0) == 1 || t.strides()[0] == r * c),
      "matmul: expected a contiguous {0} or the transpose of one, got shape {1} with strides {2}",
      name, to_string(t.shape()), to_string(t.strides()));
  return true;
}

// One SGD step of a parameter p with gradient g (core/kernels.def's sgd_step_), PyTorch's SGD as
// optim/sgd.h states it, element by element in p's dtype:
//   d   = g + weight_decay * p                                   (when weight_decay != 0)
//   buf = first ? d : momentum * buf + (1 - dampening) * d       (when momentum != 0)
//   d   = nesterov ? d + momentum * buf : buf                    (when momentum != 0)
//   p   = p - lr * d
// Every product is rounded before the sum it feeds (no FMA), and the coefficients are converted to
// the dtype as the unfused tensor ops convert them (weight_decay, momentum, 1 - dampening, -lr), so
// that the fused step gives the bits of the unfused one.
struct SgdStep {
  double lr = 0.0, momentum = 0.0, dampening = 0.0, weight_decay = 0.0;
  bool nesterov = false;
  // The momentum buffer is new: its contents are never read, and it becomes d.
  bool first = false;
};

// The first value outside a range, and where it is (find_out_of_range in core/kernels.def).
struct OutOfRange {
  std::int64_t position = -1;  // flat position; -1: every value is in range
  std::int64_t value = 0;
  bool found() const { return position >= 0; }
};

struct PoolResult {
  Tensor values;
  Tensor indices;  // int64, undefined when not asked for
};

// The checked arguments of a correlation and the sizes they imply.
struct CorrelationGeometry {
  std::int64_t batch = 0, channels = 0, height = 0, width = 0;
  std::int64_t kernel = 1, max_displacement = 0, stride1 = 1, stride2 = 1, padding = 0;

  std::int64_t radius() const { return (kernel - 1) / 2; }
  std::int64_t border() const { return max_displacement + radius(); }
  std::int64_t grid_radius() const { return max_displacement / stride2; }
  std::int64_t grid() const { return 2 * grid_radius() + 1; }  // D
  std::int64_t padded_height() const { return height + 2 * padding; }
  std::int64_t padded_width() const { return width + 2 * padding; }
  // ceil((padded - 2 * border) / stride1), as the Caffe layer computes it; < 1 when nothing fits.
  std::int64_t out_height() const { return ceil_div(padded_height() - 2 * border(), stride1); }
  std::int64_t out_width() const { return ceil_div(padded_width() - 2 * border(), stride1); }

 private:
  // Without a + b - 1, which overflows for a huge stride1 (ops/correlation.cpp checks the rest).
  static std::int64_t ceil_div(std::int64_t a, std::int64_t b) {
    return a <= 0 ? 0 : a / b + (a % b != 0 ? 1 : 0);
  }
};

}  // namespace convtape
