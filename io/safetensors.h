// safetensors files: named tensors in the format that PyTorch (`safetensors.torch.save_file`),
// JAX and the model hubs share, so that a PyTorch model's `state_dict()` loads into the equivalent
// convtape model and back.
//
// Format. Integers are little-endian; offsets and sizes are in bytes.
//
//   offset   size  field
//   0        8     u64 header length N
//   8        N     header: UTF-8 JSON, one object (trailing spaces allowed; the writer pads N to
//                  a multiple of 8 so that the data starts aligned)
//   8 + N    rest  data: every tensor's elements, contiguous, row-major, little-endian
//
// The header maps each tensor's name to {"dtype": "F32", "shape": [2, 3], "data_offsets":
// [begin, end]}, the offsets relative to the first data byte, plus an optional "__metadata__"
// object of string keys to string values. The tensors' byte ranges must cover the data exactly:
// no gaps, no overlaps, nothing after the last one.
//
// save_safetensors writes F32, F64 and I64 (convtape's float32, float64 and int64), in the
// StateDict's order, through io::AtomicFile (io/file.h; crash-safe as save_checkpoint: the real
// name holds the old file or the complete new one). Tensors of any device and strides are written
// from their current values as contiguous host data. Names must be unique, UTF-8 and not
// "__metadata__"; metadata keys and values must be UTF-8.
//
// load_safetensors reads F32, F64 and I64 as they are, and F16 and BF16 converted to float32
// (exactly: every half and bfloat16 value, subnormals, infinities and NaNs included, is a float32
// value). Other dtypes of the format (BOOL, U8, I32, F8_E4M3, ...) are refused by name. The
// tensors come in the order of their data in the file (which is the StateDict's order for a file
// save_safetensors wrote). The reader refuses anything but a regular file before it can block on
// it, and checks the whole header before it allocates anything sized by the file: at least 8
// bytes; N at most kMaxSafetensorsHeader and inside the file; JSON that parses to an object; each
// entry an object with exactly dtype (a known name), shape (at most 64 non-negative integers whose
// element count and strides fit in 63 bits and byte count in 64) and data_offsets (two integers,
// begin <= end, inside the data); no name twice; a byte range of exactly numel * element size;
// ranges that tile the data; __metadata__ an object of strings. Each failure throws a
// convtape::Error naming the file and the tensor: "load_safetensors: expected dtype F32, F64, I64,
// F16 or BF16 for tensor \"fc.weight\", got \"I32\" in model.safetensors". The tensors then hold
// at most the data's bytes (twice that for F16 / BF16, which grow to float32); besides them only
// the header (its bytes and the entries parsed from it) and, for F16 / BF16, one tensor's raw data
// at a time are held.
//
// Modules: save_safetensors(model, path) and load_safetensors(model, path) take anything with
// state_dict() / load_state_dict(dict) (nn::Module, whose load checks every name, shape and dtype
// before it writes anything). A PyTorch model's names are convtape's: "0.weight",
// "1.running_mean", "1.num_batches_tracked" (int64 in both), so the same architecture built from
// nn::Sequential, nn::Conv2d, nn::Linear, nn::BatchNorm2d loads PyTorch's file as it is.
#pragma once

#include <concepts>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <utility>

#include "core/state_dict.h"

namespace convtape::io {

// The largest header the reader accepts (a header is names, shapes and offsets: a model with
// a million tensors needs about a tenth of this).
inline constexpr std::uint64_t kMaxSafetensorsHeader = 100'000'000;

using SafetensorsMetadata = std::map<std::string, std::string>;

struct Safetensors {
  StateDict tensors;             // in the order of their data in the file
  SafetensorsMetadata metadata;  // the header's "__metadata__", empty when it has none
};

void save_safetensors(const StateDict& tensors, const std::string& path,
                      const SafetensorsMetadata& metadata = {});

// The tensors of the file.
StateDict load_safetensors(const std::string& path);
// The tensors and the metadata.
Safetensors read_safetensors(const std::string& path);
// The metadata alone: reads and checks the header (against the file's size), not the data.
SafetensorsMetadata load_safetensors_metadata(const std::string& path);
// read_safetensors from bytes in memory (a fuzz target's entry point); `name` stands for the file
// in error messages.
Safetensors read_safetensors_bytes(std::span<const std::uint8_t> bytes, const std::string& name);

// Anything that has a state dict: nn::Module, optim::Optimizer.
template <class M>
concept HasStateDict = requires(M& m, const StateDict& dict) {
  { std::as_const(m).state_dict() } -> std::convertible_to<StateDict>;
  m.load_state_dict(dict);
};

// A module's state_dict() as a safetensors file.
template <class M>
requires HasStateDict<M>
void save_safetensors(const M& module, const std::string& path,
                      const SafetensorsMetadata& metadata = {}) {
  save_safetensors(module.state_dict(), path, metadata);
}

// The file's tensors into the module through its load_state_dict: for nn::Module every name,
// shape and dtype must match (a float32 model takes F32, F16 and BF16 files).
template <class M>
requires HasStateDict<M>
void load_safetensors(M& module, const std::string& path) {
  module.load_state_dict(load_safetensors(path));
}

}  // namespace convtape::io
