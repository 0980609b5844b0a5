// CUDA correlation (cuda/correlation.cu) against the CPU backend through the public op:
// - Forward and both gradients on CPU and CUDA copies of the same inputs with one upstream
//   gradient (the op harness, support/op_check.h), float32 within rtol 1e-4 / atol 1e-5 and float64
//   within 1e-12: hand-picked configurations (kernel sizes 1 / 3 / 5, stride1 and stride2 above 1,
//   max_displacement not a multiple of stride2, padding below, at and above the border, grids up to
//   19 x 19), a seeded random sweep, and FlowNetC's layer at full size ([2, 256, 48, 64], 441
//   displacements).
// - Small-integer inputs give bitwise-equal results on both devices (every sum exact).
// - float64 gradcheck on the GPU in both inputs, and with one tensor as both inputs; partial
//   gradients, an empty batch, and the kernels' own argument errors.
#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cuda/correlation.h"
#include "support/draw.h"
#include "support/op_check.h"

namespace {

using namespace convtape;

const Device kGpu(DeviceType::CUDA, 0);  // named only: the main checks that it exists

using ct_test::Draw;

struct Case {
  Shape in;
  CorrelationOptions o;

  std::string describe() const {
    std::ostringstream s;
    s << "f " << to_string(in) << ", k " << o.kernel_size() << ", md " << o.max_displacement()
      << ", stride1 " << o.stride1() << ", stride2 " << o.stride2() << ", padding " << o.padding();
    return s.str();
  }
};

Case make_case(Shape in, std::int64_t k, std::int64_t md, std::int64_t s1, std::int64_t s2,
               std::int64_t pad) {
  return {std::move(in),
          CorrelationOptions().kernel_size(k).max_displacement(md).stride1(s1).stride2(s2).padding(
              pad)};
}

// Forward and both gradients on both devices, in each of dtypes (inputs drawn in float64 and
// rounded for float32).
void compare(const Case& c, std::uint64_t seed,
             const std::vector<DType>& dtypes = {kFloat32, kFloat64}) {
  Generator gen(seed);
  const Tensor a = uniform(c.in, -1.0, 1.0, kFloat64, &gen).requires_grad_(true);
  const Tensor b = uniform(c.in, -1.0, 1.0, kFloat64, &gen).requires_grad_(true);
  const CorrelationOptions o = c.o;
  ct_test::OpCheck(c.describe(),
                   [o](const std::vector<Tensor>& v) { return correlation(v[0], v[1], o); }, {a, b})
      .cuda_only()
      .dtypes(dtypes)
      .upstream_seed(seed + 1)
      .run();
}

Tensor small_ints(const Shape& shape, DType dtype, Draw& d) {
  std::vector<double> v(static_cast<std::size_t>(numel(shape)));
  for (auto& e : v) e = static_cast<double>(d(-4, 4));
  return tensor(v, shape, dtype);
}

}  // namespace

TEST_CASE("correlation on CUDA matches the CPU: hand-picked configurations",
          "[cuda][correlation]") {
  const std::vector<Case> cases{
      make_case({1, 1, 3, 3}, 1, 1, 1, 1, 1),    make_case({2, 4, 7, 6}, 1, 2, 1, 1, 2),
      make_case({1, 16, 8, 9}, 1, 3, 1, 2, 3),   make_case({1, 32, 9, 10}, 1, 4, 2, 2, 4),
      make_case({2, 3, 9, 8}, 3, 2, 1, 1, 3),    make_case({1, 5, 11, 10}, 5, 1, 2, 1, 1),
      make_case({1, 17, 6, 7}, 1, 9, 1, 1, 9),   make_case({1, 37, 5, 6}, 3, 1, 1, 1, 2),
      make_case({1, 2, 6, 12}, 1, 0, 1, 1, 0),   make_case({1, 8, 4, 5}, 3, 3, 3, 3, 4),
      make_case({2, 32, 12, 12}, 1, 3, 1, 1, 3), make_case({1, 4, 10, 9}, 3, 4, 2, 2, 3),
  };
  std::uint64_t seed = 1;
  for (const Case& c : cases) {
    compare(c, seed);
    seed += 2;
  }
}

TEST_CASE("correlation on CUDA matches the CPU: seeded random configurations",
          "[cuda][correlation]") {
  Draw d(2024u);
  int configs = 0;
  while (configs < 40) {
    const Case c = make_case({d(1, 2), d(1, 20), d(1, 9), d(1, 9)}, 2 * d(0, 2) + 1, d(0, 5),
                             d(1, 3), d(1, 3), d(0, 6));
    const std::int64_t border = c.o.max_displacement() + (c.o.kernel_size() - 1) / 2;
    if (c.in[2] + 2 * c.o.padding() - 2 * border < 1 ||
        c.in[3] + 2 * c.o.padding() - 2 * border < 1)
      continue;
    compare(c, 100 + static_cast<std::uint64_t>(configs), {configs % 2 == 0 ? kFloat32 : kFloat64});
    ++configs;
  }
  CHECK(configs == 40);
}

