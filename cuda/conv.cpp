// CUDA convolution, same contract as cpu/conv.h: x [N, C, *in], w [K, C/groups, *kernel],
// b [K] -> y [N, K, *out]; dx [N, C, *in] from dy [N, K, *out] and w; dw from dy and x.
// cuda/conv_plan.h decides how a geometry runs: cuDNN's legacy convolution (spatial ranks 1 to 3,
// on x or on the dilated, padded copy x~ that ConvPad builds), or the direct kernels of
// cuda/conv_body.h. cuDNN algorithms are chosen per shape by timing them on the call's own buffers
// (Find...Ex; the weight gradient's on a scratch buffer, since slices of a large batch accumulate
// into dw), filtered by the workspace cap, the deterministic flag and the TF32 rule
// (cuda/settings.h), and remembered in conv_algorithm_cache(). When no measured algorithm
// qualifies, a workspace-free one (or, in deterministic mode, the deterministic one) is taken; a
// shape for which cuDNN offers nothing at all is remembered as such and runs the direct kernels.
// Everything runs on the legacy default stream, like the rest of the backend.
#include "cuda/conv.h"

#include <cuda_runtime.h>
#include <cudnn.h>

#include <algorithm>
#include <cstddef>
#include <memory>
#include <optional>
#include <vector>

#include "core/error.h"
#include "cuda/check.h"
#include "cuda/conv_launch.h"
#include "cuda/conv_plan.h"
#include "cuda/cuda.h"
#include "cuda/device_scope.h"
#include "cuda/handles.h"
#include "cuda/settings.h"

