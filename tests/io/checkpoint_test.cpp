// Checkpoints: bit-exact round trips of every dtype and odd shape, the documented byte layout, and
// rejection of truncated, bit-flipped, foreign, future-version and malformed files before any
// tensor is built; crash-safe saving (no partial file under the real name, no temporary left);
// concurrent saves from threads and processes; loading refuses FIFOs and devices without blocking.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <thread>

#include "io/checkpoint.h"
#include "io/file_helpers.h"
#include "support/test_util.h"

using namespace convtape;
using convtape::io::check_compatible;
using convtape::io::Checkpoint;
using convtape::io::load_checkpoint;
using convtape::io::load_checkpoint_bytes;
using convtape::io::save_checkpoint;

namespace {

using ct_test::bits_equal;
using ct_test::require_same;

std::uint32_t get_u32(const std::vector<std::uint8_t>& b, std::size_t at) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= std::uint32_t{b[at + i]} << (8 * i);
  return v;
}
std::uint64_t get_u64(const std::vector<std::uint8_t>& b, std::size_t at) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= std::uint64_t{b[at + i]} << (8 * i);
  return v;
}
void set_u32(std::vector<std::uint8_t>& b, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<std::uint8_t>(v >> (8 * i));
}
void set_u64(std::vector<std::uint8_t>& b, std::size_t at, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) b[at + i] = static_cast<std::uint8_t>(v >> (8 * i));
}
// Rewrites the trailing CRC-32 so that a deliberately malformed file passes the checksum.
void fix_crc(std::vector<std::uint8_t>& b) {
  set_u32(b, b.size() - 4, ct_test::crc32_of(b.data(), b.size() - 4));
}

// model {"w": float32 [2, 3] = 0..5}, no optimizer state. Its header, byte by byte (offsets from
// the header's start, which is file byte 24):
//   0 sections = 2 | 4 len 5 | 8 "model" | 13 entries = 1 | 17 len 1 | 21 "w" | 22 dtype 0 |
//   23 rank 2 | 24 dim 2 | 32 dim 3 | 40 offset 0 | 48 size 24 | 56 len 9 | 60 "optimizer" |
//   69 entries = 0 | 73 end.
Checkpoint small_checkpoint() {
  return {{{"w", arange(6).reshape({2, 3})}}, {}};
}
constexpr std::size_t kHeader = 24;  // where the header starts
constexpr std::size_t kSmallHeaderBytes = 73;
constexpr std::size_t kSmallFileBytes = kHeader + kSmallHeaderBytes + 24 + 4;

}  // namespace

TEST_CASE("checkpoints round-trip every dtype and shape bit-exactly", "[checkpoint]") {
  ct_test::TempDir dir;
  manual_seed(3);
  const float nan_payload = std::bit_cast<float>(0x7fc01234u);
  Tensor special = from_vector(
      std::vector<float>{
          -0.0f, std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
          nan_payload, std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::max()},
      {6});
  const Tensor matrix = randn({5, 7});
  Checkpoint saved;
  saved.model = {
      {"features.0.weight", randn({4, 3, 3, 3})},
      {"features.0.bias", randn({4}, kFloat64)},
      {"special", special},
      {"indices",
       from_vector(std::vector<std::int64_t>{std::numeric_limits<std::int64_t>::min(), -1, 0, 1,
                                             std::numeric_limits<std::int64_t>::max()},
                   {5})},
      {"scalar", tensor({2.5}, Shape{}, kFloat64)},
      {"empty", zeros({0, 3})},
      {"empty_int", from_vector(std::vector<std::int64_t>{}, {2, 0})},
      {"transposed", matrix.t()},                      // a strided view
      {"expanded", tensor({1, 2, 3}).expand({4, 3})},  // stride 0
      {"narrowed", matrix.narrow(1, 2, 3)},            // offset and strides
      {"requires_grad", randn({3}).requires_grad_(true)},
  };
  saved.optimizer = {
      {"param_groups.0.lr", tensor({0.05}, Shape{}, kFloat64)},
      {"state.0.step", tensor({120}, Shape{}, kFloat64)},
      {"state.0.momentum_buffer", randn({4, 3, 3, 3})},
  };
  REQUIRE_FALSE(saved.model[7].second.is_contiguous());

  const std::string path = dir.file("model.ckpt");
  save_checkpoint(path, saved);
  const Checkpoint loaded = load_checkpoint(path);
  require_same(loaded.model, saved.model);
  require_same(loaded.optimizer, saved.optimizer);
  for (const auto& [name, t] : loaded.model) {
    INFO(name);
    CHECK((t.is_contiguous() || t.numel() == 0));
    CHECK(t.is_cpu());
    CHECK_FALSE(t.requires_grad());
  }
  CHECK(std::isnan(loaded.model[2].second.at<float>({3})));
  CHECK(std::signbit(loaded.model[2].second.at<float>({0})));
  CHECK(dir.list() == std::vector<std::string>{"model.ckpt"});  // no temporary left

  // Saving again replaces the file; an empty checkpoint is valid too.
  save_checkpoint(path, Checkpoint{});
  const Checkpoint empty = load_checkpoint(path);
  CHECK(empty.model.empty());
  CHECK(empty.optimizer.empty());
  CHECK(dir.list() == std::vector<std::string>{"model.ckpt"});
}

