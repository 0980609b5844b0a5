// io/file: readers refuse anything but a regular file without blocking and check sizes before they
// allocate; AtomicFile writes a unique O_EXCL temporary (never through a planted symlink), shows
// the file under its name only at commit, gives it the mode a plain write would, and removes the
// temporaries of dead writers while leaving live writers' alone.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "io/file.h"
#include "io/file_helpers.h"
#include "support/test_util.h"

using convtape::io::AtomicFile;
using convtape::io::read_file;
using convtape::io::write_file_atomically;
namespace detail = convtape::io::detail;

namespace {

std::string prefix_of(const std::string& name) {
  return "." + name + ".ct-tmp.";
}

// Suffixes 0, 1, 2, ... while alive, so a test knows every name a save will try.
class CountingSuffixes {
 public:
  CountingSuffixes() {
    detail::set_temporary_suffix_source([this] { return next_++; });
  }
  ~CountingSuffixes() { detail::set_temporary_suffix_source({}); }
  CountingSuffixes(const CountingSuffixes&) = delete;
  CountingSuffixes& operator=(const CountingSuffixes&) = delete;
  std::uint64_t used() const { return next_; }

 private:
  std::uint64_t next_ = 0;
};

mode_t mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

// A pid that no process has: a child that has exited and been reaped.
pid_t dead_pid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  REQUIRE(child > 0);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  return child;
}

void set_mtime_hours_ago(const std::string& path, int hours) {
  const struct timespec times[2] = {{::time(nullptr) - hours * 3600, 0},
                                    {::time(nullptr) - hours * 3600, 0}};
  REQUIRE(::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW) == 0);
}

}  // namespace

TEST_CASE("AtomicFile shows the file under its name only after commit", "[file]") {
  ct_test::TempDir dir;
  const std::string path = dir.file("out.bin");
  ct_test::write_bytes(path, {1, 2, 3});
  {
    AtomicFile file(path, "test");
    const std::string temp_name = std::filesystem::path(file.temp_path()).filename().string();
    const std::string expected_start =
        prefix_of("out.bin") + detail::this_host() + "." + std::to_string(::getpid()) + ".";
    CHECK(temp_name.rfind(expected_start, 0) == 0);
    CHECK(temp_name.size() == expected_start.size() + 16);  // 64 random bits in hex
    CHECK(std::filesystem::path(file.temp_path()).parent_path() == dir.path());
    CHECK(mode_of(file.temp_path()) == 0600);  // nobody else reads a half-written file
    file.write("abcd", 4);
    CHECK(ct_test::read_bytes(path) == std::vector<std::uint8_t>{1, 2, 3});  // old file intact
    CHECK(ct_test::read_bytes(file.temp_path()).size() == 4);
    file.commit();
    CHECK_FALSE(std::filesystem::exists(file.temp_path()));
    CT_REQUIRE_ERROR(file.write("x", 1), "test: expected an open file, got one already closed");
  }
  CHECK(ct_test::read_bytes(path) == std::vector<std::uint8_t>{'a', 'b', 'c', 'd'});
  {
    AtomicFile abandoned(path, "test");
    abandoned.write("zz", 2);
  }  // destroyed without commit: the temporary goes, the file stays
  CHECK(dir.list() == std::vector<std::string>{"out.bin"});
  CHECK(ct_test::read_bytes(path).size() == 4);

  write_file_atomically(path, "", 0, "test");
  CHECK(ct_test::read_bytes(path).empty());
  CHECK(dir.list() == std::vector<std::string>{"out.bin"});

  // A path that names no file is refused.
  CT_REQUIRE_ERROR(write_file_atomically(dir.path().string() + "/", "", 0, "test"),
                   "test: expected a file path, got '" + dir.path().string() + "/' (a folder)");
}