namespace convtape::cuda {

namespace {

constexpr std::string_view kOp = "conv";

Shape cat(Shape a, const Shape& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// The settings read once per call, so that the descriptors, the cache key and the algorithm
// filter agree even if another thread changes them meanwhile.
struct Settings {
  bool deterministic = false;
  bool allow_tf32 = false;
  std::int64_t workspace_limit = 0;

  static Settings now() {
    return {cuda::deterministic(), cuda::allow_tf32(), cuda::conv_workspace_limit()};
  }
};

void check_operand(const Tensor& t, const char* name, const Shape& expected, DType dtype,
                   Device device) {
  CT_CHECK(t.defined(), "conv: expected a defined {} tensor, got an undefined one", name);
  CT_CHECK(t.device() == device, "conv: expected {} on {}, got one on {}", name, device.str(),
           t.device().str());
  CT_CHECK(t.dtype() == dtype, "conv: expected {} of dtype {}, got {}", name, dtype_name(dtype),
           dtype_name(t.dtype()));
  CT_CHECK(t.shape() == expected, "conv: expected {} of shape {} for this geometry, got {}", name,
           to_string(expected), to_string(t.shape()));
  CT_CHECK(t.is_contiguous(), "conv: expected a contiguous {} tensor, got strides {}", name,
           to_string(t.strides()));
}

void check_first(const Tensor& t, const char* name) {
  CT_CHECK(t.defined(), "conv: expected a defined {} tensor, got an undefined one", name);
  CT_CHECK(t.is_cuda(), "conv: expected {} on a CUDA device, got one on {}", name,
           t.device().str());
  CT_CHECK(is_floating(t.dtype()), "conv: expected a float32 or float64 {}, got {}", name,
           dtype_name(t.dtype()));
}

Shape x_shape(const ConvGeometry& g) {
  return cat({g.batch, g.channels}, g.in);
}
Shape y_shape(const ConvGeometry& g) {
  return cat({g.batch, g.out_channels}, g.out);
}
Shape w_shape(const ConvGeometry& g) {
  return cat({g.out_channels, g.group_channels()}, g.kernel);
}

Tensor device_empty(const Shape& shape, const Tensor& like) {
  return empty(shape, TensorOptions(like.dtype()).device(like.device()));
}

void zero(const Tensor& t) {
  cuda::fill(kOp, t.raw_data(), t.dtype(), t.numel(), 0.0, t.device());
}

const void* byte_offset(const Tensor& t, std::int64_t elements) {
  return static_cast<const char*>(t.raw_data()) +
         elements * static_cast<std::int64_t>(dtype_size(t.dtype()));
}
void* byte_offset_mut(const Tensor& t, std::int64_t elements) {
  return static_cast<char*>(t.raw_data()) +
         elements * static_cast<std::int64_t>(dtype_size(t.dtype()));
}

// cuDNN's alpha and beta point at float for float data and at double for double data.
const void* one(DType dtype) {
  static const float f = 1.0f;
  static const double d = 1.0;
  return dtype == DType::Float64 ? static_cast<const void*>(&d) : static_cast<const void*>(&f);
}
const void* zero_scale(DType dtype) {
  static const float f = 0.0f;
  static const double d = 0.0;
  return dtype == DType::Float64 ? static_cast<const void*>(&d) : static_cast<const void*>(&f);
}

// Scratch device memory from the caching allocator (so it is counted and reused).
class Workspace {
 public:
  Workspace() = default;
  Workspace(Device device, std::size_t bytes) {
    if (bytes > 0) storage_ = cuda::allocate(kOp, bytes, device);
  }
  void* data() const { return storage_ ? storage_->data() : nullptr; }
  std::size_t size() const { return storage_ ? storage_->nbytes() : 0; }

 private:
  std::shared_ptr<Storage> storage_;
};

// The workspace handed to Find: the cap, or less when the device has less to spare (free memory
// plus the allocator's cached blocks, which it empties before giving up). An allocation that
// still fails leaves Find with no workspace, so only workspace-free algorithms compete.
Workspace find_workspace(Device device, const Settings& s) {
  std::size_t free_bytes = 0, total_bytes = 0;
  if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) {
    cudaGetLastError();
    free_bytes = 0;
  }
  const auto cached = static_cast<std::size_t>(memory_stats(device).cached_bytes);
  const std::size_t spare = (free_bytes + cached) / 10 * 8;
  const std::size_t bytes = std::min(static_cast<std::size_t>(s.workspace_limit), spare);
  try {
    return Workspace(device, bytes);
  } catch (const Error&) {
    return Workspace();
  }
}

// One cuDNN call's descriptors: x [n, C, *in], y [n, K, *out], w, and the convolution.
struct CudnnCall {
  TensorDescriptor x, y;
  FilterDescriptor w;
  ConvolutionDescriptor conv;
};

CudnnCall describe(const ConvGeometry& c, std::int64_t n, DType dtype, const Settings& s) {
  const Shape xs = cat({n, c.channels}, c.in), ys = cat({n, c.out_channels}, c.out);
  CudnnCall call{
      TensorDescriptor(kOp, dtype, xs), TensorDescriptor(kOp, dtype, ys),
      FilterDescriptor(kOp, dtype, w_shape(c)),
      ConvolutionDescriptor(kOp, dtype, c.pad_lo, c.stride, c.dilation, c.groups, s.allow_tf32)};
  // The plan guarantees this; checking it turns a planning mistake into an error instead of a
  // read past the end of y.
  std::vector<int> dims(ys.size());
  CT_CUDNN_CHECK(kOp,
                 cudnnGetConvolutionNdForwardOutputDim(call.conv.get(), call.x.get(), call.w.get(),
                                                       static_cast<int>(ys.size()), dims.data()));
  for (std::size_t i = 0; i < ys.size(); ++i)
    CT_CHECK(dims[i] == ys[i],
             "conv: expected cuDNN's output size to equal the geometry's {}, got {} in dim {} "
             "(input {}, weight {})",
             to_string(ys), dims[i], i, to_string(xs), to_string(w_shape(c)));
  return call;
}

enum class Pass : std::int64_t { Forward = 0, BackwardData = 1, BackwardFilter = 2 };

std::vector<std::int64_t> cache_key(Pass pass, const ConvGeometry& c, std::int64_t n, DType dtype,
                                    Device device, const Settings& s) {
  std::vector<std::int64_t> key{static_cast<std::int64_t>(pass),
                                static_cast<std::int64_t>(dtype),
                                device.index(),
                                n,
                                c.channels,
                                c.out_channels,
                                c.groups,
                                c.spatial()};
  for (const Shape* v : {&c.in, &c.out, &c.kernel, &c.stride, &c.dilation, &c.pad_lo})
    key.insert(key.end(), v->begin(), v->end());
  key.push_back(s.allow_tf32);
  key.push_back(s.deterministic);
  key.push_back(s.workspace_limit);
  return key;
}

// The math type a float32 convolution must run with when TF32 is off: FMA only (cuDNN's default
// math permits TF32 on Ampere and later).
bool fma_only(DType dtype, const Settings& s) {
  return dtype == DType::Float32 && !s.allow_tf32;
}

// The fastest measured algorithm that succeeded within the workspace and honours the settings.
template <class Perf>
std::optional<ConvAlgorithm> pick(const std::vector<Perf>& perf, int count, DType dtype,
                                  const Settings& s, std::size_t workspace) {
  for (int i = 0; i < count; ++i) {
    const Perf& p = perf[static_cast<std::size_t>(i)];
    if (p.status != CUDNN_STATUS_SUCCESS || p.memory > workspace) continue;
    if (s.deterministic && p.determinism != CUDNN_DETERMINISTIC) continue;
    // Conversion to half precision is never acceptable here.
    if (p.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) continue;
    if (fma_only(dtype, s) && p.mathType != CUDNN_FMA_MATH && p.mathType != CUDNN_DEFAULT_MATH)
      continue;
    const cudnnMathType_t math = fma_only(dtype, s) ? CUDNN_FMA_MATH : p.mathType;
    return ConvAlgorithm{static_cast<int>(p.algo), static_cast<int>(math), p.memory};
  }
  return std::nullopt;
}

cudnnMathType_t default_math(const Settings& s) {
  return s.allow_tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
}

void set_math(const CudnnCall& call, const ConvAlgorithm& a) {
  CT_CUDNN_CHECK(
      kOp, cudnnSetConvolutionMathType(call.conv.get(), static_cast<cudnnMathType_t>(a.math_type)));
}

// A chosen algorithm that cuDNN refuses when it comes to running it (its workspace query or the
// call itself answers NOT_SUPPORTED) sends the shape to the direct kernels for good, instead of
// failing the op; any other failure is an error.
bool unsupported(const std::vector<std::int64_t>& key, cudnnStatus_t status) {
  if (status != CUDNN_STATUS_NOT_SUPPORTED) return false;
  conv_algorithm_cache().replace(key, ConvAlgorithm{kConvDirect, 0, 0});
  return true;
}

// --- the three passes ---

// What sets each pass apart: its cuDNN types and calls, its buffers (Args, named as the pass
// names them), where Find may write, and the workspace-free algorithms to fall back on.
// run_pass below is the flow they share.

struct ForwardPass {
  using Algo = cudnnConvolutionFwdAlgo_t;
  using Perf = cudnnConvolutionFwdAlgoPerf_t;
  static constexpr Pass kPass = Pass::Forward;

