// Tensor factories. Every one takes TensorOptions (dtype, device, requires_grad); random ones draw
// from a Generator, the default one (seeded by manual_seed) unless another is passed.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <vector>

#include "core/random.h"
#include "core/tensor.h"

namespace convtape {

Tensor empty(const Shape& shape, TensorOptions options = {});
Tensor zeros(const Shape& shape, TensorOptions options = {});
Tensor ones(const Shape& shape, TensorOptions options = {});
Tensor full(const Shape& shape, double value, TensorOptions options = {});
Tensor empty_like(const Tensor& t);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);

// [start, end) in steps of step (float32 by default, like PyTorch's floating arange).
Tensor arange(double end, TensorOptions options = {});
Tensor arange(double start, double end, double step = 1.0, TensorOptions options = {});
// steps evenly spaced values from start to end inclusive.
Tensor linspace(double start, double end, std::int64_t steps, TensorOptions options = {});

// A tensor holding `values` (row-major) with the given shape; shape defaults to [values.size()].
Tensor tensor(const std::vector<double>& values, const Shape& shape, TensorOptions options = {});
Tensor tensor(const std::vector<double>& values, TensorOptions options = {});
Tensor tensor(std::initializer_list<double> values, const Shape& shape, TensorOptions options = {});
Tensor tensor(std::initializer_list<double> values, TensorOptions options = {});
// Exact-typed forms (no conversion through double).
Tensor from_vector(const std::vector<float>& values, const Shape& shape,
                   TensorOptions options = {});
Tensor from_vector(const std::vector<double>& values, const Shape& shape,
                   TensorOptions options = kFloat64);
Tensor from_vector(const std::vector<std::int64_t>& values, const Shape& shape,
                   TensorOptions options = kInt64);

// Uniform in [0, 1), standard normal, uniform in [low, high), normal(mean, std), integers in [low,
// high).
Tensor rand(const Shape& shape, TensorOptions options = {}, Generator* gen = nullptr);
Tensor randn(const Shape& shape, TensorOptions options = {}, Generator* gen = nullptr);
Tensor uniform(const Shape& shape, double low, double high, TensorOptions options = {},
               Generator* gen = nullptr);
Tensor normal(const Shape& shape, double mean, double std, TensorOptions options = {},
              Generator* gen = nullptr);
Tensor randint(std::int64_t low, std::int64_t high, const Shape& shape,
               TensorOptions options = kInt64, Generator* gen = nullptr);

}  // namespace convtape
