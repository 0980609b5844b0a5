// Host tests of the CUDA pooling kernels' bodies (cuda/pool_body.h): the functors the GPU runs,
// run here over every index on host buffers (ct_test::run_on_host), against the CPU backend
// (cpu/pool.h) on the same PoolGeometry.
// - Seeded sweeps over spatial ranks 1 to 4, strides (and the default stride), symmetric and
//   per-side padding, dilation, ceil_mode, count_include_pad, divisor_override and adaptive
//   windows (dividing and not, larger than the input), float32 and float64, on small integers
//   (ties everywhere) and on real values, some with NaNs: max values and indices (with and without
//   indices, whole windows and windows split over lanes), average (whole and split), the
//   average's gradient, and max pooling's gradient scatter.
// - Exactness: the bodies sum in the CPU kernels' order, so values, indices and gradients are
//   compared with == (NaN equal to NaN); only the CPU's whole-plane (global) average, which sums
//   in a tree, and the split windows' partial sums are compared with a tolerance on real values.
// - The rules one by one: the first NaN of a window wins and keeps it, ties go to the first
//   element in row-major order, padding never wins, a window of padding only gives -inf and index
//   -1, a window of -inf values gives the index of its first input element (PyTorch's rule), for
//   whole and split windows alike; the sweeps draw -inf among small integers so that such windows
//   are common.
// - Arguments near 2^63 (kernels of 2^62 with padding 2^61, kernel 2^63 - 1, stride 2^63 - 1,
//   dilation 2^62): the bodies visit only the taps inside the input and form no out-of-range
//   intermediate value (the UBSan build checks), and agree with the CPU.
// - max_unpool's two passes (claim the last source per destination, gather) against the CPU's
//   overwriting scatter with duplicates and negative indices, the smallest position of an index
//   past the plane, the accumulating scatter and the gather with negative indices.
// - The comparisons are able to fail: a geometry off by one padding or stride is caught.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cpu/pool.h"
#include "cuda/pool_body.h"
#include "cuda/pool_plan.h"
#include "support/draw.h"
#include "support/host_launch.h"
#include "support/test_util.h"

namespace {

using namespace convtape;
using cuda::PoolWindows;

using ct_test::Pads;

using ct_test::Draw;

using ct_test::str;

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

// A pooling as the user states it; geometry() resolves it as ops/pool.cpp does.
struct Spec {
  Shape x;  // [N, C, *S]
  Shape kernel, stride, dilation;
  Pads pads;
  bool ceil = false, include_pad = true;
  std::int64_t divisor = 0;
  bool adaptive = false;
  Shape adaptive_out;

  std::string describe() const {
    std::ostringstream s;
    s << "x " << str(x);
    if (adaptive) {
      s << " adaptive to " << str(adaptive_out);
      return s.str();
    }
    s << " kernel " << str(kernel) << " stride " << str(stride) << " dilation " << str(dilation)
      << " padding [";
    for (const auto& p : pads) s << " (" << p.first << ", " << p.second << ")";
    s << " ]" << (ceil ? " ceil_mode" : "") << (include_pad ? "" : " exclude_pad");
    if (divisor) s << " divisor " << divisor;
    return s.str();
  }
};

PoolGeometry geometry(const Spec& sp) {
  PoolGeometry g;
  g.batch = sp.x[0];
  g.channels = sp.x[1];
  g.in.assign(sp.x.begin() + 2, sp.x.end());
  const std::size_t s = g.in.size();
  if (sp.adaptive) {
    g.out = sp.adaptive_out;
    bool divides = true;
    for (std::size_t d = 0; d < s; ++d) divides = divides && g.in[d] % g.out[d] == 0;
    if (!divides) {
      g.adaptive = true;
      return g;
    }
    // ops/pool.cpp runs dividing adaptive pooling as the regular pooling kernel = stride = in/out.
    for (std::size_t d = 0; d < s; ++d) {
      g.kernel.push_back(g.in[d] / g.out[d]);
      g.stride.push_back(g.in[d] / g.out[d]);
      g.dilation.push_back(1);
      g.pad_lo.push_back(0);
      g.pad_hi.push_back(0);
    }
    return g;
  }
  g.kernel = sp.kernel;
  g.stride = sp.stride;
  g.dilation = sp.dilation;
  g.count_include_pad = sp.include_pad;
  g.divisor_override = sp.divisor;
  for (std::size_t d = 0; d < s; ++d) {
    g.pad_lo.push_back(sp.pads[d].first);
    g.pad_hi.push_back(sp.pads[d].second);
    const std::int64_t st = g.stride[d];
    const std::int64_t span =
        g.in[d] + g.pad_lo[d] + g.pad_hi[d] - (g.dilation[d] * (g.kernel[d] - 1) + 1);
    std::int64_t out = (sp.ceil ? floor_div(span + st - 1, st) : floor_div(span, st)) + 1;
    if (sp.ceil && out >= 1 && (out - 1) * st >= g.in[d] + g.pad_lo[d]) --out;
    g.out.push_back(out);
  }
  return g;
}

// The kernels' view of a geometry, built by the same code as cuda/pool.cpp's.
PoolWindows windows(const PoolGeometry& g) {
  return cuda::pool_windows("pool body test", g);
}

Shape with_planes(const PoolGeometry& g, const Shape& spatial) {
  Shape s{g.batch, g.channels};
  s.insert(s.end(), spatial.begin(), spatial.end());
  return s;
}

// The CPU's whole-plane case (cpu/pool.cpp's Plan::global), which sums in a tree.
bool cpu_global(const PoolGeometry& g) {
  const PoolWindows pw = windows(g);
  for (int d = 0; d < pw.dims; ++d) {
    const cuda::DimWindow w = pw.window(d, 0);
    if (pw.out[d] != 1 || w.first != 0 || w.count != pw.in[d] || w.step != 1) return false;
  }
  return true;
}

// Sentinel-filled outputs, so that an element no thread writes cannot pass.
Tensor sentinel(const Shape& shape, DType dtype) {
  return full(shape, 777.0, dtype);
}

// Same shape and values, NaN equal to NaN; the first difference goes to the report.
bool same(const Tensor& got, const Tensor& want) {
  if (got.shape() != want.shape()) {
    UNSCOPED_INFO("shape " << str(got.shape()) << " vs " << str(want.shape()));
    return false;
  }
  const auto a = got.to_vector<double>(), b = want.to_vector<double>();
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!(a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i])))) {
      UNSCOPED_INFO("element " << i << ": " << a[i] << " vs " << b[i]);
      return false;
    }
  return true;
}

