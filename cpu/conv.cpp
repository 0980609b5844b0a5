// The CPU convolution entry points: each pass is planned (cpu/conv_plan.h: path, tiles, thread
// split, workspace, from the geometry, the dtype, the ISA path's GEMM kernel and the threads) and
// the plan dispatched to its path (cpu/conv_paths.h). CONVTAPE_CONV_VERBOSE=1 prints one line per
// call to stderr: the pass, the geometry and the plan. CONVTAPE_CONV_EXACT=1 turns the exact
// switch on for every call (ConvOptions::exact per call): no Winograd. Both variables follow the
// on/off rule of core/settings.h and are read once, at the first convolution.
#include "cpu/conv.h"

#include <omp.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include <fmt/format.h>

#include "core/settings.h"
#include "cpu/conv_paths.h"
#include "cpu/conv_winograd.h"
#include "cpu/conv_winograd_axes.h"
#include "cpu/gemm_kernel.h"
#include "cpu/parallel.h"

namespace convtape::cpu {

namespace conv_detail {

template <class T>
void run_forward(const ConvPlan& plan, const GemmKernel<T>& kern, const T* x, const T* w,
                 const T* b, T* y) {
  switch (plan.path) {
    case ConvPath::winograd:
      if constexpr (std::is_same_v<T, float>) return winograd::forward(x, w, b, y, plan.geometry);
      break;  // the plan picks Winograd for float32 only
    case ConvPath::winograd_s2:
      if constexpr (std::is_same_v<T, float>)
        return winograd_s2::forward(x, w, b, y, plan.geometry);
      break;
    case ConvPath::winograd_1d:
      if constexpr (std::is_same_v<T, float>)
        return winograd_1d::forward(x, w, b, y, plan.geometry);
      break;
    case ConvPath::winograd_kxk:
      if constexpr (std::is_same_v<T, float>)
        return winograd_kxk::forward(x, w, b, y, plan.geometry);
      break;
    case ConvPath::direct_padded:
    case ConvPath::direct:
      return depthwise_forward(plan, x, w, b, y);
    case ConvPath::implicit_gemm:
      return implicit_forward(plan, kern, x, w, b, y);
    case ConvPath::dilation_split:
      return dilated_forward(plan, kern, x, w, b, y);
    case ConvPath::depth_unfold:
      return unfold_forward(plan, kern, x, w, b, y);
    case ConvPath::kernel_split:
      return split_forward(plan, kern, x, w, b, y);
    case ConvPath::pointwise_gemm:
    case ConvPath::im2col_gemm:
      return im2col_forward(plan, kern, x, w, b, y);
    default:
      break;
  }
  CT_FAIL("conv_forward: expected a forward path, got plan {}", to_string(plan));
}

namespace {

// Every data-gradient path but phase_implicit, which takes the bias itself.
template <class T>
void run_unbiased_backward_data(const ConvPlan& plan, const GemmKernel<T>& kern, const T* dy,
                                const T* w, T* dx) {
  switch (plan.path) {
    case ConvPath::winograd:
      if constexpr (std::is_same_v<T, float>)
        return winograd::backward_data(dy, w, dx, plan.geometry);
      break;
    case ConvPath::winograd_s2:
      if constexpr (std::is_same_v<T, float>)
        return winograd_s2::backward_data(dy, w, dx, plan.geometry);
      break;
    case ConvPath::winograd_1d:
      if constexpr (std::is_same_v<T, float>)
        return winograd_1d::backward_data(dy, w, dx, plan.geometry);
      break;
    case ConvPath::winograd_kxk:
      if constexpr (std::is_same_v<T, float>)
        return winograd_kxk::backward_data(dy, w, dx, plan.geometry);
      break;
    case ConvPath::direct_padded:
    case ConvPath::direct:
      return depthwise_backward_data(plan, dy, w, dx);
    case ConvPath::phase_split:
      return phase_backward_data(plan, kern, dy, w, dx);
    case ConvPath::transposed_forward:
      return transposed_backward_data(plan, kern, dy, w, dx);
    case ConvPath::dilation_split:
      return dilated_backward_data(plan, kern, dy, w, dx);
    case ConvPath::depth_unfold:
      return unfold_backward_data(plan, kern, dy, w, dx);
    case ConvPath::kernel_split:
      return split_backward_data(plan, kern, dy, w, dx);
    case ConvPath::pointwise_gemm:
    case ConvPath::im2col_gemm:
      return im2col_backward_data(plan, kern, dy, w, dx);
    default:
      break;
  }
  CT_FAIL("conv_backward_data: expected a data-gradient path, got plan {}", to_string(plan));
}

}  // namespace

template <class T>
void run_backward_data(const ConvPlan& plan, const GemmKernel<T>& kern, const T* dy, const T* w,
                       T* dx, const T* b) {
  // phase_implicit adds the bias as it writes dx; the other paths get it added in place after.
  if (plan.path == ConvPath::phase_implicit)
    return phase_implicit_backward_data(plan, kern, dy, w, b, dx);
  run_unbiased_backward_data(plan, kern, dy, w, dx);
  if (!b) return;
  const ConvGeometry& g = plan.geometry;
  const std::int64_t planes = g.batch * g.channels, plane = g.in_numel();
#pragma omp parallel for schedule(static) if (planes > 1 && planes * plane >= kParallelWork)
  for (std::int64_t nc = 0; nc < planes; ++nc) {
    T* p = dx + nc * plane;
    const T v = b[nc % g.channels];
    for (std::int64_t i = 0; i < plane; ++i) p[i] += v;
  }
}

template <class T>
void run_backward_weight(const ConvPlan& plan, const GemmKernel<T>& kern, const T* dy, const T* x,
                         T* dw) {
  switch (plan.path) {
    case ConvPath::winograd:
      if constexpr (std::is_same_v<T, float>)
        return winograd::backward_weight(dy, x, dw, plan.geometry);
      break;
    case ConvPath::winograd_s2:
      if constexpr (std::is_same_v<T, float>)
        return winograd_s2::backward_weight(dy, x, dw, plan.geometry);
      break;
    case ConvPath::winograd_1d:
      if constexpr (std::is_same_v<T, float>)
        return winograd_1d::backward_weight(dy, x, dw, plan.geometry);
      break;
    case ConvPath::winograd_kxk:
      if constexpr (std::is_same_v<T, float>)
        return winograd_kxk::backward_weight(dy, x, dw, plan.geometry);
      break;
    case ConvPath::direct_padded:
    case ConvPath::direct:
      return depthwise_backward_weight(plan, dy, x, dw);
    case ConvPath::implicit_gemm:
      return implicit_backward_weight(plan, kern, dy, x, dw);
    case ConvPath::dilation_split:
      return dilated_backward_weight(plan, kern, dy, x, dw);
    case ConvPath::depth_unfold:
      return unfold_backward_weight(plan, kern, dy, x, dw);
    case ConvPath::kernel_split:
      return split_backward_weight(plan, kern, dy, x, dw);
    case ConvPath::pointwise_gemm:
    case ConvPath::im2col_gemm:
      return im2col_backward_weight(plan, kern, dy, x, dw);
    default:
      break;
  }
  CT_FAIL("conv_backward_weight: expected a weight-gradient path, got plan {}", to_string(plan));
}

#define CT_INSTANTIATE(T)                                                                         \
  template void run_forward<T>(const ConvPlan&, const GemmKernel<T>&, const T*, const T*,         \
                               const T*, T*);                                                     \
  template void run_backward_data<T>(const ConvPlan&, const GemmKernel<T>&, const T*, const T*,   \
                                     T*, const T*);                                               \
  template void run_backward_weight<T>(const ConvPlan&, const GemmKernel<T>&, const T*, const T*, \
                                       T*);
CT_INSTANTIATE(float)
CT_INSTANTIATE(double)
#undef CT_INSTANTIATE

}  // namespace conv_detail

namespace {

using conv_detail::run_backward_data;
using conv_detail::run_backward_weight;
using conv_detail::run_forward;

bool env_switch(const char* name) {
  return detail::parse_env_flag(std::getenv(name), false);
}

// The machine side of a plan, from the kernel the call will run with: its ISA and blocking, the
// planned threads, the team, and CONVTAPE_CONV_EXACT (read once).
template <class T>
ConvTarget target_for(const GemmKernel<T>& kern) {
  static const bool exact = env_switch("CONVTAPE_CONV_EXACT");
  ConvTarget t;
  t.dtype = std::is_same_v<T, float> ? DType::Float32 : DType::Float64;
  t.isa = parse_isa(kern.isa).value_or(Isa::portable);
  t.gemm = {kern.mr, kern.nr, kern.kc, kern.mc, kern.nc};
  t.threads = plan_threads();
  t.team = omp_get_max_threads();
  t.exact = exact;
  return t;
}

// Plans one call, printing the plan under CONVTAPE_CONV_VERBOSE=1 (read once).
template <class T>
ConvPlan plan_call(const ConvGeometry& g, ConvPass pass, const GemmKernel<T>& kern) {
  static const bool verbose = env_switch("CONVTAPE_CONV_VERBOSE");
  ConvPlan plan = plan_conv(g, pass, target_for(kern));
  if (verbose) {
    const std::string line =
        fmt::format("convtape conv: {} {} -> {}\n", pass_name(pass), to_string(g), to_string(plan));
    std::fputs(line.c_str(), stderr);  // one write per line, whole even with threads
  }
  return plan;
}

// Planes [n, c] of an empty conv's result: the bias of channel c (null: zeros).
template <class T>
void fill_planes(T* out, std::int64_t planes, std::int64_t plane, std::int64_t channels,
                 const T* bias) {
  if (plane == 0) return;  // nothing to write, however many planes (the batch may be huge)
  for (std::int64_t nc = 0; nc < planes; ++nc)
    std::fill_n(out + nc * plane, plane, bias ? bias[nc % channels] : T(0));
}

// A dense CPU tensor set to zero, for gradients that no element contributes to.
Tensor zero_filled(Tensor t) {
  if (t.numel() == 0) return t;
  std::memset(t.raw_data(), 0, static_cast<std::size_t>(t.numel()) * dtype_size(t.dtype()));
  return t;
}

}  // namespace

Tensor conv_forward(const Tensor& x, const Tensor& w, const Tensor& b, const ConvGeometry& g) {
  Shape shape{g.batch, g.out_channels};
  shape.insert(shape.end(), g.out.begin(), g.out.end());
  Tensor y = Tensor::empty_cpu(shape, x.dtype());
  dispatch_floating(x.dtype(), [&]<class T>() {
    const GemmKernel<T>& kern = gemm_kernel<T>();
    const ConvPlan plan = plan_call(g, ConvPass::forward, kern);
    T* out = y.data_ptr<T>();
    const T* bias = b.defined() ? b.data_ptr<T>() : nullptr;
    // Empty operands are answered here, before any path: no plan may be sized from the geometry
    // of an empty batch (a padding of 2^61 with batch 0 once sized a 2^62-element plane), nor
    // divide by an empty extent (the implicit-GEMM grid did). With an empty input, no tap reads
    // anything: the output is the bias (or zeros).
    if (plan.path == ConvPath::empty)
      return fill_planes(out, g.batch * g.out_channels, g.out_numel(), g.out_channels, bias);
    run_forward<T>(plan, kern, x.data_ptr<T>(), w.data_ptr<T>(), bias, out);
  });
  return y;
}

Tensor conv_backward_data(const Tensor& dy, const Tensor& w, const ConvGeometry& g,
                          const Tensor& b) {
  Shape shape{g.batch, g.channels};
  shape.insert(shape.end(), g.in.begin(), g.in.end());
  Tensor dx = Tensor::empty_cpu(shape, dy.dtype());
  dispatch_floating(dy.dtype(), [&]<class T>() {
    const GemmKernel<T>& kern = gemm_kernel<T>();
    const ConvPlan plan = plan_call(g, ConvPass::backward_data, kern);
    const T* bias = b.defined() ? b.data_ptr<T>() : nullptr;
    T* out = dx.data_ptr<T>();
    // No output reads any input: dx is the bias (or zeros).
    if (plan.path == ConvPath::empty)
      return fill_planes(out, g.batch * g.channels, g.in_numel(), g.channels, bias);
    run_backward_data<T>(plan, kern, dy.data_ptr<T>(), w.data_ptr<T>(), out, bias);
  });
  return dx;
}

Tensor conv_backward_weight(const Tensor& dy, const Tensor& x, const ConvGeometry& g) {
  Shape shape{g.out_channels, g.group_channels()};
  shape.insert(shape.end(), g.kernel.begin(), g.kernel.end());
  Tensor dw = Tensor::empty_cpu(shape, dy.dtype());
  dispatch_floating(dy.dtype(), [&]<class T>() {
    const GemmKernel<T>& kern = gemm_kernel<T>();
    const ConvPlan plan = plan_call(g, ConvPass::backward_weight, kern);
    if (plan.path == ConvPath::empty) {
      zero_filled(dw);  // an empty sum
      return;
    }
    run_backward_weight<T>(plan, kern, dy.data_ptr<T>(), x.data_ptr<T>(), dw.data_ptr<T>());
  });
  return dw;
}

}  // namespace convtape::cpu
