// The CUDA API of libconvtape itself (cuda/cuda.h, Device::cuda) and the loader of the CUDA backend
// library (cuda/backend_table.h). Plain C++: this file is part of libconvtape in every build and
// includes no CUDA header; everything that needs the CUDA runtime is in libconvtape_cuda.so, opened
// here on first use.
#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>

#include "core/error.h"
#include "cuda/backend_table.h"
#include "cuda/cuda.h"
#include "cuda/settings.h"

namespace convtape {

namespace cuda {

namespace {

constexpr const char* kLibraryName = "libconvtape_cuda.so";

struct Loaded {
  const BackendTable* table = nullptr;
  std::string why;  // why table is null
  std::string path;
};

// Where the backend library should be: CONVTAPE_CUDA_BACKEND, else beside libconvtape.so.
std::string library_path(std::string& why, bool& from_env) {
  if (const char* env = std::getenv("CONVTAPE_CUDA_BACKEND")) {
    from_env = true;
    if (!*env) why = "CONVTAPE_CUDA_BACKEND is set and empty";
    return env;
  }
  Dl_info info{};
  static const int anchor = 0;
  if (dladdr(&anchor, &info) == 0 || !info.dli_fname || !*info.dli_fname) {
    why = "the folder of libconvtape is unknown";
    return {};
  }
  const std::filesystem::path self = info.dli_fname;
  return (self.parent_path() / kLibraryName).string();
}

Loaded load() {
  Loaded out;
  bool from_env = false;
  out.path = library_path(out.why, from_env);
  if (out.path.empty()) return out;
  std::error_code ec;
  if (!std::filesystem::exists(out.path, ec)) {
    out.why = fmt::format(
        "{} does not exist{}", out.path,
        from_env ? " (named by CONVTAPE_CUDA_BACKEND)" : ": this convtape was built without CUDA");
    return out;
  }
  // RTLD_LOCAL: the CUDA libraries it pulls in stay out of the global symbol scope. The handle is
  // never closed: storages and cached algorithms of the backend may live until exit.
  void* lib = dlopen(out.path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* err = dlerror();
    out.why = fmt::format("{} does not load: {}", out.path, err ? err : "unknown dlopen error");
    return out;
  }
  const auto entry = reinterpret_cast<BackendEntry>(dlsym(lib, kBackendEntry));
  if (!entry) {
    out.why = fmt::format("{} has no {}", out.path, kBackendEntry);
    return out;
  }
  const BackendTable* table = entry();
  if (!table || table->abi != kBackendAbi) {
    out.why =
        fmt::format("{} belongs to another version of convtape (interface {:#x}, expected {:#x})",
                    out.path, table ? table->abi : 0, kBackendAbi);
    return out;
  }
  out.table = table;
  return out;
}

std::once_flag& load_once() {
  static std::once_flag once;
  return once;
}
Loaded& state() {
  static Loaded s;
  return s;
}
std::atomic<bool>& done() {
  static std::atomic<bool> flag{false};
  return flag;
}

const Loaded& loaded() {
  std::call_once(load_once(), [] {
    state() = load();
    done().store(true, std::memory_order_release);
  });
  return state();
}

// The backend if it has been loaded already; never loads it (a program that never asked for a GPU
// has no device memory to report or release).
const BackendTable* if_loaded() noexcept {
  return done().load(std::memory_order_acquire) ? state().table : nullptr;
}

[[noreturn]] void no_backend() {
  CT_FAIL("convtape: this installation has no CUDA backend ({})", loaded().why);
}

[[noreturn]] void no_device(const BackendTable& t) {
  const std::string why = t.runtime.device_error();
  CT_FAIL("convtape: no CUDA device (the CUDA backend {} found none{}{})", loaded().path,
          why.empty() ? "" : ": ", why);
}

}  // namespace

const BackendTable* loaded_backend() noexcept {
  try {
    return loaded().table;
  } catch (...) {  // only std::bad_alloc could get here
    return nullptr;
  }
}

const BackendTable& backend() {
  const BackendTable* t = loaded().table;
  if (!t) no_backend();
  return *t;
}

const BackendTable& backend_for(std::string_view op, Device device) {
  CT_CHECK(device.is_cuda(), "{}: expected a CUDA device, got {}", op, device.str());
  const BackendTable& t = backend();
  const int n = t.runtime.device_count();
  if (n == 0) no_device(t);
  CT_CHECK(device.index() >= 0 && device.index() < n,
           "{}: expected a CUDA device index in [0, {}), got {}", op, n, device.index());
  return t;
}

// ---- cuda/settings.h: here, so that there is one of each per process, whichever side sets them
namespace {
std::atomic<bool>& allow_tf32_flag() {
  static std::atomic<bool> flag{detail::parse_flag(std::getenv("CONVTAPE_ALLOW_TF32"), false)};
  return flag;
}
std::atomic<std::int64_t>& conv_workspace_bytes() {
  static std::atomic<std::int64_t> bytes{
      detail::parse_mib(std::getenv("CONVTAPE_CUDNN_WORKSPACE_MB"), detail::kDefaultConvWorkspace)};
  return bytes;
}
}  // namespace

void set_allow_tf32(bool on) {
  allow_tf32_flag().store(on);
}
bool allow_tf32() {
  return allow_tf32_flag().load();
}
void set_conv_workspace_limit(std::int64_t bytes) {
  conv_workspace_bytes().store(std::max<std::int64_t>(bytes, 0));
}
std::int64_t conv_workspace_limit() {
  return conv_workspace_bytes().load();
}
ConvAlgorithmCache& conv_algorithm_cache() {
  static ConvAlgorithmCache cache;
  return cache;
}
void clear_conv_algorithm_cache() {
  conv_algorithm_cache().clear();
}
std::size_t conv_algorithm_cache_size() {
  return conv_algorithm_cache().size();
}

// ---- cuda/cuda.h
bool has_backend() noexcept {
  return loaded_backend() != nullptr;
}

int device_count() noexcept {
  const BackendTable* t = loaded_backend();
  return t ? t->runtime.device_count() : 0;
}

bool is_available() noexcept {
  return device_count() > 0;
}

std::string unavailable_reason() {
  try {
    backend_for("cuda", Device(DeviceType::CUDA, 0));
    return {};
  } catch (const Error& e) {
    return e.message();
  }
}

std::shared_ptr<Storage> allocate(std::string_view op, std::size_t nbytes, Device device) {
  return backend_for(op, device).runtime.allocate(op, nbytes, device);
}

Tensor empty(const Shape& shape, TensorOptions options) {
  return backend_for("empty", options.device()).runtime.empty(shape, options);
}

void copy(std::string_view op, void* dst, Device dst_device, const void* src, Device src_device,
          std::size_t nbytes) {
  const BackendTable& t = backend_for(op, dst_device.is_cuda() ? dst_device : src_device);
  if (dst_device.is_cuda() && src_device.is_cuda()) backend_for(op, src_device);
  t.runtime.copy(op, dst, dst_device, src, src_device, nbytes);
}

void fill(std::string_view op, void* dst, DType dtype, std::int64_t n, double value,
          Device device) {
  backend_for(op, device).runtime.fill(op, dst, dtype, n, value, device);
}

void synchronize(std::string_view op, Device device) {
  backend_for(op, device).runtime.synchronize(op, device);
}

DeviceMemoryStats memory_stats(Device device) {
  CT_CHECK(device.is_cuda(), "memory_stats: expected a CUDA device, got {}", device.str());
  const BackendTable* t = if_loaded();
  return t ? t->runtime.memory_stats(device) : DeviceMemoryStats{};
}

void reset_peak_memory_stats(Device device) {
  CT_CHECK(device.is_cuda(), "reset_peak_memory_stats: expected a CUDA device, got {}",
           device.str());
  if (const BackendTable* t = if_loaded()) t->runtime.reset_peak_memory_stats(device);
}

void empty_cache() {
  if (const BackendTable* t = if_loaded()) t->runtime.empty_cache();
}

}  // namespace cuda

Device Device::cuda(int index) {
  cuda::backend_for("Device::cuda", Device(DeviceType::CUDA, index));
  return Device(DeviceType::CUDA, index);
}

}  // namespace convtape