bool same_indices(const Tensor& got, const Tensor& want) {
  const auto a = got.to_vector<std::int64_t>(), b = want.to_vector<std::int64_t>();
  if (got.shape() != want.shape() || a != b) {
    for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i)
      if (a[i] != b[i]) {
        UNSCOPED_INFO("index " << i << ": " << a[i] << " vs " << b[i]);
        break;
      }
    return false;
  }
  return true;
}

// |a - b| <= atol + rtol * |b|, NaN equal to NaN.
bool close(const Tensor& got, const Tensor& want, double rtol, double atol) {
  if (got.shape() != want.shape()) return false;
  const auto a = got.to_vector<double>(), b = want.to_vector<double>();
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) && std::isnan(b[i])) continue;
    if (!(std::abs(a[i] - b[i]) <= atol + rtol * std::abs(b[i]))) {
      UNSCOPED_INFO("element " << i << ": " << a[i] << " vs " << b[i]);
      return false;
    }
  }
  return true;
}

// ---- the bodies, run on the host

template <class T>
PoolResult run_max(const Tensor& x, const PoolGeometry& g, std::int64_t lanes, bool indices,
                   const PoolWindows* given = nullptr) {
  const PoolWindows pw = given ? *given : windows(g);
  PoolResult r;
  r.values = sentinel(with_planes(g, g.out), dtype_of<T>());
  if (indices) r.indices = full(with_planes(g, g.out), 777.0, kInt64);
  std::int64_t* ind = indices ? r.indices.data_ptr<std::int64_t>() : nullptr;
  const std::int64_t outputs = r.values.numel();
  if (lanes <= 1) {
    ct_test::run_on_host(outputs,
                         cuda::MaxPoolForward<T>{x.data_ptr<T>(), r.values.data_ptr<T>(), ind, pw});
    return r;
  }
  std::vector<T> pv(static_cast<std::size_t>(outputs * lanes), T(777));
  std::vector<std::int64_t> pi(pv.size(), 777);
  ct_test::run_on_host(outputs * lanes,
                       cuda::MaxPoolPartial<T>{x.data_ptr<T>(), pv.data(), pi.data(), pw, lanes});
  ct_test::run_on_host(
      outputs, cuda::MaxPoolCombine<T>{pv.data(), pi.data(), r.values.data_ptr<T>(), ind, lanes});
  return r;
}

template <class T>
Tensor run_avg(const Tensor& x, const PoolGeometry& g, std::int64_t lanes) {
  const PoolWindows pw = windows(g);
  Tensor y = sentinel(with_planes(g, g.out), dtype_of<T>());
  const std::int64_t outputs = y.numel();
  if (lanes <= 1) {
    ct_test::run_on_host(outputs, cuda::AvgPoolForward<T>{x.data_ptr<T>(), y.data_ptr<T>(), pw});
    return y;
  }
  std::vector<T> ps(static_cast<std::size_t>(outputs * lanes), T(777));
  ct_test::run_on_host(outputs * lanes,
                       cuda::AvgPoolPartial<T>{x.data_ptr<T>(), ps.data(), pw, lanes});
  ct_test::run_on_host(outputs, cuda::AvgPoolCombine<T>{ps.data(), y.data_ptr<T>(), pw, lanes});
  return y;
}