TEST_CASE("the file layout is the documented one", "[checkpoint]") {
  ct_test::TempDir dir;
  const std::string path = dir.file("small.ckpt");
  save_checkpoint(path, small_checkpoint());
  const auto b = ct_test::read_bytes(path);
  REQUIRE(b.size() == kSmallFileBytes);
  CHECK(std::memcmp(b.data(), "CTCKPT\r\n", 8) == 0);
  CHECK(get_u32(b, 8) == 1);
  CHECK(get_u32(b, 12) == kSmallHeaderBytes);
  CHECK(get_u64(b, 16) == 24);
  const std::size_t h = kHeader;
  CHECK(get_u32(b, h + 0) == 2);
  CHECK(get_u32(b, h + 4) == 5);
  CHECK(std::memcmp(b.data() + h + 8, "model", 5) == 0);
  CHECK(get_u32(b, h + 13) == 1);
  CHECK(get_u32(b, h + 17) == 1);
  CHECK(b[h + 21] == 'w');
  CHECK(b[h + 22] == 0);  // float32
  CHECK(b[h + 23] == 2);  // rank
  CHECK(get_u64(b, h + 24) == 2);
  CHECK(get_u64(b, h + 32) == 3);
  CHECK(get_u64(b, h + 40) == 0);
  CHECK(get_u64(b, h + 48) == 24);
  CHECK(get_u32(b, h + 56) == 9);
  CHECK(std::memcmp(b.data() + h + 60, "optimizer", 9) == 0);
  CHECK(get_u32(b, h + 69) == 0);
  const std::size_t payload = h + kSmallHeaderBytes;
  for (int i = 0; i < 6; ++i) {
    float v = 0;
    std::memcpy(&v, b.data() + payload + 4 * i, 4);
    CHECK(v == static_cast<float>(i));
  }
  CHECK(get_u32(b, b.size() - 4) == ct_test::crc32_of(b.data(), b.size() - 4));
}

TEST_CASE("truncated files are rejected with the size they should have", "[checkpoint]") {
  ct_test::TempDir dir;
  const std::string good = dir.file("good.ckpt");
  save_checkpoint(good, small_checkpoint());
  const auto bytes = ct_test::read_bytes(good);
  const std::string cut_path = dir.file("cut.ckpt");
  for (const std::size_t cut :
       {std::size_t{0}, std::size_t{3}, std::size_t{8}, std::size_t{20}, std::size_t{27},
        std::size_t{28}, kHeader + 30, kHeader + kSmallHeaderBytes,
        kHeader + kSmallHeaderBytes + 10, bytes.size() - 4, bytes.size() - 1}) {
    INFO("cut at " << cut);
    ct_test::write_bytes(cut_path, {bytes.begin(), bytes.begin() + cut});
    CT_REQUIRE_ERROR(load_checkpoint(cut_path),
                     cut < 28 ? fmt::format("expected at least 28 bytes, got {}", cut)
                              : fmt::format("expected at least {} bytes", bytes.size()));
    CT_REQUIRE_ERROR(load_checkpoint(cut_path), "truncated");
    CT_REQUIRE_ERROR(load_checkpoint(cut_path), cut_path);
  }
  auto longer = bytes;
  longer.push_back(0);
  ct_test::write_bytes(cut_path, longer);
  CT_REQUIRE_ERROR(load_checkpoint(cut_path),
                   fmt::format("expected {} bytes, got {}", bytes.size(), bytes.size() + 1));
}

