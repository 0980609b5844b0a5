// Convolution front ends: argument checks and output shapes (every user-facing conv error lives
// here), the backend kernels (ops/backend.h), and the tape entries. conv_transpose runs as the
// data-gradient of the convolution it transposes, and its gradients as that convolution's forward
// and weight-gradient; conv_general maps JAX's layouts and batch groups onto conv with permutes and
// reshapes.
#include "ops/conv.h"

#include <algorithm>
#include <cctype>
#include <numeric>
#include <optional>

#include <fmt/ranges.h>

#include "core/autograd.h"
#include "core/checked.h"
#include "core/trace.h"
#include "ops/backend.h"
#include "ops/detail.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "ops/shape.h"

namespace convtape {

ConvOptions& ConvOptions::padding(const std::vector<std::int64_t>& p) {
  padding_.clear();
  for (auto v : p) padding_.emplace_back(v, v);
  mode_ = PaddingKind::Explicit;
  return *this;
}

PaddingKind padding_kind_from_string(std::string_view name, std::string_view op) {
  std::string upper(name);
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  if (upper == "SAME") return PaddingKind::Same;
  if (upper == "SAME_LOWER") return PaddingKind::SameLower;
  if (upper == "VALID") return PaddingKind::Valid;
  CT_FAIL("{}: expected padding 'SAME', 'SAME_LOWER' or 'VALID' (any case), got '{}'", op, name);
}

namespace {

constexpr std::int64_t kMaxSpatial = 8;

void check_rank(std::string_view op, const Shape& x, const Shape& w,
                std::string_view weight_layout) {
  const auto rank = static_cast<std::int64_t>(x.size());
  CT_CHECK(rank >= 3, "{}: expected input [N, C, *spatial] with at least one spatial dim, got {}",
           op, to_string(x));
  CT_CHECK(rank - 2 <= kMaxSpatial, "{}: expected at most {} spatial dims, got input {}", op,
           kMaxSpatial, to_string(x));
  CT_CHECK(static_cast<std::int64_t>(w.size()) == rank,
           "{}: expected weight {} of rank {} for input {}, got {}", op, weight_layout, rank,
           to_string(x), to_string(w));
}

void check_operands(std::string_view op, const Tensor& x, const Tensor& w, const Tensor& b) {
  detail::check_defined(op, x, "input");
  detail::check_defined(op, w, "weight");
  detail::check_floating_same(
      op, b.defined() ? std::vector<Tensor>{x, w, b} : std::vector<Tensor>{x, w});
}

// dilation * (kernel - 1) + 1, the extent a dilated kernel spans; kernel >= 1 and dilation >= 1
// are checked first. Refused when it does not fit: no output could be computed without it.
std::int64_t dilated_kernel(std::string_view op, std::int64_t kernel, std::int64_t dilation,
                            std::int64_t dim) {
  const auto reach = checked::try_mul(dilation, kernel - 1);
  const auto extent = reach ? checked::try_add(*reach, 1) : std::nullopt;
  CT_CHECK(extent.has_value(),
           "{}: expected the dilated kernel extent dilation * (kernel - 1) + 1 to fit in 64 bits, "
           "got {} * ({} - 1) + 1 in dim {}",
           op, dilation, kernel, dim);
  return *extent;
}

// The output shape [N, K, *out] whose element count must fit int64 (the byte count is checked
// against the dtype where the tensor is made).
Shape output_shape(std::string_view op, std::int64_t batch, std::int64_t channels,
                   const Shape& out) {
  Shape shape{batch, channels};
  shape.insert(shape.end(), out.begin(), out.end());
  checked::numel(shape, op);
  return shape;
}

// Resolves conv's options against x [N, C, *S] and w [K, C/groups, *R] (shapes only: the
// operands' dtypes and devices are checked by the caller). Every extent is computed in checked
// arithmetic: the dilated input (in - 1) * input_dilation + 1, the padded input in' + lo + hi, the
// dilated kernel, and SAME's padding; the output extent (padded - dilated kernel) / stride + 1 is
// then at most the padded extent, so it fits too. pad_hi, when given, receives the high padding
// of every dim (the geometry keeps only the low one), for the trace.
ConvGeometry resolve(std::string_view op, const Shape& xs, const Shape& ws, const Shape* bs,
                     const ConvOptions& o, Shape* pad_hi = nullptr) {
  check_rank(op, xs, ws, "[K, C/groups, *R]");
  const auto s = static_cast<std::int64_t>(xs.size()) - 2;
  const std::int64_t c = xs[1], k = ws[0], groups = o.groups();
  CT_CHECK(groups >= 1, "{}: expected groups >= 1, got {}", op, groups);
  CT_CHECK(c % groups == 0,
           "{}: expected input channels divisible by groups, got C = {}, groups = {}", op, c,
           groups);
  CT_CHECK(ws[1] == c / groups,
           "{}: expected input channels C = weight.size(1) * groups = {} * {} = {}, got input {} "
           "with C = {} (weight [K, C/groups, *R] = {})",
           op, ws[1], groups, checked::try_mul(ws[1], groups).value_or(-1), to_string(xs), c,
           to_string(ws));
  CT_CHECK(k >= 1 && k % groups == 0,
           "{}: expected output channels K >= 1 and divisible by groups, got K = {}, groups = {} "
           "(weight {})",
           op, k, groups, to_string(ws));
  if (bs)
    CT_CHECK(bs->size() == 1 && (*bs)[0] == k, "{}: expected bias [K] with K = {}, got {}", op, k,
             to_string(*bs));

  ConvGeometry g;
  g.batch = xs[0];
  g.channels = c;
  g.out_channels = k;
  g.groups = groups;
  g.exact = o.exact();
  g.stride = detail::per_dim(op, "stride", o.stride(), s);
  g.dilation = detail::per_dim(op, "dilation", o.dilation(), s);
  g.input_dilation = detail::per_dim(op, "input dilation", o.input_dilation(), s);
  detail::check_positive(op, "stride", g.stride);
  detail::check_positive(op, "dilation", g.dilation);
  detail::check_positive(op, "input dilation", g.input_dilation);
  g.in.assign(xs.begin() + 2, xs.end());
  g.kernel.assign(ws.begin() + 2, ws.end());
  CT_CHECK(std::all_of(g.kernel.begin(), g.kernel.end(), [](std::int64_t r) { return r > 0; }),
           "{}: expected a non-empty kernel, got weight {}", op, to_string(ws));

  std::vector<std::pair<std::int64_t, std::int64_t>> pads;
  if (o.padding_kind() == PaddingKind::Explicit) {
    pads = detail::per_dim(op, "padding", o.padding(), s);
    for (const auto& [lo, hi] : pads)
      CT_CHECK(lo >= 0 && hi >= 0, "{}: expected non-negative padding, got ({}, {})", op, lo, hi);
  }
  Shape padded, dilated;
  bool fits = true;
  for (std::int64_t d = 0; d < s; ++d) {
    const auto du = static_cast<std::size_t>(d);
    const std::int64_t in = g.in[du], di = g.input_dilation[du], st = g.stride[du];
    const std::int64_t dk = dilated_kernel(op, g.kernel[du], g.dilation[du], d);
    std::optional<std::int64_t> in_eff = 0;
    if (in > 0) {
      in_eff = checked::try_mul(in - 1, di);
      if (in_eff) in_eff = checked::try_add(*in_eff, 1);
    }
    CT_CHECK(in_eff.has_value(),
             "{}: expected the dilated input extent (in - 1) * input_dilation + 1 to fit in 64 "
             "bits, got ({} - 1) * {} + 1 in dim {}",
             op, in, di, d);
    if (o.padding_kind() == PaddingKind::Valid) {
      pads.emplace_back(0, 0);
    } else if (o.padding_kind() != PaddingKind::Explicit) {
      // JAX's rule, on the (input-dilated) extent in' = (in - 1) * input_dilation + 1:
      // out = ceil(in' / stride), total padding max((out - 1) * stride + dk - in', 0).
      // (out - 1) * stride < in' (or = -stride when in' = 0), so the sum is dk plus a value in
      // [-max(in', stride), 0]: nothing overflows once dk fits.
      const std::int64_t ie = *in_eff;
      const std::int64_t out = checked::div_ceil(ie, st);
      const std::int64_t total = std::max<std::int64_t>(dk + ((out - 1) * st - ie), 0);
      const std::int64_t lo = o.padding_kind() == PaddingKind::Same ? total / 2 : total - total / 2;
      pads.emplace_back(lo, total - lo);
    }
    const auto [lo, hi] = pads[du];
    auto total = checked::try_add(*in_eff, lo);
    if (total) total = checked::try_add(*total, hi);
    CT_CHECK(total.has_value(),
             "{}: expected the padded input extent to fit in 64 bits, got input {}{} + padding "
             "({}, {}) in dim {}",
             op, in, di == 1 ? std::string() : fmt::format(" (dilated {})", *in_eff), lo, hi, d);
    padded.push_back(*total);
    dilated.push_back(dk);
    fits = fits && *total >= dk;
    g.pad_lo.push_back(lo);
    if (pad_hi) pad_hi->push_back(hi);
  }
  CT_CHECK(fits,
           "{}: expected a dilated kernel ({}) no larger than the padded input ({}), got weight {} "
           "and input {}",
           op, detail::dims_string(dilated), detail::dims_string(padded), to_string(ws),
           to_string(xs));
  for (std::size_t d = 0; d < padded.size(); ++d)
    g.out.push_back((padded[d] - dilated[d]) / g.stride[d] + 1);  // <= padded[d]: fits
  output_shape(op, g.batch, g.out_channels, g.out);
  return g;
}

ConvGeometry resolve(std::string_view op, const Tensor& x, const Tensor& w, const Tensor& b,
                     const ConvOptions& o, Shape* pad_hi = nullptr) {
  check_operands(op, x, w, b);
  const Shape bshape = b.defined() ? b.shape() : Shape{};
  const ConvGeometry g =
      resolve(op, x.shape(), w.shape(), b.defined() ? &bshape : nullptr, o, pad_hi);
  checked::nbytes(output_shape(op, g.batch, g.out_channels, g.out), dtype_size(x.dtype()), op);
  return g;
}

std::vector<std::int64_t> spatial_dims(std::int64_t rank) {
  std::vector<std::int64_t> dims;
  for (std::int64_t d = 2; d < rank; ++d) dims.push_back(d);
  return dims;
}

// db = dy summed over the batch and every spatial dim: first the (adjacent) spatial dims, then the
// batch, so that neither sum needs a permuted copy of dy.
Tensor bias_grad(const Tensor& dy) {
  std::vector<std::int64_t> spatial;
  for (std::int64_t d = 2; d < dy.dim(); ++d) spatial.push_back(d);
  return sum(sum(dy, spatial), {0});
}

// The three bilinear maps of a convolution with geometry g, as one op that records: Forward
// (x, w) -> y, Data (dy, w) -> dx and Weight (dy, x) -> dw. With L = <c, map(a, b)>, each one's
// gradients are again two of the three: Forward: dx = Data(c, w), dw = Weight(c, x); Data (the
// adjoint of Forward in x): d dy = Forward(c, w), dw = Weight(dy, c); Weight (the adjoint of
// Forward in w): d dy = Forward(x, c), dx = Data(dy, c). So every derivative of a convolution, to
// any order, is a convolution with the same groups, strides, dilations, padding and input
// dilation: the backward of conv and conv_transpose calls these under create_graph.
enum class ConvMap { Forward, Data, Weight };

Tensor conv_map(ConvMap kind, const Tensor& a, const Tensor& b, const ConvGeometry& g) {
  const Tensor ac = a.contiguous(), bc = b.contiguous();
  const Tensor ad = ac.detach(), bd = bc.detach();
  Tensor y = kind == ConvMap::Forward ? backend::conv_forward(ad, bd, Tensor(), g)
             : kind == ConvMap::Data  ? backend::conv_backward_data(ad, bd, g)
                                      : backend::conv_backward_weight(ad, bd, g);
  static constexpr std::string_view names[] = {"conv_forward", "conv_backward_data",
                                               "conv_backward_weight"};
  record(y, names[static_cast<int>(kind)], {ac, bc},
         {b.requires_grad() ? ac : Tensor(), a.requires_grad() ? bc : Tensor()},
         [kind, g](const Saved& s, const Tensor& c, const GradMask& need) {
           // s[0] = a (saved when b needs a gradient), s[1] = b (when a does).
           Tensor da, db;
           switch (kind) {
             case ConvMap::Forward:  // a = x, b = w
               if (need[0]) da = conv_map(ConvMap::Data, c, s[1], g);
               if (need[1]) db = conv_map(ConvMap::Weight, c, s[0], g);
               break;
             case ConvMap::Data:  // a = dy, b = w
               if (need[0]) da = conv_map(ConvMap::Forward, c, s[1], g);
               if (need[1]) db = conv_map(ConvMap::Weight, s[0], c, g);
               break;
             case ConvMap::Weight:  // a = dy, b = x
               if (need[0]) da = conv_map(ConvMap::Forward, s[1], c, g);
               if (need[1]) db = conv_map(ConvMap::Data, s[0], c, g);
               break;
           }
           return std::vector<Tensor>{da, db};
         });
  return y;
}

// The forward kernel of the resolved conv g and its tape entry.
Tensor conv_forward_recorded(std::string_view op, const Tensor& x, const Tensor& w, const Tensor& b,
                             const ConvGeometry& g) {
  const Tensor xc = x.detach().contiguous(), wc = w.detach().contiguous();
  const Tensor bc = b.defined() ? b.detach().contiguous() : Tensor();
  Tensor y = backend::conv_forward(xc, wc, bc, g);
  const bool need_x = x.requires_grad(), need_w = w.requires_grad();
  // dx needs only w, dw only x: save just what the wanted gradients use.
  record(y, op, {x, w, b},
         {need_w ? SavedValue(xc, x) : SavedValue(), need_x ? SavedValue(wc, w) : SavedValue()},
         [g](const Saved& s, const Tensor& dy, const GradMask& need) {
           if (autograd::creating_graph())
             return std::vector<Tensor>{need[0] ? conv_map(ConvMap::Data, dy, s[1], g) : Tensor(),
                                        need[1] ? conv_map(ConvMap::Weight, dy, s[0], g) : Tensor(),
                                        need[2] ? bias_grad(dy) : Tensor()};
           const Tensor dyc = dy.contiguous();
           return std::vector<Tensor>{
               need[0] ? backend::conv_backward_data(dyc, s[1], g) : Tensor(),
               need[1] ? backend::conv_backward_weight(dyc, s[0], g) : Tensor(),
               need[2] ? bias_grad(dyc) : Tensor()};
         });
  return y;
}

// The trace of a conv (core/trace.h): its resolved geometry, per spatial dim, as onnx/ reads it.
trace::Attrs conv_attrs(const ConvGeometry& g, const Shape& pad_hi, bool flip_kernel) {
  return {{"stride", g.stride},
          {"dilation", g.dilation},
          {"input_dilation", g.input_dilation},
          {"pad_lo", g.pad_lo},
          {"pad_hi", pad_hi},
          {"groups", g.groups},
          {"flip_kernel", std::int64_t{flip_kernel}}};
}

Tensor conv_impl(std::string_view op, const Tensor& x, const Tensor& w, const Tensor& b,
                 const ConvOptions& o) {
  trace::OpScope scope;
  Shape pad_hi;
  const ConvGeometry g = resolve(op, x, w, b, o, scope.recording() ? &pad_hi : nullptr);
  detail::check_same_device(op, {x, w, b});
  Tensor y;
  if (o.flip_kernel()) {
    ConvOptions plain = o;
    plain.flip_kernel(false);
    y = conv_impl(op, x, flip(w, spatial_dims(w.dim())), b, plain);
  } else {
    y = conv_forward_recorded(op, x, w, b, g);
  }
  if (scope.recording()) scope.emit(op, {x, w, b}, y, conv_attrs(g, pad_hi, o.flip_kernel()));
  return y;
}

// The rank check of the conv1d/2d/3d and conv_transpose1d/2d/3d wrappers.
void check_input_rank(std::string_view op, const Tensor& x, std::int64_t spatial) {
  detail::check_defined(op, x, "input");
  CT_CHECK(x.dim() == spatial + 2,
           "{}: expected input of rank {} ([N, C, {} spatial dim{}]), got {}", op, spatial + 2,
           spatial, spatial == 1 ? "" : "s", to_string(x.shape()));
}

Tensor conv_ranked(std::string_view op, std::int64_t spatial, const Tensor& x, const Tensor& w,
                   const Tensor& b, const ConvOptions& o) {
  check_input_rank(op, x, spatial);
  return conv_impl(op, x, w, b, o);
}

}  // namespace

Tensor conv(const Tensor& x, const Tensor& w, const Tensor& b, const ConvOptions& o) {
  return conv_impl("conv", x, w, b, o);
}
Tensor conv1d(const Tensor& x, const Tensor& w, const Tensor& b, const ConvOptions& o) {
  return conv_ranked("conv1d", 1, x, w, b, o);
}
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const ConvOptions& o) {
  return conv_ranked("conv2d", 2, x, w, b, o);
}
Tensor conv3d(const Tensor& x, const Tensor& w, const Tensor& b, const ConvOptions& o) {
  return conv_ranked("conv3d", 3, x, w, b, o);
}

