// The cross-backend op harness: runs, comparisons and the count of what was skipped without a GPU.
#include "support/op_check.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <utility>

#include <fmt/format.h>

namespace ct_test {

using namespace convtape;

namespace {

SkippedCudaChecks g_skipped;

bool cuda_available() {
  return cuda::is_available();
}

Device gpu_device() {
  return Device::cuda();
}

std::string index_of(std::size_t flat, const Shape& shape) {
  Shape idx(shape.size());
  auto rest = static_cast<std::int64_t>(flat);
  for (std::size_t d = shape.size(); d-- > 0;) {
    const std::int64_t n = std::max<std::int64_t>(shape[d], 1);
    idx[d] = rest % n;
    rest /= n;
  }
  return to_string(idx);
}

bool same_layout(const Tensor& got, const Tensor& want) {
  if (got.shape() == want.shape() && got.dtype() == want.dtype()) return true;
  UNSCOPED_INFO("shape or dtype differs: got "
                << to_string(got.shape()) << " " << dtype_name(got.dtype()) << ", want "
                << to_string(want.shape()) << " " << dtype_name(want.dtype()));
  return false;
}

bool equal_int64(const Tensor& got, const Tensor& want) {
  const auto g = got.cpu().to_vector<std::int64_t>(), w = want.cpu().to_vector<std::int64_t>();
  for (std::size_t i = 0; i < g.size(); ++i)
    if (g[i] != w[i]) {
      UNSCOPED_INFO("element " << index_of(i, want.shape()) << ": got " << g[i] << ", want "
                               << w[i]);
      return false;
    }
  return true;
}

// One forward and backward: the output and the gradients of the inputs that require grad.
struct Run {
  Tensor out;
  std::vector<Tensor> grads;
};

// Input t for a run in dtype on device: floating inputs converted (through float32 first when
// via_float32), others as they are; a fresh leaf that requires grad where t does. A float64 CPU
// input keeps its strides.
Tensor prepare(const Tensor& t, DType dtype, Device device, bool via_float32) {
  if (!t.defined()) return t;
  Tensor v = t.detach();
  if (v.is_floating_point()) {
    if (via_float32) v = v.to(kFloat32);
    v = v.to(dtype);
  }
  v = v.to(device).detach();
  if (t.requires_grad()) v.requires_grad_(true);
  return v;
}

std::vector<Tensor> prepare_all(const std::vector<Tensor>& inputs, DType dtype, Device device,
                                bool via_float32) {
  std::vector<Tensor> xs;
  for (const Tensor& t : inputs) xs.push_back(prepare(t, dtype, device, via_float32));
  return xs;
}

bool wants_grad(const Tensor& t) {
  return t.defined() && t.requires_grad();
}

// "[2, 3] float64 (grad), [4] int64, undefined".
std::string describe(const std::vector<Tensor>& inputs) {
  std::string s;
  for (const Tensor& t : inputs) {
    if (!s.empty()) s += ", ";
    s += t.defined() ? fmt::format("{} {}{}", to_string(t.shape()), dtype_name(t.dtype()),
                                   t.requires_grad() ? " (grad)" : "")
                     : std::string("undefined");
  }
  return s;
}

Run execute(const OpFn& fn, const std::vector<Tensor>& inputs, DType dtype, Device device,
            bool via_float32, std::uint64_t seed) {
  INFO("running in " << dtype_name(dtype) << (via_float32 ? " (values rounded to float32)" : "")
                     << " on " << device.str());
  const std::vector<Tensor> xs = prepare_all(inputs, dtype, device, via_float32);
  Run r;
  r.out = fn(xs);
  REQUIRE(r.out.defined());
  REQUIRE(r.out.device() == device);
  if (r.out.is_floating_point()) REQUIRE(r.out.dtype() == dtype);
  if (!r.out.requires_grad()) return r;
  Generator gen(seed);
  Tensor dy = uniform(r.out.shape(), -1.0, 1.0, kFloat64, &gen);
  if (dtype == kFloat32 || via_float32) dy = dy.to(kFloat32);
  r.out.backward(dy.to(dtype).to(device));
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!wants_grad(inputs[i])) continue;
    INFO("gradient of input " << i << " " << to_string(inputs[i].shape()));
    const Tensor g = xs[i].grad();
    REQUIRE(g.defined());
    REQUIRE(g.device() == device);
    REQUIRE(g.dtype() == xs[i].dtype());
    r.grads.push_back(g);
  }
  return r;
}

// got against want, converted to want's dtype (the float32 run against its float64 reference).
void compare(const Run& got, const Run& want, const std::vector<Tensor>& inputs,
             const Tolerance& output, const Tolerance& gradients) {
  const auto as_want = [](const Tensor& g, const Tensor& w) {
    const Tensor h = g.cpu();
    return h.is_floating_point() && w.is_floating_point() ? h.to(w.dtype()) : h;
  };
  {
    INFO("output " << to_string(want.out.shape()));
    CHECK(close(as_want(got.out, want.out), want.out, output));
  }
  REQUIRE(got.grads.size() == want.grads.size());
  std::size_t k = 0;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!wants_grad(inputs[i])) continue;
    INFO("gradient of input " << i << " " << to_string(inputs[i].shape()));
    CHECK(close(as_want(got.grads[k], want.grads[k]), want.grads[k], gradients));
    ++k;
  }
}

