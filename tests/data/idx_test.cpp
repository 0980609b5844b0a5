// The IDX reader: plain and gzipped files (detected by content), every element type decoded from
// big-endian, and each malformed header, size or gzip stream refused with the file's name; a gzip
// bomb refused after inflating its header (memory measured), FIFOs and devices without blocking.
#include <sys/resource.h>

#include <bit>
#include <chrono>
#include <cstring>
#include <fstream>

#include "data/idx.h"
#include "io/file_helpers.h"
#include "support/test_util.h"

using namespace convtape;
using convtape::data::IdxArray;
using convtape::data::IdxType;
using convtape::data::read_idx;

namespace {

// An IDX file: zero, zero, type, rank, big-endian u32 dims, then `data` as given.
std::vector<std::uint8_t> idx_bytes(std::uint8_t type, const std::vector<std::uint32_t>& dims,
                                    const std::vector<std::uint8_t>& data) {
  std::vector<std::uint8_t> b = {0, 0, type, static_cast<std::uint8_t>(dims.size())};
  for (const std::uint32_t d : dims)
    for (int i = 3; i >= 0; --i) b.push_back(static_cast<std::uint8_t>(d >> (8 * i)));
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

// The big-endian bytes of each value.
template <class T>
std::vector<std::uint8_t> big_endian(const std::vector<T>& values) {
  std::vector<std::uint8_t> out;
  for (const T v : values) {
    std::uint8_t b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    for (std::size_t i = sizeof(T); i-- > 0;) out.push_back(b[i]);  // little-endian host
  }
  return out;
}

}  // namespace

TEST_CASE("plain and gzipped IDX files read the same", "[idx]") {
  ct_test::TempDir dir;
  const std::vector<std::uint8_t> pixels = {0, 51, 102, 153, 204, 255};
  const auto file = idx_bytes(0x08, {2, 3}, pixels);
  ct_test::write_bytes(dir.file("plain-idx2-ubyte"), file);
  // Named without .gz: the gzip magic, not the name, decides.
  ct_test::write_bytes(dir.file("packed-idx2-ubyte"), ct_test::gzip(file));
  for (const char* name : {"plain-idx2-ubyte", "packed-idx2-ubyte"}) {
    INFO(name);
    const IdxArray a = read_idx(dir.file(name));
    CHECK(a.type == IdxType::UInt8);
    CHECK(a.dims == Shape{2, 3});
    CHECK(a.numel() == 6);
    CHECK(a.bytes == pixels);
    const Tensor x = a.to_float_tensor(1.0 / 255.0);
    CHECK(x.dtype() == kFloat32);
    CHECK(x.shape() == Shape{2, 3});
    CHECK(x.to_vector<float>() == std::vector<float>{0.0f, 0.2f, 0.4f, 0.6f, 0.8f, 1.0f});
    CHECK(a.to_int64_tensor().to_vector<std::int64_t>() ==
          std::vector<std::int64_t>{0, 51, 102, 153, 204, 255});
  }

  // Two gzip members, as `cat a.gz b.gz` makes: the header in one, the data in the other.
  auto two = ct_test::gzip({file.begin(), file.begin() + 12});
  const auto rest = ct_test::gzip({file.begin() + 12, file.end()});
  two.insert(two.end(), rest.begin(), rest.end());
  ct_test::write_bytes(dir.file("two.gz"), two);
  CHECK(read_idx(dir.file("two.gz")).bytes == pixels);

  // An empty array is valid, however large its other dims.
  ct_test::write_bytes(dir.file("empty"), idx_bytes(0x08, {0, 0xffffffffu, 0xffffffffu}, {}));
  const IdxArray empty = read_idx(dir.file("empty"));
  CHECK(empty.dims == Shape{0, 0xffffffffLL, 0xffffffffLL});
  CT_REQUIRE_ERROR(empty.to_float_tensor(),
                   "to_tensor: expected dims whose strides fit in 64 bits, got [0, 4294967295, "
                   "4294967295]");
  ct_test::write_bytes(dir.file("empty"), idx_bytes(0x08, {0, 28, 28}, {}));
  CHECK(read_idx(dir.file("empty")).to_float_tensor().shape() == Shape{0, 28, 28});
}

TEST_CASE("every IDX element type is decoded from big-endian", "[idx]") {
  ct_test::TempDir dir;
  const std::string path = dir.file("t");
  {
    ct_test::write_bytes(path, idx_bytes(0x09, {3}, {0x80, 0xff, 0x7f}));
    const IdxArray a = read_idx(path);
    CHECK(a.type == IdxType::Int8);
    CHECK(a.to_int64_tensor().to_vector<std::int64_t>() ==
          std::vector<std::int64_t>{-128, -1, 127});
    CHECK(a.to_tensor(kFloat64, 0.5).to_vector<double>() == std::vector<double>{-64, -0.5, 63.5});
  }
  {
    ct_test::write_bytes(path,
                         idx_bytes(0x0B, {3}, big_endian<std::int16_t>({-300, 1234, -32768})));
    const IdxArray a = read_idx(path);
    CHECK(a.type == IdxType::Int16);
    CHECK(a.to_int64_tensor().to_vector<std::int64_t>() ==
          std::vector<std::int64_t>{-300, 1234, -32768});
  }
  {
    ct_test::write_bytes(path,
                         idx_bytes(0x0C, {1, 2}, big_endian<std::int32_t>({-70000, 2147483647})));
    const IdxArray a = read_idx(path);
    CHECK(a.type == IdxType::Int32);
    CHECK(a.dims == Shape{1, 2});
    CHECK(a.to_int64_tensor().to_vector<std::int64_t>() ==
          std::vector<std::int64_t>{-70000, 2147483647});
  }
  {
    ct_test::write_bytes(path, idx_bytes(0x0D, {2}, big_endian<float>({1.5f, -0.1f})));
    const IdxArray a = read_idx(path);
    CHECK(a.type == IdxType::Float32);
    CHECK(a.to_float_tensor().to_vector<float>() == std::vector<float>{1.5f, -0.1f});
    CT_REQUIRE_ERROR(a.to_int64_tensor(),
                     "to_tensor: expected an integer IDX type and scale 1 for int64, got float32");
  }
  {
    ct_test::write_bytes(path, idx_bytes(0x0E, {1, 1, 1, 2}, big_endian<double>({3.25, -1e300})));
    const IdxArray a = read_idx(path);
    CHECK(a.type == IdxType::Float64);
    CHECK(a.dims == Shape{1, 1, 1, 2});
    CHECK(a.to_tensor(kFloat64).to_vector<double>() == std::vector<double>{3.25, -1e300});
  }
  CHECK(data::idx_type_name(IdxType::Int16) == "int16");
  CHECK(data::idx_type_size(IdxType::Float64) == 8);
}

TEST_CASE("malformed IDX files are refused, naming the file", "[idx]") {
  ct_test::TempDir dir;
  const std::string path = dir.file("bad-idx");
  const auto expect = [&](const std::vector<std::uint8_t>& bytes, const std::string& message) {
    ct_test::write_bytes(path, bytes);
    CT_REQUIRE_ERROR(read_idx(path), message);
    CT_REQUIRE_ERROR(read_idx(path), " in " + path);
  };
  expect({}, "read_idx: expected at least 4 bytes (an IDX header), got 0 (file truncated?)");
  expect({1, 0, 8, 1, 0, 0, 0, 0},
         "read_idx: expected an IDX file starting with two zero bytes, got 0x01 0x00");
  expect({0, 0, 0x07, 1, 0, 0, 0, 0},
         "read_idx: expected type code 0x08, 0x09, 0x0B, 0x0C, 0x0D or 0x0E, got 0x07");
  expect({0, 0, 8, 0}, "read_idx: expected rank 1 to 4, got 0");
  expect(idx_bytes(8, {1, 1, 1, 1, 1}, {0}), "read_idx: expected rank 1 to 4, got 5");
  expect({0, 0, 8, 3, 0, 0, 0, 1, 0, 0},
         "read_idx: expected at least 16 bytes (the header of a rank-3 file), got 10");
  expect(idx_bytes(8, {2, 3}, {1, 2, 3, 4, 5}),
         "read_idx: expected 6 data bytes for [2, 3] uint8, got 5 (file truncated?)");
  expect(idx_bytes(0x0B, {2}, {1, 2, 3, 4, 5}),
         "read_idx: expected 4 data bytes for [2] int16, got 5 (trailing data)");
  expect(idx_bytes(0x0E, {65536, 65536, 65536, 65536}, {}),
         "read_idx: expected 2^64 or more data bytes for [65536, 65536, 65536, 65536] float64");

  const auto good = ct_test::gzip(idx_bytes(8, {4, 4}, std::vector<std::uint8_t>(16, 7)));
  expect({good.begin(), good.end() - 6},
         "read_idx: expected a complete gzip stream, got its end after");
  auto bad_crc = good;
  bad_crc[bad_crc.size() - 8] ^= 1;  // the trailer's CRC-32 of the uncompressed data
  expect(bad_crc, "read_idx: expected valid gzip data, got zlib error \"incorrect data check\"");
  auto trailing = good;
  trailing.push_back(0);
  trailing.push_back(0);
  expect(trailing, "read_idx: expected the end of the gzip data, got 2 more bytes");

  const std::string missing = dir.file("missing");
  CT_REQUIRE_ERROR(read_idx(missing), "read_idx: expected a readable file at " + missing);
}

TEST_CASE("parse_idx reads bytes in memory, plain or gzipped, with read_idx's checks", "[idx]") {
  const auto file = idx_bytes(0x0B, {3}, big_endian<std::int16_t>({-1, 2, 300}));
  for (const auto& bytes : {file, ct_test::gzip(file)}) {
    const IdxArray a = data::parse_idx(bytes, "mem");
    CHECK(a.dims == Shape{3});
    CHECK(a.to_int64_tensor().to_vector<std::int64_t>() == std::vector<std::int64_t>{-1, 2, 300});
  }
  CT_REQUIRE_ERROR(data::parse_idx(std::vector<std::uint8_t>{0, 0, 8}, "mem"),
                   "read_idx: expected at least 4 bytes (an IDX header), got 3 (file truncated?) "
                   "in mem");
  // Sizes past the largest tensor are refused from the header, before anything is allocated.
  CT_REQUIRE_ERROR(data::parse_idx(idx_bytes(0x08, {65536, 65536, 65536, 40000}, {}), "mem"),
                   "read_idx: expected at most 9223372036854775807 data bytes (the largest "
                   "tensor), got a header declaring 11258999068426240000 for [65536, 65536, "
                   "65536, 40000] uint8 in mem");
  // A caller's own budget: 2 MiB of declared data (none of it present) against 1 MiB.
  CT_REQUIRE_ERROR(
      data::parse_idx(idx_bytes(0x08, {2048, 1024}, {}), "mem", std::uint64_t{1} << 20),
      "read_idx: expected at most 1048576 data bytes (max_bytes), got a header declaring 2097152 "
      "for [2048, 1024] uint8 in mem");
  CHECK(data::parse_idx(idx_bytes(0x08, {3}, {1, 2, 3}), "mem", 3).dims == Shape{3});
}

namespace {

// Peak resident memory in KiB, after resetting the peak to the current size where the kernel
// allows it (Linux >= 4.0: "5" into /proc/self/clear_refs). Returns false if it cannot reset.
bool reset_peak_rss() {
  std::ofstream clear("/proc/self/clear_refs");
  clear << "5";
  clear.flush();
  return static_cast<bool>(clear);
}
long peak_rss_kib() {
  rusage r{};
  ::getrusage(RUSAGE_SELF, &r);
  return r.ru_maxrss;
}

}  // namespace

TEST_CASE("a gzip bomb is refused after its declared size, in little memory", "[idx]") {
  ct_test::TempDir dir;
  const std::string path = dir.file("bomb-idx1-ubyte.gz");
  // One uint8 element declared, then 100 MiB of zeros: about 100 KiB gzipped.
  constexpr std::uint64_t kZeros = std::uint64_t{100} << 20;
  const auto bomb = ct_test::gzip_with_zeros(idx_bytes(0x08, {1}, {}), kZeros);
  REQUIRE(bomb.size() < (std::size_t{1} << 20));
  ct_test::write_bytes(path, bomb);

  if (!reset_peak_rss()) {
    WARN("cannot reset the peak RSS here; the memory bound is not measured");
  } else {
    // The measure itself works: touching 64 MiB shows up.
    const long before_probe = peak_rss_kib();
    {
      std::vector<std::uint8_t> probe(std::size_t{64} << 20, 1);
      CHECK(peak_rss_kib() - before_probe >= 60 * 1024);
    }
    REQUIRE(reset_peak_rss());
  }
  const long before = peak_rss_kib();
  const auto start = std::chrono::steady_clock::now();
  CT_REQUIRE_ERROR(read_idx(path),
                   "read_idx: expected 1 data bytes for [1] uint8, got more "
                   "(trailing data) in " +
                       path);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(seconds < 1.0);
  CHECK(peak_rss_kib() - before < 32 * 1024);
  CT_REQUIRE_ERROR(data::parse_idx(bomb, "mem"), "got more (trailing data) in mem");

  // Declaring all of it is fine: the data is really there.
  ct_test::write_bytes(path, ct_test::gzip_with_zeros(idx_bytes(0x08, {1 << 20}, {}), 1 << 20));
  CHECK(read_idx(path).bytes.size() == std::size_t{1} << 20);
  // Declaring more than there is fails at the end of the real data, having allocated no more
  // than it held (about twice, as the buffer grows).
  ct_test::write_bytes(path,
                       ct_test::gzip_with_zeros(idx_bytes(0x08, {1u << 31, 1u << 31}, {}), 100));
  CT_REQUIRE_ERROR(read_idx(path),
                   "read_idx: expected 4611686018427387904 data bytes for "
                   "[2147483648, 2147483648] uint8, got 100 (file truncated?)");
}

TEST_CASE("read_idx refuses FIFOs, folders and devices without blocking", "[idx]") {
  ct_test::TempDir dir;
  const std::string fifo = dir.file("train-images-idx3-ubyte");
  ct_test::make_fifo(fifo);
  const ct_test::HangGuard guard(20);  // the old reader blocked in open() forever
  CT_REQUIRE_ERROR(read_idx(fifo), "read_idx: expected a regular file, got a FIFO '" + fifo + "'");
  CT_REQUIRE_ERROR(read_idx("/dev/null"),
                   "read_idx: expected a regular file, got a character device '/dev/null'");
  CT_REQUIRE_ERROR(read_idx(dir.path().string()),
                   "read_idx: expected a regular file, got a "
                   "directory");
}
