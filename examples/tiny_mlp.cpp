// tiny_mlp: the smallest end-to-end training run. A 2-16-2 MLP learns to separate two interleaved
// half-moons (800 points) with cross-entropy and plain SGD, printing loss and accuracy as it goes.
//   usage: tiny_mlp [steps] [seed]
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numbers>

#include "convtape.h"

using namespace convtape;

int main(int argc, char** argv) {
  if (argc > 1 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) {
    std::printf(
        "tiny_mlp: a 2-16-2 MLP learns two half-moons with cross-entropy and SGD.\n"
        "  usage: tiny_mlp [steps (default 300)] [seed (default 7)]\n");
    return 0;
  }
  const int steps = argc > 1 ? std::atoi(argv[1]) : 300;
  manual_seed(argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 7);

  // Two half-moons: class 0 on the upper arc, class 1 on the lower arc shifted right.
  const std::int64_t n = 800;
  std::vector<double> pts, labels;
  Generator& g = default_generator();
  for (std::int64_t i = 0; i < n; ++i) {
    const bool upper = i % 2 == 0;
    const double t = std::numbers::pi * g.uniform01();
    pts.push_back((upper ? std::cos(t) : 1.0 - std::cos(t)) + 0.1 * g.normal01());
    pts.push_back((upper ? std::sin(t) : 0.5 - std::sin(t)) + 0.1 * g.normal01());
    labels.push_back(upper ? 0 : 1);
  }
  const Tensor x = tensor(pts, {n, 2});
  const Tensor y = tensor(labels, {n}, kInt64);

  Tensor w1 = normal({2, 16}, 0.0, 0.7).requires_grad_();
  Tensor b1 = zeros({16}).requires_grad_();
  Tensor w2 = normal({16, 2}, 0.0, 0.25).requires_grad_();
  Tensor b2 = zeros({2}).requires_grad_();
  std::vector<Tensor*> params{&w1, &b1, &w2, &b2};
  const double lr = 0.5;

  for (int step = 1; step <= steps; ++step) {
    const Tensor logits = matmul(relu(matmul(x, w1) + b1), w2) + b2;
    const Tensor loss = cross_entropy(logits, y);
    for (auto* p : params) p->zero_grad();
    loss.backward();
    {
      NoGradGuard no_grad;
      for (auto* p : params) p->add_(p->grad(), -lr);
    }
    if (step % 50 == 0 || step == 1) {
      const auto predicted = argmax(logits, 1).to_vector<std::int64_t>();
      std::int64_t correct = 0;
      for (std::int64_t i = 0; i < n; ++i)
        correct += predicted[static_cast<std::size_t>(i)] == (i % 2 == 0 ? 0 : 1);
      std::printf("step %4d  loss %.4f  accuracy %.1f%%\n", step, loss.item(),
                  100.0 * static_cast<double>(correct) / static_cast<double>(n));
    }
  }
  return 0;
}
