// safetensors writer and validating reader; the format is documented in io/safetensors.h.
#include "io/safetensors.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <limits>
#include <optional>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/autograd.h"
#include "io/file.h"

namespace convtape::io {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; a big-endian host needs byte swaps here");

namespace {

constexpr std::string_view kLoad = "load_safetensors";
constexpr std::string_view kSave = "save_safetensors";
constexpr std::string_view kMetadataKey = "__metadata__";
constexpr std::size_t kLengthBytes = 8;
constexpr std::size_t kMaxRank = 64;
// Names and values quoted in error messages are cut to this many bytes.
constexpr std::size_t kQuoteLimit = 120;

// The dtypes the reader knows: the file's name, its element size, and what it loads as.
enum class FileType { F32, F64, I64, F16, BF16 };
struct FileTypeInfo {
  FileType type;
  std::string_view name;
  std::size_t size;
  DType loaded;
};
constexpr std::array<FileTypeInfo, 5> kFileTypes = {{
    {FileType::F32, "F32", 4, kFloat32},
    {FileType::F64, "F64", 8, kFloat64},
    {FileType::I64, "I64", 8, kInt64},
    {FileType::F16, "F16", 2, kFloat32},
    {FileType::BF16, "BF16", 2, kFloat32},
}};

const FileTypeInfo& info(FileType t) {
  return kFileTypes[static_cast<std::size_t>(t)];
}

std::string_view file_type_name(DType t) {
  switch (t) {
    case DType::Float32:
      return "F32";
    case DType::Float64:
      return "F64";
    case DType::Int64:
      return "I64";
  }
  CT_FAIL("save_safetensors: expected dtype float32, float64 or int64, got code {}",
          static_cast<int>(t));
}

// "\"name\"", cut to kQuoteLimit bytes ("\"abc...\" (300 bytes)").
std::string shown(std::string_view s) {
  if (s.size() <= kQuoteLimit) return fmt::format("\"{}\"", s);
  return fmt::format("\"{}...\" ({} bytes)", s.substr(0, kQuoteLimit), s.size());
}

// ---- half and bfloat16 to float32, exactly

float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1fu;
  const std::uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0) {
    // Zero or subnormal: mantissa * 2^-24, exact in float32 (10 bits, a power-of-two scale).
    const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
    return std::bit_cast<float>(std::bit_cast<std::uint32_t>(magnitude) | sign);
  }
  if (exponent == 31)  // infinity or NaN, the payload kept in the top mantissa bits
    return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  // Normal: rebias the exponent from 15 to 127.
  return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

float bfloat16_to_float(std::uint16_t h) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(h) << 16);
}

// ---- the header

struct Entry {
  std::string name;
  FileType type = FileType::F32;
  Shape shape;
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
};

// The fields of a tensor entry, in the order of the bits that record which were given.
constexpr std::array<std::string_view, 3> kFields = {"dtype", "shape", "data_offsets"};

struct Header {
  std::vector<Entry> entries;  // sorted by data offset once checked
  SafetensorsMetadata metadata;
};

// A SAX handler that checks the header's structure as it is parsed, so that nothing but the
// entries themselves is built: the top-level object, each tensor entry with its three fields, the
// metadata object of strings. Anything else throws at once with what was expected there.
class HeaderParser {
 public:
  using json = nlohmann::json;

  explicit HeaderParser(const std::string& path) : path_(path) {}

  Header take() { return std::move(header_); }

