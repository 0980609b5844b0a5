// matmul on CUDA (cuBLAS strided-batched GEMM) against the CPU backend: every operand-rank
// combination (1-d x 1-d, 1-d x 2-d, 2-d x 1-d, 2-d x 2-d, batched, broadcast batch dims), empty
// and zero-inner-size products, forward and both gradients (the op harness, support/op_check.h)
// in float32 (TF32 off: rtol 1e-4 with atol scaled by sqrt(K)) and float64 (1e-11); exact
// small-integer products; float64 gradcheck on the GPU; TF32 on within a loose bound; and
// cuda::bmm's own argument checks.
#include <cmath>
#include <string>
#include <vector>

#include "cuda/gemm.h"
#include "cuda/settings.h"
#include "support/op_check.h"

namespace {

using namespace convtape;

const Device kGpu(DeviceType::CUDA, 0);  // named only: the main checks that it exists

class Tf32Guard {
 public:
  Tf32Guard() : saved_(cuda::allow_tf32()) { cuda::set_allow_tf32(false); }
  ~Tf32Guard() { cuda::set_allow_tf32(saved_); }
  Tf32Guard(const Tf32Guard&) = delete;
  Tf32Guard& operator=(const Tf32Guard&) = delete;

 private:
  bool saved_;
};

// matmul of a [as] and b [bs] on both devices in each of dtypes (float64 values, rounded for
// float32): rtol 1e-4 / 1e-11, atol 1e-5 / 1e-11 times sqrt(K + 1), four times that for the
// gradients.
void compare(const Shape& as, const Shape& bs,
             const std::vector<DType>& dtypes = {kFloat32, kFloat64}, std::uint64_t seed = 1) {
  Generator gen(seed);
  const Tensor a = uniform(as, -1, 1, kFloat64, &gen).requires_grad_();
  const Tensor b = uniform(bs, -1, 1, kFloat64, &gen).requires_grad_();
  const double k = std::sqrt(static_cast<double>(as.back() + 1));
  ct_test::OpCheck(to_string(as) + " @ " + to_string(bs),
                   [](const std::vector<Tensor>& v) { return matmul(v[0], v[1]); }, {a, b})
      .cuda_only()
      .dtypes(dtypes)
      .tolerance(kFloat32, {1e-4, 1e-5 * k}, {1e-4, 4e-5 * k})
      .tolerance(kFloat64, {1e-11, 1e-11 * k}, {1e-11, 4e-11 * k})
      .upstream_seed(seed + 1)
      .run();
}

}  // namespace

TEST_CASE("matmul on CUDA matches the CPU for every operand rank", "[cuda][linalg]") {
  Tf32Guard guard;
  const std::vector<std::pair<Shape, Shape>> cases{
      {{7}, {7}},                        // dot
      {{5}, {5, 3}},                     // vector @ matrix
      {{4, 6}, {6}},                     // matrix @ vector
      {{3, 5}, {5, 2}},                  // matrix @ matrix
      {{1, 1}, {1, 1}},                  // 1 x 1
      {{33, 65}, {65, 17}},              // odd sizes
      {{128, 256}, {256, 96}},           // larger
      {{4, 3, 5}, {4, 5, 2}},            // batched
      {{2, 3, 4, 5}, {3, 5, 6}},         // broadcast batch
      {{1, 3, 4}, {5, 4, 2}},            // batch of one broadcast
      {{6}, {2, 3, 6, 4}},               // vector @ batch
      {{2, 3, 6, 4}, {4}},               // batch @ vector
      {{8, 1, 64, 32}, {1, 5, 32, 48}},  // both sides broadcast
  };
  for (const auto& [a, b] : cases) compare(a, b);
}

