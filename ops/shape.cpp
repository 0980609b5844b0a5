// Shape op front ends. Views are built over the input's storage with new shape / strides / offset;
// their backward maps the gradient back to the input's shape.
#include "ops/shape.h"

#include <algorithm>
#include <limits>
#include <numeric>
#include <string>

#include <fmt/ranges.h>

#include "core/autograd.h"
#include "core/checked.h"
#include "core/trace.h"
#include "ops/backend.h"
#include "ops/detail.h"
#include "ops/factory.h"
#include "ops/index_maps.h"

namespace convtape {

namespace {

Tensor make_view(const Tensor& x, Shape shape, Shape strides, std::int64_t offset) {
  return Tensor::make(x.storage(), std::move(shape), std::move(strides), offset, x.dtype());
}

// Backward of an op whose gradient is the output gradient reshaped to the input shape.
void record_reshape_like(Tensor& y, std::string_view op, const Tensor& x) {
  Shape shape = x.shape();
  record(y, op, {x}, {}, [shape](const Saved&, const Tensor& dy, const GradMask&) {
    return std::vector<Tensor>{reshape(dy, shape)};
  });
}

// The requested shape with its -1 (if any) inferred. Products are checked: the extents beside the
// -1 may multiply past int64 (reshape of an empty [0, 2^62, 2^62] to [2^62, 2^62, -1]), in which
// case only an empty input fits and the -1 becomes 0.
Shape infer_shape(std::string_view op, const Shape& requested, std::int64_t count,
                  const Shape& from) {
  Shape out = requested, known_extents;
  std::int64_t infer = -1;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      CT_CHECK(infer < 0, "{}: expected at most one -1 in the shape, got {}", op,
               to_string(requested));
      infer = static_cast<std::int64_t>(i);
    } else {
      CT_CHECK(out[i] >= 0, "{}: expected non-negative sizes (or one -1), got {}", op,
               to_string(requested));
      known_extents.push_back(out[i]);
    }
  }
  if (infer >= 0) {
    const auto known = checked::try_numel(known_extents);  // nullopt: past int64, so not 0
    CT_CHECK(known != 0 && (known ? count % *known == 0 : count == 0),
             "{}: expected a shape compatible with {} ({} elements), got {}", op, to_string(from),
             count, to_string(requested));
    out[static_cast<std::size_t>(infer)] = known ? count / *known : 0;
  }
  const auto total = checked::try_numel(out);
  CT_CHECK(total == count, "{}: expected a shape with {} elements (input {}), got {} with {}", op,
           count, to_string(from), to_string(requested),
           total ? fmt::to_string(*total) : std::string("more than 2^63 - 1"));
  return out;
}

// Writes src into the region of a zero tensor of `shape` that `region` (a view maker) selects.
template <class Region>
Tensor scatter_into_zeros(const Tensor& src, const Shape& shape, Region region) {
  Tensor out = zeros(shape, src.options());
  backend::copy(src, region(out));
  return out;
}

// slice's backward as an op that records: zeros of `shape` with src at slice(d, s, e, step) of
// them (s and e already clamped). Its gradient is that slice of the output gradient, whose own
// gradient is this op again, so the pair is closed under differentiation.
Tensor slice_backward(const Tensor& src, const Shape& shape, std::int64_t d, std::int64_t s,
                      std::int64_t e, std::int64_t step) {
  Tensor y =
      scatter_into_zeros(src, shape, [&](const Tensor& z) { return slice(z, d, s, e, step); });
  record(y, "slice_backward", {src}, {},
         [d, s, e, step](const Saved&, const Tensor& g, const GradMask&) {
           return std::vector<Tensor>{slice(g, d, s, e, step)};
         });
  return y;
}

}  // namespace

Tensor view(const Tensor& x, const Shape& shape) {
  trace::OpScope scope;
  detail::check_defined("view", x);
  CT_CHECK(x.is_contiguous(),
           "view: expected a contiguous tensor, got shape {} with strides {} (use reshape)",
           to_string(x.shape()), to_string(x.strides()));
  Shape out = infer_shape("view", shape, x.numel(), x.shape());
  Tensor y = make_view(x, out, contiguous_strides(out), x.offset());
  record_reshape_like(y, "view", x);
  if (scope.recording()) scope.emit("view", {x}, y, {{"shape", out}});
  return y;
}

