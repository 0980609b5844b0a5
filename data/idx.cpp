// IDX parsing, gzip inflation (zlib) and the conversions to tensors.
#include "data/idx.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <limits>

#include "io/file.h"

namespace convtape::data {

namespace {

constexpr std::int64_t kMaxRank = 4;

bool is_gzip(const std::vector<std::uint8_t>& bytes) {
  return bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;
}

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

// Ends a zlib stream on every path out of gunzip.
struct InflateStream {
  z_stream zs{};
  bool live = false;
  ~InflateStream() {
    if (live) inflateEnd(&zs);
  }
};

// The concatenation of every gzip member in `in` (what `gzip -d` gives).
std::vector<std::uint8_t> gunzip(const std::vector<std::uint8_t>& in, const std::string& path) {
  CT_CHECK(in.size() <= std::numeric_limits<uInt>::max(),
           "read_idx: expected a gzipped file under 4 GiB, got {} bytes in {}", in.size(), path);
  InflateStream stream;
  z_stream& zs = stream.zs;
  CT_CHECK(inflateInit2(&zs, 16 + MAX_WBITS) == Z_OK,
           "read_idx: expected zlib to start inflating, got an error for {}", path);
  stream.live = true;
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());

  // gzip's trailer holds the size (mod 2^32) of the last member: a good first guess.
  std::size_t guess =
      in.size() >= 4 ? (std::size_t{in[in.size() - 4]} | std::size_t{in[in.size() - 3]} << 8 |
                        std::size_t{in[in.size() - 2]} << 16 | std::size_t{in[in.size() - 1]} << 24)
                     : 0;
  guess = std::min<std::size_t>(std::max<std::size_t>(guess, 4096), in.size() * 1032 + 4096);
  std::vector<std::uint8_t> out(guess);
  std::size_t produced = 0;
  for (;;) {
    if (produced == out.size()) out.resize(out.size() * 2);
    const std::size_t room =
        std::min<std::size_t>(out.size() - produced, std::numeric_limits<uInt>::max());
    zs.next_out = out.data() + produced;
    zs.avail_out = static_cast<uInt>(room);
    const int status = inflate(&zs, Z_NO_FLUSH);
    produced += room - zs.avail_out;
    if (status == Z_STREAM_END) {
      if (zs.avail_in == 0) break;
      // Another member follows (files concatenated with cat are valid gzip).
      CT_CHECK(zs.avail_in >= 2 && zs.next_in[0] == 0x1f && zs.next_in[1] == 0x8b,
               "read_idx: expected the end of the gzip data, got {} more bytes in {}", zs.avail_in,
               path);
      CT_CHECK(inflateReset(&zs) == Z_OK, "read_idx: expected zlib to restart, got an error for {}",
               path);
      continue;
    }
    if (status == Z_OK) continue;
    if (status == Z_BUF_ERROR && zs.avail_out == 0) continue;  // needs more room
    CT_CHECK(status != Z_BUF_ERROR,
             "read_idx: expected a complete gzip stream, got its end after {} bytes (file "
             "truncated?) in {}",
             in.size(), path);
    CT_FAIL("read_idx: expected valid gzip data, got zlib error \"{}\" (file damaged?) in {}",
            zs.msg ? zs.msg : "unknown", path);
  }
  out.resize(produced);
  return out;
}

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

IdxArray parse_idx(std::vector<std::uint8_t> bytes, const std::string& name) {
  CT_CHECK(bytes.size() >= 4,
           "read_idx: expected at least 4 bytes (an IDX header), got {} (file truncated?) in {}",
           bytes.size(), name);
  CT_CHECK(bytes[0] == 0 && bytes[1] == 0,
           "read_idx: expected an IDX file starting with two zero bytes, got 0x{:02x} 0x{:02x} "
           "(not an IDX file?) in {}",
           bytes[0], bytes[1], name);
  CT_CHECK(known_type(bytes[2]),
           "read_idx: expected type code 0x08, 0x09, 0x0B, 0x0C, 0x0D or 0x0E, got 0x{:02X} in {}",
           bytes[2], name);
  const auto type = static_cast<IdxType>(bytes[2]);
  const std::int64_t rank = bytes[3];
  CT_CHECK(rank >= 1 && rank <= kMaxRank, "read_idx: expected rank 1 to {}, got {} in {}", kMaxRank,
           rank, name);
  const std::size_t header = 4 + 4 * static_cast<std::size_t>(rank);
  CT_CHECK(bytes.size() >= header,
           "read_idx: expected at least {} bytes (the header of a rank-{} file), got {} (file "
           "truncated?) in {}",
           header, rank, bytes.size(), name);
  IdxArray array;
  array.type = type;
  std::uint64_t expected = idx_type_size(type);
  bool overflow = false;
  for (std::int64_t d = 0; d < rank; ++d) {
    const std::uint32_t dim = load_be<std::uint32_t>(bytes.data() + 4 + 4 * d);
    array.dims.push_back(dim);
    overflow = overflow || __builtin_mul_overflow(expected, std::uint64_t{dim}, &expected);
  }
  if (std::find(array.dims.begin(), array.dims.end(), 0) != array.dims.end()) {
    overflow = false;  // an empty array, however large its other dims
    expected = 0;
  }
  const std::size_t data_bytes = bytes.size() - header;
  CT_CHECK(!overflow && expected == data_bytes,
           "read_idx: expected {} data bytes for {} {}, got {} ({}) in {}",
           overflow ? std::string("2^64 or more") : fmt::format("{}", expected),
           to_string(array.dims), idx_type_name(type), data_bytes,
           overflow || expected > data_bytes ? "file truncated?" : "trailing data", name);
  bytes.erase(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(header));
  array.bytes = std::move(bytes);
  return array;
}

IdxArray read_idx(const std::string& path) {
  std::vector<std::uint8_t> bytes = io::read_file(path, "read_idx");
  if (is_gzip(bytes)) bytes = gunzip(bytes, path);
  return parse_idx(std::move(bytes), path);
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
