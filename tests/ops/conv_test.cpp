// Tests of ops/conv.
// - A seeded sweep of 255 float64 gradchecks: conv (spatial ranks 1 to 3, groups including
//   depthwise, strides, symmetric / per-side / SAME / SAME_LOWER / VALID padding, kernel and input
//   dilation, bias, flipped kernels, conv1d/2d/3d), conv_transpose (stride, padding,
//   output_padding, dilation, groups, bias) and conv_general (layouts, feature and batch groups,
//   lhs / rhs dilation). Each configuration reads at least one input element, so no check is
//   vacuous.
// - Exact results and gradients with small integers (|x| <= 4) against nested loops written from
//   the definition: y[n, k, o] = b[k] + sum_{c in group(k), r} x~[n, c, o * stride + r * dilation
//   - pad_lo] * w[k, c, r], x~ being x dilated by the input dilation (holes and padding read as
//   0); dx, dw, db from the same triples. conv_transpose against its scatter definition,
//   conv_general through its layout letters.
// - Identities: grouped conv = cat of per-group convs; conv_transpose is the adjoint of conv.
// - Empty batches, zero channels, strided views, partial gradient masks, and every argument error.
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

#include "support/test_util.h"

namespace {

using namespace convtape;
using ct_test::equal;
using ct_test::leaf;

using Pads = std::vector<std::pair<std::int64_t, std::int64_t>>;
using Values = std::vector<double>;

// Fixed-seed draws from std::mt19937, reduced by modulo rather than through a distribution so
// that every standard library yields the same configurations.
class Draw {
 public:
  explicit Draw(std::uint32_t seed) : rng_(seed) {}
  std::int64_t operator()(std::int64_t lo, std::int64_t hi) {
    return lo + static_cast<std::int64_t>(rng_() % static_cast<std::uint32_t>(hi - lo + 1));
  }
  bool one_in(std::int64_t n) { return (*this)(1, n) == 1; }
  // One value per dim, or (one time in three) a single value that the op applies to every dim.
  Shape per_dim(std::int64_t dims, std::int64_t lo, std::int64_t hi) {
    if (one_in(3)) return {(*this)(lo, hi)};
    Shape v;
    for (std::int64_t d = 0; d < dims; ++d) v.push_back((*this)(lo, hi));
    return v;
  }