Tensor reshape(const Tensor& x, const Shape& shape) {
  trace::OpScope scope;
  detail::check_defined("reshape", x);
  Shape out = infer_shape("reshape", shape, x.numel(), x.shape());
  if (out == x.shape()) return x;
  Tensor y = x.is_contiguous()
                 ? make_view(x, out, contiguous_strides(out), x.offset())
                 : make_view(x.detach().contiguous(), out, contiguous_strides(out), 0);
  record_reshape_like(y, "reshape", x);
  if (scope.recording()) scope.emit("reshape", {x}, y, {{"shape", out}});
  return y;
}

Tensor flatten(const Tensor& x, std::int64_t start_dim, std::int64_t end_dim) {
  trace::OpScope scope;
  detail::check_defined("flatten", x);
  if (x.dim() == 0) {
    Tensor y = reshape(x, {1});
    if (scope.recording()) scope.emit("reshape", {x}, y, {{"shape", Shape{1}}});
    return y;
  }
  const std::int64_t s = wrap_dim(start_dim, x.dim(), "flatten");
  const std::int64_t e = wrap_dim(end_dim, x.dim(), "flatten");
  CT_CHECK(s <= e, "flatten: expected start_dim <= end_dim, got {} and {} for shape {}", start_dim,
           end_dim, to_string(x.shape()));
  Shape out(x.shape().begin(), x.shape().begin() + s);
  // The merged extent; it can overflow only for an empty tensor with huge extents beside its zero.
  const Shape merged(x.shape().begin() + s, x.shape().begin() + e + 1);
  const auto m = checked::try_numel(merged);
  CT_CHECK(m.has_value(),
           "flatten: expected the flattened extent of dims {} to {} to fit in 64 bits, got {} of "
           "shape {}",
           s, e, to_string(merged), to_string(x.shape()));
  out.push_back(*m);
  out.insert(out.end(), x.shape().begin() + e + 1, x.shape().end());
  Tensor y = reshape(x, out);
  if (scope.recording() && !y.same(x))
    scope.emit("flatten", {x}, y, {{"start_dim", s}, {"end_dim", e}});
  return y;
}

Tensor permute(const Tensor& x, const std::vector<std::int64_t>& dims) {
  trace::OpScope scope;
  detail::check_defined("permute", x);
  const std::int64_t r = x.dim();
  CT_CHECK(static_cast<std::int64_t>(dims.size()) == r,
           "permute: expected {} dims for shape {}, got [{}]", r, to_string(x.shape()),
           fmt::join(dims, ", "));
  std::vector<std::int64_t> p(dims.size()), inverse(dims.size());
  std::vector<bool> seen(dims.size(), false);
  Shape shape(dims.size()), strides(dims.size());
  for (std::size_t i = 0; i < dims.size(); ++i) {
    const std::int64_t d = wrap_dim(dims[i], r, "permute");
    CT_CHECK(!seen[static_cast<std::size_t>(d)],
             "permute: expected a permutation of the dims, got [{}]", fmt::join(dims, ", "));
    seen[static_cast<std::size_t>(d)] = true;
    p[i] = d;
    inverse[static_cast<std::size_t>(d)] = static_cast<std::int64_t>(i);
    shape[i] = x.size(d);
    strides[i] = x.strides()[static_cast<std::size_t>(d)];
  }
  Tensor y = make_view(x, shape, strides, x.offset());
  record(y, "permute", {x}, {}, [inverse](const Saved&, const Tensor& dy, const GradMask&) {
    return std::vector<Tensor>{permute(dy, inverse)};
  });
  if (scope.recording()) scope.emit("permute", {x}, y, {{"perm", p}});
  return y;
}

Tensor transpose(const Tensor& x, std::int64_t dim0, std::int64_t dim1) {
  detail::check_defined("transpose", x);
  std::vector<std::int64_t> p(static_cast<std::size_t>(x.dim()));
  std::iota(p.begin(), p.end(), 0);
  if (x.dim() == 0) return x;
  std::swap(p[static_cast<std::size_t>(wrap_dim(dim0, x.dim(), "transpose"))],
            p[static_cast<std::size_t>(wrap_dim(dim1, x.dim(), "transpose"))]);
  return permute(x, p);
}