void require_gradcheck(const OpFn& fn, const std::vector<Tensor>& inputs,
                       const GradcheckOptions& options) {
  const GradcheckResult r = gradcheck(fn, inputs, options);
  INFO(r.report);
  CHECK(r.ok);
}

}  // namespace

// ---------------------------------------------------------------- comparisons

Tolerance default_tolerance(DType dtype) {
  if (dtype == kFloat32) return {1e-4, 1e-5};
  if (dtype == kFloat64) return {1e-12, 1e-12};
  return kExact;
}

bool close(const Tensor& got, const Tensor& want, const Tolerance& tol) {
  if (!same_layout(got, want)) return false;
  if (!want.is_floating_point()) return equal_int64(got, want);
  const auto g = got.cpu().to_vector<double>(), w = want.cpu().to_vector<double>();
  double atol = tol.atol;
  if (tol.atol_scaled) {
    double scale = 1.0;
    for (const double v : w)
      if (std::isfinite(v)) scale = std::max(scale, std::abs(v));
    atol *= scale;
  }
  for (std::size_t i = 0; i < g.size(); ++i) {
    if ((std::isnan(g[i]) && std::isnan(w[i])) || g[i] == w[i]) continue;
    const double bound = atol + tol.rtol * std::abs(w[i]);
    if (!(std::abs(g[i] - w[i]) <= bound)) {
      UNSCOPED_INFO(fmt::format("element {}: got {}, want {} (difference {}, tolerance {})",
                                index_of(i, want.shape()), g[i], w[i], std::abs(g[i] - w[i]),
                                bound));
      return false;
    }
  }
  return true;
}

bool close(const Tensor& got, const Tensor& want) {
  return close(got, want, default_tolerance(want.dtype()));
}

bool identical(const Tensor& got, const Tensor& want) {
  if (!same_layout(got, want)) return false;
  if (!want.is_floating_point()) return equal_int64(got, want);
  // float32 widens to double exactly, so equal doubles with equal signs are equal bits.
  const auto g = got.cpu().to_vector<double>(), w = want.cpu().to_vector<double>();
  for (std::size_t i = 0; i < g.size(); ++i) {
    if (std::isnan(g[i]) && std::isnan(w[i])) continue;
    if (g[i] != w[i] || std::signbit(g[i]) != std::signbit(w[i])) {
      UNSCOPED_INFO(
          fmt::format("element {}: got {}, want {}", index_of(i, want.shape()), g[i], w[i]));
      return false;
    }
  }
  return true;
}

// ---------------------------------------------------------------- error cases

void check_errors(const std::string& name, const std::vector<ErrorCase>& cases) {
  if (cases.empty()) return;
  std::vector<Device> devices{Device::cpu()};
  if (cuda_available())
    devices.push_back(gpu_device());
  else
    g_skipped.errors += static_cast<int>(cases.size());
  for (const Device device : devices) {
    for (std::size_t k = 0; k < cases.size(); ++k) {
      const ErrorCase& c = cases[k];
      INFO(name << ": error case " << k << " on " << device.str() << "; inputs "
                << describe(c.inputs));
      std::vector<Tensor> xs;
      for (const Tensor& t : c.inputs) {
        Tensor v = t.defined() ? t.detach().to(device).detach() : t;
        if (t.defined() && t.requires_grad()) v.requires_grad_(true);
        xs.push_back(v);
      }
      CHECK_THROWS_MATCHES(c.fn(xs), Error, ErrorContains(c.substring));
    }
  }
}

// ---------------------------------------------------------------- OpCheck

OpCheck::OpCheck(std::string name, OpFn fn, std::vector<Tensor> inputs)
    : name_(std::move(name)),
      fn_(std::move(fn)),
      inputs_(std::move(inputs)),
      f32_output_(default_tolerance(kFloat32)),
      f32_gradients_(default_tolerance(kFloat32)),
      f64_output_(default_tolerance(kFloat64)),
      f64_gradients_(default_tolerance(kFloat64)),
      dtypes_{kFloat32, kFloat64} {}

OpCheck& OpCheck::tolerance(DType dtype, Tolerance output_and_gradients) {
  return tolerance(dtype, output_and_gradients, output_and_gradients);
}

OpCheck& OpCheck::tolerance(DType dtype, Tolerance output, Tolerance gradients) {
  CT_CHECK(dtype == kFloat32 || dtype == kFloat64,
           "OpCheck::tolerance: expected float32 or float64, got {}", dtype_name(dtype));
  (dtype == kFloat32 ? f32_output_ : f64_output_) = output;
  (dtype == kFloat32 ? f32_gradients_ : f64_gradients_) = gradients;
  return *this;
}

OpCheck& OpCheck::dtypes(std::vector<DType> dtypes) {
  for (const DType d : dtypes)
    CT_CHECK(d == kFloat32 || d == kFloat64, "OpCheck::dtypes: expected float32 or float64, got {}",
             dtype_name(d));
  dtypes_ = std::move(dtypes);
  return *this;
}

