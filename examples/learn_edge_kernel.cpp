// learn_edge_kernel: learning convolution kernels from input/output pairs.
// Part 1 is the d2l experiment exactly: a 6x8 image of ones with a zero stripe in columns 2..5,
// the target its cross-correlation with [[1, -1]] (a vertical-edge detector), and a 1->1 Conv2d
// with a (1, 2) kernel and no bias trained by SGD (lr 3e-2) on the summed squared error for 10
// full-batch steps, printing the loss every 2 steps and the learned kernel at the end.
// Part 2 learns a 3x3 Sobel kernel from random images and their Sobel responses (mean squared
// error, SGD with momentum) until every weight is within 1e-3 of the Sobel kernel.
// Both parts are seeded; the exit status says whether each reached its goal (part 1: loss < 0.3
// and the kernel within 0.1 of [1, -1]; part 2: within 1e-3).
//   usage: learn_edge_kernel [--help] [--seed S] [--steps N]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "convtape.h"

using namespace convtape;

namespace {

bool part1_d2l(int steps) {
  std::printf("== part 1: the d2l edge detector\n");
  // X = ones(6, 8); X[:, 2:6] = 0; K = [[1, -1]]; Y = corr2d(X, K)
  Tensor x = ones({6, 8});
  x.narrow(1, 2, 4).zero_();
  const Tensor k = tensor({1, -1}, {1, 2});
  const Tensor y = d2l::corr2d(x, k);
  std::printf(
      "X (6, 8) with a zero stripe in columns 2..5; Y = corr2d(X, [[1, -1]]) is (%lld, %lld)\n",
      static_cast<long long>(y.size(0)), static_cast<long long>(y.size(1)));

  auto conv2d = std::make_shared<nn::Conv2d>(nn::Conv2dOptions(1, 1, {1, 2}).bias(false));
  const Tensor xb = x.reshape({1, 1, 6, 8}), yb = y.reshape({1, 1, 6, 7});
  optim::SGD sgd(conv2d->parameters(), optim::SGDOptions(3e-2));
  double last = 0.0;
  for (int i = 0; i < steps; ++i) {
    const Tensor y_hat = (*conv2d)(xb);
    const Tensor l = pow(y_hat - yb, 2.0).sum();
    sgd.zero_grad();
    l.backward();
    sgd.step();
    last = l.item();
    if ((i + 1) % 2 == 0) std::printf("epoch %d, loss %.3f\n", i + 1, last);
  }
  const auto w = conv2d->weight().to_vector<double>();
  std::printf("learned kernel: [[%.4f, %.4f]] (target [[1, -1]])\n", w[0], w[1]);
  const bool ok = last < 0.3 && std::abs(w[0] - 1.0) < 0.1 && std::abs(w[1] + 1.0) < 0.1;
  std::printf(
      "part 1 %s: final loss %.3f (goal < 0.3), kernel within %.3f of [1, -1] (goal 0.1)\n\n",
      ok ? "reached its goal" : "MISSED its goal", last,
      std::max(std::abs(w[0] - 1.0), std::abs(w[1] + 1.0)));
  return ok;
}

bool part2_sobel() {
  std::printf("== part 2: a 3x3 Sobel kernel learned from images\n");
  const Tensor sobel = tensor({-1, 0, 1, -2, 0, 2, -1, 0, 1}, {1, 1, 3, 3});
  // 16 random 32x32 images and their horizontal-gradient responses.
  const Tensor images = randn({16, 1, 32, 32});
  Tensor target;
  {
    NoGradGuard no_grad;
    target = conv2d(images, sobel);
  }
  auto conv = std::make_shared<nn::Conv2d>(nn::Conv2dOptions(1, 1, 3).bias(false));
  optim::SGD sgd(conv->parameters(), optim::SGDOptions(0.2).momentum(0.5));
  double err = 1.0;
  int step = 0;
  for (; step < 1000 && err >= 1e-3; ++step) {
    const Tensor loss = mse_loss((*conv)(images), target);
    sgd.zero_grad();
    loss.backward();
    sgd.step();
    err = max(abs(conv->weight() - sobel)).item();
    if (step % 10 == 0)
      std::printf("step %3d, loss %.6f, max |w - sobel| %.6f\n", step, loss.item(), err);
  }
  const auto w = conv->weight().to_vector<double>();
  std::printf("learned kernel after %d steps:\n", step);
  for (int r = 0; r < 3; ++r)
    std::printf("  [%8.4f %8.4f %8.4f]\n", w[3 * r], w[3 * r + 1], w[3 * r + 2]);
  const bool ok = err < 1e-3;
  std::printf("part 2 %s: max |w - sobel| = %.2e (goal < 1e-3)\n",
              ok ? "reached its goal" : "MISSED its goal", err);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t seed = 0;
  int steps = 10;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      std::printf(
          "learn_edge_kernel: learns the d2l edge-detector kernel [[1, -1]] (part 1) and a 3x3\n"
          "Sobel kernel (part 2) from input/output pairs.\n"
          "  --seed S    seed of the kernel initialisation and the images (default 0)\n"
          "  --steps N   SGD steps of part 1 (default 10, as in d2l)\n");
      return 0;
    }
    if (!std::strcmp(argv[i], "--seed") && i + 1 < argc) {
      seed = std::strtoull(argv[++i], nullptr, 10);
    } else if (!std::strcmp(argv[i], "--steps") && i + 1 < argc) {
      steps = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "learn_edge_kernel: unknown argument %s (try --help)\n", argv[i]);
      return 2;
    }
  }
  manual_seed(seed);
  const bool a = part1_d2l(steps);
  const bool b = part2_sobel();
  return a && b ? 0 : 1;
}