Tensor squeeze(const Tensor& x) {
  trace::OpScope scope;
  detail::check_defined("squeeze", x);
  Shape out;
  for (auto d : x.shape())
    if (d != 1) out.push_back(d);
  Tensor y = reshape(x, out);
  if (scope.recording() && !y.same(x)) {
    std::vector<std::int64_t> axes;
    for (std::int64_t d = 0; d < x.dim(); ++d)
      if (x.size(d) == 1) axes.push_back(d);
    scope.emit("squeeze", {x}, y, {{"axes", axes}});
  }
  return y;
}

Tensor squeeze(const Tensor& x, std::int64_t dim) {
  trace::OpScope scope;
  detail::check_defined("squeeze", x);
  if (x.dim() == 0) return x;
  const std::int64_t d = wrap_dim(dim, x.dim(), "squeeze");
  if (x.size(d) != 1) return x;
  Shape out = x.shape();
  out.erase(out.begin() + d);
  Tensor y = reshape(x, out);
  if (scope.recording()) scope.emit("squeeze", {x}, y, {{"axes", std::vector<std::int64_t>{d}}});
  return y;
}

Tensor unsqueeze(const Tensor& x, std::int64_t dim) {
  trace::OpScope scope;
  detail::check_defined("unsqueeze", x);
  const std::int64_t d = wrap_dim(dim, x.dim() + 1, "unsqueeze");
  Shape shape = x.shape(), strides = x.strides();
  // Saturates past int64: only an empty tensor gets there, and its strides address nothing.
  const std::int64_t stride =
      d < x.dim() ? checked::try_mul(x.strides()[static_cast<std::size_t>(d)], x.size(d))
                        .value_or(std::numeric_limits<std::int64_t>::max())
                  : 1;
  shape.insert(shape.begin() + d, 1);
  strides.insert(strides.begin() + d, stride);
  Tensor y = make_view(x, shape, strides, x.offset());
  record_reshape_like(y, "unsqueeze", x);
  if (scope.recording()) scope.emit("unsqueeze", {x}, y, {{"dim", d}});
  return y;
}

Tensor slice(const Tensor& x, std::int64_t dim, std::int64_t start, std::int64_t end,
             std::int64_t step) {
  trace::OpScope scope;
  detail::check_defined("slice", x);
  CT_CHECK(x.dim() > 0, "slice: expected a tensor with at least one dim, got a scalar");
  const std::int64_t d = wrap_dim(dim, x.dim(), "slice");
  CT_CHECK(step > 0, "slice: expected step > 0, got {}", step);
  const std::int64_t n = x.size(d);
  // Python's rules: a negative index counts from the end (i + n cannot overflow for i < 0 and
  // n >= 0), then both ends clamp into [0, n]; the length is ceil((e - s) / step) without the
  // e - s + step - 1 that wraps for a step near INT64_MAX.
  auto clampi = [n](std::int64_t i) { return std::clamp<std::int64_t>(i < 0 ? i + n : i, 0, n); };
  const std::int64_t s = clampi(start), e = std::max(clampi(end), clampi(start));
  const std::int64_t len = checked::div_ceil(e - s, step);
  Shape shape = x.shape(), strides = x.strides();
  const auto du = static_cast<std::size_t>(d);
  shape[du] = len;
  // stride * step only matters for a length of 2 or more, where it stays inside the dim's span;
  // a single element keeps the old stride, an empty view any (Tensor::make stores offset 0).
  if (len > 1)
    strides[du] = checked::mul(strides[du], step, "slice", "the stride of the sliced dim");
  const std::int64_t offset =
      len > 0 && x.numel() > 0
          ? checked::add(x.offset(), checked::mul(s, x.strides()[du], "slice", "the start offset"),
                         "slice", "the start offset")
          : 0;
  Tensor y = make_view(x, shape, strides, offset);
  Shape in_shape = x.shape();
  record(y, "slice", {x}, {},
         [in_shape, d, s, e, step](const Saved&, const Tensor& dy, const GradMask&) {
           return std::vector<Tensor>{slice_backward(dy, in_shape, d, s, e, step)};
         });
  // Python's start and end as given (ONNX's Slice reads them by the same rules), so that a
  // slice to the end of a dim stays one whatever the dim's size.
  if (scope.recording())
    scope.emit("slice", {x}, y, {{"dim", d}, {"start", start}, {"end", end}, {"step", step}});
  return y;
}