  struct Args {
    const void* x;
    const void* w;
    void* y;
  };

  static int max_count(cudnnHandle_t h) {
    int most = 0;
    CT_CUDNN_CHECK(kOp, cudnnGetConvolutionForwardAlgorithmMaxCount(h, &most));
    return most;
  }

  static void* find_output(const Args& a, Tensor& /*scratch*/) { return a.y; }

  static cudnnStatus_t find(cudnnHandle_t h, const CudnnCall& call, const Args& a, void* out,
                            std::vector<Perf>& perf, int* count, const Workspace& ws) {
    return cudnnFindConvolutionForwardAlgorithmEx(
        h, call.x.get(), a.x, call.w.get(), a.w, call.conv.get(), call.y.get(), out,
        static_cast<int>(perf.size()), count, perf.data(), ws.data(), ws.size());
  }

  static cudnnStatus_t workspace_size(cudnnHandle_t h, const CudnnCall& call, Algo algo,
                                      std::size_t* bytes) {
    return cudnnGetConvolutionForwardWorkspaceSize(h, call.x.get(), call.w.get(), call.conv.get(),
                                                   call.y.get(), algo, bytes);
  }

  // When nothing measured qualifies: implicit GEMM needs no workspace and is deterministic.
  static std::vector<Algo> fallbacks(const Settings& /*s*/) {
    return {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
            CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM};
  }

