// Process groups over MPI: start-up from the launcher's environment, the MPI engine, and the
// group's own thread that runs every collective in the order the caller issued it. The caller's
// thread never enters MPI after init(), so an asynchronous collective progresses while it computes;
// its Work waits on a condition variable with the group's timeout.
#include "dist/process_group.h"

#include <mpi.h>

#include <atomic>
#include <climits>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <thread>
#include <type_traits>

#include <omp.h>

#include "core/autograd.h"
#include "dist/engine.h"
#include "ops/elementwise.h"
#include "ops/factory.h"

namespace convtape::dist {

std::string to_string(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum:
      return "sum";
    case ReduceOp::Mean:
      return "mean";
    case ReduceOp::Max:
      return "max";
  }
  return "?";
}

bool available() noexcept {
  return true;
}

namespace {

std::string mpi_error_string(int rc) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(rc, text, &length) != MPI_SUCCESS) return fmt::format("MPI error {}", rc);
  return std::string(text, static_cast<std::size_t>(length));
}

void mpi_check(int rc, const char* op, const char* call) {
  CT_CHECK(rc == MPI_SUCCESS, "{}: expected {} to succeed, got the MPI error '{}'", op, call,
           mpi_error_string(rc));
}

MPI_Datatype mpi_type(DType dtype) {
  switch (dtype) {
    case kFloat32:
      return MPI_FLOAT;
    case kFloat64:
      return MPI_DOUBLE;
    case kInt64:
      return MPI_INT64_T;
  }
  CT_CHECK(false, "dist: expected float32, float64 or int64, got {}", dtype_name(dtype));
  return MPI_DATATYPE_NULL;
}

// Mean = sum / size: floats multiply by the reciprocal (one vectorised pass; exact for a
// power-of-two size), integers divide (truncating, as NCCL's average does).
template <class T>
void divide(void* data, std::int64_t count, int by) {
  T* p = static_cast<T*>(data);
  if constexpr (std::is_floating_point_v<T>) {
    const T r = T(1) / static_cast<T>(by);
    for (std::int64_t i = 0; i < count; ++i) p[i] *= r;
  } else {
    for (std::int64_t i = 0; i < count; ++i) p[i] = static_cast<T>(p[i] / static_cast<T>(by));
  }
}

// MPI counts are int: longer buffers go in pieces of at most INT_MAX elements.
constexpr std::int64_t kMaxCount = INT_MAX;

class MpiEngine final : public Engine {
 public:
  MpiEngine(MPI_Comm comm, int size) : comm_(comm), size_(size) {}
  const char* name() const override { return "MPI"; }

  void all_reduce(void* data, std::int64_t count, DType dtype, ReduceOp op) override {
    const std::size_t elem = dtype_size(dtype);
    for (std::int64_t at = 0; at < count; at += kMaxCount) {
      const auto n = static_cast<int>(std::min(kMaxCount, count - at));
      mpi_check(MPI_Allreduce(MPI_IN_PLACE, static_cast<char*>(data) + at * elem, n,
                              mpi_type(dtype), op == ReduceOp::Max ? MPI_MAX : MPI_SUM, comm_),
                "all_reduce", "MPI_Allreduce");
    }
    if (op == ReduceOp::Mean && size_ > 1) {
      if (dtype == kFloat32) divide<float>(data, count, size_);
      if (dtype == kFloat64) divide<double>(data, count, size_);
      if (dtype == kInt64) divide<std::int64_t>(data, count, size_);
    }
  }

  void broadcast(void* data, std::int64_t count, DType dtype, int root) override {
    const std::size_t elem = dtype_size(dtype);
    for (std::int64_t at = 0; at < count; at += kMaxCount) {
      const auto n = static_cast<int>(std::min(kMaxCount, count - at));
      mpi_check(MPI_Bcast(static_cast<char*>(data) + at * elem, n, mpi_type(dtype), root, comm_),
                "broadcast", "MPI_Bcast");
    }
  }

