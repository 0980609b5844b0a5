// Strided N-d iteration shared by the CPU elementwise, copy and reduction kernels.
// Dims that are contiguous for every operand are merged and size-1 dims dropped, so that the
// innermost loop is as long as possible; rows are split across OpenMP threads when the work is
// large.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "core/shape.h"

namespace convtape::cpu {

// Minimum element count before a loop is split across threads.
inline constexpr std::int64_t kParallelGrain = 32768;

template <std::size_t N>
struct RowPlan {
  Shape shape;                   // coalesced extents (at least one dim)
  std::array<Shape, N> strides;  // per operand
};

template <std::size_t N>
RowPlan<N> plan_rows(const Shape& shape, const std::array<Shape, N>& strides) {
  RowPlan<N> p;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    if (!p.shape.empty()) {
      bool mergeable = true;
      for (std::size_t k = 0; k < N; ++k)
        mergeable = mergeable && p.strides[k].back() == strides[k][d] * shape[d];
      if (mergeable) {
        p.shape.back() *= shape[d];
        for (std::size_t k = 0; k < N; ++k) p.strides[k].back() = strides[k][d];
        continue;
      }
    }
    p.shape.push_back(shape[d]);
    for (std::size_t k = 0; k < N; ++k) p.strides[k].push_back(strides[k][d]);
  }
  if (p.shape.empty()) {
    p.shape.push_back(1);
    for (std::size_t k = 0; k < N; ++k) p.strides[k].push_back(0);
  }
  return p;
}

// Calls f(offsets, n, inner_strides) for every innermost row of `shape`, where offsets[k] is the
// element offset of the row's start for operand k. Rows may run on several threads; when the
// coalesced rows are too few to share (a contiguous tensor is one row), long rows are cut into
// pieces of at least kMinPiece elements, so f may also see part of a row (offsets at the piece's
// start, n its length).
template <std::size_t N, class F>
void for_each_row(const Shape& shape, const std::array<Shape, N>& strides, F&& f) {
  // Nothing to visit; and an empty shape may carry huge extents (and saturated strides) beside
  // its zero, whose merged products below would overflow.
  for (const auto d : shape)
    if (d == 0) return;
  const RowPlan<N> p = plan_rows<N>(shape, strides);
  const std::size_t rank = p.shape.size();
  const std::int64_t n = p.shape.back();
  std::int64_t rows = 1;
  for (std::size_t d = 0; d + 1 < rank; ++d) rows *= p.shape[d];
  std::array<std::int64_t, N> inner{};
  for (std::size_t k = 0; k < N; ++k) inner[k] = p.strides[k].back();
  if (rows * n == 0) return;

  // Pieces per row: enough tasks for every thread to get several, none shorter than kMinPiece
  // (a multiple of a cache line of floats, so that pieces of a contiguous row start aligned).
  constexpr std::int64_t kMinTasks = 32, kMinPiece = 4096;
  const bool parallel = rows * n >= kParallelGrain;
  std::int64_t piece = n;
  if (parallel && rows < kMinTasks && n >= 2 * kMinPiece) {
    const std::int64_t want = (kMinTasks + rows - 1) / rows;
    piece = std::max(kMinPiece, ((n + want - 1) / want + 15) / 16 * 16);
  }
  const std::int64_t pieces = (n + piece - 1) / piece;
  const std::int64_t tasks = rows * pieces;

#pragma omp parallel for schedule(static) if (tasks > 1 && parallel)
  for (std::int64_t t = 0; t < tasks; ++t) {
    const std::int64_t r = t / pieces, start = (t % pieces) * piece;
    std::array<std::int64_t, N> off{};
    std::int64_t rem = r;
    for (std::size_t d = rank - 1; d-- > 0;) {
      const std::int64_t i = rem % p.shape[d];
      rem /= p.shape[d];
      for (std::size_t k = 0; k < N; ++k) off[k] += i * p.strides[k][d];
    }
    for (std::size_t k = 0; k < N; ++k) off[k] += start * inner[k];
    f(off, std::min(piece, n - start), inner);
  }
}

// Strides of a tensor of shape `from` seen as broadcast to `to` (0 on broadcast dims).
inline Shape broadcast_strides(const Shape& from, const Shape& from_strides, const Shape& to) {
  Shape s(to.size(), 0);
  const std::size_t lead = to.size() - from.size();
  for (std::size_t i = 0; i < from.size(); ++i) s[lead + i] = from[i] == 1 ? 0 : from_strides[i];
  return s;
}

}  // namespace convtape::cpu