template <class T>
Tensor run_avg_backward(const Tensor& dy, const PoolGeometry& g) {
  Tensor dx = sentinel(with_planes(g, g.in), dtype_of<T>());
  ct_test::run_on_host(dx.numel(),
                       cuda::AvgPoolBackward<T>{dy.data_ptr<T>(), dx.data_ptr<T>(), windows(g)});
  return dx;
}

Shape plane_shape(const Tensor& src, const Shape& plane) {
  Shape s{src.size(0), src.size(1)};
  s.insert(s.end(), plane.begin(), plane.end());
  return s;
}

template <class T>
Tensor run_scatter_add(const Tensor& src, const Tensor& indices, const Shape& plane) {
  Tensor out = sentinel(plane_shape(src, plane), dtype_of<T>());
  const std::int64_t planes = src.size(0) * src.size(1);
  const std::int64_t m = planes > 0 ? src.numel() / planes : 0, size = numel(plane);
  ct_test::run_on_host(out.numel(), cuda::FillValue<T>{out.data_ptr<T>(), T(0)});
  ct_test::run_on_host(src.numel(),
                       cuda::IndexScatterAdd<T>{src.data_ptr<T>(), indices.data_ptr<std::int64_t>(),
                                                out.data_ptr<T>(), m, size});
  return out;
}

// max_unpool's passes.
template <class T>
Tensor run_scatter_last(const Tensor& src, const Tensor& indices, const Shape& plane) {
  Tensor out = sentinel(plane_shape(src, plane), dtype_of<T>());
  const std::int64_t planes = src.size(0) * src.size(1);
  const std::int64_t m = planes > 0 ? src.numel() / planes : 0, size = numel(plane);
  std::vector<std::int64_t> owner(static_cast<std::size_t>(out.numel()), 777);
  ct_test::run_on_host(out.numel(), cuda::FillValue<std::int64_t>{owner.data(), -1});
  ct_test::run_on_host(src.numel(),
                       cuda::IndexClaim{indices.data_ptr<std::int64_t>(), owner.data(), m, size});
  ct_test::run_on_host(out.numel(), cuda::IndexClaimGather<T>{src.data_ptr<T>(), owner.data(),
                                                              out.data_ptr<T>(), m, size});
  return out;
}

template <class T>
Tensor run_gather(const Tensor& src, const Tensor& indices) {
  Tensor out = sentinel(indices.shape(), dtype_of<T>());
  const std::int64_t planes = src.size(0) * src.size(1);
  const std::int64_t size = planes > 0 ? src.numel() / planes : 0;
  const std::int64_t m = planes > 0 ? indices.numel() / planes : 0;
  ct_test::run_on_host(out.numel(),
                       cuda::IndexGather<T>{src.data_ptr<T>(), indices.data_ptr<std::int64_t>(),
                                            out.data_ptr<T>(), m, size});
  return out;
}

// ---- data

// IntsWithInf: small integers of which about a third are -inf, so that many windows hold -inf
// alone.
enum class Data { SmallInts, Reals, RealsWithNaN, IntsWithInf };

Tensor make(const Shape& shape, DType dtype, Data kind, Draw& d) {
  std::vector<double> v(static_cast<std::size_t>(numel(shape)));
  for (auto& e : v) {
    if (kind == Data::SmallInts || kind == Data::IntsWithInf)
      e = static_cast<double>(d(-4, 4));
    else
      e = d.real() * 3.0;
    if (kind == Data::RealsWithNaN && d.one_in(12)) e = std::nan("");
    if (kind == Data::IntsWithInf && e < -1) e = -std::numeric_limits<double>::infinity();
  }
  return tensor(v, shape, dtype);
}

// A random pooling within ops/pool.cpp's limits (padding at most half the kernel; the input at
// least the dilated window minus the padding, or one short of it with ceil_mode).
Spec random_pool(Draw& d, std::size_t rank, bool max, std::int64_t max_in = 8) {
  Spec sp;
  sp.x = {d(1, 2), d(1, 3)};
  const bool given_stride = !d.one_in(4), symmetric = !d.one_in(3);
  sp.ceil = d.one_in(2);
  if (!max) {
    sp.include_pad = !d.one_in(2);
    if (d.one_in(4)) sp.divisor = d(1, 6) * (d.one_in(5) ? -1 : 1);
  }
  for (std::size_t i = 0; i < rank; ++i) {
    const std::int64_t k = d(1, 4);
    sp.kernel.push_back(k);
    sp.stride.push_back(given_stride ? d(1, 3) : k);
    sp.dilation.push_back(max && d.one_in(3) ? d(2, 3) : 1);
    const std::int64_t lo = d(0, k / 2), hi = symmetric ? lo : d(0, k / 2);
    sp.pads.emplace_back(lo, hi);
    const std::int64_t window = sp.dilation.back() * (k - 1) + 1;
    sp.x.push_back(std::max<std::int64_t>(window - lo - hi, 1) + d(0, max_in - 3));
  }
  return sp;
}

