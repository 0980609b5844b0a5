// The safetensors reader under 12,000 mutated files: valid seeds (files written by convtape's
// save_safetensors and PyTorch's committed golden files) edited byte by byte (flips, interesting
// integers, truncation, insertion, duplication), in their header length, and in their JSON (numbers
// in shapes and offsets replaced by edge values, dtypes swapped, entries and fields duplicated,
// removed or renamed, arrays lengthened, data cut or extended). Each file is loaded from disk and
// from memory. The contract, checked per input: the load returns or throws convtape::Error (never
// crashes or throws anything else; the ASan + UBSan run executes this test too); the two readers
// agree; a refused file allocates no tensor storage at all; a loaded file's tensors hold at most
// the data region's bytes (twice that when F16 / BF16 grow to float32), which bounds the peak of
// the storage allocator's counter during the load; what loads is valid and survives a save and
// reload bit for bit.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "fuzz/alloc_cap.h"
#include "fuzz/asan_options.h"
#include "fuzz/fuzz_input.h"
#include "io/file_helpers.h"
#include "io/safetensors.h"
#include "support/test_util.h"
#include "tests/fuzz/replay.h"

namespace {

using namespace convtape;
using Bytes = std::vector<std::uint8_t>;
using ct_fuzz::Finding;

struct CapOnce {
  CapOnce() { ct_fuzz::install_alloc_cap(); }
};
const CapOnce cap_once;

// ---- the target body and what it observed

struct Observed {
  std::size_t loaded = 0;
  std::size_t refused = 0;
  std::map<std::string, std::size_t> refusals;  // by the message's first words
};
Observed g_observed;

const ct_test::TempDir& scratch() {
  static const ct_test::TempDir dir;
  return dir;
}

// The kind of a refusal: its message from "expected" to ", got", with numbers and quoted names
// blanked ("expected N bytes of data for tensor \"s\" (F32 [N])").
std::string refusal_kind(const std::string& message) {
  const std::size_t from = std::min(message.find("expected"), message.size());
  const std::size_t to = std::min(message.find(", got", from), message.size());
  std::string kind;
  for (std::size_t i = from; i < to; ++i) {
    const char c = message[i];
    if (c >= '0' && c <= '9') {
      while (i + 1 < to && message[i + 1] >= '0' && message[i + 1] <= '9') ++i;
      kind += 'N';
    } else if (c == '"') {
      while (i + 1 < to && message[i + 1] != '"') i += message[i + 1] == '\\' ? 2 : 1;
      ++i;
      kind += "\"s\"";
    } else {
      kind += c;
    }
  }
  return kind;
}

using ct_test::bits_equal;

bool same(const io::Safetensors& a, const io::Safetensors& b) {
  if (a.metadata != b.metadata || a.tensors.size() != b.tensors.size()) return false;
  for (std::size_t i = 0; i < a.tensors.size(); ++i)
    if (a.tensors[i].first != b.tensors[i].first ||
        !bits_equal(a.tensors[i].second, b.tensors[i].second))
      return false;
  return true;
}

std::uint64_t header_length(const Bytes& b) {
  std::uint64_t n = 0;
  for (int i = 0; i < 8 && static_cast<std::size_t>(i) < b.size(); ++i)
    n |= static_cast<std::uint64_t>(b[i]) << (8 * i);
  return n;
}

// One load through `load`, with the storage counter watched. Returns the result, or nothing when
// the file was refused (the message is recorded).
template <class Load>
std::optional<io::Safetensors> watched(const Bytes& bytes, Load&& load, std::string* message) {
  const std::int64_t before = memory_stats().cpu_bytes;
  reset_peak_memory_stats();
  std::optional<io::Safetensors> out;
  try {
    out = load();
  } catch (const Error& e) {
    if (memory_stats().cpu_peak_bytes != before)
      throw Finding("load_safetensors: a refused file allocated " +
                    std::to_string(memory_stats().cpu_peak_bytes - before) +
                    " bytes of tensor storage first (" + e.message() + ")");
    *message = e.message();
    return std::nullopt;
  }
  const std::int64_t peak = memory_stats().cpu_peak_bytes - before;
  // A loaded file: its tensors hold the data region's bytes, twice that at most (F16 / BF16).
  const std::uint64_t data_bytes = bytes.size() - 8 - header_length(bytes);
  std::uint64_t held = 0;
  std::set<std::string> names;
  for (const auto& [name, t] : out->tensors) {
    ct_fuzz::check_result(t, "load_safetensors");
    if (!t.is_contiguous() || !t.is_cpu() || t.requires_grad())
      throw Finding("load_safetensors: returned a tensor that is not a contiguous CPU leaf");
    if (!names.insert(name).second) throw Finding("load_safetensors: returned a name twice");
    held += static_cast<std::uint64_t>(t.numel()) * dtype_size(t.dtype());
  }
  if (held > 2 * data_bytes || peak < 0 || static_cast<std::uint64_t>(peak) > held)
    throw Finding("load_safetensors: a " + std::to_string(bytes.size()) + "-byte file with " +
                  std::to_string(data_bytes) + " data bytes gave tensors of " +
                  std::to_string(held) + " bytes, allocation peak " + std::to_string(peak));
  return out;
}

int body(const std::uint8_t* data, std::size_t size) {
  const Bytes bytes(data, data + size);
  // A fresh name per input, removed afterwards: rewriting one file in place makes ext4 flush it
  // on every close (its replace-via-truncate heuristic), some milliseconds per input.
  static std::uint64_t counter = 0;
  const std::string path = scratch().file("input" + std::to_string(counter++) + ".safetensors");
  ct_test::write_bytes(path, bytes);
  struct Remove {
    const std::string& path;
    ~Remove() { std::remove(path.c_str()); }
  } remove{path};
  std::string from_file_error, from_memory_error;
  const auto from_file = watched(
      bytes, [&] { return io::read_safetensors(path); }, &from_file_error);
  const auto from_memory = watched(
      bytes, [&] { return io::read_safetensors_bytes(bytes, path); }, &from_memory_error);
  if (from_file.has_value() != from_memory.has_value() || from_file_error != from_memory_error)
    throw Finding("load_safetensors: the file and memory readers disagree: '" + from_file_error +
                  "' vs '" + from_memory_error + "'");
  if (!from_file) {
    ++g_observed.refused;
    ++g_observed.refusals[refusal_kind(from_file_error)];
    // The metadata reader checks the same header.
    try {
      (void)io::load_safetensors_metadata(path);
      if (from_file_error.find("data for tensor") == std::string::npos)
        throw Finding("load_safetensors_metadata: accepted a header that load refused: " +
                      from_file_error);
    } catch (const Error&) {
    }
    return 0;
  }
  ++g_observed.loaded;
  if (!same(*from_file, *from_memory))
    throw Finding("load_safetensors: the file and memory readers loaded different tensors");
  if (io::load_safetensors_metadata(path) != from_file->metadata)
    throw Finding("load_safetensors_metadata: differs from read_safetensors's metadata");
  // Whatever loads saves and reloads bit for bit (checked for the first 30 loads of each run: a
  // save fsyncs the file and its folder, which can take a tenth of a second on a busy disk).
  if (g_observed.loaded > 30) return 0;
  const std::string again = scratch().file("again.safetensors");
  io::save_safetensors(from_file->tensors, again, from_file->metadata);
  if (!same(io::read_safetensors(again), *from_file))
    throw Finding("save_safetensors: a loaded file did not survive a save and reload");
  return 0;
}

// ---- seeds

Bytes saved(const StateDict& dict, const io::SafetensorsMetadata& metadata = {}) {
  const std::string path = scratch().file("seed.safetensors");
  io::save_safetensors(dict, path, metadata);
  return ct_test::read_bytes(path);
}

Bytes with_header(const std::string& header, const Bytes& data) {
  Bytes b;
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<std::uint8_t>(header.size() >> (8 * i)));
  b.insert(b.end(), header.begin(), header.end());
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

std::vector<Bytes> seeds() {
  manual_seed(5);
  std::vector<Bytes> out;
  out.push_back(saved({{"w", randn({2, 3})},
                       {"b", randn({3}, kFloat64)},
                       {"n", tensor({3}, Shape{}, kInt64)},
                       {"e", zeros({0, 2})}},
                      {{"format", "pt"}, {"k", "v"}}));
  out.push_back(saved({}));
  out.push_back(saved({{"0.weight", randn({4, 1, 2, 2})}, {"0.bias", randn({4})}}));
  out.push_back(saved({{"s", tensor({1.5}, Shape{}, kFloat64)}}, {{"epoch", "3"}}));
  // Half types, written by hand: F16 [2, 2] and BF16 [3] (their loads grow to float32).
  out.push_back(with_header(
      "{\"h\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[0,8]},"
      "\"b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[8,14]}}",
      Bytes{0x00, 0x3c, 0x01, 0x00, 0x00, 0x7c, 0xff, 0xfb, 0x80, 0x3f, 0x80, 0xff, 0xc1, 0x7f}));
  // PyTorch's files (scripts/make_safetensors_golden.py), about 1 KB each.
  for (const char* name : {"safetensors_mlp.safetensors", "safetensors_cnn_f16.safetensors"})
    out.push_back(ct_test::read_bytes(std::string(CT_GOLDEN_DIR) + "/" + name));
  return out;
}

// ---- JSON-aware mutations

// A token of the header: a number or a string (with its quotes), by its place in the text.
struct Token {
  std::size_t begin, end;
  bool string;
};

std::vector<Token> tokens(const std::string& h) {
  std::vector<Token> out;
  for (std::size_t i = 0; i < h.size();) {
    if (h[i] == '"') {
      std::size_t j = i + 1;
      while (j < h.size() && h[j] != '"') j += h[j] == '\\' ? 2 : 1;
      j = std::min(j + 1, h.size());
      out.push_back({i, j, true});
      i = j;
    } else if (h[i] == '-' || (h[i] >= '0' && h[i] <= '9')) {
      std::size_t j = i + 1;
      while (j < h.size() && h[j] != '\0' && std::strchr("0123456789.eE+-", h[j]) != nullptr) ++j;
      out.push_back({i, j, false});
      i = j;
    } else {
      ++i;
    }
  }
  return out;
}

// The members of objects at depth 1 and 2 (tensor entries and __metadata__; entry fields and
// metadata pairs): each from its key's opening quote to the end of its value.
std::vector<Token> members(const std::string& h) {
  constexpr std::size_t kNone = std::string::npos;
  std::vector<Token> out;
  std::vector<char> stack;                   // the open brackets
  std::vector<std::size_t> start(3, kNone);  // per depth: where the member being read began
  bool expect_key = false;
  for (std::size_t i = 0; i < h.size(); ++i) {
    const char c = h[i];
    const std::size_t depth = stack.size();
    if (c == '"') {
      const std::size_t begin = i;
      for (++i; i < h.size() && h[i] != '"'; i += h[i] == '\\' ? 2 : 1) {
      }
      if (expect_key && depth < start.size()) start[depth] = begin;
      expect_key = false;
    } else if (c == '{' || c == '[') {
      stack.push_back(c);
      expect_key = c == '{';
    } else if (c == ',' || c == '}' || c == ']') {
      const bool in_object = !stack.empty() && stack.back() == '{';
      if (in_object && depth < start.size() && start[depth] != kNone) {
        out.push_back({start[depth], i, false});
        start[depth] = kNone;
      }
      if (c == ',')
        expect_key = in_object;
      else if (!stack.empty())
        stack.pop_back();
    }
  }
  return out;
}

std::string pick_number(std::mt19937_64& rng, const std::string& old) {
  static const char* const kNumbers[] = {"0",
                                         "1",
                                         "2",
                                         "3",
                                         "4",
                                         "7",
                                         "8",
                                         "-1",
                                         "-0",
                                         "64",
                                         "65",
                                         "1.5",
                                         "1e3",
                                         "1e308",
                                         "4294967296",
                                         "4611686018427387904",
                                         "9223372036854775807",
                                         "9223372036854775808",
                                         "18446744073709551615",
                                         "18446744073709551616",
                                         "-9223372036854775808",
                                         "100000000000000000000000"};
  if (rng() % 3 == 0) {  // near the old value: off by a little, doubled, halved (wrapping)
    // strtoll clamps what does not fit (atoll would be undefined there).
    auto v = static_cast<unsigned long long>(std::strtoll(old.c_str(), nullptr, 10));
    switch (rng() % 4) {
      case 0:
        v += 1 + rng() % 8;
        break;
      case 1:
        v -= 1 + rng() % 8;
        break;
      case 2:
        v *= 2;
        break;
      default:
        v = static_cast<unsigned long long>(static_cast<long long>(v) / 2);
        break;
    }
    return std::to_string(static_cast<long long>(v));
  }
  return kNumbers[rng() % std::size(kNumbers)];
}

std::string pick_string(std::mt19937_64& rng) {
  static const char* const kStrings[] = {"\"F32\"",
                                         "\"F64\"",
                                         "\"I64\"",
                                         "\"F16\"",
                                         "\"BF16\"",
                                         "\"I32\"",
                                         "\"BOOL\"",
                                         "\"U8\"",
                                         "\"F8_E4M3\"",
                                         "\"\"",
                                         "\"dtype\"",
                                         "\"shape\"",
                                         "\"data_offsets\"",
                                         "\"__metadata__\"",
                                         "\"w\"",
                                         "\"b\"",
                                         "\"0.weight\"",
                                         "\"x\\u0000y\"",
                                         "\"\\ud800\"",
                                         "\"\xc3\x28\"",
                                         "1",
                                         "null",
                                         "[]",
                                         "{}",
                                         "[0,4]"};
  return kStrings[rng() % std::size(kStrings)];
}

// One to three JSON edits of a valid seed; the header length is then fixed to the new header
// (usually) or set to an edge value.
Bytes json_mutation(const Bytes& seed, std::mt19937_64& rng) {
  const std::uint64_t n = header_length(seed);
  std::string h(seed.begin() + 8, seed.begin() + 8 + static_cast<std::ptrdiff_t>(n));
  Bytes data(seed.begin() + 8 + static_cast<std::ptrdiff_t>(n), seed.end());
  for (std::size_t k = 0, edits = 1 + rng() % 3; k < edits; ++k) {
    const auto toks = tokens(h);
    const auto mems = members(h);
    switch (rng() % 9) {
      case 0:
      case 1: {  // a number: shapes and offsets
        std::vector<Token> numbers;
        for (const auto& t : toks)
          if (!t.string) numbers.push_back(t);
        if (numbers.empty()) break;
        const Token t = numbers[rng() % numbers.size()];
        h.replace(t.begin, t.end - t.begin, pick_number(rng, h.substr(t.begin, t.end - t.begin)));
        break;
      }
      case 2: {  // a string: dtypes, names, keys
        std::vector<Token> strings;
        for (const auto& t : toks)
          if (t.string) strings.push_back(t);
        if (strings.empty()) break;
        const Token t = strings[rng() % strings.size()];
        h.replace(t.begin, t.end - t.begin, pick_string(rng));
        break;
      }
      case 3: {  // duplicate a member (an entry, a metadata pair, a field) next to itself
        if (mems.empty()) break;
        const Token m = mems[rng() % mems.size()];
        h.insert(m.end, "," + h.substr(m.begin, m.end - m.begin));
        break;
      }
      case 4: {  // remove a member and the comma before or after it
        if (mems.empty()) break;
        const Token m = mems[rng() % mems.size()];
        std::size_t b = m.begin, e = m.end;
        if (e < h.size() && h[e] == ',')
          ++e;
        else if (b > 0 && h[b - 1] == ',')
          --b;
        h.erase(b, e - b);
        break;
      }
      case 5: {  // lengthen or empty an array
        std::vector<std::size_t> arrays;
        for (std::size_t i = 0; i < h.size(); ++i)
          if (h[i] == '[') arrays.push_back(i);
        if (arrays.empty()) break;
        const std::size_t at = arrays[rng() % arrays.size()];
        if (rng() % 3 == 0) {
          const std::size_t close = h.find(']', at);
          if (close != std::string::npos) h.erase(at + 1, close - at - 1);
        } else {
          h.insert(at + 1, pick_number(rng, "1") + (h[at + 1] == ']' ? "" : ","));
        }
        break;
      }
      case 6: {  // swap two numbers
        std::vector<Token> numbers;
        for (const auto& t : toks)
          if (!t.string) numbers.push_back(t);
        if (numbers.size() < 2) break;
        Token a = numbers[rng() % numbers.size()], b = numbers[rng() % numbers.size()];
        if (a.begin > b.begin) std::swap(a, b);
        if (a.begin == b.begin) break;
        const std::string sa = h.substr(a.begin, a.end - a.begin);
        const std::string sb = h.substr(b.begin, b.end - b.begin);
        h.replace(b.begin, b.end - b.begin, sa);
        h.replace(a.begin, a.end - a.begin, sb);
        break;
      }
      case 7: {  // the data: cut or extended
        if (rng() % 2 == 0 && !data.empty())
          data.resize(rng() % data.size());
        else
          data.resize(data.size() + 1 + rng() % 16, static_cast<std::uint8_t>(rng()));
        break;
      }
      default: {  // a member moved into another place (an entry into an entry, a field out)
        if (mems.size() < 2) break;
        const Token m = mems[rng() % mems.size()];
        const std::string text = h.substr(m.begin, m.end - m.begin);
        const std::size_t to = mems[rng() % mems.size()].begin;
        if (to >= m.begin && to <= m.end) break;
        h.insert(to, text + ",");
        break;
      }
    }
  }
  std::uint64_t length = h.size();
  if (rng() % 8 == 0) {  // a header-length edit on top
    static constexpr std::uint64_t kLengths[] = {0,
                                                 1,
                                                 7,
                                                 8,
                                                 100'000'000,
                                                 100'000'001,
                                                 std::uint64_t{1} << 32,
                                                 std::uint64_t{1} << 63,
                                                 ~std::uint64_t{0}};
    switch (rng() % 3) {
      case 0:
        length = kLengths[rng() % std::size(kLengths)];
        break;
      case 1:
        length += 1 + rng() % 16;
        break;
      default:
        length -= std::min<std::uint64_t>(length, 1 + rng() % 16);
        break;
    }
  }
  Bytes out = with_header(h, data);
  for (int i = 0; i < 8; ++i)
    out[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(length >> (8 * i));
  return out;
}

}  // namespace

TEST_CASE("fuzz safetensors: the seeds load", "[fuzz][safetensors]") {
  const auto s = seeds();
  REQUIRE(s.size() == 7);
  g_observed = {};
  const auto failures = ct_fuzz_test::replay(body, s);
  INFO(ct_fuzz_test::describe(failures));
  CHECK(failures.empty());
  CHECK(g_observed.loaded == s.size());  // a harness that refuses everything would pass vacuously
}

TEST_CASE("fuzz safetensors: 12000 mutated files", "[fuzz][safetensors]") {
  const auto start = std::chrono::steady_clock::now();
  const auto s = seeds();
  std::vector<Bytes> inputs = ct_fuzz_test::mutated_inputs(s, 17, 4000, /*keep_first_byte=*/false);
  std::mt19937_64 rng(1717);
  for (int i = 0; i < 8000; ++i) inputs.push_back(json_mutation(s[rng() % s.size()], rng));
  g_observed = {};
  const auto failures = ct_fuzz_test::replay(body, inputs);
  INFO(ct_fuzz_test::describe(failures));
  CHECK(failures.empty());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::string kinds;
  for (const auto& [kind, count] : g_observed.refusals)
    kinds += "\n  " + std::to_string(count) + "  " + kind;
  std::printf(
      "fuzz safetensors: %zu inputs in %.2f s: %zu loaded, %zu refused; refusals by kind:%s\n",
      inputs.size(), seconds, g_observed.loaded, g_observed.refused, kinds.c_str());
  // The mutations reach past the first checks: many still load, and the refusals are of many
  // kinds (the length, the JSON, each field, the offsets' tiling).
  CHECK(g_observed.loaded + g_observed.refused == inputs.size());
  CHECK(g_observed.loaded >= 500);
  CHECK(g_observed.refusals.size() >= 20);
}