TEST_CASE("a committed file gets the replaced file's mode, or the umask's", "[file]") {
  ct_test::TempDir dir;
  const std::string fresh = dir.file("fresh.bin");
  const mode_t old_mask = ::umask(027);
  write_file_atomically(fresh, "a", 1, "test");
  ::umask(old_mask);
  CHECK(mode_of(fresh) == 0640);

  const std::string kept = dir.file("kept.bin");
  ct_test::write_bytes(kept, {1});
  ::chmod(kept.c_str(), 0604);
  write_file_atomically(kept, "b", 1, "test");
  CHECK(mode_of(kept) == 0604);
}

TEST_CASE("a symlink planted at every name the save tries is never written through", "[file]") {
  ct_test::TempDir dir;
  const std::string path = dir.file("model.ckpt");
  const std::string victim = dir.file("victim");
  ct_test::write_bytes(victim, {42});
  const std::string& host = detail::this_host();
  const auto plant = [&](std::uint64_t first, std::uint64_t count) {
    for (std::uint64_t k = first; k < first + count; ++k)
      std::filesystem::create_symlink(
          victim, dir.path() / detail::temporary_name("model.ckpt", host, ::getpid(), k));
  };

  SECTION("all but the last name taken: the save uses the last one") {
    const CountingSuffixes suffixes;
    plant(0, detail::kTemporaryNameTries - 1);
    write_file_atomically(path, "new", 3, "save");
    CHECK(suffixes.used() == static_cast<std::uint64_t>(detail::kTemporaryNameTries));
    CHECK(ct_test::read_bytes(path) == std::vector<std::uint8_t>{'n', 'e', 'w'});
  }
  SECTION("every name taken: the save fails and writes nothing") {
    const CountingSuffixes suffixes;
    plant(0, detail::kTemporaryNameTries);
    CT_REQUIRE_ERROR(write_file_atomically(path, "new", 3, "save"),
                     "save: expected a fresh temporary name in " + dir.path().string() + " for " +
                         path + ", got " + std::to_string(detail::kTemporaryNameTries) +
                         " names in a row that exist already");
    CHECK_FALSE(std::filesystem::exists(path));
  }
  SECTION("a dangling symlink is refused the same way") {
    const CountingSuffixes suffixes;
    std::filesystem::create_symlink(
        dir.file("nowhere"),
        dir.path() / detail::temporary_name("model.ckpt", host, ::getpid(), 0));
    write_file_atomically(path, "new", 3, "save");
    CHECK_FALSE(std::filesystem::exists(dir.file("nowhere")));
  }
  CHECK(ct_test::read_bytes(victim) == std::vector<std::uint8_t>{42});
}

TEST_CASE("stale temporaries of dead writers go, live writers' stay", "[file]") {
  ct_test::TempDir dir;
  const std::string path = dir.file("model.ckpt");
  const std::string& host = detail::this_host();
  const auto make = [&](const std::string& name) {
    ct_test::write_bytes(dir.file(name), std::vector<std::uint8_t>(1000, 1));
    return name;
  };
  const std::int64_t gone = dead_pid();
  const std::string dead = make(detail::temporary_name("model.ckpt", host, gone, 1));
  const std::string live = make(detail::temporary_name("model.ckpt", host, ::getpid(), 2));
  // Another host's pids mean nothing here: only age makes its temporaries stale.
  const std::string remote_fresh = make(detail::temporary_name("model.ckpt", "far+1", gone, 3));
  const std::string remote_old = make(detail::temporary_name("model.ckpt", "far+1", gone, 4));
  set_mtime_hours_ago(dir.file(remote_old), 25);
  // Even a live pid's temporary is stale after a day untouched (the pid was reused).
  const std::string live_old = make(detail::temporary_name("model.ckpt", host, ::getpid(), 5));
  set_mtime_hours_ago(dir.file(live_old), 25);
  // Other targets' temporaries and names that only look similar are never touched.
  const std::string other = make(detail::temporary_name("other.ckpt", host, gone, 6));
  const std::string bad_pid = make(prefix_of("model.ckpt") + host + ".-1.0000000000000007");
  const std::string zero_pid = make(prefix_of("model.ckpt") + host + ".0.0000000000000008");
  const std::string bad_suffix =
      make(prefix_of("model.ckpt") + host + "." + std::to_string(gone) + ".xyz");
  const std::string similar = make("model.ckpt.tmp.123");

  write_file_atomically(path, "x", 1, "save");
  std::vector<std::string> expected = {"model.ckpt", live,     remote_fresh, other,
                                       bad_pid,      zero_pid, bad_suffix,   similar};
  std::sort(expected.begin(), expected.end());
  CHECK(dir.list() == expected);

  // The way it happens: a writer killed with SIGKILL part way leaves its temporary behind, and
  // the next save of the same path removes it.
  const pid_t child = ::fork();
  if (child == 0) {
    try {
      AtomicFile file(path, "save");
      file.write("partial", 7);
      ::raise(SIGKILL);
    } catch (...) {
    }
    ::_exit(1);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFSIGNALED(status));
  const std::string orphan = prefix_of("model.ckpt") + host + "." + std::to_string(child) + ".";
  const auto count_orphans = [&] {
    std::size_t n = 0;
    for (const std::string& name : dir.list()) n += name.rfind(orphan, 0) == 0;
    return n;
  };
  CHECK(count_orphans() == 1);
  write_file_atomically(path, "y", 1, "save");
  CHECK(count_orphans() == 0);
  CHECK(dir.list() == expected);
}

