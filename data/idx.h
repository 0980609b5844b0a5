// IDX files (the MNIST family's format), plain or gzipped.
//
// Layout: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
// 0x0E float64), the rank, then one big-endian u32 per dim, then the elements, big-endian,
// row-major. A file that starts with gzip's magic (1f 8b) is inflated, whatever its name.
// read_idx checks the zero bytes, the type code, a rank of 1 to 4 and that the data is exactly
// as long as the dims say; every error names the file. It reads as a stream: the header first,
// then the data's length is computed from the dims (overflow and the largest tensor refused) and
// only then is memory allocated, growing with the bytes that really arrive; inflation stops at the
// declared length plus one byte (trailing data is refused), so a gzip bomb costs nothing. Only a
// regular file is read (a FIFO or a device is refused before it can block).
//
// The elements stay as they were in the file (IdxArray::bytes); to_tensor converts them: images to
// float32 (uint8 pixels times 1/255 give [0, 1]), labels to int64.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/checked.h"
#include "core/tensor.h"

namespace convtape::data {

enum class IdxType : std::uint8_t {
  UInt8 = 0x08,
  Int8 = 0x09,
  Int16 = 0x0B,
  Int32 = 0x0C,
  Float32 = 0x0D,
  Float64 = 0x0E,
};

std::string_view idx_type_name(IdxType type);  // "uint8", "int16", ...
std::size_t idx_type_size(IdxType type);

struct IdxArray {
  IdxType type = IdxType::UInt8;
  Shape dims;
  std::vector<std::uint8_t> bytes;  // the elements as stored: big-endian, row-major

  std::int64_t numel() const { return convtape::numel(dims); }
  // A CPU tensor of shape dims: float32 or float64 holding value * scale, or int64 (integer types
  // only, scale 1).
  Tensor to_tensor(DType dtype, double scale = 1.0) const;
  Tensor to_float_tensor(double scale = 1.0) const { return to_tensor(kFloat32, scale); }
  Tensor to_int64_tensor() const { return to_tensor(kInt64); }
};

// Reads and validates an IDX file, inflating it first when it is gzipped. A header declaring more
// than max_bytes of data (by default the largest tensor) is refused before anything is read; a
// program that reads files it does not trust can set its own budget.
IdxArray read_idx(const std::string& path, std::uint64_t max_bytes = checked::kMaxBytes);
// Parses IDX bytes already in memory, plain or gzipped, with read_idx's checks; `name` stands for
// the file in error messages (a fuzz target's entry point).
IdxArray parse_idx(std::span<const std::uint8_t> bytes, const std::string& name,
                   std::uint64_t max_bytes = checked::kMaxBytes);

}  // namespace convtape::data
