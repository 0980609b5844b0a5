// convtape::Error: the message plus the source location, appended to what() for debugging.
#include "core/error.h"

namespace convtape {

namespace {
const char* short_path(const char* file) {
  // Report paths relative to the source tree: keep the last two components (e.g. "ops/conv.cpp").
  const char* last = nullptr;
  const char* before_last = nullptr;
  for (const char* p = file; *p; ++p) {
    if (*p == '/' || *p == '\\') {
      before_last = last;
      last = p;
    }
  }
  return before_last ? before_last + 1 : (last ? last + 1 : file);
}
}  // namespace

Error::Error(std::string message, const char* file, int line)
    : std::runtime_error(fmt::format("{} ({}:{})", message, short_path(file), line)),
      message_(std::move(message)),
      file_(short_path(file)),
      line_(line) {}

namespace detail {
void throw_error(const char* file, int line, std::string message) {
  throw Error(std::move(message), file, line);
}
}  // namespace detail

}  // namespace convtape
