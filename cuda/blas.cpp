// Loading cuBLAS at first use (cuda/blas.h): dlopen of the library CMake found
// (CT_CUBLAS_LIBRARY), else of its soname libcublas.so.<major>, and dlsym of the entry points.
#include "cuda/blas.h"

#include <dlfcn.h>

#include <atomic>
#include <mutex>
#include <string>

#include "core/error.h"

namespace convtape::cuda::blas {

namespace {

std::atomic<const Api*> g_loaded{nullptr};

template <class F>
void bind(void* lib, F& slot, const char* name, std::string& missing) {
  slot = reinterpret_cast<F>(dlsym(lib, name));
  if (!slot) missing += missing.empty() ? name : std::string(", ") + name;
}

// The entry points, or nullptr with why in *error; loads at most once per process.
const Api* load(std::string* error) noexcept {
  if (const Api* a = g_loaded.load(std::memory_order_acquire)) return a;
  static std::mutex mutex;
  static std::string failure;  // why the one attempt failed
  static bool tried = false;
  const std::lock_guard<std::mutex> lock(mutex);
  if (const Api* a = g_loaded.load(std::memory_order_acquire)) return a;
  if (!tried) {
    tried = true;
    try {
      const std::string soname = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);
      void* lib = nullptr;
#ifdef CT_CUBLAS_LIBRARY
      lib = dlopen(CT_CUBLAS_LIBRARY, RTLD_NOW | RTLD_LOCAL);
      if (!lib) failure = std::string(CT_CUBLAS_LIBRARY) + ": " + dlerror() + "; ";
#endif
      if (!lib) lib = dlopen(soname.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (!lib) {
        failure += soname + ": " + dlerror();
      } else {
        static Api a;  // lives as long as the process, as the library does (never dlclose'd)
        std::string missing;
        bind(lib, a.create, "cublasCreate_v2", missing);
        bind(lib, a.destroy, "cublasDestroy_v2", missing);
        bind(lib, a.get_version, "cublasGetVersion_v2", missing);
        bind(lib, a.set_math_mode, "cublasSetMathMode", missing);
        bind(lib, a.sgemm_strided_batched, "cublasSgemmStridedBatched", missing);
        bind(lib, a.dgemm_strided_batched, "cublasDgemmStridedBatched", missing);
        bind(lib, a.get_status_string, "cublasGetStatusString", missing);
        if (missing.empty())
          g_loaded.store(&a, std::memory_order_release);
        else
          failure = soname + " lacks " + missing;
      }
    } catch (...) {
      failure = "out of memory while loading";
    }
  }
  if (error) *error = failure;
  return g_loaded.load(std::memory_order_acquire);
}

}  // namespace

const Api& api(std::string_view op) {
  std::string error;
  const Api* a = load(&error);
  CT_CHECK(a != nullptr, "{}: expected cuBLAS to load, got {}", op, error);
  return *a;
}

const char* status_string(cublasStatus_t status) noexcept {
  const Api* a = load(nullptr);
  return a ? a->get_status_string(status) : "cuBLAS could not be loaded";
}

}  // namespace convtape::cuda::blas