  static cudnnStatus_t run(cudnnHandle_t h, const CudnnCall& call, const Args& a, DType dtype,
                           Algo algo, const Workspace& ws) {
    return cudnnConvolutionForward(h, one(dtype), call.x.get(), a.x, call.w.get(), a.w,
                                   call.conv.get(), algo, ws.data(), ws.size(), zero_scale(dtype),
                                   call.y.get(), a.y);
  }
};

struct BackwardDataPass {
  using Algo = cudnnConvolutionBwdDataAlgo_t;
  using Perf = cudnnConvolutionBwdDataAlgoPerf_t;
  static constexpr Pass kPass = Pass::BackwardData;

  struct Args {
    const void* dy;
    const void* w;
    void* dx;
  };

  static int max_count(cudnnHandle_t h) {
    int most = 0;
    CT_CUDNN_CHECK(kOp, cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, &most));
    return most;
  }

  static void* find_output(const Args& a, Tensor& /*scratch*/) { return a.dx; }

  static cudnnStatus_t find(cudnnHandle_t h, const CudnnCall& call, const Args& a, void* out,
                            std::vector<Perf>& perf, int* count, const Workspace& ws) {
    return cudnnFindConvolutionBackwardDataAlgorithmEx(
        h, call.w.get(), a.w, call.y.get(), a.dy, call.conv.get(), call.x.get(), out,
        static_cast<int>(perf.size()), count, perf.data(), ws.data(), ws.size());
  }

  static cudnnStatus_t workspace_size(cudnnHandle_t h, const CudnnCall& call, Algo algo,
                                      std::size_t* bytes) {
    return cudnnGetConvolutionBackwardDataWorkspaceSize(h, call.w.get(), call.y.get(),
                                                        call.conv.get(), call.x.get(), algo, bytes);
  }

  // ALGO_0 needs no workspace but sums with atomics; ALGO_1 is the deterministic one.
  static std::vector<Algo> fallbacks(const Settings& s) {
    if (s.deterministic) return {CUDNN_CONVOLUTION_BWD_DATA_ALGO_1};
    return {CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1};
  }

  static cudnnStatus_t run(cudnnHandle_t h, const CudnnCall& call, const Args& a, DType dtype,
                           Algo algo, const Workspace& ws) {
    return cudnnConvolutionBackwardData(h, one(dtype), call.w.get(), a.w, call.y.get(), a.dy,
                                        call.conv.get(), algo, ws.data(), ws.size(),
                                        zero_scale(dtype), call.x.get(), a.dx);
  }
};

// dw = dw_so_far * accumulate + the gradient of this slice of the batch. Find measures on a
// scratch copy of dw's shape: the real dw may already hold earlier slices' sums.
struct BackwardFilterPass {
  using Algo = cudnnConvolutionBwdFilterAlgo_t;
  using Perf = cudnnConvolutionBwdFilterAlgoPerf_t;
  static constexpr Pass kPass = Pass::BackwardFilter;

  struct Args {
    const void* dy;
    const void* x;
    const Tensor& dw;
    bool accumulate;
  };

  static int max_count(cudnnHandle_t h) {
    int most = 0;
    CT_CUDNN_CHECK(kOp, cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, &most));
    return most;
  }

  static void* find_output(const Args& a, Tensor& scratch) {
    scratch = device_empty(a.dw.shape(), a.dw);
    return scratch.raw_data();
  }

  static cudnnStatus_t find(cudnnHandle_t h, const CudnnCall& call, const Args& a, void* out,
                            std::vector<Perf>& perf, int* count, const Workspace& ws) {
    return cudnnFindConvolutionBackwardFilterAlgorithmEx(
        h, call.x.get(), a.x, call.y.get(), a.dy, call.conv.get(), call.w.get(), out,
        static_cast<int>(perf.size()), count, perf.data(), ws.data(), ws.size());
  }

  static cudnnStatus_t workspace_size(cudnnHandle_t h, const CudnnCall& call, Algo algo,
                                      std::size_t* bytes) {
    return cudnnGetConvolutionBackwardFilterWorkspaceSize(
        h, call.x.get(), call.y.get(), call.conv.get(), call.w.get(), algo, bytes);
  }

  // The same pair as for the data gradient.
  static std::vector<Algo> fallbacks(const Settings& s) {
    if (s.deterministic) return {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1};
    return {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1};
  }

