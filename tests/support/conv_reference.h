// The nested-loop reference of a convolution and the seeded configurations that the conv tests
// (tests/ops/conv_*_test.cpp) draw: every (input element, weight element, output element)
// triple of conv, conv_transpose and conv_general, written from the definition, small-integer
// data, ConvSpec / TransposeSpec / GeneralSpec with their random draws, and a gradcheck that
// prints its configuration on failure.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "support/draw.h"
#include "support/test_util.h"

namespace ct_conv {

using namespace convtape;
using ct_test::equal;
using ct_test::leaf;

using Values = std::vector<double>;

using ct_test::Draw;
using ct_test::Pads;
using ct_test::str;

inline const char* mode_name(PaddingKind m) {
  switch (m) {
    case PaddingKind::Explicit:
      return "explicit";
    case PaddingKind::Same:
      return "SAME";
    case PaddingKind::SameLower:
      return "SAME_LOWER";
    case PaddingKind::Valid:
      return "VALID";
  }
  return "?";
}

// A per-dim option given once or once per dim, as one value per dim.
inline Shape all_dims(const Shape& v, std::size_t dims) {
  return v.size() == 1 ? Shape(dims, v[0]) : v;
}

inline Shape unravel(std::int64_t flat, const Shape& shape) {
  Shape idx(shape.size());
  for (std::size_t d = shape.size(); d-- > 0;) {
    idx[d] = flat % shape[d];
    flat /= shape[d];
  }
  return idx;
}

inline std::int64_t ravel(const Shape& idx, const Shape& shape) {
  std::int64_t flat = 0;
  for (std::size_t d = 0; d < shape.size(); ++d) flat = flat * shape[d] + idx[d];
  return flat;
}

inline Shape concat(Shape a, const Shape& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// ---- the reference: every (input element, weight element, output element) triple of a conv

// A fully resolved convolution x [batch, channels, *in], w [out_channels, channels / groups,
// *kernel] -> y [batch / batch_groups, out_channels, *out]. With batch groups, output channel
// block j reads batch block j of the input (JAX's batch_group_count).
struct Geometry {
  std::int64_t batch = 1, channels = 1, out_channels = 1, groups = 1, batch_groups = 1;
  Shape in, kernel, out, stride, dilation, input_dilation, pad_lo;
  bool flip = false;

  std::size_t rank() const { return in.size(); }
  Shape x_shape() const { return concat({batch, channels}, in); }
  Shape w_shape() const { return concat({out_channels, channels / groups}, kernel); }
  Shape y_shape() const { return concat({batch / batch_groups, out_channels}, out); }
};

// Fills out and pad_lo from the definitions in REFERENCE.md (pads holds one pair per dim for
// Explicit); false when the dilated kernel does not fit the padded, dilated input.
inline bool resolve(Geometry& g, PaddingKind mode, const Pads& pads) {
  g.out.clear();
  g.pad_lo.clear();
  for (std::size_t d = 0; d < g.rank(); ++d) {
    const std::int64_t in = g.in[d], k = g.kernel[d], st = g.stride[d], dil = g.dilation[d];
    std::int64_t lo = 0, hi = 0;
    if (mode == PaddingKind::Explicit) {
      lo = pads[d].first;
      hi = pads[d].second;
    } else if (mode != PaddingKind::Valid) {
      // On the input-dilated extent (the same as in without input dilation).
      const std::int64_t ie = in == 0 ? 0 : (in - 1) * g.input_dilation[d] + 1;
      const std::int64_t out = (ie + st - 1) / st;
      const std::int64_t total = std::max<std::int64_t>((out - 1) * st + (k - 1) * dil + 1 - ie, 0);
      lo = mode == PaddingKind::Same ? total / 2 : total - total / 2;
      hi = total - lo;
    }
    const std::int64_t padded = (in - 1) * g.input_dilation[d] + 1 + lo + hi;
    const std::int64_t span = dil * (k - 1) + 1;
    if (padded < span) return false;
    g.out.push_back((padded - span) / st + 1);
    g.pad_lo.push_back(lo);
  }
  return true;
}

// Calls f(x index, w index, y index) for every product the convolution sums, from the definition.
template <class F>
void for_each_tap(const Geometry& g, F&& f) {
  const std::int64_t cg = g.channels / g.groups, kg = g.out_channels / g.groups;
  const std::int64_t kb = g.out_channels / g.batch_groups, nb = g.batch / g.batch_groups;
  const std::int64_t in_n = numel(g.in), k_n = numel(g.kernel), out_n = numel(g.out);
  for (std::int64_t n = 0; n < nb; ++n)
    for (std::int64_t k = 0; k < g.out_channels; ++k) {
      const std::int64_t grp = k / kg, nx = (k / kb) * nb + n;
      for (std::int64_t p = 0; p < out_n; ++p) {
        const Shape o = unravel(p, g.out);
        const std::int64_t yi = (n * g.out_channels + k) * out_n + p;
        for (std::int64_t rf = 0; rf < k_n; ++rf) {
          Shape r = unravel(rf, g.kernel);
          std::int64_t xin = 0;
          bool inside = true;
          for (std::size_t d = 0; d < g.rank() && inside; ++d) {
            const std::int64_t t = o[d] * g.stride[d] + r[d] * g.dilation[d] - g.pad_lo[d];
            const std::int64_t di = g.input_dilation[d];
            inside = t >= 0 && t % di == 0 && t / di < g.in[d];
            xin = xin * g.in[d] + t / di;
          }
          if (!inside) continue;
          // A true convolution reads the kernel mirrored.
          if (g.flip)
            for (std::size_t d = 0; d < g.rank(); ++d) r[d] = g.kernel[d] - 1 - r[d];
          const std::int64_t wr = ravel(r, g.kernel);
          for (std::int64_t ci = 0; ci < cg; ++ci)
            f(((nx * g.channels + grp * cg + ci) * in_n + xin), (k * cg + ci) * k_n + wr, yi);
        }
      }
    }
}

// The transposed convolution from its own definition: x [N, C_in, *in], w [C_in, C_out / groups,
// *kernel]; y[n, group(c) * C_out / groups + co, i * stride + r * dilation - padding] += x[n, c, i]
// * w[c, co, r] wherever that position lies in [0, out).
struct TransposeGeometry {
  std::int64_t batch = 1, in_channels = 1, out_channels = 1, groups = 1;
  Shape in, kernel, out, stride, dilation, padding;
};

template <class F>
void for_each_transpose_tap(const TransposeGeometry& g, F&& f) {
  const std::int64_t cig = g.in_channels / g.groups, cog = g.out_channels / g.groups;
  const std::int64_t in_n = numel(g.in), k_n = numel(g.kernel), out_n = numel(g.out);
  for (std::int64_t n = 0; n < g.batch; ++n)
    for (std::int64_t c = 0; c < g.in_channels; ++c)
      for (std::int64_t i = 0; i < in_n; ++i) {
        const Shape ii = unravel(i, g.in);
        for (std::int64_t rf = 0; rf < k_n; ++rf) {
          const Shape r = unravel(rf, g.kernel);
          std::int64_t yo = 0;
          bool inside = true;
          for (std::size_t d = 0; d < g.in.size() && inside; ++d) {
            const std::int64_t t = ii[d] * g.stride[d] + r[d] * g.dilation[d] - g.padding[d];
            inside = t >= 0 && t < g.out[d];
            yo = yo * g.out[d] + t;
          }
          if (!inside) continue;
          for (std::int64_t co = 0; co < cog; ++co)
            f((n * g.in_channels + c) * in_n + i, (c * cog + co) * k_n + rf,
              (n * g.out_channels + (c / cig) * cog + co) * out_n + yo);
        }
      }
}

using TapFn = std::function<void(std::int64_t, std::int64_t, std::int64_t)>;
using Taps = std::function<void(const TapFn&)>;

inline Taps conv_taps(const Geometry& g) {
  return [g](const TapFn& f) { for_each_tap(g, f); };
}
inline Taps transpose_taps(const TransposeGeometry& g) {
  return [g](const TapFn& f) { for_each_transpose_tap(g, f); };
}

inline std::int64_t count_taps(const Taps& taps) {
  std::int64_t count = 0;
  taps([&](std::int64_t, std::int64_t, std::int64_t) { ++count; });
  return count;
}

inline std::size_t at(std::int64_t i) {
  return static_cast<std::size_t>(i);
}

// Output channel of flat element i of a [N, C, *S] tensor.
inline std::size_t channel_of(std::size_t i, const Shape& shape) {
  const std::int64_t inner = numel(Shape(shape.begin() + 2, shape.end()));
  return at((static_cast<std::int64_t>(i) / inner) % shape[1]);
}

// y = sum of x * w over the taps, plus b[channel] (b empty: no bias).
inline Values ref_forward(const Taps& taps, const Values& x, const Values& w, const Values& b,
                          const Shape& y_shape) {
  Values y(at(numel(y_shape)), 0.0);
  taps([&](std::int64_t xi, std::int64_t wi, std::int64_t yi) {
    y[at(yi)] += x[at(xi)] * w[at(wi)];
  });
  if (!b.empty())
    for (std::size_t i = 0; i < y.size(); ++i) y[i] += b[channel_of(i, y_shape)];
  return y;
}

struct RefGrads {
  Values dx, dw, db;
};

// The gradients of the same sum for an upstream gradient dy.
inline RefGrads ref_backward(const Taps& taps, const Values& x, const Values& w, const Values& dy,
                             const Shape& y_shape) {
  RefGrads g{Values(x.size(), 0.0), Values(w.size(), 0.0), Values(at(y_shape[1]), 0.0)};
  taps([&](std::int64_t xi, std::int64_t wi, std::int64_t yi) {
    g.dx[at(xi)] += dy[at(yi)] * w[at(wi)];
    g.dw[at(wi)] += dy[at(yi)] * x[at(xi)];
  });
  for (std::size_t i = 0; i < dy.size(); ++i) g.db[channel_of(i, y_shape)] += dy[i];
  return g;
}

// Moves values from the layout `from` (letters naming the dims of from_shape) to the layout `to`.
inline Shape reorder(const std::string& from, const Shape& from_shape, const std::string& to) {
  Shape s;
  for (char ch : to) s.push_back(from_shape[from.find(ch)]);
  return s;
}

inline Values relayout(const Values& v, const std::string& from, const Shape& from_shape,
                       const std::string& to) {
  const Shape to_shape = reorder(from, from_shape, to);
  Values out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    const Shape idx = unravel(static_cast<std::int64_t>(i), from_shape);
    Shape to_idx;
    for (char ch : to) to_idx.push_back(idx[from.find(ch)]);
    out[static_cast<std::size_t>(ravel(to_idx, to_shape))] = v[i];
  }
  return out;
}

// ---- data

// Small integers in [-4, 4]: every product and sum below stays exact in float32.
inline Values small_ints(const Shape& shape, Draw& d) {
  Values v(static_cast<std::size_t>(numel(shape)));
  for (auto& x : v) x = static_cast<double>(d(-4, 4));
  return v;
}

inline Tensor as_tensor(const Values& v, const Shape& shape, bool requires_grad = false,
                        DType dtype = kFloat32) {
  return tensor(v, shape, dtype).requires_grad_(requires_grad);
}

inline Values values_of(const Tensor& t) {
  return t.to_vector<double>();
}

// ---- conv configurations

struct ConvSpec {
  std::int64_t batch = 1, channels = 1, out_channels = 1, groups = 1;
  Shape in, kernel;
  Shape stride{1}, dilation{1}, input_dilation{1};
  PaddingKind mode = PaddingKind::Explicit;
  Pads pads{{0, 0}};
  bool symmetric = false;  // pads passed as one value per side (ConvOptions::padding(Shape))
  bool bias = false, flip = false;
  int wrapper = 0;  // 0: conv; 1: conv1d / conv2d / conv3d for the rank

