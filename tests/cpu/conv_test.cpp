// The CPU convolution entry points: a large convolution runs in memory close to input + output +
// weights, with a bounded per-thread workspace, where a materialised column matrix would need many
// times more; the exact switch (ConvOptions::exact, ConvTransposeOptions::exact,
// ConvGeneralOptions::exact, CONVTAPE_CONV_EXACT=1) keeps a Winograd-eligible float32 conv on the
// exact paths, so that small integers give exact results, gradients included; and
// CONVTAPE_CONV_VERBOSE=1 prints one plan line per call (both variables checked in a child
// process of this test, since they are read once); and the plan's workspace bound covers the
// per-thread GEMM buffers each path really grows (each pass measured in a fresh child process,
// where no buffer is held yet); and the positions-major form of the implicit-GEMM forward is exact
// on small integers, against direct loops, under every ISA path.
#include <omp.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <unistd.h>

#include "core/settings.h"
#include "cpu/conv.h"
#include "cpu/conv_paths.h"
#include "cpu/conv_plan.h"
#include "cpu/gemm_kernel.h"
#include "cpu/parallel.h"
#include "support/conv_target.h"
#include "support/test_util.h"

using namespace convtape;

namespace {

// Small integers in [-4, 4] (float32 products and sums of them stay exact), in float32.
Tensor small_ints(const Shape& shape) {
  return randint(-4, 5, shape).to(kFloat32);
}

// Every value of a float32 tensor equals the float64 one's.
bool exactly(const Tensor& f32, const Tensor& f64) {
  return ct_test::equal(f32.to(kFloat64), f64);
}

// Runs this test binary with `env` and the tag, and returns its output; status is its exit status.
std::string run_child(const std::string& env, const std::string& tag, int& status) {
  // /proc/self/exe would name the shell popen starts: read our own path first.
  std::array<char, 4096> self{};
  const ssize_t len = readlink("/proc/self/exe", self.data(), self.size() - 1);
  REQUIRE(len > 0);
  const std::string run =
      env + " '" + std::string(self.data(), static_cast<std::size_t>(len)) + "' '" + tag + "' 2>&1";
  FILE* pipe = popen(run.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string out;
  std::array<char, 4096> buf{};
  while (std::fgets(buf.data(), static_cast<int>(buf.size()), pipe)) out += buf.data();
  status = pclose(pipe);
  return out;
}

// The workspace cases: (x shape, w shape, padding, stride, input dilation, exact), each run as
// one pass in a child.
struct WorkspaceCase {
  Shape x, w;
  std::int64_t pad, stride, input_dilation;
  bool exact;
};
const std::vector<WorkspaceCase>& workspace_cases() {
  static const std::vector<WorkspaceCase> cases{
      {{4, 64, 56, 56}, {64, 64, 3, 3}, 1, 1, 1, false},     // Winograd
      {{2, 256, 14, 14}, {256, 256, 3, 3}, 1, 1, 1, false},  // Winograd, wide channels
      {{4, 64, 56, 56}, {64, 64, 3, 3}, 1, 1, 1, true},      // implicit GEMM, transposed forward
      {{4, 64, 56, 56}, {128, 64, 3, 3}, 1, 2, 1, true},     // strided: stride phases
      {{4, 256, 28, 28}, {256, 256, 3, 3}, 1, 2, 1, true},   // positions-major forward
      {{1, 256, 14, 14}, {256, 256, 3, 3}, 1, 1, 1, true},   // batch 1: dw column blocks
      {{16, 32, 28, 28}, {64, 32, 5, 5}, 2, 1, 1, false},    // 5x5: kernel split, Winograd
      {{2, 32, 40, 40}, {48, 32, 3, 3}, 1, 1, 2, true},      // input dilation: im2col, col2im
      {{4, 256, 28, 28}, {64, 256, 1, 1}, 0, 1, 1, true},    // pointwise
      {{4, 64, 28, 28}, {64, 1, 3, 3}, 1, 1, 1, true},       // depthwise
  };
  return cases;
}

}  // namespace

TEST_CASE("a large convolution needs input + output + weights and a bounded workspace",
          "[conv][memory]") {
  // 64 channels of 192 x 192, 3 x 3 kernel: the column matrix would be 64 * 9 * 192 * 192 floats
  // (85 MB); input and output are 9.4 MB each.
  manual_seed(0);
  const Tensor x = randn({1, 64, 192, 192});
  const Tensor w = randn({64, 64, 3, 3});
  const Tensor b = randn({64});
  const double in_bytes = double(x.numel()) * 4, w_bytes = double(w.numel()) * 4;
  const double out_bytes = in_bytes;
  const double columns = 64.0 * 9 * 192 * 192 * 4;
  reset_peak_memory_stats();
  const std::int64_t before = memory_stats().cpu_bytes;
  Tensor y;
  {
    NoGradGuard guard;
    // exact: the GEMM path, whose scratch is the packing workspace (memory_stats counts it).
    y = conv2d(x, w, b, ConvOptions().padding(1).exact());
  }
  const MemoryStats after = memory_stats();
  const double extra_peak = double(after.cpu_peak_bytes - before);
  INFO("peak beyond the inputs: " << extra_peak << " bytes; workspace " << after.workspace_bytes
                                  << " bytes");
  CHECK(y.shape() == Shape{1, 64, 192, 192});
  CHECK(extra_peak <= out_bytes * 1.01);  // the output is the only new storage
  const double per_thread_limit = 4.0 * 1024 * 1024;
  CHECK(double(after.workspace_bytes) <= per_thread_limit * omp_get_max_threads() + 1e6);
  CHECK(double(after.workspace_bytes) < columns / 10);
  (void)w_bytes;

  // The same bound holds for the gradients.
  Tensor xg = x.clone().requires_grad_(), wg = w.clone().requires_grad_();
  reset_peak_memory_stats();
  const std::int64_t start = memory_stats().cpu_bytes;
  Tensor out = conv2d(xg, wg, Tensor(), ConvOptions().padding(1).exact());
  out.backward(ones_like(out));
  const MemoryStats grads = memory_stats();
  INFO("backward peak beyond the inputs: " << grads.cpu_peak_bytes - start);
  // output, its gradient, dx and dw (plus the saved-tensor views, which share storage)
  CHECK(double(grads.cpu_peak_bytes - start) <= (2 * out_bytes + in_bytes + w_bytes) * 1.05 + 1e6);
  CHECK(double(grads.workspace_bytes) <= per_thread_limit * omp_get_max_threads() + 1e6);
}

TEST_CASE("exact keeps a Winograd-eligible conv exact on small integers, gradients included",
          "[conv][exact]") {
  // 32 -> 32 channels, 3 x 3, stride 1, padding 1, 16 x 16 tiles (a block for each of up to 8
  // planned threads): Winograd takes it unless exact.
  manual_seed(7);
  const Tensor x = small_ints({16, 32, 16, 16}), w = small_ints({32, 32, 3, 3});
  const Tensor b = small_ints({32});
  const Tensor x64 = x.to(kFloat64), w64 = w.to(kFloat64), b64 = b.to(kFloat64);
  const ConvOptions o = ConvOptions().padding(1);
  const Tensor ref = conv2d(x64, w64, b64, o);  // float64: never Winograd
  {
    NoGradGuard guard;
    // Winograd's transforms hold 1/6 and 1/24: some value is off by a rounding error, which is
    // what the exact switch is for (a test that passes for any plan would prove nothing).
    const Tensor fast = conv2d(x, w, b, o);
    // Within Winograd's contract (cpu/conv_winograd.h): 4e-5 sqrt(L) P with L = 288 taps and
    // operand products P up to 16.
    REQUIRE(ct_test::allclose(fast.to(kFloat64), ref, 1e-4, 4e-5 * std::sqrt(288.0) * 16));
    if (!detail::parse_env_flag(std::getenv("CONVTAPE_CONV_EXACT"), false))
      REQUIRE_FALSE(exactly(fast, ref));
    CHECK(exactly(conv2d(x, w, b, ConvOptions(o).exact()), ref));
  }
  // Gradients of the exact conv: dx and dw exact as well.
  Tensor xg = x.clone().requires_grad_(), wg = w.clone().requires_grad_();
  Tensor xr = x64.clone().requires_grad_(), wr = w64.clone().requires_grad_();
  const Tensor dy = small_ints({16, 32, 16, 16});
  conv2d(xg, wg, b, ConvOptions(o).exact()).backward(dy);
  conv2d(xr, wr, b64, o).backward(dy.to(kFloat64));
  CHECK(exactly(xg.grad(), xr.grad()));
  CHECK(exactly(wg.grad(), wr.grad()));

  // conv_transpose runs the data gradient of the conv it transposes (Winograd-eligible here).
  const ConvTransposeOptions t = ConvTransposeOptions().padding(1);
  const Tensor tref = conv_transpose2d(x64, w64, Tensor(), t);
  CHECK(exactly(conv_transpose2d(x, w, Tensor(), ConvTransposeOptions(t).exact()), tref));
  // conv_general in NHWC / HWIO.
  ConvGeneralOptions g;
  g.padding = {{1, 1}, {1, 1}};
  g.dimension_numbers = {"NHWC", "HWIO", "NHWC"};
  const Tensor xn = permute(x, {0, 2, 3, 1}).contiguous(),
               wn = permute(w, {2, 3, 1, 0}).contiguous();
  const Tensor gref = conv_general(xn.to(kFloat64), wn.to(kFloat64), g);
  g.exact = true;
  CHECK(exactly(conv_general(xn, wn, g), gref));
}

// The child of the next test: one Winograd-eligible conv with its gradients, run with the
// environment the parent sets; exact only through CONVTAPE_CONV_EXACT.
TEST_CASE("conv environment child", "[.conv_env_child]") {
  manual_seed(7);
  const Tensor x = small_ints({16, 32, 16, 16}), w = small_ints({32, 32, 3, 3});
  Tensor xg = x.clone().requires_grad_(), wg = w.clone().requires_grad_();
  const Tensor y = conv2d(xg, wg, Tensor(), ConvOptions().padding(1));
  y.backward(ones_like(y));
  const Tensor ref = conv2d(x.to(kFloat64), w.to(kFloat64), Tensor(), ConvOptions().padding(1));
  REQUIRE(exactly(y.detach(), ref));
}

TEST_CASE("CONVTAPE_CONV_VERBOSE prints each call's plan; CONVTAPE_CONV_EXACT forces exact",
          "[conv][exact]") {
  int status = 0;
  const std::string out =
      run_child("CONVTAPE_CONV_VERBOSE=1 CONVTAPE_CONV_EXACT=1", "[.conv_env_child]", status);
  INFO(out);
  CHECK(status == 0);  // the child's exactness check passed
  const std::string geometry =
      "N=16 C=32 K=32 groups=1 in=16x16 out=16x16 kernel=3x3 stride=1x1 dilation=1x1 "
      "input_dilation=1x1 pad_lo=1x1 -> ";
  // One line per call: the float32 forward and both gradients (exact: no Winograd), then the
  // float64 reference.
  for (const char* pass : {"forward", "backward_data", "backward_weight"}) {
    const std::string line = std::string("convtape conv: ") + pass + " " + geometry;
    const auto at = out.find(line);
    REQUIRE(at != std::string::npos);
    const std::string plan = out.substr(at + line.size(), out.find('\n', at) - at - line.size());
    CHECK(plan.find(" float32 ") != std::string::npos);
    CHECK(plan.find(" exact") != std::string::npos);
    CHECK(plan.rfind("winograd", 0) != 0);
  }
  CHECK(out.find("convtape conv: forward " + geometry) !=
        out.rfind("convtape conv: forward " + geometry));  // the float64 reference too
}

// The child of the next test: one pass of one case (CT_CONV_CASE = 3 * case + pass), printing the
// GEMM buffers it grew and the plan's bound.
TEST_CASE("conv workspace child", "[.conv_workspace_child]") {
  const char* which = std::getenv("CT_CONV_CASE");
  REQUIRE(which != nullptr);
  const int index = std::atoi(which);
  const WorkspaceCase& c = workspace_cases().at(static_cast<std::size_t>(index / 3));
  const auto pass = static_cast<cpu::ConvPass>(index % 3);
  manual_seed(3);
  const Tensor x = randn(c.x), w = randn(c.w);
  ConvGeometry g;
  g.batch = c.x[0];
  g.channels = c.x[1];
  g.out_channels = c.w[0];
  g.groups = c.x[1] / c.w[1];
  g.exact = c.exact;
  for (std::size_t d = 2; d < c.x.size(); ++d) {
    g.in.push_back(c.x[d]);
    g.kernel.push_back(c.w[d]);
    g.stride.push_back(c.stride);
    g.dilation.push_back(1);
    g.input_dilation.push_back(c.input_dilation);
    g.pad_lo.push_back(c.pad);
    const std::int64_t in = (c.x[d] - 1) * c.input_dilation + 1;
    g.out.push_back((in + 2 * c.pad - c.w[d]) / c.stride + 1);
  }
  Shape ys{g.batch, g.out_channels};
  ys.insert(ys.end(), g.out.begin(), g.out.end());
  const Tensor dy = randn(ys);
  const auto& kern = cpu::gemm_kernel<float>();
  cpu::ConvTarget t;
  t.isa = cpu::parse_isa(kern.isa).value_or(cpu::Isa::portable);
  t.gemm = {kern.mr, kern.nr, kern.kc, kern.mc, kern.nc};
  t.threads = cpu::plan_threads();
  t.team = omp_get_max_threads();
  const cpu::ConvPlan plan = cpu::plan_conv(g, pass, t);
  const std::int64_t before = memory_stats().workspace_bytes;
  if (pass == cpu::ConvPass::forward) cpu::conv_forward(x, w, Tensor(), g);
  if (pass == cpu::ConvPass::backward_data) cpu::conv_backward_data(dy, w, g);
  if (pass == cpu::ConvPass::backward_weight) cpu::conv_backward_weight(dy, x, g);
  const std::int64_t grown = memory_stats().workspace_bytes - before;
  std::printf("grown %lld bound %lld team %d plan %s\n", static_cast<long long>(grown),
              static_cast<long long>(plan.workspace_bytes), t.team, cpu::to_string(plan).c_str());
}

TEST_CASE("the plan's workspace bound covers the GEMM buffers each path grows", "[conv][plan]") {
  for (std::size_t i = 0; i < 3 * workspace_cases().size(); ++i) {
    int status = 0;
    const std::string out = run_child("CT_CONV_CASE=" + std::to_string(i) + " OMP_NUM_THREADS=2",
                                      "[.conv_workspace_child]", status);
    INFO("case " << i / 3 << " pass " << i % 3 << ": " << out);
    REQUIRE(status == 0);
    long long grown = -1, bound = -1;
    int team = 0;
    const auto at = out.find("grown ");
    REQUIRE(at != std::string::npos);
    REQUIRE(std::sscanf(out.c_str() + at, "grown %lld bound %lld team %d", &grown, &bound, &team) ==
            3);
    CHECK(grown > 0);
    // Buffers are allocated in whole pages: up to 4 KiB more per buffer and thread.
    CHECK(grown <= bound + 4 * 4096LL * team);
  }
}

TEST_CASE("a batch-1 implicit forward cut into output-channel blocks equals the uncut forward",
          "[conv]") {
  // Deterministic mode plans for 8 threads: one sample then feeds them equal blocks of output
  // channels (conv_plan.h, block_channels), each packed by its task; a block's last row panel at
  // most half full runs the half-height kernel (64 channels in blocks of 8 on 6-row panels). Every
  // output value is computed by one task with the same reduction slices either way, so the result
  // equals the one-thread plan's bit for bit, on every ISA path.
  for (const cpu::Isa isa : cpu::available_isas())
    for (const std::int64_t k : {40, 64}) {
      const cpu::IsaGuard guard_isa(isa);
      INFO("isa " << cpu::isa_name(isa) << ", " << k << " output channels");
      manual_seed(3);
      const Tensor x = randn({1, 24, 20, 20}, kFloat64), w = randn({k, 24, 3, 3}, kFloat64),
                   b = randn({k}, kFloat64);
      const bool was = deterministic();
      const int team = omp_get_max_threads();
      set_deterministic(true);
      Tensor cut;
      {
        NoGradGuard guard;
        cut = conv2d(x, w, b, ConvOptions().padding(1));
      }
      set_deterministic(false);
      omp_set_num_threads(1);
      Tensor whole;
      {
        NoGradGuard guard;
        whole = conv2d(x, w, b, ConvOptions().padding(1));
      }
      omp_set_num_threads(team);
      set_deterministic(was);
      cpu::ConvTarget t;
      t.dtype = DType::Float64;
      const auto& kern = cpu::gemm_kernel<double>();
      t.isa = isa;
      t.gemm = {kern.mr, kern.nr, kern.kc, kern.mc, kern.nc};
      t.threads = cpu::kDeterministicThreads;
      t.team = cpu::kDeterministicThreads;
      ConvGeometry g;
      g.batch = 1;
      g.channels = 24;
      g.out_channels = k;
      g.groups = 1;
      g.in = g.out = {20, 20};
      g.kernel = {3, 3};
      g.stride = g.dilation = g.input_dilation = g.pad_lo = {1, 1};  // padding 1, unit elsewhere
      const cpu::ConvPlan p = cpu::plan_conv(g, cpu::ConvPass::forward, t);
      INFO(cpu::to_string(p));
      REQUIRE(p.path == cpu::ConvPath::implicit_gemm);
      REQUIRE(p.channel_blocks > 1);
      CHECK(ct_test::equal(cut, whole));
    }
}

namespace {

// An exact-path geometry (ConvOptions::exact: the GEMM and direct paths only, whose float32
// results on small integers are exact) with symmetric padding and no input dilation.
ConvGeometry exact_geometry(std::int64_t n, std::int64_t c, std::int64_t k, std::int64_t groups,
                            const Shape& in, const Shape& kernel, const Shape& stride,
                            const Shape& dilation, const Shape& pad) {
  ConvGeometry g = ct_test::conv_geometry(n, c, k, groups, in, kernel, dilation, pad, pad, stride);
  g.exact = true;
  return g;
}

// x [N, C, *in], w [K, C/groups, *kernel] and dy [N, K, *out] shapes of g.
Shape input_shape(const ConvGeometry& g) {
  Shape s{g.batch, g.channels};
  s.insert(s.end(), g.in.begin(), g.in.end());
  return s;
}
Shape weight_shape(const ConvGeometry& g) {
  Shape s{g.out_channels, g.group_channels()};
  s.insert(s.end(), g.kernel.begin(), g.kernel.end());
  return s;
}
Shape output_shape(const ConvGeometry& g) {
  Shape s{g.batch, g.out_channels};
  s.insert(s.end(), g.out.begin(), g.out.end());
  return s;
}

// Visits every (output, input, weight) index triple of an N-d convolution without input dilation:
// output (n, k, o), input (n, c of group(k), o * stride + r * dilation - pad_lo) inside x, weight
// (k, c, r).
template <class F>
void each_product(const ConvGeometry& g, F&& f) {
  const std::size_t s = g.in.size();
  const std::int64_t cg = g.group_channels(), kg = g.group_out_channels();
  const std::int64_t positions = g.out_numel(), taps = g.kernel_numel(), in_n = g.in_numel();
  for (std::int64_t n = 0; n < g.batch; ++n)
    for (std::int64_t k = 0; k < g.out_channels; ++k)
      for (std::int64_t p = 0; p < positions; ++p)
        for (std::int64_t c = 0; c < cg; ++c)
          for (std::int64_t r = 0; r < taps; ++r) {
            std::int64_t prem = p, rrem = r, off = 0, scale = 1;
            bool inside = true;
            for (std::size_t d = s; d-- > 0;) {
              const std::int64_t o = prem % g.out[d], t = rrem % g.kernel[d];
              prem /= g.out[d];
              rrem /= g.kernel[d];
              const std::int64_t i = o * g.stride[d] + t * g.dilation[d] - g.pad_lo[d];
              inside = inside && i >= 0 && i < g.in[d];
              off += i * scale;
              scale *= g.in[d];
            }
            if (!inside) continue;
            const std::int64_t ci = k / kg * cg + c;
            f(static_cast<std::size_t>((n * g.out_channels + k) * positions + p),
              static_cast<std::size_t>((n * g.channels + ci) * in_n + off),
              static_cast<std::size_t>((k * cg + c) * taps + r));
          }
}

// y = conv(x, w) + b by direct loops in float64.
std::vector<double> direct_conv(const ConvGeometry& g, const std::vector<double>& x,
                                const std::vector<double>& w, const std::vector<double>& b) {
  std::vector<double> y(static_cast<std::size_t>(g.batch * g.out_channels * g.out_numel()));
  for (std::size_t i = 0; i < y.size(); ++i)
    y[i] = b.empty() ? 0.0
                     : b[i / static_cast<std::size_t>(g.out_numel()) %
                         static_cast<std::size_t>(g.out_channels)];
  each_product(g, [&](std::size_t yi, std::size_t xi, std::size_t wi) { y[yi] += w[wi] * x[xi]; });
  return y;
}

// dw = the adjoint of conv in w, given dy and x, by direct loops in float64.
std::vector<double> direct_weight_grad(const ConvGeometry& g, const std::vector<double>& dy,
                                       const std::vector<double>& x) {
  std::vector<double> dw(
      static_cast<std::size_t>(g.out_channels * g.group_channels() * g.kernel_numel()), 0.0);
  each_product(g,
               [&](std::size_t yi, std::size_t xi, std::size_t wi) { dw[wi] += dy[yi] * x[xi]; });
  return dw;
}

// dx = the adjoint of conv in x, given dy, by direct loops in float64.
std::vector<double> direct_data_grad(const ConvGeometry& g, const std::vector<double>& dy,
                                     const std::vector<double>& w) {
  std::vector<double> dx(static_cast<std::size_t>(g.batch * g.channels * g.in_numel()), 0.0);
  each_product(g,
               [&](std::size_t yi, std::size_t xi, std::size_t wi) { dx[xi] += w[wi] * dy[yi]; });
  return dx;
}

}  // namespace

TEST_CASE("the positions-major implicit forward is exact on small integers under every ISA path",
          "[conv][plan]") {
  // Shapes whose grid would compute many columns past the output, with 4+ panels of output
  // channels: 2-d with a channel count that leaves a part panel, 3-d with a stride (outer planes),
  // 1-d with stride 3, and groups with more positions than one tile. Samples x groups >= 8, so
  // that deterministic mode's 8 planned threads take the same form.
  struct Case {
    std::int64_t n, c, k, groups;
    Shape in, kernel, stride, dilation, pad;
    bool bias;
  };
  const std::vector<Case> cases{
      {8, 24, 136, 1, {9, 9}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, true},
      {8, 8, 130, 1, {5, 6, 7}, {3, 3, 3}, {1, 2, 1}, {1, 1, 1}, {1, 1, 1}, false},
      {8, 16, 128, 1, {37}, {5}, {3}, {1}, {2}, true},
      {4, 32, 256, 2, {20, 20}, {3, 3}, {1, 1}, {1, 2}, {1, 2}, true},
      // Read in place (unit stride, no window in the padding), and through the phase-split copy
      // (a 1x1 stride-2 kernel reads one stride phase in four).
      {8, 16, 128, 1, {9, 9}, {3, 3}, {1, 1}, {1, 1}, {0, 0}, true},
      {8, 16, 128, 1, {9, 10}, {1, 1}, {2, 2}, {1, 1}, {0, 0}, false},
  };
  for (const Case& t : cases) {
    const ConvGeometry g =
        exact_geometry(t.n, t.c, t.k, t.groups, t.in, t.kernel, t.stride, t.dilation, t.pad);
    const Shape xs = input_shape(g), ws = weight_shape(g);
    manual_seed(11);
    const Tensor x = small_ints(xs), w = small_ints(ws);
    const Tensor b = t.bias ? small_ints({g.out_channels}) : Tensor();
    const std::vector<double> expect =
        direct_conv(g, x.to_vector<double>(), w.to_vector<double>(),
                    t.bias ? b.to_vector<double>() : std::vector<double>());
    for (const cpu::Isa isa : cpu::available_isas()) {
      cpu::IsaGuard guard(isa);
      for (const DType dtype : {DType::Float32, DType::Float64}) {
        const cpu::ConvTarget target = ct_test::call_target(dtype);
        const cpu::ConvPlan plan = cpu::plan_conv(g, cpu::ConvPass::forward, target);
        INFO(cpu::isa_name(isa) << " " << dtype_name(dtype) << ": " << cpu::to_string(plan));
        REQUIRE(plan.path == cpu::ConvPath::implicit_gemm);
        REQUIRE(plan.windows);
        const Tensor y =
            cpu::conv_forward(x.to(dtype), w.to(dtype), t.bias ? b.to(dtype) : Tensor(), g);
        CHECK(y.to_vector<double>() == expect);
      }
    }
  }
}

TEST_CASE("the strided data gradient's phase split is exact on small integers", "[conv][plan]") {
  // Strides 2 and 3, a dilation that shares residues with the stride, padding above and below
  // the stride, a kernel shorter than the stride (phases without taps), ranks 1-3, groups; input
  // channels per group enough for the phase split (two micro-kernel row panels), and enough for
  // its positions-major form (plan.windows) in the last cases.
  struct Case {
    std::int64_t n, c, k, groups;
    Shape in, kernel, stride, dilation, pad;
  };
  const std::vector<Case> cases{
      {2, 16, 24, 1, {11, 12}, {3, 3}, {2, 2}, {1, 1}, {1, 1}},
      {2, 16, 8, 1, {13, 10}, {4, 2}, {3, 2}, {2, 1}, {3, 0}},
      {2, 32, 16, 2, {9, 9}, {3, 3}, {2, 2}, {2, 1}, {2, 1}},
      {2, 16, 8, 1, {23}, {2}, {3}, {1}, {1}},
      {2, 16, 8, 1, {5, 6, 7}, {3, 3, 3}, {2, 1, 2}, {1, 1, 1}, {1, 1, 1}},
      {2, 16, 8, 1, {14, 14}, {4, 4}, {2, 2}, {1, 1}, {1, 1}},  // a 4x4 stride-2 transposed conv
      {2, 16, 8, 1, {13, 9}, {1, 1}, {2, 3}, {1, 1}, {0, 0}},   // one phase with taps
      // Channels enough for the positions-major form (4 panels of the widest nr, 32).
      {2, 128, 8, 1, {9, 10}, {3, 3}, {2, 2}, {1, 1}, {1, 1}},
      {2, 256, 16, 2, {7, 9}, {3, 3}, {2, 2}, {1, 2}, {1, 0}},
      {2, 128, 8, 1, {5, 6, 7}, {3, 3, 3}, {2, 1, 2}, {1, 1, 1}, {1, 1, 1}},
      {2, 128, 8, 1, {29}, {3}, {2}, {1}, {1}},
      {2, 128, 4, 1, {38, 37}, {3, 3}, {2, 2}, {1, 1}, {1, 1}},  // tiles cut lines
  };
  std::size_t fused = 0, windowed = 0;
  for (const Case& t : cases) {
    const ConvGeometry g =
        exact_geometry(t.n, t.c, t.k, t.groups, t.in, t.kernel, t.stride, t.dilation, t.pad);
    const Shape ys = output_shape(g), ws = weight_shape(g);
    manual_seed(13);
    const Tensor dy = small_ints(ys), w = small_ints(ws);
    const std::vector<double> expect =
        direct_data_grad(g, dy.to_vector<double>(), w.to_vector<double>());
    for (const cpu::Isa isa : cpu::available_isas()) {
      cpu::IsaGuard guard(isa);
      for (const DType dtype : {DType::Float32, DType::Float64}) {
        const cpu::ConvTarget target = ct_test::call_target(dtype);
        const cpu::ConvPlan plan = cpu::plan_conv(g, cpu::ConvPass::backward_data, target);
        INFO(cpu::isa_name(isa) << " " << dtype_name(dtype) << ": " << cpu::to_string(g) << " -> "
                                << cpu::to_string(plan));
        REQUIRE((plan.path == cpu::ConvPath::phase_implicit ||
                 plan.path == cpu::ConvPath::phase_split));
        fused += plan.path == cpu::ConvPath::phase_implicit;
        windowed += plan.windows;
        const Tensor dx = cpu::conv_backward_data(dy.to(dtype), w.to(dtype), g);
        CHECK(dx.to_vector<double>() == expect);
        // The plan, and each phase as a conv of its own whatever the plan picked, into a dx
        // filled with NaN: every value must be written.
        cpu::ConvPlan split = plan;
        split.path = cpu::ConvPath::phase_split;
        const Tensor dyt = dy.to(dtype).contiguous(), wt = w.to(dtype).contiguous();
        for (const cpu::ConvPlan* run : {&plan, static_cast<const cpu::ConvPlan*>(&split)}) {
          Tensor dx2 = full(input_shape(g), std::nan(""), dtype);
          dispatch_floating(dtype, [&]<class T>() {
            cpu::conv_detail::run_backward_data<T>(*run, cpu::gemm_kernel<T>(), dyt.data_ptr<T>(),
                                                   wt.data_ptr<T>(), dx2.data_ptr<T>());
          });
          CHECK(dx2.to_vector<double>() == expect);
        }
      }
    }
  }
  // At 2 threads or fewer, every case has (sample, group) pairs for the threads.
  if (cpu::plan_threads() <= 2) CHECK(fused == 2 * cases.size() * cpu::available_isas().size());
  CHECK(windowed >= 3 * cpu::available_isas().size());  // both forms ran on every path
}

TEST_CASE("a few-sample weight gradient cut into blocks of dw's columns is exact on small integers",
          "[conv][plan]") {
  // Batch 1 or 2 of small planes: the im2col weight gradient gives each thread a block of dw's
  // columns (the plan's channel_blocks) instead of short tiles of positions.
  // (With groups, batch 1 has a (sample, group) pair per thread at 2 threads, and the implicit
  // GEMM's parts run it; the blocks then appear under more planned threads.)
  struct Case {
    std::int64_t n, c, k, groups;
    Shape in, kernel, pad;
    bool blocks;  // the plan must cut dw's columns at any team size
  };
  const std::vector<Case> cases{
      {1, 64, 32, 1, {10, 10}, {3, 3}, {1, 1}, true},
      {1, 48, 40, 1, {9, 11}, {3, 3}, {0, 1}, true},
      {1, 64, 48, 2, {9, 11}, {3, 3}, {0, 1}, false},
      {1, 512, 32, 1, {8, 8}, {1, 1}, {0, 0}, true},  // pointwise
  };
  for (const Case& t : cases) {
    const Shape ones(t.in.size(), 1);
    const ConvGeometry g =
        exact_geometry(t.n, t.c, t.k, t.groups, t.in, t.kernel, ones, ones, t.pad);
    const Shape xs = input_shape(g), ys = output_shape(g);
    manual_seed(17);
    const Tensor x = small_ints(xs), dy = small_ints(ys);
    const std::vector<double> expect =
        direct_weight_grad(g, dy.to_vector<double>(), x.to_vector<double>());
    for (const cpu::Isa isa : cpu::available_isas()) {
      cpu::IsaGuard guard(isa);
      for (const DType dtype : {DType::Float32, DType::Float64}) {
        const cpu::ConvTarget target = ct_test::call_target(dtype);
        const cpu::ConvPlan plan = cpu::plan_conv(g, cpu::ConvPass::backward_weight, target);
        INFO(cpu::isa_name(isa) << " " << dtype_name(dtype) << ": " << cpu::to_string(g) << " -> "
                                << cpu::to_string(plan));
        if (t.blocks && target.threads > 1) REQUIRE(plan.channel_blocks > 1);
        const Tensor dw = cpu::conv_backward_weight(dy.to(dtype), x.to(dtype), g);
        CHECK(dw.to_vector<double>() == expect);
      }
    }
  }
}

TEST_CASE("the implicit GEMM lays out only the stride phases its taps read, exactly",
          "[conv][plan]") {
  // 1x1 stride 2 reads one phase in four, a 3-tap kernel with dilation 2 and stride 2 one phase
  // per dim, a 2-tap kernel with stride 3 two of three; forward and weight gradient (both read
  // the padded copy) against direct float64 loops on small integers.
  struct Case {
    Shape in, kernel, stride, dilation, pad;
  };
  const std::vector<Case> cases{
      {{15, 16}, {1, 1}, {2, 2}, {1, 1}, {0, 0}},
      {{15, 17}, {3, 3}, {2, 2}, {2, 2}, {2, 1}},
      {{16, 14}, {2, 2}, {3, 3}, {1, 1}, {1, 0}},
  };
  for (const Case& t : cases) {
    const ConvGeometry g =
        exact_geometry(8, 12, 20, 1, t.in, t.kernel, t.stride, t.dilation, t.pad);
    const Shape xs = input_shape(g), ws = weight_shape(g), ys = output_shape(g);
    manual_seed(19);
    const Tensor x = small_ints(xs), w = small_ints(ws), dy = small_ints(ys);
    const auto y_ref = direct_conv(g, x.to_vector<double>(), w.to_vector<double>(), {});
    const auto dw_ref = direct_weight_grad(g, dy.to_vector<double>(), x.to_vector<double>());
    for (const cpu::Isa isa : cpu::available_isas()) {
      cpu::IsaGuard guard(isa);
      const cpu::ConvTarget target = ct_test::call_target(DType::Float32);
      INFO(cpu::isa_name(isa) << ": " << cpu::to_string(g));
      REQUIRE(cpu::plan_conv(g, cpu::ConvPass::forward, target).path ==
              cpu::ConvPath::implicit_gemm);
      REQUIRE(cpu::plan_conv(g, cpu::ConvPass::backward_weight, target).path ==
              cpu::ConvPath::implicit_gemm);
      CHECK(cpu::conv_forward(x, w, Tensor(), g).to_vector<double>() == y_ref);
      CHECK(cpu::conv_backward_weight(dy, x, g).to_vector<double>() == dw_ref);
    }
  }
}
