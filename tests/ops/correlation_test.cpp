// Tests of ops/correlation (the FlowNet cost volume).
// - A direct-loop reference written from the definition in unpadded coordinates (reads outside
//   [0, H) x [0, W) are 0): every (f1 element, f2 element, output element) triple that the sum
//   contains, giving the forward and both gradients. Hand-picked and seeded configurations cover
//   kernel sizes 1 / 3 / 5, both strides, max_displacement not a multiple of stride2, padding
//   below, at and above the border, rectangular maps, channel counts that leave partial vectors,
//   and grids of 1 to 19 displacements per axis (the kernels block displacements by up to 8).
// - Exactness: small-integer data with k * k * C a power of two makes float32 results and
//   gradients exact, so they are compared with ==; otherwise float64 is compared to 1e-12.
// - The op harness (support/op_check.h: float64 gradcheck, float32 against float64, CUDA against
//   the CPU) in both inputs, and with f1 and f2 the same tensor; the argument errors on every
//   device.
// - The channel order (p vertical, o horizontal) and the patch mean from one-hot maps.
// - FlowNetC's configuration (k 1, max_displacement 20, strides 1 and 2, padding 20) on [N, 256,
//   48, 64]: output [N, 441, 48, 64], spot values against direct sums, gradient shapes.
// - Strided views, partial gradient masks, an empty batch, and every argument error.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "support/draw.h"
#include "support/op_check.h"

namespace {

using namespace convtape;
using Values = std::vector<double>;

using ct_test::Draw;

struct Spec {
  std::int64_t n = 1, c = 1, h = 1, w = 1;
  std::int64_t k = 1, md = 0, s1 = 1, s2 = 1, pad = 0;