  std::size_t rank() const { return in.size(); }
  Shape x_shape() const { return concat({batch, channels}, in); }
  Shape w_shape() const { return concat({out_channels, channels / groups}, kernel); }
  Shape b_shape() const { return {out_channels}; }

  // exact: these cases compare small-integer sums with ==, which Winograd's transforms (applied to
  // float32 3x3 convs with many channels) round; tests/cpu/conv_winograd_test.cpp covers those.
  ConvOptions options() const {
    ConvOptions o;
    o.stride(stride)
        .dilation(dilation)
        .input_dilation(input_dilation)
        .groups(groups)
        .flip_kernel(flip)
        .exact();
    if (mode != PaddingKind::Explicit) {
      o.padding(mode);
    } else if (symmetric) {
      Shape p;
      for (const auto& lh : pads) p.push_back(lh.first);
      o.padding(p);
    } else {
      o.padding(pads);
    }
    return o;
  }

  std::optional<Geometry> geometry() const {
    Geometry g;
    g.batch = batch;
    g.channels = channels;
    g.out_channels = out_channels;
    g.groups = groups;
    g.in = in;
    g.kernel = kernel;
    g.stride = all_dims(stride, rank());
    g.dilation = all_dims(dilation, rank());
    g.input_dilation = all_dims(input_dilation, rank());
    g.flip = flip;
    Pads p = pads;
    if (p.size() == 1) p.assign(rank(), pads[0]);
    if (!resolve(g, mode, p)) return std::nullopt;
    return g;
  }

