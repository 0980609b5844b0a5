// Comparison and selection front ends: checks, the kernels of core/kernels.def's "comparison and
// selection" section, and the tape entries of where, maximum, minimum, masked_fill and topk
// (masked_select is expand + index_select, differentiable through them).
#include "ops/compare.h"

#include <cmath>
#include <string_view>

#include "core/autograd.h"
#include "core/checked.h"
#include "ops/backend.h"
#include "ops/detail.h"
#include "ops/elementwise.h"
#include "ops/factory.h"
#include "ops/index_maps.h"
#include "ops/reduce.h"
#include "ops/shape.h"

namespace convtape {

namespace {

// Defined, of one dtype and device, broadcastable.
void check_pair(std::string_view op, const Tensor& a, const Tensor& b) {
  detail::check_defined(op, a);
  detail::check_defined(op, b);
  CT_CHECK(a.dtype() == b.dtype(),
           "{}: expected operands of one dtype, got {} and {} (convert one with to(dtype))", op,
           dtype_name(a.dtype()), dtype_name(b.dtype()));
  detail::check_same_device(op, {a, b});
  broadcast_shapes(a.shape(), b.shape(), op);
}

// A 0-d tensor of x's dtype and device holding value (checked to fit an int64 x).
Tensor scalar_like(std::string_view op, const Tensor& x, double value) {
  detail::check_element_value(op, value, x.dtype());
  return full({}, value, x.options());
}

// cond as a mask of dtype: itself when it has it, else 1 / 0 from cond != 0 (a float64 1e-300 would
// become a float32 0 by plain conversion).
Tensor mask_as(const Tensor& cond, DType dtype) {
  if (cond.dtype() == dtype) return cond.detach();
  return backend::compare(Compare::Ne, cond, full({}, 0.0, cond.options())).to(dtype);
}

Tensor compare_tensors(std::string_view op, Compare c, const Tensor& a, const Tensor& b) {
  check_pair(op, a, b);
  return backend::compare(c, a, b);
}

// x (int64) op s for a double s that no int64 equals: a constant mask, or a comparison with the
// integer next to s (x < 2.5 is x <= 2, x > 2.5 is x >= 3).
Tensor compare_int64_inexact(Compare c, const Tensor& x, double s) {
  const auto constant = [&](bool v) { return full(x.shape(), v ? 1.0 : 0.0, x.options()); };
  if (std::isnan(s) || c == Compare::Eq || c == Compare::Ne) return constant(c == Compare::Ne);
  constexpr double lo = -0x1p63, hi = 0x1p63;  // int64 holds [lo, hi)
  if (c == Compare::Lt || c == Compare::Le) {
    const double f = std::floor(s);
    if (f >= hi) return constant(true);
    if (f < lo) return constant(false);
    return backend::compare(Compare::Le, x, full({}, f, x.options()));
  }
  const double f = std::ceil(s);
  if (f <= lo) return constant(true);
  if (f >= hi) return constant(false);
  return backend::compare(Compare::Ge, x, full({}, f, x.options()));
}

Tensor compare_scalar(std::string_view op, Compare c, const Tensor& a, double b) {
  detail::check_defined(op, a);
  if (a.dtype() == kInt64 && !(b >= -0x1p63 && b < 0x1p63 && std::floor(b) == b))
    return compare_int64_inexact(c, a, b);
  return backend::compare(c, a, full({}, b, a.options()));
}

// The gradients of maximum (is_max) or minimum, PyTorch's formulas: g = dy / 2 where a == b, dy
// elsewhere; da = g but 0 where a loses (a < b for maximum), db = g but 0 where b loses.
std::vector<Tensor> extreme_grads(const Tensor& a, const Tensor& b, const Tensor& dy,
                                  const GradMask& need, bool is_max) {
  if (autograd::creating_graph()) {
    // The same selects as ops that record (the masks are constants: comparisons do not record).
    const Tensor g = where(eq(a, b), mul(dy, 0.5), dy);
    return {
        need[0] ? detail::sum_to(where(is_max ? lt(a, b) : gt(a, b), 0.0, g), a.shape()) : Tensor(),
        need[1] ? detail::sum_to(where(is_max ? gt(a, b) : lt(a, b), 0.0, g), b.shape())
                : Tensor()};
  }
  const Tensor zero = full({}, 0.0, dy.options());
  const Tensor g = backend::where(backend::compare(Compare::Eq, a, b),
                                  backend::unary(Unary::MulScalar, dy, 0.5), dy);
  const Compare a_loses = is_max ? Compare::Lt : Compare::Gt;
  const Compare b_loses = is_max ? Compare::Gt : Compare::Lt;
  return {
      need[0] ? detail::sum_to(backend::where(backend::compare(a_loses, a, b), zero, g), a.shape())
              : Tensor(),
      need[1] ? detail::sum_to(backend::where(backend::compare(b_loses, a, b), zero, g), b.shape())
              : Tensor()};
}

Tensor extreme(std::string_view op, const Tensor& a, const Tensor& b, bool is_max) {
  check_pair(op, a, b);
  Tensor y = backend::compare(is_max ? Compare::Max : Compare::Min, a, b);
  record(y, op, {a, b}, {a, b}, [is_max](const Saved& s, const Tensor& dy, const GradMask& need) {
    return extreme_grads(s[0], s[1], dy, need, is_max);
  });
  return y;
}

// x != 0 as float64 0 / 1, for counting with sum (exact below 2^53 elements).
Tensor nonzero_f64(const Tensor& x) {
  return backend::compare(Compare::Ne, x, full({}, 0.0, x.options())).to(kFloat64);
}

}  // namespace

Tensor eq(const Tensor& a, const Tensor& b) {
  return compare_tensors("eq", Compare::Eq, a, b);
}
Tensor ne(const Tensor& a, const Tensor& b) {
  return compare_tensors("ne", Compare::Ne, a, b);
}
Tensor lt(const Tensor& a, const Tensor& b) {
  return compare_tensors("lt", Compare::Lt, a, b);
}
Tensor le(const Tensor& a, const Tensor& b) {
  return compare_tensors("le", Compare::Le, a, b);
}
Tensor gt(const Tensor& a, const Tensor& b) {
  return compare_tensors("gt", Compare::Gt, a, b);
}
Tensor ge(const Tensor& a, const Tensor& b) {
  return compare_tensors("ge", Compare::Ge, a, b);
}
Tensor eq(const Tensor& a, double b) {
  return compare_scalar("eq", Compare::Eq, a, b);
}
Tensor ne(const Tensor& a, double b) {
  return compare_scalar("ne", Compare::Ne, a, b);
}
Tensor lt(const Tensor& a, double b) {
  return compare_scalar("lt", Compare::Lt, a, b);
}
Tensor le(const Tensor& a, double b) {
  return compare_scalar("le", Compare::Le, a, b);
}
Tensor gt(const Tensor& a, double b) {
  return compare_scalar("gt", Compare::Gt, a, b);
}
Tensor ge(const Tensor& a, double b) {
  return compare_scalar("ge", Compare::Ge, a, b);
}

Tensor logical_and(const Tensor& a, const Tensor& b) {
  return compare_tensors("logical_and", Compare::And, a, b);
}
Tensor logical_or(const Tensor& a, const Tensor& b) {
  return compare_tensors("logical_or", Compare::Or, a, b);
}
Tensor logical_not(const Tensor& x) {
  detail::check_defined("logical_not", x);
  return backend::compare(Compare::Eq, x, full({}, 0.0, x.options()));
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  constexpr std::string_view op = "where";
  detail::check_defined(op, cond, "condition");
  check_pair(op, a, b);
  detail::check_same_device(op, {a, cond});
  broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), op), b.shape(), op);
  const Tensor c = mask_as(cond, a.dtype());
  Tensor y = backend::where(c, a, b);
  const Shape sa = a.shape(), sb = b.shape();
  record(y, op, {a, b}, {c}, [sa, sb](const Saved& s, const Tensor& dy, const GradMask& need) {
    if (autograd::creating_graph())
      return std::vector<Tensor>{need[0] ? detail::sum_to(where(s[0], dy, 0.0), sa) : Tensor(),
                                 need[1] ? detail::sum_to(where(s[0], 0.0, dy), sb) : Tensor()};
    const Tensor zero = full({}, 0.0, dy.options());
    return std::vector<Tensor>{
        need[0] ? detail::sum_to(backend::where(s[0], dy, zero), sa) : Tensor(),
        need[1] ? detail::sum_to(backend::where(s[0], zero, dy), sb) : Tensor()};
  });
  return y;
}

