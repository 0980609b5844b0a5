// Factories: allocate on the requested device, fill on the host (or with the CUDA fill kernel),
// then copy host data to the device where needed.
#include "ops/factory.h"

#include <cmath>

#include "core/checked.h"
#include "cuda/cuda.h"
#include "ops/backend.h"
#include "ops/detail.h"

namespace convtape {

namespace {

Tensor finish(Tensor t, const TensorOptions& o) {
  if (o.requires_grad()) t.requires_grad_(true);
  return t;
}

// Every factory's shape check, under its own name: sizes >= 0, then an element count and a byte
// count that fit (checked::nbytes), before anything is allocated.
void check_shape(std::string_view op, const Shape& shape, DType dtype) {
  for (auto d : shape)
    CT_CHECK(d >= 0, "{}: expected non-negative sizes, got {}", op, to_string(shape));
  checked::nbytes(shape, dtype_size(dtype), op);
}

Tensor empty_checked(std::string_view op, const Shape& shape, const TensorOptions& o) {
  check_shape(op, shape, o.dtype());
  return o.device().is_cuda() ? cuda::empty(shape, o) : Tensor::empty_cpu(shape, o.dtype());
}

// Builds a CPU tensor with gen(i) for each element i, then moves it to the requested device.
template <class G>
Tensor generate(std::string_view op, const Shape& shape, const TensorOptions& o, G gen) {
  check_shape(op, shape, o.dtype());
  Tensor t = Tensor::empty_cpu(shape, o.dtype());
  const std::int64_t n = t.numel();
  dispatch_all(o.dtype(), [&]<class T>() {
    T* p = t.data_ptr<T>();
    for (std::int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(gen(i));
  });
  if (o.device().is_cuda()) t = t.to(o.device());
  return finish(t, o);
}

void check_values(std::string_view op, std::size_t count, const Shape& shape) {
  for (auto d : shape)
    CT_CHECK(d >= 0, "{}: expected non-negative sizes, got {}", op, to_string(shape));
  const std::int64_t n = checked::numel(shape, op);
  CT_CHECK(n == static_cast<std::int64_t>(count), "{}: expected {} values for shape {}, got {}", op,
           n, to_string(shape), count);
}

Tensor full_named(std::string_view op, const Shape& shape, double value, TensorOptions options) {
  detail::check_element_value(op, value, options.dtype());
  Tensor t = empty_checked(op, shape, options);
  backend::fill(t, value);
  return finish(t, options);
}

}  // namespace

Tensor empty(const Shape& shape, TensorOptions options) {
  return finish(empty_checked("empty", shape, options), options);
}

Tensor full(const Shape& shape, double value, TensorOptions options) {
  return full_named("full", shape, value, options);
}
Tensor zeros(const Shape& shape, TensorOptions options) {
  return full_named("zeros", shape, 0.0, options);
}
Tensor ones(const Shape& shape, TensorOptions options) {
  return full_named("ones", shape, 1.0, options);
}
Tensor empty_like(const Tensor& t) {
  return empty(t.shape(), t.options());
}
Tensor zeros_like(const Tensor& t) {
  return zeros(t.shape(), t.options());
}
Tensor ones_like(const Tensor& t) {
  return ones(t.shape(), t.options());
}
Tensor full_like(const Tensor& t, double value) {
  return full(t.shape(), value, t.options());
}

Tensor arange(double end, TensorOptions options) {
  return arange(0.0, end, 1.0, options);
}

Tensor arange(double start, double end, double step, TensorOptions options) {
  CT_CHECK(step != 0.0 && std::isfinite(step), "arange: expected a finite non-zero step, got {}",
           step);
  CT_CHECK(std::isfinite(start) && std::isfinite(end),
           "arange: expected finite bounds, got start = {}, end = {}", start, end);
  // The count is formed in double; one past int64 (or an infinite end - start) is refused before
  // the conversion, which would be undefined behaviour.
  const double count = std::max(std::ceil((end - start) / step), 0.0);
  CT_CHECK(count < 0x1p63,
           "arange: expected an element count that fits in 64 bits, got ceil(({} - {}) / {}) = {}",
           end, start, step, count);
  const auto n = static_cast<std::int64_t>(count);
  if (n > 0) {  // the values run monotonically from the first to the last
    detail::check_element_value("arange", start, options.dtype());
    detail::check_element_value("arange", start + static_cast<double>(n - 1) * step,
                                options.dtype());
  }
  return generate("arange", {n}, options,
                  [&](std::int64_t i) { return start + static_cast<double>(i) * step; });
}

Tensor linspace(double start, double end, std::int64_t steps, TensorOptions options) {
  CT_CHECK(steps >= 0, "linspace: expected steps >= 0, got {}", steps);
  if (steps > 0) detail::check_element_value("linspace", start, options.dtype());
  if (steps > 1) detail::check_element_value("linspace", end, options.dtype());
  const double delta = steps > 1 ? (end - start) / static_cast<double>(steps - 1) : 0.0;
  // The second half counts back from end so that the last value is exactly end.
  return generate("linspace", {steps}, options, [&](std::int64_t i) {
    return i < (steps + 1) / 2 ? start + delta * static_cast<double>(i)
                               : end - delta * static_cast<double>(steps - 1 - i);
  });
}

Tensor tensor(const std::vector<double>& values, const Shape& shape, TensorOptions options) {
  check_values("tensor", values.size(), shape);
  for (const double v : values) detail::check_element_value("tensor", v, options.dtype());
  return generate("tensor", shape, options,
                  [&](std::int64_t i) { return values[static_cast<std::size_t>(i)]; });
}
Tensor tensor(const std::vector<double>& values, TensorOptions options) {
  return tensor(values, {static_cast<std::int64_t>(values.size())}, options);
}
Tensor tensor(std::initializer_list<double> values, const Shape& shape, TensorOptions options) {
  return tensor(std::vector<double>(values), shape, options);
}
Tensor tensor(std::initializer_list<double> values, TensorOptions options) {
  return tensor(std::vector<double>(values), options);
}

namespace {
template <class V>
Tensor from_typed(const std::vector<V>& values, const Shape& shape, const TensorOptions& options) {
  check_values("from_vector", values.size(), shape);
  CT_CHECK(options.dtype() == dtype_of<V>(),
           "from_vector: expected options with dtype {} for these values, got {}",
           dtype_name(dtype_of<V>()), dtype_name(options.dtype()));
  return generate("from_vector", shape, options,
                  [&](std::int64_t i) { return values[static_cast<std::size_t>(i)]; });
}
}  // namespace

Tensor from_vector(const std::vector<float>& values, const Shape& shape, TensorOptions options) {
  return from_typed(values, shape, options);
}
Tensor from_vector(const std::vector<double>& values, const Shape& shape, TensorOptions options) {
  return from_typed(values, shape, options);
}
Tensor from_vector(const std::vector<std::int64_t>& values, const Shape& shape,
                   TensorOptions options) {
  return from_typed(values, shape, options);
}

namespace {
Generator& pick(Generator* gen) {
  return gen ? *gen : default_generator();
}
void check_float_options(std::string_view op, const TensorOptions& o) {
  CT_CHECK(is_floating(o.dtype()), "{}: expected a floating-point dtype, got {}", op,
           dtype_name(o.dtype()));
}
}  // namespace

Tensor rand(const Shape& shape, TensorOptions options, Generator* gen) {
  return uniform(shape, 0.0, 1.0, options, gen);
}

Tensor uniform(const Shape& shape, double low, double high, TensorOptions options, Generator* gen) {
  check_float_options("uniform", options);
  CT_CHECK(low <= high, "uniform: expected low <= high, got low = {}, high = {}", low, high);
  Generator& g = pick(gen);
  const auto lock = g.lock();  // the whole tensor is one run of the stream (core/random.h)
  return generate("uniform", shape, options,
                  [&](std::int64_t) { return low + (high - low) * g.uniform01(); });
}

Tensor randn(const Shape& shape, TensorOptions options, Generator* gen) {
  return normal(shape, 0.0, 1.0, options, gen);
}

Tensor normal(const Shape& shape, double mean, double std, TensorOptions options, Generator* gen) {
  check_float_options("normal", options);
  CT_CHECK(std >= 0.0, "normal: expected std >= 0, got {}", std);
  Generator& g = pick(gen);
  const auto lock = g.lock();  // the whole tensor is one run of the stream (core/random.h)
  return generate("normal", shape, options,
                  [&](std::int64_t) { return mean + std * g.normal01(); });
}

Tensor randint(std::int64_t low, std::int64_t high, const Shape& shape, TensorOptions options,
               Generator* gen) {
  CT_CHECK(low < high, "randint: expected low < high, got low = {}, high = {}", low, high);
  Generator& g = pick(gen);
  const auto lock = g.lock();  // the whole tensor is one run of the stream (core/random.h)
  return generate("randint", shape, options,
                  [&](std::int64_t) { return static_cast<double>(g.integer(low, high)); });
}

}  // namespace convtape
