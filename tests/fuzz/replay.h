// The seeded fuzz tests' driver: feeds byte strings to a fuzz target body (fuzz/*.cpp) without
// libFuzzer and collects what libFuzzer would call a crash: an exception other than
// convtape::Error escaping the body (findings included). Crashes and sanitizer reports end the
// process as they would under libFuzzer (CT_FUZZ_REPLAY_LOG=1 names the input); a watchdog ends it
// on an input that runs past 10 s, printing the input. Each failure prints its input in hex, which
// `xxd -r -p <<< HEX > crash && build-fuzz/fuzz/fuzz_<target> crash` replays.
#pragma once

#include <cxxabi.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <thread>
#include <typeinfo>
#include <vector>

#include "convtape.h"

namespace ct_fuzz_test {

using Bytes = std::vector<std::uint8_t>;
using Body = int (*)(const std::uint8_t*, std::size_t);

inline std::string hex(const Bytes& b, std::size_t limit = 256) {
  static const char* const kDigits = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < b.size() && i < limit; ++i) {
    s += kDigits[b[i] >> 4];
    s += kDigits[b[i] & 15];
  }
  if (b.size() > limit) s += "... (" + std::to_string(b.size()) + " bytes)";
  return s;
}

// The committed seeds of a target: fuzz/corpus/<target>/*, found from this file's place.
inline std::vector<Bytes> committed_corpus(const std::string& target) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(__FILE__).parent_path() / ".." / ".." / "fuzz" / "corpus" / target;
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  std::vector<Bytes> out;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    out.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return out;
}

// Uniformly random byte strings of length 1 to max_len from a fixed seed.
inline std::vector<Bytes> random_inputs(std::uint64_t seed, std::size_t count,
                                        std::size_t max_len) {
  std::mt19937_64 rng(seed);
  std::vector<Bytes> out(count);
  for (auto& b : out) {
    b.resize(1 + rng() % max_len);
    for (auto& x : b) x = static_cast<std::uint8_t>(rng());
  }
  return out;
}

// libFuzzer-like mutations of seeds: bit flips, interesting bytes and integers (little- and
// big-endian), truncation, insertion, duplication.
inline std::vector<Bytes> mutated_inputs(const std::vector<Bytes>& seeds, std::uint64_t seed,
                                         std::size_t count, bool keep_first_byte) {
  static constexpr std::uint64_t kInteresting[] = {0,
                                                   1,
                                                   0x7f,
                                                   0x80,
                                                   0xff,
                                                   0x7fffffff,
                                                   0x80000000,
                                                   0xffffffff,
                                                   0x100000000,
                                                   0x4000000000000000,
                                                   0x7fffffffffffffff,
                                                   0x8000000000000000,
                                                   0xffffffffffffffff};
  std::mt19937_64 rng(seed);
  std::vector<Bytes> out;
  out.reserve(count);
  for (std::size_t n = 0; n < count; ++n) {
    Bytes b = seeds[rng() % seeds.size()];
    const std::size_t first = keep_first_byte ? 1 : 0;
    for (std::size_t m = 0, k = 1 + rng() % 4; m < k; ++m) {
      if (b.size() <= first) b.push_back(static_cast<std::uint8_t>(rng()));
      const std::size_t at = first + rng() % (b.size() - first);
      switch (rng() % 7) {
        case 0:
          b[at] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
          break;
        case 1:
          b[at] = static_cast<std::uint8_t>(rng());
          break;
        case 2:
        case 3: {
          const std::uint64_t v = kInteresting[rng() % std::size(kInteresting)];
          const std::size_t width = (rng() % 2) ? 4 : 8;
          const bool big = rng() % 2;
          for (std::size_t i = 0; i < width && at + i < b.size(); ++i)
            b[at + i] = static_cast<std::uint8_t>(v >> (8 * (big ? width - 1 - i : i)));
          break;
        }
        case 4:
          b.resize(std::max(first, at));
          break;
        case 5:
          b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), 1 + rng() % 8,
                   static_cast<std::uint8_t>(rng()));
          break;
        default: {
          const std::size_t len = std::min<std::size_t>(1 + rng() % 16, b.size() - at);
          const Bytes chunk(b.begin() + static_cast<std::ptrdiff_t>(at),
                            b.begin() + static_cast<std::ptrdiff_t>(at + len));
          b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), chunk.begin(), chunk.end());
          break;
        }
      }
    }
    out.push_back(std::move(b));
  }
  return out;
}

struct Failure {
  Bytes input;
  std::string what;
};

// Runs every input through body; returns the inputs that let a non-convtape exception escape.
inline std::vector<Failure> replay(Body body, const std::vector<Bytes>& inputs) {
  using Clock = std::chrono::steady_clock;
  std::atomic<const Bytes*> current{nullptr};
  std::atomic<std::int64_t> started{0};
  std::atomic<bool> done{false};
  std::thread watchdog([&] {
    while (!done.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      const auto now = Clock::now().time_since_epoch().count();
      const Bytes* in = current.load();
      if (in != nullptr &&
          now - started.load() > std::chrono::nanoseconds(std::chrono::seconds(10)).count()) {
        std::fprintf(stderr, "fuzz replay: an input ran past 10 s (a hang): %s\n",
                     hex(*in).c_str());
        std::fflush(stderr);
        std::abort();
      }
    }
  });
  std::vector<Failure> failures;
  // CT_FUZZ_REPLAY_LOG=1 prints every input before it runs: the last line before a crash or a
  // sanitizer report is the input that caused it.
  const bool log = std::getenv("CT_FUZZ_REPLAY_LOG") != nullptr;
  for (const auto& in : inputs) {
    if (log) std::fprintf(stderr, "fuzz replay: input %s\n", hex(in, in.size()).c_str());
    started.store(Clock::now().time_since_epoch().count());
    current.store(&in);
    try {
      body(in.data(), in.size());
    } catch (const std::exception& e) {
      int status = 0;
      char* name = abi::__cxa_demangle(typeid(e).name(), nullptr, nullptr, &status);
      failures.push_back({in, std::string(name ? name : typeid(e).name()) + ": " + e.what()});
      std::free(name);
    } catch (...) {
      failures.push_back({in, "an exception of unknown type"});
    }
    current.store(nullptr);
  }
  done.store(true);
  watchdog.join();
  return failures;
}

// One line per failure (at most `limit`), for the test's output.
inline std::string describe(const std::vector<Failure>& failures, std::size_t limit = 12) {
  std::string s = std::to_string(failures.size()) + " inputs escaped the contract";
  for (std::size_t i = 0; i < failures.size() && i < limit; ++i)
    s += "\n  " + failures[i].what + "\n    input " + hex(failures[i].input);
  return s;
}

}  // namespace ct_fuzz_test
