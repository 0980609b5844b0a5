// The tensor-level softmax, nll and index kernels of cuda/nn.h: argument checks, outputs and
// scratch on the input's device, then the launchers of cuda/nn_launch.h. Labels and indices are
// range-checked once per call, by the front ends through find_out_of_range (below: one small
// kernel and a copy back of the first offender's position); the kernels that use them do not
// check again.
#include "cuda/nn.h"

#include <algorithm>
#include <bit>
#include <cstddef>
#include <string_view>

#include "core/error.h"
#include "cuda/check.h"
#include "cuda/cuda.h"
#include "cuda/device_scope.h"
#include "cuda/nn_body.h"
#include "cuda/nn_launch.h"
#include "cuda/operands.h"

namespace convtape::cuda {

namespace {

// Defined, on a CUDA device (the first operand's, when given), contiguous.
void check_operand(std::string_view op, const Tensor& t, std::string_view what,
                   const Tensor* first = nullptr) {
  check_device_operand(op, t, what, first);
  check_contiguous(op, t, what);
}

void check_floating(std::string_view op, const Tensor& t, std::string_view what) {
  CT_CHECK(t.is_floating_point(), "{}: expected a float32 or float64 {}, got {}", op, what,
           dtype_name(t.dtype()));
}

void check_split(std::string_view op, const Tensor& t, std::string_view what, std::int64_t outer,
                 std::int64_t n, std::int64_t inner) {
  CT_CHECK(outer >= 0 && n >= 0 && inner >= 0,
           "{}: expected non-negative sizes [outer, n, inner], got [{}, {}, {}]", op, outer, n,
           inner);
  CT_CHECK(t.numel() == outer * n * inner,
           "{}: expected {} with {} = {} x {} x {} elements, got shape {}", op, what,
           outer * n * inner, outer, n, inner, to_string(t.shape()));
}

// A 1-d int64 index (or labels) tensor of length len on x's device.
void check_index(std::string_view op, const Tensor& index, std::string_view what, const Tensor& x,
                 std::int64_t len) {
  check_operand(op, index, what, &x);
  CT_CHECK(index.dtype() == kInt64 && index.dim() == 1 && index.numel() == len,
           "{}: expected {} as a 1-d int64 tensor of length {}, got {} of shape {}", op, what, len,
           dtype_name(index.dtype()), to_string(index.shape()));
}

const std::int64_t* int64_ptr(const Tensor& t) {
  return t.numel() == 0 ? nullptr : t.data_ptr<std::int64_t>();
}

}  // namespace

OutOfRange find_out_of_range(const Tensor& values, std::int64_t lo, std::int64_t hi) {
  constexpr std::string_view op = "index";
  OutOfRange r;
  CT_CHECK(values.defined() && values.dtype() == kInt64 && values.is_contiguous(),
           "{}: expected a contiguous int64 tensor, got {}", op,
           values.defined() ? dtype_name(values.dtype()) : std::string("an undefined tensor"));
  if (values.numel() == 0) return r;
  DeviceScope scope(op, values.device());
  const Tensor first = device_empty({1}, kInt64, values.device());
  CT_CUDA_CHECK(op,
                kernels::first_out_of_range(values.data_ptr<std::int64_t>(), values.numel(), lo, hi,
                                            first.data_ptr<std::int64_t>(), &r.position, &r.value));
  return r;
}

Tensor softmax(const Tensor& x, std::int64_t outer, std::int64_t n, std::int64_t inner, bool log) {
  const std::string_view op = log ? "log_softmax" : "softmax";
  check_operand(op, x, "input");
  check_floating(op, x, "input");
  check_split(op, x, "input", outer, n, inner);
  const Device device = x.device();
  Tensor y = device_empty(x.shape(), x.dtype(), device);
  if (y.numel() == 0) return y;
  DeviceScope scope(op, device);
  const std::int64_t lines = outer * inner;
  const SoftmaxScratch s = softmax_scratch(lines, n);
  Tensor mx = device_empty({lines}, x.dtype(), device);
  Tensor sum = device_empty({lines}, kFloat64, device);
  auto values = [&](std::int64_t count) {
    return count > 0 ? device_empty({count}, x.dtype(), device) : Tensor();
  };
  auto doubles = [&](std::int64_t count) {
    return count > 0 ? device_empty({count}, kFloat64, device) : Tensor();
  };
  const Tensor partial = doubles(s.partials), va = values(s.max_values), vb = values(s.max_values);
  const Tensor a = doubles(s.sum_values), b = doubles(s.sum_values);
  auto raw = [](const Tensor& t) { return t.defined() ? t.raw_data() : nullptr; };
  auto dbl = [](const Tensor& t) { return t.defined() ? t.data_ptr<double>() : nullptr; };
  CT_CUDA_CHECK(op, kernels::softmax(x.dtype(), x.raw_data(), y.raw_data(), outer, n, inner, log,
                                     mx.raw_data(), sum.data_ptr<double>(), dbl(partial), raw(va),
                                     raw(vb), dbl(a), dbl(b)));
  return y;
}

namespace {

// An undefined weight, or a contiguous [classes] one of x's dtype and device.
void check_class_weight(std::string_view op, const Tensor& weight, const Tensor& x,
                        std::int64_t classes) {
  if (!weight.defined()) return;
  check_operand(op, weight, "weight", &x);
  CT_CHECK(weight.dtype() == x.dtype() && weight.dim() == 1 && weight.numel() == classes,
           "{}: expected weight as a 1-d {} tensor of length {}, got {} of shape {}", op,
           dtype_name(x.dtype()), classes, dtype_name(weight.dtype()), to_string(weight.shape()));
}

}  // namespace

Tensor nll(const Tensor& logp, const Tensor& labels, const Tensor& weight,
           std::int64_t ignore_index, OutOfRange& bad, Tensor* sample_weights) {
  constexpr std::string_view op = "nll_loss";
  check_operand(op, logp, "log-probabilities");
  check_floating(op, logp, "log-probabilities");
  CT_CHECK(logp.dim() == 2, "{}: expected log-probabilities [N, C], got {}", op,
           to_string(logp.shape()));
  const std::int64_t batch = logp.size(0), classes = logp.size(1);
  check_index(op, labels, "labels", logp, batch);
  check_class_weight(op, weight, logp, classes);
  bad = OutOfRange{};
  Tensor out = device_empty({batch}, logp.dtype(), logp.device());
  if (sample_weights) *sample_weights = device_empty({batch}, logp.dtype(), logp.device());
  if (batch == 0) return out;
  DeviceScope scope(op, logp.device());
  const Tensor first = device_empty({1}, kInt64, logp.device());
  CT_CUDA_CHECK(op, kernels::nll_forward(
                        logp.dtype(), logp.raw_data(), int64_ptr(labels),
                        weight.defined() ? weight.raw_data() : nullptr, out.raw_data(),
                        sample_weights ? sample_weights->raw_data() : nullptr, batch, classes,
                        ignore_index, first.data_ptr<std::int64_t>(), &bad.position, &bad.value));
  return out;
}

Tensor nll_backward(const Tensor& g, const Tensor& labels, const Tensor& weight,
                    std::int64_t ignore_index, std::int64_t classes) {
  constexpr std::string_view op = "nll_loss";
  check_operand(op, g, "gradient");
  check_floating(op, g, "gradient");
  CT_CHECK(g.dim() == 1 && classes >= 0,
           "{}: expected a gradient [N] and classes >= 0, got {} and {} classes", op,
           to_string(g.shape()), classes);
  const std::int64_t batch = g.size(0);
  check_index(op, labels, "labels", g, batch);
  check_class_weight(op, weight, g, classes);
  Tensor dx = device_empty({batch, classes}, g.dtype(), g.device());
  if (dx.numel() == 0) return dx;
  DeviceScope scope(op, g.device());
  CT_CUDA_CHECK(op, kernels::nll_backward(g.dtype(), g.raw_data(), int64_ptr(labels),
                                          weight.defined() ? weight.raw_data() : nullptr,
                                          dx.raw_data(), batch, classes, ignore_index));
  return dx;
}

Tensor index_select(const Tensor& x, std::int64_t outer, std::int64_t n, std::int64_t inner,
                    const Tensor& index) {
  constexpr std::string_view op = "index_select";
  check_operand(op, x, "input");
  check_split(op, x, "input", outer, n, inner);
  check_index(op, index, "index", x, index.defined() ? index.numel() : 0);
  const std::int64_t len = index.numel();
  Tensor y = device_empty({outer, len, inner}, x.dtype(), x.device());
  if (y.numel() == 0) return y;
  DeviceScope scope(op, x.device());
  CT_CUDA_CHECK(op, kernels::index_select(x.dtype(), x.raw_data(), int64_ptr(index), y.raw_data(),
                                          outer, n, inner, len));
  return y;
}

Tensor index_add(const Tensor& src, std::int64_t outer, std::int64_t n, std::int64_t inner,
                 const Tensor& index) {
  constexpr std::string_view op = "index_select";
  check_operand(op, src, "gradient");
  check_floating(op, src, "gradient");
  check_index(op, index, "index", src, index.defined() ? index.numel() : 0);
  const std::int64_t len = index.numel();
  check_split(op, src, "gradient", outer, len, inner);
  CT_CHECK(n >= 0, "{}: expected a non-negative size n, got {}", op, n);
  const Device device = src.device();
  Tensor y = device_empty({outer, n, inner}, src.dtype(), device);
  if (y.numel() == 0) return y;
  DeviceScope scope(op, device);
  // Sort the index (stable) so that each output finds its terms in the CPU's order: the keys are
  // in [0, n) after the front end's check, so only the low bits of n - 1 take part.
  Tensor keys, perm;
  if (len > 0) {
    const int bits =
        std::max(1, static_cast<int>(std::bit_width(static_cast<std::uint64_t>(n - 1))));
    std::size_t bytes = 0;
    CT_CUDA_CHECK(op, kernels::index_sort_scratch(len, bits, &bytes));
    const auto words =
        static_cast<std::int64_t>((bytes + sizeof(std::int64_t) - 1) / sizeof(std::int64_t));
    const Tensor scratch = device_empty({std::max<std::int64_t>(words, 1)}, kInt64, device);
    const Tensor iota = device_empty({len}, kInt64, device);
    keys = device_empty({len}, kInt64, device);
    perm = device_empty({len}, kInt64, device);
    CT_CUDA_CHECK(op,
                  kernels::index_sort(index.data_ptr<std::int64_t>(), len, bits,
                                      keys.data_ptr<std::int64_t>(), iota.data_ptr<std::int64_t>(),
                                      perm.data_ptr<std::int64_t>(), scratch.raw_data(), bytes));
  }
  CT_CUDA_CHECK(op, kernels::index_add(src.dtype(), src.raw_data(), int64_ptr(keys),
                                       int64_ptr(perm), y.raw_data(), outer, n, inner, len));
  return y;
}

}  // namespace convtape::cuda
