// Known per-rank data for the collectives' tests (tests/dist), the MPI and NCCL engines alike: rank
// r's element i is a small integer made from (r, i), so sums, maxima and means over two ranks are
// exact, and the expected reduction is computed locally from every rank's values.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "dist/process_group.h"
#include "ops/factory.h"

namespace ct_test {

inline double rank_value(int r, std::int64_t i) {
  return static_cast<double>((i * 7 + r * 13) % 101) - 50.0;
}

inline std::vector<double> rank_values(int r, std::int64_t n) {
  std::vector<double> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = rank_value(r, i);
  return v;
}

// Rank r's n values as a CPU tensor of dtype.
inline convtape::Tensor rank_data(int r, std::int64_t n, convtape::DType dtype) {
  return convtape::tensor(rank_values(r, n), {n}, dtype);
}

// The reduction over every rank of the world group, as op gives it (Mean truncates for int64).
inline convtape::Tensor expected_reduction(convtape::dist::ReduceOp op, std::int64_t n,
                                           convtape::DType dtype) {
  using convtape::dist::ReduceOp;
  const int w = convtape::dist::world_size();
  std::vector<double> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    double acc = op == ReduceOp::Max ? rank_value(0, i) : 0.0;
    for (int r = 0; r < w; ++r)
      acc = op == ReduceOp::Max ? std::max(acc, rank_value(r, i)) : acc + rank_value(r, i);
    if (op == ReduceOp::Mean) acc = dtype == convtape::kInt64 ? std::trunc(acc / w) : acc / w;
    v[static_cast<std::size_t>(i)] = acc;
  }
  return convtape::tensor(v, {n}, dtype);
}

}  // namespace ct_test
