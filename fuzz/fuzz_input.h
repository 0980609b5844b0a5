// The fuzz targets' shared pieces: a byte reader that turns any byte string into op choices and
// arguments (magnitudes drawn to reach 0, 1, small values, 2^31, 2^62, INT64_MAX and negatives),
// tiny input tensors, the Finding exception, and the checks every returned tensor must pass.
//
// Contract of a target body: it returns, or an op throws convtape::Error, which the body swallows.
// Anything else escapes: a Finding (a result that breaks an invariant, e.g. a view outside its
// storage, an argmax index of -1, an in-place op that silently computed a wrong answer), any other
// exception (std::bad_alloc, std::length_error, ...), a crash, a sanitizer report or a hang.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "convtape.h"

namespace ct_fuzz {

using convtape::Shape;
using convtape::Tensor;
using i64 = std::int64_t;
// Exact products and sums of int64 extents (GCC's -Wpedantic wants __extension__ for __int128).
__extension__ typedef __int128 i128;

// A result that cannot be right; escapes the body like any non-convtape exception.
struct Finding : std::logic_error {
  using std::logic_error::logic_error;
};

// Real input tensors stay this small; only the arguments are huge.
inline constexpr i64 kMaxTinyElements = 1024;
// Results at most this large are read back in full (under ASan every element is checked) and
// differentiated when they require grad.
inline constexpr i64 kMaxTouchedElements = i64{1} << 16;

class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}

  // Past the end every read is 0, which decodes to the tamest choice (1 for values, the first
  // option for picks), so short inputs still make valid calls.
  std::uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  bool flag() { return (byte() & 1) != 0; }
  std::size_t pick(std::size_t n) { return byte() % n; }
  std::uint64_t u64() {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | byte();
    return v;
  }

  // Tame inputs draw almost every argument small (so that deep, valid configurations are
  // common: a conv has a dozen arguments), wild ones draw a third of them from the extremes.
  void set_tame(bool tame) { tame_ = tame; }
  // The dtype of the input tensors: 0 float32, 1 float64, 2 int64, 3 mixed (each tensor its own).
  void set_dtype_mode(int mode) { dtype_mode_ = mode; }
  int dtype_mode() const { return dtype_mode_; }

  // An argument: mostly small, else one of the extremes where size arithmetic breaks.
  i64 value() {
    static constexpr i64 kSmall[8] = {1, 2, 1, 3, 1, 4, 2, 5};
    static constexpr i64 kMax = std::numeric_limits<i64>::max();
    static constexpr i64 kMin = std::numeric_limits<i64>::min();
    static constexpr i64 kWild[24] = {0,
                                      -1,
                                      -2,
                                      7,
                                      64,
                                      1000,
                                      (i64{1} << 31) - 1,
                                      i64{1} << 31,
                                      (i64{1} << 31) + 1,
                                      i64{1} << 32,
                                      (i64{1} << 32) + 1,
                                      i64{1} << 40,
                                      i64{1} << 61,
                                      i64{1} << 62,
                                      (i64{1} << 62) + 1,
                                      kMax - 1,
                                      kMax,
                                      kMin,
                                      kMin + 1,
                                      -(i64{1} << 31),
                                      -(i64{1} << 62),
                                      65536,
                                      3 * (i64{1} << 61),
                                      0};
    const std::uint8_t b = byte();
    if (b < (tame_ ? 248 : 170)) return kSmall[b & 7];
    const std::size_t w = (b - 160) % 25;
    if (w == 24) return static_cast<i64>(u64());  // any 64-bit pattern
    return kWild[w];
  }
  // A small extent for a real tensor's dim, 0 to 4.
  i64 tiny_extent() {
    static constexpr i64 kExt[8] = {1, 2, 3, 1, 0, 4, 2, 3};
    return kExt[byte() & 7];
  }
  // How many per-dim values a list gets: usually `rank` or 1 (both valid), sometimes 0 or one too
  // many (both to be refused).
  std::size_t list_length(std::size_t rank) {
    const std::uint8_t b = byte() & 15;
    if (b == 13 && !tame_) return 0;
    if (b == 14 && !tame_) return rank + 1;
    return b >= 7 && b <= 12 ? 1 : rank;
  }
  std::vector<i64> values(std::size_t n) {
    std::vector<i64> v(n);
    for (auto& x : v) x = value();
    return v;
  }
  // Values that are mostly 0 (paddings, output paddings), otherwise as value().
  std::vector<i64> offsets(std::size_t n) {
    std::vector<i64> v(n);
    for (auto& x : v) x = (byte() & 3) != 0 ? 0 : value();
    return v;
  }
  std::vector<std::pair<i64, i64>> pairs(std::size_t n) {
    std::vector<std::pair<i64, i64>> v(n);
    for (auto& [a, b] : v) {
      a = value();
      b = value();
    }
    return v;
  }
  // A double argument (bounds, fill values, alpha): special values included.
  double real() {
    static constexpr double kInf = std::numeric_limits<double>::infinity();
    static const double kReal[16] = {0.0,  1.0,   -1.0, 0.5,    2.0,  -kInf, kInf, std::nan(""),
                                     -0.0, 1e308, -3.5, 1e-310, 0.25, -0.75, 3.0,  -2.0};
    return kReal[byte() & 15];
  }
  bool exhausted() const { return pos_ >= size_; }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
  bool tame_ = false;
  int dtype_mode_ = 3;
};

