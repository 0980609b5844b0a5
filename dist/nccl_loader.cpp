// Opens the NCCL engine (libconvtape_nccl.so) for a process group: CONVTAPE_NCCL_ENGINE if set,
// else the library beside libconvtape_dist.so. Rank 0 makes NCCL's unique id, the group's MPI
// engine broadcasts it, and every rank builds its communicator from it.
#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "dist/engine.h"

namespace convtape::dist {

namespace {

std::string engine_path() {
  if (const char* env = std::getenv("CONVTAPE_NCCL_ENGINE")) return env;
  Dl_info info{};
  static const int anchor = 0;
  if (dladdr(&anchor, &info) == 0 || !info.dli_fname || !*info.dli_fname) return {};
  return (std::filesystem::path(info.dli_fname).parent_path() / "libconvtape_nccl.so").string();
}

const NcclEntry* load_entry(std::string& why) {
  const std::string path = engine_path();
  std::error_code ec;
  if (path.empty() || !std::filesystem::exists(path, ec)) {
    why = fmt::format("{} does not exist: this convtape was built without CUDA or NCCL",
                      path.empty() ? std::string("libconvtape_nccl.so") : path);
    return nullptr;
  }
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* err = dlerror();
    why = fmt::format("{} does not load: {}", path, err ? err : "unknown dlopen error");
    return nullptr;
  }
  using Get = const NcclEntry* (*)();
  const auto get = reinterpret_cast<Get>(dlsym(lib, "convtape_nccl_engine"));
  const NcclEntry* entry = get ? get() : nullptr;
  if (!entry || entry->abi != kNcclEngineAbi) {
    why = fmt::format("{} is not a NCCL engine of this convtape version", path);
    return nullptr;
  }
  return entry;
}

}  // namespace

std::unique_ptr<Engine> open_nccl_engine(ProcessGroup& group, Engine& bootstrap, int device) {
  static std::string why;
  static const NcclEntry* entry = load_entry(why);  // the group's thread is the only caller
  // Every rank reaches this point at the same collective; agreeing on whether the engine exists
  // first keeps a rank without it from leaving the others in the id broadcast.
  std::int64_t have = entry ? 1 : 0;
  bootstrap.all_reduce(&have, 1, kInt64, ReduceOp::Sum);
  CT_CHECK(entry, "dist: expected the NCCL engine for collectives on CUDA tensors, got none: {}",
           why);
  CT_CHECK(have == group.size(),
           "dist: expected the NCCL engine on every rank, got it on {} of {} ranks", have,
           group.size());
  std::vector<std::uint8_t> id(512);
  std::size_t size = 0;
  if (group.rank() == 0) entry->unique_id(id.data(), id.size(), &size);
  std::int64_t n = static_cast<std::int64_t>(size);
  bootstrap.broadcast(&n, 1, kInt64, 0);
  CT_CHECK(n > 0 && n <= 512, "dist: expected a NCCL unique id of 1 to 512 bytes, got {}", n);
  // Bytes travel as int64 words: round the buffer up.
  std::vector<std::int64_t> words((static_cast<std::size_t>(n) + 7) / 8);
  if (group.rank() == 0) std::memcpy(words.data(), id.data(), static_cast<std::size_t>(n));
  bootstrap.broadcast(words.data(), static_cast<std::int64_t>(words.size()), kInt64, 0);
  std::memcpy(id.data(), words.data(), static_cast<std::size_t>(n));
  return std::unique_ptr<Engine>(
      entry->create(id.data(), static_cast<std::size_t>(n), group.rank(), group.size(), device));
}

}  // namespace convtape::dist