  CorrelationOptions options() const {
    return CorrelationOptions().kernel_size(k).max_displacement(md).stride1(s1).stride2(s2).padding(
        pad);
  }
  Shape in_shape() const { return {n, c, h, w}; }
  std::int64_t r() const { return (k - 1) / 2; }
  std::int64_t border() const { return md + r(); }
  std::int64_t grid_radius() const { return md / s2; }
  std::int64_t grid() const { return 2 * grid_radius() + 1; }
  std::int64_t out_h() const { return (h + 2 * pad - 2 * border() + s1 - 1) / s1; }
  std::int64_t out_w() const { return (w + 2 * pad - 2 * border() + s1 - 1) / s1; }
  Shape out_shape() const { return {n, grid() * grid(), out_h(), out_w()}; }
  double scale() const { return 1.0 / static_cast<double>(k * k * c); }
  bool exact_in_float() const {
    const std::int64_t m = k * k * c;
    return (m & (m - 1)) == 0;
  }
  std::string describe() const {
    std::ostringstream s;
    s << "f [" << n << ", " << c << ", " << h << ", " << w << "], k " << k << ", md " << md
      << ", stride1 " << s1 << ", stride2 " << s2 << ", padding " << pad;
    return s.str();
  }
};

// Calls f(index into f1, index into f2, index into y) for every product of the definition, in
// unpadded coordinates: centre (y * s1 + border - pad, x * s1 + border - pad).
template <class F>
void for_each_term(const Spec& s, F&& f) {
  const std::int64_t rr = s.grid_radius(), d = s.grid(), ho = s.out_h(), wo = s.out_w();
  for (std::int64_t n = 0; n < s.n; ++n)
    for (std::int64_t p = -rr; p <= rr; ++p)
      for (std::int64_t o = -rr; o <= rr; ++o)
        for (std::int64_t y = 0; y < ho; ++y)
          for (std::int64_t x = 0; x < wo; ++x) {
            const std::int64_t yi = ((n * d * d + (p + rr) * d + (o + rr)) * ho + y) * wo + x;
            const std::int64_t cy = y * s.s1 + s.border() - s.pad,
                               cx = x * s.s1 + s.border() - s.pad;
            for (std::int64_t i = -s.r(); i <= s.r(); ++i)
              for (std::int64_t j = -s.r(); j <= s.r(); ++j) {
                const std::int64_t y1 = cy + i, x1 = cx + j;
                const std::int64_t y2 = y1 + p * s.s2, x2 = x1 + o * s.s2;
                if (y1 < 0 || y1 >= s.h || x1 < 0 || x1 >= s.w) continue;
                if (y2 < 0 || y2 >= s.h || x2 < 0 || x2 >= s.w) continue;
                for (std::int64_t c = 0; c < s.c; ++c) {
                  const std::int64_t base = (n * s.c + c) * s.h;
                  f((base + y1) * s.w + x1, (base + y2) * s.w + x2, yi);
                }
              }
          }
}

std::size_t at(std::int64_t i) {
  return static_cast<std::size_t>(i);
}

// Unscaled sums (exact for small integers); the scale is applied by the caller.
Values ref_sums(const Spec& s, const Values& f1, const Values& f2) {
  Values y(at(numel(s.out_shape())), 0.0);
  for_each_term(s, [&](std::int64_t a, std::int64_t b, std::int64_t i) {
    y[at(i)] += f1[at(a)] * f2[at(b)];
  });
  return y;
}

struct Grads {
  Values df1, df2;
};

Grads ref_grad_sums(const Spec& s, const Values& f1, const Values& f2, const Values& dy) {
  Grads g{Values(f1.size(), 0.0), Values(f2.size(), 0.0)};
  for_each_term(s, [&](std::int64_t a, std::int64_t b, std::int64_t i) {
    g.df1[at(a)] += dy[at(i)] * f2[at(b)];
    g.df2[at(b)] += dy[at(i)] * f1[at(a)];
  });
  return g;
}

Values small_ints(const Shape& shape, Draw& d) {
  Values v(at(numel(shape)));
  for (auto& x : v) x = static_cast<double>(d(-4, 4));
  return v;
}

Tensor as_tensor(const Values& v, const Shape& shape, DType dtype, bool requires_grad = false) {
  return tensor(v, shape, dtype).requires_grad_(requires_grad);
}

// The scaled reference in the dtype's arithmetic: one rounding of the exact sum times the scale.
Values scaled(const Values& sums, double scale, DType dtype) {
  Values out(sums.size());
  for (std::size_t i = 0; i < sums.size(); ++i)
    out[i] = dtype == kFloat32
                 ? static_cast<double>(static_cast<float>(sums[i]) * static_cast<float>(scale))
                 : sums[i] * scale;
  return out;
}

bool close(const Values& got, const Values& want, double tol) {
  if (got.size() != want.size()) return false;
  for (std::size_t i = 0; i < got.size(); ++i)
    if (!(std::abs(got[i] - want[i]) <= tol * (1.0 + std::abs(want[i])))) {
      UNSCOPED_INFO("element " << i << ": " << got[i] << " vs " << want[i]);
      return false;
    }
  return true;
}

// Forward and both gradients of one configuration against the reference, in both dtypes.
void check_against_reference(const Spec& s, std::uint32_t seed) {
  INFO(s.describe());
  Draw d(seed);
  const Values f1 = small_ints(s.in_shape(), d), f2 = small_ints(s.in_shape(), d);
  const Values dy = small_ints(s.out_shape(), d);
  const Values sums = ref_sums(s, f1, f2);
  const Grads gs = ref_grad_sums(s, f1, f2, dy);
  // Gradients: dy * scale is exact when the scale is a power of two.
  Values df1(gs.df1.size()), df2(gs.df2.size());
  for (std::size_t i = 0; i < df1.size(); ++i) df1[i] = gs.df1[i] * s.scale();
  for (std::size_t i = 0; i < df2.size(); ++i) df2[i] = gs.df2[i] * s.scale();
  for (DType dtype : {kFloat32, kFloat64}) {
    INFO(dtype_name(dtype));
    const Tensor a = as_tensor(f1, s.in_shape(), dtype, true);
    const Tensor b = as_tensor(f2, s.in_shape(), dtype, true);
    const Tensor y = correlation(a, b, s.options());
    REQUIRE(y.shape() == s.out_shape());
    y.backward(as_tensor(dy, s.out_shape(), dtype));
    const Values want = scaled(sums, s.scale(), dtype);
    if (dtype == kFloat32 && s.exact_in_float()) {
      CHECK(y.to_vector<double>() == want);
      CHECK(a.grad().to_vector<double>() == df1);
      CHECK(b.grad().to_vector<double>() == df2);
    } else {
      const double tol = dtype == kFloat32 ? 1e-5 : 1e-12;
      CHECK(close(y.to_vector<double>(), want, tol));
      CHECK(close(a.grad().to_vector<double>(), df1, tol));
      CHECK(close(b.grad().to_vector<double>(), df2, tol));
    }
  }
}

Spec spec(Shape in, std::int64_t k, std::int64_t md, std::int64_t s1, std::int64_t s2,
          std::int64_t pad) {
  Spec s;
  s.n = in[0];
  s.c = in[1];
  s.h = in[2];
  s.w = in[3];
  s.k = k;
  s.md = md;
  s.s1 = s1;
  s.s2 = s2;
  s.pad = pad;
  return s;
}

// A random configuration with at least one output position.
Spec random_spec(Draw& d) {
  for (;;) {
    Spec s;
    s.n = d(1, 2);
    s.c = d(1, 20);
    s.h = d(1, 9);
    s.w = d(1, 9);
    s.k = 2 * d(0, 2) + 1;
    s.md = d(0, 5);
    s.s1 = d(1, 3);
    s.s2 = d(1, 3);
    s.pad = d(0, 6);
    if (s.out_h() >= 1 && s.out_w() >= 1) return s;
  }
}

}  // namespace