  Tensor apply(const Tensor& x, const Tensor& w, const Tensor& b) const {
    if (wrapper == 1 && rank() == 1) return conv1d(x, w, b, options());
    if (wrapper == 1 && rank() == 2) return conv2d(x, w, b, options());
    if (wrapper == 1 && rank() == 3) return conv3d(x, w, b, options());
    return conv(x, w, b, options());
  }

  std::string describe() const {
    std::ostringstream s;
    s << (wrapper == 1 ? "conv" + std::to_string(rank()) + "d" : std::string("conv")) << ": x "
      << str(x_shape()) << ", w " << str(w_shape()) << (bias ? ", bias" : ", no bias")
      << ", groups " << groups << ", stride " << str(stride) << ", padding ";
    if (mode != PaddingKind::Explicit)
      s << mode_name(mode);
    else
      s << (symmetric ? "symmetric " : "per-side ") << str(pads);
    s << ", dilation " << str(dilation) << ", input dilation " << str(input_dilation)
      << (flip ? ", flipped kernel" : "");
    return s.str();
  }
};

// A random conv whose dilated kernel fits and which reads at least one input element, so its
// gradients are not all zero. scale 1 keeps it tiny (channels <= 4, batch <= 2, spatial <= 6 / 5 /
// 4 for ranks 1 / 2 / 3); larger scales multiply the channel and spatial limits.
inline ConvSpec random_conv(Draw& d, std::size_t rank, std::int64_t scale = 1) {
  const std::int64_t max_in = (rank == 1 ? 6 : rank == 2 ? 5 : 4) * scale;
  const std::int64_t max_c = 4 * scale;
  for (;;) {
    ConvSpec c;
    c.batch = d(1, 2);
    const std::int64_t kind = d(0, 3);
    if (kind == 2) {  // depthwise: one group per channel, channel multiplier 1 or 2
      c.channels = d(2, max_c);
      c.groups = c.channels;
      c.out_channels = c.channels * (2 * c.channels <= max_c ? d(1, 2) : 1);
    } else {
      c.groups = kind == 0 ? 1 : kind == 1 ? 2 : d(1, max_c);
      c.channels = c.groups * d(1, max_c / c.groups);
      c.out_channels = c.groups * d(1, max_c / c.groups);
    }
    for (std::size_t i = 0; i < rank; ++i) c.in.push_back(d(1, max_in));
    for (std::size_t i = 0; i < rank; ++i) c.kernel.push_back(d(1, 3));
    c.stride = d.per_dim(static_cast<std::int64_t>(rank), 1, 3);
    c.dilation = d.per_dim(static_cast<std::int64_t>(rank), 1, 2);
    c.input_dilation = d.one_in(3) ? d.per_dim(static_cast<std::int64_t>(rank), 1, 2) : Shape{1};
    switch (d(0, 6)) {
      case 0:
      case 1: {  // symmetric, once or per dim
        c.symmetric = true;
        const Shape p = d.per_dim(static_cast<std::int64_t>(rank), 0, 2);
        c.pads.clear();
        for (auto v : p) c.pads.emplace_back(v, v);
        break;
      }
      case 2:
      case 3: {  // per side, once or per dim
        c.pads.clear();
        const std::size_t n = d.one_in(3) ? 1 : rank;
        for (std::size_t i = 0; i < n; ++i) c.pads.emplace_back(d(0, 2), d(0, 2));
        break;
      }
      case 4:
        c.mode = PaddingKind::Same;
        break;
      case 5:
        c.mode = PaddingKind::SameLower;
        break;
      default:
        c.mode = PaddingKind::Valid;
        break;
    }
    c.bias = d.one_in(2);
    c.flip = d.one_in(4);
    c.wrapper = d.one_in(3) ? 1 : 0;
    const auto g = c.geometry();
    if (!g || count_taps(conv_taps(*g)) == 0) continue;
    return c;
  }
}

// ---- conv_transpose configurations

struct TransposeSpec {
  std::int64_t batch = 1, in_channels = 1, out_channels = 1, groups = 1;
  Shape in, kernel;
  Shape stride{1}, padding{0}, output_padding{0}, dilation{1};
  bool bias = false;
  bool ranked = false;  // conv_transpose1d / 2d / 3d instead of conv_transpose

