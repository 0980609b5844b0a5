// Whole-file reads and AtomicFile: nothing appears under the real name before commit(), an
// abandoned writer removes its temporary, and a commit replaces an existing file whole.
#include <unistd.h>

#include "io/file.h"
#include "io/file_helpers.h"
#include "support/test_util.h"

using convtape::io::AtomicFile;
using convtape::io::read_file;
using convtape::io::write_file_atomically;

TEST_CASE("AtomicFile shows the file under its name only after commit", "[file]") {
  ct_test::TempDir dir;
  const std::string path = dir.file("out.bin");
  ct_test::write_bytes(path, {1, 2, 3});
  {
    AtomicFile file(path, "test");
    CHECK(file.temp_path() == path + ".tmp." + std::to_string(::getpid()));
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
}

TEST_CASE("read_file returns the bytes or names the path and the reason", "[file]") {
  ct_test::TempDir dir;
  const std::string path = dir.file("in.bin");
  std::vector<std::uint8_t> bytes(100000);
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>(i * 7);
  ct_test::write_bytes(path, bytes);
  CHECK(read_file(path, "test") == bytes);
  ct_test::write_bytes(path, {});
  CHECK(read_file(path, "test").empty());
  CT_REQUIRE_ERROR(
      read_file(dir.file("none"), "op"),
      "op: expected a readable file at " + dir.file("none") + ", got: No such file or directory");
  CT_REQUIRE_ERROR(read_file(dir.path().string(), "op"),
                   "op: expected a regular file at " + dir.path().string());
}