Tensor narrow(const Tensor& x, std::int64_t dim, std::int64_t start, std::int64_t length) {
  detail::check_defined("narrow", x);
  CT_CHECK(x.dim() > 0, "narrow: expected a tensor with at least one dim, got a scalar");
  const std::int64_t d = wrap_dim(dim, x.dim(), "narrow");
  const std::int64_t n = x.size(d);
  const std::int64_t s = start < 0 ? start + n : start;  // no overflow: start < 0 <= n
  // s + length is compared as n - length, which cannot overflow once both are in [0, n].
  CT_CHECK(
      s >= 0 && s <= n && length >= 0 && length <= n - s,
      "narrow: expected start and length inside dim {} of size {}, got start = {}, length = {}", d,
      n, start, length);
  return slice(x, d, s, s + length, 1);
}

Tensor expand(const Tensor& x, const Shape& shape) {
  trace::OpScope scope;
  detail::check_defined("expand", x);
  const auto r = static_cast<std::int64_t>(shape.size());
  CT_CHECK(r >= x.dim(), "expand: expected at least {} dims for input {}, got {}", x.dim(),
           to_string(x.shape()), to_string(shape));
  Shape out(shape.size()), strides(shape.size(), 0);
  const std::int64_t lead = r - x.dim();
  for (std::int64_t i = 0; i < r; ++i) {
    const auto iu = static_cast<std::size_t>(i);
    if (i < lead) {
      CT_CHECK(shape[iu] >= 0, "expand: expected sizes >= 0 for new dims, got {}",
               to_string(shape));
      out[iu] = shape[iu];
      continue;
    }
    const std::int64_t have = x.size(i - lead);
    CT_CHECK(shape[iu] >= -1, "expand: expected sizes >= 0 (or -1 to keep a dim), got {}",
             to_string(shape));
    const std::int64_t want = shape[iu] == -1 ? have : shape[iu];
    CT_CHECK(want == have || have == 1,
             "expand: expected size {} or a size-1 dim at dim {} of input {}, got {}", have,
             i - lead, to_string(x.shape()), to_string(shape));
    out[iu] = want;
    strides[iu] = want == have ? x.strides()[static_cast<std::size_t>(i - lead)] : 0;
  }
  // A view, but numel() of it must still fit: [2^62] of a scalar is fine, [2^62, 4] is not.
  checked::numel(out, "expand");
  Tensor y = make_view(x, out, strides, x.offset());
  Shape in_shape = x.shape();
  record(y, "expand", {x}, {}, [in_shape](const Saved&, const Tensor& dy, const GradMask&) {
    return std::vector<Tensor>{detail::sum_to(dy.contiguous(), in_shape)};
  });
  if (scope.recording()) scope.emit("expand", {x}, y, {{"shape", out}});
  return y;
}

Tensor index_select(const Tensor& x, std::int64_t dim, const Tensor& index) {
  trace::OpScope scope;
  detail::check_defined("index_select", x);
  detail::check_defined("index_select", index, "index");
  detail::check_same_device("index_select", {x, index});
  CT_CHECK(index.dtype() == kInt64 && index.dim() == 1,
           "index_select: expected a 1-d int64 index, got {} of shape {}",
           dtype_name(index.dtype()), to_string(index.shape()));
  CT_CHECK(x.dim() > 0, "index_select: expected a tensor with at least one dim, got a scalar");
  const std::int64_t d = wrap_dim(dim, x.dim(), "index_select");
  const Tensor idx = index.contiguous();
  const std::int64_t n = x.size(d);
  const OutOfRange bad = detail::find_out_of_range(idx, 0, n);
  CT_CHECK(!bad.found(),
           "index_select: expected indices in [0, {}) for dim {} of shape {}, got {} at {}", n, d,
           to_string(x.shape()), bad.value, bad.position);
  Shape out = x.shape();
  out[static_cast<std::size_t>(d)] = idx.numel();
  checked::nbytes(out, dtype_size(x.dtype()), "index_select");
  // Nothing to gather when x or the index is empty (and the [outer, n, inner] split of an empty
  // shape with huge extents beside its zero would overflow): an empty result, whose gradient
  // index_add_into_zeros makes all zeros.
  Tensor y;
  if (x.numel() == 0 || idx.numel() == 0) {
    y = empty(out, x.options());
  } else {
    const auto sp = detail::split_at(x.shape(), d);
    y = reshape(backend::index_select(x.detach().contiguous(), sp.outer, sp.n, sp.inner, idx), out)
            .detach();
  }
  record(y, "index_select", {x}, {idx}, [d, n](const Saved& s, const Tensor& dy, const GradMask&) {
    return std::vector<Tensor>{detail::index_add_into_zeros(dy, d, s[0], n)};
  });
  if (scope.recording()) scope.emit("index_select", {x, index}, y, {{"dim", d}});
  return y;
}

