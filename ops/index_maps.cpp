// Index maps as ops on the tape (see ops/index_maps.h).
#include "ops/index_maps.h"

#include "core/autograd.h"
#include "ops/backend.h"
#include "ops/detail.h"
#include "ops/factory.h"
#include "ops/shape.h"

namespace convtape::detail {

Tensor index_add_into_zeros(const Tensor& src, std::int64_t dim, const Tensor& index,
                            std::int64_t n) {
  const std::int64_t d = wrap_dim(dim, src.dim(), "index_add");
  Shape out = src.shape();
  out[static_cast<std::size_t>(d)] = n;
  Tensor y;
  if (src.numel() == 0) {
    // Nothing to add (and the [outer, n, inner] split of an empty shape with huge extents beside
    // its zero would overflow): zeros.
    y = zeros(out, src.options());
  } else {
    const auto sp = split_at(out, d);
    y = reshape(backend::index_add(src.contiguous(), sp.outer, sp.n, sp.inner, index), out);
  }
  record(y, "index_add", {src}, {index}, [d](const Saved& s, const Tensor& g, const GradMask&) {
    return std::vector<Tensor>{index_select(g, d, s[0])};
  });
  return y;
}

Tensor plane_scatter(const Tensor& src, const Tensor& indices, const Shape& plane) {
  const Tensor sc = src.contiguous();
  Tensor y = backend::index_scatter(sc.detach(), indices, plane, /*accumulate=*/true);
  record(y, "index_scatter", {sc}, {indices}, [](const Saved& s, const Tensor& c, const GradMask&) {
    return std::vector<Tensor>{plane_gather(c, s[0])};
  });
  return y;
}

Tensor plane_gather(const Tensor& src, const Tensor& indices) {
  const Tensor sc = src.contiguous();
  Tensor y = backend::index_gather(sc.detach(), indices);
  const Shape plane(src.shape().begin() + 2, src.shape().end());
  record(y, "index_gather", {sc}, {indices},
         [plane](const Saved& s, const Tensor& c, const GradMask&) {
           return std::vector<Tensor>{plane_scatter(c, s[0], plane)};
         });
  return y;
}

}  // namespace convtape::detail