  bool null() { return unexpected("null"); }
  bool boolean(bool v) { return unexpected(v ? "true" : "false"); }
  bool number_integer(json::number_integer_t v) {
    if (v >= 0) return number_unsigned(static_cast<json::number_unsigned_t>(v));
    if (state_ == State::Shape)
      fail(fmt::format("non-negative dims in the shape of tensor {}", shown(current_.name)),
           fmt::format("{}", v));
    if (state_ == State::Offsets)
      fail(fmt::format("non-negative data_offsets for tensor {}", shown(current_.name)),
           fmt::format("{}", v));
    return unexpected(fmt::format("the number {}", v));
  }
  bool number_unsigned(json::number_unsigned_t v) {
    if (state_ == State::Shape) {
      if (current_.shape.size() == kMaxRank)
        fail(fmt::format("a shape of rank <= {} for tensor {}", kMaxRank, shown(current_.name)),
             "more dims");
      if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        fail(fmt::format("dims below 2^63 in the shape of tensor {}", shown(current_.name)),
             fmt::format("{}", v));
      current_.shape.push_back(static_cast<std::int64_t>(v));
      return true;
    }
    if (state_ == State::Offsets) {
      if (offsets_ == 0) current_.begin = v;
      if (offsets_ == 1) current_.end = v;
      if (++offsets_ > 2)
        fail(fmt::format("data_offsets of two integers [begin, end] for tensor {}",
                         shown(current_.name)),
             "more");
      return true;
    }
    return unexpected(fmt::format("the number {}", v));
  }
  bool number_float(json::number_float_t, const json::string_t& text) {
    if (state_ == State::Shape || state_ == State::Offsets)
      fail(fmt::format("integers in the {} of tensor {}",
                       state_ == State::Shape ? "shape" : "data_offsets", shown(current_.name)),
           fmt::format("{} (a fraction, or an integer too large for 64 bits)", text));
    return unexpected(fmt::format("the number {}", text));
  }
  bool string(json::string_t& v) {
    if (state_ == State::Dtype) {
      const auto it = std::find_if(kFileTypes.begin(), kFileTypes.end(),
                                   [&](const FileTypeInfo& t) { return t.name == v; });
      if (it == kFileTypes.end())
        fail(fmt::format("dtype F32, F64, I64, F16 or BF16 for tensor {}", shown(current_.name)),
             shown(v));
      current_.type = it->type;
      state_ = State::Entry;
      return true;
    }
    if (state_ == State::MetadataValue) {
      header_.metadata.emplace(std::move(metadata_key_), std::move(v));
      state_ = State::Metadata;
      return true;
    }
    return unexpected(fmt::format("the string {}", shown(v)));
  }
  bool binary(json::binary_t&) { return unexpected("binary data"); }

  bool start_object(std::size_t) {
    switch (state_) {
      case State::Start:
        state_ = State::Top;
        return true;
      case State::MetadataOpen:
        state_ = State::Metadata;
        return true;
      case State::EntryOpen:
        state_ = State::Entry;
        return true;
      default:
        return unexpected("an object");
    }
  }
  bool key(json::string_t& k) {
    if (state_ == State::Top) {
      if (k == kMetadataKey) {
        if (metadata_seen_) fail("one __metadata__", "two");
        metadata_seen_ = true;
        state_ = State::MetadataOpen;
        return true;
      }
      if (!names_.insert(k).second) fail("unique tensor names", fmt::format("{} twice", shown(k)));
      current_ = Entry{};
      current_.name = std::move(k);
      fields_ = 0;
      state_ = State::EntryOpen;
      return true;
    }
    if (state_ == State::Metadata) {
      if (header_.metadata.contains(k))
        fail("unique __metadata__ keys", fmt::format("{} twice", shown(k)));
      metadata_key_ = std::move(k);
      state_ = State::MetadataValue;
      return true;
    }
    // state_ == State::Entry: the nlohmann parser calls key() only inside an object, and every
    // other object was refused at its start.
    const auto it = std::find(kFields.begin(), kFields.end(), k);
    if (it == kFields.end())
      fail(fmt::format("only dtype, shape and data_offsets in the entry of tensor {}",
                       shown(current_.name)),
           fmt::format("a field {}", shown(k)));
    const unsigned bit = 1u << (it - kFields.begin());
    if ((fields_ & bit) != 0)
      fail(fmt::format("one {} for tensor {}", k, shown(current_.name)), "two");
    fields_ |= bit;
    state_ = bit == 1 ? State::Dtype : bit == 2 ? State::ShapeOpen : State::OffsetsOpen;
    return true;
  }
  bool end_object() {
    switch (state_) {
      case State::Top:
        state_ = State::Done;
        return true;
      case State::Metadata:
        state_ = State::Top;
        return true;
      default: {  // State::Entry
        for (std::size_t i = 0; i < kFields.size(); ++i)
          if ((fields_ & (1u << i)) == 0)
            fail(fmt::format("dtype, shape and data_offsets in the entry of tensor {}",
                             shown(current_.name)),
                 fmt::format("no {}", kFields[i]));
        header_.entries.push_back(std::move(current_));
        state_ = State::Top;
        return true;
      }
    }
  }
  bool start_array(std::size_t) {
    if (state_ == State::ShapeOpen) {
      state_ = State::Shape;
      return true;
    }
    if (state_ == State::OffsetsOpen) {
      offsets_ = 0;
      state_ = State::Offsets;
      return true;
    }
    return unexpected("an array");
  }
  bool end_array() {
    if (state_ == State::Offsets && offsets_ != 2)
      fail(fmt::format("data_offsets of two integers [begin, end] for tensor {}",
                       shown(current_.name)),
           fmt::format("{}", offsets_));
    state_ = State::Entry;  // only the shape and the offsets are arrays that get this far
    return true;
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) {
    std::string what = e.what();
    if (what.size() > 2 * kQuoteLimit) what = what.substr(0, 2 * kQuoteLimit) + "...";
    CT_FAIL("{}: expected a JSON header, got a parse error at header byte {}: {} in {}", kLoad,
            position, what, path_);
  }