  std::size_t rank() const { return in.size(); }
  Shape x_shape() const { return concat({batch, in_channels}, in); }
  Shape w_shape() const { return concat({in_channels, out_channels / groups}, kernel); }
  Shape b_shape() const { return {out_channels}; }

  ConvTransposeOptions options() const {
    return ConvTransposeOptions()
        .stride(stride)
        .padding(padding)
        .output_padding(output_padding)
        .dilation(dilation)
        .groups(groups)
        .exact();  // small-integer sums compared with ==, as ConvSpec
  }

  // Output size (in - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1.
  TransposeGeometry geometry() const {
    TransposeGeometry g;
    g.batch = batch;
    g.in_channels = in_channels;
    g.out_channels = out_channels;
    g.groups = groups;
    g.in = in;
    g.kernel = kernel;
    g.stride = all_dims(stride, rank());
    g.dilation = all_dims(dilation, rank());
    g.padding = all_dims(padding, rank());
    const Shape op = all_dims(output_padding, rank());
    for (std::size_t d = 0; d < rank(); ++d)
      g.out.push_back((in[d] - 1) * g.stride[d] - 2 * g.padding[d] +
                      g.dilation[d] * (kernel[d] - 1) + op[d] + 1);
    return g;
  }
  Shape y_shape() const { return concat({batch, out_channels}, geometry().out); }