Spec random_adaptive(Draw& d, std::size_t rank) {
  Spec sp;
  sp.adaptive = true;
  sp.x = {d(1, 2), d(1, 3)};
  const bool divides = d.one_in(3);
  for (std::size_t i = 0; i < rank; ++i) {
    const std::int64_t out = d(1, 5);
    sp.adaptive_out.push_back(out);
    sp.x.push_back(divides ? out * d(1, 3) : d(1, 9));
  }
  return sp;
}

// Every max body against cpu::max_pool_forward: values and indices, exactly.
template <class T>
int check_max(const Tensor& x, const PoolGeometry& g) {
  const PoolResult want = cpu::max_pool_forward(x, g, true);
  int checks = 0;
  for (std::int64_t lanes : {1, 2, 3, 7}) {
    INFO("lanes " << lanes);
    const PoolResult got = run_max<T>(x, g, lanes, true);
    CHECK(same(got.values, want.values));
    CHECK(same_indices(got.indices, want.indices));
    CHECK(same(run_max<T>(x, g, lanes, false).values, want.values));
    checks += 3;
  }
  return checks;
}

// Average forward (whole windows exactly unless the CPU sums the plane in a tree; split windows
// within rounding) and its gradient, exactly.
template <class T>
int check_avg(const Tensor& x, const PoolGeometry& g, Draw& d, bool ints) {
  const Tensor want = cpu::avg_pool_forward(x, g);
  const double rtol = sizeof(T) == 4 ? 1e-5 : 1e-13, atol = sizeof(T) == 4 ? 1e-6 : 1e-14;
  if (cpu_global(g) && !ints)
    CHECK(close(run_avg<T>(x, g, 1), want, rtol, atol));
  else
    CHECK(same(run_avg<T>(x, g, 1), want));
  for (std::int64_t lanes : {2, 5}) {
    INFO("lanes " << lanes);
    if (ints)
      CHECK(same(run_avg<T>(x, g, lanes), want));
    else
      CHECK(close(run_avg<T>(x, g, lanes), want, rtol, atol));
  }
  const Tensor dy =
      make(with_planes(g, g.out), dtype_of<T>(), ints ? Data::SmallInts : Data::Reals, d);
  CHECK(same(run_avg_backward<T>(dy, g), cpu::avg_pool_backward(dy, g)));
  return 4;
}

// Max pooling's gradient: the scatter of dy to the forward's argmax.
template <class T>
int check_max_backward(const Tensor& x, const PoolGeometry& g, Draw& d, bool ints) {
  const PoolResult r = cpu::max_pool_forward(x, g, true);
  const Tensor dy =
      make(with_planes(g, g.out), dtype_of<T>(), ints ? Data::SmallInts : Data::Reals, d);
  CHECK(same(run_scatter_add<T>(dy, r.indices, g.in),
             cpu::index_scatter(dy, r.indices, g.in, /*accumulate=*/true)));
  return 1;
}

template <class T>
int check_spec(const Spec& sp, Draw& d, Data kind) {
  const PoolGeometry g = geometry(sp);
  INFO(sp.describe() << " -> " << str(g.out) << (g.adaptive ? " (adaptive windows)" : "") << ", "
                     << dtype_name(dtype_of<T>()));
  const Tensor x = make(sp.x, dtype_of<T>(), kind, d);
  const bool ints = kind == Data::SmallInts || kind == Data::IntsWithInf;
  return check_max<T>(x, g) + check_max_backward<T>(x, g, d, ints) + check_avg<T>(x, g, d, ints);
}

Tensor t(std::initializer_list<double> v, const Shape& shape, DType dtype = kFloat32) {
  return tensor(v, shape, dtype);
}

Tensor idx(std::vector<std::int64_t> v, const Shape& shape) {
  return from_vector(v, shape);
}

Spec simple(Shape x, Shape kernel, Shape stride, Pads pads, Shape dilation = {}) {
  Spec sp;
  sp.x = std::move(x);
  sp.kernel = std::move(kernel);
  sp.stride = std::move(stride);
  sp.pads = std::move(pads);
  sp.dilation = dilation.empty() ? Shape(sp.kernel.size(), 1) : std::move(dilation);
  return sp;
}

}  // namespace

