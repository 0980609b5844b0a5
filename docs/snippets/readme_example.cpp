#include <convtape.h>

#include <cstdio>

using namespace convtape;

int main() {
  manual_seed(0);
  const Tensor x = randn({64, 3});                           // inputs
  const Tensor y = matmul(x, tensor({2, -1, 0.5}, {3, 1}));  // targets of a linear map
  Tensor w = zeros({3, 1}).requires_grad_();                 // the parameter to learn
  for (int step = 1; step <= 100; ++step) {
    Tensor loss = mse_loss(matmul(x, w), y);
    w.zero_grad();
    loss.backward();  // runs the tape: w.grad() = d loss / d w
    NoGradGuard no_grad;
    w.add_(w.grad(), -0.1);  // plain SGD
    if (step % 25 == 0) std::printf("step %d loss %.6f\n", step, loss.item());
  }
  std::printf("%s\n", w.str().c_str());  // close to [[2], [-1], [0.5]]
}
