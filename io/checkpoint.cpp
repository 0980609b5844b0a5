// Checkpoint writer and validating reader; the file format is documented in io/checkpoint.h.
#include "io/checkpoint.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <limits>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/autograd.h"
#include "io/file.h"

namespace convtape::io {

static_assert(std::endian::native == std::endian::little,
              "checkpoint payloads are little-endian; a big-endian host needs byte swaps here");

namespace {

constexpr std::array<std::uint8_t, 8> kMagic = {'C', 'T', 'C', 'K', 'P', 'T', '\r', '\n'};
constexpr std::size_t kPrefixBytes = 24;  // magic, version, header length, payload length
constexpr std::size_t kCrcBytes = 4;
constexpr std::int64_t kMaxRank = 64;
constexpr std::array<std::string_view, 2> kSections = {"model", "optimizer"};

std::uint8_t dtype_code(DType t) {
  switch (t) {
    case DType::Float32:
      return 0;
    case DType::Float64:
      return 1;
    case DType::Int64:
      return 2;
  }
  CT_FAIL("save_checkpoint: expected dtype float32, float64 or int64, got code {}",
          static_cast<int>(t));
}

std::optional<DType> dtype_from_code(std::uint8_t code) {
  switch (code) {
    case 0:
      return kFloat32;
    case 1:
      return kFloat64;
    case 2:
      return kInt64;
    default:
      return std::nullopt;
  }
}

void put_u8(std::vector<std::uint8_t>& out, std::uint8_t v) {
  out.push_back(v);
}
void put_u32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
void put_u64(std::vector<std::uint8_t>& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
void put_string(std::vector<std::uint8_t>& out, std::string_view s) {
  put_u32(out, static_cast<std::uint32_t>(s.size()));
  out.insert(out.end(), s.begin(), s.end());
}

std::uint32_t get_u32(const std::uint8_t* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(p[i]) << (8 * i);
  return v;
}
std::uint64_t get_u64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  return v;
}

// zlib's crc32 over any length (crc32_z takes a size_t); a zero length leaves crc unchanged.
std::uint32_t crc_update(std::uint32_t crc, const void* data, std::size_t nbytes) {
  if (nbytes == 0) return crc;
  return static_cast<std::uint32_t>(
      crc32_z(crc, static_cast<const Bytef*>(data), static_cast<z_size_t>(nbytes)));
}

std::string hex_bytes(const std::uint8_t* p, std::size_t n) {
  std::string s;
  for (std::size_t i = 0; i < n; ++i) s += fmt::format("{}{:02x}", i ? " " : "", p[i]);
  return s;
}

std::string describe(const Tensor& t) {
  return t.defined() ? fmt::format("{} {}", to_string(t.shape()), dtype_name(t.dtype()))
                     : std::string("undefined");
}

// Bounds-checked reads from the header; every failure names the file and what was being read.
class HeaderReader {
 public:
  HeaderReader(const std::uint8_t* data, std::size_t size, const std::string& path)
      : data_(data), size_(size), path_(path) {}