TEST_CASE("cuda pool bodies: seeded sweep of max, avg and adaptive pooling equals the CPU",
          "[cuda_body][pool]") {
  Draw d(20260611u);
  int checks = 0, specs = 0;
  std::map<std::string, int> seen;
  for (int i = 0; i < 240; ++i) {
    const auto rank = static_cast<std::size_t>(1 + i % 3 + (i % 17 == 0 ? 1 : 0));
    const int kind = (i / 4) % 3;  // max-style, avg-style, adaptive
    const Spec sp = kind == 2 ? random_adaptive(d, rank) : random_pool(d, rank, kind == 0);
    const Data data = i % 4 == 0   ? Data::SmallInts
                      : i % 4 == 1 ? Data::Reals
                      : i % 4 == 2 ? Data::RealsWithNaN
                                   : Data::IntsWithInf;
    const PoolGeometry g = geometry(sp);
    seen["rank 4"] += rank == 4;
    seen["adaptive windows"] += g.adaptive;
    seen["ceil_mode"] += sp.ceil;
    seen["dilation"] +=
        std::any_of(sp.dilation.begin(), sp.dilation.end(), [](std::int64_t e) { return e > 1; });
    seen["per-side padding"] += std::any_of(sp.pads.begin(), sp.pads.end(),
                                            [](const auto& p) { return p.first != p.second; });
    seen["exclude_pad"] += !sp.include_pad;
    seen["divisor_override"] += sp.divisor != 0;
    seen["NaN"] += data == Data::RealsWithNaN;
    seen["-inf"] += data == Data::IntsWithInf;
    checks += i % 2 == 0 ? check_spec<float>(sp, d, data) : check_spec<double>(sp, d, data);
    ++specs;
  }
  CHECK(specs == 240);
  CHECK(checks == 240 * 17);
  for (const auto& [feature, count] : seen) {
    INFO(feature);
    CHECK(count >= 5);
  }
}

TEST_CASE("cuda pool bodies: large shapes, whole-plane windows and four spatial dims",
          "[cuda_body][pool]") {
  Draw d(5u);
  // A ResNet-like 3 x 3 / 2 max pool with padding, and its ceil_mode twin.
  Spec mx = simple({2, 4, 33, 34}, {3, 3}, {2, 2}, {{1, 1}, {1, 1}});
  check_spec<float>(mx, d, Data::Reals);
  mx.ceil = true;
  check_spec<double>(mx, d, Data::SmallInts);
  // Whole planes: regular windows equal to the input, and adaptive pooling to one element.
  check_spec<float>(simple({2, 3, 7, 7}, {7, 7}, {7, 7}, {{0, 0}, {0, 0}}), d, Data::Reals);
  Spec global;
  global.adaptive = true;
  global.x = {2, 2, 37, 41};
  global.adaptive_out = {1, 1};
  check_spec<float>(global, d, Data::Reals);
  check_spec<double>(global, d, Data::RealsWithNaN);
  global.adaptive_out = {3, 1};  // non-dividing, tall windows
  check_spec<double>(global, d, Data::SmallInts);
  // Four spatial dims, regular and adaptive.
  Spec four = simple({1, 2, 4, 5, 3, 4}, {2, 3, 2, 2}, {2, 1, 1, 2},
                     {{1, 0}, {1, 1}, {0, 1}, {1, 1}}, {1, 1, 2, 1});
  check_spec<double>(four, d, Data::SmallInts);
  Spec four_adaptive;
  four_adaptive.adaptive = true;
  four_adaptive.x = {1, 2, 5, 4, 3, 6};
  four_adaptive.adaptive_out = {2, 3, 2, 4};
  check_spec<float>(four_adaptive, d, Data::Reals);
}

TEST_CASE("cuda pool bodies: many lanes over a whole plane keep the first maximum and NaN",
          "[cuda_body][pool]") {
  const PoolGeometry g = geometry([] {
    Spec s;
    s.adaptive = true;
    s.x = {1, 1, 23, 29};
    s.adaptive_out = {1, 1};
    return s;
  }());
  // Ties: every element equal; a maximum repeated late; a NaN after a larger value, then another.
  std::vector<double> v(23 * 29, 1.0);
  for (const std::int64_t lanes : {1, 4, 64, 667, 1000}) {
    INFO("lanes " << lanes);
    const Tensor ones_x = tensor(v, {1, 1, 23, 29}, kFloat64);
    const PoolResult r = run_max<double>(ones_x, g, lanes, true);
    CHECK(r.indices.item<std::int64_t>() == 0);
    std::vector<double> w(v.size(), -2.0);
    w[300] = 5.0;
    w[17] = 5.0;
    w[500] = 5.0;
    const PoolResult r2 = run_max<double>(tensor(w, {1, 1, 23, 29}, kFloat64), g, lanes, true);
    CHECK(r2.values.item() == 5.0);
    CHECK(r2.indices.item<std::int64_t>() == 17);
    w[400] = std::nan("");
    w[650] = std::nan("");
    w[401] = 9.0;
    const PoolResult r3 = run_max<double>(tensor(w, {1, 1, 23, 29}, kFloat64), g, lanes, true);
    CHECK(std::isnan(r3.values.item()));
    CHECK(r3.indices.item<std::int64_t>() == 400);
    // -inf everywhere: no element is ever strictly larger than the start, the first element,
    // which every lane's partial must hand on (the smallest index among equal partials).
    std::vector<double> m(v.size(), -std::numeric_limits<double>::infinity());
    const Tensor xm = tensor(m, {1, 1, 23, 29}, kFloat64);
    const PoolResult r4 = run_max<double>(xm, g, lanes, true);
    CHECK(r4.values.item() == -std::numeric_limits<double>::infinity());
    CHECK(r4.indices.item<std::int64_t>() == 0);
    CHECK(r4.indices.item<std::int64_t>() ==
          cpu::max_pool_forward(xm, g, true).indices.item<std::int64_t>());
    // All -inf but the last element: that element.
    m.back() = -5.0;
    const PoolResult r5 = run_max<double>(tensor(m, {1, 1, 23, 29}, kFloat64), g, lanes, true);
    CHECK(r5.indices.item<std::int64_t>() == 23 * 29 - 1);
  }
}