TEST_CASE("a single flipped bit anywhere in the file is caught", "[checkpoint]") {
  ct_test::TempDir dir;
  const std::string good = dir.file("good.ckpt");
  save_checkpoint(good, small_checkpoint());
  const auto bytes = ct_test::read_bytes(good);
  const std::string bad = dir.file("bad.ckpt");

  const auto flipped = [&](std::size_t at, int bit) {
    auto b = bytes;
    b[at] ^= static_cast<std::uint8_t>(1u << bit);
    ct_test::write_bytes(bad, b);
  };
  // In the header, the payload and the stored CRC itself: the checksum disagrees.
  for (const std::size_t at : {kHeader + 9, kHeader + 22, kHeader + 45, kHeader + 62,
                               kHeader + kSmallHeaderBytes + 5, bytes.size() - 1}) {
    INFO("byte " << at);
    flipped(at, 3);
    CT_REQUIRE_ERROR(load_checkpoint(bad), "expected CRC-32 0x");
    CT_REQUIRE_ERROR(load_checkpoint(bad), "(file damaged?) in " + bad);
  }
  // Every bit of every byte: always an error (the fixed fields get their own messages).
  int rejected = 0;
  for (std::size_t at = 0; at < bytes.size(); ++at) {
    for (int bit = 0; bit < 8; ++bit) {
      flipped(at, bit);
      try {
        load_checkpoint(bad);
      } catch (const Error&) {
        ++rejected;
      }
    }
  }
  CHECK(rejected == static_cast<int>(bytes.size()) * 8);
  CHECK_NOTHROW(load_checkpoint(good));
}

TEST_CASE("foreign files and newer format versions are refused", "[checkpoint]") {
  ct_test::TempDir dir;
  const std::string path = dir.file("x.ckpt");
  ct_test::write_bytes(
      path, {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R',
             0,    0,   0,   1,   0,    0,    0,    1,    8, 0, 0, 0,  0,   0,   0,   0});
  CT_REQUIRE_ERROR(load_checkpoint(path),
                   "load_checkpoint: expected the magic bytes 43 54 43 4b 50 54 0d 0a "
                   "(\"CTCKPT\\r\\n\"), got 89 50 4e 47 0d 0a 1a 0a (not a convtape checkpoint?)");
  ct_test::write_bytes(path, {'h', 'i'});
  CT_REQUIRE_ERROR(load_checkpoint(path), "got 68 69 (not a convtape checkpoint?)");

  save_checkpoint(path, small_checkpoint());
  auto b = ct_test::read_bytes(path);
  set_u32(b, 8, 7);
  ct_test::write_bytes(path, b);
  CT_REQUIRE_ERROR(load_checkpoint(path),
                   "load_checkpoint: expected format version <= 1, got 7 (written by a newer "
                   "convtape?) in " +
                       path);
  set_u32(b, 8, 0);
  fix_crc(b);
  ct_test::write_bytes(path, b);
  CT_REQUIRE_ERROR(load_checkpoint(path), "expected format version >= 1, got 0");
}