  const std::uint8_t* take(std::size_t n, std::string_view what) {
    CT_CHECK(n <= size_ - pos_,
             "load_checkpoint: expected {} ({} bytes) at header byte {}, got the end of the "
             "{}-byte header in {}",
             what, n, pos_, size_, path_);
    const std::uint8_t* p = data_ + pos_;
    pos_ += n;
    return p;
  }
  std::uint8_t u8(std::string_view what) { return *take(1, what); }
  std::uint32_t u32(std::string_view what) { return get_u32(take(4, what)); }
  std::uint64_t u64(std::string_view what) { return get_u64(take(8, what)); }
  std::string text(std::string_view what) {
    const std::uint32_t n = u32(what);
    const std::uint8_t* p = take(n, what);
    return {reinterpret_cast<const char*>(p), n};
  }
  std::size_t position() const { return pos_; }
  std::size_t size() const { return size_; }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
  const std::string& path_;
};

// One validated header entry: where its data lies in the payload.
struct EntryPlan {
  std::string name;
  DType dtype;
  Shape shape;
  std::uint64_t offset;
  std::uint64_t nbytes;
};

}  // namespace

void save_checkpoint(const std::string& path, const Checkpoint& checkpoint) {
  const std::array<const StateDict*, 2> dicts = {&checkpoint.model, &checkpoint.optimizer};

  // Header first: it needs only names, shapes and dtypes.
  std::vector<std::uint8_t> header;
  std::uint64_t payload = 0;
  put_u32(header, static_cast<std::uint32_t>(kSections.size()));
  for (std::size_t s = 0; s < kSections.size(); ++s) {
    const StateDict& dict = *dicts[s];
    put_string(header, kSections[s]);
    CT_CHECK(dict.size() <= std::numeric_limits<std::uint32_t>::max(),
             "save_checkpoint: expected at most 2^32 - 1 entries in section {}, got {}",
             kSections[s], dict.size());
    put_u32(header, static_cast<std::uint32_t>(dict.size()));
    std::unordered_set<std::string_view> seen;
    for (const auto& [name, t] : dict) {
      CT_CHECK(t.defined(),
               "save_checkpoint: expected a defined tensor for {} entry \"{}\", got an undefined "
               "one",
               kSections[s], name);
      CT_CHECK(seen.insert(name).second,
               "save_checkpoint: expected unique names in section {}, got \"{}\" twice",
               kSections[s], name);
      CT_CHECK(name.size() <= std::numeric_limits<std::uint32_t>::max(),
               "save_checkpoint: expected a name shorter than 4 GiB, got {} bytes", name.size());
      CT_CHECK(t.dim() <= kMaxRank, "save_checkpoint: expected rank <= {} for \"{}\", got {}",
               kMaxRank, name, t.dim());
      const std::uint64_t nbytes = static_cast<std::uint64_t>(t.numel()) * dtype_size(t.dtype());
      put_string(header, name);
      put_u8(header, dtype_code(t.dtype()));
      put_u8(header, static_cast<std::uint8_t>(t.dim()));
      for (const std::int64_t d : t.shape()) put_u64(header, static_cast<std::uint64_t>(d));
      put_u64(header, payload);
      put_u64(header, nbytes);
      payload += nbytes;
    }
  }
  CT_CHECK(header.size() <= std::numeric_limits<std::uint32_t>::max(),
           "save_checkpoint: expected a header shorter than 4 GiB, got {} bytes", header.size());

  std::vector<std::uint8_t> prefix(kMagic.begin(), kMagic.end());
  put_u32(prefix, kCheckpointVersion);
  put_u32(prefix, static_cast<std::uint32_t>(header.size()));
  put_u64(prefix, payload);

  AtomicFile file(path, "save_checkpoint");
  std::uint32_t crc = 0;
  const auto emit = [&](const void* data, std::size_t nbytes) {
    file.write(data, nbytes);
    crc = crc_update(crc, data, nbytes);
  };
  emit(prefix.data(), prefix.size());
  emit(header.data(), header.size());
  NoGradGuard no_grad;
  for (const StateDict* dict : dicts) {
    for (const auto& entry : *dict) {
      // One tensor at a time on the host, so a CUDA model needs no second full copy.
      const Tensor host = entry.second.detach().cpu().contiguous();
      emit(host.raw_data(), static_cast<std::size_t>(host.numel()) * dtype_size(host.dtype()));
    }
  }
  std::vector<std::uint8_t> trailer;
  put_u32(trailer, crc);
  file.write(trailer.data(), trailer.size());
  file.commit();
}

Checkpoint load_checkpoint(const std::string& path) {
  return load_checkpoint_bytes(read_file(path, "load_checkpoint"), path);
}

Checkpoint load_checkpoint_bytes(std::span<const std::uint8_t> bytes, const std::string& path) {
  const std::size_t size = bytes.size();
  const std::uint8_t* data = bytes.data();

  const std::size_t magic_seen = std::min(size, kMagic.size());
  CT_CHECK(magic_seen == 0 || std::memcmp(data, kMagic.data(), magic_seen) == 0,
           "load_checkpoint: expected the magic bytes {} (\"CTCKPT\\r\\n\"), got {} (not a "
           "convtape checkpoint?) in {}",
           hex_bytes(kMagic.data(), kMagic.size()), hex_bytes(data, magic_seen), path);
  CT_CHECK(size >= kPrefixBytes + kCrcBytes,
           "load_checkpoint: expected at least {} bytes, got {} (file truncated?) in {}",
           kPrefixBytes + kCrcBytes, size, path);
  const std::uint32_t version = get_u32(data + 8);
  CT_CHECK(version <= kCheckpointVersion,
           "load_checkpoint: expected format version <= {}, got {} (written by a newer convtape?) "
           "in {}",
           kCheckpointVersion, version, path);
  CT_CHECK(version >= 1, "load_checkpoint: expected format version >= 1, got {} in {}", version,
           path);
  const std::uint64_t header_bytes = get_u32(data + 12);
  const std::uint64_t payload_bytes = get_u64(data + 16);
  const std::uint64_t fixed = kPrefixBytes + kCrcBytes + header_bytes;
  CT_CHECK(payload_bytes <= std::numeric_limits<std::uint64_t>::max() - fixed &&
               fixed + payload_bytes <= size,
           "load_checkpoint: expected at least {} bytes (a {}-byte header and a {}-byte payload), "
           "got {} (file truncated?) in {}",
           payload_bytes <= std::numeric_limits<std::uint64_t>::max() - fixed
               ? fmt::format("{}", fixed + payload_bytes)
               : std::string("2^64"),
           header_bytes, payload_bytes, size, path);
  const std::size_t total = fixed + payload_bytes;
  CT_CHECK(size == total,
           "load_checkpoint: expected {} bytes, got {} (data after the CRC-32) in {}", total, size,
           path);
  const std::uint32_t stored_crc = get_u32(data + total - kCrcBytes);
  const std::uint32_t actual_crc = crc_update(0, data, total - kCrcBytes);
  CT_CHECK(stored_crc == actual_crc,
           "load_checkpoint: expected CRC-32 0x{:08x}, got 0x{:08x} (file damaged?) in {}",
           stored_crc, actual_crc, path);

  // The header, in full, before any tensor exists.
  const std::uint8_t* payload = data + kPrefixBytes + header_bytes;
  HeaderReader in(data + kPrefixBytes, header_bytes, path);
  std::array<std::vector<EntryPlan>, kSections.size()> plans;
  // The writer lays entries back to back; the reader accepts any layout, but entries that share
  // payload bytes could make a small file allocate without bound, so their sizes must add up to
  // no more than the payload.
  std::uint64_t claimed = 0;
  std::array<bool, kSections.size()> section_seen = {};
  const std::uint32_t sections = in.u32("the section count");
  for (std::uint32_t s = 0; s < sections; ++s) {
    const std::string section = in.text("a section name");
    std::size_t index = 0;
    while (index < kSections.size() && kSections[index] != section) ++index;
    CT_CHECK(index < kSections.size(),
             "load_checkpoint: expected section \"model\" or \"optimizer\", got \"{}\" in {}",
             section, path);
    CT_CHECK(!section_seen[index], "load_checkpoint: expected one section \"{}\", got two in {}",
             section, path);
    section_seen[index] = true;
    const std::uint32_t entries = in.u32("an entry count");
    std::unordered_set<std::string> names;
    for (std::uint32_t e = 0; e < entries; ++e) {
      EntryPlan plan;
      plan.name = in.text("an entry name");
      CT_CHECK(names.insert(plan.name).second,
               "load_checkpoint: expected unique names in section {}, got \"{}\" twice in {}",
               section, plan.name, path);
      const std::uint8_t code = in.u8("a dtype code");
      const std::optional<DType> dtype = dtype_from_code(code);
      CT_CHECK(dtype.has_value(),
               "load_checkpoint: expected dtype code 0, 1 or 2 (float32, float64, int64) for "
               "\"{}\", got {} in {}",
               plan.name, code, path);
      plan.dtype = *dtype;
      const std::uint8_t rank = in.u8("a rank");
      CT_CHECK(rank <= kMaxRank, "load_checkpoint: expected rank <= {} for \"{}\", got {} in {}",
               kMaxRank, plan.name, rank, path);
      std::uint64_t count = 1;
      bool overflow = false;
      std::int64_t extent = 1;  // the row-major strides, which even an empty tensor needs
      bool strides_overflow = false;
      for (std::uint8_t d = 0; d < rank; ++d) {
        const std::uint64_t dim = in.u64("a dim");
        CT_CHECK(dim <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()),
                 "load_checkpoint: expected non-negative dims for \"{}\", got {} in {}", plan.name,
                 static_cast<std::int64_t>(dim), path);
        plan.shape.push_back(static_cast<std::int64_t>(dim));
        strides_overflow =
            strides_overflow ||
            __builtin_mul_overflow(extent, std::max<std::int64_t>(plan.shape.back(), 1), &extent);
        overflow = overflow || __builtin_mul_overflow(count, dim, &count);
      }
      CT_CHECK(!strides_overflow,
               "load_checkpoint: expected dims whose strides fit in 64 bits for \"{}\", got {} in "
               "{}",
               plan.name, to_string(plan.shape), path);
      if (std::find(plan.shape.begin(), plan.shape.end(), 0) != plan.shape.end()) {
        overflow = false;  // an empty tensor, however large its other dims
        count = 0;
      }
      plan.offset = in.u64("a data offset");
      plan.nbytes = in.u64("a data size");
      std::uint64_t expected_bytes = 0;
      overflow = overflow || __builtin_mul_overflow(count, std::uint64_t{dtype_size(plan.dtype)},
                                                    &expected_bytes);
      CT_CHECK(!overflow && expected_bytes == plan.nbytes,
               "load_checkpoint: expected {} bytes of data for \"{}\" ({} {}), got {} in {}",
               overflow ? std::string("2^64 or more") : fmt::format("{}", expected_bytes),
               plan.name, to_string(plan.shape), dtype_name(plan.dtype), plan.nbytes, path);
      CT_CHECK(plan.offset <= payload_bytes && plan.nbytes <= payload_bytes - plan.offset,
               "load_checkpoint: expected the data of \"{}\" inside the {}-byte payload, got "
               "bytes [{}, {} + {}) in {}",
               plan.name, payload_bytes, plan.offset, plan.offset, plan.nbytes, path);
      CT_CHECK(!__builtin_add_overflow(claimed, plan.nbytes, &claimed) && claimed <= payload_bytes,
               "load_checkpoint: expected the entries' data to fit in the {}-byte payload, got "
               "more at \"{}\" (entries that overlap?) in {}",
               payload_bytes, plan.name, path);
      plans[index].push_back(std::move(plan));
    }
  }
  CT_CHECK(in.position() == in.size(),
           "load_checkpoint: expected a {}-byte header, got {} unread bytes after its last entry "
           "in {}",
           in.size(), in.size() - in.position(), path);

