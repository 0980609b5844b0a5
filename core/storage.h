// Storage: one reference-counted block of memory on one device. Tensors and their views share it.
// The block is released through the deleter it was created with, so core/ needs no backend code;
// the allocation functions for each device live with that backend (CPU here, CUDA in cuda/).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/device.h"

namespace convtape {

class Storage {
 public:
  using Deleter = void (*)(void* data, Device device) noexcept;

  Storage(void* data, std::size_t nbytes, Device device, Deleter deleter);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  // A CPU block aligned to 64 bytes, uninitialised.
  static std::shared_ptr<Storage> allocate_cpu(std::size_t nbytes);

  void* data() const noexcept { return data_; }
  std::size_t nbytes() const noexcept { return nbytes_; }
  Device device() const noexcept { return device_; }

  // Bumped by every in-place write, so that autograd can tell when a saved tensor was modified.
  std::uint64_t version() const noexcept { return version_; }
  void bump_version() noexcept { ++version_; }

 private:
  void* data_;
  std::size_t nbytes_;
  Device device_;
  Deleter deleter_;
  std::uint64_t version_ = 0;
};

// Live storage and autograd-node counts; used to prove that training loops do not leak.
struct MemoryStats {
  std::int64_t cpu_bytes = 0;
  std::int64_t cpu_peak_bytes = 0;
  std::int64_t cuda_bytes = 0;
  std::int64_t storages = 0;
  std::int64_t autograd_nodes = 0;
  std::int64_t workspace_bytes = 0;   // kernel scratch (GEMM packing buffers) held by all threads
  std::int64_t cpu_cached_bytes = 0;  // freed host blocks kept for reuse (not in cpu_bytes)
};
MemoryStats memory_stats();
void reset_peak_memory_stats();

// Host blocks of 256 KiB and more are not returned to the system when their storage dies: they
// wait, up to a limit of cached bytes (1 GiB by default, or CONVTAPE_CPU_CACHE_MB from the
// environment), for a later allocation of about the same size (a block is reused for requests of
// 8/9 of its size and up). Training loops allocate the same shapes every step, and a fresh block
// page-faults all of its pages in again. empty_cache() returns the cached blocks to the system;
// set_cpu_cache_limit(0) turns the cache off.
void empty_cache();
void set_cpu_cache_limit(std::int64_t bytes);
std::int64_t cpu_cache_limit();

namespace detail {
void count_node(int delta) noexcept;
void count_workspace(std::int64_t delta) noexcept;
}  // namespace detail

}  // namespace convtape
