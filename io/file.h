// Whole-file reads and crash-safe writes, shared by checkpoints, images and the IDX reader.
// AtomicFile writes to "<path>.tmp.<pid>" and only commit() makes the file appear under its real
// name (fsync, then rename, then fsync of the directory), so a crash or an error part way leaves
// either the old file or the complete new one, never a partial file; a writer that is destroyed
// without commit() removes its temporary.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace convtape::io {

// The whole file. Errors name op and the path: "<op>: expected a readable file at <path>, got: No
// such file or directory".
std::vector<std::uint8_t> read_file(const std::string& path, std::string_view op);

class AtomicFile {
 public:
  AtomicFile(std::string path, std::string op);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, std::size_t nbytes);
  // Flushes the data to disk and renames the temporary over the real name.
  void commit();

  const std::string& temp_path() const noexcept { return temp_path_; }

 private:
  [[noreturn]] void fail(std::string_view what, int error_number);

  std::string path_;
  std::string temp_path_;
  std::string op_;
  int fd_ = -1;
  bool committed_ = false;
};

// Writes bytes to path through an AtomicFile.
void write_file_atomically(const std::string& path, const void* data, std::size_t nbytes,
                           std::string_view op);

}  // namespace convtape::io
