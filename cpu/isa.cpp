#include "cpu/isa.h"

#include <atomic>
#include <cstdlib>
#include <fstream>

#include "core/error.h"

namespace convtape::cpu {

namespace {

Isa detect() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma")) return Isa::avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::avx2;
#endif
  return Isa::portable;
}

Isa clamp(Isa path) {
  return static_cast<int>(path) > static_cast<int>(native_isa()) ? native_isa() : path;
}

// The process-wide path; -1 until the first query reads CONVTAPE_ISA.
std::atomic<int>& current() {
  static std::atomic<int> value{-1};
  return value;
}

}  // namespace

Isa native_isa() {
  static const Isa native = detect();
  return native;
}

Isa isa() {
  int v = current().load(std::memory_order_relaxed);
  if (v < 0) {
    int expected = -1;
    const int read = static_cast<int>(isa_from_string(std::getenv("CONVTAPE_ISA")));
    // Another thread may have set a path meanwhile: its choice stands.
    current().compare_exchange_strong(expected, read, std::memory_order_relaxed);
    v = current().load(std::memory_order_relaxed);
  }
  return static_cast<Isa>(v);
}

Isa set_isa(Isa path) {
  const Isa previous = isa();
  current().store(static_cast<int>(clamp(path)), std::memory_order_relaxed);
  return previous;
}

std::vector<Isa> available_isas() {
  std::vector<Isa> v;
  for (int p = static_cast<int>(native_isa()); p >= 0; --p) v.push_back(static_cast<Isa>(p));
  return v;
}

const char* isa_name(Isa path) {
  switch (path) {
    case Isa::avx512:
      return "avx512";
    case Isa::avx2:
      return "avx2";
    case Isa::portable:
      break;
  }
  return "portable";
}

std::optional<Isa> parse_isa(std::string_view name) {
  for (Isa p : {Isa::avx512, Isa::avx2, Isa::portable})
    if (name == isa_name(p)) return p;
  return std::nullopt;
}

Isa isa_from_string(const char* value) {
  if (value == nullptr || *value == '\0') return native_isa();
  const std::optional<Isa> path = parse_isa(value);
  CT_CHECK(path.has_value(), "CONVTAPE_ISA: expected avx512, avx2 or portable, got '{}'", value);
  return clamp(*path);
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) != 0) continue;
    const std::size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::size_t start = line.find_first_not_of(" \t", colon + 1);
    return start == std::string::npos ? std::string("unknown CPU") : line.substr(start);
  }
#if defined(__x86_64__) || defined(__i386__)
  unsigned int regs[12] = {};
  unsigned int max_ext = 0;
  __asm__ volatile("cpuid" : "=a"(max_ext) : "a"(0x80000000u) : "ebx", "ecx", "edx");
  if (max_ext >= 0x80000004u) {
    for (unsigned int i = 0; i < 3; ++i)
      __asm__ volatile("cpuid"
                       : "=a"(regs[4 * i]), "=b"(regs[4 * i + 1]), "=c"(regs[4 * i + 2]),
                         "=d"(regs[4 * i + 3])
                       : "a"(0x80000002u + i));
    std::string brand(reinterpret_cast<const char*>(regs), sizeof regs);
    brand = brand.substr(0, brand.find('\0'));
    const std::size_t start = brand.find_first_not_of(' ');
    if (start != std::string::npos) return brand.substr(start);
  }
#endif
  return "unknown CPU";
}

}  // namespace convtape::cpu