OpCheck& OpCheck::cuda_only() {
  cpu_checks_ = false;
  return *this;
}

OpCheck& OpCheck::no_gradcheck() {
  gradcheck_ = false;
  return *this;
}

OpCheck& OpCheck::gradcheck_options(const GradcheckOptions& options) {
  gradcheck_options_ = options;
  return *this;
}

OpCheck& OpCheck::upstream_seed(std::uint64_t seed) {
  upstream_seed_ = seed;
  return *this;
}

OpCheck& OpCheck::error(std::vector<Tensor> inputs, std::string substring) {
  return error(fn_, std::move(inputs), std::move(substring));
}

OpCheck& OpCheck::error(OpFn fn, std::vector<Tensor> inputs, std::string substring) {
  errors_.push_back({std::move(fn), std::move(inputs), std::move(substring)});
  return *this;
}

const Tolerance& OpCheck::output_tolerance(DType dtype) const {
  return dtype == kFloat32 ? f32_output_ : f64_output_;
}

const Tolerance& OpCheck::gradient_tolerance(DType dtype) const {
  return dtype == kFloat32 ? f32_gradients_ : f64_gradients_;
}

void OpCheck::run() const {
  INFO("op_check: " << name_ << "; inputs " << describe(inputs_));
  bool any_grad = false;
  for (std::size_t i = 0; i < inputs_.size(); ++i) {
    const Tensor& t = inputs_[i];
    if (!t.defined()) continue;
    INFO("input " << i << " " << to_string(t.shape()) << " " << dtype_name(t.dtype()) << " on "
                  << t.device().str());
    REQUIRE(t.is_cpu());
    if (t.is_floating_point()) REQUIRE(t.dtype() == kFloat64);
    any_grad = any_grad || t.requires_grad();
  }
  const bool gpu = cuda_available();
  const auto runs = [&](DType d) {
    return std::find(dtypes_.begin(), dtypes_.end(), d) != dtypes_.end();
  };

  // The CPU runs, each needed by (a) or by (b).
  std::optional<Run> cpu32, cpu64;
  if (runs(kFloat32) && (cpu_checks_ || gpu))
    cpu32 = execute(fn_, inputs_, kFloat32, kCPU, false, upstream_seed_);
  if (runs(kFloat64) && gpu) cpu64 = execute(fn_, inputs_, kFloat64, kCPU, false, upstream_seed_);

  // (a) CPU float32 against CPU float64 on the same (rounded) values.
  if (cpu_checks_ && cpu32) {
    INFO("CPU float32 against CPU float64");
    const Run reference = execute(fn_, inputs_, kFloat64, kCPU, true, upstream_seed_);
    compare(*cpu32, reference, inputs_, output_tolerance(kFloat32), gradient_tolerance(kFloat32));
  }

  // (b) CUDA against CPU in each dtype.
  if (gpu) {
    const Device device = gpu_device();
    for (const DType d : dtypes_) {
      INFO("CUDA " << dtype_name(d) << " against CPU " << dtype_name(d));
      const Run on_gpu = execute(fn_, inputs_, d, device, false, upstream_seed_);
      compare(on_gpu, d == kFloat32 ? *cpu32 : *cpu64, inputs_, output_tolerance(d),
              gradient_tolerance(d));
    }
  } else {
    g_skipped.comparisons += static_cast<int>(dtypes_.size());
  }

  // (c) float64 gradcheck on every device.
  if (cpu_checks_ && gradcheck_ && any_grad) {
    {
      INFO("float64 gradcheck on cpu");
      require_gradcheck(fn_, inputs_, gradcheck_options_);
    }
    if (gpu) {
      INFO("float64 gradcheck on cuda");
      require_gradcheck(fn_, prepare_all(inputs_, kFloat64, gpu_device(), false),
                        gradcheck_options_);
    } else {
      ++g_skipped.gradchecks;
    }
  }

  // (d)
  check_errors(name_, errors_);
}

// ---------------------------------------------------------------- the report at exit

SkippedCudaChecks skipped_cuda_checks() {
  return g_skipped;
}

void report_skipped_cuda_checks() {
  const SkippedCudaChecks s = g_skipped;
  if (s.comparisons + s.gradchecks + s.errors == 0) return;
  std::vector<std::string> parts;
  const auto add = [&](int n, const char* one, const char* many) {
    if (n > 0) parts.push_back(fmt::format("{} {}", n, n == 1 ? one : many));
  };
  add(s.comparisons, "CPU-vs-CUDA comparison", "CPU-vs-CUDA comparisons");
  add(s.gradchecks, "CUDA gradcheck", "CUDA gradchecks");
  add(s.errors, "CUDA error check", "CUDA error checks");
  std::string what = parts.front();
  for (std::size_t i = 1; i < parts.size(); ++i)
    what += (i + 1 == parts.size() ? " and " : ", ") + parts[i];
  std::printf("op_check: %s skipped: %s\n", what.c_str(), cuda::unavailable_reason().c_str());
  std::fflush(stdout);
}

}  // namespace ct_test