 private:
  enum class State {
    Start,          // before the top-level value
    Top,            // in the top-level object
    MetadataOpen,   // after the key __metadata__
    Metadata,       // in the metadata object
    MetadataValue,  // after a metadata key
    EntryOpen,      // after a tensor's name
    Entry,          // in a tensor's entry
    Dtype,          // after "dtype"
    ShapeOpen,      // after "shape"
    Shape,          // in the shape array
    OffsetsOpen,    // after "data_offsets"
    Offsets,        // in the data_offsets array
    Done,
  };

  [[noreturn]] void fail(std::string_view expected, std::string_view got) const {
    CT_FAIL("{}: expected {}, got {} in {}", kLoad, expected, got, path_);
  }

  // A value of the wrong kind for where it stands.
  bool unexpected(std::string_view got) const {
    switch (state_) {
      case State::Start:
        fail("a header that is a JSON object", got);
      case State::Top:
        fail("a tensor name or __metadata__", got);
      case State::MetadataOpen:
        fail("__metadata__ to be an object of strings", got);
      case State::Metadata:
        fail("a __metadata__ key", got);
      case State::MetadataValue:
        fail(fmt::format("a string for __metadata__ key {}", shown(metadata_key_)), got);
      case State::EntryOpen:
        fail(fmt::format("an object with dtype, shape and data_offsets for tensor {}",
                         shown(current_.name)),
             got);
      case State::Entry:
        fail(fmt::format("a field of tensor {}", shown(current_.name)), got);
      case State::Dtype:
        fail(fmt::format("a dtype string for tensor {}", shown(current_.name)), got);
      case State::ShapeOpen:
        fail(fmt::format("an array of dims for the shape of tensor {}", shown(current_.name)), got);
      case State::Shape:
        fail(fmt::format("integers in the shape of tensor {}", shown(current_.name)), got);
      case State::OffsetsOpen:
        fail(fmt::format("data_offsets [begin, end] for tensor {}", shown(current_.name)), got);
      case State::Offsets:
        fail(fmt::format("integers in the data_offsets of tensor {}", shown(current_.name)), got);
      case State::Done:
        break;
    }
    fail("nothing after the header's object", got);
  }