  static cudnnStatus_t run(cudnnHandle_t h, const CudnnCall& call, const Args& a, DType dtype,
                           Algo algo, const Workspace& ws) {
    return cudnnConvolutionBackwardFilter(
        h, one(dtype), call.x.get(), a.x, call.y.get(), a.dy, call.conv.get(), algo, ws.data(),
        ws.size(), a.accumulate ? one(dtype) : zero_scale(dtype), call.w.get(), a.dw.raw_data());
  }
};

// The workspace an algorithm needs; *status says whether cuDNN supports it for this shape.
template <class P>
std::size_t workspace_bytes(cudnnHandle_t h, const CudnnCall& call, typename P::Algo algo,
                            cudnnStatus_t* status) {
  std::size_t bytes = 0;
  *status = P::workspace_size(h, call, algo, &bytes);
  return bytes;
}

// Times the pass's algorithms with Find (its results written where P::find_output says) and picks
// one; nothing when Find fails or no measured algorithm qualifies.
template <class P>
std::optional<ConvAlgorithm> measure(cudnnHandle_t h, const CudnnCall& call, DType dtype,
                                     Device device, const Settings& s, const typename P::Args& a) {
  std::vector<typename P::Perf> perf(static_cast<std::size_t>(std::max(P::max_count(h), 1)));
  int count = 0;
  // A scratch output (the weight gradient's) is taken before the workspace, whose size depends on
  // the memory left, and lives until Find is done.
  Tensor scratch;
  void* const out = P::find_output(a, scratch);
  const Workspace ws = find_workspace(device, s);
  const cudnnStatus_t found = P::find(h, call, a, out, perf, &count, ws);
  if (found != CUDNN_STATUS_SUCCESS) return std::nullopt;
  return pick(perf, count, dtype, s, ws.size());
}

// The first of the pass's workspace-free algorithms that cuDNN supports for the shape; when it
// supports none, the direct kernels run the shape.
template <class P>
ConvAlgorithm fallback(cudnnHandle_t h, const CudnnCall& call, const Settings& s) {
  for (const typename P::Algo algo : P::fallbacks(s)) {
    cudnnStatus_t status{};
    const std::size_t bytes = workspace_bytes<P>(h, call, algo, &status);
    if (status == CUDNN_STATUS_SUCCESS)
      return ConvAlgorithm{static_cast<int>(algo), static_cast<int>(default_math(s)), bytes};
  }
  return ConvAlgorithm{kConvDirect, 0, 0};
}

// One slice of the batch through cuDNN; false sends the whole op to the direct kernels.
template <class P>
bool run_pass(const ConvGeometry& c, std::int64_t n, DType dtype, Device device, const Settings& s,
              const typename P::Args& a) {
  const CudnnCall call = describe(c, n, dtype, s);
  cudnnHandle_t h = cudnn_handle(kOp);
  const auto key = cache_key(P::kPass, c, n, dtype, device, s);
  std::optional<ConvAlgorithm> algo = conv_algorithm_cache().find(key);
  if (!algo) {
    algo = measure<P>(h, call, dtype, device, s, a);
    if (!algo) algo = fallback<P>(h, call, s);
    algo = conv_algorithm_cache().insert(key, *algo);
  }
  if (algo->algo == kConvDirect) return false;
  set_math(call, *algo);
  const auto chosen = static_cast<typename P::Algo>(algo->algo);
  cudnnStatus_t status{};
  const std::size_t need = workspace_bytes<P>(h, call, chosen, &status);
  if (unsupported(key, status)) return false;
  CT_CUDNN_CHECK(kOp, status);
  const Workspace ws(device, std::max(need, algo->workspace));
  const cudnnStatus_t ran = P::run(h, call, a, dtype, chosen, ws);
  if (unsupported(key, ran)) return false;
  CT_CUDNN_CHECK(kOp, ran);
  return true;
}

// --- shared steps ---

// x~ [N, C, *P] from x (plan.materialise).
Tensor pad_input(const ConvPlan& plan, const ConvGeometry& g, const Tensor& x) {
  Shape padded(plan.pad.padded, plan.pad.padded + plan.pad.s);
  const Tensor xt = device_empty(cat({g.batch, g.channels}, padded), x);
  CT_CUDA_CHECK(kOp, conv_kernels::pad(x.dtype(), x.raw_data(), xt.raw_data(), plan.pad));
  return xt;
}

