// Argument checks shared by the op front ends. Each throws convtape::Error with the op's name.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/kernel_args.h"
#include "core/tensor.h"

namespace convtape::detail {

// Defined, floating-point, one dtype and one device across all defined tensors.
void check_floating_same(std::string_view op, const std::vector<Tensor>& tensors);
// Defined and of one device; dtype not checked.
void check_defined(std::string_view op, const Tensor& t, std::string_view what = "input");
void check_same_device(std::string_view op, const std::vector<Tensor>& tensors);
// The op has CPU kernels only for now: refuse CUDA tensors with a clear message.
void check_cpu(std::string_view op, const std::vector<Tensor>& tensors);
// A contiguous CPU tensor viewed as [outer, n, inner] around dim.
struct Split3 {
  std::int64_t outer = 1, n = 1, inner = 1;
};
Split3 split_at(const Shape& shape, std::int64_t dim);

// A double about to be stored as an element of dtype: int64 refuses NaN, infinities and values
// outside [-2^63, 2^63) (converting them is undefined behaviour; PyTorch refuses them too) and
// otherwise truncates toward zero.
void check_element_value(std::string_view op, double value, DType dtype);

// Gradient of a broadcast: sums g over the dims that broadcasting added or expanded.
Tensor sum_to(const Tensor& g, const Shape& shape);

// A per-spatial-dim option of a conv or a pool (ops and layers alike): one value for every dim,
// or one per dim (s of them); with allow_empty, also none (the caller's default then applies).
void check_per_dim_count(std::string_view op, std::string_view what, std::size_t count,
                         std::int64_t s, bool allow_empty = false);
// v as s values.
template <class V>
V per_dim(std::string_view op, std::string_view what, const V& v, std::int64_t s) {
  check_per_dim_count(op, what, v.size(), s);
  return v.size() == 1 ? V(static_cast<std::size_t>(s), v[0]) : v;
}
// Every value > 0.
void check_positive(std::string_view op, std::string_view what, const std::vector<std::int64_t>& v);
// Every value >= min (the layers' option builders: "stride >= 1", "padding >= 0").
void check_at_least(std::string_view op, std::string_view what, const std::vector<std::int64_t>& v,
                    std::int64_t min);
// Spatial extents as messages print them: "28 x 28".
std::string dims_string(const Shape& s);

// The first value of the contiguous int64 tensor `values` outside [lo, hi), on the values' own
// device (backend::find_out_of_range: a host loop, or one small CUDA kernel and a copy back). The
// one range check of indices and labels per call: front ends throw their own message from it, and
// the kernels that then use the values do not check again.
OutOfRange find_out_of_range(const Tensor& values, std::int64_t lo, std::int64_t hi);

}  // namespace convtape::detail
