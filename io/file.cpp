// Whole-file reads and the temporary-file-then-rename writer (POSIX).
#include "io/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace convtape::io {

namespace {

std::string error_text(int error_number) {
  return std::strerror(error_number);
}

// Closes a descriptor on every path out of read_file.
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

std::vector<std::uint8_t> read_file(const std::string& path, std::string_view op) {
  const Fd file{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  CT_CHECK(file.fd >= 0, "{}: expected a readable file at {}, got: {}", op, path,
           error_text(errno));
  struct stat st {};
  CT_CHECK(::fstat(file.fd, &st) == 0, "{}: expected to stat {}, got: {}", op, path,
           error_text(errno));
  CT_CHECK(S_ISREG(st.st_mode), "{}: expected a regular file at {}, got a directory or device", op,
           path);
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(st.st_size));
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::read(file.fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    CT_CHECK(n >= 0, "{}: expected to read {}, got: {}", op, path, error_text(errno));
    if (n == 0) break;  // the file shrank while we read it
    done += static_cast<std::size_t>(n);
  }
  bytes.resize(done);
  return bytes;
}

AtomicFile::AtomicFile(std::string path, std::string op)
    : path_(std::move(path)),
      temp_path_(fmt::format("{}.tmp.{}", path_, ::getpid())),
      op_(std::move(op)) {
  fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd_ < 0) fail(fmt::format("a writable file at {}", temp_path_), errno);
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temp_path_.c_str());
}

void AtomicFile::fail(std::string_view what, int error_number) {
  const std::string message =
      fmt::format("{}: expected {}, got: {}", op_, what, error_text(error_number));
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  ::unlink(temp_path_.c_str());
  committed_ = true;  // nothing is left to remove
  CT_FAIL("{}", message);
}

void AtomicFile::write(const void* data, std::size_t nbytes) {
  CT_CHECK(fd_ >= 0 && !committed_, "{}: expected an open file, got one already closed", op_);
  const auto* p = static_cast<const std::uint8_t*>(data);
  while (nbytes > 0) {
    const ssize_t n = ::write(fd_, p, nbytes);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail(fmt::format("to write {}", temp_path_), n < 0 ? errno : EIO);
    p += n;
    nbytes -= static_cast<std::size_t>(n);
  }
}

void AtomicFile::commit() {
  CT_CHECK(fd_ >= 0 && !committed_, "{}: expected an open file, got one already closed", op_);
  if (::fsync(fd_) != 0) fail(fmt::format("to flush {}", temp_path_), errno);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail(fmt::format("to close {}", temp_path_), errno);
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0)
    fail(fmt::format("to rename {} to {}", temp_path_, path_), errno);
  committed_ = true;
  // Make the rename itself durable. The file is complete under its name whatever happens here.
  const std::filesystem::path dir = std::filesystem::path(path_).parent_path();
  const int dir_fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

void write_file_atomically(const std::string& path, const void* data, std::size_t nbytes,
                           std::string_view op) {
  AtomicFile file(path, std::string(op));
  file.write(data, nbytes);
  file.commit();
}

}  // namespace convtape::io