TEST_CASE("cuda pool bodies: NaN, ties, padding and empty windows follow the CPU rules",
          "[cuda_body][pool]") {
  for (const std::int64_t lanes : {1, 3}) {
    INFO("lanes " << lanes);
    // The first NaN of a window is its max and keeps the index.
    const Tensor x = t({1, std::nan(""), 3, 2, 5, 0, std::nan(""), 4}, {1, 1, 8});
    const PoolGeometry g4 = geometry(simple({1, 1, 8}, {4}, {4}, {{0, 0}}));
    const PoolResult r = run_max<float>(x, g4, lanes, true);
    CHECK(std::isnan(r.values.to_vector<double>()[0]));
    CHECK(std::isnan(r.values.to_vector<double>()[1]));
    CHECK(r.indices.to_vector<std::int64_t>() == std::vector<std::int64_t>{1, 6});
    // Two NaNs in one 2-d window: the first in row-major order.
    const Tensor z = t({0, std::nan(""), std::nan(""), 0}, {1, 1, 2, 2});
    const PoolGeometry g22 = geometry(simple({1, 1, 2, 2}, {2, 2}, {2, 2}, {{0, 0}, {0, 0}}));
    CHECK(run_max<float>(z, g22, lanes, true).indices.item<std::int64_t>() == 1);
    // Ties: the earlier row wins; within a row the earlier column.
    CHECK(run_max<float>(t({0, 3, 3, 1}, {1, 1, 2, 2}), g22, lanes, true)
              .indices.item<std::int64_t>() == 1);
    CHECK(run_max<float>(t({0, 1, 3, 3}, {1, 1, 2, 2}), g22, lanes, true)
              .indices.item<std::int64_t>() == 2);
    const PoolGeometry g44 = geometry(simple({1, 1, 4, 4}, {2, 2}, {2, 2}, {{0, 0}, {0, 0}}));
    CHECK(run_max<double>(ones({1, 1, 4, 4}, kFloat64), g44, lanes, true)
              .indices.to_vector<std::int64_t>() == std::vector<std::int64_t>{0, 2, 8, 10});
    // Padding never wins over all-negative inputs.
    const Tensor neg = arange(-16.0, 0.0, 1.0, kFloat64).reshape({1, 1, 4, 4});
    const PoolGeometry gp = geometry(simple({1, 1, 4, 4}, {3, 3}, {2, 2}, {{1, 1}, {1, 1}}));
    const PoolResult rp = run_max<double>(neg, gp, lanes, true);
    CHECK(rp.values.to_vector<double>() == std::vector<double>{-11, -9, -3, -1});
    CHECK(rp.indices.to_vector<std::int64_t>() == std::vector<std::int64_t>{5, 7, 13, 15});
    // A dilated window whose taps all fall in the padding: -inf and index -1, and the gradient
    // scatter skips it.
    const PoolGeometry gd = geometry(simple({1, 1, 1}, {2}, {1}, {{1, 1}}, {2}));
    REQUIRE(gd.out == Shape{1});
    const PoolResult rd = run_max<float>(t({4}, {1, 1, 1}), gd, lanes, true);
    CHECK(rd.values.item() == -std::numeric_limits<double>::infinity());
    CHECK(rd.indices.item<std::int64_t>() == -1);
    CHECK(run_scatter_add<float>(t({1}, {1, 1, 1}), rd.indices, gd.in).item() == 0.0);
  }
  // The average's divisor: count_include_pad, the clipped ceil_mode window, divisor_override.
  Spec a = simple({1, 1, 6}, {3}, {2}, {{1, 1}});
  a.ceil = true;
  const Tensor r6 = arange(1.0, 7.0).reshape({1, 1, 6});
  CHECK(run_avg<float>(r6, geometry(a), 1).to_vector<double>() ==
        std::vector<double>{3.0f / 3, 9.0f / 3, 15.0f / 3, 6.0f / 2});
  a.include_pad = false;
  CHECK(same(run_avg<float>(r6, geometry(a), 1), cpu::avg_pool_forward(r6, geometry(a))));
  a.divisor = -4;
  CHECK(run_avg<float>(r6, geometry(a), 1).to_vector<double>() ==
        std::vector<double>{-3.0f / 4, -9.0f / 4, -15.0f / 4, -6.0f / 4});
}