  void all_gather(const void* in, void* out, std::int64_t count, DType dtype) override {
    CT_CHECK(count <= kMaxCount,
             "all_gather: expected at most {} elements per rank (MPI's count), got {}", kMaxCount,
             count);
    if (count == 0) return;
    const auto n = static_cast<int>(count);
    mpi_check(MPI_Allgather(in, n, mpi_type(dtype), out, n, mpi_type(dtype), comm_), "all_gather",
              "MPI_Allgather");
  }

  void broadcast_bytes(std::uint8_t* data, std::int64_t n, int root) {
    for (std::int64_t at = 0; at < n; at += kMaxCount) {
      const auto k = static_cast<int>(std::min(kMaxCount, n - at));
      mpi_check(MPI_Bcast(data + at, k, MPI_BYTE, root, comm_), "broadcast_bytes", "MPI_Bcast");
    }
  }

  void barrier() { mpi_check(MPI_Barrier(comm_), "barrier", "MPI_Barrier"); }

  std::vector<std::vector<std::uint8_t>> all_gather_bytes(const std::vector<std::uint8_t>& bytes) {
    CT_CHECK(bytes.size() <= static_cast<std::size_t>(kMaxCount),
             "all_gather_bytes: expected at most {} bytes, got {}", kMaxCount, bytes.size());
    const int mine = static_cast<int>(bytes.size());
    std::vector<int> sizes(static_cast<std::size_t>(size_)), offsets(sizes.size());
    mpi_check(MPI_Allgather(&mine, 1, MPI_INT, sizes.data(), 1, MPI_INT, comm_), "all_gather_bytes",
              "MPI_Allgather");
    std::int64_t total = 0;
    for (std::size_t r = 0; r < sizes.size(); ++r) {
      offsets[r] = static_cast<int>(total);
      total += sizes[r];
      CT_CHECK(total <= kMaxCount, "all_gather_bytes: expected at most {} bytes in all, got more",
               kMaxCount);
    }
    std::vector<std::uint8_t> all(static_cast<std::size_t>(total));
    mpi_check(MPI_Allgatherv(bytes.data(), mine, MPI_BYTE, all.data(), sizes.data(), offsets.data(),
                             MPI_BYTE, comm_),
              "all_gather_bytes", "MPI_Allgatherv");
    std::vector<std::vector<std::uint8_t>> out;
    for (std::size_t r = 0; r < sizes.size(); ++r)
      out.emplace_back(all.begin() + offsets[r], all.begin() + offsets[r] + sizes[r]);
    return out;
  }

 private:
  MPI_Comm comm_;
  int size_;
};

struct Global {
  std::mutex mutex;
  bool initialized = false;
  bool finalized = false;
  int local_rank = 0;
  int local_size = 1;
  std::unique_ptr<ProcessGroup> world;
};

Global& global() {
  static Global* g = new Global;  // never destroyed: a stuck engine thread may still use it at exit
  return *g;
}

void require_init(const char* op) {
  CT_CHECK(global().initialized, "{}: expected dist::init() to have been called, got {}", op,
           global().finalized ? "a call after dist::finalize()" : "no call");
}

// The timeout from the environment (seconds), where given.
std::chrono::milliseconds timeout_from_env(std::chrono::milliseconds fallback) {
  const char* v = std::getenv("CONVTAPE_DIST_TIMEOUT");
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const double s = std::strtod(v, &end);
  CT_CHECK(
      end != v && *end == '\0' && s > 0 && s < 1e9,
      "dist::init: expected CONVTAPE_DIST_TIMEOUT to be a positive number of seconds, got '{}'", v);
  return std::chrono::milliseconds(static_cast<std::int64_t>(s * 1000.0));
}

}  // namespace

// ---- Work