TEST_CASE("a header that passes the CRC is still checked entry by entry", "[checkpoint]") {
  ct_test::TempDir dir;
  const std::string path = dir.file("forged.ckpt");
  save_checkpoint(path, small_checkpoint());
  const auto good = ct_test::read_bytes(path);
  const std::size_t h = kHeader;
  const auto forged = [&](auto&& edit) {
    auto b = good;
    edit(b);
    fix_crc(b);
    ct_test::write_bytes(path, b);
  };

  forged([&](auto& b) { b[h + 22] = 9; });
  CT_REQUIRE_ERROR(load_checkpoint(path),
                   "expected dtype code 0, 1 or 2 (float32, float64, "
                   "int64) for \"w\", got 9");
  forged([&](auto& b) { b[h + 23] = 200; });
  CT_REQUIRE_ERROR(load_checkpoint(path), "expected rank <= 64 for \"w\", got 200");
  forged([&](auto& b) { set_u64(b, h + 32, 4); });  // [2, 4] float32 needs 32 bytes, not 24
  CT_REQUIRE_ERROR(load_checkpoint(path),
                   "expected 32 bytes of data for \"w\" ([2, 4] float32), got 24");
  forged([&](auto& b) { set_u64(b, h + 24, std::uint64_t{1} << 61); });  // 2^61 * 3 * 4 bytes
  CT_REQUIRE_ERROR(load_checkpoint(path), "expected 2^64 or more bytes of data for \"w\"");
  forged([&](auto& b) {  // [2^40, 2^40]: too large for 64-bit strides
    set_u64(b, h + 24, std::uint64_t{1} << 40);
    set_u64(b, h + 32, std::uint64_t{1} << 40);
  });
  CT_REQUIRE_ERROR(load_checkpoint(path),
                   "expected dims whose strides fit in 64 bits for \"w\", "
                   "got [1099511627776, 1099511627776]");
  forged([&](auto& b) { set_u64(b, h + 24, ~std::uint64_t{0}); });
  CT_REQUIRE_ERROR(load_checkpoint(path), "expected non-negative dims for \"w\", got -1");
  forged([&](auto& b) { set_u64(b, h + 40, 8); });  // [8, 32) in a 24-byte payload
  CT_REQUIRE_ERROR(load_checkpoint(path),
                   "expected the data of \"w\" inside the 24-byte payload, got bytes [8, 8 + 24)");
  forged([&](auto& b) { set_u64(b, h + 40, ~std::uint64_t{0} - 3); });  // offset + size wraps
  CT_REQUIRE_ERROR(load_checkpoint(path), "inside the 24-byte payload");
  forged([&](auto& b) { std::memcpy(b.data() + h + 8, "mode1", 5); });
  CT_REQUIRE_ERROR(load_checkpoint(path),
                   "expected section \"model\" or \"optimizer\", got \"mode1\"");
  forged([&](auto& b) {  // the second section renamed "model" (its name field shrinks to 5)
    std::memcpy(b.data() + h + 60, "model", 5);
    set_u32(b, h + 56, 5);
  });
  CT_REQUIRE_ERROR(load_checkpoint(path), "expected one section \"model\", got two");
  forged([&](auto& b) { set_u32(b, h + 0, 3); });  // a third section that is not there
  CT_REQUIRE_ERROR(load_checkpoint(path),
                   "expected a section name (4 bytes) at header byte 73, "
                   "got the end of the 73-byte header");
  forged([&](auto& b) { set_u32(b, h + 17, 1000); });  // a name running past the header
  CT_REQUIRE_ERROR(load_checkpoint(path), "expected an entry name (1000 bytes) at header byte 21");
  forged([&](auto& b) { set_u32(b, h + 0, 1); });  // the optimizer section left unread
  CT_REQUIRE_ERROR(load_checkpoint(path),
                   "expected a 73-byte header, got 17 unread bytes after its last entry");
}

TEST_CASE("duplicate and undefined entries are refused when saving and loading", "[checkpoint]") {
  ct_test::TempDir dir;
  const std::string path = dir.file("dup.ckpt");
  CT_REQUIRE_ERROR(save_checkpoint(path, {{{"a", zeros({1})}, {"a", zeros({2})}}, {}}),
                   "save_checkpoint: expected unique names in section model, got \"a\" twice");
  CT_REQUIRE_ERROR(save_checkpoint(path, {{}, {{"step", Tensor()}}}),
                   "save_checkpoint: expected a defined tensor for optimizer entry \"step\"");
  CHECK(dir.list().empty());

  // A forged file with two entries named "w".
  save_checkpoint(path, {{{"w", zeros({1})}, {"v", zeros({1})}}, {}});
  auto b = ct_test::read_bytes(path);
  // Second entry's name starts after: 17 (first entry) + 4 + 1 + 1 + 1 + 8 + 16 = 48.
  REQUIRE(b[kHeader + 48 + 4] == 'v');
  b[kHeader + 48 + 4] = 'w';
  fix_crc(b);
  ct_test::write_bytes(path, b);
  CT_REQUIRE_ERROR(load_checkpoint(path),
                   "expected unique names in section model, got \"w\" twice");
}

