// Run-time settings of the CUDA backend, and the cache of the cuDNN convolution algorithms they
// steer. Plain C++ (no CUDA include). The settings and the cache live in libconvtape
// (cuda/api.cpp), not in the CUDA backend library, so that a program's settings reach the backend
// it opens later, and there is one of each per process; without the backend they are simply never
// consulted.
//   deterministic()           only algorithms cuDNN reports as deterministic (bitwise-identical
//                             results run to run); CONVTAPE_DETERMINISTIC=1 sets it at start-up.
//                             The same switch as convtape::set_deterministic (core/settings.h),
//                             which also makes the CPU kernels reproducible across thread counts.
//   allow_tf32()              TF32 tensor cores for float32 convolutions and matrix products
//                             (10-bit mantissa products: off by default, as results then differ
//                             from the CPU's by ~1e-3); CONVTAPE_ALLOW_TF32=1 sets it.
//   conv_workspace_limit()    the most scratch memory, in bytes, a cuDNN convolution algorithm may
//                             use (1 GiB by default; CONVTAPE_CUDNN_WORKSPACE_MB sets it in MiB).
// Algorithms are chosen per shape by timing them (cuDNN's Find) and remembered; the key includes
// every setting above, so changing one never reuses a choice made under another.
#pragma once

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/settings.h"

namespace convtape::cuda {

namespace detail {

// "1", "true", "on", "yes" (any case) -> true; "0", "false", "off", "no", "" -> false; anything
// else (or unset) -> fallback.
inline bool parse_flag(const char* text, bool fallback) {
  return convtape::detail::parse_env_flag(text, fallback);
}

// A whole number of MiB, as bytes; fallback when unset, malformed or negative.
inline std::int64_t parse_mib(const char* text, std::int64_t fallback) {
  if (!text || !*text) return fallback;
  char* end = nullptr;
  const long long mib = std::strtoll(text, &end, 10);
  if (*end != '\0' || mib < 0 || mib > (std::int64_t{1} << 40)) return fallback;
  return static_cast<std::int64_t>(mib) << 20;
}

inline constexpr std::int64_t kDefaultConvWorkspace = std::int64_t{1} << 30;

}  // namespace detail

inline void set_deterministic(bool on) {
  convtape::set_deterministic(on);
}
inline bool deterministic() {
  return convtape::deterministic();
}
void set_allow_tf32(bool on);
bool allow_tf32();
// Negative limits count as 0 (only algorithms that need no workspace).
void set_conv_workspace_limit(std::int64_t bytes);
std::int64_t conv_workspace_limit();

// One remembered choice: cuDNN's algorithm and math type (as ints, so that this header needs no
// cuDNN include) and the workspace it was measured with. algo = kConvDirect marks a shape cuDNN
// offered no algorithm for, which then runs the backend's own direct kernels.
inline constexpr int kConvDirect = -1;
struct ConvAlgorithm {
  int algo = 0;
  int math_type = 0;
  std::size_t workspace = 0;
};

// Keys are flat lists of integers (pass, dtype, device, sizes, geometry, settings). Thread-safe;
// when two threads measure the same key at once, the first answer stays.
class ConvAlgorithmCache {
 public:
  std::optional<ConvAlgorithm> find(const std::vector<std::int64_t>& key) const {
    const std::lock_guard<std::mutex> lock(mutex_);
    const auto it = map_.find(key);
    if (it == map_.end()) return std::nullopt;
    return it->second;
  }
  ConvAlgorithm insert(const std::vector<std::int64_t>& key, const ConvAlgorithm& value) {
    const std::lock_guard<std::mutex> lock(mutex_);
    return map_.emplace(key, value).first->second;
  }
  // Overwrites a choice (a chosen algorithm that cuDNN then refused to run).
  void replace(const std::vector<std::int64_t>& key, const ConvAlgorithm& value) {
    const std::lock_guard<std::mutex> lock(mutex_);
    map_[key] = value;
  }
  void clear() {
    const std::lock_guard<std::mutex> lock(mutex_);
    map_.clear();
  }
  std::size_t size() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return map_.size();
  }
  // Every remembered choice, for diagnostics and tests.
  std::vector<ConvAlgorithm> choices() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    std::vector<ConvAlgorithm> out;
    for (const auto& entry : map_) out.push_back(entry.second);
    return out;
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::vector<std::int64_t>, ConvAlgorithm> map_;
};

// The process's cache, used by cuda/conv.cpp.
ConvAlgorithmCache& conv_algorithm_cache();
// Forgets every choice (the next call of each shape measures again).
void clear_conv_algorithm_cache();
// The number of remembered (pass, shape, settings) choices.
std::size_t conv_algorithm_cache_size();

}  // namespace convtape::cuda