 private:
  std::mt19937 rng_;
};

std::string str(const Shape& v) {
  std::ostringstream s;
  s << '[';
  for (std::size_t i = 0; i < v.size(); ++i) s << (i ? ", " : "") << v[i];
  s << ']';
  return s.str();
}

std::string str(const Pads& p) {
  std::ostringstream s;
  s << '[';
  for (std::size_t i = 0; i < p.size(); ++i)
    s << (i ? ", " : "") << '(' << p[i].first << ", " << p[i].second << ')';
  s << ']';
  return s.str();
}

const char* mode_name(PaddingMode m) {
  switch (m) {
    case PaddingMode::Explicit:
      return "explicit";
    case PaddingMode::Same:
      return "SAME";
    case PaddingMode::SameLower:
      return "SAME_LOWER";
    case PaddingMode::Valid:
      return "VALID";
  }
  return "?";
}

// A per-dim option given once or once per dim, as one value per dim.
Shape all_dims(const Shape& v, std::size_t dims) {
  return v.size() == 1 ? Shape(dims, v[0]) : v;
}

Shape unravel(std::int64_t flat, const Shape& shape) {
  Shape idx(shape.size());
  for (std::size_t d = shape.size(); d-- > 0;) {
    idx[d] = flat % shape[d];
    flat /= shape[d];
  }
  return idx;
}

std::int64_t ravel(const Shape& idx, const Shape& shape) {
  std::int64_t flat = 0;
  for (std::size_t d = 0; d < shape.size(); ++d) flat = flat * shape[d] + idx[d];
  return flat;
}

Shape concat(Shape a, const Shape& b) {
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
bool resolve(Geometry& g, PaddingMode mode, const Pads& pads) {
  g.out.clear();
  g.pad_lo.clear();
  for (std::size_t d = 0; d < g.rank(); ++d) {
    const std::int64_t in = g.in[d], k = g.kernel[d], st = g.stride[d], dil = g.dilation[d];
    std::int64_t lo = 0, hi = 0;
    if (mode == PaddingMode::Explicit) {
      lo = pads[d].first;
      hi = pads[d].second;
    } else if (mode != PaddingMode::Valid) {
      const std::int64_t out = (in + st - 1) / st;
      const std::int64_t total = std::max<std::int64_t>((out - 1) * st + (k - 1) * dil + 1 - in, 0);
      lo = mode == PaddingMode::Same ? total / 2 : total - total / 2;
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

Taps conv_taps(const Geometry& g) {
  return [g](const TapFn& f) { for_each_tap(g, f); };
}
Taps transpose_taps(const TransposeGeometry& g) {
  return [g](const TapFn& f) { for_each_transpose_tap(g, f); };
}

std::int64_t count_taps(const Taps& taps) {
  std::int64_t count = 0;
  taps([&](std::int64_t, std::int64_t, std::int64_t) { ++count; });
  return count;
}

std::size_t at(std::int64_t i) {
  return static_cast<std::size_t>(i);
}

// Output channel of flat element i of a [N, C, *S] tensor.
std::size_t channel_of(std::size_t i, const Shape& shape) {
  const std::int64_t inner = numel(Shape(shape.begin() + 2, shape.end()));
  return at((static_cast<std::int64_t>(i) / inner) % shape[1]);
}

// y = sum of x * w over the taps, plus b[channel] (b empty: no bias).
Values ref_forward(const Taps& taps, const Values& x, const Values& w, const Values& b,
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
RefGrads ref_backward(const Taps& taps, const Values& x, const Values& w, const Values& dy,
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
Shape reorder(const std::string& from, const Shape& from_shape, const std::string& to) {
  Shape s;
  for (char ch : to) s.push_back(from_shape[from.find(ch)]);
  return s;
}

Values relayout(const Values& v, const std::string& from, const Shape& from_shape,
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
Values small_ints(const Shape& shape, Draw& d) {
  Values v(static_cast<std::size_t>(numel(shape)));
  for (auto& x : v) x = static_cast<double>(d(-4, 4));
  return v;
}

Tensor as_tensor(const Values& v, const Shape& shape, bool requires_grad = false,
                 DType dtype = kFloat32) {
  return tensor(v, shape, dtype).requires_grad_(requires_grad);
}

Values values_of(const Tensor& t) {
  return t.to_vector<double>();
}

// ---- conv configurations

struct ConvSpec {
  std::int64_t batch = 1, channels = 1, out_channels = 1, groups = 1;
  Shape in, kernel;
  Shape stride{1}, dilation{1}, input_dilation{1};
  PaddingMode mode = PaddingMode::Explicit;
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
    if (mode != PaddingMode::Explicit) {
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
    if (mode != PaddingMode::Explicit)
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
ConvSpec random_conv(Draw& d, std::size_t rank, std::int64_t scale = 1) {
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
        c.mode = PaddingMode::Same;
        break;
      case 5:
        c.mode = PaddingMode::SameLower;
        break;
      default:
        c.mode = PaddingMode::Valid;
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

TransposeSpec random_transpose(Draw& d, std::size_t rank) {
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
  PaddingMode mode = PaddingMode::Explicit;
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
    o.padding_mode = mode;
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
    if (mode != PaddingMode::Explicit)
      s << mode_name(mode);
    else
      s << str(pads);
    s << ", lhs_dilation " << str(lhs_dilation) << ", rhs_dilation " << str(rhs_dilation);
    return s.str();
  }
};

GeneralSpec random_general(Draw& d) {
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
      case 0:
        for (std::size_t i = 0; i < rank; ++i) c.pads.emplace_back(d(0, 2), d(0, 2));
        break;
      case 1:
        c.mode = PaddingMode::Same;
        break;
      case 2:
        c.mode = PaddingMode::SameLower;
        break;
      case 3:
        c.mode = PaddingMode::Valid;
        break;
      default:
        break;  // explicit with no padding given: none
    }
    const auto g = c.geometry();
    if (!g || count_taps(conv_taps(*g)) == 0) continue;
    return c;
  }
}

// ---- gradcheck with the configuration printed on failure

int check_gradients(const std::string& description, const GradcheckFn& fn,
                    const std::vector<Tensor>& inputs) {
  INFO(description);
  const GradcheckResult r = gradcheck(fn, inputs);
  INFO(r.report);
  CHECK(r.ok);
  return 1;
}

}  // namespace

// ============================================================================ gradcheck sweeps

TEST_CASE("conv: seeded gradcheck sweep over ranks, groups, strides, paddings and dilations",
          "[ops][conv][gradcheck]") {
  manual_seed(101);
  Draw d(20240601u);
  int configs = 0;
  std::map<std::string, int> seen;  // how often each feature was drawn
  const auto any_above_one = [](const Shape& v) {
    return std::any_of(v.begin(), v.end(), [](std::int64_t e) { return e > 1; });
  };
  for (int i = 0; i < 150; ++i) {
    const ConvSpec c = random_conv(d, static_cast<std::size_t>(1 + i % 3));
    seen["rank " + std::to_string(c.rank())]++;
    seen[c.mode == PaddingMode::Explicit ? (c.symmetric ? "symmetric" : "per-side")
                                         : mode_name(c.mode)]++;
    seen["groups"] += c.groups > 1 && c.groups < c.channels;
    seen["depthwise"] += c.groups > 1 && c.groups == c.channels;
    seen["stride"] += any_above_one(c.stride);
    seen["dilation"] += any_above_one(c.dilation);
    seen["input dilation"] += any_above_one(c.input_dilation);
    seen["bias"] += c.bias;
    seen["flip"] += c.flip;
    seen["conv1d/2d/3d"] += c.wrapper;
    std::vector<Tensor> inputs{leaf(c.x_shape()), leaf(c.w_shape())};
    if (c.bias) inputs.push_back(leaf(c.b_shape()));
    configs += check_gradients(
        c.describe(),
        [c](const std::vector<Tensor>& v) { return c.apply(v[0], v[1], c.bias ? v[2] : Tensor()); },
        inputs);
  }
  REQUIRE(configs == 150);
  for (const char* feature : {"rank 1", "rank 2", "rank 3", "symmetric", "per-side", "SAME",
                              "SAME_LOWER", "VALID", "groups", "depthwise", "stride", "dilation",
                              "input dilation", "bias", "flip", "conv1d/2d/3d"}) {
    INFO(feature);
    CHECK(seen[feature] >= 5);
  }
}

TEST_CASE("conv_transpose: seeded gradcheck sweep", "[ops][conv][gradcheck]") {
  manual_seed(102);
  Draw d(777u);
  int configs = 0, output_padded = 0, grouped = 0;
  for (int i = 0; i < 60; ++i) {
    const TransposeSpec t = random_transpose(d, static_cast<std::size_t>(1 + i % 3));
    output_padded += std::any_of(t.output_padding.begin(), t.output_padding.end(),
                                 [](std::int64_t e) { return e > 0; });
    grouped += t.groups > 1;
    std::vector<Tensor> inputs{leaf(t.x_shape()), leaf(t.w_shape())};
    if (t.bias) inputs.push_back(leaf(t.b_shape()));
    configs += check_gradients(
        t.describe(),
        [t](const std::vector<Tensor>& v) { return t.apply(v[0], v[1], t.bias ? v[2] : Tensor()); },
        inputs);
  }
  REQUIRE(configs == 60);
  CHECK(output_padded >= 10);
  CHECK(grouped >= 10);
}

TEST_CASE("conv_general: seeded gradcheck sweep over layouts and group counts",
          "[ops][conv][gradcheck]") {
  manual_seed(103);
  Draw d(4242u);
  int configs = 0, batch_grouped = 0, feature_grouped = 0, three_d = 0;
  for (int i = 0; i < 45; ++i) {
    const GeneralSpec c = random_general(d);
    batch_grouped += c.bgc > 1;
    feature_grouped += c.fgc > 1;
    three_d += c.rank() == 3;
    const ConvGeneralOptions o = c.options();
    configs += check_gradients(
        c.describe(), [o](const std::vector<Tensor>& v) { return conv_general(v[0], v[1], o); },
        {leaf(c.lhs_shape()), leaf(c.rhs_shape())});
  }
  REQUIRE(configs == 45);
  CHECK(batch_grouped >= 5);
  CHECK(feature_grouped >= 5);
  CHECK(three_d >= 5);
}

// ============================================================================ exact references

namespace {

// Forward and the three gradients of one conv against the loops, with small integers (exact in
// float32 and float64).
void check_conv_exact(const ConvSpec& c, Draw& d, DType dtype = kFloat32) {
  INFO(c.describe() << " (" << dtype_name(dtype) << ")");
  const auto g = c.geometry();
  REQUIRE(g.has_value());
  const Values xv = small_ints(c.x_shape(), d), wv = small_ints(c.w_shape(), d);
  const Values bv = c.bias ? small_ints(c.b_shape(), d) : Values{};
  const Tensor x = as_tensor(xv, c.x_shape(), true, dtype),
               w = as_tensor(wv, c.w_shape(), true, dtype);
  const Tensor b = c.bias ? as_tensor(bv, c.b_shape(), true, dtype) : Tensor();
  const Tensor y = c.apply(x, w, b);
  REQUIRE(y.shape() == g->y_shape());
  REQUIRE(y.dtype() == dtype);
  const Taps taps = conv_taps(*g);
  REQUIRE(values_of(y) == ref_forward(taps, xv, wv, bv, g->y_shape()));

  const Values dyv = small_ints(g->y_shape(), d);
  y.backward(as_tensor(dyv, g->y_shape(), false, dtype));
  const RefGrads r = ref_backward(taps, xv, wv, dyv, g->y_shape());
  REQUIRE(x.grad().shape() == x.shape());
  CHECK(values_of(x.grad()) == r.dx);
  CHECK(values_of(w.grad()) == r.dw);
  if (c.bias) CHECK(values_of(b.grad()) == r.db);
}

ConvSpec spec(Shape x_shape, Shape kernel, std::int64_t out_channels, std::int64_t groups = 1) {
  ConvSpec c;
  c.batch = x_shape[0];
  c.channels = x_shape[1];
  c.in.assign(x_shape.begin() + 2, x_shape.end());
  c.kernel = std::move(kernel);
  c.out_channels = out_channels;
  c.groups = groups;
  return c;
}

}  // namespace

TEST_CASE("conv: hand-picked cases equal the nested-loop reference exactly", "[ops][conv][exact]") {
  Draw d(31u);
  std::vector<ConvSpec> cases;
  {  // 1-d, plain
    ConvSpec c = spec({2, 3, 7}, {3}, 2);
    c.bias = true;
    cases.push_back(c);
  }
  {  // 1-d, stride 2, per-side padding, dilation 2, groups 2
    ConvSpec c = spec({1, 4, 9}, {3}, 4, 2);
    c.stride = {2};
    c.pads = {{2, 1}};
    c.dilation = {2};
    c.bias = true;
    cases.push_back(c);
  }
  {  // 1-d, input dilation 3 and a flipped kernel, through conv1d
    ConvSpec c = spec({1, 2, 4}, {2}, 3);
    c.input_dilation = {3};
    c.pads = {{1, 2}};
    c.flip = true;
    c.wrapper = 1;
    cases.push_back(c);
  }
  {  // 2-d, stride (2, 1), symmetric per-dim padding (1, 0), bias, through conv2d
    ConvSpec c = spec({2, 2, 5, 4}, {3, 2}, 3);
    c.stride = {2, 1};
    c.symmetric = true;
    c.pads = {{1, 1}, {0, 0}};
    c.bias = true;
    c.wrapper = 1;
    cases.push_back(c);
  }
  {  // 2-d depthwise, SAME, stride 2
    ConvSpec c = spec({1, 3, 6, 5}, {3, 3}, 3, 3);
    c.stride = {2};
    c.mode = PaddingMode::Same;
    cases.push_back(c);
  }
  {  // 2-d, SAME_LOWER with an even kernel, dilation (1, 2)
    ConvSpec c = spec({1, 2, 5, 6}, {2, 2}, 2);
    c.mode = PaddingMode::SameLower;
    c.dilation = {1, 2};
    c.bias = true;
    cases.push_back(c);
  }
  {  // 2-d, input dilation (2, 1), VALID, groups 2, flipped
    ConvSpec c = spec({2, 4, 3, 5}, {2, 3}, 2, 2);
    c.input_dilation = {2, 1};
    c.mode = PaddingMode::Valid;
    c.flip = true;
    cases.push_back(c);
  }
  {  // 2-d, 1x1 pointwise (the GEMM-only path), with and without groups
    cases.push_back(spec({2, 4, 3, 3}, {1, 1}, 3));
    ConvSpec c = spec({2, 4, 3, 3}, {1, 1}, 4, 2);
    c.bias = true;
    cases.push_back(c);
  }
  {  // 3-d, padding 1, stride (1, 2, 1), bias, through conv3d
    ConvSpec c = spec({1, 2, 4, 5, 3}, {3, 2, 2}, 2);
    c.symmetric = true;
    c.pads = {{1, 1}};
    c.stride = {1, 2, 1};
    c.bias = true;
    c.wrapper = 1;
    cases.push_back(c);
  }
  {  // 3-d, every option at once
    ConvSpec c = spec({2, 4, 3, 4, 3}, {2, 2, 2}, 2, 2);
    c.stride = {2, 1, 3};
    c.pads = {{0, 1}, {2, 0}, {1, 1}};
    c.dilation = {1, 2, 1};
    c.input_dilation = {2, 1, 2};
    c.flip = true;
    c.bias = true;
    cases.push_back(c);
  }
  {  // 4 spatial dims: conv itself is rank-generic
    ConvSpec c = spec({1, 2, 3, 3, 2, 3}, {2, 1, 2, 2}, 2);
    c.pads = {{1, 0}};
    c.bias = true;
    cases.push_back(c);
  }
  for (const ConvSpec& c : cases) check_conv_exact(c, d);
}

TEST_CASE("conv: random cases equal the nested-loop reference exactly, gradients included",
          "[ops][conv][exact]") {
  Draw d(9001u);
  for (int i = 0; i < 60; ++i)
    check_conv_exact(random_conv(d, static_cast<std::size_t>(1 + i % 3)), d);
}

TEST_CASE("conv: larger cases (several GEMM tiles and panels) equal the reference exactly",
          "[ops][conv][exact]") {
  // Enough output positions, output channels and reduction rows to cross the GEMM's panel and
  // cache-block edges (float32 AVX-512: kc 384, mc 128, nc 512; float64: kc 128, mc 96, nc 768)
  // and the data gradient's 256-row x 512-position tiles, in both dtypes.
  Draw d(555u);
  std::vector<ConvSpec> cases;
  {
    ConvSpec c = spec({1, 48, 12, 11}, {3, 3}, 20);  // 432 reduction rows
    c.symmetric = true;
    c.pads = {{1, 1}};
    c.bias = true;
    cases.push_back(c);
  }
  {
    ConvSpec c = spec({2, 3, 30, 20}, {2, 2}, 136);  // 136 output channels, 551 positions
    c.bias = true;
    cases.push_back(c);
  }
  {
    ConvSpec c = spec({1, 6, 70}, {5}, 12, 3);
    c.stride = {3};
    c.pads = {{4, 2}};
    c.dilation = {2};
    c.input_dilation = {2};
    cases.push_back(c);
  }
  {
    ConvSpec c = spec({1, 4, 9, 8, 10}, {3, 3, 3}, 6, 2);
    c.stride = {2, 1, 1};
    c.symmetric = true;
    c.pads = {{1, 1}};
    c.flip = true;
    cases.push_back(c);
  }
  {
    ConvSpec c = spec({2, 40, 7, 6}, {3, 3}, 40, 40);  // depthwise with many channels
    c.mode = PaddingMode::Same;
    cases.push_back(c);
  }
  {
    // Depthwise lines wider than one 64-byte vector (several blocks and a masked tail per line),
    // with channel multipliers 1 and 2, unit and strided last dims.
    ConvSpec c = spec({2, 3, 5, 37}, {3, 3}, 3, 3);
    c.pads = {{1, 1}, {1, 2}};
    c.bias = true;
    cases.push_back(c);
    c = spec({2, 3, 6, 41}, {2, 5}, 6, 3);
    c.stride = {1, 2};
    c.pads = {{0, 1}, {2, 2}};
    cases.push_back(c);
    c = spec({1, 2, 4, 19}, {3, 3}, 4, 2);
    c.mode = PaddingMode::Same;
    cases.push_back(c);
  }
  {
    // One input channel per group and 4 outputs per group (the direct kernels), with strides,
    // dilations and an input dilation along the last dim.
    ConvSpec c = spec({2, 3, 11, 9}, {3, 2}, 12, 3);
    c.stride = {2, 1};
    c.dilation = {1, 2};
    c.input_dilation = {1, 2};
    c.pads = {{1, 0}, {2, 1}};
    c.bias = true;
    cases.push_back(c);
  }
  {
    // One input channel per group but 5 outputs per group: the GEMM path.
    ConvSpec c = spec({2, 2, 9, 8}, {3, 3}, 10, 2);
    c.mode = PaddingMode::SameLower;
    c.stride = {1, 2};
    cases.push_back(c);
  }
  cases.push_back(spec({1, 1, 12, 10}, {2, 3}, 6));    // one input channel, GEMM path
  cases.push_back(spec({2, 16, 30, 30}, {1, 1}, 24));  // pointwise, 900 positions
  cases.push_back(spec({1, 400, 3, 3}, {1, 1}, 130));  // pointwise, long reduction
  for (const ConvSpec& c : cases) {
    check_conv_exact(c, d, kFloat32);
    check_conv_exact(c, d, kFloat64);
  }
}

TEST_CASE("conv: medium random cases equal the reference exactly in both dtypes",
          "[ops][conv][exact]") {
  // Channels up to 12 and spatial sizes up to 18 / 15 / 12: several tiles per sample, channel
  // blocks in the data gradient, the direct kernels with channel multipliers, in float32 and
  // float64.
  Draw d(4711u);
  for (int i = 0; i < 24; ++i)
    check_conv_exact(random_conv(d, static_cast<std::size_t>(1 + i % 3), 3), d,
                     i % 2 ? kFloat64 : kFloat32);
}

namespace {

void check_transpose_exact(const TransposeSpec& t, Draw& d) {
  INFO(t.describe());
  const TransposeGeometry g = t.geometry();
  const Values xv = small_ints(t.x_shape(), d), wv = small_ints(t.w_shape(), d);
  const Values bv = t.bias ? small_ints(t.b_shape(), d) : Values{};
  const Tensor x = as_tensor(xv, t.x_shape(), true), w = as_tensor(wv, t.w_shape(), true);
  const Tensor b = t.bias ? as_tensor(bv, t.b_shape(), true) : Tensor();
  const Tensor y = t.apply(x, w, b);
  REQUIRE(y.shape() == t.y_shape());
  const Taps taps = transpose_taps(g);
  REQUIRE(values_of(y) == ref_forward(taps, xv, wv, bv, t.y_shape()));
  const Values dyv = small_ints(t.y_shape(), d);
  y.backward(as_tensor(dyv, t.y_shape()));
  const RefGrads r = ref_backward(taps, xv, wv, dyv, t.y_shape());
  CHECK(values_of(x.grad()) == r.dx);
  CHECK(values_of(w.grad()) == r.dw);
  if (t.bias) CHECK(values_of(b.grad()) == r.db);
}

}  // namespace

TEST_CASE("conv_transpose: forward and gradients equal the scatter definition exactly",
          "[ops][conv][exact]") {
  Draw d(271u);
  for (int i = 0; i < 45; ++i)
    check_transpose_exact(random_transpose(d, static_cast<std::size_t>(1 + i % 3)), d);
  // Larger: a 2x upsampling decoder layer and a grouped 3-d one.
  TransposeSpec up;
  up.batch = 2;
  up.in_channels = 24;
  up.out_channels = 16;
  up.in = {12, 10};
  up.kernel = {4, 4};
  up.stride = {2};
  up.padding = {1};
  up.bias = true;
  check_transpose_exact(up, d);
  // Output channels for the data gradient's phases over one copy of the input (two micro-kernel
  // row panels on every path), which adds the bias as it writes; with a 1x1 kernel three phases
  // in four hold no taps and are the bias alone.
  up.out_channels = 32;
  check_transpose_exact(up, d);
  up.kernel = {1, 1};
  up.padding = {0};
  check_transpose_exact(up, d);
  TransposeSpec g3;
  g3.in_channels = 6;
  g3.out_channels = 4;
  g3.groups = 2;
  g3.in = {3, 4, 5};
  g3.kernel = {3, 2, 3};
  g3.stride = {2, 3, 1};
  g3.padding = {1, 0, 2};
  g3.output_padding = {1, 2, 1};
  g3.dilation = {1, 1, 2};
  g3.ranked = true;
  check_transpose_exact(g3, d);
}

TEST_CASE("conv_general: layouts and group counts equal the reference exactly",
          "[ops][conv][exact]") {
  Draw d(1234u);
  for (int i = 0; i < 40; ++i) {
    const GeneralSpec c = random_general(d);
    INFO(c.describe());
    const auto g = c.geometry();
    REQUIRE(g.has_value());
    const Values lv = small_ints(c.lhs_shape(), d), rv = small_ints(c.rhs_shape(), d);
    const Tensor lhs = as_tensor(lv, c.lhs_shape(), true), rhs = as_tensor(rv, c.rhs_shape(), true);
    const Tensor y = conv_general(lhs, rhs, c.options());
    // The reference works in [N, C, *spatial] / [O, I, *spatial], spatial dims in rhs order.
    const Values xc = relayout(lv, c.layout.lhs, c.lhs_shape(), c.lhs_canonical());
    const Values wc = relayout(rv, c.layout.rhs, c.rhs_shape(), c.rhs_canonical());
    const std::string out_canonical = "NC" + c.spatial();
    const Shape out_shape = reorder(out_canonical, g->y_shape(), c.layout.out);
    REQUIRE(y.shape() == out_shape);
    const Taps taps = conv_taps(*g);
    const Values yc = ref_forward(taps, xc, wc, {}, g->y_shape());
    REQUIRE(values_of(y) == relayout(yc, out_canonical, g->y_shape(), c.layout.out));

    const Values dyv = small_ints(out_shape, d);
    y.backward(as_tensor(dyv, out_shape));
    const RefGrads r = ref_backward(
        taps, xc, wc, relayout(dyv, c.layout.out, out_shape, out_canonical), g->y_shape());
    CHECK(values_of(lhs.grad()) ==
          relayout(r.dx, c.lhs_canonical(), c.lhs_canonical_shape(), c.layout.lhs));
    CHECK(values_of(rhs.grad()) ==
          relayout(r.dw, c.rhs_canonical(), c.rhs_canonical_shape(), c.layout.rhs));
  }
}

TEST_CASE("padding_mode_from_string maps JAX's names", "[ops][conv]") {
  CHECK(padding_mode_from_string("SAME") == PaddingMode::Same);
  CHECK(padding_mode_from_string("SAME_LOWER") == PaddingMode::SameLower);
  CHECK(padding_mode_from_string("VALID") == PaddingMode::Valid);
  // In any case, as the modules take them ("same" is PyTorch's spelling).
  CHECK(padding_mode_from_string("same") == PaddingMode::Same);
  CHECK(padding_mode_from_string("Same_Lower") == PaddingMode::SameLower);
  CHECK(padding_mode_from_string("valid") == PaddingMode::Valid);
}

// ============================================================================ identities

TEST_CASE("conv: a grouped conv is the concatenation of per-group convs, exactly",
          "[ops][conv][groups]") {
  Draw d(88u);
  int checked = 0;
  while (checked < 24) {
    ConvSpec c = random_conv(d, static_cast<std::size_t>(1 + checked % 3));
    if (c.groups == 1) continue;
    ++checked;
    INFO(c.describe());
    const Values xv = small_ints(c.x_shape(), d), wv = small_ints(c.w_shape(), d),
                 bv = small_ints(c.b_shape(), d);
    const Tensor x = as_tensor(xv, c.x_shape(), true), w = as_tensor(wv, c.w_shape(), true),
                 b = as_tensor(bv, c.b_shape(), true);
    const Tensor y = c.apply(x, w, c.bias ? b : Tensor());

    ConvSpec one = c;
    one.groups = 1;
    one.channels = c.channels / c.groups;
    one.out_channels = c.out_channels / c.groups;
    const Tensor x2 = as_tensor(xv, c.x_shape(), true), w2 = as_tensor(wv, c.w_shape(), true),
                 b2 = as_tensor(bv, c.b_shape(), true);
    std::vector<Tensor> parts;
    for (std::int64_t j = 0; j < c.groups; ++j)
      parts.push_back(
          one.apply(narrow(x2, 1, j * one.channels, one.channels),
                    narrow(w2, 0, j * one.out_channels, one.out_channels),
                    c.bias ? narrow(b2, 0, j * one.out_channels, one.out_channels) : Tensor()));
    const Tensor y2 = cat(parts, 1);
    REQUIRE(equal(y, y2));

    const Tensor dy = as_tensor(small_ints(y.shape(), d), y.shape());
    y.backward(dy);
    y2.backward(dy);
    CHECK(equal(x.grad(), x2.grad()));
    CHECK(equal(w.grad(), w2.grad()));
    if (c.bias) CHECK(equal(b.grad(), b2.grad()));
  }
}

TEST_CASE("conv_transpose is the adjoint of conv: <conv(x, w), y> == <x, conv_transpose(y, w)>",
          "[ops][conv][transpose]") {
  manual_seed(104);
  Draw d(606u);
  int checked = 0;
  while (checked < 45) {
    // conv_transpose knows symmetric padding only, and no input dilation or flip.
    ConvSpec c = random_conv(d, static_cast<std::size_t>(1 + checked % 3));
    if (c.mode != PaddingMode::Explicit || !c.symmetric || c.flip) continue;
    c.input_dilation = {1};
    const auto g = c.geometry();
    if (!g) continue;
    ++checked;
    INFO(c.describe());
    const std::size_t s = c.rank();
    // output_padding restores the input size: in + 2p - dil (k - 1) - 1 - (out - 1) stride.
    Shape pad, out_pad;
    for (std::size_t i = 0; i < s; ++i) {
      pad.push_back(g->pad_lo[i]);
      out_pad.push_back(c.in[i] + 2 * g->pad_lo[i] - g->dilation[i] * (c.kernel[i] - 1) - 1 -
                        (g->out[i] - 1) * g->stride[i]);
    }
    const ConvTransposeOptions to = ConvTransposeOptions()
                                        .stride(g->stride)
                                        .padding(pad)
                                        .output_padding(out_pad)
                                        .dilation(g->dilation)
                                        .groups(c.groups);
    const Tensor x = uniform(c.x_shape(), -1, 1, kFloat64).requires_grad_(true);
    const Tensor w = uniform(c.w_shape(), -1, 1, kFloat64);
    const Tensor yv = uniform(g->y_shape(), -1, 1, kFloat64);
    const Tensor y = conv(x, w, {}, c.options());
    const Tensor xt = conv_transpose(yv, w, {}, to);
    REQUIRE(xt.shape() == x.shape());
    const double lhs = sum(mul(y, yv)).item(), rhs = sum(mul(x, xt)).item();
    CHECK(std::abs(lhs - rhs) <= 1e-12 * std::max(1.0, std::abs(lhs)));
    // The same statement through the tape: conv_transpose(y, w) is conv's data gradient.
    y.backward(yv);
    CHECK(ct_test::allclose(x.grad(), xt, 0.0, 1e-12));
  }
}

TEST_CASE("conv_transpose accepts output_padding below the dilation even at stride 1",
          "[ops][conv][transpose]") {
  const Tensor x = as_tensor({1, 2, 3}, {1, 1, 3}), w = as_tensor({1, 1}, {1, 1, 2});
  // (3 - 1) * 1 - 0 + 2 * (2 - 1) + 1 + 1 = 6; the last position receives nothing.
  const Tensor y = conv_transpose1d(x, w, {}, ConvTransposeOptions().dilation(2).output_padding(1));
  REQUIRE(equal(y, as_tensor({1, 2, 4, 2, 3, 0}, {1, 1, 6})));
}

TEST_CASE("conv: flip_kernel is the cross-correlation with a mirrored kernel", "[ops][conv]") {
  Draw d(5u);
  const Tensor x = as_tensor(small_ints({2, 2, 5, 4}, d), {2, 2, 5, 4});
  const Tensor w = as_tensor(small_ints({3, 2, 3, 2}, d), {3, 2, 3, 2});
  const ConvOptions o = ConvOptions().padding(1).stride(2);
  ConvOptions flipped = o;
  flipped.flip_kernel();
  REQUIRE(equal(conv(x, w, {}, flipped), conv(x, flip(w, {2, 3}), {}, o)));
}

TEST_CASE("conv: only the gradients that are asked for, each exact", "[ops][conv][exact]") {
  Draw d(77u);
  ConvSpec c = spec({2, 4, 6, 5}, {3, 2}, 4, 2);
  c.stride = {2, 1};
  c.pads = {{1, 1}, {0, 1}};
  c.bias = true;
  const Geometry g = *c.geometry();
  const Values xv = small_ints(c.x_shape(), d), wv = small_ints(c.w_shape(), d),
               bv = small_ints(c.b_shape(), d), dyv = small_ints(g.y_shape(), d);
  const RefGrads r = ref_backward(conv_taps(g), xv, wv, dyv, g.y_shape());
  for (int mask = 1; mask < 8; ++mask) {
    INFO("x, w, b require grad: " << (mask & 1) << (mask >> 1 & 1) << (mask >> 2 & 1));
    const Tensor x = as_tensor(xv, c.x_shape(), mask & 1), w = as_tensor(wv, c.w_shape(), mask & 2),
                 b = as_tensor(bv, c.b_shape(), mask & 4);
    const Tensor y = conv(x, w, b, c.options());
    y.backward(as_tensor(dyv, g.y_shape()));
    CHECK(x.grad().defined() == bool(mask & 1));
    CHECK(w.grad().defined() == bool(mask & 2));
    CHECK(b.grad().defined() == bool(mask & 4));
    if (mask & 1) CHECK(values_of(x.grad()) == r.dx);
    if (mask & 2) CHECK(values_of(w.grad()) == r.dw);
    if (mask & 4) CHECK(values_of(b.grad()) == r.db);
  }
}

TEST_CASE("conv and conv_transpose read strided views like their contiguous copies",
          "[ops][conv]") {
  Draw d(99u);
  // x as a transposed view of [N, H, C, W], w as every other filter of a larger weight.
  const Tensor xs = as_tensor(small_ints({2, 5, 3, 6}, d), {2, 5, 3, 6}, true);
  const Tensor ws = as_tensor(small_ints({8, 3, 3, 2}, d), {8, 3, 3, 2}, true);
  const Tensor x = transpose(xs, 1, 2), w = slice(ws, 0, 0, 8, 2);
  REQUIRE_FALSE(x.is_contiguous());
  REQUIRE_FALSE(w.is_contiguous());
  const Tensor xc = as_tensor(values_of(x), x.shape(), true);
  const Tensor wc = as_tensor(values_of(w), w.shape(), true);
  const ConvOptions o = ConvOptions().padding(1).stride({1, 2});
  const Tensor y = conv(x, w, {}, o), yc = conv(xc, wc, {}, o);
  REQUIRE(equal(y, yc));
  // A non-contiguous upstream gradient as well.
  const Shape ys = y.shape();
  const Tensor dy = transpose(as_tensor(small_ints(ys, d), {ys[0], ys[1], ys[3], ys[2]}), 2, 3);
  REQUIRE_FALSE(dy.is_contiguous());
  y.backward(dy);
  yc.backward(dy.contiguous());
  CHECK(equal(transpose(xs.grad(), 1, 2), xc.grad()));
  CHECK(equal(slice(ws.grad(), 0, 0, 8, 2), wc.grad()));
  CHECK(equal(slice(ws.grad(), 0, 1, 8, 2), zeros(wc.shape())));

  const Tensor w2 = as_tensor(small_ints({3, 2, 2, 2}, d), {3, 2, 2, 2});
  const ConvTransposeOptions to = ConvTransposeOptions().stride(2).padding(1);
  const Tensor t = conv_transpose(x, w2, {}, to), tc = conv_transpose(xc, w2, {}, to);
  REQUIRE(t.shape() == Shape{2, 2, 8, 10});
  REQUIRE(equal(t, tc));
}

TEST_CASE("conv: an empty batch gives an empty result and zero weight gradients", "[ops][conv]") {
  // Through the GEMM path, the pointwise path, the direct (depthwise) path, conv_transpose and
  // conv_general's batch groups; none may divide by the empty batch.
  const auto rg = TensorOptions().dtype(kFloat64).requires_grad(true);
  struct Case {
    Shape x, w, y;
    std::int64_t groups;
  };
  for (const Case& c :
       {Case{{0, 2, 5}, {3, 2, 3}, {0, 3, 5}, 1}, Case{{0, 2, 5}, {3, 2, 1}, {0, 3, 7}, 1},
        Case{{0, 2, 4, 4}, {4, 1, 3, 3}, {0, 4, 4, 4}, 2}}) {
    INFO("x " << to_string(c.x) << ", w " << to_string(c.w));
    const Tensor x = zeros(c.x, rg), w = ones(c.w, rg), b = ones({c.w[0]}, rg);
    const Tensor y = conv(x, w, b, ConvOptions().padding(1).groups(c.groups));
    REQUIRE(y.shape() == c.y);
    sum(y).backward();
    CHECK(x.grad().shape() == x.shape());
    CHECK(equal(w.grad(), zeros(c.w, kFloat64)));
    CHECK(equal(b.grad(), zeros({c.w[0]}, kFloat64)));
  }
  const Tensor x = zeros({0, 2, 3}, rg), w = ones({2, 3, 2}, rg);
  const Tensor y = conv_transpose(x, w, {}, ConvTransposeOptions().stride(2));
  REQUIRE(y.shape() == Shape{0, 3, 6});
  sum(y).backward();
  CHECK(x.grad().shape() == x.shape());
  CHECK(equal(w.grad(), zeros({2, 3, 2}, kFloat64)));
  ConvGeneralOptions o;
  o.batch_group_count = 2;
  CHECK(conv_general(zeros({0, 2, 3, 3}), ones({2, 2, 2, 2}), o).shape() == Shape{0, 2, 2, 2});
}

TEST_CASE("conv: zero input channels sum to the bias, with empty input gradients", "[ops][conv]") {
  const auto rg = TensorOptions().dtype(kFloat64).requires_grad(true);
  for (std::int64_t k : {1, 3}) {  // pointwise and im2col paths
    INFO("kernel " << k);
    const Tensor x = zeros({2, 0, 5}, rg), w = zeros({2, 0, k}, rg);
    const Tensor b = tensor({1, -2}, kFloat64).requires_grad_(true);
    const Tensor y = conv(x, w, b, ConvOptions().padding((k - 1) / 2));
    REQUIRE(y.shape() == Shape{2, 2, 5});
    CHECK(equal(y, expand(reshape(b.detach(), {1, 2, 1}), {2, 2, 5}).contiguous()));
    sum(y).backward();
    CHECK(x.grad().shape() == x.shape());
    CHECK(w.grad().shape() == w.shape());
    CHECK(equal(b.grad(), tensor({10, 10}, kFloat64)));
  }
}

// ============================================================================ errors

TEST_CASE("conv: argument errors", "[ops][conv][errors]") {
  const Tensor x = zeros({1, 4, 5, 5}), w = zeros({2, 4, 3, 3});
  CT_REQUIRE_ERROR(
      conv(zeros({4, 5}), zeros({2, 4})),
      "conv: expected input [N, C, *spatial] with at least one spatial dim, got [4, 5]");
  CT_REQUIRE_ERROR(conv(x, zeros({2, 4, 3})),
                   "conv: expected weight [K, C/groups, *R] of rank 4 for input [1, 4, 5, 5], got "
                   "[2, 4, 3]");
  CT_REQUIRE_ERROR(conv(zeros({1, 3, 5, 5}), zeros({2, 1, 3, 3}), {}, ConvOptions().groups(2)),
                   "conv: expected input channels divisible by groups, got C = 3, groups = 2");
  CT_REQUIRE_ERROR(conv(x, zeros({6, 3, 3, 3}), {}, ConvOptions().groups(2)),
                   "conv: expected weight [K, C/groups, *R] with C/groups = 2 (C = 4, groups = 2), "
                   "got [6, 3, 3, 3]");
  CT_REQUIRE_ERROR(conv(x, zeros({2, 3, 3, 3})),
                   "expected weight [K, C/groups, *R] with C/groups = 4 (C = 4, groups = 1)");
  CT_REQUIRE_ERROR(conv(x, zeros({3, 2, 3, 3}), {}, ConvOptions().groups(2)),
                   "conv: expected output channels K >= 1 and divisible by groups, got K = 3, "
                   "groups = 2");
  CT_REQUIRE_ERROR(conv(x, w, zeros({3})), "conv: expected bias [K] with K = 2, got [3]");
  CT_REQUIRE_ERROR(conv(x, w, zeros({2, 1})), "conv: expected bias [K] with K = 2, got [2, 1]");
  CT_REQUIRE_ERROR(conv(x, w, {}, ConvOptions().stride(0)),
                   "conv: expected stride > 0, got [0, 0]");
  CT_REQUIRE_ERROR(conv(x, w, {}, ConvOptions().stride({1, -2})),
                   "conv: expected stride > 0, got [1, -2]");
  CT_REQUIRE_ERROR(conv(x, w, {}, ConvOptions().dilation(0)),
                   "conv: expected dilation > 0, got [0, 0]");
  CT_REQUIRE_ERROR(conv(x, w, {}, ConvOptions().input_dilation({2, 0})),
                   "conv: expected input dilation > 0, got [2, 0]");
  CT_REQUIRE_ERROR(conv(x, w, {}, ConvOptions().groups(0)), "conv: expected groups >= 1, got 0");
  CT_REQUIRE_ERROR(conv(x, w, {}, ConvOptions().groups(-2)), "conv: expected groups >= 1, got -2");
  CT_REQUIRE_ERROR(conv(x, w, {}, ConvOptions().padding(-1)),
                   "conv: expected non-negative padding, got (-1, -1)");
  CT_REQUIRE_ERROR(conv(x, w, {}, ConvOptions().padding(Pads{{0, 1}, {2, -1}})),
                   "conv: expected non-negative padding, got (2, -1)");
  CT_REQUIRE_ERROR(conv(zeros({1, 1, 2, 2}), zeros({1, 1, 3, 3})),
                   "conv: expected a dilated kernel (3 x 3) no larger than the padded input (2 x "
                   "2), got weight [1, 1, 3, 3] and input [1, 1, 2, 2]");
  CT_REQUIRE_ERROR(conv(zeros({1, 1, 4}), zeros({1, 1, 2}), {}, ConvOptions().dilation(4)),
                   "conv: expected a dilated kernel (5) no larger than the padded input (4)");
  CT_REQUIRE_ERROR(
      conv(zeros({1, 1, 4}), zeros({1, 1, 6}), {}, ConvOptions().padding(PaddingMode::Valid)),
      "conv: expected a dilated kernel (6) no larger than the padded input (4)");
  // Padding and input dilation make room: the same kernels fit.
  CHECK(conv(zeros({1, 1, 2, 2}), zeros({1, 1, 3, 3}), {}, ConvOptions().padding(1)).shape() ==
        Shape{1, 1, 2, 2});
  CHECK(conv(zeros({1, 1, 4}), zeros({1, 1, 6}), {}, ConvOptions().input_dilation(2)).shape() ==
        Shape{1, 1, 2});
  CT_REQUIRE_ERROR(conv(x, w.to(kFloat64)),
                   "conv: expected tensors of one dtype, got float32 and float64");
  CT_REQUIRE_ERROR(conv(x.to(kFloat64), w),
                   "conv: expected tensors of one dtype, got float64 and float32");
  CT_REQUIRE_ERROR(conv(x, w, zeros({2}, kFloat64)),
                   "conv: expected tensors of one dtype, got float32 and float64");
  CT_REQUIRE_ERROR(conv(x.to(kInt64), w.to(kInt64)),
                   "conv: expected a floating-point tensor (float32 or float64), got int64");
  CT_REQUIRE_ERROR(conv(x, w, {}, ConvOptions().stride({1, 1, 1})),
                   "conv: expected stride with 1 or 2 values (one per spatial dim), got 3");
  CT_REQUIRE_ERROR(conv(x, w, {}, ConvOptions().padding(Shape{1, 1, 1})),
                   "conv: expected padding with 1 or 2 values (one per spatial dim), got 3");
  CT_REQUIRE_ERROR(conv(x, w, {}, ConvOptions().padding(Pads{{1, 1}, {1, 1}, {0, 0}})),
                   "conv: expected padding with 1 or 2 values (one per spatial dim), got 3");
  CT_REQUIRE_ERROR(conv(x, w, {}, ConvOptions().dilation({1, 1, 1, 1})),
                   "conv: expected dilation with 1 or 2 values (one per spatial dim), got 4");
  CT_REQUIRE_ERROR(conv(x, w, {}, ConvOptions().input_dilation({1, 1, 1})),
                   "conv: expected input dilation with 1 or 2 values (one per spatial dim), got 3");
  CT_REQUIRE_ERROR(conv(Tensor(), w), "conv: expected a defined input tensor");
  CT_REQUIRE_ERROR(conv(x, Tensor()), "conv: expected a defined weight tensor");
}

TEST_CASE("conv1d / conv2d / conv3d check the rank", "[ops][conv][errors]") {
  CT_REQUIRE_ERROR(conv2d(zeros({1, 1, 4}), zeros({1, 1, 2})),
                   "conv2d: expected input of rank 4 ([N, C, 2 spatial dims]), got [1, 1, 4]");
  CT_REQUIRE_ERROR(conv1d(zeros({1, 1, 4, 4}), zeros({1, 1, 2, 2})),
                   "conv1d: expected input of rank 3 ([N, C, 1 spatial dim]), got [1, 1, 4, 4]");
  CT_REQUIRE_ERROR(conv3d(zeros({1, 1, 4, 4}), zeros({1, 1, 2, 2})),
                   "conv3d: expected input of rank 5 ([N, C, 3 spatial dims]), got [1, 1, 4, 4]");
  CT_REQUIRE_ERROR(conv2d(zeros({1, 1, 4, 4}), zeros({1, 1, 2})),
                   "conv2d: expected weight [K, C/groups, *R] of rank 4");
  CT_REQUIRE_ERROR(
      conv_transpose2d(zeros({1, 1, 4}), zeros({1, 1, 2})),
      "conv_transpose2d: expected input of rank 4 ([N, C, 2 spatial dims]), got [1, 1, "
      "4]");
  CT_REQUIRE_ERROR(conv_transpose3d(zeros({1, 1, 4}), zeros({1, 1, 2})),
                   "conv_transpose3d: expected input of rank 5");
}

TEST_CASE("conv_transpose: argument errors", "[ops][conv][errors]") {
  const Tensor x = zeros({1, 4, 3}), w = zeros({4, 2, 3});
  const auto opts = [] { return ConvTransposeOptions(); };
  CT_REQUIRE_ERROR(conv_transpose(zeros({4, 3}), zeros({4, 2})),
                   "conv_transpose: expected input [N, C, *spatial] with at least one spatial dim");
  CT_REQUIRE_ERROR(conv_transpose(x, zeros({4, 2})),
                   "conv_transpose: expected weight [C_in, C_out/groups, *R] of rank 3 for input "
                   "[1, 4, 3], got [4, 2]");
  CT_REQUIRE_ERROR(conv_transpose(x, zeros({3, 2, 3})),
                   "conv_transpose: expected weight [C_in, C_out/groups, *R] with C_in = 4, got "
                   "[3, 2, 3]");
  CT_REQUIRE_ERROR(conv_transpose(zeros({1, 3, 3}), zeros({3, 1, 3}), {}, opts().groups(2)),
                   "conv_transpose: expected input channels divisible by groups, got C_in = 3, "
                   "groups = 2");
  CT_REQUIRE_ERROR(conv_transpose(x, w, {}, opts().groups(0)),
                   "conv_transpose: expected groups >= 1, got 0");
  CT_REQUIRE_ERROR(conv_transpose(x, w, zeros({3})),
                   "conv_transpose: expected bias [C_out] with C_out = 2, got [3]");
  CT_REQUIRE_ERROR(conv_transpose(x, w, zeros({2}), opts().groups(2)),
                   "conv_transpose: expected bias [C_out] with C_out = 4, got [2]");
  CT_REQUIRE_ERROR(conv_transpose(x, w, {}, opts().stride(0)),
                   "conv_transpose: expected stride > 0, got [0]");
  CT_REQUIRE_ERROR(conv_transpose(x, w, {}, opts().dilation(-1)),
                   "conv_transpose: expected dilation > 0, got [-1]");
  CT_REQUIRE_ERROR(conv_transpose(x, w, {}, opts().padding(-1)),
                   "conv_transpose: expected non-negative padding, got [-1]");
  CT_REQUIRE_ERROR(conv_transpose(x, w, {}, opts().stride(2).output_padding(2)),
                   "conv_transpose: expected output_padding smaller than stride or dilation, got "
                   "output_padding = 2, stride = 2, dilation = 1 (dim 0)");
  CT_REQUIRE_ERROR(conv_transpose(x, w, {}, opts().output_padding(1)),
                   "got output_padding = 1, stride = 1, dilation = 1 (dim 0)");
  CT_REQUIRE_ERROR(conv_transpose(x, w, {}, opts().stride(2).dilation(2).output_padding(2)),
                   "got output_padding = 2, stride = 2, dilation = 2 (dim 0)");
  CT_REQUIRE_ERROR(conv_transpose(x, w, {}, opts().stride(2).output_padding(-1)),
                   "expected output_padding smaller than stride or dilation, got output_padding "
                   "= -1");
  CT_REQUIRE_ERROR(conv_transpose(zeros({1, 4, 3, 3}), zeros({4, 2, 3, 3}), {},
                                  opts().stride({2, 2}).output_padding({0, 2})),
                   "got output_padding = 2, stride = 2, dilation = 1 (dim 1)");
  CT_REQUIRE_ERROR(conv_transpose(zeros({1, 4, 3, 3}), zeros({4, 2, 3, 3}), {},
                                  opts().output_padding({0, 0, 0})),
                   "conv_transpose: expected output_padding with 1 or 2 values (one per spatial "
                   "dim), got 3");
  CT_REQUIRE_ERROR(
      conv_transpose(zeros({1, 4, 3, 3}), zeros({4, 2, 3, 3}), {}, opts().stride({1, 1, 1})),
      "conv_transpose: expected stride with 1 or 2 values (one per spatial dim), got 3");
  CT_REQUIRE_ERROR(
      conv_transpose(zeros({1, 4, 3, 3}), zeros({4, 2, 3, 3}), {}, opts().padding({0, 0, 0})),
      "conv_transpose: expected padding with 1 or 2 values (one per spatial dim), got 3");
  CT_REQUIRE_ERROR(conv_transpose(zeros({1, 4, 1}), zeros({4, 2, 1}), {}, opts().padding(1)),
                   "conv_transpose: expected a positive output size, got -1 in dim 0");
  CT_REQUIRE_ERROR(conv_transpose(x, w.to(kFloat64)),
                   "conv_transpose: expected tensors of one dtype, got float32 and float64");
  CT_REQUIRE_ERROR(conv_transpose(x, w, zeros({2}, kFloat64)),
                   "conv_transpose: expected tensors of one dtype, got float32 and float64");
}

TEST_CASE("conv_general: argument errors", "[ops][conv][errors]") {
  const Tensor lhs = zeros({1, 2, 5, 5}), rhs = zeros({3, 2, 3, 3});
  const auto with = [](std::string l, std::string r, std::string o) {
    ConvGeneralOptions opts;
    opts.dimension_numbers = {std::move(l), std::move(r), std::move(o)};
    return opts;
  };
  // Wrong lengths.
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, with("NCH", "OIHW", "NCHW")),
                   "conv_general: expected lhs dimension numbers of length 4 (the operand's rank), "
                   "got 'NCH'");
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, with("NCHW", "OIHWD", "NCHW")),
                   "conv_general: expected rhs dimension numbers of length 4 (the operand's rank), "
                   "got 'OIHWD'");
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, with("NCHW", "OIHW", "NCHWX")),
                   "conv_general: expected out dimension numbers of length 4");
  // Missing batch / feature letters.
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, with("XCHW", "OIHW", "NCHW")),
                   "conv_general: expected lhs dimension numbers with one N, one C and the spatial "
                   "dims 'HW', got 'XCHW'");
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, with("NHWX", "OIHW", "NCHW")),
                   "conv_general: expected lhs dimension numbers with one N, one C and the spatial "
                   "dims 'HW', got 'NHWX'");
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, with("NCHW", "IHWX", "NCHW")),
                   "conv_general: expected rhs dimension numbers with one O, one I and the spatial "
                   "dims 'HWX', got 'IHWX'");
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, with("NCHW", "OOHW", "NCHW")),
                   "conv_general: expected rhs dimension numbers with one O, one I and the spatial "
                   "dims 'HW', got 'OOHW'");
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, with("NCHW", "OIHW", "NOHW")),
                   "conv_general: expected out dimension numbers with one N, one C and the spatial "
                   "dims 'HW', got 'NOHW'");
  // Duplicate letters.
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, with("NCHH", "OIHW", "NCHW")),
                   "conv_general: expected lhs dimension numbers with one N, one C and the spatial "
                   "dims 'HW', got 'NCHH'");
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, with("NCHW", "OIHH", "NCHW")),
                   "conv_general: expected rhs dimension numbers with one O, one I and the spatial "
                   "dims 'HH', got 'OIHH'");
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, with("NNHW", "OIHW", "NCHW")),
                   "expected lhs dimension numbers with one N, one C");
  // Spatial letters that do not match between the operands and the result.
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, with("NCHD", "OIHW", "NCHW")),
                   "conv_general: expected lhs dimension numbers with one N, one C and the spatial "
                   "dims 'HW', got 'NCHD'");
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, with("NCHW", "OIHW", "NCWD")),
                   "conv_general: expected out dimension numbers with one N, one C and the spatial "
                   "dims 'HW', got 'NCWD'");
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, with("NCHW", "OIXY", "NCXY")),
                   "conv_general: expected lhs dimension numbers with one N, one C and the spatial "
                   "dims 'XY', got 'NCHW'");
  // Operand ranks.
  CT_REQUIRE_ERROR(
      conv_general(zeros({1, 2, 5}), rhs, {}),
      "conv_general: expected lhs and rhs of one rank, got [1, 2, 5] and [3, 2, 3, 3]");
  CT_REQUIRE_ERROR(conv_general(zeros({1, 2}), zeros({3, 2}), {}),
                   "conv_general: expected rhs with at least one spatial dim, got [3, 2]");
  // Group counts.
  ConvGeneralOptions both;
  both.feature_group_count = 2;
  both.batch_group_count = 2;
  CT_REQUIRE_ERROR(conv_general(zeros({2, 4, 5, 5}), zeros({4, 2, 3, 3}), both),
                   "conv_general: expected feature_group_count or batch_group_count to be 1, got 2 "
                   "and 2");
  ConvGeneralOptions zero;
  zero.feature_group_count = 0;
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, zero),
                   "conv_general: expected group counts >= 1, got feature_group_count = 0, "
                   "batch_group_count = 1");
  ConvGeneralOptions bg;
  bg.batch_group_count = 2;
  CT_REQUIRE_ERROR(conv_general(zeros({3, 2, 5, 5}), zeros({4, 2, 3, 3}), bg),
                   "conv_general: expected the batch size divisible by batch_group_count, got 3 "
                   "and 2");
  CT_REQUIRE_ERROR(conv_general(zeros({2, 2, 5, 5}), rhs, bg),
                   "conv_general: expected output features divisible by batch_group_count, got 3 "
                   "and 2");
  ConvGeneralOptions fg;
  fg.feature_group_count = 2;
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, fg),
                   "conv_general: expected weight [K, C/groups, *R] with C/groups = 1 (C = 2, "
                   "groups = 2), got [3, 2, 3, 3]");
  // Per-dim options, sizes, dtypes.
  ConvGeneralOptions strides;
  strides.window_strides = {1, 1, 1};
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, strides),
                   "conv_general: expected stride with 1 or 2 values (one per spatial dim), got 3");
  ConvGeneralOptions pads;
  pads.padding = {{1, 1}, {1, 1}, {1, 1}};
  CT_REQUIRE_ERROR(
      conv_general(lhs, rhs, pads),
      "conv_general: expected padding with 1 or 2 values (one per spatial dim), got 3");
  ConvGeneralOptions neg;
  neg.padding = {{1, 1}, {0, -1}};
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, neg),
                   "conv_general: expected non-negative padding, got (0, -1)");
  ConvGeneralOptions dil;
  dil.rhs_dilation = {1, 0};
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, dil), "conv_general: expected dilation > 0, got [1, 0]");
  ConvGeneralOptions ldil;
  ldil.lhs_dilation = {0};
  CT_REQUIRE_ERROR(conv_general(lhs, rhs, ldil),
                   "conv_general: expected input dilation > 0, got [0, 0]");
  ConvGeneralOptions valid;
  valid.padding_mode = PaddingMode::Valid;
  CT_REQUIRE_ERROR(
      conv_general(lhs, zeros({3, 2, 7, 7}), valid),
      "conv_general: expected a dilated kernel (7 x 7) no larger than the padded input "
      "(5 x 5)");
  CT_REQUIRE_ERROR(conv_general(lhs, rhs.to(kFloat64), {}),
                   "conv_general: expected tensors of one dtype, got float32 and float64");
  CT_REQUIRE_ERROR(conv_general(Tensor(), rhs, {}), "conv_general: expected a defined lhs tensor");
  CT_REQUIRE_ERROR(conv_general(lhs, Tensor(), {}), "conv_general: expected a defined rhs tensor");
  // Padding names.
  CT_REQUIRE_ERROR(padding_mode_from_string("FULL"),
                   "conv_general: expected padding 'SAME', 'SAME_LOWER' or 'VALID' (any case), "
                   "got 'FULL'");
  CT_REQUIRE_ERROR(
      padding_mode_from_string("SAME ", "my_op"),
      "my_op: expected padding 'SAME', 'SAME_LOWER' or 'VALID' (any case), got 'SAME '");
  CT_REQUIRE_ERROR(padding_mode_from_string(""), "got ''");
}