TEST_CASE("cuda pool bodies: empty batches run no thread and give empty results",
          "[cuda_body][pool]") {
  Spec sp = simple({0, 3, 6, 6}, {2, 2}, {2, 2}, {{0, 0}, {0, 0}});
  const PoolGeometry g = geometry(sp);
  const Tensor x = zeros({0, 3, 6, 6});
  const PoolResult r = run_max<float>(x, g, 1, true);
  CHECK(r.values.shape() == Shape{0, 3, 3, 3});
  CHECK(same(r.values, cpu::max_pool_forward(x, g, true).values));
  CHECK(run_avg_backward<float>(zeros({0, 3, 3, 3}), g).shape() == Shape{0, 3, 6, 6});
  const Tensor none = from_vector(std::vector<std::int64_t>{}, {0, 3, 3, 3});
  CHECK(run_scatter_add<float>(zeros({0, 3, 3, 3}), none, g.in).shape() == Shape{0, 3, 6, 6});
}

TEST_CASE("cuda pool bodies: max_unpool's claim and gather equal the CPU's overwriting scatter",
          "[cuda_body][pool]") {
  Draw d(77u);
  int compared = 0;
  for (int i = 0; i < 40; ++i) {
    const std::int64_t n = d(1, 2), c = d(1, 3), m = d(1, 12);
    const Shape plane = i % 2 == 0 ? Shape{d(1, 9)} : Shape{d(1, 4), d(1, 4)};
    const std::int64_t size = numel(plane);
    std::vector<std::int64_t> ind(static_cast<std::size_t>(n * c * m));
    // Few distinct targets: duplicates everywhere; some negative indices, which are skipped.
    for (auto& e : ind) e = d.one_in(6) ? -1 : d(0, std::min<std::int64_t>(size, 3) - 1);
    const Tensor indices = idx(ind, {n, c, m});
    for (DType dtype : {kFloat32, kFloat64}) {
      const Tensor src = make({n, c, m}, dtype, Data::Reals, d);
      const Tensor want = cpu::index_scatter(src, indices, plane, /*accumulate=*/false);
      const Tensor got = dtype == kFloat32 ? run_scatter_last<float>(src, indices, plane)
                                           : run_scatter_last<double>(src, indices, plane);
      CHECK(same(got, want));
      // The accumulating scatter (max pooling's gradient) and the gather (max_unpool's gradient).
      const Tensor add = dtype == kFloat32 ? run_scatter_add<float>(src, indices, plane)
                                           : run_scatter_add<double>(src, indices, plane);
      CHECK(same(add, cpu::index_scatter(src, indices, plane, /*accumulate=*/true)));
      const Tensor big = make(plane_shape(src, plane), dtype, Data::Reals, d);
      const Tensor gathered =
          dtype == kFloat32 ? run_gather<float>(big, indices) : run_gather<double>(big, indices);
      CHECK(same(gathered, cpu::index_gather(big, indices)));
      compared += 4;
    }
  }
  CHECK(compared == 40 * 2 * 4);
  // The later duplicate overwrites, per plane.
  const Tensor src = t({1, 2, 3, 4, 5, 6}, {2, 1, 3});
  const Tensor dup = idx({1, 1, 0, 2, 2, 2}, {2, 1, 3});
  CHECK(run_scatter_last<float>(src, dup, {3}).to_vector<double>() ==
        std::vector<double>{3, 2, 0, 0, 0, 6});
  // Indices past the plane (which the front end refuses) are skipped, never written out of it.
  const Tensor wrong = idx({0, 7, 1, 2, 5, 3}, {2, 1, 3});
  const Tensor out = run_scatter_last<float>(src, wrong, {3});
  CHECK(out.to_vector<double>() == std::vector<double>{1, 3, 0, 0, 0, 4});
  CHECK(run_gather<float>(t({1, 2, 3, 4, 5, 6}, {2, 1, 3}), idx({2, -1, 0, 1}, {2, 1, 2}))
            .to_vector<double>() == std::vector<double>{3, 0, 4, 5});
}

TEST_CASE("cuda pool bodies: the comparisons catch a wrong window", "[cuda_body][pool]") {
  Draw d(3u);
  Spec sp = simple({1, 2, 9, 8}, {3, 2}, {2, 2}, {{1, 1}, {1, 0}});
  const PoolGeometry g = geometry(sp);
  const Tensor x = make(sp.x, kFloat64, Data::Reals, d);
  const PoolResult want = cpu::max_pool_forward(x, g, true);
  PoolWindows shifted = windows(g);
  shifted.pad_lo[0] += 1;
  CHECK_FALSE(same(run_max<double>(x, g, 1, true, &shifted).values, want.values));
  PoolWindows strided = windows(g);
  strided.stride[1] = 1;
  CHECK_FALSE(same_indices(run_max<double>(x, g, 1, true, &strided).indices, want.indices));
  CHECK(same(run_max<double>(x, g, 1, true).values, want.values));
}