TEST_CASE("correlation: hand-picked cases equal the direct-loop reference, gradients included",
          "[ops][correlation][exact]") {
  const std::vector<Spec> cases{
      spec({1, 1, 3, 3}, 1, 1, 1, 1, 1),     // the smallest grid, C = 1
      spec({2, 4, 7, 6}, 1, 2, 1, 1, 2),     // D = 5, padding = border: output keeps H, W
      spec({1, 16, 8, 9}, 1, 3, 1, 2, 3),    // stride2 2, md not a multiple of it (R = 1)
      spec({1, 32, 9, 10}, 1, 4, 2, 2, 4),   // stride1 2: ceil division of the output size
      spec({2, 3, 9, 8}, 3, 2, 1, 1, 3),     // k 3: patches, padding above the border
      spec({1, 5, 11, 10}, 5, 1, 2, 1, 1),   // k 5, padding below the border
      spec({1, 17, 6, 7}, 1, 9, 1, 1, 9),    // D = 19: displacement blocks of 7, 6 and 6
      spec({1, 37, 5, 6}, 3, 1, 1, 1, 2),    // k * C = 111: partial vectors in both kernels
      spec({1, 2, 6, 12}, 1, 0, 1, 1, 0),    // D = 1: the channel mean of f1 * f2
      spec({1, 8, 4, 5}, 3, 3, 3, 3, 4),     // strides 3, every step skipping rows
      spec({2, 32, 12, 12}, 1, 3, 1, 1, 3),  // 2 x 49 x 144 x 32 products: the parallel path
  };
  std::uint32_t seed = 1;
  for (const Spec& s : cases) check_against_reference(s, seed++);
}

TEST_CASE("correlation: seeded random cases equal the reference", "[ops][correlation][exact]") {
  Draw d(2024u);
  for (int i = 0; i < 40; ++i) check_against_reference(random_spec(d), 100u + i);
}

