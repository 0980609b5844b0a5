// Host tests of the CUDA correlation kernels' bodies (cuda/correlation_body.h): the functors the
// GPU runs, run here over every index on host buffers (ct_test::run_on_host), against the CPU
// backend (cpu/correlation.h) on the same CorrelationGeometry.
// - Hand-picked configurations (kernel sizes 1 / 3 / 5, stride1 and stride2 above 1, a
//   max_displacement that is not a multiple of stride2, padding below, at and above the border,
//   rectangular maps, grids of 1 to 19 displacements, FlowNetC's k 1 / stride2 2 scaled down) and
//   seeded random ones, forward and both gradients, float32 and float64.
// - Exactness: on small integers every sum is exact in any order and the one multiplication by
//   the scale T(1) / T(k * k * C) rounds alike, so results are compared with ==; real values are
//   compared within rounding (the CPU sums in SIMD lanes, the bodies one term at a time).
// - Every output / gradient element is written (the outputs start as a sentinel), and the
//   comparison catches a body run with the wrong padding.
#include <cmath>
#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cpu/correlation.h"
#include "cuda/correlation_body.h"
#include "cuda/correlation_plan.h"
#include "support/draw.h"
#include "support/host_launch.h"
#include "support/test_util.h"

namespace {

using namespace convtape;
using cuda::CorrelationShape;

using ct_test::Draw;

CorrelationGeometry geometry(Shape in, std::int64_t k, std::int64_t md, std::int64_t s1,
                             std::int64_t s2, std::int64_t pad) {
  CorrelationGeometry g;
  g.batch = in[0];
  g.channels = in[1];
  g.height = in[2];
  g.width = in[3];
  g.kernel = k;
  g.max_displacement = md;
  g.stride1 = s1;
  g.stride2 = s2;
  g.padding = pad;
  return g;
}

std::string describe(const CorrelationGeometry& g) {
  std::ostringstream s;
  s << "f [" << g.batch << ", " << g.channels << ", " << g.height << ", " << g.width << "], k "
    << g.kernel << ", md " << g.max_displacement << ", stride1 " << g.stride1 << ", stride2 "
    << g.stride2 << ", padding " << g.padding << " -> D " << g.grid() << ", " << g.out_height()
    << " x " << g.out_width();
  return s.str();
}

// The kernels' view of a geometry, field by field as cuda/correlation.cpp builds it.
CorrelationShape shape_of(const CorrelationGeometry& g) {
  return cuda::correlation_shape(g);  // the same code as cuda/correlation.cpp's
}

Shape in_shape(const CorrelationGeometry& g) {
  return {g.batch, g.channels, g.height, g.width};
}
Shape out_shape(const CorrelationGeometry& g) {
  return {g.batch, g.grid() * g.grid(), g.out_height(), g.out_width()};
}

Tensor make(const Shape& shape, DType dtype, bool ints, Draw& d) {
  std::vector<double> v(static_cast<std::size_t>(numel(shape)));
  for (auto& e : v) e = ints ? static_cast<double>(d(-4, 4)) : d.real();
  return tensor(v, shape, dtype);
}

template <class T>
T scale_of(const CorrelationGeometry& g) {
  return T(1) / static_cast<T>(g.kernel * g.kernel * g.channels);
}

template <class T>
Tensor run_forward(const Tensor& f1, const Tensor& f2, const CorrelationGeometry& g,
                   const CorrelationShape& s) {
  Tensor y = full(out_shape(g), 777.0, dtype_of<T>());
  ct_test::run_on_host(y.numel(), cuda::CorrelationForward<T>{f1.data_ptr<T>(), f2.data_ptr<T>(),
                                                              y.data_ptr<T>(), s, scale_of<T>(g)});
  return y;
}

template <class T>
Tensor run_backward_f1(const Tensor& dy, const Tensor& f2, const CorrelationGeometry& g) {
  Tensor df1 = full(in_shape(g), 777.0, dtype_of<T>());
  ct_test::run_on_host(
      df1.numel(), cuda::CorrelationBackwardF1<T>{dy.data_ptr<T>(), f2.data_ptr<T>(),
                                                  df1.data_ptr<T>(), shape_of(g), scale_of<T>(g)});
  return df1;
}

template <class T>
Tensor run_backward_f2(const Tensor& dy, const Tensor& f1, const CorrelationGeometry& g) {
  Tensor df2 = full(in_shape(g), 777.0, dtype_of<T>());
  ct_test::run_on_host(
      df2.numel(), cuda::CorrelationBackwardF2<T>{dy.data_ptr<T>(), f1.data_ptr<T>(),
                                                  df2.data_ptr<T>(), shape_of(g), scale_of<T>(g)});
  return df2;
}

bool same(const Tensor& got, const Tensor& want) {
  if (got.shape() != want.shape()) return false;
  const auto a = got.to_vector<double>(), b = want.to_vector<double>();
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i]) {
      UNSCOPED_INFO("element " << i << ": " << a[i] << " vs " << b[i]);
      return false;
    }
  return true;
}

bool close(const Tensor& got, const Tensor& want, double tol) {
  if (got.shape() != want.shape()) return false;
  const auto a = got.to_vector<double>(), b = want.to_vector<double>();
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!(std::abs(a[i] - b[i]) <= tol * (1.0 + std::abs(b[i])))) {
      UNSCOPED_INFO("element " << i << ": " << a[i] << " vs " << b[i]);
      return false;
    }
  return true;
}

