// Checkpoints: a model's state and an optimizer's state in one file, saved crash-safely and
// validated in full before anything is built from it.
//
// File format, version 1. Integers are little-endian; offsets and sizes are in bytes.
//
//   offset       size  field
//   0            8     magic "CTCKPT\r\n" (43 54 43 4b 50 54 0d 0a; the CR LF catches text-mode
//                      line-ending conversion)
//   8            4     u32 format version, 1
//   12           4     u32 header length H
//   16           8     u64 payload length P
//   24           H     header (below)
//   24 + H       P     payload: every tensor's elements, row-major and contiguous, little-endian
//   24 + H + P   4     u32 CRC-32 (zlib's crc32, as in PNG and gzip) of bytes [0, 24 + H + P)
//
// Header:
//   u32 section count (version 1 writes 2: "model", then "optimizer")
//   per section:
//     u32 name length, then the name's bytes (no terminator)
//     u32 entry count
//     per entry, in StateDict order:
//       u32 name length, then the name's bytes ("features.0.weight")
//       u8  dtype code: 0 float32, 1 float64, 2 int64
//       u8  rank R, at most 64
//       R x i64 dims
//       u64 offset of the tensor's data in the payload
//       u64 size of that data (the product of the dims times the element size)
// The writer lays the tensors out back to back in header order; the reader accepts any offsets
// that lie inside the payload. A later format version may add sections (a scheduler's or the data
// loader's state, for example); it gets a new version number, and version 1 readers refuse it.
//
// save_checkpoint writes through io::AtomicFile (io/file.h): a unique temporary in the target's
// folder (O_EXCL | O_NOFOLLOW, a random name), fsync, rename over path, fsync of the folder. A
// crash never leaves a partial file under the real name, concurrent saves to one path from threads
// or processes each succeed and leave one complete file, and the temporaries of writers that died
// are removed by the next save of the same path. Tensors are saved from their current values (CUDA
// tensors are copied to the host, views are saved contiguous); names must be unique within a
// section.
//
// load_checkpoint refuses anything but a regular file before it can block on it (a FIFO, a
// device), reads the whole file and checks, before it builds any tensor: the size, the
// magic, the version, the CRC-32, the header's bounds, each dtype code and rank, and that every
// entry's data lies inside the payload and has the size its shape says. Each failure throws a
// convtape::Error naming the file and what is wrong ("load_checkpoint: expected format version
// <= 1, got 7 in model.ckpt").
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "core/state_dict.h"

namespace convtape::io {

inline constexpr std::uint32_t kCheckpointVersion = 1;

struct Checkpoint {
  StateDict model;      // Module::state_dict(): parameters and buffers
  StateDict optimizer;  // Optimizer::state_dict(): hyper-parameters, step counts, moments
};

void save_checkpoint(const std::string& path, const Checkpoint& checkpoint);
Checkpoint load_checkpoint(const std::string& path);
// The same checks and result from bytes in memory (a fuzz target's entry point); `name` stands for
// the file in error messages.
Checkpoint load_checkpoint_bytes(std::span<const std::uint8_t> bytes, const std::string& name);

// Checks that `loaded` can be copied into `expected` entry by entry: the same names (order does
// not matter), each with the same shape and dtype. Throws on the first difference, naming the
// entry, with `what` as the message's prefix: "load_state_dict: expected \"fc.weight\" with shape
// [10, 128], got [10, 64]". Loaders call it before they copy anything.
void check_compatible(const StateDict& expected, const StateDict& loaded, const std::string& what);

}  // namespace convtape::io
