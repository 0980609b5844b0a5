// Pooling front ends: argument checks and output sizes (every user-facing pooling error lives
// here), the backend kernels (ops/backend.h), and the tape entries. Max pooling saves the argmax
// indices of its forward pass, and its gradient scatters dy to them; max_unpool is the same scatter
// (overwriting) and its gradient the matching gather. Adaptive pooling whose output sizes divide
// the input is run as the regular pooling with kernel = stride = in / out.
// Every gradient here is linear in dy: for a backward with create_graph it is made of recorded
// maps whose own gradients are each other (the scatter-add at fixed indices and the gather at
// them; average pooling and its adjoint), so every derivative, to any order, is one of them.
#include "ops/pool.h"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include <fmt/ranges.h>

#include "core/autograd.h"
#include "core/checked.h"
#include "core/trace.h"
#include "ops/backend.h"
#include "ops/detail.h"
#include "ops/index_maps.h"

namespace convtape {

PoolOptions& PoolOptions::padding(const std::vector<std::int64_t>& p) {
  padding_.clear();
  for (auto v : p) padding_.emplace_back(v, v);
  return *this;
}

namespace {

constexpr std::int64_t kMaxSpatial = 8;

enum class PoolKind { Max, Avg, Unpool };

// x [N, C, *S]: defined, floating point, 1 to kMaxSpatial non-empty spatial dims, on the CPU.
void check_input(std::string_view op, const Tensor& x) {
  detail::check_floating_same(op, {x});
  CT_CHECK(x.dim() >= 3,
           "{}: expected input [N, C, *spatial] with at least one spatial dim, got {}", op,
           to_string(x.shape()));
  CT_CHECK(x.dim() - 2 <= kMaxSpatial, "{}: expected at most {} spatial dims, got input {}", op,
           kMaxSpatial, to_string(x.shape()));
  for (std::int64_t d = 2; d < x.dim(); ++d)
    CT_CHECK(x.size(d) > 0, "{}: expected non-empty spatial dims, got input {}", op,
             to_string(x.shape()));
  // The kernels index a plane by its flat position even when N * C = 0.
  checked::numel(Shape(x.shape().begin() + 2, x.shape().end()), op);
  detail::check_same_device(op, {x});
}

// The rank check of the *1d / *2d / *3d wrappers.
void check_input_rank(std::string_view op, const Tensor& x, std::int64_t spatial) {
  detail::check_defined(op, x, "input");
  CT_CHECK(x.dim() == spatial + 2,
           "{}: expected input of rank {} ([N, C, {} spatial dim{}]), got {}", op, spatial + 2,
           spatial, spatial == 1 ? "" : "s", to_string(x.shape()));
}

// The per-dim options resolved against x's spatial rank s; out is left empty.
PoolGeometry resolve_window(std::string_view op, const Tensor& x, const PoolOptions& o,
                            PoolKind kind) {
  const std::int64_t s = x.dim() - 2;
  CT_CHECK(!o.kernel_size().empty(), "{}: expected a kernel_size with 1 or {} values, got none", op,
           s);
  PoolGeometry g;
  g.batch = x.size(0);
  g.channels = x.size(1);
  g.kernel = detail::per_dim(op, "kernel_size", o.kernel_size(), s);
  g.stride = o.stride().empty() ? g.kernel : detail::per_dim(op, "stride", o.stride(), s);
  g.dilation = detail::per_dim(op, "dilation", o.dilation(), s);
  const auto pads = detail::per_dim(op, "padding", o.padding(), s);
  detail::check_positive(op, "kernel_size", g.kernel);
  detail::check_positive(op, "stride", g.stride);
  detail::check_positive(op, "dilation", g.dilation);
  if (kind == PoolKind::Avg)
    CT_CHECK(std::all_of(g.dilation.begin(), g.dilation.end(), [](auto d) { return d == 1; }),
             "{}: expected dilation 1 (average pooling has no dilation), got [{}]", op,
             fmt::join(g.dilation, ", "));
  for (std::int64_t d = 0; d < s; ++d) {
    const auto du = static_cast<std::size_t>(d);
    const auto [lo, hi] = pads[du];
    CT_CHECK(lo >= 0 && hi >= 0, "{}: expected non-negative padding, got ({}, {})", op, lo, hi);
    // Wider padding would let a window hold nothing but padding.
    if (kind != PoolKind::Unpool)
      CT_CHECK(lo <= g.kernel[du] / 2 && hi <= g.kernel[du] / 2,
               "{}: expected padding at most half the kernel size, got padding ({}, {}) for "
               "kernel size {} in dim {}",
               op, lo, hi, g.kernel[du], d);
    g.pad_lo.push_back(lo);
    g.pad_hi.push_back(hi);
  }
  if (kind == PoolKind::Avg) {
    g.count_include_pad = o.count_include_pad();
    if (o.divisor_override()) {
      CT_CHECK(*o.divisor_override() != 0, "{}: expected a non-zero divisor_override, got 0", op);
      g.divisor_override = *o.divisor_override();
    }
  }
  for (std::int64_t d = 0; d < s; ++d) g.in.push_back(x.size(2 + d));
  return g;
}

// "in + lo + hi", or its value when that fits: the padded extent, for messages.
std::string padded_string(std::int64_t in, std::int64_t lo, std::int64_t hi) {
  const auto with_lo = checked::try_add(in, lo);
  const auto padded = with_lo ? checked::try_add(*with_lo, hi) : std::nullopt;
  return padded ? fmt::format("{}", *padded) : fmt::format("{} + {} + {}", in, lo, hi);
}

// The output shape [N, C, *out] must have a byte count that fits, and its spatial part an element
// count (the kernels index planes with it even when N * C = 0).
void check_output_size(std::string_view op, const Tensor& x, const Shape& out) {
  checked::numel(out, op);
  Shape full{x.size(0), x.size(1)};
  full.insert(full.end(), out.begin(), out.end());
  checked::nbytes(full, dtype_size(x.dtype()), op);
}

// A dilated window can step over the whole input from the low padding (kernel 2, dilation 2,
// padding 1 over one element: taps -1 and 1). PyTorch returns -inf and an index outside the
// input for it; such a window has no answer, so it is refused. Only windows that start in the low
// padding need a look (the others start inside the input), and none is visited past the first
// that starts at 0 or later.
void check_dilated_windows(std::string_view op, const PoolGeometry& g, std::size_t d) {
  const std::int64_t in = g.in[d], k = g.kernel[d], st = g.stride[d], dil = g.dilation[d];
  const std::int64_t lo = g.pad_lo[d];
  for (std::int64_t o = 0; o < g.out[d]; ++o) {
    const std::int64_t start =
        checked::sub(checked::mul(o, st, op, "a window start"), lo, op, "a window start");
    if (start >= 0) return;
    const std::int64_t first = checked::div_ceil(-start, dil);  // the first tap at 0 or later
    CT_CHECK(first < k && start + first * dil <= in - 1,
             "{}: expected every dilated window to hold an input element, got output {} in dim {} "
             "with taps {} + {} * r (r < {}) outside the input of size {}",
             op, o, d, start, dil, k, in);
  }
}

// Output sizes of a max or average pooling of x: PyTorch's floor((in + lo + hi - extent) / stride)
// + 1 (ceil with ceil_mode), computed as (in - extent) + lo + hi so that no intermediate value
// leaves 64 bits unless the result does. With padding at most half the kernel, that numerator is
// at most in, so the window starts o * stride - lo of every kept output lie in (-lo, in).
PoolGeometry resolve(std::string_view op, const Tensor& x, const PoolOptions& o, PoolKind kind) {
  check_input(op, x);
  PoolGeometry g = resolve_window(op, x, o, kind);
  std::vector<std::string> padded, window;
  bool fits = true;
  for (std::size_t d = 0; d < g.in.size(); ++d) {
    const std::int64_t in = g.in[d], st = g.stride[d], lo = g.pad_lo[d], hi = g.pad_hi[d];
    const std::int64_t extent =
        checked::add(checked::mul(g.dilation[d], g.kernel[d] - 1, op, "the dilated kernel extent"),
                     1, op, "the dilated kernel extent");
    padded.push_back(padded_string(in, lo, hi));
    window.push_back(fmt::format("{}", extent));
    const std::int64_t span = checked::add(checked::add(in - extent, lo, op, "the pooled span"), hi,
                                           op, "the pooled span");
    const std::int64_t q =
        o.ceil_mode() ? checked::div_ceil(span, st) : checked::div_floor(span, st);
    std::int64_t out = checked::add(q, 1, op, "the output size");
    // PyTorch's rule: the last window must start inside the input or the low padding, i.e. drop
    // it when q * stride - lo >= in. q * stride is formed as (q - 1) * stride (< span <= in) plus
    // stride - lo, and a sum past 64 bits is past in.
    if (o.ceil_mode() && q >= 1) {
      const std::int64_t before = checked::mul(q - 1, st, op, "the last window start");
      const auto last = checked::try_add(before, st - lo);
      if (!last || *last >= in) --out;
    }
    fits = fits && out >= 1;
    g.out.push_back(out);
    if (kind == PoolKind::Max && g.dilation[d] > 1) check_dilated_windows(op, g, d);
  }
  CT_CHECK(fits,
           "{}: expected a window (dilated kernel {}) that fits the padded input ({}), got "
           "output size {} for input {}",
           op, fmt::join(window, " x "), fmt::join(padded, " x "), detail::dims_string(g.out),
           to_string(x.shape()));
  check_output_size(op, x, g.out);
  return g;
}

// The linear maps of average pooling with geometry g, as ops that record: the pooling
// [N, C, *in] -> [N, C, *out] and its adjoint [N, C, *out] -> [N, C, *in], each the other's
// gradient.
enum class AvgMap { Forward, Adjoint };

Tensor avg_pool_map(AvgMap kind, const Tensor& t, const PoolGeometry& g) {
  const Tensor tc = t.contiguous();
  Tensor y = kind == AvgMap::Forward ? backend::avg_pool_forward(tc.detach(), g)
                                     : backend::avg_pool_backward(tc.detach(), g);
  record(y, kind == AvgMap::Forward ? "avg_pool_forward" : "avg_pool_backward", {tc}, {},
         [kind, g](const Saved&, const Tensor& c, const GradMask&) {
           return std::vector<Tensor>{
               avg_pool_map(kind == AvgMap::Forward ? AvgMap::Adjoint : AvgMap::Forward, c, g)};
         });
  return y;
}

// The gradient of a max pooling of an input [N, C, *in] at its saved argmax.
Tensor max_pool_grad(const Tensor& dy, const Tensor& indices, const PoolGeometry& g) {
  if (autograd::creating_graph()) return detail::plane_scatter(dy, indices, g.in);
  return backend::index_scatter(dy.contiguous(), indices, g.in, /*accumulate=*/true);
}

// The trace of a max or average pooling (core/trace.h): its resolved window, per spatial dim.
trace::Attrs pool_attrs(const PoolGeometry& g, const PoolOptions& o) {
  trace::Attrs attrs{{"kernel", g.kernel},
                     {"stride", g.stride},
                     {"dilation", g.dilation},
                     {"pad_lo", g.pad_lo},
                     {"pad_hi", g.pad_hi},
                     {"ceil_mode", std::int64_t{o.ceil_mode()}},
                     {"count_include_pad", std::int64_t{g.count_include_pad}}};
  if (g.divisor_override != 0) attrs.emplace_back("divisor_override", g.divisor_override);
  return attrs;
}

PoolWithIndices max_pool_impl(std::string_view op, const Tensor& x, const PoolOptions& o,
                              bool want_indices) {
  trace::OpScope scope;
  const PoolGeometry g = resolve(op, x, o, PoolKind::Max);
  const Tensor xc = x.detach().contiguous();
  const bool need_grad = any_requires_grad({x});
  PoolResult r = backend::max_pool_forward(xc, g, want_indices || need_grad);
  // The argmax of the forward pass is the gradient's route: saved, not recomputed.
  record(r.values, op, {x}, {r.indices}, [g](const Saved& s, const Tensor& dy, const GradMask&) {
    return std::vector<Tensor>{max_pool_grad(dy, s[0], g)};
  });
  if (scope.recording()) scope.emit(op, {x}, r.values, pool_attrs(g, o));
  return {r.values, want_indices ? r.indices : Tensor()};
}

// given: the geometry of an adaptive pooling, whose caller traces it.
Tensor avg_pool_impl(std::string_view op, const Tensor& x, const PoolOptions& o,
                     const PoolGeometry* given = nullptr) {
  trace::OpScope scope;
  const PoolGeometry g = given ? *given : resolve(op, x, o, PoolKind::Avg);
  Tensor y = backend::avg_pool_forward(x.detach().contiguous(), g);
  record(y, op, {x}, {}, [g](const Saved&, const Tensor& dy, const GradMask&) {
    if (autograd::creating_graph())
      return std::vector<Tensor>{avg_pool_map(AvgMap::Adjoint, dy, g)};
    return std::vector<Tensor>{backend::avg_pool_backward(dy.contiguous(), g)};
  });
  if (scope.recording() && !given) scope.emit(op, {x}, y, pool_attrs(g, o));
  return y;
}

Tensor max_unpool_impl(std::string_view op, const Tensor& x, const Tensor& indices,
                       const PoolOptions& o, const Shape& output_size) {
  check_input(op, x);
  detail::check_defined(op, indices, "indices");
  CT_CHECK(indices.dtype() == kInt64, "{}: expected int64 indices, got {}", op,
           dtype_name(indices.dtype()));
  detail::check_same_device(op, {x, indices});
  CT_CHECK(indices.shape() == x.shape(), "{}: expected indices of the input's shape {}, got {}", op,
           to_string(x.shape()), to_string(indices.shape()));
  PoolGeometry g = resolve_window(op, x, o, PoolKind::Unpool);
  const std::int64_t s = x.dim() - 2;
  CT_CHECK(output_size.empty() || static_cast<std::int64_t>(output_size.size()) == s ||
               static_cast<std::int64_t>(output_size.size()) == s + 2,
           "{}: expected output_size with {} (spatial) or {} values, got {}", op, s, s + 2,
           to_string(output_size));
  Shape out;
  for (std::int64_t d = 0; d < s; ++d) {
    const auto du = static_cast<std::size_t>(d);
    const std::int64_t st = g.stride[du], lo = g.pad_lo[du], hi = g.pad_hi[du];
    // (in - 1) * stride - lo - hi + extent, summed as ((in - 1) * stride - lo) + (extent - hi):
    // both halves fit, so only a default size that itself leaves 64 bits is refused.
    const std::int64_t extent = checked::add(
        checked::mul(g.dilation[du], g.kernel[du] - 1, op, "the dilated kernel extent"), 1, op,
        "the dilated kernel extent");
    const std::int64_t reach = checked::mul(x.size(2 + d) - 1, st, op, "the default output size");
    const std::int64_t dflt = checked::add(reach - lo, extent - hi, op, "the default output size");
    if (output_size.empty()) {
      CT_CHECK(dflt >= 1,
               "{}: expected a positive default output size, got {} in dim {} (input {}, kernel "
               "size {}, stride {}, padding ({}, {}))",
               op, dflt, d, to_string(x.shape()), g.kernel[du], st, lo, hi);
      out.push_back(dflt);
      continue;
    }
    const std::int64_t want = output_size[output_size.size() - static_cast<std::size_t>(s) + du];
    // PyTorch's rule: any size that the pooling would have mapped onto this input. dflt - st
    // fits (both are positive or dflt is below 1); dflt + st past 64 bits bounds nothing.
    const std::int64_t below = std::max<std::int64_t>(dflt > 0 ? dflt - st : 0, 0);
    const auto above = checked::try_add(dflt, st);
    CT_CHECK(want > below && (!above || want < *above),
             "{}: expected output size in dim {} strictly between {} and {} (input {}, kernel "
             "size {}, stride {}), got {}",
             op, d, below, above.value_or(0), to_string(x.shape()), g.kernel[du], st, want);
    out.push_back(want);
  }
  if (output_size.size() == static_cast<std::size_t>(s + 2))
    CT_CHECK(output_size[0] == x.size(0) && output_size[1] == x.size(1),
             "{}: expected output_size [N, C, *spatial] with N = {} and C = {}, got {}", op,
             x.size(0), x.size(1), to_string(output_size));
  check_output_size(op, x, out);
  const Tensor ic = indices.contiguous();
  const std::int64_t plane = checked::numel(out, op);
  const OutOfRange bad = detail::find_out_of_range(ic, 0, plane);
  CT_CHECK(!bad.found(),
           "{}: expected indices in [0, {}) (the output plane {}), got {} at flat position {}", op,
           plane, detail::dims_string(out), bad.value, bad.position);
  Tensor y = backend::index_scatter(x.detach().contiguous(), ic, out, /*accumulate=*/false);
  record(y, op, {x, indices}, {ic}, [](const Saved& sv, const Tensor& dy, const GradMask&) {
    if (autograd::creating_graph())
      return std::vector<Tensor>{detail::plane_gather(dy, sv[0]), Tensor()};
    return std::vector<Tensor>{backend::index_gather(dy.contiguous(), sv[0]), Tensor()};
  });
  return y;
}

// Adaptive windows; when every output size divides its input size, the regular pooling with
// kernel = stride = in / out, whose kernels are faster.
PoolGeometry resolve_adaptive(std::string_view op, const Tensor& x, const Shape& size) {
  check_input(op, x);
  const std::int64_t s = x.dim() - 2;
  CT_CHECK(!size.empty(), "{}: expected output_size with 1 or {} values, got none", op, s);
  const Shape out = detail::per_dim(op, "output_size", size, s);
  for (auto v : out) CT_CHECK(v >= 1, "{}: expected output sizes >= 1, got {}", op, to_string(out));
  // The windows [floor(o * in / out), ceil((o + 1) * in / out)) are computed exactly from
  // products up to out * in.
  for (std::int64_t d = 0; d < s; ++d)
    checked::mul(out[static_cast<std::size_t>(d)], x.size(2 + d), op,
                 "output size * input size (the adaptive window bounds)");
  check_output_size(op, x, out);
  PoolGeometry g;
  g.batch = x.size(0);
  g.channels = x.size(1);
  bool divides = true;
  for (std::int64_t d = 0; d < s; ++d) {
    const auto du = static_cast<std::size_t>(d);
    const std::int64_t in = x.size(2 + d);
    g.in.push_back(in);
    g.out.push_back(out[du]);
    divides = divides && in % out[du] == 0;
  }
  if (divides) {
    for (std::int64_t d = 0; d < s; ++d) {
      const auto du = static_cast<std::size_t>(d);
      g.kernel.push_back(g.in[du] / g.out[du]);
      g.stride.push_back(g.in[du] / g.out[du]);
      g.dilation.push_back(1);
      g.pad_lo.push_back(0);
      g.pad_hi.push_back(0);
    }
  } else {
    g.adaptive = true;
  }
  return g;
}

PoolWithIndices adaptive_max_impl(std::string_view op, const Tensor& x, const Shape& size,
                                  bool want_indices) {
  trace::OpScope scope;
  const PoolGeometry g = resolve_adaptive(op, x, size);
  const bool need_grad = any_requires_grad({x});
  PoolResult r = backend::max_pool_forward(x.detach().contiguous(), g, want_indices || need_grad);
  record(r.values, op, {x}, {r.indices}, [g](const Saved& s, const Tensor& dy, const GradMask&) {
    return std::vector<Tensor>{max_pool_grad(dy, s[0], g)};
  });
  if (scope.recording()) scope.emit(op, {x}, r.values, {{"output_size", g.out}});
  return {r.values, want_indices ? r.indices : Tensor()};
}

// An adaptive average pooling (global: to size 1) and its trace.
Tensor adaptive_avg_impl(std::string_view op, const Tensor& x, const Shape& size) {
  trace::OpScope scope;
  const PoolGeometry g = resolve_adaptive(op, x, size);
  Tensor y = avg_pool_impl(op, x, PoolOptions(), &g);
  if (scope.recording()) scope.emit(op, {x}, y, {{"output_size", g.out}});
  return y;
}

}  // namespace

Tensor max_pool(const Tensor& x, const PoolOptions& o) {
  return max_pool_impl("max_pool", x, o, false).values;
}
Tensor max_pool1d(const Tensor& x, const PoolOptions& o) {
  check_input_rank("max_pool1d", x, 1);
  return max_pool_impl("max_pool1d", x, o, false).values;
}
Tensor max_pool2d(const Tensor& x, const PoolOptions& o) {
  check_input_rank("max_pool2d", x, 2);
  return max_pool_impl("max_pool2d", x, o, false).values;
}
Tensor max_pool3d(const Tensor& x, const PoolOptions& o) {
  check_input_rank("max_pool3d", x, 3);
  return max_pool_impl("max_pool3d", x, o, false).values;
}
PoolWithIndices max_pool_with_indices(const Tensor& x, const PoolOptions& o) {
  return max_pool_impl("max_pool_with_indices", x, o, true);
}

Tensor avg_pool(const Tensor& x, const PoolOptions& o) {
  return avg_pool_impl("avg_pool", x, o);
}
Tensor avg_pool1d(const Tensor& x, const PoolOptions& o) {
  check_input_rank("avg_pool1d", x, 1);
  return avg_pool_impl("avg_pool1d", x, o);
}
Tensor avg_pool2d(const Tensor& x, const PoolOptions& o) {
  check_input_rank("avg_pool2d", x, 2);
  return avg_pool_impl("avg_pool2d", x, o);
}
Tensor avg_pool3d(const Tensor& x, const PoolOptions& o) {
  check_input_rank("avg_pool3d", x, 3);
  return avg_pool_impl("avg_pool3d", x, o);
}

Tensor max_unpool(const Tensor& x, const Tensor& indices, const PoolOptions& o,
                  const Shape& output_size) {
  return max_unpool_impl("max_unpool", x, indices, o, output_size);
}
Tensor max_unpool1d(const Tensor& x, const Tensor& indices, const PoolOptions& o,
                    const Shape& output_size) {
  check_input_rank("max_unpool1d", x, 1);
  return max_unpool_impl("max_unpool1d", x, indices, o, output_size);
}
Tensor max_unpool2d(const Tensor& x, const Tensor& indices, const PoolOptions& o,
                    const Shape& output_size) {
  check_input_rank("max_unpool2d", x, 2);
  return max_unpool_impl("max_unpool2d", x, indices, o, output_size);
}
Tensor max_unpool3d(const Tensor& x, const Tensor& indices, const PoolOptions& o,
                    const Shape& output_size) {
  check_input_rank("max_unpool3d", x, 3);
  return max_unpool_impl("max_unpool3d", x, indices, o, output_size);
}

Tensor adaptive_avg_pool(const Tensor& x, const Shape& output_size) {
  return adaptive_avg_impl("adaptive_avg_pool", x, output_size);
}
Tensor adaptive_max_pool(const Tensor& x, const Shape& output_size) {
  return adaptive_max_impl("adaptive_max_pool", x, output_size, false).values;
}
PoolWithIndices adaptive_max_pool_with_indices(const Tensor& x, const Shape& output_size) {
  return adaptive_max_impl("adaptive_max_pool_with_indices", x, output_size, true);
}
Tensor global_avg_pool(const Tensor& x) {
  return adaptive_avg_impl("global_avg_pool", x, {1});
}

}  // namespace convtape