Tensor where(const Tensor& cond, const Tensor& a, double b) {
  detail::check_defined("where", a);
  return where(cond, a, scalar_like("where", a, b));
}

Tensor where(const Tensor& cond, double a, const Tensor& b) {
  detail::check_defined("where", b);
  return where(cond, scalar_like("where", b, a), b);
}

Tensor maximum(const Tensor& a, const Tensor& b) {
  return extreme("maximum", a, b, true);
}
Tensor minimum(const Tensor& a, const Tensor& b) {
  return extreme("minimum", a, b, false);
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  constexpr std::string_view op = "masked_fill";
  detail::check_defined(op, x);
  detail::check_defined(op, mask, "mask");
  detail::check_same_device(op, {x, mask});
  broadcast_shapes(x.shape(), mask.shape(), op);
  const Tensor v = scalar_like(op, x, value);
  const Tensor c = mask_as(mask, x.dtype());
  Tensor y = backend::where(c, v, x);
  const Shape sx = x.shape();
  record(y, op, {x}, {c}, [sx](const Saved& s, const Tensor& dy, const GradMask&) {
    if (autograd::creating_graph())
      return std::vector<Tensor>{detail::sum_to(where(s[0], 0.0, dy), sx)};
    return std::vector<Tensor>{
        detail::sum_to(backend::where(s[0], full({}, 0.0, dy.options()), dy), sx)};
  });
  return y;
}