  Tensor apply(const Tensor& x, const Tensor& w, const Tensor& b) const {
    if (ranked && rank() == 1) return conv_transpose1d(x, w, b, options());
    if (ranked && rank() == 2) return conv_transpose2d(x, w, b, options());
    if (ranked && rank() == 3) return conv_transpose3d(x, w, b, options());
    return conv_transpose(x, w, b, options());
  }

  std::string describe() const {
    std::ostringstream s;
    s << (ranked ? "conv_transpose" + std::to_string(rank()) + "d" : "conv_transpose") << ": x "
      << str(x_shape()) << ", w " << str(w_shape()) << (bias ? ", bias" : ", no bias")
      << ", groups " << groups << ", stride " << str(stride) << ", padding " << str(padding)
      << ", output_padding " << str(output_padding) << ", dilation " << str(dilation);
    return s.str();
  }
};

inline TransposeSpec random_transpose(Draw& d, std::size_t rank) {
  const std::int64_t max_in = rank == 1 ? 5 : rank == 2 ? 4 : 3;
  for (;;) {
    TransposeSpec t;
    t.batch = d(1, 2);
    t.groups = d.one_in(2) ? 1 : d(2, 4);
    t.in_channels = t.groups * d(1, 4 / t.groups);
    t.out_channels = t.groups * d(1, 4 / t.groups);
    for (std::size_t i = 0; i < rank; ++i) t.in.push_back(d(1, max_in));
    for (std::size_t i = 0; i < rank; ++i) t.kernel.push_back(d(1, 3));
    t.stride = d.per_dim(static_cast<std::int64_t>(rank), 1, 3);
    t.dilation = d.per_dim(static_cast<std::int64_t>(rank), 1, 2);
    t.padding = d.per_dim(static_cast<std::int64_t>(rank), 0, 2);
    // output_padding below the stride or the dilation, per dim.
    const Shape st = all_dims(t.stride, rank), dil = all_dims(t.dilation, rank);
    t.output_padding.clear();
    for (std::size_t i = 0; i < rank; ++i)
      t.output_padding.push_back(d(0, std::max(st[i], dil[i]) - 1));
    t.bias = d.one_in(2);
    t.ranked = d.one_in(3);
    const TransposeGeometry g = t.geometry();
    if (std::any_of(g.out.begin(), g.out.end(), [](std::int64_t v) { return v < 1; })) continue;
    if (count_taps(transpose_taps(g)) == 0) continue;
    return t;
  }
}

// ---- conv_general configurations

struct Layout {
  const char* lhs;
  const char* rhs;
  const char* out;
};

constexpr Layout kLayouts[] = {
    {"NCW", "OIW", "NCW"},       {"NWC", "WIO", "NWC"},       {"NCHW", "OIHW", "NCHW"},
    {"NHWC", "HWIO", "NHWC"},    {"NHWC", "OIHW", "NCHW"},    {"CHWN", "IOWH", "WNHC"},
    {"NCDHW", "OIDHW", "NCDHW"}, {"NHWDC", "HWDIO", "NHWDC"}, {"DNHCW", "WIDOH", "HCWDN"},
};

struct GeneralSpec {
  Layout layout{};
  std::int64_t batch = 1, channels = 1, out_features = 1, fgc = 1, bgc = 1;
  Shape in, kernel;  // spatial sizes in the order of the rhs spatial letters
  Shape strides, lhs_dilation, rhs_dilation;
  PaddingKind mode = PaddingKind::Explicit;
  Pads pads;