// The per-sample element counts of x (or x~) and y in the cuDNN geometry.
std::int64_t x_sample(const ConvGeometry& c) {
  return c.channels * c.in_numel();
}
std::int64_t y_sample(const ConvGeometry& c) {
  return c.out_channels * c.out_numel();
}

// --- the direct kernels (spatial rank > 3, huge samples, shapes cuDNN offers nothing for) ---

void direct_forward(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y,
                    const ConvGeometry& g) {
  CT_CUDA_CHECK(kOp, conv_kernels::forward_direct(x.dtype(), x.raw_data(), w.raw_data(),
                                                  b.defined() ? b.raw_data() : nullptr,
                                                  y.raw_data(), conv_dims(g)));
}

void direct_backward_data(const Tensor& dy, const Tensor& w, const Tensor& dx,
                          const ConvGeometry& g) {
  CT_CUDA_CHECK(kOp, conv_kernels::backward_data_direct(dy.dtype(), dy.raw_data(), w.raw_data(),
                                                        dx.raw_data(), conv_dims(g)));
}

void direct_backward_weight(const Tensor& dy, const Tensor& x, const Tensor& dw,
                            const ConvGeometry& g) {
  const ConvDims dims = conv_dims(g);
  const WeightGradSplit split = weight_grad_split(dims);
  if (split.chunks == 1) {
    CT_CUDA_CHECK(kOp,
                  conv_kernels::backward_weight_direct(dy.dtype(), dy.raw_data(), x.raw_data(),
                                                       dw.raw_data(), dims, 1, split.chunk_len));
    return;
  }
  // Per-chunk partial sums, then one ordered sum: deterministic, and no atomics.
  const Tensor partial = device_empty({split.chunks * dw.numel()}, dw);
  CT_CUDA_CHECK(kOp, conv_kernels::backward_weight_direct(dy.dtype(), dy.raw_data(), x.raw_data(),
                                                          partial.raw_data(), dims, split.chunks,
                                                          split.chunk_len));
  CT_CUDA_CHECK(kOp, conv_kernels::chunk_sum(dy.dtype(), partial.raw_data(), dw.raw_data(),
                                             split.chunks, dw.numel()));
}

}  // namespace

Tensor conv_forward(const Tensor& x, const Tensor& w, const Tensor& b, const ConvGeometry& g) {
  check_first(x, "input");
  const DType dtype = x.dtype();
  const Device device = x.device();
  check_operand(x, "input", x_shape(g), dtype, device);
  check_operand(w, "weight", w_shape(g), dtype, device);
  if (b.defined()) check_operand(b, "bias", {g.out_channels}, dtype, device);
  DeviceScope scope(kOp, device);
  const Tensor y = device_empty(y_shape(g), x);
  if (y.numel() == 0) return y;
  if (x.numel() == 0 || w.numel() == 0) {
    zero(y);  // every sum is empty: y is the bias alone
  } else {
    const ConvPlan plan = plan_conv(g);
    bool done = false;
    if (!plan.direct) {
      const Settings s = Settings::now();
      const Tensor xin = plan.materialise ? pad_input(plan, g, x) : x;
      const ConvGeometry& c = plan.cudnn;
      done = true;
      for (std::int64_t n0 = 0; done && n0 < c.batch; n0 += plan.batch_chunk) {
        const std::int64_t n = std::min(plan.batch_chunk, c.batch - n0);
        done = run_pass<ForwardPass>(c, n, dtype, device, s,
                                     {.x = byte_offset(xin, n0 * x_sample(c)),
                                      .w = w.raw_data(),
                                      .y = byte_offset_mut(y, n0 * y_sample(c))});
      }
    }
    if (!done) {
      direct_forward(x, w, b, y, g);  // adds the bias itself
      return y;
    }
  }
  if (b.defined())
    CT_CUDA_CHECK(kOp, conv_kernels::add_bias(dtype, y.raw_data(), b.raw_data(), g.out_channels,
                                              g.out_numel(), y.numel()));
  return y;
}