namespace {

// A geometry stated in full (outputs included: the test's geometry() forms PyTorch's formula in
// 64 bits, which these arguments would overflow; tests/ops/pool_limits_test.cpp proves these
// output sizes through the front end).
PoolGeometry stated(Shape x, std::int64_t k, std::int64_t st, std::int64_t dil, std::int64_t pad,
                    std::int64_t out, bool include_pad = true) {
  PoolGeometry g;
  g.batch = x[0];
  g.channels = x[1];
  g.in.assign(x.begin() + 2, x.end());
  const std::size_t s = g.in.size();
  g.out.assign(s, out);
  g.kernel.assign(s, k);
  g.stride.assign(s, st);
  g.dilation.assign(s, dil);
  g.pad_lo.assign(s, pad);
  g.pad_hi.assign(s, pad);
  g.count_include_pad = include_pad;
  return g;
}

}  // namespace

TEST_CASE("cuda pool bodies: arguments near 2^63 visit only the input and agree with the CPU",
          "[cuda_body][pool]") {
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  constexpr std::int64_t k2p61 = std::int64_t{1} << 61, k2p62 = std::int64_t{1} << 62;
  Draw d(99u);
  struct Case {
    const char* name;
    PoolGeometry g;
  };
  const std::vector<Case> cases = {
      {"kernel 2^62, padding 2^61, stride 1 (2-d)", stated({1, 2, 4, 4}, k2p62, 1, 1, k2p61, 5)},
      {"kernel 2^62, padding 2^61, stride 2^61 - 1, ceil_mode",
       stated({2, 1, 5}, k2p62, k2p61 - 1, 1, k2p61, 2)},
      {"kernel 2^63 - 1, padding 2^62 - 1, stride 1", stated({1, 1, 3}, kMax, 1, 1, k2p62 - 1, 3)},
      {"kernel 2^63 - 1, padding 2^62 - 1 (2-d, divisor (2^63 - 1)^2)",
       stated({1, 1, 3, 3}, kMax, 1, 1, k2p62 - 1, 3)},
      {"kernel 2^63 - 1 exclude_pad", stated({1, 2, 3}, kMax, 1, 1, k2p62 - 1, 3, false)},
      {"kernel 2^62, stride 2^62, ceil_mode (one window over the plane)",
       stated({1, 1, 4, 4}, k2p62, k2p62, 1, 0, 1)},
      {"stride 2^63 - 1", stated({1, 1, 5}, 2, kMax, 1, 0, 1)},
      {"dilation 2^62, stride 2^63 - 1, padding 1, ceil_mode (taps miss the input)",
       stated({1, 1, 5}, 2, kMax, k2p62, 1, 1)},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    for (Data data : {Data::IntsWithInf, Data::Reals}) {
      const Tensor x = make(with_planes(c.g, c.g.in), kFloat64, data, d);
      check_max<double>(x, c.g);
      check_max_backward<double>(x, c.g, d, data == Data::IntsWithInf);
      const Tensor want = cpu::avg_pool_forward(x, c.g);
      if (cpu_global(c.g) && data == Data::Reals)  // the CPU sums whole planes in a tree
        CHECK(close(run_avg<double>(x, c.g, 1), want, 1e-13, 1e-14));
      else
        CHECK(same(run_avg<double>(x, c.g, 1), want));
      const Tensor dy = make(with_planes(c.g, c.g.out), kFloat64, Data::SmallInts, d);
      CHECK(same(run_avg_backward<double>(dy, c.g), cpu::avg_pool_backward(dy, c.g)));
    }
  }
  // The one window whose taps both miss the input keeps -inf and index -1 on both backends.
  const PoolGeometry miss = cases.back().g;
  const Tensor x = arange(0.0, 5.0, 1.0, kFloat64).reshape({1, 1, 5});
  const PoolResult r = run_max<double>(x, miss, 1, true);
  CHECK(r.values.item() == -std::numeric_limits<double>::infinity());
  CHECK(r.indices.item<std::int64_t>() == -1);
  // Windows that cover the whole input: its maximum, at its first maximal element.
  const Tensor x2 = arange(0.0, 10.0, 1.0, kFloat64).reshape({2, 1, 5});
  const PoolResult w = run_max<double>(x2, cases[1].g, 1, true);
  CHECK(w.indices.to_vector<std::int64_t>() == std::vector<std::int64_t>{4, 4, 4, 4});
  CHECK(w.values.to_vector<double>() == std::vector<double>{4, 4, 9, 9});
}
