// Fuzz target body over checkpoint and IDX bytes. The first byte picks how the rest is read:
//   mode 0  as a checkpoint file, as it is;
//   mode 1  as a checkpoint whose CRC-32 (and, with a flag, its header and payload lengths) the
//           harness rewrites to match, so that mutations reach the header and entry parsing
//           behind the checksum;
//   mode 2  as an IDX file, as it is (gzip is detected by content, so gzip streams are fuzzed
//           too), and the same bytes through parse_idx in memory;
//   mode 3  as an IDX file gzipped by the harness, optionally followed by a second gzip member of
//           zeros 1.5 times the run's allocation cap: a gzip bomb, which the reader must stop
//           inflating at the size the IDX header declares.
// Loading must return or throw convtape::Error; whatever loads must be a valid tensor (or IDX
// array whose bytes match its dims). Served by fuzz/files_fuzzer.cpp and tests/fuzz/files_test.cpp.
#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "fuzz/alloc_cap.h"
#include "fuzz/fuzz_input.h"
#include "fuzz/seeds.h"

namespace ct_fuzz {
namespace {

using Bytes = std::vector<std::uint8_t>;

// One private folder per process for the input file (libFuzzer's -jobs run several processes).
// The data budget given to the IDX readers: a header may declare (and a gzip stream really hold)
// more than the allocation cap, which a reader must then refuse from the header instead of
// allocating it; the readers' memory grows by doubling, so a quarter of the cap stays under it.
std::uint64_t idx_budget() {
  return alloc_cap_bytes() / 4;
}

const std::string& input_path() {
  static const std::string path = [] {
    std::string dir = (std::getenv("TMPDIR") ? std::string(std::getenv("TMPDIR")) : "/tmp") +
                      "/ct_fuzz_files.XXXXXX";
    if (::mkdtemp(dir.data()) == nullptr) std::abort();
    return dir + "/input";
  }();
  return path;
}

void write_input(const Bytes& bytes) {
  FILE* f = std::fopen(input_path().c_str(), "wb");
  if (f == nullptr) std::abort();
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) std::abort();
  std::fclose(f);
}

void put_u32(Bytes& b, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<std::uint8_t>(v >> (8 * i));
}
void put_u64(Bytes& b, std::size_t at, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) b[at + i] = static_cast<std::uint8_t>(v >> (8 * i));
}

// Makes the lengths and the CRC-32 of a checkpoint agree with its bytes (see io/checkpoint.h).
void fix_checkpoint(Bytes& b, bool fix_lengths, std::uint8_t split) {
  if (b.size() < 28) return;
  if (fix_lengths) {
    // Keep the header length if it fits, else split the body at a fuzzed point.
    const std::uint64_t body = b.size() - 28;
    std::uint32_t h = static_cast<std::uint32_t>(b[12]) | static_cast<std::uint32_t>(b[13]) << 8 |
                      static_cast<std::uint32_t>(b[14]) << 16 |
                      static_cast<std::uint32_t>(b[15]) << 24;
    if (h > body) h = static_cast<std::uint32_t>(body * split / 255);
    put_u32(b, 12, h);
    put_u64(b, 16, body - h);
  }
  const auto crc = crc32(0L, b.data(), static_cast<uInt>(b.size() - 4));
  put_u32(b, b.size() - 4, static_cast<std::uint32_t>(crc));
}

void check_loaded(const convtape::io::Checkpoint& ckpt) {
  for (const auto* dict : {&ckpt.model, &ckpt.optimizer})
    for (const auto& [name, t] : *dict) check_result(t, "load_checkpoint");
}

void check_idx(const convtape::data::IdxArray& a) {
  if (a.dims.size() > 4) throw Finding("read_idx: returned a rank above 4");
  i128 count = 1;  // at most 4 dims below 2^32: fits
  for (const auto d : a.dims) {
    if (d < 0 || d > 0xffffffffLL) throw Finding("read_idx: returned a dim outside [0, 2^32)");
    count *= d;
  }
  if (count * static_cast<i128>(convtape::data::idx_type_size(a.type)) !=
      static_cast<i128>(a.bytes.size()))
    throw Finding("read_idx: returned " + std::to_string(a.bytes.size()) + " bytes for dims " +
                  convtape::to_string(a.dims));
  for (const auto dtype : {convtape::kFloat32, convtape::kFloat64, convtape::kInt64}) {
    try {
      check_result(a.to_tensor(dtype, dtype == convtape::kInt64 ? 1.0 : 1.0 / 255),
                   "IdxArray::to_tensor");
    } catch (const convtape::Error&) {
      // Floating IDX data has no int64 form; refusing it is the contract.
    }
  }
}

void run(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return;
  const std::uint8_t mode = data[0];
  Bytes body(data + 1, data + size);
  switch (mode & 3) {
    case 0:
    case 1: {
      if ((mode & 3) == 1) fix_checkpoint(body, (mode & 4) != 0, mode);
      write_input(body);
      check_loaded(convtape::io::load_checkpoint(input_path()));
      break;
    }
    case 2: {
      write_input(body);
      try {
        check_idx(convtape::data::parse_idx(body, "fuzz input", idx_budget()));
      } catch (const convtape::Error&) {
        // Refused in memory; the file path below must agree or refuse too.
      }
      check_idx(convtape::data::read_idx(input_path(), idx_budget()));
      break;
    }
    default: {
      Bytes gz = gzip(body);
      if ((mode & 4) != 0) {
        const Bytes bomb = gzip_zeros(alloc_cap_bytes() + alloc_cap_bytes() / 2);
        gz.insert(gz.end(), bomb.begin(), bomb.end());
      }
      write_input(gz);
      check_idx(convtape::data::read_idx(input_path(), idx_budget()));
      break;
    }
  }
}

}  // namespace
}  // namespace ct_fuzz

int ct_fuzz_files(const std::uint8_t* data, std::size_t size) {
  try {
    ct_fuzz::run(data, size);
  } catch (const convtape::Error&) {
    // A refusal with a message is the contract; everything else propagates.
  }
  return 0;
}
