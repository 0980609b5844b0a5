// Host tests of the CUDA optimizer steps (cuda/optim_body.h): the very functor the device launches,
// built by the same sgd_step_map, run in order over CPU tensors' storage and compared bit for bit
// with the CPU backend's cpu::sgd_step_, for every combination of options, both floating dtypes,
// sizes 1, odd and split across threads by the CPU, two steps (the buffer's first and a later
// one), with NaN, +-inf and +-0 among the values.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "cpu/backend_kernels.h"
#include "cuda/optim_body.h"
#include "support/host_launch.h"
#include "support/test_util.h"

using namespace convtape;
namespace cu = convtape::cuda;

namespace {

// Same shape and dtype, and the same bits, but any NaN equals any NaN.
bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  return dispatch_floating(a.dtype(), [&]<class T>() {
    const auto va = a.to_vector<T>(), vb = b.to_vector<T>();
    for (std::size_t i = 0; i < va.size(); ++i) {
      if (std::isnan(va[i]) && std::isnan(vb[i])) continue;
      if (std::memcmp(&va[i], &vb[i], sizeof(T)) != 0) {
        UNSCOPED_INFO("element " << i << ": " << va[i] << " vs " << vb[i]);
        return false;
      }
    }
    return true;
  });
}

// What cuda::sgd_step_ does, with the launch replaced by a host loop.
void host_sgd_step(Tensor& p, const Tensor& g, Tensor& buf, const SgdStep& s) {
  dispatch_floating(p.dtype(), [&]<class T>() {
    T* bp = s.momentum != 0.0 ? buf.data_ptr<T>() : nullptr;
    ct_test::run_on_host(p.numel(),
                         cu::sgd_step_map<T>(p.data_ptr<T>(), g.data_ptr<T>(), bp, s.lr, s.momentum,
                                             s.dampening, s.weight_decay, s.nesterov, s.first));
  });
}

// Random values with the IEEE edge cases at fixed places.
Tensor values(std::int64_t n, DType dt, std::uint64_t seed) {
  manual_seed(seed);
  Tensor t = uniform({n}, -3, 3, dt);
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<double> edges = {std::nan(""), inf, -inf, 0.0, -0.0};
  for (std::size_t k = 0; k < edges.size(); ++k) {
    const auto at = static_cast<std::int64_t>(7 * k + seed % 5);
    if (at < n) t.put_({at}, edges[k]);
  }
  return t;
}

}  // namespace

TEST_CASE("SGD step bodies match cpu::sgd_step_ bit for bit", "[cpu][cuda_body]") {
  for (const DType dt : {kFloat32, kFloat64}) {
    for (const std::int64_t n : {std::int64_t{1}, std::int64_t{37}, (std::int64_t{1} << 18) + 5}) {
      for (const double weight_decay : {0.0, 0.03}) {
        for (const double momentum : {0.0, 0.9}) {
          for (const double dampening : {0.0, 0.3}) {
            for (const bool nesterov : {false, true}) {
              if (nesterov && (momentum == 0.0 || dampening != 0.0)) continue;
              if (momentum == 0.0 && dampening != 0.0) continue;  // dampening is unused
              INFO(dtype_name(dt) << ", n " << n << ", weight_decay " << weight_decay
                                  << ", momentum " << momentum << ", dampening " << dampening
                                  << ", nesterov " << nesterov);
              Tensor p_cpu = values(n, dt, 1), p_host = p_cpu.clone();
              Tensor b_cpu, b_host;
              if (momentum != 0.0) {
                // Sentinels that a first step must overwrite unread.
                b_cpu = full({n}, -77.0, dt);
                b_host = b_cpu.clone();
              }
              for (int step = 0; step < 2; ++step) {
                INFO("step " << step + 1);
                const Tensor g = values(n, dt, 2 + static_cast<std::uint64_t>(step));
                const SgdStep s{0.1, momentum, dampening, weight_decay, nesterov, step == 0};
                cpu::sgd_step_(p_cpu, g, b_cpu, s);
                host_sgd_step(p_host, g, b_host, s);
                REQUIRE(same_bits(p_host, p_cpu));
                if (momentum != 0.0) REQUIRE(same_bits(b_host, b_cpu));
              }
            }
          }
        }
      }
    }
  }
}

TEST_CASE("SGD step bodies: a first step writes the buffer without reading it",
          "[cpu][cuda_body]") {
  // NaN in the old buffer would poison momentum * buf: the first step must not read it.
  for (const DType dt : {kFloat32, kFloat64}) {
    INFO(dtype_name(dt));
    Tensor p = tensor({1, 2}, dt), buf = full({2}, std::nan(""), dt);
    const Tensor g = tensor({4, -8}, dt);
    host_sgd_step(p, g, buf, SgdStep{0.5, 0.5, 0.0, 0.0, false, true});
    CHECK(ct_test::equal(buf, tensor({4, -8}, dt)));
    CHECK(ct_test::equal(p, tensor({-1, 6}, dt)));
  }
}