// A shape of tiny extents with at most kMaxTinyElements elements.
inline Shape tiny_shape(Input& in, std::size_t rank) {
  Shape s(rank);
  for (auto& d : s) d = in.tiny_extent();
  i64 n = 1;
  for (auto& d : s) {
    if (n * (d == 0 ? 1 : d) > kMaxTinyElements) d = 1;
    n *= d == 0 ? 1 : d;
  }
  return s;
}

// A tiny tensor of `shape` (at most kMaxTinyElements elements), float32 or float64, filled with a
// pattern chosen by the input: distinct finite values, all -inf, NaNs, -inf among finite values,
// all equal (ties), or int64 (which floating ops must refuse with an error).
inline Tensor tiny(Input& in, Shape shape, bool allow_special = true) {
  i64 n = 1;
  for (auto& d : shape) {
    if (d < 0) d = 0;
    if (d > kMaxTinyElements) d = 1;
    if (d != 0 && n * d > kMaxTinyElements) d = 1;
    if (d != 0) n *= d;
  }
  i64 count = 1;
  for (const i64 d : shape) count *= d;
  const std::uint8_t mode = in.byte();
  const std::uint8_t kind = mode & 7;
  // dtype 0-4 float32, 5-6 float64, 7 int64 (which floating ops must refuse).
  std::uint8_t dtype = (mode >> 3) & 7;
  if (in.dtype_mode() == 0) dtype = 0;
  if (in.dtype_mode() == 1) dtype = 5;
  if (in.dtype_mode() == 2) dtype = 7;
  std::vector<double> v(static_cast<std::size_t>(count));
  constexpr double kInf = std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < v.size(); ++i) {
    double x = static_cast<double>(static_cast<i64>((i * 7 + 3) % 11) - 5) * 0.25;
    if (allow_special) {
      if (kind == 4) x = -kInf;
      if (kind == 5 && i % 3 == 1) x = std::nan("");
      if (kind == 6 && i % 2 == 0) x = -kInf;
    }
    if (kind == 7) x = 1.5;
    v[i] = x;
  }
  if (dtype == 7) {
    std::vector<std::int64_t> iv(v.size());
    for (std::size_t i = 0; i < v.size(); ++i)
      iv[i] = std::isfinite(v[i]) ? static_cast<std::int64_t>(v[i] * 4) : 0;
    return convtape::from_vector(iv, shape);
  }
  if (dtype >= 5) return convtape::from_vector(v, shape, convtape::kFloat64);
  return convtape::from_vector(std::vector<float>(v.begin(), v.end()), shape, convtape::kFloat32);
}

// An int64 index tensor holding argument-space values (negative, past the end, 2^62, ...).
inline Tensor wild_index(Input& in, std::size_t n) {
  std::vector<std::int64_t> v(n);
  for (auto& x : v) x = in.flag() ? static_cast<i64>(in.byte() % 5) : in.value();
  return convtape::from_vector(v, Shape{static_cast<i64>(n)});
}

// Every tensor an op returns: extents >= 0, an element count that fits int64, a view inside its
// storage; small ones are read back in full, which under ASan proves every element addressable.
inline void check_result(const Tensor& t, const char* op) {
  if (!t.defined()) return;
  // The element count: 0 when any extent is 0 (the other extents may then be anything >= 0, as
  // in NumPy), else a product that must fit int64.
  i128 count = 1;
  for (const i64 d : t.shape()) {
    if (d < 0)
      throw Finding(std::string(op) + ": returned a negative extent in " +
                    convtape::to_string(t.shape()));
    if (d == 0) count = 0;
  }
  for (const i64 d : t.shape()) {
    if (count == 0) break;
    count *= d;
    if (count > std::numeric_limits<i64>::max())
      throw Finding(std::string(op) + ": returned a shape whose element count overflows int64: " +
                    convtape::to_string(t.shape()));
  }
  if (t.strides().size() != t.shape().size())
    throw Finding(std::string(op) + ": returned strides of another rank than the shape");
  if (count == 0) return;
  i128 lo = t.offset();
  i128 hi = t.offset();
  for (std::size_t d = 0; d < t.shape().size(); ++d) {
    const i128 span = static_cast<i128>(t.shape()[d] - 1) * t.strides()[d];
    (span < 0 ? lo : hi) += span;
  }
  const i128 capacity = static_cast<i128>(t.storage()->nbytes()) / convtape::dtype_size(t.dtype());
  if (lo < 0 || hi >= capacity)
    throw Finding(std::string(op) + ": returned a view outside its storage: shape " +
                  convtape::to_string(t.shape()) + ", strides " + convtape::to_string(t.strides()) +
                  ", offset " + std::to_string(t.offset()) + ", storage of " +
                  std::to_string(t.storage()->nbytes()) + " bytes");
  if (count <= kMaxTouchedElements && t.is_cpu()) (void)t.to_vector<double>();
}

// Differentiates a small result that requires grad (the backward kernels see the same arguments)
// and checks the gradients it leaves on `inputs`.
inline void check_backward(const Tensor& y, const std::vector<Tensor>& inputs, const char* op) {
  if (!y.defined() || !y.requires_grad() || !y.is_floating_point()) return;
  i128 count = 1;
  for (const i64 d : y.shape()) count = count > kMaxTouchedElements ? count : count * d;
  if (count > kMaxTouchedElements) return;
  y.sum().backward();
  for (const auto& x : inputs) {
    if (!x.defined() || !x.requires_grad()) continue;
    const Tensor g = x.grad();
    check_result(g, op);
    if (g.defined() && g.shape() != x.shape())
      throw Finding(std::string(op) + ": gradient of shape " + convtape::to_string(g.shape()) +
                    " for an input of shape " + convtape::to_string(x.shape()));
  }
}

}  // namespace ct_fuzz
