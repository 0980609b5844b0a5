// The process-wide settings of core/settings.h.
#include "core/settings.h"

#include <omp.h>

#include <atomic>
#include <cctype>
#include <cstdlib>
#include <string>

#include "core/error.h"

namespace convtape {

namespace detail {

bool parse_env_flag(const char* text, bool fallback) {
  if (!text) return fallback;
  std::string v(text);
  for (char& ch : v) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (v == "1" || v == "true" || v == "on" || v == "yes") return true;
  if (v == "0" || v == "false" || v == "off" || v == "no" || v.empty()) return false;
  return fallback;
}

}  // namespace detail

namespace {

// A function-local static: initialised once, thread-safely, on first use (no static initialiser
// runs before main, and a program that never asks never reads the environment).
std::atomic<bool>& deterministic_flag() {
  static std::atomic<bool> flag{
      detail::parse_env_flag(std::getenv("CONVTAPE_DETERMINISTIC"), false)};
  return flag;
}

}  // namespace

void set_deterministic(bool on) {
  deterministic_flag().store(on, std::memory_order_relaxed);
}

bool deterministic() {
  return deterministic_flag().load(std::memory_order_relaxed);
}

void set_num_threads(int n) {
  CT_CHECK(n >= 1, "set_num_threads: expected at least 1 thread, got {}", n);
  omp_set_num_threads(n);
}

int num_threads() {
  return omp_get_max_threads();
}

}  // namespace convtape