namespace {

// Resolves conv_transpose's options against x [N, C_in, *S] and w [C_in, C_out/groups, *R] as the
// geometry of the convolution it transposes (input: the transposed output, output: x). Per dim,
// full = (S - 1) * stride + dilation * (R - 1) + output_padding + 1 is the output before the
// padding is cropped, and also the padded input extent of that convolution, which its kernels
// index into: it must fit int64. The output extent is full - 2 * padding (PyTorch's formula).
ConvGeometry resolve_transpose(std::string_view op, const Shape& xs, const Shape& ws,
                               const Shape* bs, const ConvTransposeOptions& o) {
  check_rank(op, xs, ws, "[C_in, C_out/groups, *R]");
  const auto s = static_cast<std::int64_t>(xs.size()) - 2;
  const std::int64_t cin = xs[1], groups = o.groups();
  CT_CHECK(groups >= 1, "{}: expected groups >= 1, got {}", op, groups);
  CT_CHECK(ws[0] == cin, "{}: expected weight [C_in, C_out/groups, *R] with C_in = {}, got {}", op,
           cin, to_string(ws));
  CT_CHECK(cin % groups == 0,
           "{}: expected input channels divisible by groups, got C_in = {}, groups = {}", op, cin,
           groups);
  const auto cout = checked::try_mul(ws[1], groups);
  CT_CHECK(cout.has_value(),
           "{}: expected the output channels C_out = weight.size(1) * groups to fit in 64 bits, "
           "got {} * {}",
           op, ws[1], groups);
  CT_CHECK(*cout >= 1, "{}: expected at least one output channel, got weight {}", op,
           to_string(ws));
  if (bs)
    CT_CHECK(bs->size() == 1 && (*bs)[0] == *cout,
             "{}: expected bias [C_out] with C_out = {}, got {}", op, *cout, to_string(*bs));
  ConvGeometry g;
  g.batch = xs[0];
  g.channels = *cout;
  g.out_channels = cin;
  g.groups = groups;
  g.exact = o.exact();
  g.stride = detail::per_dim(op, "stride", o.stride(), s);
  g.dilation = detail::per_dim(op, "dilation", o.dilation(), s);
  g.input_dilation = Shape(static_cast<std::size_t>(s), 1);
  const auto pad = detail::per_dim(op, "padding", o.padding(), s);
  const auto out_pad = detail::per_dim(op, "output_padding", o.output_padding(), s);
  detail::check_positive(op, "stride", g.stride);
  detail::check_positive(op, "dilation", g.dilation);
  for (std::int64_t d = 0; d < s; ++d) {
    const auto du = static_cast<std::size_t>(d);
    const std::int64_t st = g.stride[du], dil = g.dilation[du], p = pad[du], opad = out_pad[du];
    CT_CHECK(p >= 0, "{}: expected non-negative padding, got [{}]", op, fmt::join(pad, ", "));
    CT_CHECK(opad >= 0 && (opad < st || opad < dil),
             "{}: expected output_padding smaller than stride or dilation, got output_padding = "
             "{}, stride = {}, dilation = {} (dim {})",
             op, opad, st, dil, d);
    const std::int64_t k = ws[du + 2], in = xs[du + 2];
    CT_CHECK(k >= 1, "{}: expected a non-empty kernel, got weight {}", op, to_string(ws));
    const std::int64_t dk = dilated_kernel(op, k, dil, d);
    auto full = checked::try_mul(in - 1, st);
    if (full) full = checked::try_add(*full, dk);
    if (full) full = checked::try_add(*full, opad);
    CT_CHECK(full.has_value(),
             "{}: expected the uncropped output extent (input - 1) * stride + dilation * (kernel - "
             "1) + output_padding + 1 to fit in 64 bits, got ({} - 1) * {} + {} * ({} - 1) + {} + "
             "1 in dim {}",
             op, in, st, dil, k, opad, d);
    // full >= 1 - stride >= 1 - 2^63, so full - padding only overflows below -2^63: negative.
    auto len = checked::try_sub(*full, p);
    if (len) len = checked::try_sub(*len, p);
    CT_CHECK(len.has_value() && *len >= 1,
             "{}: expected a positive output size, got {} in dim {}: (input - 1) * stride - 2 * "
             "padding + dilation * (kernel - 1) + output_padding + 1 = ({} - 1) * {} - 2 * {} + {} "
             "* ({} - 1) + {} + 1 (input {}, weight {})",
             op, len ? fmt::format("{}", *len) : std::string("a value below -2^63"), d, in, st, p,
             dil, k, opad, to_string(xs), to_string(ws));
    g.in.push_back(*len);
    g.out.push_back(in);
    g.kernel.push_back(k);
    g.pad_lo.push_back(p);
  }
  output_shape(op, g.batch, g.channels, g.in);
  return g;
}

Tensor conv_transpose_impl(std::string_view op, const Tensor& x, const Tensor& w, const Tensor& b,
                           const ConvTransposeOptions& o) {
  trace::OpScope scope;
  check_operands(op, x, w, b);
  const Shape bias_shape = b.defined() ? b.shape() : Shape{};
  const ConvGeometry g =
      resolve_transpose(op, x.shape(), w.shape(), b.defined() ? &bias_shape : nullptr, o);
  const std::int64_t cout = g.channels;
  checked::nbytes(output_shape(op, g.batch, cout, g.in), dtype_size(x.dtype()), op);
  detail::check_same_device(op, {x, w, b});
  const Tensor xc = x.detach().contiguous(), wc = w.detach().contiguous();
  const Tensor bc = b.defined() ? b.detach().contiguous() : Tensor();
  // The bias is added as the data-gradient path writes y (CPU phase_implicit) or in place after.
  Tensor y = backend::conv_backward_data(xc, wc, g, bc);
  const bool need_x = x.requires_grad(), need_w = w.requires_grad();
  record(y, op, {x, w, b},
         {need_w ? SavedValue(xc, x) : SavedValue(), need_x ? SavedValue(wc, w) : SavedValue()},
         [g](const Saved& sv, const Tensor& dy, const GradMask& need) {
           // y = Data(x, w) of the convolution g: dx = Forward(dy, w), dw = Weight(x, dy).
           if (autograd::creating_graph())
             return std::vector<Tensor>{
                 need[0] ? conv_map(ConvMap::Forward, dy, sv[1], g) : Tensor(),
                 need[1] ? conv_map(ConvMap::Weight, sv[0], dy, g) : Tensor(),
                 need[2] ? bias_grad(dy) : Tensor()};
           const Tensor dyc = dy.contiguous();
           return std::vector<Tensor>{
               need[0] ? backend::conv_forward(dyc, sv[1], Tensor(), g) : Tensor(),
               need[1] ? backend::conv_backward_weight(sv[0], dyc, g) : Tensor(),
               need[2] ? bias_grad(dyc) : Tensor()};
         });
  if (scope.recording()) {
    // g is the transposed convolution's geometry: its low padding is conv_transpose's padding.
    const auto s = static_cast<std::int64_t>(g.stride.size());
    scope.emit(op, {x, w, b}, y,
               {{"stride", g.stride},
                {"dilation", g.dilation},
                {"padding", g.pad_lo},
                {"output_padding", detail::per_dim(op, "output_padding", o.output_padding(), s)},
                {"groups", g.groups}});
  }
  return y;
}

Tensor conv_transpose_ranked(std::string_view op, std::int64_t spatial, const Tensor& x,
                             const Tensor& w, const Tensor& b, const ConvTransposeOptions& o) {
  check_input_rank(op, x, spatial);
  return conv_transpose_impl(op, x, w, b, o);
}

}  // namespace