  const std::string& path_;
  State state_ = State::Start;
  Header header_;
  Entry current_;
  unsigned fields_ = 0;      // which of dtype, shape, data_offsets the current entry has given
  std::size_t offsets_ = 0;  // how many data_offsets have been read
  bool metadata_seen_ = false;
  std::string metadata_key_;
  std::unordered_set<std::string> names_;
};

// Parses and checks the header against a data region of data_bytes; the entries come back sorted
// by their data's place, tiling [0, data_bytes).
Header parse_header(std::span<const std::uint8_t> text, std::uint64_t data_bytes,
                    const std::string& path) {
  HeaderParser parser(path);
  nlohmann::json::sax_parse(text.begin(), text.end(), &parser, nlohmann::json::input_format_t::json,
                            /*strict=*/true, /*ignore_comments=*/false);
  Header header = parser.take();

  for (const Entry& e : header.entries) {
    const std::string name = shown(e.name);
    const FileTypeInfo& t = info(e.type);
    // The element count and the row-major strides, which even an empty tensor needs, in 64 bits.
    std::uint64_t count = 1;
    bool count_overflow = false;
    std::int64_t extent = 1;
    bool strides_overflow = false;
    for (const std::int64_t d : e.shape) {
      count_overflow =
          count_overflow || __builtin_mul_overflow(count, static_cast<std::uint64_t>(d), &count);
      strides_overflow =
          strides_overflow || __builtin_mul_overflow(extent, std::max<std::int64_t>(d, 1), &extent);
    }
    if (std::find(e.shape.begin(), e.shape.end(), 0) != e.shape.end()) {
      count = 0;  // an empty tensor, however large its other dims
      count_overflow = false;
    }
    CT_CHECK(!strides_overflow && !count_overflow &&
                 count <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()),
             "{}: expected a shape whose element count and strides fit in 63 bits for tensor {}, "
             "got {} in {}",
             kLoad, name, to_string(e.shape), path);
    std::uint64_t nbytes = 0;
    CT_CHECK(
        !__builtin_mul_overflow(count, std::uint64_t{t.size}, &nbytes),
        "{}: expected a byte count that fits in 64 bits for tensor {} ({} {}), got {} elements "
        "of {} bytes in {}",
        kLoad, name, t.name, to_string(e.shape), count, t.size, path);
    CT_CHECK(e.begin <= e.end,
             "{}: expected data_offsets [begin, end] with begin <= end for tensor {}, got [{}, {}] "
             "in {}",
             kLoad, name, e.begin, e.end, path);
    CT_CHECK(e.end <= data_bytes,
             "{}: expected the data of tensor {} inside the {}-byte data region, got bytes [{}, "
             "{}) (file truncated?) in {}",
             kLoad, name, data_bytes, e.begin, e.end, path);
    CT_CHECK(e.end - e.begin == nbytes,
             "{}: expected {} bytes of data for tensor {} ({} {}), got {} (data_offsets [{}, {}]) "
             "in {}",
             kLoad, nbytes, name, t.name, to_string(e.shape), e.end - e.begin, e.begin, e.end,
             path);
  }

  // The byte ranges must tile the data: sorted by place, each starts where the previous one ended.
  std::stable_sort(header.entries.begin(), header.entries.end(),
                   [](const Entry& a, const Entry& b) {
                     return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
                   });
  std::uint64_t covered = 0;
  const Entry* previous = nullptr;
  for (const Entry& e : header.entries) {
    CT_CHECK(e.begin >= covered,
             "{}: expected tensors whose data do not overlap, got tensor {} at bytes [{}, {}) "
             "overlapping tensor {} at bytes [{}, {}) in {}",
             kLoad, shown(e.name), e.begin, e.end, shown(previous->name), previous->begin,
             previous->end, path);
    CT_CHECK(e.begin == covered,
             "{}: expected the tensors' data to cover the data region without gaps, got bytes "
             "[{}, {}) of no tensor before tensor {} in {}",
             kLoad, covered, e.begin, shown(e.name), path);
    covered = e.end;
    previous = &e;
  }
  CT_CHECK(covered == data_bytes,
           "{}: expected the tensors' data to cover the {}-byte data region, got bytes [{}, {}) of "
           "no tensor at its end in {}",
           kLoad, data_bytes, covered, data_bytes, path);
  return header;
}