// Forward and both gradients of one configuration, both dtypes, small integers and reals.
int check(const CorrelationGeometry& g, std::uint32_t seed) {
  INFO(describe(g));
  Draw d(seed);
  int checks = 0;
  for (const bool ints : {true, false})
    for (const DType dtype : {kFloat32, kFloat64}) {
      INFO((ints ? "small integers, " : "reals, ") << dtype_name(dtype));
      const Tensor f1 = make(in_shape(g), dtype, ints, d), f2 = make(in_shape(g), dtype, ints, d);
      const Tensor dy = make(out_shape(g), dtype, ints, d);
      const Tensor y = cpu::correlation_forward(f1, f2, g);
      const Tensor df1 = cpu::correlation_backward_f1(dy, f2, g);
      const Tensor df2 = cpu::correlation_backward_f2(dy, f1, g);
      Tensor gy, gf1, gf2;
      if (dtype == kFloat32) {
        gy = run_forward<float>(f1, f2, g, shape_of(g));
        gf1 = run_backward_f1<float>(dy, f2, g);
        gf2 = run_backward_f2<float>(dy, f1, g);
      } else {
        gy = run_forward<double>(f1, f2, g, shape_of(g));
        gf1 = run_backward_f1<double>(dy, f2, g);
        gf2 = run_backward_f2<double>(dy, f1, g);
      }
      if (ints) {
        CHECK(same(gy, y));
        CHECK(same(gf1, df1));
        CHECK(same(gf2, df2));
      } else {
        const double tol = dtype == kFloat32 ? 2e-5 : 1e-13;
        CHECK(close(gy, y, tol));
        CHECK(close(gf1, df1, tol));
        CHECK(close(gf2, df2, tol));
      }
      checks += 3;
    }
  return checks;
}

}  // namespace

TEST_CASE("cuda correlation bodies: hand-picked configurations equal the CPU",
          "[cuda_body][correlation]") {
  const std::vector<CorrelationGeometry> cases{
      geometry({1, 1, 3, 3}, 1, 1, 1, 1, 1),    // the smallest grid, C = 1
      geometry({2, 4, 7, 6}, 1, 2, 1, 1, 2),    // D = 5, padding = border
      geometry({1, 16, 8, 9}, 1, 3, 1, 2, 3),   // stride2 2, md not a multiple of it (R = 1)
      geometry({1, 32, 9, 10}, 1, 4, 2, 2, 4),  // stride1 2: ceil division of the output size
      geometry({2, 3, 9, 8}, 3, 2, 1, 1, 3),    // k 3, padding above the border
      geometry({1, 5, 11, 10}, 5, 1, 2, 1, 1),  // k 5, padding below the border
      geometry({1, 17, 6, 7}, 1, 9, 1, 1, 9),   // D = 19
      geometry({1, 37, 5, 6}, 3, 1, 1, 1, 2),   // k * k * C = 333, not a power of two
      geometry({1, 2, 6, 12}, 1, 0, 1, 1, 0),   // D = 1: the channel mean of f1 * f2
      geometry({1, 8, 4, 5}, 3, 3, 3, 3, 4),    // strides 3, every step skipping rows
      geometry({2, 6, 12, 13}, 1, 8, 1, 2, 8),  // FlowNetC's k 1, stride2 2, padding = md, scaled
      geometry({1, 4, 10, 9}, 3, 4, 2, 2, 3),   // k 3 with both strides 2
      geometry({1, 3, 5, 4}, 1, 6, 1, 3, 7),    // displacements reaching past the whole map
  };
  int checks = 0;
  std::uint32_t seed = 1;
  for (const CorrelationGeometry& g : cases) checks += check(g, seed++);
  CHECK(checks == static_cast<int>(cases.size()) * 12);
}

TEST_CASE("cuda correlation bodies: seeded random configurations equal the CPU",
          "[cuda_body][correlation]") {
  Draw d(2026u);
  int configs = 0;
  while (configs < 60) {
    const CorrelationGeometry g = geometry({d(1, 2), d(1, 12), d(1, 9), d(1, 9)}, 2 * d(0, 2) + 1,
                                           d(0, 5), d(1, 3), d(1, 3), d(0, 6));
    if (g.out_height() < 1 || g.out_width() < 1) continue;
    check(g, 500u + static_cast<std::uint32_t>(configs));
    ++configs;
  }
  CHECK(configs == 60);
}

TEST_CASE("cuda correlation bodies: an empty batch and a wrong padding",
          "[cuda_body][correlation]") {
  const CorrelationGeometry empty_batch = geometry({0, 3, 5, 5}, 1, 1, 1, 1, 1);
  const Tensor f = zeros(in_shape(empty_batch));
  CHECK(run_forward<float>(f, f, empty_batch, shape_of(empty_batch)).shape() == Shape{0, 9, 5, 5});
  CHECK(run_backward_f1<float>(zeros(out_shape(empty_batch)), f, empty_batch).shape() ==
        in_shape(empty_batch));
  // The same sums read with the border one pixel off must not pass.
  const CorrelationGeometry g = geometry({1, 3, 7, 8}, 3, 2, 1, 1, 3);
  Draw d(9u);
  const Tensor f1 = make(in_shape(g), kFloat64, true, d), f2 = make(in_shape(g), kFloat64, true, d);
  CorrelationShape off = shape_of(g);
  off.padding -= 1;
  CHECK_FALSE(same(run_forward<double>(f1, f2, g, off), cpu::correlation_forward(f1, f2, g)));
  CHECK(same(run_forward<double>(f1, f2, g, shape_of(g)), cpu::correlation_forward(f1, f2, g)));
}