TEST_CASE("correlation: float64 gradcheck in both inputs", "[ops][correlation][gradcheck]") {
  const std::vector<Spec> cases{
      spec({1, 2, 4, 5}, 1, 1, 1, 1, 1), spec({2, 3, 5, 4}, 3, 1, 1, 1, 2),
      spec({1, 2, 6, 6}, 1, 2, 2, 2, 2), spec({1, 3, 5, 6}, 3, 2, 1, 2, 1),
      spec({1, 1, 7, 5}, 5, 1, 1, 1, 3)};
  manual_seed(11);
  // Through the op harness (support/op_check.h): float32 against float64 and, on a GPU, CUDA
  // against the CPU as well.
  for (const Spec& s : cases) {
    const Tensor a = ct_test::leaf(s.in_shape()), b = ct_test::leaf(s.in_shape());
    const CorrelationOptions o = s.options();
    ct_test::OpCheck(s.describe(),
                     [o](const std::vector<Tensor>& in) { return correlation(in[0], in[1], o); },
                     {a, b})
        .run();
  }
  // The autocorrelation: one tensor as both inputs, so its gradient is the sum of both paths.
  const Tensor a = ct_test::leaf({1, 2, 5, 5});
  const CorrelationOptions o = CorrelationOptions().max_displacement(2).stride2(2).padding(1);
  ct_test::OpCheck("autocorrelation",
                   [o](const std::vector<Tensor>& in) { return correlation(in[0], in[0], o); }, {a})
      .run();
}

TEST_CASE("correlation: channel (p + R) * D + (o + R) holds vertical offset p, horizontal o",
          "[ops][correlation]") {
  // One-hot maps: f1 is 1 at (2, 2), f2 at (1, 4), i.e. f2's one lies f1's displaced by -1 rows
  // and +2 columns. With stride2 1 that is p = -1 (vertical) and o = +2 (horizontal); R = 2,
  // D = 5, so the channel is (p + 2) * 5 + (o + 2) = 9.
  std::vector<double> v1(5 * 6, 0.0), v2(5 * 6, 0.0);
  v1[2 * 6 + 2] = 1.0;
  v2[1 * 6 + 4] = 1.0;
  const Tensor f1 = tensor(v1, {1, 1, 5, 6}), f2 = tensor(v2, {1, 1, 5, 6});
  const Tensor y = correlation(f1, f2, CorrelationOptions().max_displacement(2).padding(2));
  REQUIRE(y.shape() == Shape{1, 25, 5, 6});
  // The only nonzero: channel 9 at the output whose centre is f1's one, (2, 2).
  CHECK(y.at<float>({0, 9, 2, 2}) == 1.0f);
  CHECK(y.sum().item() == 1.0);
  // A 3 x 3 patch averages over k * k * C = 9 products: every output whose patch holds (2, 2) in
  // f1 and, displaced, (1, 4) in f2 sees 1 / 9.
  const Tensor y3 =
      correlation(f1, f2, CorrelationOptions().kernel_size(3).max_displacement(2).padding(3));
  REQUIRE(y3.shape() == Shape{1, 25, 5, 6});
  CHECK(std::abs(y3.sum().item() - 9.0 / 9.0) < 1e-6);  // nine patch positions, 1 / 9 each
  CHECK(std::abs(y3.at<float>({0, 9, 1, 1}) - 1.0f / 9.0f) < 1e-7);
  CHECK(std::abs(y3.at<float>({0, 9, 3, 3}) - 1.0f / 9.0f) < 1e-7);
  CHECK(y3.at<float>({0, 8, 2, 2}) == 0.0f);
}

TEST_CASE("correlation: max_displacement 0 is the channel mean of f1 * f2", "[ops][correlation]") {
  manual_seed(3);
  const Tensor f1 = randn({2, 6, 5, 7}, kFloat64), f2 = randn({2, 6, 5, 7}, kFloat64);
  const Tensor y = correlation(f1, f2);
  REQUIRE(y.shape() == Shape{2, 1, 5, 7});
  CHECK(ct_test::allclose(y, mean(mul(f1, f2), {1}, true), 1e-12, 1e-14));
}