namespace {

// The data gradient without a bias.
Tensor backward_data_unbiased(const Tensor& dy, const Tensor& w, const ConvGeometry& g) {
  check_first(dy, "output gradient");
  const DType dtype = dy.dtype();
  const Device device = dy.device();
  check_operand(dy, "output gradient", y_shape(g), dtype, device);
  check_operand(w, "weight", w_shape(g), dtype, device);
  DeviceScope scope(kOp, device);
  const Tensor dx = device_empty(x_shape(g), dy);
  if (dx.numel() == 0) return dx;
  if (dy.numel() == 0 || w.numel() == 0) {
    zero(dx);
    return dx;
  }
  const ConvPlan plan = plan_conv(g);
  if (!plan.direct) {
    const Settings s = Settings::now();
    const ConvGeometry& c = plan.cudnn;
    // With x~, cuDNN's gradient is x~'s; ConvUnpad gathers x's elements back out of it.
    const Tensor dxt = plan.materialise
                           ? device_empty(cat({g.batch, g.channels},
                                              Shape(plan.pad.padded, plan.pad.padded + plan.pad.s)),
                                          dy)
                           : dx;
    bool done = true;
    for (std::int64_t n0 = 0; done && n0 < c.batch; n0 += plan.batch_chunk) {
      const std::int64_t n = std::min(plan.batch_chunk, c.batch - n0);
      done = run_pass<BackwardDataPass>(c, n, dtype, device, s,
                                        {.dy = byte_offset(dy, n0 * y_sample(c)),
                                         .w = w.raw_data(),
                                         .dx = byte_offset_mut(dxt, n0 * x_sample(c))});
    }
    if (done) {
      if (plan.materialise)
        CT_CUDA_CHECK(kOp, conv_kernels::unpad(dtype, dxt.raw_data(), dx.raw_data(), plan.pad));
      return dx;
    }
  }
  direct_backward_data(dy, w, dx, g);
  return dx;
}

}  // namespace

Tensor conv_backward_data(const Tensor& dy, const Tensor& w, const ConvGeometry& g,
                          const Tensor& b) {
  check_first(dy, "output gradient");
  if (b.defined()) check_operand(b, "bias", {g.channels}, dy.dtype(), dy.device());
  const Tensor dx = backward_data_unbiased(dy, w, g);
  if (b.defined() && dx.numel() > 0) {
    DeviceScope scope(kOp, dy.device());
    CT_CUDA_CHECK(kOp, conv_kernels::add_bias(dy.dtype(), dx.raw_data(), b.raw_data(), g.channels,
                                              g.in_numel(), dx.numel()));
  }
  return dx;
}

Tensor conv_backward_weight(const Tensor& dy, const Tensor& x, const ConvGeometry& g) {
  check_first(dy, "output gradient");
  const DType dtype = dy.dtype();
  const Device device = dy.device();
  check_operand(dy, "output gradient", y_shape(g), dtype, device);
  check_operand(x, "input", x_shape(g), dtype, device);
  DeviceScope scope(kOp, device);
  const Tensor dw = device_empty(w_shape(g), dy);
  if (dw.numel() == 0) return dw;
  if (dy.numel() == 0 || x.numel() == 0) {
    zero(dw);
    return dw;
  }
  const ConvPlan plan = plan_conv(g);
  if (!plan.direct) {
    const Settings s = Settings::now();
    const ConvGeometry& c = plan.cudnn;
    const Tensor xin = plan.materialise ? pad_input(plan, g, x) : x;
    bool done = true;
    for (std::int64_t n0 = 0; done && n0 < c.batch; n0 += plan.batch_chunk) {
      const std::int64_t n = std::min(plan.batch_chunk, c.batch - n0);
      done = run_pass<BackwardFilterPass>(c, n, dtype, device, s,
                                          {.dy = byte_offset(dy, n0 * y_sample(c)),
                                           .x = byte_offset(xin, n0 * x_sample(c)),
                                           .dw = dw,
                                           .accumulate = n0 > 0});
    }
    if (done) return dw;
  }
  direct_backward_weight(dy, x, dw, g);  // overwrites whatever earlier slices summed
  return dw;
}

}  // namespace convtape::cuda