  Checkpoint checkpoint;
  const std::array<StateDict*, 2> dicts = {&checkpoint.model, &checkpoint.optimizer};
  for (std::size_t s = 0; s < kSections.size(); ++s) {
    dicts[s]->reserve(plans[s].size());
    for (EntryPlan& plan : plans[s]) {
      Tensor t = Tensor::empty_cpu(plan.shape, plan.dtype);
      if (plan.nbytes > 0)
        std::memcpy(t.raw_data(), payload + plan.offset, static_cast<std::size_t>(plan.nbytes));
      dicts[s]->emplace_back(std::move(plan.name), std::move(t));
    }
  }
  return checkpoint;
}

void check_compatible(const StateDict& expected, const StateDict& loaded, const std::string& what) {
  std::unordered_map<std::string_view, const Tensor*> by_name;
  for (const auto& [name, t] : loaded)
    CT_CHECK(by_name.emplace(name, &t).second, "{}: expected unique names, got \"{}\" twice", what,
             name);
  std::unordered_set<std::string_view> wanted;
  for (const auto& [name, want] : expected) {
    wanted.insert(name);
    const auto it = by_name.find(name);
    CT_CHECK(it != by_name.end(), "{}: expected an entry \"{}\" ({}), got none (missing entry)",
             what, name, describe(want));
    const Tensor& got = *it->second;
    if (!want.defined() && !got.defined()) continue;
    CT_CHECK(want.defined() && got.defined(), "{}: expected \"{}\" to be {}, got {}", what, name,
             describe(want), describe(got));
    CT_CHECK(want.shape() == got.shape(), "{}: expected \"{}\" with shape {}, got {}", what, name,
             to_string(want.shape()), to_string(got.shape()));
    CT_CHECK(want.dtype() == got.dtype(), "{}: expected \"{}\" of dtype {}, got {}", what, name,
             dtype_name(want.dtype()), dtype_name(got.dtype()));
  }
  for (const auto& [name, t] : loaded)
    CT_CHECK(wanted.contains(name),
             "{}: expected only the target's entries, got an unexpected entry \"{}\" ({})", what,
             name, describe(t));
}

}  // namespace convtape::io