std::uint64_t get_u64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  return v;
}

// Checks the header length read from the first 8 bytes against the file's size.
void check_header_length(std::uint64_t header_bytes, std::uint64_t file_bytes,
                         const std::string& path) {
  CT_CHECK(header_bytes <= kMaxSafetensorsHeader,
           "{}: expected a header length of at most {} bytes, got {} (not a safetensors file?) in "
           "{}",
           kLoad, kMaxSafetensorsHeader, header_bytes, path);
  CT_CHECK(header_bytes <= file_bytes - kLengthBytes,
           "{}: expected a header of {} bytes inside the {}-byte file, got {} bytes after the "
           "length (file truncated?) in {}",
           kLoad, header_bytes, file_bytes, file_bytes - kLengthBytes, path);
}

void check_file_length(std::uint64_t file_bytes, const std::string& path) {
  CT_CHECK(file_bytes >= kLengthBytes,
           "{}: expected at least 8 bytes (the header length), got {} (file truncated?) in {}",
           kLoad, file_bytes, path);
}

// Builds the tensors from a checked header; read(dst, n) supplies the next n bytes of the data,
// which the entries cover in order.
template <class Read>
Safetensors build(Header header, Read&& read) {
  Safetensors out;
  out.metadata = std::move(header.metadata);
  out.tensors.reserve(header.entries.size());
  std::vector<std::uint16_t> halves;
  for (Entry& e : header.entries) {
    const FileTypeInfo& t = info(e.type);
    Tensor tensor = Tensor::empty_cpu(e.shape, t.loaded);
    const std::size_t nbytes = static_cast<std::size_t>(e.end - e.begin);
    if (nbytes > 0) {
      if (e.type == FileType::F16 || e.type == FileType::BF16) {
        halves.resize(nbytes / 2);
        read(halves.data(), nbytes, e);
        float* dst = static_cast<float*>(tensor.raw_data());
        if (e.type == FileType::F16) {
          for (std::size_t i = 0; i < halves.size(); ++i) dst[i] = half_to_float(halves[i]);
        } else {
          for (std::size_t i = 0; i < halves.size(); ++i) dst[i] = bfloat16_to_float(halves[i]);
        }
      } else {
        read(tensor.raw_data(), nbytes, e);
      }
    }
    out.tensors.emplace_back(std::move(e.name), std::move(tensor));
  }
  return out;
}

// The file's header, read and checked; the file is left positioned at the data.
Header read_header(const RegularFile& file, const std::string& path) {
  check_file_length(file.size, path);
  std::array<std::uint8_t, kLengthBytes> length{};
  CT_CHECK(read_some(file, length.data(), length.size(), kLoad, path) == length.size(),
           "{}: expected 8 bytes (the header length), got the end of the file (file truncated "
           "while reading?) in {}",
           kLoad, path);
  const std::uint64_t header_bytes = get_u64(length.data());
  check_header_length(header_bytes, file.size, path);
  std::vector<std::uint8_t> text(static_cast<std::size_t>(header_bytes));
  CT_CHECK(read_some(file, text.data(), text.size(), kLoad, path) == text.size(),
           "{}: expected a {}-byte header, got the end of the file (file truncated while "
           "reading?) in {}",
           kLoad, header_bytes, path);
  return parse_header(text, file.size - kLengthBytes - header_bytes, path);
}

}  // namespace