TEST_CASE("check_compatible names the first entry that does not fit", "[checkpoint]") {
  const StateDict model = {{"fc.weight", zeros({10, 4})}, {"fc.bias", zeros({10})}};
  CHECK_NOTHROW(check_compatible(model, {{"fc.bias", ones({10})}, {"fc.weight", ones({10, 4})}},
                                 "load_state_dict"));
  CT_REQUIRE_ERROR(
      check_compatible(model, {{"fc.weight", zeros({10, 5})}, {"fc.bias", zeros({10})}},
                       "load_state_dict"),
      "load_state_dict: expected \"fc.weight\" with shape [10, 4], got [10, 5]");
  CT_REQUIRE_ERROR(check_compatible(model, {{"fc.weight", zeros({10, 4})}}, "load_state_dict"),
                   "load_state_dict: expected an entry \"fc.bias\" ([10] float32), got none "
                   "(missing entry)");
  CT_REQUIRE_ERROR(
      check_compatible(
          model,
          {{"fc.weight", zeros({10, 4})}, {"fc.bias", zeros({10})}, {"fc.extra", zeros({2})}},
          "load_state_dict"),
      "load_state_dict: expected only the target's entries, got an unexpected entry "
      "\"fc.extra\" ([2] float32)");
  CT_REQUIRE_ERROR(
      check_compatible(model, {{"fc.weight", zeros({10, 4})}, {"fc.bias", zeros({10}, kFloat64)}},
                       "load_state_dict"),
      "load_state_dict: expected \"fc.bias\" of dtype float32, got float64");
  CT_REQUIRE_ERROR(
      check_compatible(
          model,
          {{"fc.weight", zeros({10, 4})}, {"fc.bias", zeros({10})}, {"fc.bias", zeros({10})}},
          "load_state_dict"),
      "load_state_dict: expected unique names, got \"fc.bias\" twice");

  // Through a file: a checkpoint of a narrower layer does not fit this model.
  ct_test::TempDir dir;
  const std::string path = dir.file("narrow.ckpt");
  save_checkpoint(path, {{{"fc.weight", zeros({10, 3})}, {"fc.bias", zeros({10})}}, {}});
  const Checkpoint loaded = load_checkpoint(path);
  CT_REQUIRE_ERROR(check_compatible(model, loaded.model, "load_state_dict"),
                   "expected \"fc.weight\" with shape [10, 4], got [10, 3]");
}

TEST_CASE("missing files and unwritable places give clear errors", "[checkpoint]") {
  ct_test::TempDir dir;
  const std::string missing = dir.file("nope.ckpt");
  CT_REQUIRE_ERROR(load_checkpoint(missing), "load_checkpoint: expected a readable file at " +
                                                 missing + ", got: No such file or directory");
  CT_REQUIRE_ERROR(
      load_checkpoint(dir.path().string()),
      "load_checkpoint: expected a regular file, got a directory '" + dir.path().string() + "'");

  const std::string nowhere = dir.file("no/such/dir/model.ckpt");
  CT_REQUIRE_ERROR(save_checkpoint(nowhere, small_checkpoint()),
                   "save_checkpoint: expected a writable folder " + dir.file("no/such/dir") +
                       " for " + nowhere + ", got: No such file or directory");
  CT_REQUIRE_ERROR(save_checkpoint(nowhere, small_checkpoint()), "No such file or directory");
  CHECK(dir.list().empty());

  if (::geteuid() != 0) {  // root writes into read-only directories anyway
    const auto locked = dir.path() / "locked";
    std::filesystem::create_directory(locked);
    std::filesystem::permissions(
        locked, std::filesystem::perms::owner_read | std::filesystem::perms::owner_exec);
    const std::string inside = (locked / "model.ckpt").string();
    CT_REQUIRE_ERROR(save_checkpoint(inside, small_checkpoint()), "Permission denied");
    CHECK(std::filesystem::is_empty(locked));
    std::filesystem::permissions(locked, std::filesystem::perms::owner_all);
  } else {
    WARN("running as root: the read-only-directory case is covered by the missing directory");
  }
}

