// PNG output, checked by decoding what was written: the chunk sequence and every chunk's CRC-32
// (zlib's crc32), IHDR, the IDAT stream inflated with zlib's uncompress, and the pixels. Then the
// kernel grid's layout, normalisation and upscaling, pixel by pixel.
#include <cmath>
#include <cstring>
#include <limits>
#include <tuple>

#include "io/file_helpers.h"
#include "io/png.h"
#include "support/test_util.h"

using namespace convtape;
using convtape::io::Image;
using convtape::io::KernelGridOptions;

namespace {

std::uint32_t be32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
}

struct Chunk {
  std::string type;
  std::vector<std::uint8_t> data;
};

// An independent PNG reader for what encode_png produces (8-bit gray or RGB, filter 0), with
// every structural check REQUIRE'd.
Image decode_png(const std::vector<std::uint8_t>& png, std::vector<Chunk>* chunks_out = nullptr) {
  const std::uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  REQUIRE(png.size() >= 8);
  REQUIRE(std::memcmp(png.data(), signature, 8) == 0);
  std::vector<Chunk> chunks;
  std::size_t pos = 8;
  while (pos < png.size()) {
    REQUIRE(png.size() - pos >= 12);
    const std::uint32_t length = be32(png.data() + pos);
    REQUIRE(png.size() - pos - 12 >= length);
    const std::uint8_t* type = png.data() + pos + 4;
    const std::uint32_t stored_crc = be32(type + 4 + length);
    CHECK(stored_crc == ct_test::crc32_of(type, 4 + length));  // the CRC covers type and data
    chunks.push_back({std::string(type, type + 4), {type + 4, type + 4 + length}});
    pos += 12 + length;
  }
  REQUIRE(chunks.size() >= 3);
  REQUIRE(chunks.front().type == "IHDR");
  REQUIRE(chunks.back().type == "IEND");
  CHECK(chunks.back().data.empty());
  const auto& ihdr = chunks.front().data;
  REQUIRE(ihdr.size() == 13);
  Image image;
  image.width = be32(ihdr.data());
  image.height = be32(ihdr.data() + 4);
  REQUIRE(ihdr[8] == 8);  // bit depth
  REQUIRE((ihdr[9] == 0 || ihdr[9] == 2));
  image.channels = ihdr[9] == 0 ? 1 : 3;
  CHECK(ihdr[10] == 0);  // deflate
  CHECK(ihdr[11] == 0);  // adaptive filtering
  CHECK(ihdr[12] == 0);  // no interlace
  std::vector<std::uint8_t> packed;
  for (std::size_t i = 1; i + 1 < chunks.size(); ++i) {
    REQUIRE(chunks[i].type == "IDAT");
    packed.insert(packed.end(), chunks[i].data.begin(), chunks[i].data.end());
  }
  const std::size_t row = static_cast<std::size_t>(image.width * image.channels);
  std::vector<std::uint8_t> raw((row + 1) * static_cast<std::size_t>(image.height) + 1);
  uLongf raw_size = static_cast<uLongf>(raw.size());
  REQUIRE(uncompress(raw.data(), &raw_size, packed.data(), static_cast<uLong>(packed.size())) ==
          Z_OK);
  REQUIRE(raw_size == raw.size() - 1);  // exactly the scanlines, nothing more
  for (std::int64_t y = 0; y < image.height; ++y) {
    const std::uint8_t* line = raw.data() + static_cast<std::size_t>(y) * (row + 1);
    REQUIRE(line[0] == 0);  // filter type None
    image.pixels.insert(image.pixels.end(), line + 1, line + 1 + row);
  }
  if (chunks_out) *chunks_out = std::move(chunks);
  return image;
}

Image pattern(std::int64_t w, std::int64_t h, std::int64_t c) {
  Image image(w, h, c);
  for (std::size_t i = 0; i < image.pixels.size(); ++i)
    image.pixels[i] = static_cast<std::uint8_t>((i * 37 + i / 7) & 0xff);
  return image;
}

}  // namespace