Shape conv_output_shape(const Shape& x, const Shape& w, const ConvOptions& options,
                        std::string_view op) {
  const ConvGeometry g = resolve(op, x, w, nullptr, options);
  return output_shape(op, g.batch, g.out_channels, g.out);
}

Shape conv_transpose_output_shape(const Shape& x, const Shape& w,
                                  const ConvTransposeOptions& options, std::string_view op) {
  const ConvGeometry g = resolve_transpose(op, x, w, nullptr, options);
  return output_shape(op, g.batch, g.channels, g.in);
}

Tensor conv_transpose(const Tensor& x, const Tensor& w, const Tensor& b,
                      const ConvTransposeOptions& o) {
  return conv_transpose_impl("conv_transpose", x, w, b, o);
}
Tensor conv_transpose1d(const Tensor& x, const Tensor& w, const Tensor& b,
                        const ConvTransposeOptions& o) {
  return conv_transpose_ranked("conv_transpose1d", 1, x, w, b, o);
}
Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& b,
                        const ConvTransposeOptions& o) {
  return conv_transpose_ranked("conv_transpose2d", 2, x, w, b, o);
}
Tensor conv_transpose3d(const Tensor& x, const Tensor& w, const Tensor& b,
                        const ConvTransposeOptions& o) {
  return conv_transpose_ranked("conv_transpose3d", 3, x, w, b, o);
}

