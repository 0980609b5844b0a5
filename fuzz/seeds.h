// Seed inputs of the fuzz targets, made with the library itself (checkpoints through
// save_checkpoint) or by the formats' definitions (IDX, gzip), so that no binary needs committing:
// fuzz/seed_gen.cpp writes them as a libFuzzer corpus, the seeded tests feed them (and mutations of
// them) to the target bodies. Also the gzip helpers of the files target.
#pragma once

#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "convtape.h"

namespace ct_fuzz {

using Bytes = std::vector<std::uint8_t>;

// A single gzip member holding `in`.
inline Bytes gzip(const Bytes& in) {
  z_stream zs{};
  if (deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) std::abort();
  Bytes out(deflateBound(&zs, static_cast<uLong>(in.size())) + 32);
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  if (deflate(&zs, Z_FINISH) != Z_STREAM_END) std::abort();
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

// A gzip member of n zero bytes (n rounded up to whole MiB), built without deflating n bytes: after
// a full flush deflate starts afresh, so every MiB of zeros compresses to the same bytes, and the
// member is the gzip header, that block repeated, the final block and the trailer. Cached.
inline Bytes gzip_zeros(std::size_t n) {
  static std::map<std::size_t, Bytes> cache;
  constexpr std::size_t kChunk = std::size_t{1} << 20;
  const std::size_t chunks = (n + kChunk - 1) / kChunk;
  if (auto it = cache.find(chunks); it != cache.end()) return it->second;

  z_stream zs{};
  if (deflateInit2(&zs, 9, Z_DEFLATED, -MAX_WBITS, 9, Z_DEFAULT_STRATEGY) != Z_OK) std::abort();
  const Bytes zeros(kChunk, 0);
  auto step = [&](const Bytes& input, int flush) {
    Bytes out(kChunk);
    zs.next_in = const_cast<Bytef*>(input.data());
    zs.avail_in = static_cast<uInt>(input.size());
    zs.next_out = out.data();
    zs.avail_out = static_cast<uInt>(out.size());
    deflate(&zs, flush);
    if (zs.avail_in != 0) std::abort();
    out.resize(out.size() - zs.avail_out);
    return out;
  };
  const Bytes first = step(zeros, Z_FULL_FLUSH);
  const Bytes again = step(zeros, Z_FULL_FLUSH);
  if (first != again) std::abort();  // the repetition this relies on
  const Bytes tail = step(Bytes{}, Z_FINISH);
  deflateEnd(&zs);

  Bytes out = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
  out.reserve(out.size() + first.size() * chunks + tail.size() + 8);
  for (std::size_t i = 0; i < chunks; ++i) out.insert(out.end(), first.begin(), first.end());
  out.insert(out.end(), tail.begin(), tail.end());
  const uLong chunk_crc = crc32(0L, zeros.data(), static_cast<uInt>(kChunk));
  uLong crc = 0;
  for (std::size_t i = 0; i < chunks; ++i)
    crc = crc32_combine(crc, chunk_crc, static_cast<z_off_t>(kChunk));
  const std::uint64_t total = chunks * kChunk;
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(crc >> (8 * i)));
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(total >> (8 * i)));
  cache.emplace(chunks, out);
  return out;
}

// An IDX file: type code, big-endian dims, then `elements` (already big-endian).
inline Bytes idx_bytes(std::uint8_t type, const std::vector<std::uint32_t>& dims,
                       const Bytes& elements) {
  Bytes b = {0, 0, type, static_cast<std::uint8_t>(dims.size())};
  for (const std::uint32_t d : dims)
    for (int i = 3; i >= 0; --i) b.push_back(static_cast<std::uint8_t>(d >> (8 * i)));
  b.insert(b.end(), elements.begin(), elements.end());
  return b;
}

inline Bytes read_all(const std::string& path) {
  Bytes b;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) std::abort();
  std::uint8_t buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) b.insert(b.end(), buf, buf + n);
  std::fclose(f);
  return b;
}

// Checkpoints as save_checkpoint writes them: every dtype, a scalar, an empty tensor, an empty
// section.
inline std::vector<Bytes> checkpoint_seeds() {
  using namespace convtape;
  std::string dir = (std::getenv("TMPDIR") ? std::string(std::getenv("TMPDIR")) : "/tmp") +
                    "/ct_fuzz_seeds.XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr) std::abort();
  const std::string path = dir + "/seed.ckpt";
  std::vector<io::Checkpoint> checkpoints(3);
  checkpoints[0].model = {
      {"fc.weight", arange(6.0).reshape({2, 3})},
      {"fc.bias", tensor({0.5, -1.0}, kFloat64)},
      {"bn.num_batches_tracked", from_vector(std::vector<std::int64_t>{3}, {1})}};
  checkpoints[0].optimizer = {{"step", full({}, 7.0, kFloat64)},
                              {"state.0.exp_avg", zeros({2, 3})}};
  checkpoints[1].model = {{"conv.weight", ones({1, 1, 2, 2}, kFloat64)}, {"empty", zeros({0, 4})}};
  std::vector<Bytes> out;
  for (const auto& c : checkpoints) {
    io::save_checkpoint(path, c);
    out.push_back(read_all(path));
  }
  std::remove(path.c_str());
  ::rmdir(dir.c_str());
  return out;
}

// IDX files of every element type and ranks 1 to 4.
inline std::vector<Bytes> idx_seeds() {
  return {idx_bytes(0x08, {2, 2, 2}, {0, 1, 2, 3, 250, 251, 252, 255}),
          idx_bytes(0x09, {3}, {0x80, 0x00, 0x7f}),
          idx_bytes(0x0B, {2}, {0x01, 0x02, 0xff, 0xfe}),
          idx_bytes(0x0C, {1, 2}, {0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff}),
          idx_bytes(0x0D, {1}, {0x3f, 0x80, 0, 0}),
          idx_bytes(0x0E, {1, 1, 1, 1}, {0x3f, 0xf0, 0, 0, 0, 0, 0, 0}),
          idx_bytes(0x08, {0}, {})};
}

// The files target's seeds, each with its mode byte (see fuzz/files.cpp).
inline std::vector<Bytes> files_seeds() {
  std::vector<Bytes> out;
  auto with_mode = [&](std::uint8_t mode, const Bytes& b) {
    Bytes s{mode};
    s.insert(s.end(), b.begin(), b.end());
    out.push_back(std::move(s));
  };
  for (const auto& c : checkpoint_seeds()) {
    with_mode(0, c);
    with_mode(1, c);
    with_mode(5, c);
  }
  for (const auto& i : idx_seeds()) {
    with_mode(2, i);
    with_mode(2, gzip(i));
    with_mode(3, i);
  }
  // The gzip bomb: a one-element IDX header followed by 1.5 times the allocation cap of zeros.
  with_mode(7, idx_bytes(0x08, {1}, {42}));
  return out;
}

}  // namespace ct_fuzz