TEST_CASE("read_file returns the bytes or names the path and the reason", "[file]") {
  ct_test::TempDir dir;
  const std::string path = dir.file("in.bin");
  std::vector<std::uint8_t> bytes(100000);
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>(i * 7);
  ct_test::write_bytes(path, bytes);
  CHECK(read_file(path, "test") == bytes);
  CT_REQUIRE_ERROR(
      read_file(path, "op", 99999),
      "op: expected a file of at most 99999 bytes, got 100000 bytes in '" + path + "'");
  ct_test::write_bytes(path, {});
  CHECK(read_file(path, "test").empty());
  CT_REQUIRE_ERROR(
      read_file(dir.file("none"), "op"),
      "op: expected a readable file at " + dir.file("none") + ", got: No such file or directory");
  // A symlink to a regular file is read like the file.
  std::filesystem::create_symlink(path, dir.path() / "link");
  CHECK(read_file(dir.file("link"), "test").empty());
}

TEST_CASE("readers refuse FIFOs, folders, devices and sockets without blocking", "[file]") {
  ct_test::TempDir dir;
  const std::string fifo = dir.file("fifo");
  ct_test::make_fifo(fifo);
  const ct_test::UnixSocket socket(dir.file("sock"));
  std::filesystem::create_symlink(fifo, dir.path() / "link-to-fifo");
  const ct_test::HangGuard guard(20);  // a blocking open ends the test run here
  CT_REQUIRE_ERROR(read_file(fifo, "op"), "op: expected a regular file, got a FIFO '" + fifo + "'");
  CT_REQUIRE_ERROR(read_file(dir.file("link-to-fifo"), "op"),
                   "op: expected a regular file, got a FIFO '" + dir.file("link-to-fifo") + "'");
  CT_REQUIRE_ERROR(read_file(dir.path().string(), "op"),
                   "op: expected a regular file, got a directory '" + dir.path().string() + "'");
  CT_REQUIRE_ERROR(read_file("/dev/null", "op"),
                   "op: expected a regular file, got a character device '/dev/null'");
  CT_REQUIRE_ERROR(read_file(dir.file("sock"), "op"),
                   "op: expected a regular file, got a socket '" + dir.file("sock") + "'");
  // The reader routine itself hands back a blocking descriptor on a regular file.
  ct_test::write_bytes(dir.file("plain"), {1, 2});
  const auto file = convtape::io::open_regular_file(dir.file("plain"), "op");
  CHECK(file.size == 2);
  CHECK((::fcntl(file.fd.get(), F_GETFL) & O_NONBLOCK) == 0);
  CHECK((::fcntl(file.fd.get(), F_GETFD) & FD_CLOEXEC) != 0);
}