TEST_CASE("correlation: FlowNetC configuration (k 1, max_displacement 20, stride2 2)",
          "[ops][correlation][flownet]") {
  manual_seed(20);
  const std::int64_t c = 256, h = 48, w = 64;
  const Tensor f1 = randn({1, c, h, w}).requires_grad_(), f2 = randn({1, c, h, w}).requires_grad_();
  const CorrelationOptions o = CorrelationOptions::flownetc();
  CHECK(o.kernel_size() == 1);
  CHECK(o.max_displacement() == 20);
  CHECK(o.stride1() == 1);
  CHECK(o.stride2() == 2);
  CHECK(o.padding() == 20);
  const Tensor y = correlation(f1, f2, o);
  REQUIRE(y.shape() == Shape{1, 441, 48, 64});
  // Spot values by direct sums: channel (p + 10) * 21 + (o + 10) at (y, x) is the channel mean of
  // f1[:, y, x] * f2[:, y + 2p, x + 2o], zero when that lies outside the map.
  const auto v1 = f1.to_vector<double>(), v2 = f2.to_vector<double>();
  struct Spot {
    std::int64_t p, o, y, x;
  };
  for (const Spot s :
       {Spot{0, 0, 0, 0}, Spot{-10, -10, 47, 63}, Spot{10, 10, 0, 0}, Spot{3, -7, 20, 30},
        Spot{-10, 10, 25, 2}, Spot{10, -10, 5, 60}, Spot{-1, 1, 0, 0}}) {
    const std::int64_t y2 = s.y + 2 * s.p, x2 = s.x + 2 * s.o;
    double want = 0.0;
    if (y2 >= 0 && y2 < h && x2 >= 0 && x2 < w)
      for (std::int64_t ci = 0; ci < c; ++ci)
        want += v1[at((ci * h + s.y) * w + s.x)] * v2[at((ci * h + y2) * w + x2)];
    want /= static_cast<double>(c);
    INFO("p " << s.p << ", o " << s.o << ", y " << s.y << ", x " << s.x);
    CHECK(std::abs(y.at<float>({0, (s.p + 10) * 21 + s.o + 10, s.y, s.x}) - want) <= 1e-5);
  }
  sum(y).backward();
  CHECK(f1.grad().shape() == f1.shape());
  CHECK(f2.grad().shape() == f2.shape());
  // d sum(y) / d f1[c, y, x] = sum over the displacements of f2[c, y + 2p, x + 2o] / C.
  const auto g1 = f1.grad().to_vector<double>();
  double want = 0.0;
  for (std::int64_t p = -10; p <= 10; ++p)
    for (std::int64_t q = -10; q <= 10; ++q) {
      const std::int64_t y2 = 10 + 2 * p, x2 = 30 + 2 * q;
      if (y2 >= 0 && y2 < h && x2 >= 0 && x2 < w) want += v2[at((5 * h + y2) * w + x2)];
    }
  CHECK(std::abs(g1[at((5 * h + 10) * w + 30)] - want / c) <= 1e-5);
}

TEST_CASE("correlation: strided views, partial gradients and an empty batch",
          "[ops][correlation]") {
  Draw d(9u);
  const Spec s = spec({2, 3, 6, 7}, 3, 2, 1, 2, 2);
  // f1 as a transposed view of [N, H, C, W].
  const Tensor f1s = as_tensor(small_ints({2, 6, 3, 7}, d), {2, 6, 3, 7}, kFloat64, true);
  const Tensor f1 = transpose(f1s, 1, 2);
  REQUIRE_FALSE(f1.is_contiguous());
  const Tensor f2 = as_tensor(small_ints(s.in_shape(), d), s.in_shape(), kFloat64);
  const Tensor f1c = as_tensor(f1.to_vector<double>(), s.in_shape(), kFloat64, true);
  const Tensor y = correlation(f1, f2, s.options()), yc = correlation(f1c, f2, s.options());
  REQUIRE(ct_test::equal(y, yc));
  const Tensor dy = as_tensor(small_ints(s.out_shape(), d), s.out_shape(), kFloat64);
  y.backward(dy);
  yc.backward(dy);
  CHECK(ct_test::equal(transpose(f1s.grad(), 1, 2).contiguous(), f1c.grad()));
  CHECK_FALSE(f2.grad().defined());  // f2 did not ask for a gradient

  const auto rg = TensorOptions().dtype(kFloat64).requires_grad(true);
  const Tensor e1 = zeros({0, 3, 5, 5}, rg), e2 = zeros({0, 3, 5, 5}, rg);
  const Tensor ye = correlation(e1, e2, CorrelationOptions().max_displacement(1).padding(1));
  REQUIRE(ye.shape() == Shape{0, 9, 5, 5});
  sum(ye).backward();
  CHECK(e1.grad().shape() == e1.shape());
  CHECK(e2.grad().shape() == e2.shape());
}

