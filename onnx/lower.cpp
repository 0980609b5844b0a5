// The lowering of every traced op to ONNX (opset 13 to 17 semantics). What each op front end
// emits through trace::OpScope: its inputs, then its attributes (lists hold one value per spatial
// dim):
//   conv, conv1d, conv2d, conv3d, conv_general (x, w, b): stride, dilation, input_dilation,
//     pad_lo, pad_hi (resolved: SAME included), groups, flip_kernel
//   conv_transpose, conv_transpose1d/2d/3d (x, w, b): stride, dilation, padding,
//     output_padding, groups
//   max_pool, max_pool1d/2d/3d, max_pool_with_indices (x): kernel, stride, dilation, pad_lo,
//     pad_hi, ceil_mode, count_include_pad
//   avg_pool, avg_pool1d/2d/3d (x): the same, and divisor_override when set
//   adaptive_avg_pool, adaptive_max_pool[_with_indices], global_avg_pool (x): output_size
//   linear (x, w, b), matmul (a, b)
//   batch_norm (x, weight, bias, running mean, running var): eps, batch_stats, training
//   add, sub, mul, div, pow (a, b); neg, exp, log, sqrt, abs, relu, sigmoid, tanh (x);
//     leaky_relu (x): negative_slope; clamp (x): low, high
//   add_scalar, sub_scalar, mul_scalar, div_scalar, pow_scalar (x op scalar), rsub_scalar,
//     rdiv_scalar (scalar op x): scalar
//   reshape, view (x): shape; flatten (x): start_dim, end_dim; permute (x): perm; squeeze (x):
//     axes; unsqueeze (x): dim; slice (x): dim, start, end, step (start and end as given);
//     expand (x): shape; index_select (x, index): dim; cat (tensors): dim; flip (x): dims
//   pad (x): widths ((low, high) per padded trailing dim, flattened), mode, value
//   softmax, log_softmax (x): dim
//   interpolate (x): mode, align_corners, size, scales (0 where the sizes set the scale)
//   dropout, feature_dropout, dropout1d/2d/3d (x): p (traced only when a mask was drawn)
#include "onnx/lower.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include <fmt/ranges.h>

#include "ops/factory.h"