TEST_CASE("grayscale and RGB images survive encoding and decoding", "[png]") {
  for (const auto& [w, h, c] :
       {std::tuple<int, int, int>{1, 1, 1}, {7, 5, 1}, {13, 4, 3}, {300, 200, 1}, {64, 48, 3}}) {
    INFO(w << " x " << h << " x " << c);
    const Image image = pattern(w, h, c);
    std::vector<Chunk> chunks;
    const Image back = decode_png(io::encode_png(image), &chunks);
    CHECK(back.width == w);
    CHECK(back.height == h);
    CHECK(back.channels == c);
    CHECK(back.pixels == image.pixels);
    CHECK(chunks.size() == 3);
  }
}

TEST_CASE("write_png writes the encoded bytes under the name, and nothing else", "[png]") {
  ct_test::TempDir dir;
  const Image image = pattern(9, 6, 3);
  const std::string path = dir.file("image.png");
  io::write_png(path, image);
  CHECK(ct_test::read_bytes(path) == io::encode_png(image));
  CHECK(dir.list() == std::vector<std::string>{"image.png"});
  CHECK(decode_png(ct_test::read_bytes(path)).pixels == image.pixels);

  const std::string nowhere = dir.file("missing/image.png");
  CT_REQUIRE_ERROR(io::write_png(nowhere, image), "write_png: expected a writable folder " +
                                                      dir.file("missing") + " for " + nowhere +
                                                      ", got: No such file or directory");
  CHECK(dir.list() == std::vector<std::string>{"image.png"});
}

TEST_CASE("images PNG cannot hold are refused", "[png]") {
  Image image = pattern(4, 3, 1);
  image.pixels.pop_back();
  CT_REQUIRE_ERROR(io::encode_png(image),
                   "encode_png: expected 4 x 3 x 1 = 12 pixel bytes, got 11");
  Image empty;
  CT_REQUIRE_ERROR(io::encode_png(empty),
                   "encode_png: expected width and height in [1, 2^31 - 1], got 0 x 0");
  Image two = pattern(2, 2, 1);
  two.channels = 2;
  CT_REQUIRE_ERROR(io::encode_png(two), "encode_png: expected 1 (gray) or 3 (RGB) channels, got 2");
  CT_REQUIRE_ERROR(Image(2, 2, 4), "image: expected width, height >= 0 and 1 or 3 channels");
}

TEST_CASE("kernel_grid normalises each kernel, upscales it and separates the tiles", "[png]") {
  // Kernel 0 spans 0..3, so its levels are 0, 85, 170, 255; kernel 1 is constant: mid-gray.
  const Tensor w = tensor({0, 1, 2, 3, 5, 5, 5, 5}, {2, 1, 2, 2});
  const Image image = io::kernel_grid(w, KernelGridOptions().scale(3).separator(1));
  // Two tiles side by side (ceil(sqrt(2)) = 2 columns): 2 * 6 + 3 wide, 6 + 2 high.
  REQUIRE(image.width == 15);
  REQUIRE(image.height == 8);
  REQUIRE(image.channels == 1);
  const std::uint8_t levels[2][2] = {{0, 85}, {170, 255}};
  for (std::int64_t y = 0; y < image.height; ++y) {
    for (std::int64_t x = 0; x < image.width; ++x) {
      INFO("pixel (" << x << ", " << y << ")");
      const bool border_y = y == 0 || y == 7;
      const bool border_x = x == 0 || x == 7 || x == 14;
      if (border_x || border_y) {
        CHECK(image.at(x, y) == 255);
      } else if (x < 7) {
        CHECK(image.at(x, y) == levels[(y - 1) / 3][(x - 1) / 3]);
      } else {
        CHECK(image.at(x, y) == 128);
      }
    }
  }
  // And through a PNG file.
  CHECK(decode_png(io::encode_png(image)).pixels == image.pixels);
}

