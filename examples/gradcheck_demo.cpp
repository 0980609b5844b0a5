// gradcheck_demo: checks a user-written composite function against finite differences. Two
// feature maps go through a shared convolution, max pooling and the FlowNet cost volume; a
// cross-entropy over the displacements closes it to a scalar:
//   f = conv(x_i, w, b)          x_1, x_2 [N, C, H, W], w [K, C, 3, 3]  ->  [N, K, H, W]
//   p = max_pool(f, 2)                                                   ->  [N, K, H/2, W/2]
//   v = correlation(p_1, p_2)    max_displacement 1                      ->  [N, 9, H/2, W/2]
//   loss = cross_entropy(v as logits over the 9 displacements, labels)
// gradcheck compares the tape's gradient of every input (both images, the weights, the bias)
// with float64 central differences and prints its report; the exit status says whether it held.
// A second run shows what a wrong gradient looks like: a custom op whose backward is off by a
// factor of two is caught.
//   usage: gradcheck_demo [--help] [--seed S]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "convtape.h"

using namespace convtape;

namespace {

// The composite: inputs {x1, x2, w, b}, labels fixed.
Tensor composite(const std::vector<Tensor>& in, const Tensor& labels) {
  const ConvOptions same = ConvOptions().padding(1);
  const Tensor p1 = max_pool(conv(in[0], in[2], in[3], same), PoolOptions(2));
  const Tensor p2 = max_pool(conv(in[1], in[2], in[3], same), PoolOptions(2));
  const Tensor v = correlation(p1, p2, CorrelationOptions().max_displacement(1).padding(1));
  // [N, 9, h, w] -> [N * h * w, 9]: every position picks one of the 9 displacements.
  const Tensor logits = reshape(permute(v, {0, 2, 3, 1}), {-1, 9});
  return cross_entropy(logits, labels);
}

// x * 3 with a backward that claims the factor is 6: the kind of mistake gradcheck exists for.
Tensor wrong_triple(const Tensor& x) {
  Tensor y;
  {
    NoGradGuard no_grad;
    y = x * 3.0;
  }
  record(y, "wrong_triple", {x}, /*saved=*/{}, [](const Saved&, const Tensor& dy, const GradMask&) {
    return std::vector<Tensor>{dy * 6.0};
  });
  return y;
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t seed = 0;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      std::printf(
          "gradcheck_demo: checks conv -> max_pool -> correlation -> cross_entropy against\n"
          "finite differences (float64), then shows a deliberately wrong backward being caught.\n"
          "  --seed S   seed of the random inputs (default 0)\n");
      return 0;
    }
    if (!std::strcmp(argv[i], "--seed") && i + 1 < argc) {
      seed = std::strtoull(argv[++i], nullptr, 10);
    } else {
      std::fprintf(stderr, "gradcheck_demo: unknown argument %s (try --help)\n", argv[i]);
      return 2;
    }
  }
  manual_seed(seed);
  const TensorOptions f64 = TensorOptions().dtype(kFloat64).requires_grad(true);
  // Random values have no ties, so max pooling is differentiable at the checked point.
  const Tensor x1 = randn({2, 3, 6, 6}, f64), x2 = randn({2, 3, 6, 6}, f64);
  const Tensor w = randn({4, 3, 3, 3}, f64) * 0.5, b = randn({4}, f64) * 0.1;
  const Tensor w_leaf = w.detach().requires_grad_(), b_leaf = b.detach().requires_grad_();
  const Tensor labels = randint(0, 9, {2 * 3 * 3}, kInt64);

  std::printf(
      "composite: conv(3->4, 3x3, pad 1) -> max_pool(2) -> correlation(md 1) -> "
      "cross_entropy\n");
  const Tensor loss = composite({x1, x2, w_leaf, b_leaf}, labels);
  std::printf("loss = %.6f\n", loss.item());
  const GradcheckResult good =
      gradcheck([&](const std::vector<Tensor>& in) { return composite(in, labels); },
                {x1, x2, w_leaf, b_leaf});
  std::printf("%s\n%s\n\n", good.ok ? "PASSED" : "FAILED", good.report.c_str());

  std::printf("a custom op whose backward is off by a factor of two:\n");
  const Tensor z = randn({5}, f64);
  const GradcheckResult bad =
      gradcheck([](const std::vector<Tensor>& in) { return wrong_triple(in[0]).sum(); }, {z});
  std::printf("%s (as it should)\n%s\n", bad.ok ? "PASSED" : "FAILED", bad.report.c_str());
  return good.ok && !bad.ok ? 0 : 1;
}
