// Checked size arithmetic: the one place where products and sums of user-given extents, strides,
// paddings and offsets are computed. Every helper either returns the exact int64 result or throws
// "<op>: expected <what> to fit in 64 bits, got a * b" (or + / -) with the real operands, so no
// size computation wraps silently (signed overflow is undefined behaviour in C++ besides).
//
//   checked::mul(a, b, "conv", "the padded input extent")   -> a * b or Error
//   checked::try_mul(a, b)                                   -> std::optional (callers that want
//                                                               their own message or a fallback)
//   checked::numel(shape, "zeros")                           -> element count or Error
//   checked::nbytes(shape, dtype_size, "zeros")              -> byte count, at most kMaxBytes
//   checked::div_ceil(a, b)                                  -> ceil(a / b) for a >= 0, b > 0,
//                                                               without forming a + b - 1
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>

#include "core/error.h"
#include "core/shape.h"

namespace convtape::checked {

using int64 = std::int64_t;

// The largest block any allocator can hand out: byte offsets inside it must fit a ptrdiff_t.
inline constexpr int64 kMaxBytes = std::numeric_limits<std::ptrdiff_t>::max();

[[nodiscard]] inline std::optional<int64> try_mul(int64 a, int64 b) noexcept {
  int64 r;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}
[[nodiscard]] inline std::optional<int64> try_add(int64 a, int64 b) noexcept {
  int64 r;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}
[[nodiscard]] inline std::optional<int64> try_sub(int64 a, int64 b) noexcept {
  int64 r;
  if (__builtin_sub_overflow(a, b, &r)) return std::nullopt;
  return r;
}

// Throwing forms: `what` names the quantity in the user's terms ("the dilated kernel extent").
inline int64 mul(int64 a, int64 b, std::string_view op, std::string_view what) {
  const auto r = try_mul(a, b);
  CT_CHECK(r.has_value(), "{}: expected {} to fit in 64 bits, got {} * {}", op, what, a, b);
  return *r;
}
inline int64 add(int64 a, int64 b, std::string_view op, std::string_view what) {
  const auto r = try_add(a, b);
  CT_CHECK(r.has_value(), "{}: expected {} to fit in 64 bits, got {} + {}", op, what, a, b);
  return *r;
}
inline int64 sub(int64 a, int64 b, std::string_view op, std::string_view what) {
  const auto r = try_sub(a, b);
  CT_CHECK(r.has_value(), "{}: expected {} to fit in 64 bits, got {} - {}", op, what, a, b);
  return *r;
}

// Element count of a shape (1 for []). Empty shapes (a zero extent) count 0 whatever their other
// extents, as they address nothing; a negative extent is the caller's to refuse first.
[[nodiscard]] inline std::optional<int64> try_numel(const Shape& shape) noexcept {
  int64 n = 1;
  bool overflow = false;
  for (const int64 d : shape) {
    if (d == 0) return 0;
    overflow = overflow || __builtin_mul_overflow(n, d, &n);
  }
  if (overflow) return std::nullopt;
  return n;
}
inline int64 numel(const Shape& shape, std::string_view op) {
  const auto n = try_numel(shape);
  CT_CHECK(n.has_value(), "{}: expected a shape whose element count fits in 64 bits, got {}", op,
           to_string(shape));
  return *n;
}

// Bytes of a dense tensor of this shape; refused past kMaxBytes (no allocator can give more, and
// byte offsets into the block would overflow).
inline int64 nbytes(const Shape& shape, std::size_t item_size, std::string_view op) {
  const int64 n = numel(shape, op);
  const auto bytes = try_mul(n, static_cast<int64>(item_size));
  CT_CHECK(bytes.has_value() && *bytes <= kMaxBytes,
           "{}: expected a tensor of at most {} bytes, got shape {} ({} elements of {} bytes)", op,
           kMaxBytes, to_string(shape), n, item_size);
  return *bytes;
}

// ceil(a / b) and floor(a / b) for b > 0 and any a, without the a + b - 1 that can overflow.
[[nodiscard]] constexpr int64 div_floor(int64 a, int64 b) noexcept {
  const int64 q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}
[[nodiscard]] constexpr int64 div_ceil(int64 a, int64 b) noexcept {
  const int64 q = a / b;
  return (a % b != 0 && a > 0) ? q + 1 : q;
}

}  // namespace convtape::checked