void save_safetensors(const StateDict& tensors, const std::string& path,
                      const SafetensorsMetadata& metadata) {
  using ordered_json = nlohmann::ordered_json;
  // Header first: it needs only names, shapes and dtypes.
  ordered_json header = ordered_json::object();
  const auto utf8 = [](const std::string& s) {
    try {
      (void)ordered_json(s).dump();
      return true;
    } catch (const ordered_json::exception&) {
      return false;
    }
  };
  if (!metadata.empty()) {
    ordered_json meta = ordered_json::object();
    for (const auto& [key, value] : metadata) {
      CT_CHECK(utf8(key) && utf8(value),
               "{}: expected UTF-8 metadata, got key {} with value {} (not UTF-8)", kSave,
               shown(key), shown(value));
      meta[key] = value;
    }
    header[std::string(kMetadataKey)] = std::move(meta);
  }
  std::unordered_set<std::string_view> seen;
  std::uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    CT_CHECK(t.defined(), "{}: expected a defined tensor for {}, got an undefined one", kSave,
             shown(name));
    CT_CHECK(name != kMetadataKey,
             "{}: expected tensor names other than __metadata__ (the format's metadata key), got "
             "a tensor named so",
             kSave);
    CT_CHECK(seen.insert(name).second, "{}: expected unique names, got {} twice", kSave,
             shown(name));
    CT_CHECK(utf8(name), "{}: expected UTF-8 tensor names, got {} (not UTF-8)", kSave, shown(name));
    const std::uint64_t nbytes = static_cast<std::uint64_t>(t.numel()) * dtype_size(t.dtype());
    header[name] = ordered_json{{"dtype", file_type_name(t.dtype())},
                                {"shape", t.shape()},
                                {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  std::string text = header.dump();
  // Spaces up to a multiple of 8, so that the data starts 8-byte aligned for readers that map it.
  text.append((kLengthBytes - text.size() % kLengthBytes) % kLengthBytes, ' ');
  std::array<std::uint8_t, kLengthBytes> length{};
  for (std::size_t i = 0; i < kLengthBytes; ++i)
    length[i] = static_cast<std::uint8_t>(static_cast<std::uint64_t>(text.size()) >> (8 * i));

  AtomicFile file(path, std::string(kSave));
  file.write(length.data(), length.size());
  file.write(text.data(), text.size());
  NoGradGuard no_grad;
  for (const auto& entry : tensors) {
    // One tensor at a time on the host, so a CUDA model needs no second full copy.
    const Tensor host = entry.second.detach().cpu().contiguous();
    file.write(host.raw_data(), static_cast<std::size_t>(host.numel()) * dtype_size(host.dtype()));
  }
  file.commit();
}

Safetensors read_safetensors(const std::string& path) {
  const RegularFile file = open_regular_file(path, kLoad);
  Header header = read_header(file, path);
  return build(std::move(header), [&](void* dst, std::size_t n, const Entry& e) {
    CT_CHECK(read_some(file, dst, n, kLoad, path) == n,
             "{}: expected {} bytes of data for tensor {}, got the end of the file (file "
             "truncated while reading?) in {}",
             kLoad, n, shown(e.name), path);
  });
}

StateDict load_safetensors(const std::string& path) {
  return read_safetensors(path).tensors;
}

SafetensorsMetadata load_safetensors_metadata(const std::string& path) {
  const RegularFile file = open_regular_file(path, kLoad);
  return read_header(file, path).metadata;
}

Safetensors read_safetensors_bytes(std::span<const std::uint8_t> bytes, const std::string& name) {
  check_file_length(bytes.size(), name);
  const std::uint64_t header_bytes = get_u64(bytes.data());
  check_header_length(header_bytes, bytes.size(), name);
  const std::size_t data_start = kLengthBytes + static_cast<std::size_t>(header_bytes);
  Header header = parse_header(bytes.subspan(kLengthBytes, static_cast<std::size_t>(header_bytes)),
                               bytes.size() - data_start, name);
  const std::uint8_t* data = bytes.data() + data_start;
  return build(std::move(header), [&](void* dst, std::size_t n, const Entry& e) {
    std::memcpy(dst, data + e.begin, n);
  });
}

}  // namespace convtape::io
