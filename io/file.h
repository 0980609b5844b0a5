// Careful file reading and writing, the one place where io/ and data/ touch the file system.
//
// Reading: open_regular_file opens with O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, so that
// opening a FIFO or a device cannot block, checks with fstat that what was opened is a regular
// file (symlinks are followed, as any reader does; it is the opened thing that counts), and only
// then clears O_NONBLOCK. Anything else is refused by kind: "load_checkpoint: expected a regular
// file, got a FIFO 'x.ckpt'". read_file checks the size against a limit before it allocates.
//
// Writing: AtomicFile writes a unique temporary in the target's folder, then commit() fsyncs it,
// gives it its final mode, renames it over the target and fsyncs the folder. A crash or an error
// part way leaves either the old file or the complete new one under the real name, never a part.
//   - The temporary is ".<name>.ct-tmp.<host>.<pid>.<16 hex digits>" (name cut to 128 bytes),
//     created with O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC and mode 0600 through a descriptor
//     of the folder (openat / renameat on one opened folder, so the folder cannot be swapped
//     between the steps); the random suffix is retried on EEXIST, so a name planted in advance
//     (a symlink, say) is never written through, and writers in many threads or processes never
//     share a temporary. rename is atomic: concurrent saves to one path all succeed and the last
//     rename wins whole.
//   - The final mode is the replaced file's permission bits, or 0666 minus the umask for a new
//     file: what open(O_CREAT | O_TRUNC) on the real name would have left.
//   - Temporaries left by dead writers (kill -9, power loss) are removed by the next save of the
//     same target, before it writes. A temporary is stale when its <host> is this machine's (the
//     host name and the pid namespace) and no process has its <pid> (kill(pid, 0) gives ESRCH), or,
//     whatever its host, when it was last modified more than kStaleTemporaryAge ago. A live
//     writer's temporary is never stale: its pid exists (a reused pid only delays the cleanup
//     until the age rule), and one on another host keeps writing, so its mtime stays fresh (a
//     writer stalled for a whole day loses its temporary: its rename fails with ENOENT, and the
//     file under the real name is untouched). Only names of exactly this pattern for this target
//     are touched, and unlinking never follows a symlink.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace convtape::io {

// An owned file descriptor, closed on destruction.
class FileDescriptor {
 public:
  FileDescriptor() = default;
  explicit FileDescriptor(int fd) noexcept : fd_(fd) {}
  ~FileDescriptor();
  FileDescriptor(FileDescriptor&& other) noexcept : fd_(other.release()) {}
  FileDescriptor& operator=(FileDescriptor&& other) noexcept;
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;

  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  int release() noexcept {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_ = -1;
};

// A regular file opened for reading (blocking reads), and its size when it was opened.
struct RegularFile {
  FileDescriptor fd;
  std::uint64_t size = 0;
};

// Opens path for reading as described above. Errors name op and the path: "<op>: expected a
// readable file at <path>, got: No such file or directory", "<op>: expected a regular file, got a
// directory '<path>'".
RegularFile open_regular_file(const std::string& path, std::string_view op);

// Reads up to n bytes, retrying on EINTR; fewer only at the end of the file. Errors name op.
std::size_t read_some(const RegularFile& file, void* data, std::size_t n, std::string_view op,
                      const std::string& path);

// The whole file, refused before any allocation when it holds more than max_bytes.
std::vector<std::uint8_t> read_file(const std::string& path, std::string_view op,
                                    std::uint64_t max_bytes = UINT64_MAX);

// A temporary that has not been written to for this long is stale whatever its host or pid.
inline constexpr std::chrono::hours kStaleTemporaryAge{24};

class AtomicFile {
 public:
  // Opens the target's folder, removes stale temporaries of this target and creates a fresh
  // temporary. op prefixes every error message.
  AtomicFile(std::string path, std::string op);
  ~AtomicFile();  // without commit(): closes and removes the temporary
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, std::size_t nbytes);
  // fsync, final mode, rename over the real name, fsync of the folder.
  void commit();

  // The temporary's full path (folder and name).
  std::string temp_path() const;

 private:
  [[noreturn]] void fail(std::string_view what, int error_number);
  void discard() noexcept;

  std::string path_;
  std::string op_;
  std::string folder_;  // for messages and temp_path()
  std::string name_;    // the target's name in the folder
  std::string temp_name_;
  FileDescriptor dir_;
  FileDescriptor fd_;
  bool done_ = false;  // committed, or failed and cleaned up
};

// Writes bytes to path through an AtomicFile; every file writer in io/ goes through here or
// through AtomicFile.
void write_file_atomically(const std::string& path, const void* data, std::size_t nbytes,
                           std::string_view op);

namespace detail {

// How many fresh names AtomicFile tries before it gives up ("expected a fresh temporary name").
inline constexpr int kTemporaryNameTries = 64;

// This machine's <host> field: the host name (characters outside [A-Za-z0-9_-] replaced by '_',
// cut to 32) and '+' and the pid namespace's inode in hex, so containers that share a folder and a
// host name but not their pids count as different hosts.
const std::string& this_host();

// The temporary name for target `name` (no folder), writer host, pid and suffix.
std::string temporary_name(std::string_view name, std::string_view host, std::int64_t pid,
                           std::uint64_t suffix);

// Test hook: where the random suffixes come from. An empty function restores the default
// (getrandom). Lets a test enumerate every name a save will try.
void set_temporary_suffix_source(std::function<std::uint64_t()> source);

// Removes the stale temporaries of target `name` in the folder opened as dir_fd (the rule above);
// returns how many it removed. Errors are ignored: cleaning up is a courtesy, never a failure.
std::size_t remove_stale_temporaries(int dir_fd, std::string_view name);

}  // namespace detail

}  // namespace convtape::io
