// Reduction front ends. The reduced dims are brought together (a permute and copy only when they
// are not already adjacent) so that the kernel sees [outer, mid, inner].
#include "ops/reduce.h"

#include <algorithm>
#include <limits>

#include <fmt/ranges.h>

#include "core/autograd.h"
#include "core/checked.h"
#include "ops/backend.h"
#include "ops/compare.h"
#include "ops/detail.h"
#include "ops/elementwise.h"
#include "ops/factory.h"
#include "ops/shape.h"

namespace convtape {

namespace {

struct Plan {
  Tensor x;  // contiguous input in kernel order
  std::int64_t outer = 1, mid = 1, inner = 1;
  // x has no element. No kernel runs then: an empty shape may carry extents beside its zero whose
  // [outer, mid, inner] products overflow. mid is still exact when 0 (an empty reduction).
  bool empty = false;
  Shape keep_shape;                // output with reduced dims kept as 1
  Shape out_shape;                 // output without them
  std::vector<std::int64_t> perm;  // non-empty when x was permuted (kept dims first)
  Shape permuted_shape;
};

std::vector<std::int64_t> all_dims(const Tensor& x) {
  std::vector<std::int64_t> d(static_cast<std::size_t>(x.dim()));
  for (std::size_t i = 0; i < d.size(); ++i) d[i] = static_cast<std::int64_t>(i);
  return d;
}

Plan make_plan(std::string_view op, const Tensor& x, const std::vector<std::int64_t>& dims_in) {
  detail::check_floating_same(op, {x});
  detail::check_same_device(op, {x});
  const std::int64_t r = x.dim();
  std::vector<bool> reduced(static_cast<std::size_t>(r), false);
  for (auto d : dims_in) {
    const auto w = static_cast<std::size_t>(wrap_dim(d, r, op));
    // A scalar accepts dim 0 / -1 (any number of times) and has no flag to read.
    CT_CHECK(r == 0 || !reduced[w], "{}: expected distinct dims, got [{}]", op,
             fmt::join(dims_in, ", "));
    if (r > 0) reduced[w] = true;
  }
  Plan p;
  std::int64_t first = -1, last = -1;
  for (std::int64_t i = 0; i < r; ++i) {
    const auto iu = static_cast<std::size_t>(i);
    p.keep_shape.push_back(reduced[iu] ? 1 : x.size(i));
    if (!reduced[iu]) p.out_shape.push_back(x.size(i));
    if (reduced[iu]) {
      if (first < 0) first = i;
      last = i;
    }
  }
  // The result must be a shape a tensor can have ([2^62, 2^62] from [0, 2^62, 2^62] over dim 0
  // cannot); for a non-empty x every product below is then at most numel(x).
  checked::numel(p.out_shape, op);
  if (x.numel() == 0) {
    Shape reduced_extents;
    for (std::int64_t i = 0; i < r; ++i)
      if (reduced[static_cast<std::size_t>(i)]) reduced_extents.push_back(x.size(i));
    p.empty = true;
    p.mid = checked::try_numel(reduced_extents).value_or(std::numeric_limits<std::int64_t>::max());
    return p;
  }
  bool adjacent = true;
  for (std::int64_t i = first; first >= 0 && i <= last; ++i)
    adjacent = adjacent && reduced[static_cast<std::size_t>(i)];
  if (adjacent) {
    p.x = x.detach().contiguous();
    for (std::int64_t i = 0; i < r; ++i) {
      const auto iu = static_cast<std::size_t>(i);
      (first < 0 || i < first ? p.outer : (i <= last ? p.mid : p.inner)) *= x.size(i);
      (void)iu;
    }
  } else {
    for (std::int64_t i = 0; i < r; ++i)
      if (!reduced[static_cast<std::size_t>(i)]) p.perm.push_back(i);
    for (std::int64_t i = 0; i < r; ++i)
      if (reduced[static_cast<std::size_t>(i)]) p.perm.push_back(i);
    p.x = permute(x.detach(), p.perm).contiguous();
    p.permuted_shape = p.x.shape();
    for (std::int64_t i = 0; i < r; ++i)
      (reduced[static_cast<std::size_t>(i)] ? p.mid : p.outer) *= x.size(i);
  }
  return p;
}

// Maps a gradient laid out as the kernel's [outer, mid, inner] back to x's shape.
Tensor unplan(const Plan& p, const Tensor& g, const Shape& x_shape) {
  if (p.perm.empty()) return reshape(g, x_shape);
  std::vector<std::int64_t> inverse(p.perm.size());
  for (std::size_t i = 0; i < p.perm.size(); ++i)
    inverse[static_cast<std::size_t>(p.perm[i])] = static_cast<std::int64_t>(i);
  return permute(reshape(g, p.permuted_shape), inverse).contiguous();
}

Tensor sum_impl(std::string_view op, const Tensor& x, const std::vector<std::int64_t>& dims,
                bool keepdim, bool average) {
  Plan p = make_plan(op, x, dims);
  const double count = static_cast<double>(p.mid);
  Tensor y;
  if (p.empty) {
    // A sum over nothing is 0 and a mean over nothing NaN (0 / 0), as in PyTorch. The output
    // need not be empty ([0, n] summed over dim 0 is n zeros): its size is checked under op.
    checked::nbytes(p.out_shape, dtype_size(x.dtype()), op);
    y = full(keepdim ? p.keep_shape : p.out_shape,
             average && p.mid == 0 ? std::numeric_limits<double>::quiet_NaN() : 0.0, x.options());
  } else {
    y = backend::reduce(Reduce::Sum, p.x, p.outer, p.mid, p.inner);
    // Divide (not multiply by 1 / n, which rounds twice) so that exact means stay exact.
    if (average) y = backend::unary(Unary::DivScalar, y, count);
    y = reshape(y, keepdim ? p.keep_shape : p.out_shape).detach();
  }
  const Shape keep = p.keep_shape, in = x.shape();
  record(y, op, {x}, {},
         [keep, in, average, count](const Saved&, const Tensor& dy, const GradMask&) {
           Tensor g = expand(reshape(dy, keep), in);
           if (!average) return std::vector<Tensor>{g};
           return std::vector<Tensor>{autograd::creating_graph()
                                          ? div(g, count)
                                          : backend::unary(Unary::DivScalar, g, count)};
         });
  return y;
}

Tensor extreme_impl(std::string_view op, Reduce kind, const Tensor& x,
                    const std::vector<std::int64_t>& dims, bool keepdim) {
  Plan p = make_plan(op, x, dims);
  CT_CHECK(p.mid > 0, "{}: expected a non-empty reduction, got shape {} over dims [{}]", op,
           to_string(x.shape()), fmt::join(dims, ", "));
  const Shape in = x.shape();
  if (p.empty) {  // mid > 0, so the zero is in a kept dim and the result is empty too
    Tensor y = empty(keepdim ? p.keep_shape : p.out_shape, x.options());
    const Shape keep = p.keep_shape;
    record(y, op, {x}, {}, [in, keep](const Saved&, const Tensor& dy, const GradMask&) {
      // x is empty too: for create_graph its (empty) gradient is dy spread over x's shape.
      return std::vector<Tensor>{autograd::creating_graph() ? expand(reshape(dy, keep), in)
                                                            : zeros(in, dy.options())};
    });
    return y;
  }
  Tensor indices;
  Tensor y = backend::reduce(kind, p.x, p.outer, p.mid, p.inner, &indices);
  y = reshape(y, keepdim ? p.keep_shape : p.out_shape).detach();
  auto plan = std::make_shared<Plan>(p);
  plan->x = Tensor();  // backward needs the layout only
  record(y, op, {x}, {indices}, [plan, in](const Saved& s, const Tensor& dy, const GradMask&) {
    if (autograd::creating_graph()) {
      // dy spread over the reduced dims and kept at each slice's extreme element: a select by a
      // constant mask of x's shape (the saved positions scattered), linear in dy.
      const Tensor one = full({plan->outer, plan->inner}, 1.0, dy.options());
      const Tensor mask = unplan(
          *plan, backend::reduce_scatter(one, s[0], plan->outer, plan->mid, plan->inner), in);
      return std::vector<Tensor>{where(mask, expand(reshape(dy, plan->keep_shape), in), 0.0)};
    }
    Tensor g = backend::reduce_scatter(dy.contiguous(), s[0], plan->outer, plan->mid, plan->inner);
    return std::vector<Tensor>{unplan(*plan, g, in)};
  });
  return y;
}

Tensor arg_impl(std::string_view op, Reduce kind, const Tensor& x,
                const std::vector<std::int64_t>& dims, bool keepdim) {
  Plan p = make_plan(op, x, dims);
  CT_CHECK(p.mid > 0, "{}: expected a non-empty reduction, got shape {}", op, to_string(x.shape()));
  if (p.empty)
    return empty(keepdim ? p.keep_shape : p.out_shape, TensorOptions(kInt64).device(x.device()));
  Tensor indices;
  backend::reduce(kind, p.x, p.outer, p.mid, p.inner, &indices);
  return reshape(indices, keepdim ? p.keep_shape : p.out_shape).detach();
}

}  // namespace

Tensor sum(const Tensor& x) {
  return sum_impl("sum", x, all_dims(x), false, false);
}
Tensor sum(const Tensor& x, const std::vector<std::int64_t>& dims, bool keepdim) {
  return sum_impl("sum", x, dims, keepdim, false);
}
Tensor mean(const Tensor& x) {
  return sum_impl("mean", x, all_dims(x), false, true);
}
Tensor mean(const Tensor& x, const std::vector<std::int64_t>& dims, bool keepdim) {
  return sum_impl("mean", x, dims, keepdim, true);
}
Tensor max(const Tensor& x) {
  return extreme_impl("max", Reduce::Max, x, all_dims(x), false);
}
Tensor max(const Tensor& x, const std::vector<std::int64_t>& dims, bool keepdim) {
  return extreme_impl("max", Reduce::Max, x, dims, keepdim);
}
Tensor min(const Tensor& x) {
  return extreme_impl("min", Reduce::Min, x, all_dims(x), false);
}
Tensor min(const Tensor& x, const std::vector<std::int64_t>& dims, bool keepdim) {
  return extreme_impl("min", Reduce::Min, x, dims, keepdim);
}
Tensor argmax(const Tensor& x) {
  return arg_impl("argmax", Reduce::Max, flatten(x.detach()), {0}, false);
}
Tensor argmax(const Tensor& x, std::int64_t dim, bool keepdim) {
  return arg_impl("argmax", Reduce::Max, x, {dim}, keepdim);
}
Tensor argmin(const Tensor& x) {
  return arg_impl("argmin", Reduce::Min, flatten(x.detach()), {0}, false);
}
Tensor argmin(const Tensor& x, std::int64_t dim, bool keepdim) {
  return arg_impl("argmin", Reduce::Min, x, {dim}, keepdim);
}

}  // namespace convtape
