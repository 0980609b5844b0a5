// Convolution front ends: argument checks and output shapes (every user-facing conv error lives
// here), the CPU kernels, and the tape entries. conv_transpose runs as the data-gradient of the
// convolution it transposes, and its gradients as that convolution's forward and weight-gradient;
// conv_general maps JAX's layouts and batch groups onto conv with permutes and reshapes.
#include "ops/conv.h"

#include <algorithm>
#include <numeric>

#include <fmt/ranges.h>

#include "core/autograd.h"
#include "ops/backend.h"
#include "ops/detail.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "ops/shape.h"

namespace convtape {

ConvOptions& ConvOptions::padding(const std::vector<std::int64_t>& p) {
  padding_.clear();
  for (auto v : p) padding_.emplace_back(v, v);
  mode_ = PaddingMode::Explicit;
  return *this;
}

PaddingMode padding_mode_from_string(const std::string& name) {
  if (name == "SAME") return PaddingMode::Same;
  if (name == "SAME_LOWER") return PaddingMode::SameLower;
  if (name == "VALID") return PaddingMode::Valid;
  CT_FAIL("conv_general: expected padding 'SAME', 'SAME_LOWER' or 'VALID', got '{}'", name);
}

namespace {

constexpr std::int64_t kMaxSpatial = 8;

template <class V>
V per_dim(std::string_view op, std::string_view what, const V& v, std::int64_t s) {
  CT_CHECK(v.size() == 1 || static_cast<std::int64_t>(v.size()) == s,
           "{}: expected {} with 1 or {} values (one per spatial dim), got {}", op, what, s,
           v.size());
  return v.size() == 1 ? V(static_cast<std::size_t>(s), v[0]) : v;
}

void check_positive(std::string_view op, std::string_view what,
                    const std::vector<std::int64_t>& v) {
  for (auto x : v) CT_CHECK(x > 0, "{}: expected {} > 0, got [{}]", op, what, fmt::join(v, ", "));
}

std::string dims_string(const Shape& s) {
  return fmt::format("{}", fmt::join(s, " x "));
}

void check_rank(std::string_view op, const Tensor& x, const Tensor& w,
                std::string_view weight_layout) {
  CT_CHECK(x.dim() >= 3,
           "{}: expected input [N, C, *spatial] with at least one spatial dim, got {}", op,
           to_string(x.shape()));
  CT_CHECK(x.dim() - 2 <= kMaxSpatial, "{}: expected at most {} spatial dims, got input {}", op,
           kMaxSpatial, to_string(x.shape()));
  CT_CHECK(w.dim() == x.dim(), "{}: expected weight {} of rank {} for input {}, got {}", op,
           weight_layout, x.dim(), to_string(x.shape()), to_string(w.shape()));
}

void check_operands(std::string_view op, const Tensor& x, const Tensor& w, const Tensor& b) {
  detail::check_defined(op, x, "input");
  detail::check_defined(op, w, "weight");
  detail::check_floating_same(
      op, b.defined() ? std::vector<Tensor>{x, w, b} : std::vector<Tensor>{x, w});
}

// Resolves conv's options against x [N, C, *S] and w [K, C/groups, *R].
ConvGeometry resolve(std::string_view op, const Tensor& x, const Tensor& w, const Tensor& b,
                     const ConvOptions& o) {
  check_operands(op, x, w, b);
  check_rank(op, x, w, "[K, C/groups, *R]");
  const std::int64_t s = x.dim() - 2, c = x.size(1), k = w.size(0), groups = o.groups();
  CT_CHECK(groups >= 1, "{}: expected groups >= 1, got {}", op, groups);
  CT_CHECK(c % groups == 0,
           "{}: expected input channels divisible by groups, got C = {}, groups = {}", op, c,
           groups);
  CT_CHECK(w.size(1) == c / groups,
           "{}: expected weight [K, C/groups, *R] with C/groups = {} (C = {}, groups = {}), got {}",
           op, c / groups, c, groups, to_string(w.shape()));
  CT_CHECK(k >= 1 && k % groups == 0,
           "{}: expected output channels K >= 1 and divisible by groups, got K = {}, groups = {} "
           "(weight {})",
           op, k, groups, to_string(w.shape()));
  if (b.defined())
    CT_CHECK(b.dim() == 1 && b.size(0) == k, "{}: expected bias [K] with K = {}, got {}", op, k,
             to_string(b.shape()));

  ConvGeometry g;
  g.batch = x.size(0);
  g.channels = c;
  g.out_channels = k;
  g.groups = groups;
  g.stride = per_dim(op, "stride", o.stride(), s);
  g.dilation = per_dim(op, "dilation", o.dilation(), s);
  g.input_dilation = per_dim(op, "input dilation", o.input_dilation(), s);
  check_positive(op, "stride", g.stride);
  check_positive(op, "dilation", g.dilation);
  check_positive(op, "input dilation", g.input_dilation);
  for (std::int64_t d = 0; d < s; ++d) {
    g.in.push_back(x.size(2 + d));
    g.kernel.push_back(w.size(2 + d));
  }
  CT_CHECK(numel(g.kernel) > 0, "{}: expected a non-empty kernel, got weight {}", op,
           to_string(w.shape()));

  std::vector<std::pair<std::int64_t, std::int64_t>> pads;
  if (o.padding_mode() == PaddingMode::Explicit) {
    pads = per_dim(op, "padding", o.padding(), s);
    for (const auto& [lo, hi] : pads)
      CT_CHECK(lo >= 0 && hi >= 0, "{}: expected non-negative padding, got ({}, {})", op, lo, hi);
  } else {
    for (std::int64_t d = 0; d < s; ++d) {
      const auto du = static_cast<std::size_t>(d);
      if (o.padding_mode() == PaddingMode::Valid) {
        pads.emplace_back(0, 0);
        continue;
      }
      // JAX's rule, on the undilated input size.
      const std::int64_t in = g.in[du], st = g.stride[du];
      const std::int64_t out = (in + st - 1) / st;
      const std::int64_t total =
          std::max<std::int64_t>((out - 1) * st + (g.kernel[du] - 1) * g.dilation[du] + 1 - in, 0);
      const std::int64_t lo = o.padding_mode() == PaddingMode::Same ? total / 2 : total - total / 2;
      pads.emplace_back(lo, total - lo);
    }
  }
  Shape padded, dilated_kernel;
  bool fits = true;
  for (std::int64_t d = 0; d < s; ++d) {
    const auto du = static_cast<std::size_t>(d);
    const std::int64_t in_eff = g.in[du] == 0 ? 0 : (g.in[du] - 1) * g.input_dilation[du] + 1;
    padded.push_back(in_eff + pads[du].first + pads[du].second);
    dilated_kernel.push_back(g.dilation[du] * (g.kernel[du] - 1) + 1);
    fits = fits && padded.back() >= dilated_kernel.back();
    g.pad_lo.push_back(pads[du].first);
  }
  CT_CHECK(fits,
           "{}: expected a dilated kernel ({}) no larger than the padded input ({}), got weight {} "
           "and input {}",
           op, dims_string(dilated_kernel), dims_string(padded), to_string(w.shape()),
           to_string(x.shape()));
  for (std::int64_t d = 0; d < s; ++d) {
    const auto du = static_cast<std::size_t>(d);
    g.out.push_back((padded[du] - dilated_kernel[du]) / g.stride[du] + 1);
  }
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

Tensor conv_impl(std::string_view op, const Tensor& x, const Tensor& w, const Tensor& b,
                 const ConvOptions& o) {
  const ConvGeometry g = resolve(op, x, w, b, o);
  detail::check_same_device(op, {x, w, b});
  if (o.flip_kernel()) {
    ConvOptions plain = o;
    plain.flip_kernel(false);
    return conv_impl(op, x, flip(w, spatial_dims(w.dim())), b, plain);
  }
  const Tensor xc = x.detach().contiguous(), wc = w.detach().contiguous();
  const Tensor bc = b.defined() ? b.detach().contiguous() : Tensor();
  Tensor y = backend::conv_forward(xc, wc, bc, g);
  const bool need_x = x.requires_grad(), need_w = w.requires_grad();
  // dx needs only w, dw only x: save just what the wanted gradients use.
  record(y, op, {x, w, b}, {need_w ? xc : Tensor(), need_x ? wc : Tensor()},
         [g](const Saved& s, const Tensor& dy, const GradMask& need) {
           const Tensor dyc = dy.contiguous();
           return std::vector<Tensor>{
               need[0] ? backend::conv_backward_data(dyc, s[1], g) : Tensor(),
               need[1] ? backend::conv_backward_weight(dyc, s[0], g) : Tensor(),
               need[2] ? bias_grad(dyc) : Tensor()};
         });
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

Tensor conv_transpose_impl(std::string_view op, const Tensor& x, const Tensor& w, const Tensor& b,
                           const ConvTransposeOptions& o) {
  check_operands(op, x, w, b);
  check_rank(op, x, w, "[C_in, C_out/groups, *R]");
  const std::int64_t s = x.dim() - 2, cin = x.size(1), groups = o.groups();
  CT_CHECK(groups >= 1, "{}: expected groups >= 1, got {}", op, groups);
  CT_CHECK(w.size(0) == cin, "{}: expected weight [C_in, C_out/groups, *R] with C_in = {}, got {}",
           op, cin, to_string(w.shape()));
  CT_CHECK(cin % groups == 0,
           "{}: expected input channels divisible by groups, got C_in = {}, groups = {}", op, cin,
           groups);
  const std::int64_t cout = w.size(1) * groups;
  CT_CHECK(cout >= 1, "{}: expected at least one output channel, got weight {}", op,
           to_string(w.shape()));
  if (b.defined())
    CT_CHECK(b.dim() == 1 && b.size(0) == cout, "{}: expected bias [C_out] with C_out = {}, got {}",
             op, cout, to_string(b.shape()));
  ConvGeometry g;
  g.batch = x.size(0);
  g.channels = cout;
  g.out_channels = cin;
  g.groups = groups;
  g.stride = per_dim(op, "stride", o.stride(), s);
  g.dilation = per_dim(op, "dilation", o.dilation(), s);
  g.input_dilation = Shape(static_cast<std::size_t>(s), 1);
  const auto pad = per_dim(op, "padding", o.padding(), s);
  const auto out_pad = per_dim(op, "output_padding", o.output_padding(), s);
  check_positive(op, "stride", g.stride);
  check_positive(op, "dilation", g.dilation);
  for (std::int64_t d = 0; d < s; ++d) {
    const auto du = static_cast<std::size_t>(d);
    CT_CHECK(pad[du] >= 0, "{}: expected non-negative padding, got [{}]", op, fmt::join(pad, ", "));
    CT_CHECK(out_pad[du] >= 0 && (out_pad[du] < g.stride[du] || out_pad[du] < g.dilation[du]),
             "{}: expected output_padding smaller than stride or dilation, got output_padding = "
             "{}, stride = {}, "
             "dilation = {} (dim {})",
             op, out_pad[du], g.stride[du], g.dilation[du], d);
    const std::int64_t k = w.size(2 + d), in = x.size(2 + d);
    const std::int64_t len =
        (in - 1) * g.stride[du] - 2 * pad[du] + g.dilation[du] * (k - 1) + out_pad[du] + 1;
    CT_CHECK(
        len >= 1,
        "{}: expected a positive output size, got {} in dim {} (input {}, weight {}, padding {})",
        op, len, d, to_string(x.shape()), to_string(w.shape()), pad[du]);
    g.in.push_back(len);
    g.out.push_back(in);
    g.kernel.push_back(k);
    g.pad_lo.push_back(pad[du]);
  }
  detail::check_same_device(op, {x, w, b});
  const Tensor xc = x.detach().contiguous(), wc = w.detach().contiguous();
  Tensor y = backend::conv_backward_data(xc, wc, g);
  const bool need_x = x.requires_grad(), need_w = w.requires_grad();
  record(y, op, {x, w}, {need_w ? xc : Tensor(), need_x ? wc : Tensor()},
         [g](const Saved& sv, const Tensor& dy, const GradMask& need) {
           const Tensor dyc = dy.contiguous();
           return std::vector<Tensor>{
               need[0] ? backend::conv_forward(dyc, sv[1], Tensor(), g) : Tensor(),
               need[1] ? backend::conv_backward_weight(sv[0], dyc, g) : Tensor()};
         });
  if (!b.defined()) return y;
  Shape bshape(static_cast<std::size_t>(x.dim()), 1);
  bshape[1] = cout;
  return add(y, reshape(b, bshape));
}

Tensor conv_transpose_ranked(std::string_view op, std::int64_t spatial, const Tensor& x,
                             const Tensor& w, const Tensor& b, const ConvTransposeOptions& o) {
  check_input_rank(op, x, spatial);
  return conv_transpose_impl(op, x, w, b, o);
}

}  // namespace

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
    x = reshape(permute(reshape(x, split), swap), [&] {
      Shape merged{n / bgc, bgc * x.size(1)};
      merged.insert(merged.end(), x.shape().begin() + 2, x.shape().end());
      return merged;
    }());
    groups = bgc;
  }
  ConvOptions co;
  if (!o.window_strides.empty()) co.stride(o.window_strides);
  if (!o.lhs_dilation.empty()) co.input_dilation(o.lhs_dilation);
  if (!o.rhs_dilation.empty()) co.dilation(o.rhs_dilation);
  if (o.padding_mode == PaddingMode::Explicit) {
    if (!o.padding.empty()) co.padding(o.padding);
  } else {
    co.padding(o.padding_mode);
  }
  co.groups(groups);
  const Tensor y = conv_impl(op, x, w, Tensor(), co);
  // y is [N, C, *spatial]; out_pos says where each of those dims goes in the result.
  std::vector<std::int64_t> to_out(out_pos.size());
  for (std::size_t i = 0; i < out_pos.size(); ++i)
    to_out[static_cast<std::size_t>(out_pos[i])] = static_cast<std::int64_t>(i);
  return permute(y, to_out).contiguous();
}

}  // namespace convtape
