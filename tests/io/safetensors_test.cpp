// safetensors: bit-exact round trips, the documented byte layout, exact float16 / bfloat16
// conversions, PyTorch's files (scripts/make_safetensors_golden.py) loading into the equivalent
// convtape models with PyTorch's outputs, convtape's files reloading, and one test per class of
// malformed file, each refused with its message before anything sized by the file is allocated.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "io/file_helpers.h"
#include "io/safetensors.h"
#include "support/test_util.h"

using namespace convtape;
using convtape::io::load_safetensors;
using convtape::io::load_safetensors_metadata;
using convtape::io::read_safetensors;
using convtape::io::read_safetensors_bytes;
using convtape::io::SafetensorsMetadata;
using convtape::io::save_safetensors;

namespace {

using Bytes = std::vector<std::uint8_t>;

using ct_test::bits_equal;
using ct_test::require_same;

void put_u64(Bytes& b, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

// A file: the header's length, the header, then `data` bytes (zeros unless given).
Bytes file_of(const std::string& header, std::size_t data_bytes) {
  Bytes b;
  put_u64(b, header.size());
  b.insert(b.end(), header.begin(), header.end());
  b.resize(b.size() + data_bytes, 0);
  return b;
}
Bytes file_of(const std::string& header, const Bytes& data) {
  Bytes b = file_of(header, 0);
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

// Both readers (the file and the bytes in memory) and the metadata reader refuse the bytes with a
// message that contains `part`, and none of them allocates any tensor storage first.
void require_refused(const Bytes& bytes, const std::string& part, bool metadata_too = true) {
  ct_test::TempDir dir;
  const std::string path = dir.file("bad.safetensors");
  ct_test::write_bytes(path, bytes);
  const std::int64_t before = memory_stats().cpu_bytes;
  reset_peak_memory_stats();
  CT_REQUIRE_ERROR(load_safetensors(path), part);
  CT_REQUIRE_ERROR(load_safetensors(path), path);
  CT_REQUIRE_ERROR(read_safetensors_bytes(bytes, "bytes.safetensors"), part);
  CT_REQUIRE_ERROR(read_safetensors_bytes(bytes, "bytes.safetensors"), "bytes.safetensors");
  if (metadata_too) CT_REQUIRE_ERROR(load_safetensors_metadata(path), part);
  CHECK(memory_stats().cpu_peak_bytes == before);
}

// A one-tensor header around an entry's JSON body: {"t":<entry>}.
std::string one(const std::string& entry) {
  return "{\"t\":" + entry + "}";
}

// The float32 value of a float16 / bfloat16 bit pattern, from the definition of the formats
// (sign, biased exponent, fraction), computed in double.
double half_value(std::uint16_t h, int exponent_bits, int fraction_bits) {
  const int bias = (1 << (exponent_bits - 1)) - 1;
  const unsigned exponent = (h >> fraction_bits) & ((1u << exponent_bits) - 1);
  const unsigned fraction = h & ((1u << fraction_bits) - 1);
  const double sign = (h >> 15) ? -1.0 : 1.0;
  if (exponent == (1u << exponent_bits) - 1)
    return fraction == 0 ? sign * std::numeric_limits<double>::infinity()
                         : std::numeric_limits<double>::quiet_NaN();
  if (exponent == 0) return sign * std::ldexp(fraction, 1 - bias - fraction_bits);
  return sign * std::ldexp(fraction + (1u << fraction_bits),
                           static_cast<int>(exponent) - bias - fraction_bits);
}

// Every 16-bit pattern as a file of one tensor of the given dtype ("F16" or "BF16").
Bytes all_patterns(const std::string& dtype) {
  Bytes data;
  for (std::uint32_t h = 0; h < 65536; ++h) {
    data.push_back(static_cast<std::uint8_t>(h));
    data.push_back(static_cast<std::uint8_t>(h >> 8));
  }
  return file_of(one("{\"dtype\":\"" + dtype + "\",\"shape\":[65536],\"data_offsets\":[0,131072]}"),
                 data);
}

std::string golden(const std::string& name) {
  return std::string(CT_GOLDEN_DIR) + "/" + name;
}

// The architectures of scripts/make_safetensors_golden.py.
std::shared_ptr<nn::Sequential> make_cnn() {
  return std::make_shared<nn::Sequential>(
      std::make_shared<nn::Conv2d>(nn::Conv2dOptions(3, 4, 3).padding(1)),
      std::make_shared<nn::BatchNorm2d>(4), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Conv2d>(nn::Conv2dOptions(4, 2, 3).stride(2)),
      std::make_shared<nn::Flatten>(), std::make_shared<nn::Linear>(18, 5));
}
std::shared_ptr<nn::Sequential> make_mlp() {
  return std::make_shared<nn::Sequential>(
      std::make_shared<nn::Linear>(6, 8), std::make_shared<nn::BatchNorm1d>(8),
      std::make_shared<nn::Tanh>(),
      std::make_shared<nn::Linear>(nn::LinearOptions(8, 3).bias(false)));
}

// The model's eval-mode output on the golden case's input against PyTorch's.
void require_golden_output(nn::Module& model, const std::string& case_name) {
  const auto cases = ct_test::load_golden("safetensors.txt");
  const auto& c = cases.at(case_name);
  model.eval();
  NoGradGuard no_grad;
  const Tensor out = model(ct_test::in(c, "x").to(kFloat32));
  REQUIRE(out.dtype() == kFloat32);
  CHECK(ct_test::allclose(out, ct_test::in(c, "out"), 1e-5, 1e-6));
}

}  // namespace

TEST_CASE("safetensors round-trip every dtype and shape bit-exactly, with metadata",
          "[safetensors]") {
  ct_test::TempDir dir;
  manual_seed(17);
  const float nan_payload = std::bit_cast<float>(0x7fc01234u);
  const Tensor special = from_vector(
      std::vector<float>{
          -0.0f, std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
          nan_payload, std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::max()},
      {6});
  const Tensor matrix = randn({5, 7});
  const StateDict saved = {
      {"features.0.weight", randn({4, 3, 3, 3})},
      {"features.0.bias", randn({4}, kFloat64)},
      {"special", special},
      {"indices",
       from_vector(std::vector<std::int64_t>{std::numeric_limits<std::int64_t>::min(), -1, 0, 1,
                                             std::numeric_limits<std::int64_t>::max()},
                   {5})},
      {"state.0.step", tensor({120}, Shape{}, kFloat64)},
      {"num_batches_tracked", zeros({}, kInt64)},
      {"empty", zeros({0, 3})},
      {"empty_int", from_vector(std::vector<std::int64_t>{}, {2, 0})},
      {"transposed", matrix.t()},                      // a strided view
      {"expanded", tensor({1, 2, 3}).expand({4, 3})},  // stride 0
      {"narrowed", matrix.narrow(1, 2, 3)},            // offset and strides
      {"requires_grad", randn({3}).requires_grad_(true)},
      {"quote \" backslash \\ newline \n tab \t", randn({2})},
      {"\xe5\x90\x8d\xe5\x89\x8d.weight", randn({1})},  // UTF-8
      {"", randn({2})},
  };
  REQUIRE_FALSE(saved[8].second.is_contiguous());
  const SafetensorsMetadata metadata = {{"format", "pt"}, {"note", "\"quoted\" \xc3\xa9"}};

  const std::string path = dir.file("model.safetensors");
  save_safetensors(saved, path, metadata);
  const io::Safetensors loaded = read_safetensors(path);
  require_same(loaded.tensors, saved);
  CHECK(loaded.metadata == metadata);
  CHECK(load_safetensors_metadata(path) == metadata);
  require_same(load_safetensors(path), saved);
  for (const auto& [name, t] : loaded.tensors) {
    INFO(name);
    CHECK(t.is_contiguous());
    CHECK(t.is_cpu());
    CHECK_FALSE(t.requires_grad());
  }
  CHECK(std::isnan(loaded.tensors[2].second.at<float>({3})));
  CHECK(std::signbit(loaded.tensors[2].second.at<float>({0})));
  CHECK(dir.list() == std::vector<std::string>{"model.safetensors"});  // no temporary left
  // The bytes reader gives the same.
  const Bytes bytes = ct_test::read_bytes(path);
  const io::Safetensors from_bytes = read_safetensors_bytes(bytes, "mem");
  require_same(from_bytes.tensors, saved);
  CHECK(from_bytes.metadata == metadata);

  // Saving again replaces the file; an empty dict without metadata is valid too ("{}").
  save_safetensors({}, path);
  CHECK(load_safetensors(path).empty());
  CHECK(load_safetensors_metadata(path).empty());
  CHECK(ct_test::read_bytes(path) == file_of("{}      ", 0));
  CHECK(dir.list() == std::vector<std::string>{"model.safetensors"});
}

TEST_CASE("the file layout is the documented one", "[safetensors]") {
  ct_test::TempDir dir;
  const std::string path = dir.file("small.safetensors");
  save_safetensors({{"w", arange(6).reshape({2, 3})}, {"n", tensor({7}, Shape{}, kInt64)}}, path,
                   {{"k", "value"}});
  // The JSON is 140 bytes, padded with 4 spaces to 144; the data starts 8-byte aligned at 152.
  const std::string header =
      "{\"__metadata__\":{\"k\":\"value\"},"
      "\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
      "\"n\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[24,32]}}    ";
  REQUIRE(header.size() == 144);
  Bytes data;
  for (int i = 0; i < 6; ++i) {
    const auto bits = std::bit_cast<std::uint32_t>(static_cast<float>(i));
    for (int k = 0; k < 4; ++k) data.push_back(static_cast<std::uint8_t>(bits >> (8 * k)));
  }
  for (int k = 0; k < 8; ++k) data.push_back(k == 0 ? 7 : 0);
  CHECK(ct_test::read_bytes(path) == file_of(header, data));
}

TEST_CASE("tensors come back in the order of their data; JSON whitespace is accepted",
          "[safetensors]") {
  const Bytes bytes = file_of(
      " { \"b\" : { \"shape\" : [ 1 ] , \"data_offsets\" : [ 4 , 8 ] , \"dtype\" : \"F32\" } ,\n"
      "   \"a\" : { \"data_offsets\" : [0, 4], \"dtype\" : \"F32\", \"shape\" : [] } } \n\t ",
      Bytes{0, 0, 0x80, 0x3f, 0, 0, 0, 0x40});
  const auto loaded = read_safetensors_bytes(bytes, "mem").tensors;
  REQUIRE(loaded.size() == 2);
  CHECK(loaded[0].first == "a");
  CHECK(loaded[0].second.shape() == Shape{});
  CHECK(loaded[0].second.item() == 1.0);
  CHECK(loaded[1].first == "b");
  CHECK(loaded[1].second.shape() == Shape{1});
  CHECK(loaded[1].second.item() == 2.0);
  // Zero-size tensors take no bytes and may share an offset.
  const Bytes empties = file_of(
      "{\"e1\":{\"dtype\":\"F64\",\"shape\":[0,4611686018427387904],\"data_offsets\":[0,0]},"
      "\"x\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]},"
      "\"e2\":{\"dtype\":\"F16\",\"shape\":[3,0],\"data_offsets\":[8,8]}}",
      8);
  const auto e = read_safetensors_bytes(empties, "mem").tensors;
  REQUIRE(e.size() == 3);
  CHECK(e[0].first == "e1");
  CHECK(e[0].second.shape() == Shape{0, std::int64_t{1} << 62});
  CHECK(e[2].second.shape() == Shape{3, 0});
  CHECK(e[2].second.dtype() == kFloat32);
}

TEST_CASE("every float16 and bfloat16 value converts exactly to float32", "[safetensors]") {
  for (const std::string dtype : {"F16", "BF16"}) {
    INFO(dtype);
    const auto loaded = read_safetensors_bytes(all_patterns(dtype), "mem").tensors;
    REQUIRE(loaded.size() == 1);
    const Tensor& t = loaded[0].second;
    REQUIRE(t.dtype() == kFloat32);
    REQUIRE(t.shape() == Shape{65536});
    const float* v = t.data_ptr<float>();
    int mismatches = 0, subnormals = 0, nans = 0;
    for (std::uint32_t h = 0; h < 65536; ++h) {
      const double want = dtype == "F16" ? half_value(static_cast<std::uint16_t>(h), 5, 10)
                                         : half_value(static_cast<std::uint16_t>(h), 8, 7);
      const float got = v[h];
      if (std::isnan(want)) {
        ++nans;
        // A NaN stays a NaN with its sign; its payload is the pattern's, moved to the top bits.
        const std::uint32_t bits = std::bit_cast<std::uint32_t>(got);
        const int shift = dtype == "F16" ? 13 : 16;
        const std::uint32_t fraction = h & (dtype == "F16" ? 0x3ffu : 0x7fu);
        if (!std::isnan(got) || (bits >> 31) != (h >> 15) ||
            (bits & 0x7fffffu) != fraction << shift)
          ++mismatches;
        continue;
      }
      if (want != 0 && ((h >> (dtype == "F16" ? 10 : 7)) & (dtype == "F16" ? 0x1f : 0xff)) == 0)
        ++subnormals;
      // Exact: the same value (and the sign of zero).
      if (static_cast<double>(got) != want || std::signbit(got) != std::signbit(want)) {
        if (mismatches++ < 5) UNSCOPED_INFO("pattern " << h << ": " << got << " vs " << want);
      }
    }
    CHECK(mismatches == 0);
    CHECK(subnormals == 2 * (dtype == "F16" ? 1023 : 127));
    CHECK(nans == 2 * (dtype == "F16" ? 1023 : 127));
  }
}

TEST_CASE("float16 and bfloat16 convert as PyTorch converts them", "[safetensors][golden]") {
  const auto loaded = load_safetensors(golden("safetensors_halfs.safetensors"));
  std::map<std::string, Tensor> by_name(loaded.begin(), loaded.end());
  for (const std::string half : {"f16", "bf16"}) {
    INFO(half);
    const Tensor& got = by_name.at(half);
    const Tensor& want = by_name.at(half + "_as_f32");
    REQUIRE(got.dtype() == kFloat32);
    REQUIRE(got.shape() == want.shape());
    REQUIRE(got.numel() >= 512);
    const float* g = got.data_ptr<float>();
    const float* w = want.data_ptr<float>();
    int mismatches = 0, nans = 0;
    for (std::int64_t i = 0; i < got.numel(); ++i) {
      if (std::isnan(w[i])) {
        ++nans;
        mismatches += std::isnan(g[i]) ? 0 : 1;
      } else if (std::bit_cast<std::uint32_t>(g[i]) != std::bit_cast<std::uint32_t>(w[i])) {
        if (mismatches++ < 5) UNSCOPED_INFO("element " << i << ": " << g[i] << " vs " << w[i]);
      }
    }
    CHECK(mismatches == 0);
    CHECK(nans > 0);
  }
}

TEST_CASE("PyTorch models' safetensors files load into the equivalent convtape models",
          "[safetensors][golden]") {
  SECTION("Conv2d, BatchNorm2d, ReLU, Conv2d, Flatten, Linear") {
    auto model = make_cnn();
    const StateDict before = model->state_dict();
    load_safetensors(*model, golden("safetensors_cnn.safetensors"));
    // PyTorch's names are convtape's, and num_batches_tracked is an int64 scalar in both.
    const Tensor tracked = (*model)[1]->state_dict()[4].second;
    CHECK(tracked.dtype() == kInt64);
    CHECK(tracked.shape() == Shape{});
    CHECK(tracked.item() == 3.0);
    CHECK(before.size() == 11);
    require_golden_output(*model, "cnn");
    CHECK(
        load_safetensors_metadata(golden("safetensors_cnn.safetensors")) ==
        SafetensorsMetadata{{"format", "pt"}, {"producer", "scripts/make_safetensors_golden.py"}});
  }
  SECTION("Linear, BatchNorm1d, Tanh, Linear without bias") {
    auto model = make_mlp();
    load_safetensors(*model, golden("safetensors_mlp.safetensors"));
    require_golden_output(*model, "mlp");
  }
  SECTION("the CNN saved as float16 and bfloat16 loads into the float32 model") {
    for (const std::string half : {"f16", "bf16"}) {
      INFO(half);
      auto model = make_cnn();
      load_safetensors(*model, golden("safetensors_cnn_" + half + ".safetensors"));
      require_golden_output(*model, "cnn_" + half);
    }
  }
  SECTION("a model of another architecture is refused, naming the entry") {
    auto model = make_mlp();
    CT_REQUIRE_ERROR(load_safetensors(*model, golden("safetensors_cnn.safetensors")),
                     "load_state_dict: expected 0.weight of shape [8, 6], got [4, 3, 3, 3]");
    auto f64 = make_cnn();
    f64->to(kFloat64);
    CT_REQUIRE_ERROR(load_safetensors(*f64, golden("safetensors_cnn.safetensors")),
                     "expected 0.weight of dtype float64, got float32");
  }
}

TEST_CASE("a model saved by convtape reloads with the same outputs", "[safetensors][golden]") {
  ct_test::TempDir dir;
  auto model = make_cnn();
  load_safetensors(*model, golden("safetensors_cnn.safetensors"));
  const std::string path = dir.file("cnn.safetensors");
  save_safetensors(*model, path, {{"producer", "convtape"}});
  // The same tensors as PyTorch's file, in the model's order.
  const StateDict pytorch = load_safetensors(golden("safetensors_cnn.safetensors"));
  const StateDict ours = load_safetensors(path);
  REQUIRE(ours.size() == pytorch.size());
  for (const auto& [name, t] : ours) {
    INFO(name);
    const auto it = std::find_if(pytorch.begin(), pytorch.end(),
                                 [&](const auto& e) { return e.first == name; });
    REQUIRE(it != pytorch.end());
    CHECK(bits_equal(t, it->second));
  }
  require_same(ours, model->state_dict());
  auto fresh = make_cnn();
  load_safetensors(*fresh, path);
  require_golden_output(*fresh, "cnn");
  CHECK(load_safetensors_metadata(path) == SafetensorsMetadata{{"producer", "convtape"}});
}

TEST_CASE("saving refuses what the format cannot hold, before writing", "[safetensors]") {
  ct_test::TempDir dir;
  const std::string path = dir.file("x.safetensors");
  CT_REQUIRE_ERROR(save_safetensors({{"a", Tensor()}}, path),
                   "save_safetensors: expected a defined tensor for \"a\", got an undefined one");
  CT_REQUIRE_ERROR(save_safetensors({{"a", zeros({1})}, {"a", zeros({2})}}, path),
                   "save_safetensors: expected unique names, got \"a\" twice");
  CT_REQUIRE_ERROR(save_safetensors({{"__metadata__", zeros({1})}}, path),
                   "save_safetensors: expected tensor names other than __metadata__");
  CT_REQUIRE_ERROR(save_safetensors({{"bad\xff", zeros({1})}}, path),
                   "save_safetensors: expected UTF-8 tensor names, got \"bad\xff\" (not UTF-8)");
  CT_REQUIRE_ERROR(save_safetensors({{"a", zeros({1})}}, path, {{"k", "\xc3"}}),
                   "save_safetensors: expected UTF-8 metadata, got key \"k\"");
  CHECK(dir.list().empty());
}

// ---- malformed files: one test per class, each with the message it must give

TEST_CASE("a file shorter than the header length is refused", "[safetensors][errors]") {
  require_refused({}, "load_safetensors: expected at least 8 bytes (the header length), got 0");
  require_refused({2, 0, 0, 0, 0, 0, 0},
                  "load_safetensors: expected at least 8 bytes (the header length), got 7");
}

TEST_CASE("a header length past the end of the file is refused", "[safetensors][errors]") {
  Bytes b = file_of("{}", 0);
  b[0] = 3;
  require_refused(b,
                  "expected a header of 3 bytes inside the 10-byte file, got 2 bytes after the "
                  "length");
  b = file_of("{}", 0);
  b[7] = 0x80;  // 2^63 + 2
  require_refused(b,
                  "expected a header length of at most 100000000 bytes, got "
                  "9223372036854775810");
}

TEST_CASE("an absurd header length is refused before it is allocated", "[safetensors][errors]") {
  Bytes b = file_of("{}", 0);
  b[0] = 0;
  b[3] = 0x10;  // 256 MiB
  require_refused(b,
                  "expected a header length of at most 100000000 bytes, got 268435456 (not a "
                  "safetensors file?)");
}

TEST_CASE("a header that is not JSON is refused", "[safetensors][errors]") {
  require_refused(file_of("{\"t\":", 0),
                  "load_safetensors: expected a JSON header, got a parse "
                  "error at header byte");
  require_refused(file_of("{} x", 0), "expected a JSON header, got a parse error");
  require_refused(file_of("", 0), "expected a JSON header, got a parse error");
  require_refused(file_of("{\"\xff\":1}", 0), "expected a JSON header, got a parse error");
  require_refused(file_of(std::string("{\0}", 3), 0), "expected a JSON header, got a parse error");
}

TEST_CASE("a header that is not an object is refused", "[safetensors][errors]") {
  require_refused(file_of("[]", 0),
                  "load_safetensors: expected a header that is a JSON object, got an array in ");
  require_refused(file_of("7", 0), "expected a header that is a JSON object, got the number 7");
  require_refused(file_of("\"s\"", 0),
                  "expected a header that is a JSON object, got the string \"s\"");
  require_refused(file_of("null", 0), "expected a header that is a JSON object, got null");
}

TEST_CASE("a tensor entry that is not an object is refused", "[safetensors][errors]") {
  require_refused(
      file_of(one("[1,2]"), 0),
      "expected an object with dtype, shape and data_offsets for tensor \"t\", got an array");
  require_refused(file_of(one("\"F32\""), 0),
                  "expected an object with dtype, shape and data_offsets for tensor \"t\", got the "
                  "string \"F32\"");
}

TEST_CASE("an entry missing dtype, shape or data_offsets is refused", "[safetensors][errors]") {
  require_refused(file_of(one("{\"shape\":[1],\"data_offsets\":[0,4]}"), 4),
                  "expected dtype, shape and data_offsets in the entry of tensor \"t\", got no "
                  "dtype");
  require_refused(file_of(one("{\"dtype\":\"F32\",\"data_offsets\":[0,4]}"), 4), "got no shape");
  require_refused(file_of(one("{\"dtype\":\"F32\",\"shape\":[1]}"), 4), "got no data_offsets");
  require_refused(file_of(one("{}"), 0), "got no dtype");
}

TEST_CASE("entry fields of the wrong type are refused", "[safetensors][errors]") {
  require_refused(file_of(one("{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}"), 4),
                  "expected a dtype string for tensor \"t\", got the number 4");
  require_refused(file_of(one("{\"dtype\":\"F32\",\"shape\":\"1\",\"data_offsets\":[0,4]}"), 4),
                  "expected an array of dims for the shape of tensor \"t\", got the string \"1\"");
  require_refused(file_of(one("{\"dtype\":\"F32\",\"shape\":[[1]],\"data_offsets\":[0,4]}"), 4),
                  "expected integers in the shape of tensor \"t\", got an array");
  require_refused(file_of(one("{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}"), 4),
                  "expected integers in the shape of tensor \"t\", got 1.5");
  require_refused(file_of(one("{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":{}}"), 4),
                  "expected data_offsets [begin, end] for tensor \"t\", got an object");
  require_refused(file_of(one("{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,true]}"), 4),
                  "expected integers in the data_offsets of tensor \"t\", got true");
  require_refused(
      file_of(one("{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}"), 4),
      "expected only dtype, shape and data_offsets in the entry of tensor \"t\", got a "
      "field \"x\"");
  require_refused(
      file_of(one("{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}"), 4),
      "expected one dtype for tensor \"t\", got two");
}

TEST_CASE("an unknown dtype is refused by name", "[safetensors][errors]") {
  for (const std::string dtype : {"I32", "BOOL", "U8", "F8_E4M3", "f32", ""}) {
    INFO(dtype);
    require_refused(
        file_of(one("{\"dtype\":\"" + dtype + "\",\"shape\":[1],\"data_offsets\":[0,4]}"), 4),
        "load_safetensors: expected dtype F32, F64, I64, F16 or BF16 for tensor \"t\", got \"" +
            dtype + "\" in ");
  }
}

TEST_CASE("negative, huge and overflowing shapes are refused", "[safetensors][errors]") {
  const auto entry = [](const std::string& shape, const std::string& dtype = "F32") {
    return file_of(
        one("{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[0,4]}"), 4);
  };
  require_refused(entry("[-1]"), "expected non-negative dims in the shape of tensor \"t\", got -1");
  require_refused(entry("[9223372036854775808]"),
                  "expected dims below 2^63 in the shape of tensor \"t\", got 9223372036854775808");
  require_refused(entry("[1e3]"), "expected integers in the shape of tensor \"t\", got 1e3");
  require_refused(entry("[100000000000000000000]"),
                  "got 100000000000000000000 (a fraction, or an integer too large for 64 bits)");
  // The element count overflows 64 bits.
  require_refused(entry("[4294967296,4294967296]"),
                  "expected a shape whose element count and strides fit in 63 bits for tensor "
                  "\"t\", got [4294967296, 4294967296]");
  // The element count fits, the strides of an empty tensor do not.
  require_refused(entry("[0,9223372036854775807,2]"),
                  "expected a shape whose element count and strides fit in 63 bits");
  // The element count fits, the byte count does not.
  require_refused(entry("[4611686018427387904]", "F64"),
                  "expected a byte count that fits in 64 bits for tensor \"t\" (F64 "
                  "[4611686018427387904]), got 4611686018427387904 elements of 8 bytes");
  // Rank 65.
  std::string dims = "[1";
  for (int i = 1; i < 65; ++i) dims += ",1";
  require_refused(entry(dims + "]"), "expected a shape of rank <= 64 for tensor \"t\", got more");
}

TEST_CASE("data_offsets that are not two increasing integers are refused",
          "[safetensors][errors]") {
  const auto offsets = [](const std::string& o) {
    return file_of(one("{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":" + o + "}"), 4);
  };
  require_refused(offsets("[0]"),
                  "expected data_offsets of two integers [begin, end] for tensor \"t\", got 1");
  require_refused(offsets("[]"),
                  "expected data_offsets of two integers [begin, end] for tensor "
                  "\"t\", got 0");
  require_refused(offsets("[0,4,8]"),
                  "expected data_offsets of two integers [begin, end] for "
                  "tensor \"t\", got more");
  require_refused(offsets("[4,0]"),
                  "expected data_offsets [begin, end] with begin <= end for "
                  "tensor \"t\", got [4, 0]");
  require_refused(offsets("[-4,0]"), "expected non-negative data_offsets for tensor \"t\", got -4");
  require_refused(
      offsets("[0,18446744073709551616]"),
      "expected integers in the data_offsets of tensor \"t\", got 18446744073709551616");
}

TEST_CASE("data_offsets past the end of the data are refused", "[safetensors][errors]") {
  require_refused(file_of(one("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"), 4),
                  "expected the data of tensor \"t\" inside the 4-byte data region, got bytes [0, "
                  "8) (file truncated?)");
  require_refused(file_of(one("{\"dtype\":\"F32\",\"shape\":[4611686018427387903],"
                              "\"data_offsets\":[0,18446744073709551612]}"),
                          4),
                  "expected the data of tensor \"t\" inside the 4-byte data region");
}

TEST_CASE("a byte range that does not match the shape is refused", "[safetensors][errors]") {
  require_refused(file_of(one("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}"), 4),
                  "expected 8 bytes of data for tensor \"t\" (F32 [2]), got 4 (data_offsets [0, "
                  "4])");
  require_refused(file_of(one("{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[0,4]}"), 4),
                  "expected 2 bytes of data for tensor \"t\" (BF16 []), got 4");
}

TEST_CASE("tensors whose data overlap are refused", "[safetensors][errors]") {
  require_refused(
      file_of("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
              8),
      "expected tensors whose data do not overlap, got tensor \"b\" at bytes [4, 8) overlapping "
      "tensor \"a\" at bytes [0, 8)");
  // Two tensors over the same bytes (which would let a small file allocate without bound).
  require_refused(file_of("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                          "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                          4),
                  "expected tensors whose data do not overlap, got tensor \"b\" at bytes [0, 4)");
}

TEST_CASE("data not covered by the tensors is refused", "[safetensors][errors]") {
  require_refused(
      file_of("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
              12),
      "expected the tensors' data to cover the data region without gaps, got bytes [4, 8) of no "
      "tensor before tensor \"b\"");
  require_refused(file_of(one("{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}"), 8),
                  "got bytes [0, 4) of no tensor before tensor \"t\"");
  require_refused(file_of(one("{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}"), 6),
                  "expected the tensors' data to cover the 6-byte data region, got bytes [4, 6) of "
                  "no tensor at its end");
  require_refused(file_of("{}", 1), "cover the 1-byte data region, got bytes [0, 1) of no tensor");
}

TEST_CASE("a name given twice is refused", "[safetensors][errors]") {
  const std::string e = "{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}";
  require_refused(file_of("{\"t\":" + e + ",\"t\":" + e + "}", 4),
                  "load_safetensors: expected unique tensor names, got \"t\" twice");
  require_refused(file_of("{\"__metadata__\":{},\"__metadata__\":{}}", 0),
                  "expected one __metadata__, got two");
  require_refused(file_of("{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0),
                  "expected unique __metadata__ keys, got \"k\" twice");
}

TEST_CASE("__metadata__ that is not an object of strings is refused", "[safetensors][errors]") {
  require_refused(file_of("{\"__metadata__\":[]}", 0),
                  "expected __metadata__ to be an object of strings, got an array");
  require_refused(file_of("{\"__metadata__\":\"x\"}", 0),
                  "expected __metadata__ to be an object of strings, got the string \"x\"");
  require_refused(file_of("{\"__metadata__\":{\"k\":1}}", 0),
                  "expected a string for __metadata__ key \"k\", got the number 1");
  require_refused(file_of("{\"__metadata__\":{\"k\":{\"a\":\"b\"}}}", 0),
                  "expected a string for __metadata__ key \"k\", got an object");
  require_refused(file_of("{\"__metadata__\":{\"k\":null}}", 0),
                  "expected a string for __metadata__ key \"k\", got null");
}

TEST_CASE("long names are cut in messages", "[safetensors][errors]") {
  const std::string name(5000, 'n');
  require_refused(file_of("{\"" + name + "\":1}", 0),
                  "for tensor \"" + std::string(120, 'n') + "...\" (5000 bytes), got the number 1");
}

TEST_CASE("a file whose header claims a huge tensor allocates nothing", "[safetensors][errors]") {
  // 2^40 float32 elements in a 100-byte file: refused from the header, before any allocation (the
  // peak counter is checked by require_refused).
  require_refused(file_of(one("{\"dtype\":\"F32\",\"shape\":[1099511627776],"
                              "\"data_offsets\":[0,4398046511104]}"),
                          16),
                  "expected the data of tensor \"t\" inside the 16-byte data region, got bytes [0, "
                  "4398046511104)");
}

TEST_CASE("loading a FIFO, a folder or a missing file fails at once", "[safetensors][errors]") {
  ct_test::TempDir dir;
  const std::string fifo = dir.file("pipe.safetensors");
  ct_test::make_fifo(fifo);
  const ct_test::HangGuard guard(20);
  CT_REQUIRE_ERROR(load_safetensors(fifo),
                   "load_safetensors: expected a regular file, got a FIFO '" + fifo + "'");
  CT_REQUIRE_ERROR(load_safetensors_metadata(fifo), "expected a regular file, got a FIFO");
  CT_REQUIRE_ERROR(load_safetensors(dir.path().string()),
                   "load_safetensors: expected a regular file, got a directory");
  CT_REQUIRE_ERROR(load_safetensors(dir.file("missing.safetensors")),
                   "load_safetensors: expected a readable file at");
}
