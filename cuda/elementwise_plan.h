// Host side of the CUDA elementwise and copy kernels (plain C++, no CUDA headers): the translation
// of convtape::Unary / Binary into the kernels' kinds, and the layout plan of a call. A plan
// drops size-1 dims and merges each dim into the one before it when every operand steps through
// both as through one (stride[d - 1] == stride[d] * size[d]), so that a transposed or broadcast
// operand costs as few index divisions as its memory order allows; one merged dim needs none, and
// calls of fewer than 2^31 elements divide by multiply-shift in 32 bits (StridedIndexer32).
// cuda/elementwise.cpp and cuda/copy.cpp use it, and so do the host tests of the kernel bodies,
// which therefore run the very functors a device would.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "core/kernel_args.h"
#include "core/shape.h"
#include "core/tensor.h"
#include "cuda/elementwise_body.h"

namespace convtape::cuda {

inline UnaryKind unary_kind(Unary op) {
  switch (op) {
    case Unary::Neg:
      return UnaryKind::Neg;
    case Unary::Exp:
      return UnaryKind::Exp;
    case Unary::Log:
      return UnaryKind::Log;
    case Unary::Sqrt:
      return UnaryKind::Sqrt;
    case Unary::Abs:
      return UnaryKind::Abs;
    case Unary::Sign:
      return UnaryKind::Sign;
    case Unary::Relu:
      return UnaryKind::Relu;
    case Unary::Sigmoid:
      return UnaryKind::Sigmoid;
    case Unary::Tanh:
      return UnaryKind::Tanh;
    case Unary::LeakyRelu:
      return UnaryKind::LeakyRelu;
    case Unary::Clamp:
      return UnaryKind::Clamp;
    case Unary::PowScalar:
      return UnaryKind::PowScalar;
    case Unary::AddScalar:
      return UnaryKind::AddScalar;
    case Unary::MulScalar:
      return UnaryKind::MulScalar;
    case Unary::DivScalar:
      return UnaryKind::DivScalar;
    case Unary::RSubScalar:
      return UnaryKind::RSubScalar;
    case Unary::RDivScalar:
      return UnaryKind::RDivScalar;
  }
  CT_FAIL("unary: expected a known elementwise map, got code {}", static_cast<int>(op));
}

inline BinaryKind binary_kind(Binary op) {
  switch (op) {
    case Binary::Add:
      return BinaryKind::Add;
    case Binary::Sub:
      return BinaryKind::Sub;
    case Binary::Mul:
      return BinaryKind::Mul;
    case Binary::Div:
      return BinaryKind::Div;
    case Binary::Pow:
      return BinaryKind::Pow;
    case Binary::ReluGrad:
      return BinaryKind::ReluGrad;
    case Binary::LeakyReluGrad:
      return BinaryKind::LeakyReluGrad;
    case Binary::SigmoidGrad:
      return BinaryKind::SigmoidGrad;
    case Binary::TanhGrad:
      return BinaryKind::TanhGrad;
    case Binary::AbsGrad:
      return BinaryKind::AbsGrad;
    case Binary::ClampGrad:
      return BinaryKind::ClampGrad;
    case Binary::SqrtGrad:
      return BinaryKind::SqrtGrad;
    case Binary::PowScalarGrad:
      return BinaryKind::PowScalarGrad;
  }
  CT_FAIL("binary: expected a known elementwise map, got code {}", static_cast<int>(op));
}

// Strides of an operand of shape `from` read at every index of `to` (0 on broadcast dims).
inline Shape broadcast_strides_to(const Shape& from, const Shape& from_strides, const Shape& to) {
  Shape s(to.size(), 0);
  const std::size_t lead = to.size() - from.size();
  for (std::size_t i = 0; i < from.size(); ++i) s[lead + i] = from[i] == 1 ? 0 : from_strides[i];
  return s;
}

// Index spaces up to this size use StridedIndexer32.
inline constexpr std::int64_t kMaxIndex32 = (std::int64_t{1} << 31) - 1;

// The layout of N operands that are read (or written) at every index of `shape`, with the given
// per-operand strides. Throws when more than kMaxDims dims are left after merging.
template <std::size_t N>
MapLayout plan_layout(std::string_view op, const Shape& shape,
                      const std::array<const Shape*, N>& strides) {
  static_assert(N >= 1 && N <= 3, "a map has one to three strided operands");
  if (numel(shape) == 0) return {};  // nothing is launched
  Shape sizes;
  std::array<Shape, N> merged;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool mergeable = !sizes.empty();
    for (std::size_t k = 0; k < N && mergeable; ++k)
      mergeable = merged[k].back() == (*strides[k])[d] * shape[d];
    if (mergeable) {
      sizes.back() *= shape[d];
      for (std::size_t k = 0; k < N; ++k) merged[k].back() = (*strides[k])[d];
    } else {
      sizes.push_back(shape[d]);
      for (std::size_t k = 0; k < N; ++k) merged[k].push_back((*strides[k])[d]);
    }
  }
  const auto rank = static_cast<std::int64_t>(sizes.size());
  CT_CHECK(rank <= kMaxDims,
           "{}: expected at most {} dims once the contiguous ones are merged, got {} (shape {})",
           op, kMaxDims, rank, to_string(shape));