TEST_CASE("kernel_grid draws three-channel kernels in colour, others as gray tiles", "[png]") {
  // One RGB kernel of one pixel, normalised over its three channels: 0, 127.5 -> 128, 255.
  const Tensor rgb = tensor({-1, 0, 1}, {1, 3, 1, 1}, kFloat64);
  const Image colour = io::kernel_grid(rgb, KernelGridOptions().scale(1).separator(1));
  REQUIRE(colour.channels == 3);
  REQUIRE(colour.width == 3);
  REQUIRE(colour.height == 3);
  CHECK(colour.at(1, 1, 0) == 0);
  CHECK(colour.at(1, 1, 1) == 128);
  CHECK(colour.at(1, 1, 2) == 255);
  CHECK(colour.at(0, 0, 1) == 255);
  const Image gray_tiles = io::kernel_grid(rgb, KernelGridOptions().scale(1).rgb(false));
  REQUIRE(gray_tiles.channels == 1);
  CHECK(gray_tiles.width == 7);  // the kernel's three channels side by side
  CHECK(gray_tiles.height == 3);
  CHECK(gray_tiles.at(1, 1) == 0);
  CHECK(gray_tiles.at(3, 1) == 128);
  CHECK(gray_tiles.at(5, 1) == 255);

  // Two-channel kernels: one kernel per row, its channels normalised together.
  const Tensor two = tensor({0, 4, 1, 2, 7, 7}, {3, 2, 1, 1});
  const Image rows = io::kernel_grid(two, KernelGridOptions().scale(2).separator(0));
  REQUIRE(rows.width == 4);
  REQUIRE(rows.height == 6);
  CHECK(rows.at(1, 1) == 0);
  CHECK(rows.at(2, 1) == 255);
  CHECK(rows.at(0, 2) == 0);
  CHECK(rows.at(3, 3) == 255);
  CHECK(rows.at(0, 5) == 128);
  CHECK(rows.at(3, 4) == 128);

  // An explicit column count, with the unused slot left in the separator's colour.
  const Image wide =
      io::kernel_grid(tensor({1, 2, 3}, {3, 1, 1, 1}),
                      KernelGridOptions().columns(2).scale(1).separator(1).separator_value(9));
  REQUIRE(wide.width == 5);
  REQUIRE(wide.height == 5);
  CHECK(wide.at(1, 1) == 128);  // each one-pixel kernel is constant
  CHECK(wide.at(3, 3) == 9);    // the fourth slot is empty
}

TEST_CASE("kernel_grid copes with non-finite values and refuses other tensors", "[png]") {
  const double inf = std::numeric_limits<double>::infinity();
  const Tensor w = tensor({std::nan(""), -inf, 1.0, inf, 2.0, 3.0}, {1, 1, 1, 6}, kFloat64);
  const Image image = io::kernel_grid(w, KernelGridOptions().scale(1).separator(0));
  REQUIRE(image.pixels == std::vector<std::uint8_t>{0, 0, 0, 255, 128, 255});

  CT_REQUIRE_ERROR(io::kernel_grid(zeros({2, 3, 3})),
                   "kernel_grid: expected a conv weight [K, C, kh, kw], got [2, 3, 3]");
  CT_REQUIRE_ERROR(io::kernel_grid(zeros({2, 1, 3, 3}, kInt64)),
                   "kernel_grid: expected a float32 or float64 weight, got int64");
  CT_REQUIRE_ERROR(io::kernel_grid(zeros({2, 1, 3, 3}), KernelGridOptions().scale(0)),
                   "kernel_grid: expected scale >= 1, got 0");
  CT_REQUIRE_ERROR(io::kernel_grid(zeros({0, 1, 3, 3})),
                   "kernel_grid: expected a non-empty weight");
}