Tensor masked_select(const Tensor& x, const Tensor& mask) {
  constexpr std::string_view op = "masked_select";
  detail::check_defined(op, x);
  detail::check_defined(op, mask, "mask");
  detail::check_same_device(op, {x, mask});
  const Shape shape = broadcast_shapes(x.shape(), mask.shape(), op);
  checked::numel(shape, op);
  const Tensor positions = backend::nonzero_flat(mask.detach().expand(shape).contiguous());
  return index_select(reshape(expand(x, shape), {-1}), 0, positions);
}

TopkResult topk(const Tensor& x, std::int64_t k, std::int64_t dim, bool largest, bool /*sorted*/) {
  constexpr std::string_view op = "topk";
  detail::check_defined(op, x);
  const std::int64_t r = x.dim();
  const std::int64_t d = wrap_dim(dim, r, op);
  CT_CHECK(r > 0 || k == 1, "topk: expected k = 1 for a 0-d input, got {}", k);
  const std::int64_t n = r == 0 ? 1 : x.size(d);
  CT_CHECK(k >= 0 && k <= n, "topk: expected k in [0, {}] (the size of dim {} of shape {}), got {}",
           n, d, to_string(x.shape()), k);
  Shape out_shape = x.shape();
  if (r > 0) out_shape[static_cast<std::size_t>(d)] = k;
  const Shape xshape = x.shape();
  TopkResult res;
  if (x.numel() == 0 || k == 0) {
    res.values = empty(out_shape, x.options());
    res.indices = empty(out_shape, TensorOptions(kInt64).device(x.device()));
    record(res.values, op, {x}, {}, [xshape](const Saved&, const Tensor& dy, const GradMask&) {
      // For create_graph the zeros depend on dy (empty, so its sum is 0), to stay on the tape.
      Tensor g = zeros(xshape, dy.options());
      return std::vector<Tensor>{autograd::creating_graph() ? add(g, sum(dy)) : g};
    });
    return res;
  }
  // The kernel sees rows of n contiguous elements: dim swapped with the last one (a 0-d x as [1]);
  // the same swap takes its results (and the gradients) back.
  const std::int64_t last = r == 0 ? 0 : r - 1;
  const auto to_rows = [r, d, last](const Tensor& t) {
    return (r == 0 ? t.reshape({1}) : t).transpose(d, last).contiguous();
  };
  const auto from_rows = [r, d, last](const Tensor& t, const Shape& shape) {
    const Tensor u = t.transpose(d, last).contiguous();
    return r == 0 ? u.reshape(shape) : u;
  };
  const Tensor xt = to_rows(x.detach());
  const Shape tshape = xt.shape();
  Shape kshape = tshape;
  kshape.back() = k;
  const std::int64_t rows = xt.numel() / n;
  Tensor idx;
  const Tensor v = backend::topk(xt.reshape({rows, n}), k, largest, &idx);
  res.values = from_rows(v.reshape(kshape), out_shape);
  res.indices = from_rows(idx.reshape(kshape), out_shape);
  record(res.values, op, {x}, {idx},
         [to_rows, from_rows, xshape, tshape, rows, n, k](const Saved& s, const Tensor& dy,
                                                          const GradMask&) {
           // d x = dy scattered to the indices of each row (distinct, so accumulating adds to 0).
           const Tensor g =
               autograd::creating_graph()
                   ? detail::plane_scatter(to_rows(dy).reshape({rows, 1, k}),
                                           s[0].reshape({rows, 1, k}), Shape{n})
                   : backend::index_scatter(to_rows(dy).reshape({rows, 1, k}),
                                            s[0].reshape({rows, 1, k}), Shape{n}, true);
           return std::vector<Tensor>{from_rows(g.reshape(tshape), xshape)};
         });
  return res;
}