TEST_CASE("correlation: argument errors", "[ops][correlation][errors]") {
  // On every available device (support/op_check.h moves the inputs there).
  const auto with = [](const CorrelationOptions& o) {
    return [o](const std::vector<Tensor>& v) { return correlation(v[0], v[1], o); };
  };
  const auto plain = with(CorrelationOptions());
  const Tensor f = zeros({1, 2, 5, 5});
  ct_test::check_errors(
      "correlation",
      {{plain, {Tensor(), f}, "correlation: expected a defined f1 tensor, got an undefined one"},
       {plain, {f, Tensor()}, "correlation: expected a defined f2 tensor, got an undefined one"},
       {plain,
        {f, zeros({1, 2, 5, 5}, kInt64)},
        "correlation: expected a floating-point tensor (float32 or float64), got int64"},
       {plain,
        {f, zeros({1, 2, 5, 5}, kFloat64)},
        "correlation: expected tensors of one dtype, got float32 and float64"},
       {plain,
        {zeros({2, 5, 5}), zeros({2, 5, 5})},
        "correlation: expected f1 and f2 of rank 4 ([N, C, H, W]), got [2, 5, 5] and [2, 5, 5]"},
       {plain,
        {f, zeros({1, 2, 5, 6})},
        "correlation: expected f1 and f2 of one shape, got [1, 2, 5, 5] and [1, 2, 5, 6]"},
       {plain,
        {zeros({1, 0, 5, 5}), zeros({1, 0, 5, 5})},
        "correlation: expected at least one channel, got f1 [1, 0, 5, 5]"},
       {with(CorrelationOptions().kernel_size(2)),
        {f, f},
        "correlation: expected an odd kernel_size >= 1, got 2"},
       {with(CorrelationOptions().kernel_size(-1)),
        {f, f},
        "correlation: expected an odd kernel_size >= 1, got -1"},
       {with(CorrelationOptions().max_displacement(-1)),
        {f, f},
        "correlation: expected max_displacement >= 0, got -1"},
       {with(CorrelationOptions().stride1(0)),
        {f, f},
        "correlation: expected stride1 >= 1 and stride2 >= 1, got stride1 = 0, stride2 = 1"},
       {with(CorrelationOptions().stride2(-2)),
        {f, f},
        "correlation: expected stride1 >= 1 and stride2 >= 1, got stride1 = 1, stride2 = -2"},
       {with(CorrelationOptions().padding(-1)),
        {f, f},
        "correlation: expected padding >= 0, got -1"},
       {with(CorrelationOptions().max_displacement(3)),
        {f, f},
        "correlation: expected padded inputs larger than twice the border (max_displacement + "
        "(kernel_size - 1) / 2 = 3), got padded 5 x 5 (input [1, 2, 5, 5], padding 0)"},
       {with(CorrelationOptions().kernel_size(5)),
        {zeros({1, 2, 9, 4}), zeros({1, 2, 9, 4})},
        "got padded 9 x 4"}});
}

TEST_CASE("correlation: device mismatches are refused", "[ops][correlation]") {
  // Tensors labelled as living on cuda:0 over host memory that nothing dereferences.
  static float host[64] = {};
  auto fake = std::make_shared<Storage>(host, sizeof(host), Device(DeviceType::CUDA, 0), nullptr);
  const Tensor fd = Tensor::make(fake, {1, 1, 4, 4}, {16, 16, 4, 1}, 0, kFloat32);
  const Tensor f = zeros({1, 1, 4, 4});
  CT_REQUIRE_ERROR(correlation(f, fd),
                   "correlation: expected tensors on one device, got cpu and "
                   "cuda:0");
}
