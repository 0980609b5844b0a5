// IDX parsing, gzip inflation (zlib) and the conversions to tensors.
#include "data/idx.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <limits>
#include <optional>
#include <span>

#include <unistd.h>

#include "core/checked.h"

#include "io/file.h"

namespace convtape::data {

namespace {

constexpr std::int64_t kMaxRank = 4;

// A sequential byte stream: the IDX decoder reads the header first, validates it, and only then
// reads (and allocates for) the data, from a file, from memory or through inflate.
class Source {
 public:
  virtual ~Source() = default;
  // Up to n bytes; fewer only at the end of the stream.
  virtual std::size_t read(std::uint8_t* dst, std::size_t n) = 0;
  // The bytes left, when known without reading them (plain files and memory, not gzip).
  virtual std::optional<std::uint64_t> remaining() const { return std::nullopt; }
};

class MemorySource final : public Source {
 public:
  explicit MemorySource(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}
  std::size_t read(std::uint8_t* dst, std::size_t n) override {
    const std::size_t k = std::min(n, bytes_.size() - pos_);
    if (k > 0) std::memcpy(dst, bytes_.data() + pos_, k);
    pos_ += k;
    return k;
  }
  std::optional<std::uint64_t> remaining() const override { return bytes_.size() - pos_; }

 private:
  std::span<const std::uint8_t> bytes_;
  std::size_t pos_ = 0;
};

class FileSource final : public Source {
 public:
  FileSource(const io::RegularFile& file, const std::string& path) : file_(file), path_(path) {}
  std::size_t read(std::uint8_t* dst, std::size_t n) override {
    const std::size_t k = io::read_some(file_, dst, n, "read_idx", path_);
    done_ += k;
    return k;
  }
  // From the size at open: a file that changes under the reader is caught by the data checks.
  std::optional<std::uint64_t> remaining() const override {
    return file_.size >= done_ ? file_.size - done_ : 0;
  }

 private:
  const io::RegularFile& file_;
  const std::string& path_;
  std::uint64_t done_ = 0;
};

// Inflates every gzip member of `in` in turn (what `gzip -d` gives), on demand: a caller that
// stops reading stops the inflation, so a bomb costs no more than the bytes asked for.
class GzipSource final : public Source {
 public:
  GzipSource(Source& in, const std::string& path) : in_(in), path_(path), buffer_(kBufferBytes) {
    CT_CHECK(inflateInit2(&zs_, 16 + MAX_WBITS) == Z_OK,
             "read_idx: expected zlib to start inflating, got an error for {}", path_);
  }
  ~GzipSource() override { inflateEnd(&zs_); }
  GzipSource(const GzipSource&) = delete;
  GzipSource& operator=(const GzipSource&) = delete;

  std::size_t read(std::uint8_t* dst, std::size_t n) override {
    std::size_t produced = 0;
    while (produced < n && !ended_) {
      if (member_done_) {
        // Another member may follow (files concatenated with cat are valid gzip).
        fill(2);
        if (zs_.avail_in == 0) {
          ended_ = true;
          break;
        }
        CT_CHECK(zs_.avail_in >= 2 && zs_.next_in[0] == 0x1f && zs_.next_in[1] == 0x8b,
                 "read_idx: expected the end of the gzip data, got {} more bytes in {}",
                 in_.remaining() ? fmt::format("{}", zs_.avail_in + *in_.remaining())
                                 : fmt::format("at least {}", zs_.avail_in),
                 path_);
        CT_CHECK(inflateReset(&zs_) == Z_OK,
                 "read_idx: expected zlib to restart, got an error for {}", path_);
        member_done_ = false;
      }
      if (zs_.avail_in == 0) fill(1);
      const std::size_t room =
          std::min<std::size_t>(n - produced, std::numeric_limits<uInt>::max());
      zs_.next_out = dst + produced;
      zs_.avail_out = static_cast<uInt>(room);
      const int status = inflate(&zs_, Z_NO_FLUSH);
      produced += room - zs_.avail_out;
      if (status == Z_STREAM_END) {
        member_done_ = true;
        continue;
      }
      if (status == Z_OK) continue;
      if (status == Z_BUF_ERROR && zs_.avail_in == 0) {
        CT_CHECK(!in_eof_,
                 "read_idx: expected a complete gzip stream, got its end after {} bytes (file "
                 "truncated?) in {}",
                 consumed_, path_);
        continue;
      }
      CT_FAIL("read_idx: expected valid gzip data, got zlib error \"{}\" (file damaged?) in {}",
              zs_.msg ? zs_.msg : "unknown", path_);
    }
    return produced;
  }

 private:
  static constexpr std::size_t kBufferBytes = 64 * 1024;

