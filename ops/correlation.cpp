// The correlation (cost volume) front end: every argument check of the op, the backend kernels and
// the tape entry. df1 needs only f2 and df2 only f1, so each is saved only when the other's
// gradient is wanted.
#include "ops/correlation.h"

#include <limits>
#include <optional>

#include "core/autograd.h"
#include "core/checked.h"
#include "ops/backend.h"
#include "ops/detail.h"

namespace convtape {

namespace {

CorrelationGeometry resolve(std::string_view op, const Tensor& f1, const Tensor& f2,
                            const CorrelationOptions& o) {
  detail::check_defined(op, f1, "f1");
  detail::check_defined(op, f2, "f2");
  detail::check_floating_same(op, {f1, f2});
  CT_CHECK(f1.dim() == 4 && f2.dim() == 4,
           "{}: expected f1 and f2 of rank 4 ([N, C, H, W]), got {} and {}", op,
           to_string(f1.shape()), to_string(f2.shape()));
  CT_CHECK(f1.shape() == f2.shape(), "{}: expected f1 and f2 of one shape, got {} and {}", op,
           to_string(f1.shape()), to_string(f2.shape()));
  CT_CHECK(f1.size(1) >= 1, "{}: expected at least one channel, got f1 {}", op,
           to_string(f1.shape()));
  const std::int64_t k = o.kernel_size();
  CT_CHECK(k >= 1 && k % 2 == 1, "{}: expected an odd kernel_size >= 1, got {}", op, k);
  CT_CHECK(o.max_displacement() >= 0, "{}: expected max_displacement >= 0, got {}", op,
           o.max_displacement());
  CT_CHECK(o.stride1() >= 1 && o.stride2() >= 1,
           "{}: expected stride1 >= 1 and stride2 >= 1, got stride1 = {}, stride2 = {}", op,
           o.stride1(), o.stride2());
  CT_CHECK(o.padding() >= 0, "{}: expected padding >= 0, got {}", op, o.padding());

  CorrelationGeometry g;
  g.batch = f1.size(0);
  g.channels = f1.size(1);
  g.height = f1.size(2);
  g.width = f1.size(3);
  g.kernel = k;
  g.max_displacement = o.max_displacement();
  g.stride1 = o.stride1();
  g.stride2 = o.stride2();
  g.padding = o.padding();
  // The geometry's own helpers (core/kernel_args.h) compute the border, padded extents, grid and
  // output extents unchecked; each is checked here first, so that every one fits int64 and the
  // kernels may use them freely.
  const auto border = checked::try_add(g.max_displacement, g.radius());
  const auto twice_border = border ? checked::try_mul(*border, 2) : std::nullopt;
  CT_CHECK(twice_border.has_value(),
           "{}: expected twice the border 2 * (max_displacement + (kernel_size - 1) / 2) to fit in "
           "64 bits, got max_displacement = {}, kernel_size = {}",
           op, g.max_displacement, k);
  const auto twice_pad = checked::try_mul(g.padding, 2);
  for (const std::int64_t extent : {g.height, g.width})
    CT_CHECK(
        twice_pad && checked::try_add(extent, *twice_pad),
        "{}: expected the padded extent input + 2 * padding to fit in 64 bits, got {} + 2 * {} "
        "(input {})",
        op, extent, g.padding, to_string(f1.shape()));
  CT_CHECK(g.out_height() >= 1 && g.out_width() >= 1,
           "{}: expected padded inputs larger than twice the border (max_displacement + "
           "(kernel_size - 1) / 2 = {}), got padded {} x {} (input {}, padding {})",
           op, g.border(), g.padded_height(), g.padded_width(), to_string(f1.shape()), g.padding);
  const std::int64_t radius = g.max_displacement / g.stride2;  // <= max_displacement
  const auto grid = checked::try_add(radius, radius);
  const auto channels = grid && *grid < std::numeric_limits<std::int64_t>::max()
                            ? checked::try_mul(*grid + 1, *grid + 1)
                            : std::nullopt;
  CT_CHECK(channels.has_value(),
           "{}: expected the displacement count (2 * (max_displacement / stride2) + 1)^2 to fit "
           "in 64 bits, got max_displacement = {}, stride2 = {}",
           op, g.max_displacement, g.stride2);
  const auto patch = checked::try_mul(k, k);
  CT_CHECK(patch && checked::try_mul(*patch, g.channels),
           "{}: expected the patch size kernel_size^2 * C to fit in 64 bits, got kernel_size = {}, "
           "C = {}",
           op, k, g.channels);
  checked::nbytes({g.batch, *channels, g.out_height(), g.out_width()}, dtype_size(f1.dtype()), op);
  return g;
}

}  // namespace

Tensor correlation(const Tensor& f1, const Tensor& f2, const CorrelationOptions& options) {
  constexpr std::string_view op = "correlation";
  const CorrelationGeometry g = resolve(op, f1, f2, options);
  detail::check_same_device(op, {f1, f2});
  const Tensor a = f1.detach().contiguous(), b = f2.detach().contiguous();
  Tensor y = backend::correlation_forward(a, b, g);
  const bool need_f1 = f1.requires_grad(), need_f2 = f2.requires_grad();
  record(y, op, {f1, f2}, {need_f2 ? a : Tensor(), need_f1 ? b : Tensor()},
         [g](const Saved& s, const Tensor& dy, const GradMask& need) {
           const Tensor dyc = dy.contiguous();
           return std::vector<Tensor>{
               need[0] ? backend::correlation_backward_f1(dyc, s[1], g) : Tensor(),
               need[1] ? backend::correlation_backward_f2(dyc, s[0], g) : Tensor()};
         });
  return y;
}

}  // namespace convtape