TopkResult sort(const Tensor& x, std::int64_t dim, bool descending) {
  detail::check_defined("sort", x);
  const std::int64_t d = wrap_dim(dim, x.dim(), "sort");
  return topk(x, x.dim() == 0 ? 1 : x.size(d), d, descending, true);
}

Tensor any(const Tensor& x) {
  detail::check_defined("any", x);
  return gt(sum(nonzero_f64(x)), 0.0).to(x.dtype());
}

Tensor any(const Tensor& x, std::int64_t dim, bool keepdim) {
  detail::check_defined("any", x);
  wrap_dim(dim, x.dim(), "any");
  return gt(sum(nonzero_f64(x), {dim}, keepdim), 0.0).to(x.dtype());
}

Tensor all(const Tensor& x) {
  detail::check_defined("all", x);
  return eq(sum(logical_not(nonzero_f64(x))), 0.0).to(x.dtype());
}

Tensor all(const Tensor& x, std::int64_t dim, bool keepdim) {
  detail::check_defined("all", x);
  wrap_dim(dim, x.dim(), "all");
  return eq(sum(logical_not(nonzero_f64(x)), {dim}, keepdim), 0.0).to(x.dtype());
}

Tensor count_nonzero(const Tensor& x) {
  detail::check_defined("count_nonzero", x);
  return sum(nonzero_f64(x)).to(kInt64);
}

Tensor count_nonzero(const Tensor& x, const std::vector<std::int64_t>& dims) {
  detail::check_defined("count_nonzero", x);
  for (const auto d : dims) wrap_dim(d, x.dim(), "count_nonzero");
  return sum(nonzero_f64(x), dims).to(kInt64);
}

}  // namespace convtape