Tensor cat(const std::vector<Tensor>& tensors, std::int64_t dim) {
  trace::OpScope scope;
  CT_CHECK(!tensors.empty(), "cat: expected at least one tensor, got none");
  for (const auto& t : tensors) detail::check_defined("cat", t);
  const Tensor& first = tensors.front();
  CT_CHECK(first.dim() > 0, "cat: expected tensors with at least one dim, got a scalar");
  const std::int64_t d = wrap_dim(dim, first.dim(), "cat");
  Shape out = first.shape();
  out[static_cast<std::size_t>(d)] = 0;
  std::vector<std::int64_t> sizes;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    CT_CHECK(t.dtype() == first.dtype(),
             "cat: expected tensors of one dtype, got {} and {} (tensor {})",
             dtype_name(first.dtype()), dtype_name(t.dtype()), i);
    CT_CHECK(t.device() == first.device(), "cat: expected tensors on one device, got {} and {}",
             first.device().str(), t.device().str());
    bool ok = t.dim() == first.dim();
    for (std::int64_t k = 0; ok && k < t.dim(); ++k) ok = k == d || t.size(k) == first.size(k);
    CT_CHECK(ok, "cat: expected shapes that match {} except in dim {}, got {} (tensor {})",
             to_string(first.shape()), d, to_string(t.shape()), i);
    sizes.push_back(t.size(d));
    out[static_cast<std::size_t>(d)] =
        checked::add(out[static_cast<std::size_t>(d)], t.size(d), "cat", "the joined extent");
  }
  detail::check_same_device("cat", tensors);
  checked::nbytes(out, dtype_size(first.dtype()), "cat");
  Tensor y = empty(out, first.options());
  std::int64_t offset = 0;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    backend::copy(tensors[i], slice(y.detach(), d, offset, offset + sizes[i]));
    offset += sizes[i];
  }
  record(y, "cat", tensors, {}, [d, sizes](const Saved&, const Tensor& dy, const GradMask& need) {
    std::vector<Tensor> g(sizes.size());
    std::int64_t off = 0;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      if (need[i]) g[i] = slice(dy, d, off, off + sizes[i]).contiguous();
      off += sizes[i];
    }
    return g;
  });
  if (scope.recording()) scope.emit("cat", tensors, y, {{"dim", d}});
  return y;
}

Tensor stack(const std::vector<Tensor>& tensors, std::int64_t dim) {
  CT_CHECK(!tensors.empty(), "stack: expected at least one tensor, got none");
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    detail::check_defined("stack", tensors[i]);
    CT_CHECK(tensors[i].shape() == tensors[0].shape(),
             "stack: expected tensors of one shape {}, got {} (tensor {})",
             to_string(tensors[0].shape()), to_string(tensors[i].shape()), i);
  }
  const std::int64_t d = wrap_dim(dim, tensors[0].dim() + 1, "stack");
  std::vector<Tensor> parts;
  parts.reserve(tensors.size());
  for (const auto& t : tensors) parts.push_back(unsqueeze(t, d));
  return cat(parts, d);
}

