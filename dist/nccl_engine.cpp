// The NCCL engine of dist/engine.h, built alone as libconvtape_nccl.so (dist/nccl_loader.cpp opens
// it at the first collective on a CUDA tensor, so CPU-only users of dist/ never load CUDA or NCCL).
// One communicator per process group and device. Collectives are enqueued on the device's legacy
// default stream: every convtape CUDA kernel, cuBLAS and cuDNN call and copy runs there
// (<<<grid, block>>> without a stream, nvcc's default --default-stream legacy; cuda/allocator.h
// relies on it), so a collective is ordered after the kernels that wrote its input, and the caching
// allocator's "one stream" rule still holds. The engine's calls are blocking: each waits for its
// collective (an event recorded behind it, not the whole stream) while polling the communicator's
// asynchronous error, so a failed peer ends the wait with an Error and an aborted communicator
// instead of a hang.
#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "core/error.h"
#include "dist/engine.h"

namespace convtape::dist {

namespace {

// Not a constant: cudaStreamLegacy is a cast, and the design allows no static initialisers. Named
// explicitly rather than as 0, so the engine stays on the kernels' stream even if this file were
// ever compiled with a per-thread default stream.
cudaStream_t kernel_stream() {
  return cudaStreamLegacy;
}

std::string nccl_text(ncclResult_t rc, ncclComm_t comm) {
  std::string text = ncclGetErrorString(rc);
  // NCCL's detail of its last failure on this thread (comm may be null: init failures).
  const char* last = ncclGetLastError(comm);
  if (last && *last) text += fmt::format(": {}", last);
  return text;
}

void nccl_check(ncclResult_t rc, const char* op, const char* call, ncclComm_t comm = nullptr) {
  CT_CHECK(rc == ncclSuccess, "{}: expected {} to succeed, got the NCCL error '{}'", op, call,
           nccl_text(rc, comm));
}

void cuda_check(cudaError_t rc, const char* op, const char* call) {
  CT_CHECK(rc == cudaSuccess, "{}: expected {} to succeed, got {} ({})", op, call,
           cudaGetErrorName(rc), cudaGetErrorString(rc));
}

ncclDataType_t nccl_type(const char* op, DType dtype) {
  switch (dtype) {
    case kFloat32:
      return ncclFloat;
    case kFloat64:
      return ncclDouble;
    case kInt64:
      return ncclInt64;
  }
  CT_FAIL("{}: expected float32, float64 or int64, got {}", op, dtype_name(dtype));
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum:
      return ncclSum;
    case ReduceOp::Mean:
      return ncclAvg;  // int64: the sum divided, truncated, as on MPI
    case ReduceOp::Max:
      return ncclMax;
  }
  CT_FAIL("all_reduce: expected sum, mean or max, got operation {}", static_cast<int>(op));
}

std::size_t nccl_count(const char* op, std::int64_t count) {
  CT_CHECK(count >= 0, "{}: expected a non-negative element count, got {}", op, count);
  return static_cast<std::size_t>(count);
}

class NcclEngine final : public Engine {
 public:
  NcclEngine(ncclComm_t comm, cudaEvent_t done, int device)
      : comm_(comm), done_(done), device_(device) {}
  NcclEngine(const NcclEngine&) = delete;
  NcclEngine& operator=(const NcclEngine&) = delete;

  // Runs on the thread that ends the group (dist::finalize's caller), whose current device it
  // leaves as it found it.
  ~NcclEngine() override {
    int previous = -1;
    const bool restore = cudaGetDevice(&previous) == cudaSuccess && previous != device_;
    cudaSetDevice(device_);
    if (!aborted_) {
      ncclResult_t async = ncclSuccess;
      // A communicator that reported an error may have collectives stuck on a dead peer:
      // destroying it would wait for them; aborting does not.
      if (ncclCommGetAsyncError(comm_, &async) != ncclSuccess || async != ncclSuccess)
        ncclCommAbort(comm_);
      else
        ncclCommDestroy(comm_);
    }
    cudaEventDestroy(done_);
    if (restore) cudaSetDevice(previous);
  }

  const char* name() const override { return "NCCL"; }

  void all_reduce(void* data, std::int64_t count, DType dtype, ReduceOp op) override {
    const std::size_t n = nccl_count("all_reduce", count);
    if (n == 0) return;
    begin("all_reduce");
    nccl_check(ncclAllReduce(data, data, n, nccl_type("all_reduce", dtype), nccl_op(op), comm_,
                             kernel_stream()),
               "all_reduce", "ncclAllReduce", comm_);
    finish("all_reduce");
  }

  void broadcast(void* data, std::int64_t count, DType dtype, int root) override {
    const std::size_t n = nccl_count("broadcast", count);
    if (n == 0) return;
    begin("broadcast");
    nccl_check(
        ncclBroadcast(data, data, n, nccl_type("broadcast", dtype), root, comm_, kernel_stream()),
        "broadcast", "ncclBroadcast", comm_);
    finish("broadcast");
  }