TEST_CASE("a failed save leaves the previous file intact and no temporary", "[checkpoint]") {
  ct_test::TempDir dir;
  const std::string path = dir.file("model.ckpt");
  const Checkpoint first = small_checkpoint();
  save_checkpoint(path, first);
  const auto before = ct_test::read_bytes(path);

  // Fails before anything is written.
  CT_REQUIRE_ERROR(save_checkpoint(path, {{{"w", zeros({1})}, {"w", zeros({1})}}, {}}),
                   "expected unique names");
  CHECK(ct_test::read_bytes(path) == before);
  CHECK(dir.list() == std::vector<std::string>{"model.ckpt"});

  // Fails after the temporary is complete: the real name is a directory, so the rename fails.
  const std::string blocked = dir.file("blocked.ckpt");
  std::filesystem::create_directory(blocked);
  CT_REQUIRE_ERROR(
      save_checkpoint(blocked, first),
      "save_checkpoint: expected to rename " + dir.path().string() + "/.blocked.ckpt.ct-tmp.");
  CT_REQUIRE_ERROR(save_checkpoint(blocked, first), " to " + blocked + ", got: Is a directory");
  CHECK(std::filesystem::is_directory(blocked));
  CHECK(dir.list() == std::vector<std::string>{"blocked.ckpt", "model.ckpt"});
  require_same(load_checkpoint(path).model, first.model);
}

TEST_CASE("entries whose data overlap cannot claim more than the payload", "[checkpoint]") {
  ct_test::TempDir dir;
  const std::string path = dir.file("overlap.ckpt");
  // Header of {"a": [2, 3] float32, "b": [2, 3] float32}: b's offset at 79, 112 bytes in all.
  save_checkpoint(path, {{{"a", zeros({2, 3})}, {"b", ones({2, 3})}}, {}});
  auto b = ct_test::read_bytes(path);
  constexpr std::size_t h = kHeader, payload = kHeader + 112;
  REQUIRE(get_u64(b, h + 79) == 24);
  REQUIRE(get_u64(b, 16) == 48);
  set_u64(b, h + 79, 0);  // b reads a's bytes, and the payload shrinks to a's 24
  set_u64(b, 16, 24);
  b.erase(b.begin() + payload + 24, b.begin() + payload + 48);
  fix_crc(b);
  ct_test::write_bytes(path, b);
  CT_REQUIRE_ERROR(load_checkpoint(path),
                   "load_checkpoint: expected the entries' data to fit in the 24-byte payload, got "
                   "more at \"b\" (entries that overlap?) in " +
                       path);
  // The same checks from memory, for fuzzing.
  CT_REQUIRE_ERROR(load_checkpoint_bytes(b, "mem"),
                   "got more at \"b\" (entries that overlap?) in mem");
  save_checkpoint(path, small_checkpoint());
  require_same(load_checkpoint_bytes(ct_test::read_bytes(path), "mem").model,
               small_checkpoint().model);
}

TEST_CASE("loading a FIFO, a folder or a device fails at once instead of blocking",
          "[checkpoint]") {
  ct_test::TempDir dir;
  const std::string fifo = dir.file("model.ckpt");
  ct_test::make_fifo(fifo);
  const ct_test::HangGuard guard(20);  // the old reader blocked in open() forever
  CT_REQUIRE_ERROR(load_checkpoint(fifo),
                   "load_checkpoint: expected a regular file, got a FIFO '" + fifo + "'");
  CT_REQUIRE_ERROR(load_checkpoint("/dev/null"),
                   "load_checkpoint: expected a regular file, got a character device '/dev/null'");
  CT_REQUIRE_ERROR(load_checkpoint(dir.path().string()), "got a directory");
  // Saving over a FIFO replaces the name; the FIFO is never opened.
  save_checkpoint(fifo, small_checkpoint());
  require_same(load_checkpoint(fifo).model, small_checkpoint().model);
}