struct Work::State {
  std::mutex mutex;
  std::condition_variable done_cv;
  bool done = false;
  std::exception_ptr error;
  const char* op = "";
  std::string engine;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now(), end;
  std::vector<Tensor> keep;  // alive until the engine is done with them
  std::chrono::milliseconds timeout{};
  int rank = 0, size = 1;
  std::atomic<bool>* broken = nullptr;
  std::string* broken_why = nullptr;
};

void Work::wait() const {
  if (!state_) return;
  State& s = *state_;
  std::unique_lock lock(s.mutex);
  if (!s.done_cv.wait_for(lock, s.timeout, [&] { return s.done; })) {
    const double secs = std::chrono::duration<double>(s.timeout).count();
    const std::string why = fmt::format(
        "{}: expected the {} collective to finish within {:g} s (the process group's timeout), "
        "got no completion on rank {} of {}: a peer has failed or stopped calling collectives",
        s.op, s.engine.empty() ? "MPI" : s.engine, secs, s.rank, s.size);
    // The group's thread is stuck in the engine: nothing queued behind it can run any more.
    if (s.broken && !s.broken->exchange(true) && s.broken_why) *s.broken_why = why;
    CT_CHECK(false, "{}", why);
  }
  if (s.error) std::rethrow_exception(s.error);
}

bool Work::is_completed() const {
  if (!state_) return true;
  std::lock_guard lock(state_->mutex);
  return state_->done;
}

double Work::seconds() const {
  if (!state_) return 0.0;
  std::lock_guard lock(state_->mutex);
  return state_->done ? std::chrono::duration<double>(state_->end - state_->start).count() : 0.0;
}

// ---- ProcessGroup

struct ProcessGroup::Impl {
  MPI_Comm comm = MPI_COMM_NULL;
  std::unique_ptr<MpiEngine> mpi;
  std::map<int, std::unique_ptr<Engine>> nccl;  // by CUDA device, opened at first use

  std::mutex mutex;
  std::condition_variable wake;
  std::deque<std::pair<std::shared_ptr<Work::State>, std::function<void()>>> queue;
  std::shared_ptr<Work::State> last;  // the newest collective (synchronize waits for it)
  bool stop = false;
  std::thread worker;
  std::atomic<bool> broken{false};
  std::string broken_why;

  void run() {
    for (;;) {
      std::pair<std::shared_ptr<Work::State>, std::function<void()>> task;
      {
        std::unique_lock lock(mutex);
        wake.wait(lock, [&] { return stop || !queue.empty(); });
        if (queue.empty()) return;
        task = std::move(queue.front());
        queue.pop_front();
      }
      std::exception_ptr error;
      try {
        task.second();
      } catch (...) {
        error = std::current_exception();
      }
      auto& s = *task.first;
      {
        std::lock_guard lock(s.mutex);
        s.error = error;
        s.done = true;
        s.end = std::chrono::steady_clock::now();
        s.keep.clear();
      }
      s.done_cv.notify_all();
    }
  }
};

ProcessGroup::ProcessGroup(int rank, int size, ProcessGroupOptions options,
                           std::unique_ptr<Impl> impl)
    : rank_(rank), size_(size), options_(options), impl_(std::move(impl)) {
  impl_->worker = std::thread([this] {
    NoGradGuard no_grad;  // the engine writes results into tensors outside autograd
    impl_->run();
  });
}

ProcessGroup::~ProcessGroup() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stop = true;
  }
  impl_->wake.notify_all();
  if (impl_->broken) {
    // Its thread is stuck inside the engine: it keeps the engines (and so Impl) until the process
    // ends around it.
    impl_->worker.detach();
    static_cast<void>(impl_.release());
  } else {
    impl_->worker.join();
  }
}

ProcessGroup& ProcessGroup::world() {
  require_init("ProcessGroup::world");
  return *global().world;
}

