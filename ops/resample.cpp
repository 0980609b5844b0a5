// interpolate: separable resampling by index_select (and mul / add for the linear modes), one
// spatial dim at a time, with the source indices and weights computed on the host as PyTorch's CPU
// kernels compute them. See resample.h for the maths.
#include "ops/resample.h"

#include <algorithm>
#include <cmath>
#include <string>

#include <fmt/ranges.h>

#include "core/checked.h"
#include "core/trace.h"
#include "ops/detail.h"
#include "ops/elementwise.h"
#include "ops/factory.h"
#include "ops/shape.h"

namespace convtape {

namespace {

constexpr const char* kOp = "interpolate";

bool is_linear(InterpolateMode m) {
  return m == InterpolateMode::Linear || m == InterpolateMode::Bilinear ||
         m == InterpolateMode::Trilinear;
}

// The spatial rank a linear mode's name fixes (PyTorch: linear 3-d, bilinear 4-d, trilinear 5-d).
std::int64_t linear_rank(InterpolateMode m) {
  return m == InterpolateMode::Linear ? 1 : m == InterpolateMode::Bilinear ? 2 : 3;
}

// A source index or weight vector as a tensor of x's device.
template <class V>
Tensor on_device(const std::vector<V>& v, const Shape& shape, TensorOptions options,
                 const Tensor& x) {
  return from_vector(v, shape, options).to(x.device());
}

// One dim of a nearest mode: the source of every output position. PyTorch 1.13's CPU kernels take
// two routes, and both are followed here (the golden tests hold them to it):
//  - 'nearest' with 2 or 3 spatial dims (nearest_idx): a dim whose size does not change is copied,
//    a doubled one reads o / 2, any other computes in float32 whatever x's dtype;
//  - 'nearest' with 1 spatial dim and 'nearest-exact' (the separable kernel): computes in T, x's
//    dtype (float32 for int64), the product rounded to float32 before the floor (floorf).
template <class T>
std::vector<std::int64_t> nearest_source(std::int64_t in, std::int64_t out, double scale_factor,
                                         bool exact, std::int64_t spatial_rank) {
  std::vector<std::int64_t> src(static_cast<std::size_t>(out));
  const bool nearest_idx = !exact && spatial_rank >= 2;
  for (std::int64_t o = 0; o < out; ++o) {
    std::int64_t i = 0;
    if (nearest_idx && out == in) {
      i = o;
    } else if (nearest_idx && out == 2 * in) {
      i = o >> 1;
    } else if (nearest_idx) {
      const float scale = scale_factor > 0 ? static_cast<float>(1.0 / scale_factor)
                                           : static_cast<float>(in) / static_cast<float>(out);
      i = static_cast<std::int64_t>(std::floor(static_cast<float>(o) * scale));
    } else {
      const T scale = scale_factor > 0 ? static_cast<T>(1.0 / scale_factor)
                                       : static_cast<T>(in) / static_cast<T>(out);
      const T real =
          exact ? scale * (static_cast<T>(o) + static_cast<T>(0.5)) : scale * static_cast<T>(o);
      i = static_cast<std::int64_t>(std::floor(static_cast<float>(real)));
    }
    src[static_cast<std::size_t>(o)] = std::min(i, in - 1);
  }
  return src;
}

// One dim of the linear mode: y[o] = w0[o] x[i0[o]] + w1[o] x[i1[o]] (PyTorch's
// area_pixel_compute_scale / area_pixel_compute_source_index, in T).
template <class T>
struct LinearDim {
  std::vector<std::int64_t> i0, i1;
  std::vector<T> w0, w1;
};

template <class T>
LinearDim<T> linear_source(std::int64_t in, std::int64_t out, double scale_factor,
                           bool align_corners) {
  T scale;
  if (align_corners)
    scale = out > 1 ? static_cast<T>(in - 1) / static_cast<T>(out - 1) : static_cast<T>(0);
  else
    scale = scale_factor > 0 ? static_cast<T>(1.0 / scale_factor)
                             : static_cast<T>(in) / static_cast<T>(out);
  LinearDim<T> d;
  for (std::int64_t o = 0; o < out; ++o) {
    T real = align_corners
                 ? scale * static_cast<T>(o)
                 : scale * (static_cast<T>(o) + static_cast<T>(0.5)) - static_cast<T>(0.5);
    if (real < static_cast<T>(0)) real = static_cast<T>(0);
    const std::int64_t i0 = std::min(static_cast<std::int64_t>(real), in - 1);
    const T l1 = std::clamp(real - static_cast<T>(i0), static_cast<T>(0), static_cast<T>(1));
    d.i0.push_back(i0);
    d.i1.push_back(i0 < in - 1 ? i0 + 1 : i0);
    d.w0.push_back(static_cast<T>(1) - l1);
    d.w1.push_back(l1);
  }
  return d;
}

// t resampled along dim d from in to out positions.
template <class T>
Tensor resample_dim(const Tensor& t, std::int64_t d, std::int64_t in, std::int64_t out,
                    double scale_factor, const InterpolateOptions& o) {
  const Shape index_shape{out};
  if (!is_linear(o.mode())) {
    const auto src = nearest_source<T>(in, out, scale_factor,
                                       o.mode() == InterpolateMode::NearestExact, t.dim() - 2);
    return index_select(t, d, on_device(src, index_shape, kInt64, t));
  }
  if (in == out) return t;  // PyTorch copies a dim whose size does not change, whatever the scale
  const auto s = linear_source<T>(in, out, scale_factor, o.align_corners().value_or(false));
  // The weights broadcast along dim d: [out, 1, ..., 1] with a 1 for every later dim.
  Shape w_shape{out};
  w_shape.resize(static_cast<std::size_t>(t.dim() - d), 1);
  const TensorOptions w_options = t.dtype();
  const Tensor w0 = on_device(s.w0, w_shape, w_options, t);
  const Tensor w1 = on_device(s.w1, w_shape, w_options, t);
  return index_select(t, d, on_device(s.i0, index_shape, kInt64, t)) * w0 +
         index_select(t, d, on_device(s.i1, index_shape, kInt64, t)) * w1;
}

}  // namespace

InterpolateOptions& InterpolateOptions::mode(std::string_view name) {
  mode_ = interpolate_mode_from_string(name);
  return *this;
}

const char* interpolate_mode_name(InterpolateMode mode) {
  switch (mode) {
    case InterpolateMode::Nearest:
      return "nearest";
    case InterpolateMode::NearestExact:
      return "nearest-exact";
    case InterpolateMode::Linear:
      return "linear";
    case InterpolateMode::Bilinear:
      return "bilinear";
    case InterpolateMode::Trilinear:
      return "trilinear";
  }
  return "?";
}

InterpolateMode interpolate_mode_from_string(std::string_view name, std::string_view op) {
  for (const InterpolateMode m :
       {InterpolateMode::Nearest, InterpolateMode::NearestExact, InterpolateMode::Linear,
        InterpolateMode::Bilinear, InterpolateMode::Trilinear})
    if (name == interpolate_mode_name(m)) return m;
  CT_FAIL(
      "{}: expected mode 'nearest', 'nearest-exact', 'linear', 'bilinear' or 'trilinear', got "
      "'{}'",
      op, name);
}

Tensor interpolate(const Tensor& x, const InterpolateOptions& o) {
  trace::OpScope scope;
  detail::check_defined(kOp, x);
  detail::check_same_device(kOp, {x});
  const char* mode = interpolate_mode_name(o.mode());
  CT_CHECK(x.dim() >= 3 && x.dim() <= 5,
           "interpolate: expected x [N, C, *S] with 1 to 3 spatial dims (3-d to 5-d), got shape {}",
           to_string(x.shape()));
  const std::int64_t s = x.dim() - 2;
  if (is_linear(o.mode())) {
    CT_CHECK(s == linear_rank(o.mode()),
             "interpolate: expected a {}-d x [N, C, *S] for mode '{}', got shape {}",
             linear_rank(o.mode()) + 2, mode, to_string(x.shape()));
    CT_CHECK(x.is_floating_point(),
             "interpolate: expected a floating-point x for mode '{}', got {}", mode,
             dtype_name(x.dtype()));
  } else {
    CT_CHECK(!o.align_corners().has_value(),
             "interpolate: expected no align_corners with mode '{}' (it applies to the linear "
             "modes only), got align_corners = {}",
             mode, *o.align_corners());
  }
  const bool has_size = !o.size().empty(), has_scale = !o.scale_factor().empty();
  CT_CHECK(has_size != has_scale, "interpolate: expected either size or scale_factor, got {}",
           has_size ? "both" : "neither");
  CT_CHECK(!(has_size && o.recompute_scale_factor()),
           "interpolate: expected scale_factor with recompute_scale_factor, got size {}",
           fmt::join(o.size(), ", "));
  for (std::int64_t d = 0; d < s; ++d)
    CT_CHECK(x.size(2 + d) > 0, "interpolate: expected non-empty spatial dims, got shape {}",
             to_string(x.shape()));

  // Output sizes, and the scale factor each dim's source coordinates use (0: in / out).
  std::vector<std::int64_t> out_size;
  std::vector<double> scales(static_cast<std::size_t>(s), 0.0);
  if (has_size) {
    out_size = detail::per_dim(kOp, "size", o.size(), s);
  } else {
    const auto f = detail::per_dim(kOp, "scale_factor", o.scale_factor(), s);
    for (std::int64_t d = 0; d < s; ++d) {
      const double sf = f[static_cast<std::size_t>(d)];
      CT_CHECK(std::isfinite(sf) && sf > 0,
               "interpolate: expected positive finite scale_factor values, got [{}]",
               fmt::join(o.scale_factor(), ", "));
      const double n = std::floor(static_cast<double>(x.size(2 + d)) * sf);
      CT_CHECK(n < 0x1p62, "interpolate: expected an output size below 2^62, got {} * {}",
               x.size(2 + d), sf);
      out_size.push_back(static_cast<std::int64_t>(n));
      if (!o.recompute_scale_factor()) scales[static_cast<std::size_t>(d)] = sf;
    }
  }
  Shape out_shape = x.shape();
  for (std::int64_t d = 0; d < s; ++d)
    out_shape[static_cast<std::size_t>(2 + d)] = out_size[static_cast<std::size_t>(d)];
  CT_CHECK(std::all_of(out_size.begin(), out_size.end(), [](std::int64_t v) { return v > 0; }),
           "interpolate: expected output sizes > 0, got [{}] for input shape {}",
           fmt::join(out_size, ", "), to_string(x.shape()));
  checked::nbytes(out_shape, dtype_size(x.dtype()), kOp);

  Tensor y = x;
  for (std::int64_t d = 0; d < s; ++d) {
    const std::int64_t in = x.size(2 + d), out = out_size[static_cast<std::size_t>(d)];
    const double sf = scales[static_cast<std::size_t>(d)];
    y = x.dtype() == kFloat64 ? resample_dim<double>(y, 2 + d, in, out, sf, o)
                              : resample_dim<float>(y, 2 + d, in, out, sf, o);
  }
  // Every dim of a linear mode may keep its size: the result is still a new tensor.
  if (y.same(x)) y = x.clone();
  // scales: the scale factor each dim's source coordinates use (0: in / out, from the sizes).
  if (scope.recording())
    scope.emit(kOp, {x}, y,
               {{"mode", std::string(mode)},
                {"align_corners", std::int64_t{o.align_corners().value_or(false)}},
                {"size", out_size},
                {"scales", scales}});
  return y;
}

}  // namespace convtape
