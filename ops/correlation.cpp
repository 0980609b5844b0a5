// The correlation (cost volume) front end: every argument check of the op, the backend kernels and
// the tape entry. df1 needs only f2 and df2 only f1, so each is saved only when the other's
// gradient is wanted. A backward with create_graph runs the three bilinear maps as ops that
// record (corr_map), whose derivatives are again these maps.
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

// The three bilinear maps of a correlation with geometry g, as one op that records: Forward
// (f1, f2) -> y, GradF1 (dy, f2) -> df1 and GradF2 (dy, f1) -> df2. GradF1 is the adjoint of
// Forward in f1 (<c, GradF1(dy, f2)> = <Forward(c, f2), dy>) and GradF2 its adjoint in f2
// (<c, GradF2(dy, f1)> = <Forward(f1, c), dy>), so with L = <c, map(a, b)>:
//   Forward (a = f1, b = f2): da = GradF1(c, b),  db = GradF2(c, a);
//   GradF1 (a = dy, b = f2):  da = Forward(c, b), db = GradF2(a, c);
//   GradF2 (a = dy, b = f1):  da = Forward(b, c), db = GradF1(a, c).
// Every derivative of a correlation, to any order, is one of these maps.
enum class CorrMap { Forward, GradF1, GradF2 };

Tensor corr_map(CorrMap kind, const Tensor& a, const Tensor& b, const CorrelationGeometry& g) {
  const Tensor ac = a.contiguous(), bc = b.contiguous();
  const Tensor ad = ac.detach(), bd = bc.detach();
  Tensor y = kind == CorrMap::Forward  ? backend::correlation_forward(ad, bd, g)
             : kind == CorrMap::GradF1 ? backend::correlation_backward_f1(ad, bd, g)
                                       : backend::correlation_backward_f2(ad, bd, g);
  static constexpr std::string_view names[] = {"correlation_forward", "correlation_backward_f1",
                                               "correlation_backward_f2"};
  // da needs b and db needs a: each is saved only when the other's gradient may be wanted.
  record(y, names[static_cast<int>(kind)], {ac, bc},
         {b.requires_grad() ? ac : Tensor(), a.requires_grad() ? bc : Tensor()},
         [kind, g](const Saved& s, const Tensor& c, const GradMask& need) {
           Tensor da, db;
           switch (kind) {
             case CorrMap::Forward:
               if (need[0]) da = corr_map(CorrMap::GradF1, c, s[1], g);
               if (need[1]) db = corr_map(CorrMap::GradF2, c, s[0], g);
               break;
             case CorrMap::GradF1:
               if (need[0]) da = corr_map(CorrMap::Forward, c, s[1], g);
               if (need[1]) db = corr_map(CorrMap::GradF2, s[0], c, g);
               break;
             case CorrMap::GradF2:
               if (need[0]) da = corr_map(CorrMap::Forward, s[1], c, g);
               if (need[1]) db = corr_map(CorrMap::GradF1, s[0], c, g);
               break;
           }
           return std::vector<Tensor>{da, db};
         });
  return y;
}

}  // namespace

Tensor correlation(const Tensor& f1, const Tensor& f2, const CorrelationOptions& options) {
  constexpr std::string_view op = "correlation";
  const CorrelationGeometry g = resolve(op, f1, f2, options);
  detail::check_same_device(op, {f1, f2});
  const Tensor a = f1.detach().contiguous(), b = f2.detach().contiguous();
  Tensor y = backend::correlation_forward(a, b, g);
  const bool need_f1 = f1.requires_grad(), need_f2 = f2.requires_grad();
  record(y, op, {f1, f2},
         {need_f2 ? SavedValue(a, f1) : SavedValue(), need_f1 ? SavedValue(b, f2) : SavedValue()},
         [g](const Saved& s, const Tensor& dy, const GradMask& need) {
           if (autograd::creating_graph())
             return std::vector<Tensor>{
                 need[0] ? corr_map(CorrMap::GradF1, dy, s[1], g) : Tensor(),
                 need[1] ? corr_map(CorrMap::GradF2, dy, s[0], g) : Tensor()};
           const Tensor dyc = dy.contiguous();
           return std::vector<Tensor>{
               need[0] ? backend::correlation_backward_f1(dyc, s[1], g) : Tensor(),
               need[1] ? backend::correlation_backward_f2(dyc, s[0], g) : Tensor()};
         });
  return y;
}

}  // namespace convtape
