// matmul front end: batch dims broadcast and flattened into one, the backends' bmm kernel, and the
// backward da = dy b^T, db = a^T dy summed back over broadcast batch dims. Operands that are
// transposes of contiguous matrices (a transposed weight, an activation transposed in backward)
// reach bmm as they are, without a copy. linear: x w^T + b as one node, whose weight gradient
// dy^T x comes out in the weight's own layout.
#include "ops/linalg.h"

#include "core/autograd.h"
#include "core/checked.h"
#include "core/trace.h"
#include "ops/backend.h"
#include "ops/detail.h"
#include "ops/elementwise.h"
#include "ops/factory.h"
#include "ops/reduce.h"
#include "ops/shape.h"

namespace convtape {

namespace {

// x [..., r, c] broadcast to `full` ([..., r, c]) as bmm's operand [nb, r, c]: a view when x is
// contiguous or the transpose of a contiguous batch (bmm takes both layouts), else a copy.
Tensor matrix_batch(const Tensor& x, const Shape& full, std::int64_t nb, std::int64_t r,
                    std::int64_t c) {
  const Tensor e = expand(x.detach(), full);
  if (e.is_contiguous()) return reshape(e, {nb, r, c});
  const Tensor t = transpose(e, -1, -2);
  if (t.is_contiguous()) return transpose(reshape(t, {nb, c, r}), 1, 2);
  return reshape(e.contiguous(), {nb, r, c});
}

// a [r, k] @ b [k, c] -> [r, c] (neither empty), through bmm.
Tensor product(const Tensor& a, const Tensor& b) {
  const std::int64_t r = a.size(0), k = a.size(1), c = b.size(1);
  return reshape(backend::bmm(matrix_batch(a, {r, k}, 1, r, k), matrix_batch(b, {k, c}, 1, k, c)),
                 {r, c});
}

Tensor matmul_batched(const Tensor& a, const Tensor& b) {
  const std::int64_t m = a.size(-2), k = a.size(-1), k2 = b.size(-2), n = b.size(-1);
  CT_CHECK(k == k2, "matmul: expected inner dims to match, got {} and {} ({} vs {})",
           to_string(a.shape()), to_string(b.shape()), k, k2);
  const Shape a_batch(a.shape().begin(), a.shape().end() - 2);
  const Shape b_batch(b.shape().begin(), b.shape().end() - 2);
  Shape batch = broadcast_shapes(a_batch, b_batch, "matmul");
  Shape a_full = batch, b_full = batch, out = batch;
  a_full.insert(a_full.end(), {m, k});
  b_full.insert(b_full.end(), {k, n});
  out.insert(out.end(), {m, n});
  // Broadcast batches multiply: each operand (as broadcast) and the output must be a shape a
  // tensor can have, which bounds nb, m, k and n below.
  const std::int64_t a_count = checked::numel(a_full, "matmul");
  const std::int64_t b_count = checked::numel(b_full, "matmul");
  checked::nbytes(out, dtype_size(a.dtype()), "matmul");
  Tensor y;
  if (a_count == 0 || b_count == 0) {
    // No product to form (an empty batch, m, k or n; the others may be huge): zeros of the
    // output's shape, which is itself empty unless k is the zero.
    y = zeros(out, a.options());
  } else {
    const std::int64_t nb = checked::numel(batch, "matmul");
    y = reshape(backend::bmm(matrix_batch(a, a_full, nb, m, k), matrix_batch(b, b_full, nb, k, n)),
                out)
            .detach();
  }
  record(y, "matmul", {a, b}, {a, b}, [](const Saved& s, const Tensor& dy, const GradMask& need) {
    const Tensor &av = s[0], &bv = s[1];
    Tensor da, db;
    if (need[0]) da = detail::sum_to(matmul_batched(dy, transpose(bv, -1, -2)), av.shape());
    if (need[1]) db = detail::sum_to(matmul_batched(transpose(av, -1, -2), dy), bv.shape());
    return std::vector<Tensor>{da, db};
  });
  return y;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  trace::OpScope scope;
  detail::check_floating_same("matmul", {a, b});
  detail::check_same_device("matmul", {a, b});
  CT_CHECK(a.dim() >= 1 && b.dim() >= 1,
           "matmul: expected operands with at least 1 dim, got {} and {}", to_string(a.shape()),
           to_string(b.shape()));
  const Tensor a2 = a.dim() == 1 ? unsqueeze(a, 0) : a;
  const Tensor b2 = b.dim() == 1 ? unsqueeze(b, -1) : b;
  Tensor y = matmul_batched(a2, b2);
  if (b.dim() == 1) y = squeeze(y, -1);
  if (a.dim() == 1) y = squeeze(y, a.dim() == 1 && b.dim() == 1 ? -1 : -2);
  if (scope.recording()) scope.emit("matmul", {a, b}, y);
  return y;
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  constexpr std::string_view op = "linear";
  trace::OpScope scope;
  detail::check_defined(op, x);
  detail::check_defined(op, w, "weight");
  CT_CHECK(w.dim() == 2, "linear: expected a weight [out_features, in_features], got {}",
           to_string(w.shape()));
  CT_CHECK(x.dim() >= 1 && x.size(-1) == w.size(1),
           "linear: expected input with last dim {}, got {}", w.size(1), to_string(x.shape()));
  if (b.defined())
    CT_CHECK(b.dim() == 1 && b.size(0) == w.size(0), "linear: expected a bias [{}], got {}",
             w.size(0), to_string(b.shape()));
  detail::check_floating_same(  // one dtype and one device
      op, b.defined() ? std::vector<Tensor>{x, w, b} : std::vector<Tensor>{x, w});
  const std::int64_t in = w.size(1), out = w.size(0);
  if (x.numel() == 0 || in == 0 || out == 0) {  // matmul's rules for empty products
    const Tensor p = matmul(x, transpose(w, 0, 1));
    const Tensor y = b.defined() ? add(p, b) : p;
    if (scope.recording()) scope.emit(op, {x, w, b}, y);
    return y;
  }
  const std::int64_t rows = x.numel() / in;
  Shape y_shape = x.shape();
  y_shape.back() = out;
  const Tensor x2 = reshape(x.detach(), {rows, in});
  const Tensor wd = w.detach();
  Tensor y = product(x2, transpose(wd, 0, 1));
  if (b.defined()) y = backend::binary(Binary::Add, y, b.detach());
  y = reshape(y, y_shape).detach();
  // x and w are saved with their history (beside the [rows, in] and detached forms the kernels
  // read), for a backward with create_graph.
  record(y, op, {x, w, b}, {SavedValue(x2, x), SavedValue(wd, w)},
         [rows, in, out, xs = x.shape()](const Saved& s, const Tensor& dy, const GradMask& need) {
           if (autograd::creating_graph()) {
             // The same products as matmuls that record (s[0] is x, or x2 when x needs no grad).
             const Tensor dy2 = reshape(dy, {rows, out});
             return std::vector<Tensor>{
                 need[0] ? reshape(matmul(dy2, s[1]), xs) : Tensor(),
                 need[1] ? matmul(transpose(dy2, 0, 1), reshape(s[0], {rows, in})) : Tensor(),
                 need[2] ? sum(dy2, {0}) : Tensor()};
           }
           const Tensor dy2 = reshape(dy.contiguous(), {rows, out});
           return std::vector<Tensor>{need[0] ? reshape(product(dy2, s[1]), xs) : Tensor(),
                                      need[1] ? product(transpose(dy2, 0, 1), s[0]) : Tensor(),
                                      need[2] ? sum(dy2, {0}) : Tensor()};
         });
  if (scope.recording()) scope.emit(op, {x, w, b}, y);
  return y;
}

}  // namespace convtape