void ProcessGroup::check(const char* op, const Tensor& t, bool allow_int) const {
  CT_CHECK(t.defined(), "{}: expected a tensor, got an undefined one", op);
  const DType d = t.dtype();
  CT_CHECK(d == kFloat32 || d == kFloat64 || (allow_int && d == kInt64),
           "{}: expected a float32, float64{} tensor, got {}", op, allow_int ? " or int64" : "",
           dtype_name(d));
  CT_CHECK(!(GradMode::is_enabled() && t.requires_grad()),
           "{}: expected a tensor that does not require grad (or a NoGradGuard), got one that "
           "does, shape {}",
           op, convtape::to_string(t.shape()));
}

Work ProcessGroup::submit(const char* op, const Tensor& t, std::vector<Tensor> keep,
                          std::function<void(Engine&)> body) {
  // Every collective comes through here: once a timeout has left the group's thread stuck in the
  // engine, nothing queued behind it could run, so each later call fails at once.
  CT_CHECK(!impl_->broken,
           "{}: expected a working process group, got one stopped by an earlier failure: {}", op,
           impl_->broken_why);
  auto state = std::make_shared<Work::State>();
  state->op = op;
  state->timeout = options_.timeout();
  state->rank = rank_;
  state->size = size_;
  state->broken = &impl_->broken;
  state->broken_why = &impl_->broken_why;
  state->keep = std::move(keep);
  const bool cuda = t.is_cuda();
  const int device = cuda ? t.device().index() : -1;
  state->engine = cuda ? "NCCL" : "MPI";
  Impl* impl = impl_.get();
  auto task = [this, impl, cuda, device, body = std::move(body)] {
    Engine* engine = impl->mpi.get();
    if (cuda) {
      auto& slot = impl->nccl[device];
      if (!slot) slot = open_nccl_engine(*this, *impl->mpi, device);
      engine = slot.get();
    }
    body(*engine);
  };
  {
    std::lock_guard lock(impl_->mutex);
    impl_->queue.emplace_back(state, std::move(task));
    impl_->last = state;
  }
  impl_->wake.notify_one();
  return Work(state);
}

namespace {

// The contiguous tensor a collective works on: t itself, or a dense copy written back afterwards.
struct Dense {
  Tensor buffer;
  bool copy_back = false;
};
Dense dense(const Tensor& t) {
  if (t.is_contiguous()) return {t, false};
  return {t.contiguous(), true};
}

}  // namespace

Work ProcessGroup::all_reduce_async(const Tensor& t, ReduceOp op) {
  check("all_reduce", t, true);
  Dense d = dense(t);
  t.storage()->bump_version();
  const std::int64_t n = t.numel();
  return submit("all_reduce", t, {t, d.buffer}, [t = Tensor(t), d, n, op](Engine& e) mutable {
    if (n > 0) e.all_reduce(d.buffer.raw_data(), n, t.dtype(), op);
    if (d.copy_back) t.copy_(d.buffer);
  });
}

void ProcessGroup::all_reduce(const Tensor& t, ReduceOp op) {
  all_reduce_async(t, op).wait();
}

Work ProcessGroup::broadcast_async(const Tensor& t, int root) {
  check("broadcast", t, true);
  CT_CHECK(root >= 0 && root < size_, "broadcast: expected a root rank in [0, {}), got {}", size_,
           root);
  Dense d = dense(t);
  t.storage()->bump_version();
  const std::int64_t n = t.numel();
  return submit("broadcast", t, {t, d.buffer}, [t = Tensor(t), d, n, root](Engine& e) mutable {
    if (n > 0) e.broadcast(d.buffer.raw_data(), n, t.dtype(), root);
    if (d.copy_back) t.copy_(d.buffer);
  });
}

void ProcessGroup::broadcast(const Tensor& t, int root) {
  broadcast_async(t, root).wait();
}

