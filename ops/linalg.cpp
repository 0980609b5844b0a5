// matmul front end: batch dims broadcast and flattened into one, the CPU bmm kernel, and the
// backward da = dy b^T, db = a^T dy summed back over broadcast batch dims.
#include "ops/linalg.h"

#include "core/autograd.h"
#include "core/checked.h"
#include "ops/backend.h"
#include "ops/detail.h"
#include "ops/factory.h"
#include "ops/shape.h"

namespace convtape {

namespace {

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
    const Tensor ad = reshape(expand(a.detach(), a_full).contiguous(), {nb, m, k});
    const Tensor bd = reshape(expand(b.detach(), b_full).contiguous(), {nb, k, n});
    y = reshape(backend::bmm(ad, bd), out).detach();
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
  return y;
}

}  // namespace convtape