  void all_gather(const void* in, void* out, std::int64_t count, DType dtype) override {
    const std::size_t n = nccl_count("all_gather", count);
    if (n == 0) return;
    begin("all_gather");
    nccl_check(ncclAllGather(in, out, n, nccl_type("all_gather", dtype), comm_, kernel_stream()),
               "all_gather", "ncclAllGather", comm_);
    finish("all_gather");
  }

 private:
  // The group's one thread may serve engines of several devices: each call makes its own current
  // (the legacy stream is the current device's).
  void begin(const char* op) {
    CT_CHECK(!aborted_,
             "{}: expected a working NCCL communicator, got one aborted after an earlier error: {}",
             op, abort_why_);
    cuda_check(cudaSetDevice(device_), op, "cudaSetDevice");
  }

  // Waits for the collective just enqueued. Spins briefly (small collectives finish in
  // microseconds), then sleeps between polls; between polls, asks NCCL whether the communicator
  // failed (a peer died, a network error), which would otherwise leave the kernel waiting forever.
  void finish(const char* op) {
    cuda_check(cudaEventRecord(done_, kernel_stream()), op, "cudaEventRecord");
    const auto start = std::chrono::steady_clock::now();
    for (;;) {
      const cudaError_t rc = cudaEventQuery(done_);
      if (rc == cudaSuccess) break;
      if (rc != cudaErrorNotReady) cuda_check(rc, op, "cudaEventQuery");
      check_async(op);
      if (std::chrono::steady_clock::now() - start < std::chrono::microseconds(200))
        std::this_thread::yield();
      else
        std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    check_async(op);
  }

  void check_async(const char* op) {
    ncclResult_t async = ncclSuccess;
    nccl_check(ncclCommGetAsyncError(comm_, &async), op, "ncclCommGetAsyncError", comm_);
    if (async == ncclSuccess || async == ncclInProgress) return;
    abort_why_ = nccl_text(async, comm_);
    aborted_ = true;
    ncclCommAbort(comm_);  // also ends this rank's kernels still waiting on the failed peer
    CT_FAIL(
        "{}: expected the NCCL communicator to stay healthy, got the asynchronous NCCL error "
        "'{}' (the communicator is aborted)",
        op, abort_why_);
  }

  ncclComm_t comm_;
  cudaEvent_t done_;
  int device_;
  bool aborted_ = false;
  std::string abort_why_;
};

void unique_id(std::uint8_t* out, std::size_t capacity, std::size_t* size) {
  static_assert(sizeof(ncclUniqueId) == NCCL_UNIQUE_ID_BYTES);
  CT_CHECK(out && size && capacity >= sizeof(ncclUniqueId),
           "dist: expected room for NCCL's {}-byte unique id, got {} bytes", sizeof(ncclUniqueId),
           capacity);
  ncclUniqueId id;
  nccl_check(ncclGetUniqueId(&id), "dist", "ncclGetUniqueId");
  std::memcpy(out, &id, sizeof id);
  *size = sizeof id;
}

Engine* create(const std::uint8_t* id, std::size_t size, int rank, int world, int device) {
  CT_CHECK(id && size == sizeof(ncclUniqueId),
           "dist: expected a NCCL unique id of {} bytes, got {}", sizeof(ncclUniqueId),
           id ? size : 0);
  CT_CHECK(world >= 1 && rank >= 0 && rank < world,
           "dist: expected a rank in [0, {}) for the NCCL communicator, got {}", world, rank);
  int devices = 0;
  cuda_check(cudaGetDeviceCount(&devices), "dist", "cudaGetDeviceCount");
  CT_CHECK(device >= 0 && device < devices,
           "dist: expected a CUDA device index in [0, {}) for the NCCL communicator, got {}",
           devices, device);
  // ncclCommInitRank binds the communicator to the current device.
  cuda_check(cudaSetDevice(device), "dist", "cudaSetDevice");
  cudaEvent_t done = nullptr;
  cuda_check(cudaEventCreateWithFlags(&done, cudaEventDisableTiming), "dist",
             "cudaEventCreateWithFlags");
  ncclUniqueId uid;
  std::memcpy(&uid, id, sizeof uid);
  ncclComm_t comm = nullptr;
  const ncclResult_t rc = ncclCommInitRank(&comm, world, uid, rank);
  if (rc != ncclSuccess) {
    const std::string text = nccl_text(rc, comm);
    if (comm) ncclCommAbort(comm);
    cudaEventDestroy(done);
    CT_FAIL(
        "dist: expected ncclCommInitRank (rank {} of {}, CUDA device {}) to succeed, got the "
        "NCCL error '{}'",
        rank, world, device, text);
  }
  return new NcclEngine(comm, done, device);
}

}  // namespace

}  // namespace convtape::dist

extern "C" __attribute__((visibility("default"))) const convtape::dist::NcclEntry*
convtape_nccl_engine() {
  static const convtape::dist::NcclEntry entry{convtape::dist::kNcclEngineAbi,
                                               &convtape::dist::unique_id, &convtape::dist::create};
  return &entry;
}