  MapLayout m;
  // One element (rank 0) reads offset 0 under every layout.
  const bool unit = std::all_of(merged.begin(), merged.end(),
                                [](const Shape& s) { return s.empty() || s[0] == 1; });
  const bool small = numel(sizes) <= kMaxIndex32;
  m.layout = rank == 0 || (rank == 1 && unit) ? Layout::Contiguous
             : rank == 1                      ? Layout::Linear
             : small                          ? Layout::Strided32
                                              : Layout::Strided;
  for (std::size_t k = 0; k < N; ++k) {
    StridedIndexer& ix = m.index[k];
    StridedIndexer32& ix32 = m.index32[k];
    ix.ndim = ix32.ndim = static_cast<int>(rank);
    for (std::size_t d = 0; d < sizes.size(); ++d) {
      ix.sizes[d] = sizes[d];
      ix.strides[d] = ix32.strides[d] = merged[k][d];
      if (small) ix32.sizes[d] = FastDivider(static_cast<std::uint32_t>(sizes[d]));
    }
  }
  return m;
}

// x read in y's (contiguous) order: operand 0 = x.
inline MapLayout plan_unary(std::string_view op, const Tensor& x) {
  return plan_layout<1>(op, x.shape(), {&x.strides()});
}

// a and b read at every index of the broadcast shape `out`: operands 0 = a, 1 = b.
inline MapLayout plan_binary(std::string_view op, const Tensor& a, const Tensor& b,
                             const Shape& out) {
  const Shape sa = broadcast_strides_to(a.shape(), a.strides(), out);
  const Shape sb = broadcast_strides_to(b.shape(), b.strides(), out);
  return plan_layout<2>(op, out, {&sa, &sb});
}

// dst written and src (broadcast to dst's shape) read: operands 0 = dst, 1 = src.
inline MapLayout plan_copy(std::string_view op, const Tensor& src, const Tensor& dst) {
  const Shape ss = broadcast_strides_to(src.shape(), src.strides(), dst.shape());
  return plan_layout<2>(op, dst.shape(), {&dst.strides(), &ss});
}

// operand 0 = dst.
inline MapLayout plan_fill(std::string_view op, const Tensor& dst) {
  return plan_layout<1>(op, dst.shape(), {&dst.strides()});
}

// The bytes [first, last) that a non-empty view can touch.
inline std::array<std::int64_t, 2> byte_extent(const Tensor& t) {
  std::int64_t lo = t.offset(), hi = t.offset();
  for (std::size_t d = 0; d < t.shape().size(); ++d) {
    const std::int64_t reach = (t.shape()[d] - 1) * t.strides()[d];
    (reach < 0 ? lo : hi) += reach;
  }
  const auto size = static_cast<std::int64_t>(dtype_size(t.dtype()));
  return {lo * size, (hi + 1) * size};
}

// Whether a copy must read src into a temporary first: the device writes dst while other threads
// may still read src, so any overlap of their bytes could let a thread read a value already
// overwritten. The one safe overlap is src being dst itself (read and written by one thread).
inline bool copy_needs_staging(const Tensor& src, const Tensor& dst) {
  if (src.numel() == 0 || dst.numel() == 0) return false;
  if (src.storage()->data() != dst.storage()->data()) return false;
  if (src.dtype() == dst.dtype() && src.offset() == dst.offset() &&
      broadcast_strides_to(src.shape(), src.strides(), dst.shape()) ==
          broadcast_strides_to(dst.shape(), dst.strides(), dst.shape()))
    return false;
  const auto s = byte_extent(src), d = byte_extent(dst);
  return s[0] < d[1] && d[0] < s[1];
}

}  // namespace convtape::cuda