namespace {

// Checks one layout string: the rank, the two named dims, and distinct spatial letters that are
// exactly `spatial` (when given). Returns the positions of the named dims and of each spatial
// letter.
std::vector<std::int64_t> parse_layout(std::string_view which, const std::string& spec,
                                       std::int64_t rank, char first, char second,
                                       const std::string& spatial) {
  const std::string expected =
      fmt::format("one {}, one {} and the spatial dims '{}'", first, second, spatial);
  CT_CHECK(
      static_cast<std::int64_t>(spec.size()) == rank,
      "conv_general: expected {} dimension numbers of length {} (the operand's rank), got '{}'",
      which, rank, spec);
  std::vector<std::int64_t> perm;
  for (char ch : std::string{first, second} + spatial) {
    const auto n = std::count(spec.begin(), spec.end(), ch);
    CT_CHECK(n == 1, "conv_general: expected {} dimension numbers with {}, got '{}'", which,
             expected, spec);
    perm.push_back(static_cast<std::int64_t>(spec.find(ch)));
  }
  CT_CHECK(static_cast<std::int64_t>(perm.size()) == rank,
           "conv_general: expected {} dimension numbers with {}, got '{}'", which, expected, spec);
  return perm;
}

// JAX's negative padding crops the lhs-dilated input: a low pad of -c drops its first c positions,
// a high pad of -c its last c. Cropping the dilated input [x_0, 0.., x_1, 0.., ...] (dilation di,
// extent E = (in - 1) * di + 1) from position c keeps the elements i >= i0 = ceil(c / di), the
// first of them at i0 * di - c from the new start: so x is narrowed to those elements and the
// pad becomes that non-negative gap (likewise at the high end). pads is rewritten in place.
Tensor crop_for_negative_padding(Tensor x, std::vector<std::pair<std::int64_t, std::int64_t>>& pads,
                                 const std::vector<std::int64_t>& lhs_dilation) {
  for (std::size_t d = 0; d < pads.size(); ++d) {
    auto& [lo, hi] = pads[d];
    if (lo >= 0 && hi >= 0) continue;
    const auto dim = static_cast<std::int64_t>(d) + 2;
    const std::int64_t in = x.size(dim), di = lhs_dilation[d];
    // Extents that fit: the dilated input's is checked by conv later, so it is computed checked.
    const auto extent = in == 0 ? std::optional<std::int64_t>(0)
                                : checked::try_add(checked::try_mul(in - 1, di).value_or(-1), 1);
    CT_CHECK(extent.has_value() && *extent > 0,
             "conv_general: expected an lhs dilated extent (in - 1) * lhs_dilation + 1 that fits "
             "and is positive where padding is negative, got in = {}, lhs_dilation = {} in dim {}",
             in, di, d);
    const std::int64_t e = *extent;
    // -INT64_MIN does not exist; any crop of e or more is refused the same way.
    const auto crop = [e](std::int64_t p) { return p >= 0 ? 0 : p < -e ? e : -p; };
    const std::int64_t c_lo = crop(lo), c_hi = crop(hi);
    CT_CHECK(c_lo < e && c_hi < e - c_lo,
             "conv_general: expected negative padding to leave part of the (lhs dilated) input, "
             "got padding ({}, {}) for an extent of {} in dim {}",
             lo, hi, e, d);
    const std::int64_t first = c_lo, last = e - 1 - c_hi;  // kept positions [first, last]
    const std::int64_t i0 = (first + di - 1) / di, i1 = last / di;
    CT_CHECK(i0 <= i1,
             "conv_general: expected negative padding to keep at least one input element, got "
             "padding ({}, {}) keeping only lhs dilation holes of dim {} (input {}, lhs_dilation "
             "{})",
             lo, hi, d, in, di);
    x = narrow(x, dim, i0, i1 - i0 + 1);
    if (lo < 0) lo = i0 * di - first;
    if (hi < 0) hi = last - i1 * di;
  }
  return x;
}

}  // namespace