  std::string spatial() const {
    std::string s;
    for (const char* p = layout.rhs; *p; ++p)
      if (*p != 'O' && *p != 'I') s += *p;
    return s;
  }
  std::size_t rank() const { return spatial().size(); }
  std::string lhs_canonical() const { return "NC" + spatial(); }
  std::string rhs_canonical() const { return "OI" + spatial(); }
  Shape lhs_canonical_shape() const { return concat({batch, channels}, in); }
  Shape rhs_canonical_shape() const { return concat({out_features, channels / fgc}, kernel); }
  Shape lhs_shape() const { return reorder(lhs_canonical(), lhs_canonical_shape(), layout.lhs); }
  Shape rhs_shape() const { return reorder(rhs_canonical(), rhs_canonical_shape(), layout.rhs); }

  ConvGeneralOptions options() const {
    ConvGeneralOptions o;
    o.window_strides = strides;
    o.lhs_dilation = lhs_dilation;
    o.rhs_dilation = rhs_dilation;
    o.padding_kind = mode;
    o.padding = pads;
    o.dimension_numbers = {layout.lhs, layout.rhs, layout.out};
    o.feature_group_count = fgc;
    o.batch_group_count = bgc;
    return o;
  }

  std::optional<Geometry> geometry() const {
    Geometry g;
    g.batch = batch;
    g.channels = channels;
    g.out_channels = out_features;
    g.groups = fgc;
    g.batch_groups = bgc;
    g.in = in;
    g.kernel = kernel;
    const auto or_ones = [&](const Shape& v) { return v.empty() ? Shape(rank(), 1) : v; };
    g.stride = or_ones(strides);
    g.input_dilation = or_ones(lhs_dilation);
    g.dilation = or_ones(rhs_dilation);
    Pads p = pads;
    if (p.empty()) p.assign(rank(), {0, 0});
    if (!resolve(g, mode, p)) return std::nullopt;
    return g;
  }