namespace {

// Writer `id`'s checkpoint: model {"w": [256] all id}, optimizer {"step": id}.
Checkpoint writer_checkpoint(int id) {
  return {{{"w", full({256}, static_cast<double>(id), kFloat32)}},
          {{"step", full({}, static_cast<double>(id), kFloat64)}}};
}

// Empty when `ck` is some writer's complete checkpoint, else what is wrong. Raw bytes only: it
// runs in threads and forked children.
std::string check_writer_checkpoint(const Checkpoint& ck, int writers) {
  if (ck.model.size() != 1 || ck.optimizer.size() != 1 || ck.model[0].first != "w" ||
      ck.optimizer[0].first != "step")
    return "unexpected entries";
  const Tensor& w = ck.model[0].second;
  const Tensor& step = ck.optimizer[0].second;
  if (w.shape() != Shape{256} || w.dtype() != kFloat32 || step.dim() != 0 ||
      step.dtype() != kFloat64)
    return "unexpected shapes";
  double id = 0;
  std::memcpy(&id, step.raw_data(), sizeof id);
  if (!(id >= 0 && id < writers) || id != std::floor(id)) return "unexpected writer id";
  std::vector<float> values(256);
  std::memcpy(values.data(), w.raw_data(), sizeof(float) * 256);
  for (const float v : values)
    if (v != static_cast<float>(id)) return "a mixture of two writers";
  return {};
}

}  // namespace

TEST_CASE("8 threads and 2 processes saving to one path all succeed, every load is whole",
          "[checkpoint]") {
  constexpr int kThreads = 8, kProcesses = 2, kSaves = 100, kWriters = kThreads + kProcesses;
  ct_test::TempDir dir;
  const std::string path = dir.file("shared.ckpt");
  std::vector<Checkpoint> checkpoints;
  for (int id = 0; id < kWriters; ++id) checkpoints.push_back(writer_checkpoint(id));
  save_checkpoint(path, checkpoints[0]);

  // One writer: save, then load what is there (anyone's), kSaves times. Returns the failures.
  const auto run_writer = [&](int id) {
    std::string failures;
    for (int i = 0; i < kSaves; ++i) {
      try {
        save_checkpoint(path, checkpoints[static_cast<std::size_t>(id)]);
        const std::string bad = check_writer_checkpoint(load_checkpoint(path), kWriters);
        if (!bad.empty()) failures += bad + "; ";
      } catch (const std::exception& e) {
        failures += std::string(e.what()) + "; ";
      }
    }
    return failures;
  };

  // The processes are forked before any thread exists, and start when the pipe closes.
  int start[2];
  REQUIRE(::pipe(start) == 0);
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      ::alarm(300);
      ::close(start[1]);
      char c;
      while (::read(start[0], &c, 1) > 0) {
      }
      const std::string failures = run_writer(kThreads + p);
      if (!failures.empty()) std::fprintf(stderr, "process writer: %s\n", failures.c_str());
      ::_exit(failures.empty() ? 0 : 1);
    }
    children.push_back(child);
  }
  ::close(start[0]);
  std::vector<std::string> failures(kThreads);
  std::vector<std::thread> threads;
  std::atomic<bool> go{false};
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();
      failures[static_cast<std::size_t>(t)] = run_writer(t);
    });
  ::close(start[1]);
  go = true;
  for (std::thread& t : threads) t.join();
  for (const pid_t child : children) {
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  for (int t = 0; t < kThreads; ++t) {
    INFO("thread " << t);
    CHECK(failures[static_cast<std::size_t>(t)].empty());
  }
  CHECK(check_writer_checkpoint(load_checkpoint(path), kWriters).empty());
  CHECK(dir.list() == std::vector<std::string>{"shared.ckpt"});  // no temporary left behind
}
