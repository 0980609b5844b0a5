// A small program built against the installed convtape: fits y = 2x + 1 and checks the result.
#include <convtape.h>

#include <cmath>
#include <cstdio>

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
  return std::abs(w.item() - 2.0) < 1e-4 && std::abs(b.item() - 1.0) < 1e-4 ? 0 : 1;
}
