// A small program built against the installed convtape: fits y = 2x + 1 and checks the result,
// then asks for a GPU. It links libconvtape only; CUDA, when the installation has its backend and
// the machine a device, comes from libconvtape_cuda.so, opened at that request. .ci/run checks
// that no CUDA library is on this program's link line or in its ldd.
#include <convtape.h>

#include <cmath>
#include <cstdio>
#include <string_view>

int main() {
  using namespace convtape;
  const Tensor x = linspace(-1, 1, 16, kFloat64).reshape({16, 1});
  const Tensor y = x * 2.0 + 1.0;
  Tensor w = zeros({1, 1}, kFloat64).requires_grad_();
  Tensor b = zeros({1}, kFloat64).requires_grad_();
  for (int step = 0; step < 500; ++step) {
    Tensor loss = mse_loss(matmul(x, w) + b, y);
    w.zero_grad();
    b.zero_grad();
    loss.backward();
    NoGradGuard guard;
    w.add_(w.grad(), -0.2);
    b.add_(b.grad(), -0.2);
  }
  std::printf("consumer: w = %.6f, b = %.6f\n", w.item(), b.item());
  if (std::abs(w.item() - 2.0) > 1e-4 || std::abs(b.item() - 1.0) > 1e-4) return 1;
  // A GPU if there is one; otherwise the one message that says why, never an internal op's name.
  try {
    const Tensor g = (x.to(Device::cuda()) * 3.0).cpu();
    const double err = max(abs(g - x * 3.0)).item();
    std::printf("consumer: CUDA: %s, max |3x error| = %g\n", Device::cuda().str().c_str(), err);
    return err == 0.0 ? 0 : 1;
  } catch (const Error& e) {
    const std::string_view m = e.message();
    std::printf("consumer: CUDA: %s\n", e.message().c_str());
    const bool clear = m.starts_with("convtape: no CUDA device (") ||
                       m.starts_with("convtape: this installation has no CUDA backend (");
    return clear ? 0 : 1;
  }
}