TEST_CASE("matmul on CUDA with empty operands and a zero inner size", "[cuda][linalg]") {
  Tf32Guard guard;
  for (const DType dtype : {kFloat32, kFloat64}) {
    compare({0, 4}, {4, 3}, {dtype});
    compare({3, 4}, {4, 0}, {dtype});
    compare({0, 2, 3}, {0, 3, 4}, {dtype});
    // K = 0: an all-zero product of the right shape.
    const Tensor a = zeros({3, 0}, TensorOptions(dtype).device(kGpu));
    const Tensor b = zeros({0, 4}, TensorOptions(dtype).device(kGpu));
    const Tensor y = matmul(a, b);
    CHECK(y.shape() == Shape{3, 4});
    CHECK(y.cpu().to_vector<double>() == std::vector<double>(12, 0.0));
    compare({2, 3, 0}, {2, 0, 5}, {dtype});
  }
}

TEST_CASE("matmul on CUDA is exact on small integers", "[cuda][linalg]") {
  Tf32Guard guard;
  std::vector<double> av(6 * 40), bv(40 * 7);
  for (std::size_t i = 0; i < av.size(); ++i)
    av[i] = static_cast<double>(static_cast<int>(i % 9) - 4);
  for (std::size_t i = 0; i < bv.size(); ++i)
    bv[i] = static_cast<double>(static_cast<int>((i * 7) % 9) - 4);
  for (const DType dtype : {kFloat32, kFloat64}) {
    const Tensor a = tensor(av, {6, 40}, dtype), b = tensor(bv, {40, 7}, dtype);
    CHECK(ct_test::equal(matmul(a.to(kGpu), b.to(kGpu)).cpu(), matmul(a, b)));
  }
}

TEST_CASE("float64 gradcheck of matmul on CUDA", "[cuda][linalg][gradcheck]") {
  const auto cuda_leaf = [](const Shape& shape) {
    return ct_test::leaf(shape).detach().to(kGpu).requires_grad_();
  };
  const auto mm = [](const std::vector<Tensor>& v) { return matmul(v[0], v[1]); };
  CT_REQUIRE_GRADCHECK(mm, (std::vector<Tensor>{cuda_leaf({3, 4}), cuda_leaf({4, 5})}));
  CT_REQUIRE_GRADCHECK(mm, (std::vector<Tensor>{cuda_leaf({2, 1, 3, 4}), cuda_leaf({3, 4, 2})}));
  CT_REQUIRE_GRADCHECK(mm, (std::vector<Tensor>{cuda_leaf({4}), cuda_leaf({2, 4, 3})}));
  CT_REQUIRE_GRADCHECK(mm, (std::vector<Tensor>{cuda_leaf({5}), cuda_leaf({5})}));
}

TEST_CASE("matmul on CUDA with TF32 allowed stays close", "[cuda][linalg]") {
  Tf32Guard guard;
  cuda::set_allow_tf32(true);
  const Tensor a = uniform({64, 512}, -1, 1), b = uniform({512, 64}, -1, 1);
  CHECK(ct_test::allclose(matmul(a.to(kGpu), b.to(kGpu)).cpu(), matmul(a, b), 1e-2, 5e-2));
}

TEST_CASE("cuda::bmm checks its operands", "[cuda][linalg]") {
  const TensorOptions f32 = TensorOptions(kFloat32).device(kGpu);
  const Tensor a = zeros({2, 3, 4}, f32), b = zeros({2, 4, 5}, f32);
  CHECK(cuda::bmm(a, b).shape() == Shape{2, 3, 5});
  CT_REQUIRE_ERROR(cuda::bmm(a, zeros({2, 3, 5}, f32)),
                   "matmul: expected right operand [2, 4, N] for left operand [2, 3, 4], got "
                   "[2, 3, 5]");
  CT_REQUIRE_ERROR(cuda::bmm(a, b.to(kFloat64)),
                   "matmul: expected two float32 or two float64 operands, got float32 and float64");
  CT_REQUIRE_ERROR(cuda::bmm(a.cpu(), b),
                   "matmul: expected left operand on a CUDA device, got one on cpu");
  CT_REQUIRE_ERROR(cuda::bmm(zeros({3, 4}, f32), b),
                   "matmul: expected left operand of rank 3 ([batch, rows, cols]), got [3, 4]");
  CT_REQUIRE_ERROR(cuda::bmm(a, zeros({2, 5, 4}, f32).transpose(1, 2)),
                   "matmul: expected a contiguous right operand");
}
