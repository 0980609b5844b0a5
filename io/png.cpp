// PNG encoding (chunks, CRCs and deflate from zlib) and the kernel-grid layout.
#include "io/png.h"

#include <zlib.h>

#include <cmath>
#include <limits>

#include "core/autograd.h"
#include "io/file.h"

namespace convtape::io {

namespace {

constexpr std::uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
constexpr std::int64_t kMaxSide = std::numeric_limits<std::int32_t>::max();  // PNG's limit

void put_u32_be(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int i = 3; i >= 0; --i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

// Length, type, data, then the CRC-32 of type and data.
void put_chunk(std::vector<std::uint8_t>& out, const char (&type)[5], const std::uint8_t* data,
               std::size_t nbytes) {
  CT_CHECK(nbytes <= static_cast<std::size_t>(kMaxSide),
           "encode_png: expected a chunk shorter than 2^31 bytes, got {} bytes of {}", nbytes,
           type);
  put_u32_be(out, static_cast<std::uint32_t>(nbytes));
  const std::size_t start = out.size();
  out.insert(out.end(), type, type + 4);
  if (nbytes > 0) out.insert(out.end(), data, data + nbytes);
  const uLong crc = crc32_z(0, out.data() + start, static_cast<z_size_t>(out.size() - start));
  put_u32_be(out, static_cast<std::uint32_t>(crc));
}

}  // namespace

Image::Image(std::int64_t w, std::int64_t h, std::int64_t c, std::uint8_t fill)
    : width(w), height(h), channels(c) {
  CT_CHECK(w >= 0 && h >= 0 && (c == 1 || c == 3),
           "image: expected width, height >= 0 and 1 or 3 channels, got {} x {} x {}", w, h, c);
  pixels.assign(static_cast<std::size_t>(w * h * c), fill);
}

std::vector<std::uint8_t> encode_png(const Image& image) {
  const std::int64_t w = image.width, h = image.height, c = image.channels;
  CT_CHECK(w >= 1 && h >= 1 && w <= kMaxSide && h <= kMaxSide,
           "encode_png: expected width and height in [1, 2^31 - 1], got {} x {}", w, h);
  CT_CHECK(c == 1 || c == 3, "encode_png: expected 1 (gray) or 3 (RGB) channels, got {}", c);
  const std::int64_t row = w * c;
  CT_CHECK(row < kMaxSide && static_cast<std::int64_t>(image.pixels.size()) / row == h &&
               static_cast<std::int64_t>(image.pixels.size()) % row == 0,
           "encode_png: expected {} x {} x {} = {} pixel bytes, got {}", w, h, c, row * h,
           image.pixels.size());

  // Each scanline starts with its filter type; 0 (None) leaves the bytes as they are.
  std::vector<std::uint8_t> raw(static_cast<std::size_t>((row + 1) * h));
  for (std::int64_t y = 0; y < h; ++y) {
    std::uint8_t* line = raw.data() + y * (row + 1);
    line[0] = 0;
    std::copy_n(image.pixels.data() + y * row, row, line + 1);
  }
  uLongf packed_size = compressBound(static_cast<uLong>(raw.size()));
  std::vector<std::uint8_t> packed(packed_size);
  const int status = compress2(packed.data(), &packed_size, raw.data(),
                               static_cast<uLong>(raw.size()), Z_DEFAULT_COMPRESSION);
  CT_CHECK(status == Z_OK, "encode_png: expected zlib's compress2 to succeed, got status {}",
           status);

  std::vector<std::uint8_t> ihdr;
  put_u32_be(ihdr, static_cast<std::uint32_t>(w));
  put_u32_be(ihdr, static_cast<std::uint32_t>(h));
  ihdr.push_back(8);               // bits per sample
  ihdr.push_back(c == 1 ? 0 : 2);  // colour type: gray or RGB
  ihdr.push_back(0);               // compression: deflate
  ihdr.push_back(0);               // filter method: adaptive (per-line filter bytes)
  ihdr.push_back(0);               // no interlace

  std::vector<std::uint8_t> png(kSignature, kSignature + 8);
  put_chunk(png, "IHDR", ihdr.data(), ihdr.size());
  put_chunk(png, "IDAT", packed.data(), packed_size);
  put_chunk(png, "IEND", nullptr, 0);
  return png;
}

void write_png(const std::string& path, const Image& image) {
  const std::vector<std::uint8_t> png = encode_png(image);
  write_file_atomically(path, png.data(), png.size(), "write_png");
}

Image kernel_grid(const Tensor& weight, const KernelGridOptions& options) {
  CT_CHECK(weight.defined() && weight.dim() == 4,
           "kernel_grid: expected a conv weight [K, C, kh, kw], got {}",
           weight.defined() ? to_string(weight.shape()) : std::string("an undefined tensor"));
  CT_CHECK(weight.is_floating_point(), "kernel_grid: expected a float32 or float64 weight, got {}",
           dtype_name(weight.dtype()));
  const std::int64_t scale = options.scale(), sep = options.separator();
  CT_CHECK(scale >= 1, "kernel_grid: expected scale >= 1, got {}", scale);
  CT_CHECK(sep >= 0, "kernel_grid: expected separator >= 0, got {}", sep);
  CT_CHECK(options.columns() >= 0, "kernel_grid: expected columns >= 0, got {}", options.columns());
  const std::int64_t k = weight.size(0), c = weight.size(1), kh = weight.size(2),
                     kw = weight.size(3);
  CT_CHECK(k >= 1 && c >= 1 && kh >= 1 && kw >= 1,
           "kernel_grid: expected a non-empty weight, got {}", to_string(weight.shape()));

  NoGradGuard no_grad;
  const std::vector<double> v = weight.detach().cpu().to(kFloat64).to_vector<double>();
  const bool colour = c == 3 && options.rgb();
  const std::int64_t channels = colour ? 3 : 1;
  // Layout in tiles: colour kernels and C = 1 fill a near-square grid; otherwise a row per kernel.
  const std::int64_t tiles = colour ? k : k * c;
  std::int64_t cols = options.columns();
  if (cols == 0 && !colour && c > 1) cols = c;
  if (cols == 0) {
    cols = 1;
    while (cols * cols < k) ++cols;
  }
  const std::int64_t rows = (tiles + cols - 1) / cols;
  const std::int64_t tile_w = kw * scale, tile_h = kh * scale;
  const std::int64_t width = cols * tile_w + (cols + 1) * sep;
  const std::int64_t height = rows * tile_h + (rows + 1) * sep;
  CT_CHECK(width <= kMaxSide && height <= kMaxSide,
           "kernel_grid: expected an image within PNG's 2^31 - 1 limit, got {} x {}", width,
           height);
  Image image(width, height, channels, options.separator_value());

  const std::int64_t per_kernel = c * kh * kw;
  for (std::int64_t ki = 0; ki < k; ++ki) {
    const double* kernel = v.data() + ki * per_kernel;
    // The range of the finite values; halves keep hi - lo finite for any finite pair.
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (std::int64_t i = 0; i < per_kernel; ++i) {
      if (!std::isfinite(kernel[i])) continue;
      lo = std::min(lo, kernel[i] / 2);
      hi = std::max(hi, kernel[i] / 2);
    }
    const auto level = [&](double x) -> std::uint8_t {
      if (std::isnan(x)) return 0;
      if (std::isinf(x)) return x > 0 ? 255 : 0;
      if (!(hi > lo)) return 128;
      return static_cast<std::uint8_t>(std::lround((x / 2 - lo) / (hi - lo) * 255.0));
    };
    for (std::int64_t ci = 0; ci < c; ++ci) {
      const std::int64_t tile = colour ? ki : ki * c + ci;
      const std::int64_t x0 = sep + (tile % cols) * (tile_w + sep);
      const std::int64_t y0 = sep + (tile / cols) * (tile_h + sep);
      const std::int64_t channel = colour ? ci : 0;
      for (std::int64_t y = 0; y < tile_h; ++y)
        for (std::int64_t x = 0; x < tile_w; ++x)
          image.at(x0 + x, y0 + y, channel) = level(kernel[(ci * kh + y / scale) * kw + x / scale]);
    }
  }
  return image;
}

}  // namespace convtape::io