  std::string describe() const {
    std::ostringstream s;
    s << "conv_general " << layout.lhs << "/" << layout.rhs << "/" << layout.out << ": lhs "
      << str(lhs_shape()) << ", rhs " << str(rhs_shape()) << ", feature_group_count " << fgc
      << ", batch_group_count " << bgc << ", window_strides " << str(strides) << ", padding ";
    if (mode != PaddingKind::Explicit)
      s << mode_name(mode);
    else
      s << str(pads);
    s << ", lhs_dilation " << str(lhs_dilation) << ", rhs_dilation " << str(rhs_dilation);
    return s.str();
  }
};

inline GeneralSpec random_general(Draw& d) {
  for (;;) {
    GeneralSpec c;
    c.layout = kLayouts[d(0, static_cast<std::int64_t>(std::size(kLayouts)) - 1)];
    const std::size_t rank = c.spatial().size();
    const std::int64_t max_in = rank == 1 ? 6 : rank == 2 ? 5 : 3;
    switch (d(0, 2)) {
      case 0:
        c.batch = d(1, 2);
        c.channels = d(1, 4);
        c.out_features = d(1, 4);
        break;
      case 1:
        c.batch = d(1, 2);
        c.fgc = d(2, 4);
        c.channels = c.fgc * d(1, 4 / c.fgc);
        c.out_features = c.fgc * d(1, 4 / c.fgc);
        break;
      default:
        c.bgc = 2;
        c.batch = 2;
        c.channels = d(1, 3);
        c.out_features = 2 * d(1, 2);
        break;
    }
    for (std::size_t i = 0; i < rank; ++i) c.in.push_back(d(1, max_in));
    for (std::size_t i = 0; i < rank; ++i) c.kernel.push_back(d(1, 3));
    const auto maybe = [&](std::int64_t lo, std::int64_t hi) {
      if (d.one_in(3)) return Shape{};
      Shape v;
      for (std::size_t i = 0; i < rank; ++i) v.push_back(d(lo, hi));
      return v;
    };
    c.strides = maybe(1, 3);
    c.lhs_dilation = maybe(1, 2);
    c.rhs_dilation = maybe(1, 2);
    switch (d(0, 4)) {
      case 0:  // JAX takes negative padding: it crops the lhs-dilated input
        for (std::size_t i = 0; i < rank; ++i) c.pads.emplace_back(d(-1, 2), d(-1, 2));
        break;
      case 1:
        c.mode = PaddingKind::Same;
        break;
      case 2:
        c.mode = PaddingKind::SameLower;
        break;
      case 3:
        c.mode = PaddingKind::Valid;
        break;
      default:
        break;  // explicit with no padding given: none
    }
    // JAX refuses string padding with lhs dilation, and so does conv_general.
    if (c.mode != PaddingKind::Explicit) c.lhs_dilation.clear();
    const auto g = c.geometry();
    if (!g || count_taps(conv_taps(*g)) == 0) continue;
    return c;
  }
}

// ---- gradcheck with the configuration printed on failure

inline int check_gradients(const std::string& description, const GradcheckFn& fn,
                           const std::vector<Tensor>& inputs) {
  INFO(description);
  const GradcheckResult r = gradcheck(fn, inputs);
  INFO(r.report);
  CHECK(r.ok);
  return 1;
}

// A ConvSpec of the given shapes (stride 1, no padding, no bias).
inline ConvSpec spec(Shape x_shape, Shape kernel, std::int64_t out_channels,
                     std::int64_t groups = 1) {
  ConvSpec c;
  c.batch = x_shape[0];
  c.channels = x_shape[1];
  c.in.assign(x_shape.begin() + 2, x_shape.end());
  c.kernel = std::move(kernel);
  c.out_channels = out_channels;
  c.groups = groups;
  return c;
}

}  // namespace ct_conv
