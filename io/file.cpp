// Regular-file reads and the unique-temporary-then-rename writer (POSIX, Linux-first); the rules
// are documented in io/file.h.
#include "io/file.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>
#include <fstream>
#include <mutex>
#include <new>
#include <optional>
#include <random>
#include <tuple>

#include "core/error.h"

namespace convtape::io {

namespace {

constexpr std::string_view kTempTag = ".ct-tmp.";
constexpr std::size_t kMaxNameInTemp = 128;  // keeps temporary names under NAME_MAX (255)

std::string error_text(int error_number) {
  return std::strerror(error_number);
}

std::string_view kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "a file of unknown type";
}

// Splits a path into its folder ("." when none) and its last component.
std::pair<std::string, std::string> split_path(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return {".", path};
  return {slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1)};
}

std::string prefix_for(std::string_view name) {
  std::string p = ".";
  p += name.substr(0, kMaxNameInTemp);
  p += kTempTag;
  return p;
}

// The process umask, read without changing it (umask(2) can only be read by setting it, which
// races with other threads creating files). Linux reports it in /proc/self/status since 4.7.
mode_t current_umask() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Umask:", 0) == 0) {
      try {
        return static_cast<mode_t>(std::stoul(line.substr(6), nullptr, 8) & 0777);
      } catch (const std::exception&) {
        break;
      }
    }
  }
  return 022;  // the usual default
}

std::uint64_t random_suffix() {
  std::uint64_t v = 0;
  if (::getrandom(&v, sizeof v, 0) == static_cast<ssize_t>(sizeof v)) return v;
  static std::mutex mutex;
  static std::random_device device;
  const std::lock_guard lock(mutex);
  return (std::uint64_t{device()} << 32) ^ device();
}

std::mutex& source_mutex() {
  static std::mutex m;
  return m;
}
std::function<std::uint64_t()>& source() {
  static std::function<std::uint64_t()> f;
  return f;
}

std::uint64_t next_suffix() {
  {
    const std::lock_guard lock(source_mutex());
    if (source()) return source()();
  }
  return random_suffix();
}

// "<digits>" in [1, max] or nothing: a parsed pid is handed to kill(), where 0 and -1 would mean
// the process group and every process.
std::optional<std::int64_t> parse_positive(std::string_view s, std::int64_t max) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  std::int64_t v = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v < 1 || v > max) return std::nullopt;
  return v;
}

bool is_hex16(std::string_view s) {
  return s.size() == 16 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

}  // namespace

// ------------------------------------------------------------------------------------- reading

FileDescriptor::~FileDescriptor() {
  if (fd_ >= 0) ::close(fd_);
}

FileDescriptor& FileDescriptor::operator=(FileDescriptor&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.release();
  }
  return *this;
}