namespace {

using Widths = std::vector<std::pair<std::int64_t, std::int64_t>>;

// pad's checks common to every mode; x's shape padded by widths (which pad its trailing dims).
Shape padded_shape(const Tensor& x, const Widths& widths) {
  detail::check_defined("pad", x);
  detail::check_same_device("pad", {x});
  const auto k = static_cast<std::int64_t>(widths.size());
  CT_CHECK(k <= x.dim(), "pad: expected at most {} (low, high) pairs for shape {}, got {}", x.dim(),
           to_string(x.shape()), k);
  Shape out = x.shape();
  for (std::int64_t i = 0; i < k; ++i) {
    const auto [l, h] = widths[static_cast<std::size_t>(i)];
    const std::int64_t d = x.dim() - k + i;
    CT_CHECK(l >= 0 && h >= 0, "pad: expected non-negative widths, got ({}, {}) for dim {}", l, h,
             d);
    out[static_cast<std::size_t>(d)] =
        checked::add(out[static_cast<std::size_t>(d)],
                     checked::add(l, h, "pad", "the padded extent"), "pad", "the padded extent");
  }
  checked::nbytes(out, dtype_size(x.dtype()), "pad");
  return out;
}

// The source position of every padded position of a dim of size n (l + n + h of them).
std::vector<std::int64_t> pad_source(PadMode mode, std::int64_t n, std::int64_t l, std::int64_t h) {
  std::vector<std::int64_t> src(static_cast<std::size_t>(l + n + h));
  for (std::int64_t j = 0; j < l + n + h; ++j) {
    const std::int64_t p = j - l;
    std::int64_t s = p;
    switch (mode) {
      case PadMode::Reflect:
        s = p < 0 ? -p : p >= n ? 2 * (n - 1) - p : p;
        break;
      case PadMode::Replicate:
        s = std::clamp<std::int64_t>(p, 0, n - 1);
        break;
      case PadMode::Circular:
        s = ((p % n) + n) % n;
        break;
      case PadMode::Constant:
        break;
    }
    src[static_cast<std::size_t>(j)] = s;
  }
  return src;
}

// The trace of a pad: the widths flattened (low, high per padded trailing dim), mode and value.
trace::Attrs pad_attrs(const Widths& widths, PadMode mode, double value) {
  std::vector<std::int64_t> flat;
  for (const auto& [l, h] : widths) {
    flat.push_back(l);
    flat.push_back(h);
  }
  return {{"widths", flat}, {"mode", std::string(pad_mode_name(mode))}, {"value", value}};
}

}  // namespace

Tensor pad(const Tensor& x, const Widths& widths, double value) {
  trace::OpScope scope;
  const Shape out = padded_shape(x, widths);
  const auto k = static_cast<std::int64_t>(widths.size());
  std::vector<std::int64_t> lo(static_cast<std::size_t>(x.dim()), 0);
  for (std::int64_t i = 0; i < k; ++i)
    lo[static_cast<std::size_t>(x.dim() - k + i)] = widths[static_cast<std::size_t>(i)].first;
  auto interior = [lo, in = x.shape()](const Tensor& t) {
    Tensor v = t;
    for (std::size_t d = 0; d < in.size(); ++d)
      if (lo[d] != 0 || v.size(static_cast<std::int64_t>(d)) != in[d])
        v = slice(v, static_cast<std::int64_t>(d), lo[d], lo[d] + in[d]);
    return v;
  };
  detail::check_element_value("pad", value, x.dtype());
  Tensor y = full(out, value, x.options());
  backend::copy(x, interior(y.detach()));
  record(y, "pad", {x}, {}, [interior](const Saved&, const Tensor& dy, const GradMask&) {
    return std::vector<Tensor>{interior(dy).contiguous()};
  });
  if (scope.recording()) scope.emit("pad", {x}, y, pad_attrs(widths, PadMode::Constant, value));
  return y;
}

// Reflect, replicate and circular: one index_select per padded dim (its backward, index_add,
// sums the gradient of every copy), so CPU, CUDA and autograd come from index_select.
Tensor pad(const Tensor& x, const Widths& widths, PadMode mode, double value) {
  if (mode == PadMode::Constant) return pad(x, widths, value);
  trace::OpScope scope;
  padded_shape(x, widths);
  const char* name = pad_mode_name(mode);
  CT_CHECK(value == 0.0, "pad: expected no value with mode '{}' (value 0), got {}", name, value);
  const auto k = static_cast<std::int64_t>(widths.size());
  for (std::int64_t i = 0; i < k; ++i) {
    const auto [l, h] = widths[static_cast<std::size_t>(i)];
    const std::int64_t d = x.dim() - k + i;
    const std::int64_t n = x.size(d);
    if (mode == PadMode::Reflect)
      CT_CHECK((l < n && h < n) || (l == 0 && h == 0),
               "pad: expected reflect widths smaller than the size {} of dim {} of shape {}, got "
               "({}, {})",
               n, d, to_string(x.shape()), l, h);
    else if (mode == PadMode::Circular)
      CT_CHECK(l <= n && h <= n,
               "pad: expected circular widths no larger than the size {} of dim {} of shape {} "
               "(padding wraps around once at most), got ({}, {})",
               n, d, to_string(x.shape()), l, h);
    else
      CT_CHECK(n > 0 || (l == 0 && h == 0),
               "pad: expected a non-empty dim {} of shape {} to replicate, got widths ({}, {})", d,
               to_string(x.shape()), l, h);
  }
  Tensor y;  // undefined until a dim is padded: with every width 0 the result is a copy of x
  for (std::int64_t i = 0; i < k; ++i) {
    const auto [l, h] = widths[static_cast<std::size_t>(i)];
    if (l == 0 && h == 0) continue;
    const std::int64_t d = x.dim() - k + i;
    const auto src = pad_source(mode, x.size(d), l, h);
    const Tensor index = from_vector(src, {static_cast<std::int64_t>(src.size())}).to(x.device());
    y = index_select(y.defined() ? y : x, d, index);
  }
  if (!y.defined()) y = x.clone();
  if (scope.recording()) scope.emit("pad", {x}, y, pad_attrs(widths, mode, value));
  return y;
}

