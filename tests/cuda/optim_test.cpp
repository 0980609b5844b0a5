// The CUDA SGD step against the CPU backend: cuda::sgd_step_ and cpu::sgd_step_ bit for bit (both
// round every product before its sum) for every combination of options, both floating dtypes and
// sizes from one element to several grids' worth of blocks; optim::SGD on device parameters
// (its momentum buffer stays on the device); and the kernel's operand errors.
#include <cstdint>
#include <vector>

#include "cpu/backend_kernels.h"
#include "cuda/backend_kernels.h"
#include "support/op_check.h"

using namespace convtape;

namespace {

const Device kGpu(DeviceType::CUDA, 0);  // named only: the main checks that it exists

using ct_test::identical;

}  // namespace

TEST_CASE("cuda::sgd_step_ matches cpu::sgd_step_ bit for bit", "[cuda][optim]") {
  // 2^24 + 3 elements: more than the 65535 blocks of 256 threads of one grid.
  for (const DType dt : {kFloat32, kFloat64}) {
    for (const std::int64_t n :
         {std::int64_t{1}, std::int64_t{1001}, (std::int64_t{1} << 24) + 3}) {
      for (const double weight_decay : {0.0, 0.03}) {
        for (const double momentum : {0.0, 0.9}) {
          for (const double dampening : {0.0, 0.3}) {
            for (const bool nesterov : {false, true}) {
              if (momentum == 0.0 && (nesterov || dampening != 0.0)) continue;
              if (nesterov && dampening != 0.0) continue;
              INFO(dtype_name(dt) << ", n " << n << ", weight_decay " << weight_decay
                                  << ", momentum " << momentum << ", dampening " << dampening
                                  << ", nesterov " << nesterov);
              manual_seed(static_cast<std::uint64_t>(n));
              Tensor p = uniform({n}, -3, 3, dt), pd = p.to(kGpu);
              Tensor b, bd;
              if (momentum != 0.0) {
                b = empty({n}, dt);
                bd = empty({n}, TensorOptions(dt).device(kGpu));
              }
              for (int step = 0; step < 2; ++step) {
                INFO("step " << step + 1);
                const Tensor g = uniform({n}, -3, 3, dt);
                const SgdStep s{0.1, momentum, dampening, weight_decay, nesterov, step == 0};
                cpu::sgd_step_(p, g, b, s);
                cuda::sgd_step_(pd, g.to(kGpu), bd, s);
                REQUIRE(identical(pd.cpu(), p));
                if (momentum != 0.0) REQUIRE(identical(bd.cpu(), b));
              }
            }
          }
        }
      }
    }
  }
}

TEST_CASE("SGD steps device parameters as the CPU does", "[cuda][optim]") {
  const auto o = optim::SGDOptions(0.1).momentum(0.9).nesterov(true).weight_decay(0.01);
  manual_seed(3);
  Tensor p = uniform({5, 7}, -1, 1, kFloat32).requires_grad_(true);
  Tensor pd = p.detach().to(kGpu).requires_grad_(true);
  optim::SGD cpu_opt({p}, o), gpu_opt({pd}, o);
  for (int step = 0; step < 3; ++step) {
    const Tensor g = uniform({7, 5}, -1, 1, kFloat32).t();  // strided: the step makes it contiguous
    p.set_grad(g);
    pd.set_grad(g.to(kGpu));
    cpu_opt.step();
    gpu_opt.step();
    REQUIRE(identical(pd.detach().cpu(), p.detach()));
    const Tensor& buf = gpu_opt.state(pd).buffers.at("momentum_buffer");
    REQUIRE(buf.is_cuda());
    REQUIRE(identical(buf.cpu(), cpu_opt.state(p).buffers.at("momentum_buffer")));
  }
}

TEST_CASE("cuda::sgd_step_ errors", "[cuda][optim][errors]") {
  Tensor p = zeros({2, 3}, kGpu);
  Tensor none;
  const SgdStep plain{0.1, 0.0, 0.0, 0.0, false, false};
  Tensor on_cpu = zeros({2, 3});
  CT_REQUIRE_ERROR(cuda::sgd_step_(on_cpu, zeros({2, 3}), none, plain),
                   "SGD: expected a contiguous float32 or float64 parameter on a CUDA device, got "
                   "float32 of shape [2, 3] with strides [3, 1] on cpu");
  Tensor strided = zeros({3, 2}, kGpu).t();
  CT_REQUIRE_ERROR(cuda::sgd_step_(strided, zeros({2, 3}, kGpu), none, plain),
                   "with strides [1, 2] on cuda:0");
  CT_REQUIRE_ERROR(cuda::sgd_step_(p, zeros({3, 2}, kGpu), none, plain),
                   "SGD: expected a contiguous gradient of the parameter's shape, dtype and device "
                   "([2, 3], float32, cuda:0), got [3, 2], float32, cuda:0 with strides [2, 1]");
  CT_REQUIRE_ERROR(cuda::sgd_step_(p, zeros({2, 3}, kFloat64).to(kGpu), none, plain),
                   "got [2, 3], float64, cuda:0 with strides [3, 1]");
  const SgdStep momentum{0.1, 0.9, 0.0, 0.0, false, true};
  CT_REQUIRE_ERROR(cuda::sgd_step_(p, zeros({2, 3}, kGpu), none, momentum),
                   "SGD: expected a defined momentum buffer, got an undefined tensor");
}
