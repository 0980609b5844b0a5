// PNG output: 8-bit grayscale and RGB images, encoded with zlib (no other dependency), and a
// helper that lays out a convolution's learned kernels as one grid image.
//
// encode_png writes the signature, IHDR (8-bit, colour type 0 gray or 2 RGB, no interlace), one
// IDAT chunk (the rows, each with filter byte 0, deflated by zlib's compress2) and IEND; every
// chunk carries the CRC-32 of its type and data. write_png saves the same bytes through a
// temporary file and a rename, so a crash never leaves a partial image.
//
// kernel_grid(weight [K, C, kh, kw]) draws one tile per kernel, min-max normalised over its
// C x kh x kw values to 0..255 (a constant kernel is mid-gray; NaN and -inf are black, +inf
// white) and
// upscaled by an integer factor (nearest neighbour). With C = 3 each tile is an RGB image of the
// kernel's channels; otherwise each channel is a grayscale tile and a kernel's C tiles sit side by
// side, one kernel per row (C = 1: the kernels fill a near-square grid, row by row). Tiles are
// separated, and framed, by lines `separator` pixels wide.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace convtape::io {

// Row-major, interleaved pixels: pixels[(y * width + x) * channels + c].
struct Image {
  std::int64_t width = 0;
  std::int64_t height = 0;
  std::int64_t channels = 1;  // 1 gray, 3 RGB
  std::vector<std::uint8_t> pixels;

  Image() = default;
  Image(std::int64_t w, std::int64_t h, std::int64_t c, std::uint8_t fill = 0);
  std::uint8_t& at(std::int64_t x, std::int64_t y, std::int64_t c = 0) {
    return pixels[static_cast<std::size_t>((y * width + x) * channels + c)];
  }
  std::uint8_t at(std::int64_t x, std::int64_t y, std::int64_t c = 0) const {
    return pixels[static_cast<std::size_t>((y * width + x) * channels + c)];
  }
};

// The PNG file's bytes. Checks 1 <= width, height < 2^31, channels 1 or 3 and the pixel count.
std::vector<std::uint8_t> encode_png(const Image& image);
void write_png(const std::string& path, const Image& image);

class KernelGridOptions {
 public:
  // Each kernel pixel becomes scale x scale image pixels.
  KernelGridOptions& scale(std::int64_t s) {
    scale_ = s;
    return *this;
  }
  // Tiles per row; 0 (the default) puts one kernel per row when its C channels are grayscale
  // tiles, and otherwise picks ceil(sqrt(K)).
  KernelGridOptions& columns(std::int64_t c) {
    columns_ = c;
    return *this;
  }
  // Width of the lines between and around tiles, and their gray level.
  KernelGridOptions& separator(std::int64_t width) {
    separator_ = width;
    return *this;
  }
  KernelGridOptions& separator_value(std::uint8_t v) {
    separator_value_ = v;
    return *this;
  }
  // Draw C = 3 kernels in colour (default) or as three grayscale tiles.
  KernelGridOptions& rgb(bool on) {
    rgb_ = on;
    return *this;
  }

  std::int64_t scale() const { return scale_; }
  std::int64_t columns() const { return columns_; }
  std::int64_t separator() const { return separator_; }
  std::uint8_t separator_value() const { return separator_value_; }
  bool rgb() const { return rgb_; }

 private:
  std::int64_t scale_ = 8;
  std::int64_t columns_ = 0;
  std::int64_t separator_ = 1;
  std::uint8_t separator_value_ = 255;
  bool rgb_ = true;
};

// The grid image of a conv weight [K, C, kh, kw] (float32 or float64, any device).
Image kernel_grid(const Tensor& weight, const KernelGridOptions& options = {});

}  // namespace convtape::io
