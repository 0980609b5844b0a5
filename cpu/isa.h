// The instruction-set path of every CPU kernel (GEMM micro-kernels, im2col packers, Winograd
// transforms, pooling, correlation, line ops): one process-wide choice, read by each kernel at
// its call.
//   native_isa()  the best path this CPU runs: avx512 (AVX-512F), avx2 (AVX2 + FMA) or portable
//                 (plain C++, auto-vectorised by the compiler for the baseline target).
//   isa()         the path in effect: native_isa(), lowered by CONVTAPE_ISA=avx512|avx2|portable
//                 (read once, at the first query; a value the CPU lacks is clamped to the best it
//                 has, an unknown value is an Error) or by set_isa.
//   set_isa(p)    changes it for the whole process (tests that compare every path, benchmarks),
//                 clamped to native_isa(); returns the path in effect before. A kernel already
//                 running keeps the path it started with; IsaGuard restores on scope exit.
// Every path computes the same function; float results may differ in rounding only where a kernel
// documents a different summation order per path (the GEMM's register tile and blocking).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace convtape::cpu {

enum class Isa : int { portable = 0, avx2 = 1, avx512 = 2 };

Isa native_isa();
Isa isa();
Isa set_isa(Isa path);
// Every path this CPU runs, best first (native_isa() first, portable last).
std::vector<Isa> available_isas();

// "avx512", "avx2", "portable".
const char* isa_name(Isa path);
// The inverse of isa_name (exact, lower case); nullopt for anything else.
std::optional<Isa> parse_isa(std::string_view name);

// The path a CONVTAPE_ISA value asks for: native_isa() for nullptr or "", else parse_isa(value)
// clamped to native_isa(); anything else is an Error (isa() reads the environment through this).
Isa isa_from_string(const char* value);

// The CPU's model name ("model name" of /proc/cpuinfo, or the CPUID brand string), for the
// benchmarks' headers; "unknown CPU" where neither is readable.
std::string cpu_model();

class IsaGuard {
 public:
  explicit IsaGuard(Isa path) : previous_(set_isa(path)) {}
  ~IsaGuard() { set_isa(previous_); }
  IsaGuard(const IsaGuard&) = delete;
  IsaGuard& operator=(const IsaGuard&) = delete;

 private:
  Isa previous_;
};

}  // namespace convtape::cpu
