// The command line the small examples share (segment_shapes, sequence_classifier,
// gradient_penalty): --help / -h, --seed S, --epochs N, --threads N, and flags of the example's
// own through a callback.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

namespace example_args {

// text as an integer in [lo, hi] into out; false (after a message on stderr) when it is not one.
inline bool parse_count(const char* program, const char* flag, const char* text, long long lo,
                        long long hi, long long& out) {
  char* end = nullptr;
  const long long v = std::strtoll(text, &end, 10);
  if (end == text || *end != '\0' || v < lo || v > hi) {
    std::fprintf(stderr, "%s: %s expects an integer in [%lld, %lld], got '%s'\n", program, flag, lo,
                 hi, text);
    return false;
  }
  out = v;
  return true;
}

struct CommonArgs {
  long long seed = 0;
  long long epochs = 1;
  long long threads = 0;  // 0: OpenMP's default
};

// Handles a flag of the example's own with its value; returns false when it does not know it.
using ExtraFlag = std::function<bool(const std::string& flag, const char* value)>;

// Parses argv into args (which holds the defaults). Returns -1 to go on, or the exit code: 0 after
// printing help to stdout, 2 after a message on stderr.
inline int parse_common(int argc, char** argv, const char* program, const char* help,
                        CommonArgs& args, const ExtraFlag& extra = {}) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(help, stdout);
      return 0;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "%s: unknown argument or missing value: %s (try --help)\n", program,
                   argv[i]);
      return 2;
    }
    const char* value = argv[++i];
    bool ok = true;
    if (a == "--seed") {
      ok = parse_count(program, "--seed", value, 0, 1LL << 62, args.seed);
    } else if (a == "--epochs") {
      ok = parse_count(program, "--epochs", value, 1, 1000, args.epochs);
    } else if (a == "--threads") {
      ok = parse_count(program, "--threads", value, 1, 1024, args.threads);
    } else if (!extra || !extra(a, value)) {
      std::fprintf(stderr, "%s: unknown argument %s (try --help)\n", program, a.c_str());
      return 2;
    }
    if (!ok) return 2;
  }
  return -1;
}

}  // namespace example_args