Work ProcessGroup::all_gather_async(const Tensor& t, const Tensor& out) {
  check("all_gather", t, true);
  Shape expected{size_};
  expected.insert(expected.end(), t.shape().begin(), t.shape().end());
  CT_CHECK(out.defined() && out.shape() == expected && out.dtype() == t.dtype() &&
               out.device() == t.device() && out.is_contiguous(),
           "all_gather: expected a contiguous output {} ({}, {}), got {}",
           convtape::to_string(expected), dtype_name(t.dtype()), t.device().str(),
           out.defined() ? fmt::format("{} ({}, {})", convtape::to_string(out.shape()),
                                       dtype_name(out.dtype()), out.device().str())
                         : std::string("an undefined tensor"));
  const Tensor in = t.contiguous();
  out.storage()->bump_version();
  const std::int64_t n = t.numel();
  return submit("all_gather", t, {in, out}, [in, out, n](Engine& e) {
    e.all_gather(in.raw_data(), out.raw_data(), n, in.dtype());
  });
}

Tensor ProcessGroup::all_gather(const Tensor& t) {
  check("all_gather", t, true);
  Shape shape{size_};
  shape.insert(shape.end(), t.shape().begin(), t.shape().end());
  Tensor out = empty(shape, t.options());
  all_gather_async(t, out).wait();
  return out;
}

void ProcessGroup::barrier() {
  Impl* impl = impl_.get();
  // A barrier is a collective like the others: queued behind them, on the MPI engine.
  const Tensor none = empty({0});
  submit("barrier", none, {}, [impl](Engine&) { impl->mpi->barrier(); }).wait();
}

void ProcessGroup::synchronize() {
  std::shared_ptr<Work::State> last;
  {
    std::lock_guard lock(impl_->mutex);
    last = impl_->last;
  }
  Work(last).wait();
}

// The buffers live in shared state, not on this stack: after a timeout the group's thread may still
// come back from the engine and write them.
std::vector<std::vector<std::uint8_t>> ProcessGroup::all_gather_bytes(
    const std::vector<std::uint8_t>& bytes) {
  Impl* impl = impl_.get();
  auto in = std::make_shared<const std::vector<std::uint8_t>>(bytes);
  auto out = std::make_shared<std::vector<std::vector<std::uint8_t>>>();
  const Tensor none = empty({0});
  submit("all_gather_bytes", none, {}, [impl, in, out](Engine&) {
    *out = impl->mpi->all_gather_bytes(*in);
  }).wait();
  return std::move(*out);
}

void ProcessGroup::broadcast_bytes(std::vector<std::uint8_t>& bytes, int root) {
  CT_CHECK(root >= 0 && root < size_, "broadcast_bytes: expected a root rank in [0, {}), got {}",
           size_, root);
  Impl* impl = impl_.get();
  auto buffer = std::make_shared<std::vector<std::uint8_t>>(bytes);
  const Tensor none = empty({0});
  const int me = rank_;
  submit("broadcast_bytes", none, {}, [impl, buffer, root, me](Engine&) {
    std::int64_t n = me == root ? static_cast<std::int64_t>(buffer->size()) : 0;
    impl->mpi->broadcast(&n, 1, kInt64, root);
    buffer->resize(static_cast<std::size_t>(n));
    impl->mpi->broadcast_bytes(buffer->data(), n, root);
  }).wait();
  bytes = std::move(*buffer);
}

// ---- process-wide

