// Signal-style correlate / convolve and the d2l corr2d helpers, mapped onto conv: in1 becomes a
// one-sample, one-channel input [1, 1, *S1], in2 a one-filter kernel [1, 1, *S2], and the mode a
// per-dim padding of in1 (full: n2 - 1 on both sides; same: n2 / 2 below and (n2 - 1) / 2 above,
// which starts the crop at (n2 - 1) / 2 of the full result; valid: none). convolve is conv with
// the kernel flipped. The gradients of both arguments are conv's.
#include "ops/signal.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "core/checked.h"
#include "ops/conv.h"
#include "ops/detail.h"
#include "ops/linalg.h"
#include "ops/shape.h"

namespace convtape {

SignalMode signal_mode_from_string(const std::string& name) {
  if (name == "full") return SignalMode::Full;
  if (name == "same") return SignalMode::Same;
  if (name == "valid") return SignalMode::Valid;
  CT_FAIL("signal mode: expected 'full', 'same' or 'valid', got '{}'", name);
}

namespace {

constexpr std::int64_t kMaxRank = 8;  // conv's limit on spatial dims

void check_signal(std::string_view op, const Tensor& in1, const Tensor& in2) {
  detail::check_defined(op, in1, "in1");
  detail::check_defined(op, in2, "in2");
  detail::check_floating_same(op, {in1, in2});
  CT_CHECK(in1.dim() == in2.dim(), "{}: expected in1 and in2 of one rank, got {} and {}", op,
           to_string(in1.shape()), to_string(in2.shape()));
  CT_CHECK(in1.dim() >= 1 && in1.dim() <= kMaxRank,
           "{}: expected inputs of rank 1 to {}, got {} and {}", op, kMaxRank,
           to_string(in1.shape()), to_string(in2.shape()));
  CT_CHECK(in1.numel() > 0 && in2.numel() > 0, "{}: expected non-empty inputs, got {} and {}", op,
           to_string(in1.shape()), to_string(in2.shape()));
  detail::check_same_device(op, {in1, in2});
}

bool at_least(const Shape& a, const Shape& b) {
  for (std::size_t d = 0; d < a.size(); ++d)
    if (a[d] < b[d]) return false;
  return true;
}

// [*S] as a conv operand [1, 1, *S].
Tensor as_operand(const Tensor& t) {
  Shape s{1, 1};
  s.insert(s.end(), t.shape().begin(), t.shape().end());
  return reshape(t, s);
}

std::vector<std::int64_t> every_dim(std::int64_t rank) {
  std::vector<std::int64_t> dims;
  for (std::int64_t d = 0; d < rank; ++d) dims.push_back(d);
  return dims;
}

// The mode's crop of the full correlation (convolution: kernel flipped) of in1 with in2 as the
// kernel.
Tensor conv_signal(const Tensor& in1, const Tensor& in2, SignalMode mode, bool convolution) {
  std::vector<std::pair<std::int64_t, std::int64_t>> pads;
  for (std::int64_t d = 0; d < in2.dim(); ++d) {
    const std::int64_t n2 = in2.size(d);
    switch (mode) {
      case SignalMode::Full:
        pads.emplace_back(n2 - 1, n2 - 1);
        break;
      case SignalMode::Same:
        pads.emplace_back(n2 / 2, (n2 - 1) / 2);
        break;
      case SignalMode::Valid:
        pads.emplace_back(0, 0);
        break;
    }
  }
  const Tensor y = conv(as_operand(in1), as_operand(in2), {},
                        ConvOptions().padding(pads).flip_kernel(convolution));
  return reshape(y, Shape(y.shape().begin() + 2, y.shape().end()));
}

// The mode's output shape for conv input in1 and kernel in2 (after any swap), refused with the op's
// name when it does not fit, before conv sees it. The padded input conv forms is n1 + 2 * (n2 - 1)
// for 'full' (the output n1 + n2 - 1 plus n2 - 1 more: checked too), n1 + n2 - 1 for 'same' and
// n1 for 'valid'.
void check_sizes(std::string_view op, const Tensor& in1, const Tensor& in2, SignalMode mode) {
  Shape out;
  for (std::int64_t d = 0; d < in1.dim(); ++d) {
    const std::int64_t n1 = in1.size(d), n2 = in2.size(d);
    auto full = checked::try_add(n1, n2 - 1);
    CT_CHECK(full.has_value(),
             "{}: expected the full output extent n1 + n2 - 1 to fit in 64 bits, got {} + {} - 1 "
             "in dim {}",
             op, n1, n2, d);
    if (mode == SignalMode::Full)
      CT_CHECK(checked::try_add(*full, n2 - 1).has_value(),
               "{}: expected the padded extent n1 + 2 * (n2 - 1) to fit in 64 bits, got n1 = {}, "
               "n2 = {} in dim {}",
               op, n1, n2, d);
    out.push_back(mode == SignalMode::Full   ? *full
                  : mode == SignalMode::Same ? n1
                                             : std::max(n1, n2) - std::min(n1, n2) + 1);
  }
  checked::nbytes(out, dtype_size(in1.dtype()), op);
}

Tensor signal_impl(std::string_view op, const Tensor& in1, const Tensor& in2, SignalMode mode,
                   bool convolution) {
  check_signal(op, in1, in2);
  bool swap = false;
  if (mode == SignalMode::Valid) {
    const bool in1_larger = at_least(in1.shape(), in2.shape());
    CT_CHECK(in1_larger || at_least(in2.shape(), in1.shape()),
             "{}: expected, for mode 'valid', one input at least as large as the other in every "
             "dim, got {} and {}",
             op, to_string(in1.shape()), to_string(in2.shape()));
    swap = !in1_larger;
  } else if (mode == SignalMode::Full) {
    // The smaller operand as the kernel: fewer products per output value.
    swap = in2.numel() > in1.numel();
  }
  check_sizes(op, swap ? in2 : in1, swap ? in1 : in2, mode);
  if (!swap) return conv_signal(in1, in2, mode, convolution);
  // Convolution commutes; correlation comes out reversed in every dim when its operands swap.
  const Tensor y = conv_signal(in2, in1, mode, convolution);
  return convolution ? y : flip(y, every_dim(y.dim()));
}

}  // namespace

Tensor correlate(const Tensor& in1, const Tensor& in2, SignalMode mode) {
  return signal_impl("correlate", in1, in2, mode, false);
}
Tensor correlate(const Tensor& in1, const Tensor& in2, const std::string& mode) {
  return correlate(in1, in2, signal_mode_from_string(mode));
}
Tensor convolve(const Tensor& in1, const Tensor& in2, SignalMode mode) {
  return signal_impl("convolve", in1, in2, mode, true);
}
Tensor convolve(const Tensor& in1, const Tensor& in2, const std::string& mode) {
  return convolve(in1, in2, signal_mode_from_string(mode));
}

namespace d2l {

namespace {

void check_pair(std::string_view op, const Tensor& x, const Tensor& k) {
  detail::check_defined(op, x, "x");
  detail::check_defined(op, k, "k");
  detail::check_floating_same(op, {x, k});
}

// The kernel's last two dims fit the input's last two.
void check_fits(std::string_view op, const Tensor& x, const Tensor& k) {
  const std::int64_t hx = x.size(x.dim() - 2), wx = x.size(x.dim() - 1);
  const std::int64_t hk = k.size(k.dim() - 2), wk = k.size(k.dim() - 1);
  CT_CHECK(hk >= 1 && wk >= 1 && hk <= hx && wk <= wx,
           "{}: expected a non-empty kernel no larger than the input, got x {} and k {}", op,
           to_string(x.shape()), to_string(k.shape()));
  detail::check_same_device(op, {x, k});
}

}  // namespace

Tensor corr2d(const Tensor& x, const Tensor& k) {
  constexpr std::string_view op = "corr2d";
  check_pair(op, x, k);
  CT_CHECK(x.dim() == 2 && k.dim() == 2, "{}: expected x [H, W] and k [h, w], got {} and {}", op,
           to_string(x.shape()), to_string(k.shape()));
  check_fits(op, x, k);
  const Tensor y = conv2d(as_operand(x), as_operand(k));
  return reshape(y, {y.size(2), y.size(3)});
}

Tensor corr2d_multi_in(const Tensor& x, const Tensor& k) {
  constexpr std::string_view op = "corr2d_multi_in";
  check_pair(op, x, k);
  CT_CHECK(x.dim() == 3 && k.dim() == 3 && x.size(0) == k.size(0),
           "{}: expected x [C, H, W] and k [C, h, w] with one C, got {} and {}", op,
           to_string(x.shape()), to_string(k.shape()));
  check_fits(op, x, k);
  const Tensor y = conv2d(unsqueeze(x, 0), unsqueeze(k, 0));
  return reshape(y, {y.size(2), y.size(3)});
}

Tensor corr2d_multi_in_out(const Tensor& x, const Tensor& k) {
  constexpr std::string_view op = "corr2d_multi_in_out";
  check_pair(op, x, k);
  CT_CHECK(x.dim() == 3 && k.dim() == 4 && x.size(0) == k.size(1),
           "{}: expected x [C, H, W] and k [O, C, h, w] with one C, got {} and {}", op,
           to_string(x.shape()), to_string(k.shape()));
  check_fits(op, x, k);
  return squeeze(conv2d(unsqueeze(x, 0), k), 0);
}

Tensor corr2d_multi_in_out_1x1(const Tensor& x, const Tensor& k) {
  constexpr std::string_view op = "corr2d_multi_in_out_1x1";
  check_pair(op, x, k);
  CT_CHECK(
      x.dim() == 3 && k.dim() == 4 && x.size(0) == k.size(1) && k.size(2) == 1 && k.size(3) == 1,
      "{}: expected x [C, H, W] and k [O, C, 1, 1] with one C, got {} and {}", op,
      to_string(x.shape()), to_string(k.shape()));
  detail::check_same_device(op, {x, k});
  // h * w and o * h * w (the output) are at most x's and k's element counts times each other's
  // extents; h * w <= numel(x) fits, and the result's size is checked where it is made.
  const std::int64_t c = x.size(0), h = x.size(1), w = x.size(2), o = k.size(0);
  return reshape(matmul(reshape(k, {o, c}), reshape(x, {c, h * w})), {o, h, w});
}

}  // namespace d2l

}  // namespace convtape