  // Tops the input buffer up to at least k unread bytes, unless the input ends first.
  void fill(std::size_t k) {
    if (zs_.avail_in >= k || in_eof_) return;
    const std::size_t left = zs_.avail_in;
    if (left > 0) std::memmove(buffer_.data(), zs_.next_in, left);
    std::size_t have = left;
    while (have < k && !in_eof_) {
      const std::size_t got = in_.read(buffer_.data() + have, buffer_.size() - have);
      consumed_ += got;
      have += got;
      in_eof_ = got == 0;
    }
    zs_.next_in = buffer_.data();
    zs_.avail_in = static_cast<uInt>(have);
  }

  Source& in_;
  const std::string& path_;
  std::vector<std::uint8_t> buffer_;
  z_stream zs_{};
  std::uint64_t consumed_ = 0;
  bool in_eof_ = false;
  bool member_done_ = false;
  bool ended_ = false;
};

bool known_type(std::uint8_t code) {
  switch (code) {
    case 0x08:
    case 0x09:
    case 0x0B:
    case 0x0C:
    case 0x0D:
    case 0x0E:
      return true;
    default:
      return false;
  }
}

// As many of n bytes as the source holds.
std::size_t read_up_to(Source& src, std::uint8_t* dst, std::size_t n) {
  std::size_t done = 0;
  while (done < n) {
    const std::size_t got = src.read(dst + done, n - done);
    if (got == 0) break;
    done += got;
  }
  return done;
}

IdxArray decode(Source& src, const std::string& name, std::uint64_t max_bytes);

template <class T>
T load_be(const std::uint8_t* p) {
  std::array<std::uint8_t, sizeof(T)> b;
  std::reverse_copy(p, p + sizeof(T), b.begin());
  if constexpr (std::endian::native == std::endian::big) std::reverse(b.begin(), b.end());
  T v;
  std::memcpy(&v, b.data(), sizeof(T));
  return v;
}

// Calls f.template operator()<T>() with T the C++ type of an IDX element type.
template <class F>
decltype(auto) dispatch_idx(IdxType t, F&& f) {
  switch (t) {
    case IdxType::UInt8:
      return f.template operator()<std::uint8_t>();
    case IdxType::Int8:
      return f.template operator()<std::int8_t>();
    case IdxType::Int16:
      return f.template operator()<std::int16_t>();
    case IdxType::Int32:
      return f.template operator()<std::int32_t>();
    case IdxType::Float32:
      return f.template operator()<float>();
    case IdxType::Float64:
      break;
  }
  return f.template operator()<double>();
}

IdxArray decode(Source& src, const std::string& name, std::uint64_t max_bytes) {
  std::array<std::uint8_t, 4 + 4 * kMaxRank> header{};
  const std::size_t got = read_up_to(src, header.data(), 4);
  CT_CHECK(got == 4,
           "read_idx: expected at least 4 bytes (an IDX header), got {} (file truncated?) in {}",
           got, name);
  CT_CHECK(header[0] == 0 && header[1] == 0,
           "read_idx: expected an IDX file starting with two zero bytes, got 0x{:02x} 0x{:02x} "
           "(not an IDX file?) in {}",
           header[0], header[1], name);
  CT_CHECK(known_type(header[2]),
           "read_idx: expected type code 0x08, 0x09, 0x0B, 0x0C, 0x0D or 0x0E, got 0x{:02X} in {}",
           header[2], name);
  const auto type = static_cast<IdxType>(header[2]);
  const std::int64_t rank = header[3];
  CT_CHECK(rank >= 1 && rank <= kMaxRank, "read_idx: expected rank 1 to {}, got {} in {}", kMaxRank,
           rank, name);
  const std::size_t header_bytes = 4 + 4 * static_cast<std::size_t>(rank);
  const std::size_t dims_got = read_up_to(src, header.data() + 4, header_bytes - 4);
  CT_CHECK(4 + dims_got == header_bytes,
           "read_idx: expected at least {} bytes (the header of a rank-{} file), got {} (file "
           "truncated?) in {}",
           header_bytes, rank, 4 + dims_got, name);

  // The data's length from the header alone, validated before a byte of it is allocated.
  IdxArray array;
  array.type = type;
  std::uint64_t expected = idx_type_size(type);
  bool overflow = false;
  for (std::int64_t d = 0; d < rank; ++d) {
    const std::uint32_t dim = load_be<std::uint32_t>(header.data() + 4 + 4 * d);
    array.dims.push_back(dim);
    overflow = overflow || __builtin_mul_overflow(expected, std::uint64_t{dim}, &expected);
  }
  if (std::find(array.dims.begin(), array.dims.end(), 0) != array.dims.end()) {
    overflow = false;  // an empty array, however large its other dims
    expected = 0;
  }
  const std::optional<std::uint64_t> left = src.remaining();
  const auto left_text = [&] { return left ? fmt::format("{}", *left) : std::string("less"); };
  CT_CHECK(!overflow,
           "read_idx: expected 2^64 or more data bytes for {} {}, got {} (file "
           "truncated?) in {}",
           to_string(array.dims), idx_type_name(type), left_text(), name);
  const std::uint64_t limit = std::min<std::uint64_t>(max_bytes, checked::kMaxBytes);
  CT_CHECK(
      expected <= limit,
      "read_idx: expected at most {} data bytes ({}), got a header declaring {} for {} {} in "
      "{}",
      limit,
      limit == static_cast<std::uint64_t>(checked::kMaxBytes) ? "the largest tensor" : "max_bytes",
      expected, to_string(array.dims), idx_type_name(type), name);
  CT_CHECK(!left || *left == expected,
           "read_idx: expected {} data bytes for {} {}, got {} ({}) in {}", expected,
           to_string(array.dims), idx_type_name(type), left_text(),
           left && *left < expected ? "file truncated?" : "trailing data", name);

  // Grown as the data arrives, so memory follows the bytes really there, never the declaration.
  auto& bytes = array.bytes;
  const std::size_t total = static_cast<std::size_t>(expected);
  std::size_t have = 0;
  while (have < total) {
    const std::size_t step =
        left ? total : std::min(total, std::max<std::size_t>(2 * have, std::size_t{1} << 20));
    bytes.resize(step);
    const std::size_t got_now = read_up_to(src, bytes.data() + have, step - have);
    have += got_now;
    CT_CHECK(have == step,
             "read_idx: expected {} data bytes for {} {}, got {} (file truncated?) in {}", expected,
             to_string(array.dims), idx_type_name(type), have, name);
  }
  // Nothing may follow; for gzip this also reads the last trailer, whose CRC-32 inflate checks.
  std::uint8_t extra = 0;
  CT_CHECK(read_up_to(src, &extra, 1) == 0,
           "read_idx: expected {} data bytes for {} {}, got more (trailing data) in {}", expected,
           to_string(array.dims), idx_type_name(type), name);
  return array;
}

}  // namespace

std::string_view idx_type_name(IdxType type) {
  switch (type) {
    case IdxType::UInt8:
      return "uint8";
    case IdxType::Int8:
      return "int8";
    case IdxType::Int16:
      return "int16";
    case IdxType::Int32:
      return "int32";
    case IdxType::Float32:
      return "float32";
    case IdxType::Float64:
      return "float64";
  }
  return "?";
}

std::size_t idx_type_size(IdxType type) {
  return dispatch_idx(type, []<class T>() { return sizeof(T); });
}

IdxArray parse_idx(std::span<const std::uint8_t> bytes, const std::string& name,
                   std::uint64_t max_bytes) {
  MemorySource plain(bytes);
  if (bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b) {
    GzipSource inflated(plain, name);
    return decode(inflated, name, max_bytes);
  }
  return decode(plain, name, max_bytes);
}

IdxArray read_idx(const std::string& path, std::uint64_t max_bytes) {
  const io::RegularFile file = io::open_regular_file(path, "read_idx");
  std::array<std::uint8_t, 2> magic{};
  const ssize_t got = ::pread(file.fd.get(), magic.data(), magic.size(), 0);
  FileSource plain(file, path);
  if (got == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
    GzipSource inflated(plain, path);
    return decode(inflated, path, max_bytes);
  }
  return decode(plain, path, max_bytes);
}

Tensor IdxArray::to_tensor(DType dtype, double scale) const {
  const bool integer = type != IdxType::Float32 && type != IdxType::Float64;
  CT_CHECK(dtype != kInt64 || (integer && scale == 1.0),
           "to_tensor: expected an integer IDX type and scale 1 for int64, got {} and scale {}",
           idx_type_name(type), scale);
  CT_CHECK(bytes.size() == static_cast<std::size_t>(numel()) * idx_type_size(type),
           "to_tensor: expected {} bytes for {} {}, got {}",
           static_cast<std::size_t>(numel()) * idx_type_size(type), to_string(dims),
           idx_type_name(type), bytes.size());
  // Even an empty array needs row-major strides that fit in 64 bits to become a tensor.
  std::int64_t extent = 1;
  for (const std::int64_t d : dims)
    CT_CHECK(!__builtin_mul_overflow(extent, std::max<std::int64_t>(d, 1), &extent),
             "to_tensor: expected dims whose strides fit in 64 bits, got {}", to_string(dims));
  Tensor t = Tensor::empty_cpu(dims, dtype);
  const std::int64_t n = numel();
  dispatch_idx(type, [&]<class T>() {
    const std::uint8_t* src = bytes.data();
    dispatch_all(dtype, [&]<class U>() {
      U* dst = t.data_ptr<U>();
      for (std::int64_t i = 0; i < n; ++i) {
        const T v = load_be<T>(src + i * static_cast<std::int64_t>(sizeof(T)));
        if constexpr (std::is_same_v<U, std::int64_t>)
          dst[i] = static_cast<std::int64_t>(v);
        else
          dst[i] = static_cast<U>(static_cast<double>(v) * scale);
      }
    });
  });
  return t;
}

}  // namespace convtape::data