TEST_CASE("conv: device mismatches are refused before any kernel runs", "[ops][conv][device]") {
  // Tensors labelled as living on cuda:0 over host memory that nothing dereferences, as in
  // tests/core/tensor_test.cpp: the checks must reject them with or without a GPU.
  static float host[64] = {};
  auto fake = std::make_shared<Storage>(host, sizeof(host), Device::cuda(0), nullptr);
  const Tensor xd = Tensor::make(fake, {1, 1, 4}, {4, 4, 1}, 0, kFloat32);
  const Tensor wd = Tensor::make(fake, {1, 1, 2}, {2, 2, 1}, 0, kFloat32);
  const Tensor bd = Tensor::make(fake, {1}, {1}, 0, kFloat32);
  const Tensor x = zeros({1, 1, 4}), w = zeros({1, 1, 2}), b = zeros({1});
  CT_REQUIRE_ERROR(conv(x, wd), "conv: expected tensors on one device, got cpu and cuda:0");
  CT_REQUIRE_ERROR(conv(xd, w), "conv: expected tensors on one device, got cuda:0 and cpu");
  CT_REQUIRE_ERROR(conv(x, w, bd), "conv: expected tensors on one device, got cpu and cuda:0");
  CT_REQUIRE_ERROR(conv1d(x, wd), "conv1d: expected tensors on one device");
  CT_REQUIRE_ERROR(conv_transpose(x, wd),
                   "conv_transpose: expected tensors on one device, got cpu and cuda:0");
  ConvGeneralOptions o;
  o.dimension_numbers = {"NCW", "OIW", "NCW"};
  CT_REQUIRE_ERROR(conv_general(x, wd, o),
                   "conv_general: expected tensors on one device, got cpu and cuda:0");
}