Tensor conv_general(const Tensor& lhs, const Tensor& rhs, const ConvGeneralOptions& o) {
  constexpr std::string_view op = "conv_general";
  detail::check_defined(op, lhs, "lhs");
  detail::check_defined(op, rhs, "rhs");
  const auto& dn = o.dimension_numbers;
  CT_CHECK(rhs.dim() >= 3, "conv_general: expected rhs with at least one spatial dim, got {}",
           to_string(rhs.shape()));
  CT_CHECK(lhs.dim() == rhs.dim(), "conv_general: expected lhs and rhs of one rank, got {} and {}",
           to_string(lhs.shape()), to_string(rhs.shape()));
  CT_CHECK(
      static_cast<std::int64_t>(dn.rhs.size()) == rhs.dim(),
      "conv_general: expected rhs dimension numbers of length {} (the operand's rank), got '{}'",
      rhs.dim(), dn.rhs);
  std::string spatial;
  for (char ch : dn.rhs)
    if (ch != 'O' && ch != 'I') spatial += ch;
  const auto rhs_perm = parse_layout("rhs", dn.rhs, rhs.dim(), 'O', 'I', spatial);
  const auto lhs_perm = parse_layout("lhs", dn.lhs, lhs.dim(), 'N', 'C', spatial);
  const auto out_pos = parse_layout("out", dn.out, lhs.dim(), 'N', 'C', spatial);
  const std::int64_t bgc = o.batch_group_count, fgc = o.feature_group_count;
  CT_CHECK(bgc >= 1 && fgc >= 1,
           "conv_general: expected group counts >= 1, got feature_group_count = {}, "
           "batch_group_count = {}",
           fgc, bgc);
  CT_CHECK(bgc == 1 || fgc == 1,
           "conv_general: expected feature_group_count or batch_group_count to be 1, got {} and {}",
           fgc, bgc);

  Tensor x = permute(lhs, lhs_perm);
  const Tensor w = permute(rhs, rhs_perm);
  std::int64_t groups = fgc;
  if (bgc > 1) {
    // Batch groups become feature groups: [B * n, C, S] -> [n, B * C, S].
    const std::int64_t n = x.size(0);
    CT_CHECK(n % bgc == 0,
             "conv_general: expected the batch size divisible by batch_group_count, got {} and {}",
             n, bgc);
    CT_CHECK(w.size(0) % bgc == 0,
             "conv_general: expected output features divisible by batch_group_count, got {} and {}",
             w.size(0), bgc);
    Shape split{bgc, n / bgc};
    split.insert(split.end(), x.shape().begin() + 1, x.shape().end());
    std::vector<std::int64_t> swap(split.size());
    std::iota(swap.begin(), swap.end(), 0);
    std::swap(swap[0], swap[1]);
    // bgc * C is the channel count of the regrouped input, [n / bgc, bgc * C, S]: it can exceed
    // int64 only for an input whose element count does not fit, which the tensor cannot have.
    x = reshape(permute(reshape(x, split), swap), [&] {
      Shape merged{n / bgc, checked::mul(bgc, x.size(1), op, "the regrouped input channels")};
      merged.insert(merged.end(), x.shape().begin() + 2, x.shape().end());
      return merged;
    }());
    groups = bgc;
  }
  const auto spatial_dims = static_cast<std::int64_t>(spatial.size());
  const bool lhs_dilated = std::any_of(o.lhs_dilation.begin(), o.lhs_dilation.end(),
                                       [](std::int64_t v) { return v != 1; });
  // JAX refuses string padding with lhs dilation (a transposed convolution, whose SAME padding
  // has no single meaning); so does conv_general.
  CT_CHECK(o.padding_kind == PaddingKind::Explicit || !lhs_dilated,
           "conv_general: expected explicit padding with lhs_dilation (as JAX, which refuses "
           "SAME / VALID for a transposed convolution: give the pads, or use conv_transpose), got "
           "{} padding with lhs_dilation [{}]",
           o.padding_kind == PaddingKind::Valid  ? "VALID"
           : o.padding_kind == PaddingKind::Same ? "SAME"
                                                 : "SAME_LOWER",
           fmt::join(o.lhs_dilation, ", "));
  std::vector<std::pair<std::int64_t, std::int64_t>> pads = o.padding;
  if (o.padding_kind == PaddingKind::Explicit && !pads.empty()) {
    pads = detail::per_dim(op, "padding", pads, spatial_dims);
    const std::vector<std::int64_t> lhs_dil =
        o.lhs_dilation.empty() ? std::vector<std::int64_t>(spatial.size(), 1)
                               : detail::per_dim(op, "lhs dilation", o.lhs_dilation, spatial_dims);
    detail::check_positive(op, "lhs dilation", lhs_dil);
    x = crop_for_negative_padding(x, pads, lhs_dil);
  }
  ConvOptions co;
  if (!o.window_strides.empty()) co.stride(o.window_strides);
  if (!o.lhs_dilation.empty()) co.input_dilation(o.lhs_dilation);
  if (!o.rhs_dilation.empty()) co.dilation(o.rhs_dilation);
  if (o.padding_kind == PaddingKind::Explicit) {
    if (!pads.empty()) co.padding(pads);
  } else {
    co.padding(o.padding_kind);
  }
  co.groups(groups);
  co.exact(o.exact);
  const Tensor y = conv_impl(op, x, w, Tensor(), co);
  // y is [N, C, *spatial]; out_pos says where each of those dims goes in the result.
  std::vector<std::int64_t> to_out(out_pos.size());
  for (std::size_t i = 0; i < out_pos.size(); ++i)
    to_out[static_cast<std::size_t>(out_pos[i])] = static_cast<std::int64_t>(i);
  return permute(y, to_out).contiguous();
}

}  // namespace convtape