void init(ProcessGroupOptions options) {
  Global& g = global();
  std::lock_guard lock(g.mutex);
  CT_CHECK(!g.initialized && !g.finalized,
           "dist::init: expected the first call in this process, got {}",
           g.finalized ? "a call after finalize() (MPI starts once per process)" : "a second call");
  options.timeout(timeout_from_env(options.timeout()));
  int already = 0;
  mpi_check(MPI_Initialized(&already), "dist::init", "MPI_Initialized");
  if (!already) {
    // Open MPI waits inside a collective by polling. Where this machine's ranks and their compute
    // threads already take every core, the group's thread would poll on a core that a rank needs
    // for its own computation: ask Open MPI to yield while it waits, unless the user chose.
    const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    const unsigned cores = std::thread::hardware_concurrency();
    if (local != nullptr && std::getenv("OMPI_MCA_mpi_yield_when_idle") == nullptr && cores > 0 &&
        std::atol(local) * omp_get_max_threads() >= static_cast<long>(cores))
      setenv("OMPI_MCA_mpi_yield_when_idle", "1", 0);
    int provided = 0;
    mpi_check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided), "dist::init",
              "MPI_Init_thread");
    if (provided < MPI_THREAD_SERIALIZED) {
      MPI_Finalize();
      CT_CHECK(false,
               "dist::init: expected an MPI library with MPI_THREAD_SERIALIZED support or more, "
               "got level {}",
               provided);
    }
  }
  auto impl = std::make_unique<ProcessGroup::Impl>();
  mpi_check(MPI_Comm_dup(MPI_COMM_WORLD, &impl->comm), "dist::init", "MPI_Comm_dup");
  // Errors come back as codes, which become convtape::Error, instead of ending the job.
  mpi_check(MPI_Comm_set_errhandler(impl->comm, MPI_ERRORS_RETURN), "dist::init",
            "MPI_Comm_set_errhandler");
  int rank = 0, size = 1;
  mpi_check(MPI_Comm_rank(impl->comm, &rank), "dist::init", "MPI_Comm_rank");
  mpi_check(MPI_Comm_size(impl->comm, &size), "dist::init", "MPI_Comm_size");
  MPI_Comm local = MPI_COMM_NULL;
  mpi_check(MPI_Comm_split_type(impl->comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &local),
            "dist::init", "MPI_Comm_split_type");
  mpi_check(MPI_Comm_rank(local, &g.local_rank), "dist::init", "MPI_Comm_rank");
  mpi_check(MPI_Comm_size(local, &g.local_size), "dist::init", "MPI_Comm_size");
  MPI_Comm_free(&local);
  impl->mpi = std::make_unique<MpiEngine>(impl->comm, size);
  g.world.reset(new ProcessGroup(rank, size, options, std::move(impl)));
  g.initialized = true;
}

bool is_initialized() noexcept {
  return global().initialized;
}

void finalize() {
  Global& g = global();
  std::lock_guard lock(g.mutex);
  require_init("dist::finalize");
  g.world->synchronize();
  const bool broken = g.world->impl_->broken;
  MPI_Comm comm = g.world->impl_->comm;
  g.world.reset();
  g.initialized = false;
  g.finalized = true;
  CT_CHECK(!broken,
           "dist::finalize: expected a working process group, got one stopped by an "
           "earlier failure (MPI is left running; end the job with dist::abort)");
  MPI_Comm_free(&comm);
  mpi_check(MPI_Finalize(), "dist::finalize", "MPI_Finalize");
}

void abort(int code) {
  int started = 0;
  MPI_Initialized(&started);
  if (started) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

int rank() {
  require_init("dist::rank");
  return global().world->rank();
}
int world_size() {
  require_init("dist::world_size");
  return global().world->size();
}
int local_rank() {
  require_init("dist::local_rank");
  return global().local_rank;
}
int local_world_size() {
  require_init("dist::local_world_size");
  return global().local_size;
}

// ---- all_reduce_sum on the tape

Tensor all_reduce_sum(const Tensor& x, ProcessGroup& group) {
  Tensor y;
  {
    NoGradGuard no_grad;
    y = x.detach().clone();
    group.all_reduce(y, ReduceOp::Sum);
  }
  ProcessGroup* g = &group;
  // The sum over ranks is its own adjoint: dx = the sum of dy over ranks, which is this op again
  // (so that under create_graph the backward records, and its own backward is the same sum).
  record(y, "all_reduce_sum", {x}, {}, [g](const Saved&, const Tensor& dy, const GradMask&) {
    return std::vector<Tensor>{all_reduce_sum(dy, *g)};
  });
  return y;
}

}  // namespace convtape::dist
