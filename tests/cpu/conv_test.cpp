// The CPU convolution kernels' resource bounds: a large convolution runs in memory close to
// input + output + weights, with a bounded per-thread workspace, where a materialised column
// matrix would need many times more.
#include <omp.h>

#include "cpu/conv.h"
#include "support/test_util.h"

using namespace convtape;

TEST_CASE("a large convolution needs input + output + weights and a bounded workspace",
          "[conv][memory]") {
  // 64 channels of 192 x 192, 3 x 3 kernel: the column matrix would be 64 * 9 * 192 * 192 floats
  // (85 MB); input and output are 9.4 MB each.
  manual_seed(0);
  const Tensor x = randn({1, 64, 192, 192});
  const Tensor w = randn({64, 64, 3, 3});
  const Tensor b = randn({64});
  const double in_bytes = double(x.numel()) * 4, w_bytes = double(w.numel()) * 4;
  const double out_bytes = in_bytes;
  const double columns = 64.0 * 9 * 192 * 192 * 4;
  reset_peak_memory_stats();
  const std::int64_t before = memory_stats().cpu_bytes;
  Tensor y;
  {
    NoGradGuard guard;
    y = conv2d(x, w, b, ConvOptions().padding(1));
  }
  const MemoryStats after = memory_stats();
  const double extra_peak = double(after.cpu_peak_bytes - before);
  INFO("peak beyond the inputs: " << extra_peak << " bytes; workspace " << after.workspace_bytes
                                  << " bytes");
  CHECK(y.shape() == Shape{1, 64, 192, 192});
  CHECK(extra_peak <= out_bytes * 1.01);  // the output is the only new storage
  const double per_thread_limit = 4.0 * 1024 * 1024;
  CHECK(double(after.workspace_bytes) <= per_thread_limit * omp_get_max_threads() + 1e6);
  CHECK(double(after.workspace_bytes) < columns / 10);
  (void)w_bytes;

  // The same bound holds for the gradients.
  Tensor xg = x.clone().requires_grad_(), wg = w.clone().requires_grad_();
  reset_peak_memory_stats();
  const std::int64_t start = memory_stats().cpu_bytes;
  Tensor out = conv2d(xg, wg, Tensor(), ConvOptions().padding(1));
  out.backward(ones_like(out));
  const MemoryStats grads = memory_stats();
  INFO("backward peak beyond the inputs: " << grads.cpu_peak_bytes - start);
  // output, its gradient, dx and dw (plus the saved-tensor views, which share storage)
  CHECK(double(grads.cpu_peak_bytes - start) <= (2 * out_bytes + in_bytes + w_bytes) * 1.05 + 1e6);
  CHECK(double(grads.workspace_bytes) <= per_thread_limit * omp_get_max_threads() + 1e6);
}
