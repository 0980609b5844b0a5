// The engines under a process group: one interface over raw memory, implemented by MPI (CPU memory,
// dist/process_group.cpp) and by NCCL (CUDA memory, dist/nccl_engine.cpp in libconvtape_nccl.so).
// Every call is blocking and made from the process group's own thread, in the order the caller
// issued the collectives; it throws convtape::Error naming the collective and the engine's message.
#pragma once

#include <cstdint>
#include <memory>

#include "core/dtype.h"
#include "dist/process_group.h"

namespace convtape::dist {

class Engine {
 public:
  virtual ~Engine() = default;
  virtual const char* name() const = 0;  // "MPI", "NCCL"
  // count elements of dtype at data (CPU or device memory, as the engine expects).
  virtual void all_reduce(void* data, std::int64_t count, DType dtype, ReduceOp op) = 0;
  virtual void broadcast(void* data, std::int64_t count, DType dtype, int root) = 0;
  // out holds size() * count elements: rank r's in lands at out + r * count.
  virtual void all_gather(const void* in, void* out, std::int64_t count, DType dtype) = 0;
};

// The NCCL engine of a group for CUDA device `device`: opens libconvtape_nccl.so (beside
// libconvtape_dist.so, or CONVTAPE_NCCL_ENGINE), then builds a communicator whose unique id rank 0
// makes and broadcasts over the group's MPI engine. Throws when the library is missing (a build
// without CUDA or NCCL) or refuses.
std::unique_ptr<Engine> open_nccl_engine(ProcessGroup& group, Engine& bootstrap, int device);

// What libconvtape_nccl.so exports: "convtape_nccl_engine", a function returning its entry points.
// kNcclEngineAbi guards against a library of another version.
inline constexpr std::uint64_t kNcclEngineAbi = 0x6e63636c00000001ULL;  // "nccl", version 1
struct NcclEntry {
  std::uint64_t abi;
  // Writes NCCL's unique id (its bytes) for rank 0 to broadcast.
  void (*unique_id)(std::uint8_t* out, std::size_t capacity, std::size_t* size);
  // The engine for (rank, size) on CUDA device `device`, from the broadcast id.
  Engine* (*create)(const std::uint8_t* id, std::size_t size, int rank, int world, int device);
};

}  // namespace convtape::dist
