// The CUDA backend is its own library, libconvtape_cuda.so, which links the CUDA runtime, cuDNN and
// (opened lazily) cuBLAS; libconvtape.so never does. This header is the one contract between them,
// in plain C++: the table of entry points the backend library hands over, one function pointer per
// device function of cuda/cuda.h and per kernel of core/kernels.def (generated from that list, so
// a new kernel needs no line here), and the loader that finds, opens and checks that library the
// first time anything asks for a CUDA device (cuda/api.cpp, part of libconvtape).
//
// Where the library is looked for: the file named by CONVTAPE_CUDA_BACKEND when that is set (an
// empty value means "none", for a CPU-only run of a CUDA installation), else libconvtape_cuda.so in
// the folder libconvtape.so was loaded from (the build folder, or the installation's lib/). No
// registry, no static initialiser: one dlopen, once, under a once-flag.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/device.h"
#include "core/dtype.h"
#include "core/kernel_args.h"
#include "core/storage.h"
#include "core/tensor.h"
#include "cuda/cuda.h"

namespace convtape::cuda {

struct BackendTable {
  // kBackendAbi of the library that filled the table; the loader refuses any other value (a
  // backend library left over from another version of convtape).
  std::uint64_t abi;
  // ---- the device functions of cuda/cuda.h, which cuda/api.cpp forwards here
  struct Runtime {
    int (*device_count)() noexcept;
    // Why device_count() is 0 (the CUDA runtime's own message), or "" when it is not.
    const char* (*device_error)() noexcept;
    std::shared_ptr<Storage> (*allocate)(std::string_view op, std::size_t nbytes, Device device);
    Tensor (*empty)(const Shape& shape, TensorOptions options);
    void (*copy)(std::string_view op, void* dst, Device dst_device, const void* src,
                 Device src_device, std::size_t nbytes);
    void (*fill)(std::string_view op, void* dst, DType dtype, std::int64_t n, double value,
                 Device device);
    void (*synchronize)(std::string_view op, Device device);
    DeviceMemoryStats (*memory_stats)(Device device);
    void (*reset_peak_memory_stats)(Device device);
    void (*empty_cache)();
  } runtime;
  // ---- every kernel of core/kernels.def, with the signature written there
#define CT_DEFAULT(value)
#define CT_KERNEL(Ret, name, Params, Args, first, op) Ret(*name) Params;
#include "core/kernels.def"
#undef CT_KERNEL
#undef CT_DEFAULT
};

namespace detail {
// FNV-1a over text, at compile time.
constexpr std::uint64_t fnv1a(std::string_view text) {
  std::uint64_t h = 14695981039346656037ull;
  for (const char c : text) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  return h;
}
// The kernel list as text: names, parameter lists and result types, so that any change to it
// changes kBackendAbi.
#define CT_DEFAULT(value) = value
#define CT_KERNEL(Ret, name, Params, Args, first, op) #Ret " " #name #Params ";"
inline constexpr char kKernelListText[] =
#include "core/kernels.def"
    "";
#undef CT_KERNEL
#undef CT_DEFAULT
}  // namespace detail

// Version 1 of the table layout, the kernel list and the table's size.
inline constexpr std::uint64_t kBackendAbi =
    detail::fnv1a(detail::kKernelListText) ^ (std::uint64_t{1} << 56) ^ sizeof(BackendTable);

// The backend library's one exported symbol: its filled table (static storage, never null).
inline constexpr const char* kBackendEntry = "convtape_cuda_backend_table";
using BackendEntry = const BackendTable* (*)();

// The loaded backend, loading it on the first call (thread-safe; never throws): nullptr when this
// installation has none, or it does not load, or it is of another version.
const BackendTable* loaded_backend() noexcept;
// The backend's table; otherwise throws "convtape: this installation has no CUDA backend (why)".
const BackendTable& backend();
// The backend's table after checking that `device` is one of its devices; otherwise throws that
// message, "convtape: no CUDA device (why)", or "<op>: expected a CUDA device index in [0, n),
// got i" for a device that is not there.
const BackendTable& backend_for(std::string_view op, Device device);

}  // namespace convtape::cuda
