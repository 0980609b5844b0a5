// layer_norm, group_norm and instance_norm by composition of differentiable ops: the moments of
// x over a set of dims (mean, x - mean, the biased variance), then (x - mean) / sqrt(var + eps)
// and the affine map. Running statistics are updated under NoGradGuard. See normalization.h.
#include "ops/normalization.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/autograd.h"
#include "core/checked.h"
#include "ops/detail.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "ops/shape.h"

namespace convtape {

namespace {

// The defined tensors among ts: one floating dtype and one device.
void check_floating(const char* op, std::initializer_list<Tensor> ts) {
  std::vector<Tensor> defined;
  for (const Tensor& t : ts)
    if (t.defined()) defined.push_back(t);
  detail::check_floating_same(op, defined);
}

// An optional per-channel (or per-element) tensor: none, or exactly `shape`.
void check_optional_shape(const char* op, const char* what, const Tensor& t, const Shape& shape,
                          const char* meaning) {
  CT_CHECK(!t.defined() || t.shape() == shape, "{}: expected {} of shape {} ({}), got {}", op, what,
           to_string(shape), meaning, t.defined() ? to_string(t.shape()) : "");
}

// (x - mean) / sqrt(var + eps) over dims, and the parts of it the callers reuse.
struct Normalized {
  Tensor mean, var, y;
};

Normalized normalize(const Tensor& x, const std::vector<std::int64_t>& dims, double eps) {
  Normalized n;
  n.mean = mean(x, dims, /*keepdim=*/true);
  const Tensor centred = sub(x, n.mean);
  n.var = mean(mul(centred, centred), dims, /*keepdim=*/true);
  n.y = div(centred, sqrt(add(n.var, eps)));
  return n;
}

// [1, C, 1, ...] with x's rank: a per-channel tensor as it broadcasts against x [N, C, *].
Shape per_channel_shape(const Tensor& x) {
  Shape s(static_cast<std::size_t>(x.dim()), 1);
  s[1] = x.size(1);
  return s;
}

Tensor channel_affine(const Tensor& y, const Tensor& x, const Tensor& weight, const Tensor& bias) {
  const Shape s = per_channel_shape(x);
  Tensor out = y;
  if (weight.defined()) out = mul(out, reshape(weight, s));
  if (bias.defined()) out = add(out, reshape(bias, s));
  return out;
}

}  // namespace

Tensor layer_norm(const Tensor& x, const std::vector<std::int64_t>& normalized_shape,
                  const Tensor& weight, const Tensor& bias, double eps) {
  detail::check_defined("layer_norm", x);
  check_floating("layer_norm", {x, weight, bias});
  const Shape s(normalized_shape.begin(), normalized_shape.end());
  const auto k = static_cast<std::int64_t>(s.size());
  CT_CHECK(k > 0, "layer_norm: expected a non-empty normalized_shape, got []");
  bool trailing = x.dim() >= k;
  for (std::int64_t i = 0; trailing && i < k; ++i)
    trailing = x.size(x.dim() - k + i) == s[static_cast<std::size_t>(i)];
  CT_CHECK(trailing, "layer_norm: expected input of shape [*, {}] (normalized_shape {}), got {}",
           fmt::join(s, ", "), to_string(s), to_string(x.shape()));
  check_optional_shape("layer_norm", "weight", weight, s, "normalized_shape");
  check_optional_shape("layer_norm", "bias", bias, s, "normalized_shape");
  std::vector<std::int64_t> dims;
  for (std::int64_t d = x.dim() - k; d < x.dim(); ++d) dims.push_back(d);
  Tensor y = normalize(x, dims, eps).y;
  // weight and bias have the trailing shape, so they broadcast as they are.
  if (weight.defined()) y = mul(y, weight);
  if (bias.defined()) y = add(y, bias);
  return y;
}

Tensor group_norm(const Tensor& x, std::int64_t num_groups, const Tensor& weight,
                  const Tensor& bias, double eps) {
  detail::check_defined("group_norm", x);
  check_floating("group_norm", {x, weight, bias});
  CT_CHECK(x.dim() >= 2, "group_norm: expected input [N, C, *], got {}", to_string(x.shape()));
  const std::int64_t n = x.size(0), c = x.size(1);
  CT_CHECK(num_groups > 0 && c % num_groups == 0,
           "group_norm: expected num_groups > 0 dividing the channels C = {}, got num_groups = {} "
           "(input {})",
           c, num_groups, to_string(x.shape()));
  check_optional_shape("group_norm", "weight", weight, {c}, "the channels of the input");
  check_optional_shape("group_norm", "bias", bias, {c}, "the channels of the input");
  std::int64_t inner = c / num_groups;
  for (std::int64_t d = 2; d < x.dim(); ++d)
    inner = checked::mul(inner, x.size(d), "group_norm", "the values per group");
  const Tensor grouped = reshape(x, {n, num_groups, inner});
  const Tensor y = reshape(normalize(grouped, {2}, eps).y, x.shape());
  return channel_affine(y, x, weight, bias);
}

Tensor instance_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                     const Tensor& weight, const Tensor& bias, bool use_input_stats,
                     double momentum, double eps) {
  detail::check_defined("instance_norm", x);
  check_floating("instance_norm", {x, weight, bias, running_mean, running_var});
  CT_CHECK(x.dim() >= 2, "instance_norm: expected input [N, C, *], got {}", to_string(x.shape()));
  const std::int64_t n = x.size(0), c = x.size(1);
  CT_CHECK(running_mean.defined() == running_var.defined(),
           "instance_norm: expected running_mean and running_var both given or both none, got "
           "only {}",
           running_mean.defined() ? "running_mean" : "running_var");
  const bool tracked = running_mean.defined();
  CT_CHECK(use_input_stats || tracked,
           "instance_norm: expected running_mean and running_var when use_input_stats is false, "
           "got none");
  for (const auto& [what, t] : {std::pair<const char*, const Tensor&>{"weight", weight},
                                {"bias", bias},
                                {"running_mean", running_mean},
                                {"running_var", running_var}})
    check_optional_shape("instance_norm", what, t, {c}, "the channels of the input");
  const Shape per_channel = per_channel_shape(x);
  if (!use_input_stats) {
    const Tensor y = div(sub(x, reshape(running_mean, per_channel)),
                         sqrt(add(reshape(running_var, per_channel), eps)));
    return channel_affine(y, x, weight, bias);
  }
  std::int64_t count = 1;  // values per instance (sample and channel)
  for (std::int64_t d = 2; d < x.dim(); ++d)
    count = checked::mul(count, x.size(d), "instance_norm", "the spatial values");
  CT_CHECK(count > 1,
           "instance_norm: expected more than 1 spatial value per channel when using input "
           "statistics, got input {}",
           to_string(x.shape()));
  std::vector<std::int64_t> dims;
  for (std::int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
  const Normalized norm = normalize(x, dims, eps);
  if (tracked && n > 0) {
    NoGradGuard no_grad;
    const double unbias = static_cast<double>(count) / static_cast<double>(count - 1);
    const Tensor batch_mean = mean(reshape(norm.mean.detach(), {n, c}), {0});
    const Tensor batch_var = mean(reshape(norm.var.detach(), {n, c}), {0});
    Tensor(running_mean).copy_(add(mul(running_mean, 1.0 - momentum), mul(batch_mean, momentum)));
    Tensor(running_var)
        .copy_(add(mul(running_var, 1.0 - momentum), mul(batch_var, momentum * unbias)));
  }
  return channel_affine(norm.y, x, weight, bias);
}

}  // namespace convtape