PadMode pad_mode_from_string(std::string_view name, std::string_view op) {
  for (const PadMode m :
       {PadMode::Constant, PadMode::Reflect, PadMode::Replicate, PadMode::Circular})
    if (name == pad_mode_name(m)) return m;
  CT_FAIL("{}: expected mode 'constant', 'reflect', 'replicate' or 'circular', got '{}'", op, name);
}

const char* pad_mode_name(PadMode mode) {
  switch (mode) {
    case PadMode::Constant:
      return "constant";
    case PadMode::Reflect:
      return "reflect";
    case PadMode::Replicate:
      return "replicate";
    case PadMode::Circular:
      return "circular";
  }
  return "?";
}

Tensor flip(const Tensor& x, const std::vector<std::int64_t>& dims) {
  trace::OpScope scope;
  detail::check_defined("flip", x);
  detail::check_same_device("flip", {x});
  Shape strides = x.strides();
  std::int64_t offset = x.offset();
  std::vector<bool> seen(static_cast<std::size_t>(x.dim()), false);
  for (auto dim : dims) {
    const auto d = static_cast<std::size_t>(wrap_dim(dim, x.dim(), "flip"));
    if (x.dim() == 0) continue;  // a scalar accepts dim 0 / -1 and has nothing to reverse
    CT_CHECK(!seen[d], "flip: expected distinct dims, got [{}]", fmt::join(dims, ", "));
    seen[d] = true;
    // Only a tensor with elements moves its offset: an empty one may carry a huge extent whose
    // (extent - 1) * stride overflows, and addresses nothing anyway.
    if (x.numel() > 0) offset += (x.shape()[d] - 1) * strides[d];
    strides[d] = -strides[d];
  }
  // A negative-stride view, materialised so that the result owns dense memory.
  Tensor y = empty(x.shape(), x.options());
  backend::copy(make_view(x, x.shape(), strides, offset), y);
  record(y, "flip", {x}, {}, [dims](const Saved&, const Tensor& dy, const GradMask&) {
    return std::vector<Tensor>{flip(dy, dims)};
  });
  if (scope.recording()) {
    std::vector<std::int64_t> flipped;
    for (std::int64_t d = 0; d < x.dim(); ++d)
      if (seen[static_cast<std::size_t>(d)]) flipped.push_back(d);
    scope.emit("flip", {x}, y, {{"dims", flipped}});
  }
  return y;
}

Tensor rot90(const Tensor& x, std::int64_t k, std::pair<std::int64_t, std::int64_t> dims) {
  detail::check_defined("rot90", x);
  CT_CHECK(x.dim() >= 2, "rot90: expected a tensor with at least 2 dims, got shape {}",
           to_string(x.shape()));
  const std::int64_t d0 = wrap_dim(dims.first, x.dim(), "rot90");
  const std::int64_t d1 = wrap_dim(dims.second, x.dim(), "rot90");
  CT_CHECK(d0 != d1, "rot90: expected two different dims, got {} and {}", dims.first, dims.second);
  switch (((k % 4) + 4) % 4) {
    case 1:
      return transpose(flip(x, {d1}), d0, d1);
    case 2:
      return flip(x, {d0, d1});
    case 3:
      return flip(transpose(x, d0, d1), {d1});
    default:
      return x.clone();
  }
}

}  // namespace convtape