namespace convtape::onnx::detail {

namespace {

constexpr std::int64_t kMaxI64 = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kMinI64 = std::numeric_limits<std::int64_t>::min();

using Ints = std::vector<std::int64_t>;

Ints concat(Ints a, const Ints& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

Ints spatial(const Shape& s) {
  return Ints(s.begin() + 2, s.end());
}

bool all_equal(const Ints& v, std::int64_t x) {
  return std::all_of(v.begin(), v.end(), [x](std::int64_t e) { return e == x; });
}

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  const std::int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

// Per dim, whether one tensor's shapes in the two passes differ: the dims that follow the batch.
std::vector<bool> dims_that_differ(const Shape& a, const Shape& b) {
  std::vector<bool> out(a.size(), false);
  for (std::size_t d = 0; d < a.size() && d < b.size(); ++d) out[d] = a[d] != b[d];
  return out;
}

// ---- convolutions

void lower_conv(Lowering& L) {
  const Ints input_dilation = L.ints("input_dilation");
  if (!all_equal(input_dilation, 1))
    L.fail("a convolution without input (lhs) dilation (ONNX's Conv has none)",
           fmt::format("input_dilation [{}]", fmt::join(input_dilation, ", ")));
  const Tensor& w = L.input(1);
  const auto s = static_cast<std::size_t>(w.dim() - 2);
  std::string weight = L.in(1);
  if (L.i64("flip_kernel") != 0) {
    // A convolution in the mathematical sense: the kernel reversed along every spatial dim.
    Ints axes;
    for (std::size_t d = 0; d < s; ++d) axes.push_back(static_cast<std::int64_t>(d) + 2);
    GraphBuilder& g = L.graph();
    weight = L.node("Slice", {weight, g.constant_i64(Ints(s, -1)), g.constant_i64(Ints(s, kMinI64)),
                              g.constant_i64(axes), g.constant_i64(Ints(s, -1))});
  }
  std::vector<std::string> inputs{L.in(0), weight};
  if (!L.in(2).empty()) inputs.push_back(L.in(2));
  L.result = L.node("Conv", inputs,
                    {{"kernel_shape", spatial(w.shape())},
                     {"strides", L.ints("stride")},
                     {"dilations", L.ints("dilation")},
                     {"pads", concat(L.ints("pad_lo"), L.ints("pad_hi"))},
                     {"group", L.i64("groups")}});
}

void lower_conv_transpose(Lowering& L) {
  const Tensor& w = L.input(1);
  std::vector<std::string> inputs{L.in(0), L.in(1)};
  if (!L.in(2).empty()) inputs.push_back(L.in(2));
  const Ints padding = L.ints("padding");
  L.result = L.node("ConvTranspose", inputs,
                    {{"kernel_shape", spatial(w.shape())},
                     {"strides", L.ints("stride")},
                     {"dilations", L.ints("dilation")},
                     {"pads", concat(padding, padding)},
                     {"output_padding", L.ints("output_padding")},
                     {"group", L.i64("groups")}});
}

// ---- pooling

// The high padding that makes ONNX's floor-mode output count the traced one: the padding given
// where the floor already gives it, else just enough for the last window (ceil_mode's extra
// window, which starts inside the input or the low padding). extra[d]: whether dim d needed more.
struct PoolPads {
  Ints hi;
  std::vector<bool> extra;
};

PoolPads floor_mode_pads(const Lowering& L, const Ints& kernel, const Ints& stride,
                         const Ints& dilation, const Ints& lo, const Ints& hi) {
  const Tensor& x = L.input(0);
  const Tensor& y = L.event().output;
  PoolPads p{hi, std::vector<bool>(hi.size(), false)};
  for (std::size_t d = 0; d < hi.size(); ++d) {
    const std::int64_t in = x.size(static_cast<std::int64_t>(d) + 2);
    const std::int64_t out = y.size(static_cast<std::int64_t>(d) + 2);
    const std::int64_t extent = dilation[d] * (kernel[d] - 1) + 1;
    if (floor_div(in + lo[d] + hi[d] - extent, stride[d]) + 1 == out) continue;
    p.hi[d] = (out - 1) * stride[d] + extent - in - lo[d];
    p.extra[d] = true;
  }
  return p;
}

void lower_max_pool(Lowering& L) {
  const Ints kernel = L.ints("kernel"), stride = L.ints("stride"), dilation = L.ints("dilation");
  const Ints lo = L.ints("pad_lo");
  const Ints hi = L.ints("pad_hi");
  const PoolPads pads = floor_mode_pads(L, kernel, stride, dilation, lo, hi);
  // ONNX Runtime takes no padding as wide as the kernel, which a dilated window's extra high
  // padding can be: that part is then made real, as -inf, which no max picks over an input value
  // (every kept window starts inside the input or its low padding).
  bool wide = false;
  for (std::size_t d = 0; d < kernel.size(); ++d) wide = wide || pads.hi[d] >= kernel[d];
  std::string x = L.in(0);
  Ints pool_hi = pads.hi;
  if (wide) {
    const Ints none{0, 0};
    Ints extra(kernel.size(), 0);
    for (std::size_t d = 0; d < kernel.size(); ++d) extra[d] = pads.hi[d] - hi[d];
    GraphBuilder& g = L.graph();
    x = L.node(
        "Pad",
        {x, g.constant_i64(concat(concat(none, Ints(kernel.size(), 0)), concat(none, extra))),
         g.constant_scalar(-std::numeric_limits<double>::infinity(), L.input(0).dtype())},
        {{"mode", std::string("constant")}});
    pool_hi = hi;
  }
  std::vector<NodeAttr> attrs{
      {"kernel_shape", kernel}, {"strides", stride}, {"pads", concat(lo, pool_hi)}};
  if (!all_equal(dilation, 1)) attrs.push_back({"dilations", dilation});
  L.result = L.node("MaxPool", {x}, attrs);
}

void lower_avg_pool(Lowering& L) {
  if (L.has("divisor_override"))
    L.fail("average pooling without divisor_override (ONNX's AveragePool divides by the window)",
           fmt::format("divisor_override {}", L.i64("divisor_override")));
  const Ints kernel = L.ints("kernel"), stride = L.ints("stride");
  const Ints lo = L.ints("pad_lo"), hi = L.ints("pad_hi");
  const Ints ones(kernel.size(), 1);
  const bool include_pad = L.i64("count_include_pad") != 0;
  const PoolPads pads = floor_mode_pads(L, kernel, stride, ones, lo, hi);
  const bool extra = std::find(pads.extra.begin(), pads.extra.end(), true) != pads.extra.end();
  if (!extra || !include_pad) {
    // Every window lies in the padded input (or padding does not count): ONNX's rule is ours.
    L.result = L.node("AveragePool", {L.in(0)},
                      {{"kernel_shape", kernel},
                       {"strides", stride},
                       {"pads", concat(lo, pads.hi)},
                       {"count_include_pad", std::int64_t{include_pad}}});
    return;
  }
  // ceil_mode's last window passes the padded input, and its divisor counts the padding up to the
  // padded input's end only: the padding made real (zeros), then pooled without counting pads.
  std::string x = L.in(0);
  if (!all_equal(lo, 0) || !all_equal(hi, 0)) {
    const Ints none{0, 0};
    GraphBuilder& g = L.graph();
    x = L.node("Pad",
               {x, g.constant_i64(concat(concat(none, lo), concat(none, hi))),
                g.constant_scalar(0.0, L.input(0).dtype())},
               {{"mode", std::string("constant")}});
  }
  Ints beyond(kernel.size(), 0);
  for (std::size_t d = 0; d < kernel.size(); ++d)
    if (pads.extra[d]) beyond[d] = pads.hi[d] - hi[d];
  L.result = L.node("AveragePool", {x},
                    {{"kernel_shape", kernel},
                     {"strides", stride},
                     {"pads", concat(Ints(kernel.size(), 0), beyond)},
                     {"count_include_pad", std::int64_t{0}}});
}

// Adaptive pooling: output o of a dim covers [floor(o * in / out), ceil((o + 1) * in / out)).
// ONNX has none; windows of one size at one stride are a regular pooling.
void lower_adaptive(Lowering& L, bool max) {
  const Tensor& x = L.input(0);
  const Ints out = L.ints("output_size");
  if (all_equal(out, 1)) {
    L.result = L.node(max ? "GlobalMaxPool" : "GlobalAveragePool", {L.in(0)});
    return;
  }
  Ints kernel, stride;
  for (std::size_t d = 0; d < out.size(); ++d) {
    const std::int64_t in = x.size(static_cast<std::int64_t>(d) + 2), n = out[d];
    std::vector<std::pair<std::int64_t, std::int64_t>> windows;
    for (std::int64_t o = 0; o < n; ++o)
      windows.emplace_back(o * in / n, ((o + 1) * in + n - 1) / n);
    const std::int64_t k = windows[0].second - windows[0].first;
    const std::int64_t st = n > 1 ? windows[1].first - windows[0].first : 1;
    bool regular = st >= 1;
    for (std::int64_t o = 0; regular && o < n; ++o) {
      const auto [a, b] = windows[static_cast<std::size_t>(o)];
      regular = b - a == k && a == o * st;
    }
    if (!regular) {
      std::vector<std::string> shown;
      for (std::size_t o = 0; o < windows.size() && o < 4; ++o)
        shown.push_back(fmt::format("[{}, {})", windows[o].first, windows[o].second));
      if (windows.size() > 4) shown.push_back("...");
      L.fail(
          "adaptive pooling whose windows have one size and one stride (ONNX has no adaptive "
          "pooling)",
          fmt::format("windows {} for input size {} and output size {} in spatial dim {}",
                      fmt::join(shown, " "), in, n, d));
    }
    kernel.push_back(k);
    stride.push_back(st);
  }
  L.result =
      L.node(max ? "MaxPool" : "AveragePool", {L.in(0)},
             {{"kernel_shape", kernel}, {"strides", stride}, {"pads", Ints(2 * kernel.size(), 0)}});
}

void lower_adaptive_avg(Lowering& L) {
  lower_adaptive(L, false);
}
void lower_adaptive_max(Lowering& L) {
  lower_adaptive(L, true);
}

// ---- matrix products, normalisation

void lower_linear(Lowering& L) {
  const bool bias = !L.in(2).empty();
  if (L.input(0).dim() == 2) {
    std::vector<std::string> inputs{L.in(0), L.in(1)};
    if (bias) inputs.push_back(L.in(2));
    L.result = L.node("Gemm", inputs, {{"transB", std::int64_t{1}}});
    return;
  }
  const std::string wt = L.node("Transpose", {L.in(1)}, {{"perm", Ints{1, 0}}});
  const std::string product = L.node("MatMul", {L.in(0), wt});
  L.result = bias ? L.node("Add", {product, L.in(2)}) : product;
}

void lower_matmul(Lowering& L) {
  L.result = L.node("MatMul", {L.in(0), L.in(1)});
}

void lower_batch_norm(Lowering& L) {
  if (L.i64("batch_stats") != 0)
    L.fail(
        "BatchNorm that normalises with its running statistics, in eval mode (ONNX's "
        "BatchNormalization in inference form)",
        L.i64("training") != 0 ? "batch statistics in training mode"
                               : "batch statistics (track_running_stats=false)");
  const Tensor& x = L.input(0);
  const std::int64_t c = x.size(1);
  GraphBuilder& g = L.graph();
  const std::string scale = L.in(1).empty() ? g.constant(ones({c}, x.dtype())) : L.in(1);
  const std::string bias = L.in(2).empty() ? g.constant(zeros({c}, x.dtype())) : L.in(2);
  L.result = L.node("BatchNormalization", {L.in(0), scale, bias, L.in(3), L.in(4)},
                    {{"epsilon", static_cast<float>(L.f64("eps"))}});
}

// ---- elementwise

const std::map<std::string_view, std::string_view>& unary_ops() {
  static const std::map<std::string_view, std::string_view> ops{
      {"relu", "Relu"}, {"sigmoid", "Sigmoid"}, {"tanh", "Tanh"}, {"neg", "Neg"},
      {"exp", "Exp"},   {"log", "Log"},         {"sqrt", "Sqrt"}, {"abs", "Abs"}};
  return ops;
}

const std::map<std::string_view, std::string_view>& binary_ops() {
  static const std::map<std::string_view, std::string_view> ops{
      {"add", "Add"}, {"sub", "Sub"}, {"mul", "Mul"}, {"div", "Div"}, {"pow", "Pow"}};
  return ops;
}

void lower_unary(Lowering& L) {
  L.result = L.node(unary_ops().at(L.event().op), {L.in(0)});
}

void lower_binary(Lowering& L) {
  L.result = L.node(binary_ops().at(L.event().op), {L.in(0), L.in(1)});
}

// x op scalar, or scalar op x for rsub / rdiv: the scalar a 0-d constant of x's dtype.
void lower_scalar(Lowering& L) {
  const std::string_view op = L.event().op;
  const std::string c = L.graph().constant_scalar(L.f64("scalar"), L.input(0).dtype());
  static const std::map<std::string_view, std::pair<std::string_view, bool>> forms{
      {"add_scalar", {"Add", false}}, {"sub_scalar", {"Sub", false}},
      {"mul_scalar", {"Mul", false}}, {"div_scalar", {"Div", false}},
      {"pow_scalar", {"Pow", false}}, {"rsub_scalar", {"Sub", true}},
      {"rdiv_scalar", {"Div", true}}};
  const auto& [type, reversed] = forms.at(op);
  L.result = reversed ? L.node(type, {c, L.in(0)}) : L.node(type, {L.in(0), c});
}

void lower_leaky_relu(Lowering& L) {
  L.result =
      L.node("LeakyRelu", {L.in(0)}, {{"alpha", static_cast<float>(L.f64("negative_slope"))}});
}

// clamp is min(max(x, low), high): low > high gives high everywhere, as Clip(min(low, high),
// high) does; an infinite bound is no bound.
void lower_clamp(Lowering& L) {
  const double low = L.f64("low"), high = L.f64("high");
  if (std::isnan(low) || std::isnan(high))
    L.fail("clamp bounds that are numbers", fmt::format("low = {}, high = {}", low, high));
  const double lo = std::min(low, high);
  const DType dtype = L.input(0).dtype();
  GraphBuilder& g = L.graph();
  const std::string min = std::isinf(lo) && lo < 0 ? std::string() : g.constant_scalar(lo, dtype);
  const std::string max =
      std::isinf(high) && high > 0 ? std::string() : g.constant_scalar(high, dtype);
  L.result = L.node("Clip", {L.in(0), min, max});
}

// ---- shapes

// A Reshape of x (shape in, out in both passes) to out. With dynamic_batch, a dim of the target
// that follows the batch copies the input's dim where the two are one (0), or is inferred (-1)
// when it is the only one left; the target is then checked against the second pass.
std::string reshape_to(Lowering& L, const std::string& x, const Shape& in, const Shape& out,
                       const Shape& in_b, const Shape& out_b) {
  const std::vector<bool> in_dyn = dims_that_differ(in, in_b);
  const std::vector<bool> out_dyn = dims_that_differ(out, out_b);
  Ints target = out;
  std::vector<std::size_t> inferred;
  std::vector<bool> copied(out.size(), false);
  for (std::size_t d = 0; d < out.size(); ++d) {
    if (!out_dyn[d]) continue;
    if (d < in.size() && in_dyn[d] && in[d] == out[d] && in_b[d] == out_b[d]) {
      target[d] = 0;
      copied[d] = true;
    } else {
      target[d] = -1;
      inferred.push_back(d);
    }
  }
  const bool copies = std::find(copied.begin(), copied.end(), true) != copied.end();
  // The target ONNX would resolve for the second pass must be its shape.
  bool ok = inferred.size() <= 1;
  if (ok) {
    Shape resolved = target;
    std::int64_t known = 1, count = 1;
    for (const std::int64_t v : in_b) count *= v;
    for (std::size_t d = 0; d < target.size(); ++d) {
      if (copied[d]) resolved[d] = in_b[d];
      if (target[d] != -1) known *= resolved[d];
    }
    if (!inferred.empty()) resolved[inferred[0]] = known == 0 ? 0 : count / known;
    ok = resolved == out_b;
  }
  if (!ok)
    L.fail("a reshape that keeps the batch size in one dim of its target (dynamic_batch)",
           fmt::format("{} to {} (and {} to {} at another batch size)", to_string(in),
                       to_string(out), to_string(in_b), to_string(out_b)));
  std::vector<NodeAttr> attrs;
  bool zero_extent = false;
  for (std::size_t d = 0; d < target.size(); ++d)
    zero_extent = zero_extent || (target[d] == 0 && !copied[d]);
  if (zero_extent) {
    // A 0 in ONNX's target copies the input's dim unless allowzero (opset 14) says otherwise,
    // which then holds for every 0 of the target.
    if (copies)
      L.fail("a reshape that keeps the batch size without zero extents (dynamic_batch)",
             fmt::format("target {}", to_string(out)));
    if (L.opset() < 14)
      L.fail("a reshape to a shape without zero extents at opset 13 (opset 14's allowzero)",
             fmt::format("target {}", to_string(out)));
    attrs.push_back({"allowzero", std::int64_t{1}});
  }
  return L.node("Reshape", {x, L.graph().constant_i64(target)}, attrs);
}

void lower_reshape(Lowering& L) {
  L.result = reshape_to(L, L.in(0), L.input(0).shape(), L.event().output.shape(),
                        L.other().inputs.at(0).shape(), L.other().output.shape());
}

void lower_flatten(Lowering& L) {
  const Tensor& x = L.input(0);
  if (L.i64("start_dim") == 1 && L.i64("end_dim") == x.dim() - 1) {
    L.result = L.node("Flatten", {L.in(0)}, {{"axis", std::int64_t{1}}});
    return;
  }
  lower_reshape(L);
}

void lower_permute(Lowering& L) {
  L.result = L.node("Transpose", {L.in(0)}, {{"perm", L.ints("perm")}});
}

void lower_squeeze(Lowering& L) {
  L.result = L.node("Squeeze", {L.in(0), L.graph().constant_i64(L.ints("axes"))});
}

void lower_unsqueeze(Lowering& L) {
  L.result = L.node("Unsqueeze", {L.in(0), L.graph().constant_i64({L.i64("dim")})});
}

void lower_slice(Lowering& L) {
  GraphBuilder& g = L.graph();
  L.result =
      L.node("Slice", {L.in(0), g.constant_i64({L.i64("start")}), g.constant_i64({L.i64("end")}),
                       g.constant_i64({L.i64("dim")}), g.constant_i64({L.i64("step")})});
}

// Expand broadcasts both ways, so a target dim of 1 keeps the input's: that is how a dim that
// follows the batch, where x already has it, stays symbolic.
void lower_expand(Lowering& L) {
  const Tensor& x = L.input(0);
  const Shape& out = L.event().output.shape();
  const Shape& out_b = L.other().output.shape();
  const std::vector<bool> out_dyn = dims_that_differ(out, out_b);
  const Shape& in = x.shape();
  const Shape& in_b = L.other().inputs.at(0).shape();
  Ints target = out;
  const std::size_t lead = out.size() - in.size();
  for (std::size_t d = 0; d < out.size(); ++d) {
    if (!out_dyn[d]) continue;
    if (d < lead || in[d - lead] != out[d] || in_b[d - lead] != out_b[d])
      L.fail("an expand that broadcasts only dims of a fixed size (dynamic_batch)",
             fmt::format("{} to {} (and {} to {} at another batch size)", to_string(in),
                         to_string(out), to_string(in_b), to_string(out_b)));
    target[d] = 1;
  }
  L.result = L.node("Expand", {L.in(0), L.graph().constant_i64(target)});
}

void lower_index_select(Lowering& L) {
  L.result = L.node("Gather", {L.in(0), L.in(1)}, {{"axis", L.i64("dim")}});
}

void lower_cat(Lowering& L) {
  std::vector<std::string> inputs;
  for (std::size_t i = 0; i < L.inputs(); ++i) inputs.push_back(L.in(i));
  L.result = L.node("Concat", inputs, {{"axis", L.i64("dim")}});
}

void lower_pad(Lowering& L) {
  const Tensor& x = L.input(0);
  const Ints widths = L.ints("widths");
  const std::string mode = L.str("mode");
  const auto r = static_cast<std::size_t>(x.dim());
  const std::size_t k = widths.size() / 2;
  GraphBuilder& g = L.graph();
  if (mode == "circular") {
    // No wrap mode before opset 19: per padded dim, its last l positions, x, its first h.
    std::string cur = L.in(0);
    for (std::size_t i = 0; i < k; ++i) {
      const std::int64_t l = widths[2 * i], h = widths[2 * i + 1];
      if (l == 0 && h == 0) continue;
      const auto d = static_cast<std::int64_t>(r - k + i);
      std::vector<std::string> parts;
      if (l > 0)
        parts.push_back(L.node(
            "Slice", {cur, g.constant_i64({-l}), g.constant_i64({kMaxI64}), g.constant_i64({d})}));
      parts.push_back(cur);
      if (h > 0)
        parts.push_back(
            L.node("Slice", {cur, g.constant_i64({0}), g.constant_i64({h}), g.constant_i64({d})}));
      cur = L.node("Concat", parts, {{"axis", d}});
    }
    L.result = cur == L.in(0) ? L.node("Identity", {cur}) : cur;
    return;
  }
  Ints pads(2 * r, 0);
  for (std::size_t i = 0; i < k; ++i) {
    pads[r - k + i] = widths[2 * i];
    pads[2 * r - k + i] = widths[2 * i + 1];
  }
  std::vector<std::string> inputs{L.in(0), g.constant_i64(pads)};
  std::string onnx_mode = mode;
  if (mode == "constant")
    inputs.push_back(g.constant_scalar(L.f64("value"), x.dtype()));
  else if (mode == "replicate")
    onnx_mode = "edge";
  else if (mode != "reflect")
    L.fail("pad mode constant, reflect, replicate or circular", fmt::format("mode '{}'", mode));
  L.result = L.node("Pad", inputs, {{"mode", onnx_mode}});
}

void lower_flip(Lowering& L) {
  const Ints dims = L.ints("dims");
  if (dims.empty()) {
    L.result = L.node("Identity", {L.in(0)});
    return;
  }
  GraphBuilder& g = L.graph();
  L.result = L.node("Slice", {L.in(0), g.constant_i64(Ints(dims.size(), -1)),
                              g.constant_i64(Ints(dims.size(), kMinI64)), g.constant_i64(dims),
                              g.constant_i64(Ints(dims.size(), -1))});
}

// ---- softmax, resampling, dropout

void lower_softmax(Lowering& L) {
  if (L.input(0).dim() == 0)
    L.fail("a softmax over a tensor with dims (ONNX's Softmax needs an axis)", "a 0-d tensor");
  L.result = L.node(L.event().op == "softmax" ? "Softmax" : "LogSoftmax", {L.in(0)},
                    {{"axis", L.i64("dim")}});
}

// Resize with the coordinate rule of each mode (resample.h):
//   nearest        src = floor(o * scale)          asymmetric, floor
//   nearest-exact  src = floor((o + 0.5) * scale)  half_pixel ((o + 0.5) * scale - 0.5), rounded
//                                                  half up (round_prefer_ceil): the same floor
//   linear modes   half_pixel (clamped at 0, as ONNX Runtime and ours), or align_corners
// The scale is 1 / scale_factor where one was given (Resize's scales), else in / out (sizes).
void lower_interpolate(Lowering& L) {
  const Tensor& x = L.input(0);
  const Tensor& y = L.event().output;
  const std::string mode = L.str("mode");
  std::vector<NodeAttr> attrs;
  if (mode == "nearest") {
    attrs = {{"mode", std::string("nearest")},
             {"coordinate_transformation_mode", std::string("asymmetric")},
             {"nearest_mode", std::string("floor")}};
  } else if (mode == "nearest-exact") {
    attrs = {{"mode", std::string("nearest")},
             {"coordinate_transformation_mode", std::string("half_pixel")},
             {"nearest_mode", std::string("round_prefer_ceil")}};
  } else {
    attrs = {{"mode", std::string("linear")},
             {"coordinate_transformation_mode",
              std::string(L.i64("align_corners") != 0 ? "align_corners" : "half_pixel")}};
  }
  const std::vector<double> scales = L.doubles("scales");
  const Ints size = L.ints("size");
  GraphBuilder& g = L.graph();
  // A scale factor sets the source coordinates (scale = 1 / factor), so it goes to Resize as a
  // scale, in float32: from the float32 at or below it, the first whose output size
  // floor(in * scale) is the traced one, rounded to float32 or not (5 * 1.4f is 6.99999988, 7
  // only once rounded: 1.4 goes as the next float32 up). Without factors the sizes set the scale
  // (in / out).
  const bool by_factor =
      !scales.empty() && std::all_of(scales.begin(), scales.end(), [](double f) { return f > 0; });
  if (by_factor) {
    std::vector<float> factors{1.0f, 1.0f};
    for (std::size_t d = 0; d < scales.size(); ++d) {
      const std::int64_t in = x.size(static_cast<std::int64_t>(d) + 2);
      const auto gives_size = [&](float f) {
        const double exact = std::floor(static_cast<double>(in) * static_cast<double>(f));
        const float rounded = std::floor(static_cast<float>(in) * f);
        return exact == static_cast<double>(size[d]) && static_cast<double>(rounded) == exact;
      };
      auto f = static_cast<float>(scales[d]);
      if (static_cast<double>(f) > scales[d]) f = std::nextafter(f, 0.0f);
      for (int step = 0; step < 8 && !gives_size(f); ++step)
        f = std::nextafter(f, std::numeric_limits<float>::infinity());
      if (!gives_size(f))
        L.fail("a scale factor whose output size ONNX's Resize computes alike",
               fmt::format("scale_factor {} for input size {} and output size {} in spatial dim {}",
                           scales[d], in, size[d], d));
      factors.push_back(f);
    }
    L.result = L.node("Resize", {L.in(0), "", g.constant_f32(factors)}, attrs);
    return;
  }
  std::string sizes;
  const std::vector<bool>& dyn = L.in_dynamic(0);
  if (std::find(dyn.begin(), dyn.end(), true) == dyn.end()) {
    sizes = g.constant_i64(y.shape());
  } else {
    // The batch (and channels) from x's shape at run time, the traced spatial sizes after.
    const std::string shape = L.node("Shape", {L.in(0)});
    const std::string lead =
        L.node("Slice", {shape, g.constant_i64({0}), g.constant_i64({2}), g.constant_i64({0})});
    sizes = L.node("Concat", {lead, g.constant_i64(size)}, {{"axis", std::int64_t{0}}});
  }
  L.result = L.node("Resize", {L.in(0), "", "", sizes}, attrs);
}

void lower_dropout(Lowering& L) {
  L.fail("no dropout mask (dropout in eval mode is the identity; a drawn mask has no ONNX form)",
         fmt::format("a mask drawn with p = {}", L.f64("p")));
}

const std::map<std::string_view, LowerFn>& lowerings() {
  static const std::map<std::string_view, LowerFn> table = [] {
    std::map<std::string_view, LowerFn> t;
    for (const char* op : {"conv", "conv1d", "conv2d", "conv3d", "conv_general"})
      t[op] = lower_conv;
    for (const char* op :
         {"conv_transpose", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"})
      t[op] = lower_conv_transpose;
    for (const char* op :
         {"max_pool", "max_pool1d", "max_pool2d", "max_pool3d", "max_pool_with_indices"})
      t[op] = lower_max_pool;
    for (const char* op : {"avg_pool", "avg_pool1d", "avg_pool2d", "avg_pool3d"})
      t[op] = lower_avg_pool;
    t["adaptive_avg_pool"] = lower_adaptive_avg;
    t["global_avg_pool"] = lower_adaptive_avg;
    t["adaptive_max_pool"] = lower_adaptive_max;
    t["adaptive_max_pool_with_indices"] = lower_adaptive_max;
    t["linear"] = lower_linear;
    t["matmul"] = lower_matmul;
    t["batch_norm"] = lower_batch_norm;
    for (const auto& [op, type] : unary_ops()) t[op] = lower_unary;
    for (const auto& [op, type] : binary_ops()) t[op] = lower_binary;
    for (const char* op : {"add_scalar", "sub_scalar", "mul_scalar", "div_scalar", "pow_scalar",
                           "rsub_scalar", "rdiv_scalar"})
      t[op] = lower_scalar;
    t["leaky_relu"] = lower_leaky_relu;
    t["clamp"] = lower_clamp;
    t["reshape"] = lower_reshape;
    t["view"] = lower_reshape;
    t["flatten"] = lower_flatten;
    t["permute"] = lower_permute;
    t["squeeze"] = lower_squeeze;
    t["unsqueeze"] = lower_unsqueeze;
    t["slice"] = lower_slice;
    t["expand"] = lower_expand;
    t["index_select"] = lower_index_select;
    t["cat"] = lower_cat;
    t["pad"] = lower_pad;
    t["flip"] = lower_flip;
    t["softmax"] = lower_softmax;
    t["log_softmax"] = lower_softmax;
    t["interpolate"] = lower_interpolate;
    for (const char* op : {"dropout", "feature_dropout", "dropout1d", "dropout2d", "dropout3d"})
      t[op] = lower_dropout;
    return t;
  }();
  return table;
}

}  // namespace

std::string Lowering::node(std::string_view op_type, const std::vector<std::string>& inputs,
                           const std::vector<NodeAttr>& attrs) {
  return graph_.node(op_type, inputs, attrs, op_.module);
}

const trace::Attr& Lowering::attr(std::string_view key) const {
  for (const auto& [name, value] : op_.event.attrs)
    if (name == key) return value;
  CT_FAIL("onnx::export_model: expected attribute '{}' in the trace of {}, got none", key,
          where(op_));
}

bool Lowering::has(std::string_view key) const {
  return std::any_of(op_.event.attrs.begin(), op_.event.attrs.end(),
                     [&](const auto& a) { return a.first == key; });
}

namespace {

template <class T>
const T& attr_as(const trace::Attr& a, std::string_view key, const TracedOp& op,
                 std::string_view type) {
  const T* v = std::get_if<T>(&a);
  CT_CHECK(v != nullptr, "onnx::export_model: expected attribute '{}' of {} to be {}, got another",
           key, where(op), type);
  return *v;
}

}  // namespace

std::int64_t Lowering::i64(std::string_view key) const {
  return attr_as<std::int64_t>(attr(key), key, op_, "an integer");
}
std::vector<std::int64_t> Lowering::ints(std::string_view key) const {
  return attr_as<std::vector<std::int64_t>>(attr(key), key, op_, "integers");
}
double Lowering::f64(std::string_view key) const {
  return attr_as<double>(attr(key), key, op_, "a number");
}
std::vector<double> Lowering::doubles(std::string_view key) const {
  return attr_as<std::vector<double>>(attr(key), key, op_, "numbers");
}
std::string Lowering::str(std::string_view key) const {
  return attr_as<std::string>(attr(key), key, op_, "a string");
}

void Lowering::fail(std::string_view expected, std::string_view got) const {
  CT_FAIL("onnx::export_model: expected {}, got {} in {}", expected, got, where(op_));
}

LowerFn find_lowering(std::string_view op) {
  const auto& table = lowerings();
  const auto it = table.find(op);
  return it == table.end() ? nullptr : it->second;
}

bool batch_dependent_attr(std::string_view op, std::string_view attr) {
  return attr == "shape" && (op == "reshape" || op == "view" || op == "expand");
}

}  // namespace convtape::onnx::detail
