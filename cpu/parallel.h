// How CPU kernels cut their work across OpenMP threads. A kernel whose floating-point result
// depends on the cut (per-part partial sums of a reduction, tile edges, a path chosen only when
// there are threads enough to feed it) sizes the cut with plan_threads(), not
// omp_get_max_threads(): the team size by default, a fixed kDeterministicThreads under
// set_deterministic(true) (core/settings.h), so that the cut, and with it the order of every sum,
// is the same with 1 thread or 64. Which thread runs which part never matters: every part sums,
// in index order, into memory it owns, and parts are combined in part order after the loop. The
// default mode is thus reproducible run to run at a fixed thread count; deterministic mode also
// across thread counts, at the price of a cut that may not match the machine.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>

#include "core/settings.h"

namespace convtape::cpu {

// Parts of a cut in deterministic mode: enough to feed 8 cores, few enough that per-part copies of
// a weight gradient stay small.
inline constexpr int kDeterministicThreads = 8;

inline int plan_threads() {
  return deterministic() ? kDeterministicThreads : omp_get_max_threads();
}

// The threads that run `parts` independent parts: never more than the team.
inline int run_threads(std::int64_t parts) {
  return static_cast<int>(std::clamp<std::int64_t>(parts, 1, omp_get_max_threads()));
}

// First task of part p when `tasks` are cut into `parts` contiguous ranges (part p runs tasks
// [part_begin(p), part_begin(p + 1))).
inline std::int64_t part_begin(std::int64_t tasks, std::int64_t parts, std::int64_t p) {
  return tasks / parts * p + std::min(p, tasks % parts);
}

}  // namespace convtape::cpu