RegularFile open_regular_file(const std::string& path, std::string_view op) {
  RegularFile file;
  file.fd = FileDescriptor(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (!file.fd.valid()) {
    const int error_number = errno;
    // A Unix socket cannot be opened at all (ENXIO); say what it is rather than "No such device".
    struct stat st {};
    if (error_number == ENXIO && ::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
      CT_FAIL("{}: expected a regular file, got {} '{}'", op, kind_of(st.st_mode), path);
    CT_FAIL("{}: expected a readable file at {}, got: {}", op, path, error_text(error_number));
  }
  struct stat st {};
  CT_CHECK(::fstat(file.fd.get(), &st) == 0, "{}: expected to stat {}, got: {}", op, path,
           error_text(errno));
  CT_CHECK(S_ISREG(st.st_mode), "{}: expected a regular file, got {} '{}'", op, kind_of(st.st_mode),
           path);
  // Reads of a regular file never return EAGAIN, but a blocking descriptor is what callers expect.
  const int flags = ::fcntl(file.fd.get(), F_GETFL);
  CT_CHECK(flags >= 0 && ::fcntl(file.fd.get(), F_SETFL, flags & ~O_NONBLOCK) == 0,
           "{}: expected to configure the descriptor of {}, got: {}", op, path, error_text(errno));
  file.size = static_cast<std::uint64_t>(st.st_size);
  return file;
}

std::size_t read_some(const RegularFile& file, void* data, std::size_t n, std::string_view op,
                      const std::string& path) {
  auto* p = static_cast<std::uint8_t*>(data);
  std::size_t done = 0;
  while (done < n) {
    const std::size_t chunk = std::min<std::size_t>(n - done, std::size_t{1} << 30);
    const ssize_t got = ::read(file.fd.get(), p + done, chunk);
    if (got < 0 && errno == EINTR) continue;
    CT_CHECK(got >= 0, "{}: expected to read {}, got: {}", op, path, error_text(errno));
    if (got == 0) break;
    done += static_cast<std::size_t>(got);
  }
  return done;
}

std::vector<std::uint8_t> read_file(const std::string& path, std::string_view op,
                                    std::uint64_t max_bytes) {
  const RegularFile file = open_regular_file(path, op);
  const std::uint64_t limit =
      std::min<std::uint64_t>(max_bytes, static_cast<std::uint64_t>(PTRDIFF_MAX));
  CT_CHECK(file.size <= limit, "{}: expected a file of at most {} bytes, got {} bytes in '{}'", op,
           limit, file.size, path);
  std::vector<std::uint8_t> bytes;
  try {
    bytes.resize(static_cast<std::size_t>(file.size));
  } catch (const std::bad_alloc&) {
    CT_FAIL("{}: expected memory for the {} bytes of '{}', got an allocation failure", op,
            file.size, path);
  }
  // Fewer bytes only when the file shrank while we read it; a file that grows is read as it was.
  bytes.resize(read_some(file, bytes.data(), bytes.size(), op, path));
  return bytes;
}

// ------------------------------------------------------------------------------------- writing

namespace detail {

const std::string& this_host() {
  static const std::string host = [] {
    char buf[HOST_NAME_MAX + 1] = {};
    std::string h = ::gethostname(buf, sizeof buf - 1) == 0 ? std::string(buf) : "unknown";
    if (h.empty()) h = "unknown";
    if (h.size() > 32) h.resize(32);
    for (char& c : h)
      if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_'))
        c = '_';
    struct stat ns {};
    const std::uint64_t ns_inode =
        ::stat("/proc/self/ns/pid", &ns) == 0 ? static_cast<std::uint64_t>(ns.st_ino) : 0;
    return fmt::format("{}+{:x}", h, ns_inode);
  }();
  return host;
}

std::string temporary_name(std::string_view name, std::string_view host, std::int64_t pid,
                           std::uint64_t suffix) {
  return fmt::format("{}{}.{}.{:016x}", prefix_for(name), host, pid, suffix);
}

void set_temporary_suffix_source(std::function<std::uint64_t()> f) {
  const std::lock_guard lock(source_mutex());
  source() = std::move(f);
}

std::size_t remove_stale_temporaries(int dir_fd, std::string_view name) {
  const std::string prefix = prefix_for(name);
  const int list_fd = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (list_fd < 0) return 0;
  DIR* dir = ::fdopendir(list_fd);
  if (dir == nullptr) {
    ::close(list_fd);
    return 0;
  }
  const std::string& here = this_host();
  const std::time_t now = std::time(nullptr);
  const auto max_age = std::chrono::duration_cast<std::chrono::seconds>(kStaleTemporaryAge).count();
  std::size_t removed = 0;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string_view entry_name = entry->d_name;
    if (entry_name.size() <= prefix.size() || entry_name.substr(0, prefix.size()) != prefix)
      continue;
    // <host>.<pid>.<suffix>, read from the right: the host holds no dots.
    const std::string_view rest = entry_name.substr(prefix.size());
    const std::size_t last_dot = rest.rfind('.');
    if (last_dot == std::string_view::npos || last_dot == 0) continue;
    const std::size_t pid_dot = rest.rfind('.', last_dot - 1);
    if (pid_dot == std::string_view::npos || pid_dot == 0) continue;
    const std::string_view host = rest.substr(0, pid_dot);
    const auto pid = parse_positive(rest.substr(pid_dot + 1, last_dot - pid_dot - 1), INT_MAX);
    if (!pid || !is_hex16(rest.substr(last_dot + 1)) || host.find('.') != std::string_view::npos)
      continue;
    const std::string entry_copy(entry_name);
    struct stat st {};
    if (::fstatat(dir_fd, entry_copy.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISDIR(st.st_mode)) continue;
    const bool dead_here =
        host == here && ::kill(static_cast<pid_t>(*pid), 0) != 0 && errno == ESRCH;
    const bool old = now - st.st_mtime > max_age;
    if ((dead_here || old) && ::unlinkat(dir_fd, entry_copy.c_str(), 0) == 0) ++removed;
  }
  ::closedir(dir);
  return removed;
}

}  // namespace detail

AtomicFile::AtomicFile(std::string path, std::string op)
    : path_(std::move(path)), op_(std::move(op)) {
  std::tie(folder_, name_) = split_path(path_);
  CT_CHECK(!name_.empty() && name_ != "." && name_ != "..",
           "{}: expected a file path, got '{}' (a folder)", op_, path_);
  dir_ = FileDescriptor(::open(folder_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir_.valid()) {
    const int error_number = errno;
    CT_FAIL("{}: expected a writable folder {} for {}, got: {}", op_, folder_, path_,
            error_text(error_number));
  }
  detail::remove_stale_temporaries(dir_.get(), name_);
  const std::string& host = detail::this_host();
  for (int attempt = 0; attempt < detail::kTemporaryNameTries; ++attempt) {
    std::string candidate = detail::temporary_name(name_, host, ::getpid(), next_suffix());
    // O_EXCL | O_NOFOLLOW: a name that exists already, a planted symlink included, is never used.
    const int fd = ::openat(dir_.get(), candidate.c_str(),
                            O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0) {
      fd_ = FileDescriptor(fd);
      temp_name_ = std::move(candidate);
      return;
    }
    const int error_number = errno;
    if (error_number == EEXIST || error_number == EINTR) continue;
    CT_FAIL("{}: expected a writable file at {}/{} (the temporary for {}), got: {}", op_, folder_,
            candidate, path_, error_text(error_number));
  }
  CT_FAIL(
      "{}: expected a fresh temporary name in {} for {}, got {} names in a row that exist "
      "already (planted files?)",
      op_, folder_, path_, detail::kTemporaryNameTries);
}

AtomicFile::~AtomicFile() {
  discard();
}

std::string AtomicFile::temp_path() const {
  return folder_ + "/" + temp_name_;
}

void AtomicFile::discard() noexcept {
  if (fd_.valid()) ::close(fd_.release());
  if (!done_ && !temp_name_.empty()) ::unlinkat(dir_.get(), temp_name_.c_str(), 0);
  done_ = true;
}

void AtomicFile::fail(std::string_view what, int error_number) {
  const std::string message =
      fmt::format("{}: expected {}, got: {}", op_, what, error_text(error_number));
  discard();
  CT_FAIL("{}", message);
}

void AtomicFile::write(const void* data, std::size_t nbytes) {
  CT_CHECK(fd_.valid() && !done_, "{}: expected an open file, got one already closed", op_);
  const auto* p = static_cast<const std::uint8_t*>(data);
  while (nbytes > 0) {
    const std::size_t chunk = std::min<std::size_t>(nbytes, std::size_t{1} << 30);
    const ssize_t n = ::write(fd_.get(), p, chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail(fmt::format("to write {}", temp_path()), n < 0 ? errno : EIO);
    p += n;
    nbytes -= static_cast<std::size_t>(n);
  }
}

void AtomicFile::commit() {
  CT_CHECK(fd_.valid() && !done_, "{}: expected an open file, got one already closed", op_);
  // The mode a plain open(O_CREAT | O_TRUNC) of the real name would have left.
  struct stat old {};
  const mode_t mode =
      ::fstatat(dir_.get(), name_.c_str(), &old, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(old.st_mode)
          ? (old.st_mode & 0777)
          : (0666 & ~current_umask());
  if (::fchmod(fd_.get(), mode) != 0)
    fail(fmt::format("to set the mode of {}", temp_path()), errno);
  if (::fsync(fd_.get()) != 0) fail(fmt::format("to flush {}", temp_path()), errno);
  if (::close(fd_.release()) != 0) fail(fmt::format("to close {}", temp_path()), errno);
  if (::renameat(dir_.get(), temp_name_.c_str(), dir_.get(), name_.c_str()) != 0)
    fail(fmt::format("to rename {} to {}", temp_path(), path_), errno);
  done_ = true;
  // Make the rename itself durable. The file is complete under its name whatever happens here;
  // file systems that cannot sync a folder say EINVAL, which is no failure of ours.
  if (::fsync(dir_.get()) != 0 && errno != EINVAL && errno != EROFS) {
    const int error_number = errno;
    CT_FAIL(
        "{}: expected to flush the folder {} after renaming {} into it, got: {} (the file is "
        "complete, but its name may not survive a crash)",
        op_, folder_, path_, error_text(error_number));
  }
}

void write_file_atomically(const std::string& path, const void* data, std::size_t nbytes,
                           std::string_view op) {
  AtomicFile file(path, std::string(op));
  file.write(data, nbytes);
  file.commit();
}

}  // namespace convtape::io
