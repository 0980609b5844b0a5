// How the CUDA pooling kernels see a PoolGeometry: the fixed-size PoolWindows of cuda/pool_body.h,
// and how many threads share one output when windows are wide. Host-only and free of CUDA headers,
// so that cuda/pool.cpp and the body tests (tests/cuda_host/pool_body_test.cpp) build the kernels'
// arguments with the same code.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "core/kernel_args.h"
#include "cuda/pool_body.h"

namespace convtape::cuda {

// Windows of at least this many taps may be split; each lane then scans about kTapsPerLane of
// them, and the split stops adding lanes at about kSplitItems threads in all.
inline constexpr std::int64_t kSplitTaps = 4096;
inline constexpr std::int64_t kTapsPerLane = 512;
inline constexpr std::int64_t kSplitItems = std::int64_t{1} << 21;

inline PoolWindows pool_windows(std::string_view op, const PoolGeometry& g) {
  const std::int64_t s = g.spatial();
  CT_CHECK(s >= 1 && s <= kMaxPoolDims, "{}: expected 1 to {} spatial dims, got {}", op,
           kMaxPoolDims, s);
  const auto su = static_cast<std::size_t>(s);
  CT_CHECK(g.out.size() == su, "{}: expected {} output sizes, got {}", op, s, g.out.size());
  if (!g.adaptive)
    CT_CHECK(g.kernel.size() == su && g.stride.size() == su && g.dilation.size() == su &&
                 g.pad_lo.size() == su && g.pad_hi.size() == su,
             "{}: expected kernel, stride, dilation and padding with {} values each, got {}, {}, "
             "{}, {} and {}",
             op, s, g.kernel.size(), g.stride.size(), g.dilation.size(), g.pad_lo.size(),
             g.pad_hi.size());
  PoolWindows pw;
  pw.dims = static_cast<int>(s);
  pw.adaptive = g.adaptive;
  pw.count_include_pad = g.count_include_pad;
  pw.divisor_override = g.divisor_override;
  pw.in_numel = g.in_numel();
  pw.out_numel = g.out_numel();
  std::int64_t rs = 1;
  for (int d = pw.dims - 1; d >= 0; --d) {
    const auto du = static_cast<std::size_t>(d);
    pw.in[d] = g.in[du];
    pw.out[d] = g.out[du];
    pw.row_stride[d] = rs;
    rs *= pw.in[d];
    if (!g.adaptive) {
      pw.kernel[d] = g.kernel[du];
      pw.stride[d] = g.stride[du];
      pw.dilation[d] = g.dilation[du];
      pw.pad_lo[d] = g.pad_lo[du];
      pw.pad_hi[d] = g.pad_hi[du];
    }
  }
  return pw;
}

// Threads per output: 1, or enough lanes to give wide windows about kTapsPerLane taps each while
// the call stays below kSplitItems threads.
inline std::int64_t pool_lanes(const PoolWindows& pw, std::int64_t outputs) {
  std::int64_t widest = 1;
  for (int d = 0; d < pw.dims; ++d) {
    std::int64_t most = 0;
    for (std::int64_t o = 0; o < pw.out[d]; ++o) most = std::max(most, pw.window(d, o).count);
    widest *= most;
  }
  if (widest < kSplitTaps || outputs <= 0) return 1;
  const std::int64_t lanes = std::min((widest + kTapsPerLane - 1) / kTapsPerLane,
                                      std::max<std::int64_t>(kSplitItems / outputs, 1));
  return lanes >= 2 ? lanes : 1;
}

}  // namespace convtape::cuda
