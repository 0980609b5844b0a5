// convtape::Error and the CT_CHECK macro: every user-facing failure is an Error whose message reads
// "<op>: expected ..., got ..." and which carries the file and line that raised it.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace convtape {

class Error : public std::runtime_error {
 public:
  Error(std::string message, const char* file, int line);

  // The message alone, without the source location that what() appends.
  const std::string& message() const noexcept { return message_; }
  const char* file() const noexcept { return file_; }
  int line() const noexcept { return line_; }

 private:
  std::string message_;
  const char* file_;
  int line_;
};

namespace detail {
[[noreturn]] void throw_error(const char* file, int line, std::string message);
}  // namespace detail

}  // namespace convtape

// CT_CHECK(cond, "fmt string", args...): throws convtape::Error with the formatted message.
#define CT_CHECK(cond, ...)                                                            \
  do {                                                                                 \
    if (!(cond)) [[unlikely]]                                                          \
      ::convtape::detail::throw_error(__FILE__, __LINE__, ::fmt::format(__VA_ARGS__)); \
  } while (0)

#define CT_FAIL(...) ::convtape::detail::throw_error(__FILE__, __LINE__, ::fmt::format(__VA_ARGS__))