TEST_CASE("correlation on CUDA: small integers give bitwise-equal results", "[cuda][correlation]") {
  Draw d(7u);
  for (const Case& c :
       {make_case({2, 5, 9, 8}, 3, 2, 1, 2, 3), make_case({1, 6, 11, 7}, 1, 4, 2, 2, 4)})
    for (const DType dtype : {kFloat32, kFloat64}) {
      INFO(c.describe() << " " << dtype_name(dtype));
      const Tensor a = small_ints(c.in, dtype, d), b = small_ints(c.in, dtype, d);
      const Tensor y = correlation(a, b, c.o);
      CHECK(ct_test::equal(correlation(a.to(kGpu), b.to(kGpu), c.o).cpu(), y));
      const Tensor dy = small_ints(y.shape(), dtype, d);
      const Tensor ag = a.to(kGpu).detach().requires_grad_(true);
      const Tensor bg = b.to(kGpu).detach().requires_grad_(true);
      const Tensor ac = a.clone().requires_grad_(true), bc = b.clone().requires_grad_(true);
      correlation(ac, bc, c.o).backward(dy);
      correlation(ag, bg, c.o).backward(dy.to(kGpu));
      CHECK(ct_test::equal(ag.grad().cpu(), ac.grad()));
      CHECK(ct_test::equal(bg.grad().cpu(), bc.grad()));
    }
}

TEST_CASE("correlation on CUDA: FlowNetC's layer at full size", "[cuda][correlation][slow]") {
  const Case c{{2, 256, 48, 64}, CorrelationOptions::flownetc()};
  compare(c, 77, {kFloat32});
}

TEST_CASE("correlation on CUDA: float64 gradcheck on the GPU", "[cuda][correlation][gradcheck]") {
  manual_seed(11);
  const auto gpu_leaf = [](const Shape& s) {
    return ct_test::leaf(s).to(kGpu).detach().requires_grad_(true);
  };
  for (const Case& c :
       {make_case({1, 2, 4, 5}, 1, 1, 1, 1, 1), make_case({2, 3, 5, 4}, 3, 1, 1, 1, 2),
        make_case({1, 2, 6, 6}, 1, 2, 2, 2, 2), make_case({1, 3, 5, 6}, 3, 2, 1, 2, 1),
        make_case({1, 1, 7, 5}, 5, 1, 1, 1, 3)}) {
    INFO(c.describe());
    const CorrelationOptions o = c.o;
    CT_REQUIRE_GRADCHECK(
        [o](const std::vector<Tensor>& in) { return correlation(in[0], in[1], o); },
        (std::vector<Tensor>{gpu_leaf(c.in), gpu_leaf(c.in)}));
  }
  const CorrelationOptions o = CorrelationOptions().max_displacement(2).stride2(2).padding(1);
  CT_REQUIRE_GRADCHECK([o](const std::vector<Tensor>& in) { return correlation(in[0], in[0], o); },
                       (std::vector<Tensor>{gpu_leaf({1, 2, 5, 5})}));
}

TEST_CASE("correlation on CUDA: partial gradients, an empty batch and kernel argument errors",
          "[cuda][correlation]") {
  manual_seed(4);
  const CorrelationOptions o = CorrelationOptions().kernel_size(3).max_displacement(2).padding(3);
  const Tensor a = randn({1, 3, 6, 7}, kFloat64), b = randn({1, 3, 6, 7}, kFloat64);
  // Only f1 asks for a gradient.
  ct_test::OpCheck("correlation, gradient of f1 only",
                   [o](const std::vector<Tensor>& in) { return correlation(in[0], in[1], o); },
                   {a.detach().requires_grad_(true), b})
      .cuda_only()
      .dtypes({kFloat64})
      .run();
  const Tensor ag = a.to(kGpu), bg = b.to(kGpu);
  const Tensor e = zeros({0, 3, 5, 5}, kGpu);
  CHECK(correlation(e, e, CorrelationOptions().max_displacement(1).padding(1)).shape() ==
        Shape{0, 9, 5, 5});
  CorrelationGeometry g;
  g.batch = 1;
  g.channels = 3;
  g.height = 6;
  g.width = 7;
  g.kernel = 3;
  g.max_displacement = 2;
  g.padding = 3;
  CT_REQUIRE_ERROR(cuda::correlation_forward(ag.detach(), bg.to(kFloat32), g),
                   "correlation: expected f2 of dtype float64, got float32");
  CT_REQUIRE_ERROR(cuda::correlation_forward(a, b, g),
                   "correlation: expected f1 on a CUDA device, got one on cpu");
  CT_REQUIRE_ERROR(cuda::correlation_backward_f1(zeros({1, 25, 5, 5}, kGpu), bg, g),
                   "correlation: expected gradient of shape [1, 25, 6, 7], got [1, 25, 5, 5]");
}
