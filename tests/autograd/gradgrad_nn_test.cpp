// Second (and some third) derivatives of the neural-network ops, through backward with
// create_graph: float64 gradgradcheck of pooling (max, average, adaptive, max_unpool), the FlowNet
// correlation, signal correlate / convolve, softmax and log_softmax, every loss of ops/loss.h,
// layer / group / instance normalisation, BatchNorm in training mode and interpolate. Ops that are
// not linear in their inputs are checked with require_curvature; ops that are (pooling, unpooling,
// nll, interpolate) are checked both alone (the derivative with respect to the output gradient)
// and squared (curvature that runs through the recorded gradient maps). A few second
// derivatives are compared with values worked out by hand.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "support/test_util.h"

namespace {

using namespace convtape;
using ct_test::leaf;

GradgradcheckOptions curved() {
  GradgradcheckOptions o;
  o.require_curvature = true;
  return o;
}

#define CT_REQUIRE_GRADGRAD(fn, inputs, options)                        \
  do {                                                                  \
    const auto ct_gg_ = ::convtape::gradgradcheck(fn, inputs, options); \
    INFO(ct_gg_.report);                                                \
    REQUIRE(ct_gg_.ok);                                                 \
  } while (0)

using ct_test::distinct;

Tensor square(const Tensor& t) {
  return mul(t, t);
}

// fn alone (linear ops: the derivative with respect to the output gradient) and fn squared
// (curvature through the recorded gradient maps).
void check_linear_op(const std::function<Tensor(const Tensor&)>& fn, const Tensor& x) {
  CT_REQUIRE_GRADGRAD([&](const std::vector<Tensor>& in) { return fn(in[0]); },
                      std::vector<Tensor>{x}, GradgradcheckOptions());
  CT_REQUIRE_GRADGRAD([&](const std::vector<Tensor>& in) { return square(fn(in[0])); },
                      std::vector<Tensor>{x}, curved());
}

// ---- pooling

TEST_CASE("max_pool second derivatives flow through the saved argmax", "[gradgrad][pool]") {
  struct Case {
    Shape x;
    PoolOptions o;
  };
  const std::vector<Case> cases = {
      {{2, 2, 9}, PoolOptions().kernel_size(3).stride(2).padding(1)},
      {{1, 2, 9}, PoolOptions().kernel_size(2).stride(1).dilation(2)},
      {{1, 2, 8}, PoolOptions().kernel_size(3).stride(2).ceil_mode()},
      {{1, 2, 6, 5}, PoolOptions().kernel_size({3, 2}).stride({2, 1}).padding({1, 1})},
      {{1, 2, 6, 6}, PoolOptions().kernel_size(2).stride(1).dilation(2).padding(1)},
      {{1, 1, 7, 6}, PoolOptions().kernel_size(3).stride(2).ceil_mode()},
      {{1, 1, 4, 4, 4}, PoolOptions().kernel_size(2).stride(2)},
      {{1, 1, 5, 4, 5}, PoolOptions().kernel_size(3).stride(2).padding(1).ceil_mode()},
  };
  std::uint32_t seed = 1;
  for (const Case& c : cases) {
    INFO("input " << to_string(c.x));
    const Tensor x = distinct(c.x, seed++);
    const auto spatial = static_cast<std::int64_t>(c.x.size()) - 2;
    check_linear_op(
        [&](const Tensor& t) {
          return spatial == 1   ? max_pool1d(t, c.o)
                 : spatial == 2 ? max_pool2d(t, c.o)
                                : max_pool3d(t, c.o);
        },
        x);
  }
  // max_pool_with_indices records the same way.
  check_linear_op(
      [](const Tensor& t) {
        return max_pool_with_indices(t, PoolOptions().kernel_size(2).stride(1)).values;
      },
      distinct({1, 2, 4, 5}, 40));
}

TEST_CASE("max_pool: the Hessian of sum(y^2) counts the windows of each argmax",
          "[gradgrad][pool]") {
  // x = [1, 3, 2], kernel 2, stride 1: y = [3, 3], both windows pick x1. L = sum(y^2) = 2 x1^2,
  // so dL/dx = [0, 4 x1, 0] = [0, 12, 0] and the Hessian is 4 at (1, 1), 0 elsewhere.
  Tensor x = tensor({1.0, 3.0, 2.0}, {1, 1, 3}, kFloat64).requires_grad_(true);
  const Tensor y = max_pool1d(x, PoolOptions().kernel_size(2).stride(1));
  const auto g = autograd::grad({sum(mul(y, y))}, {x}, {}, {.create_graph = true});
  REQUIRE(g[0].requires_grad());
  CHECK(g[0].to_vector<double>() == std::vector<double>{0.0, 12.0, 0.0});
  const auto h = autograd::grad({sum(g[0])}, {x});
  CHECK(h[0].to_vector<double>() == std::vector<double>{0.0, 4.0, 0.0});
}

TEST_CASE("avg_pool second derivatives", "[gradgrad][pool]") {
  struct Case {
    Shape x;
    PoolOptions o;
  };
  const std::vector<Case> cases = {
      {{2, 2, 7}, PoolOptions().kernel_size(3).stride(2).padding(1)},
      {{2, 2, 7}, PoolOptions().kernel_size(3).stride(2).padding(1).count_include_pad(false)},
      {{1, 2, 8}, PoolOptions().kernel_size(3).stride(2).ceil_mode().count_include_pad(false)},
      {{1, 2, 5, 6}, PoolOptions().kernel_size({3, 2}).stride({2, 1}).padding({1, 1})},
      {{1, 2, 5, 6},
       PoolOptions().kernel_size(3).stride(2).padding(1).count_include_pad(false).ceil_mode()},
      {{1, 2, 5, 6}, PoolOptions().kernel_size(2).stride(2).divisor_override(3)},
      {{1, 1, 4, 5, 4}, PoolOptions().kernel_size(2).stride(2).padding(1)},
      {{1, 1, 4, 5, 4}, PoolOptions().kernel_size(3).stride(2).padding(1).count_include_pad(false)},
  };
  for (const Case& c : cases) {
    INFO("input " << to_string(c.x) << ", count_include_pad " << c.o.count_include_pad());
    const auto spatial = static_cast<std::int64_t>(c.x.size()) - 2;
    check_linear_op(
        [&](const Tensor& t) {
          return spatial == 1   ? avg_pool1d(t, c.o)
                 : spatial == 2 ? avg_pool2d(t, c.o)
                                : avg_pool3d(t, c.o);
        },
        leaf(c.x));
  }
}

TEST_CASE("avg_pool: the Hessian of sum(y^2) by hand", "[gradgrad][pool]") {
  // kernel 2, stride 2 over [x0, x1, x2, x3]: y = [(x0 + x1) / 2, (x2 + x3) / 2] and
  // L = sum(y^2) has the Hessian [[.5, .5, 0, 0], [.5, .5, 0, 0], [0, 0, .5, .5], [0, 0, .5, .5]],
  // whose row sums are 1. With divisor_override 1, y = [x0 + x1, x2 + x3] and the row sums are 4.
  for (const auto& [o, row_sum] :
       {std::pair{PoolOptions().kernel_size(2), 1.0},
        std::pair{PoolOptions().kernel_size(2).divisor_override(1), 4.0}}) {
    Tensor x = tensor({1.0, -2.0, 0.5, 4.0}, {1, 1, 4}, kFloat64).requires_grad_(true);
    const auto g = autograd::grad({sum(square(avg_pool1d(x, o)))}, {x}, {}, {.create_graph = true});
    const auto h = autograd::grad({sum(g[0])}, {x});
    CHECK(h[0].to_vector<double>() == std::vector<double>(4, row_sum));
  }
}

TEST_CASE("adaptive pooling and global_avg_pool second derivatives", "[gradgrad][pool]") {
  // Output sizes that divide the input (the regular kernels) and that do not (adaptive windows).
  for (const auto& [shape, out] :
       std::vector<std::pair<Shape, Shape>>{{{1, 2, 6, 4}, {3, 2}},
                                            {{1, 2, 7, 5}, {3, 2}},
                                            {{2, 1, 7}, {4}},
                                            {{1, 1, 3, 4, 5}, {2, 3, 2}}}) {
    INFO("input " << to_string(shape) << " -> " << to_string(out));
    check_linear_op([&](const Tensor& t) { return adaptive_avg_pool(t, out); }, leaf(shape));
    check_linear_op([&](const Tensor& t) { return adaptive_max_pool(t, out); },
                    distinct(shape, static_cast<std::uint32_t>(numel(shape))));
    check_linear_op([&](const Tensor& t) { return adaptive_max_pool_with_indices(t, out).values; },
                    distinct(shape, 7));
  }
  check_linear_op([](const Tensor& t) { return global_avg_pool(t); }, leaf({2, 3, 3, 2}));
}

TEST_CASE("max_unpool second derivatives: the gather and its adjoint", "[gradgrad][pool]") {
  // Non-overlapping windows, so that no two inputs share an output place.
  for (const auto& [shape, o] : std::vector<std::pair<Shape, PoolOptions>>{
           {{2, 2, 8}, PoolOptions().kernel_size(2)},
           {{1, 2, 6, 6}, PoolOptions().kernel_size(3)},
           {{1, 2, 4, 6}, PoolOptions().kernel_size({2, 3})},
           {{1, 1, 4, 4, 2}, PoolOptions().kernel_size(2)}}) {
    INFO("pooled input " << to_string(shape));
    Tensor indices;
    Tensor values;
    {
      NoGradGuard off;
      const PoolWithIndices p = max_pool_with_indices(distinct(shape, 3), o);
      indices = p.indices;
      values = p.values;
    }
    check_linear_op([&](const Tensor& t) { return max_unpool(t, indices, o); },
                    leaf(values.shape()));
  }
}

// ---- correlation

TEST_CASE("correlation second derivatives in both features", "[gradgrad][correlation]") {
  struct Case {
    Shape f;
    CorrelationOptions o;
  };
  const std::vector<Case> cases = {
      {{1, 2, 5, 5}, CorrelationOptions().max_displacement(1)},
      {{1, 2, 6, 6}, CorrelationOptions().kernel_size(3).max_displacement(1).stride1(2).padding(1)},
      {{2, 1, 5, 6}, CorrelationOptions().max_displacement(2).stride2(2).padding(2)},
      {{1, 2, 5, 4},
       CorrelationOptions().kernel_size(3).max_displacement(2).stride1(2).stride2(2).padding(2)},
  };
  for (const Case& c : cases) {
    INFO("features " << to_string(c.f) << ", kernel " << c.o.kernel_size() << ", displacement "
                     << c.o.max_displacement() << ", strides " << c.o.stride1() << " "
                     << c.o.stride2() << ", padding " << c.o.padding());
    const auto corr = [&](const std::vector<Tensor>& in) { return correlation(in[0], in[1], c.o); };
    CT_REQUIRE_GRADGRAD(corr, (std::vector<Tensor>{leaf(c.f), leaf(c.f)}), curved());
    // One input on the tape: linear in it (only the derivative in the output gradient).
    CT_REQUIRE_GRADGRAD(corr, (std::vector<Tensor>{leaf(c.f), randn(c.f, kFloat64)}),
                        GradgradcheckOptions());
    // The same features twice: quadratic in one input.
    CT_REQUIRE_GRADGRAD(
        [&](const std::vector<Tensor>& in) { return correlation(in[0], in[0], c.o); },
        std::vector<Tensor>{leaf(c.f)}, curved());
  }
}

TEST_CASE("correlation third derivatives: every map of the family", "[gradgrad][correlation]") {
  // fn = d/df1 <v, corr(f1, f2)^2>, differentiated twice more by gradgradcheck: the derivatives
  // of the gradient maps (GradF1, GradF2) and of the forward map called from their backward.
  const CorrelationOptions o = CorrelationOptions().kernel_size(3).max_displacement(1).padding(1);
  const Tensor v = randn({1, 9, 2, 2}, kFloat64);  // the output of 4 x 4 features
  const auto fn = [&](const std::vector<Tensor>& in) {
    const Tensor y = correlation(in[0], in[1], o);
    return autograd::grad({mul(y, y)}, {in[0]}, {v}, {.create_graph = true})[0];
  };
  CT_REQUIRE_GRADGRAD(fn, (std::vector<Tensor>{leaf({1, 2, 4, 4}), leaf({1, 2, 4, 4})}), curved());
}

TEST_CASE("correlation: the mixed second derivative by hand", "[gradgrad][correlation]") {
  // kernel 1, no displacement, C = 2: y = (f1 * f2 summed over channels) / 2, so
  // d/df2 sum(d sum(y) / df1) = 1/2 everywhere.
  Tensor f1 = ct_test::leaf({1, 2, 3, 3}), f2 = ct_test::leaf({1, 2, 3, 3});
  const auto g = autograd::grad({sum(correlation(f1, f2))}, {f1}, {}, {.create_graph = true});
  REQUIRE(g[0].requires_grad());
  CHECK(ct_test::allclose(g[0], mul(f2, 0.5), 0, 1e-15));
  const auto h = autograd::grad({sum(g[0])}, {f2});
  CHECK(h[0].to_vector<double>() == std::vector<double>(18, 0.5));
}

// ---- signal correlate / convolve

TEST_CASE("correlate and convolve second derivatives", "[gradgrad][signal]") {
  for (const auto& [a, b] : std::vector<std::pair<Shape, Shape>>{
           {{6}, {3}}, {{3}, {5}}, {{4, 5}, {2, 3}}, {{2, 3}, {3, 4}}}) {
    for (const SignalMode mode : {SignalMode::Full, SignalMode::Same, SignalMode::Valid}) {
      INFO("in1 " << to_string(a) << ", in2 " << to_string(b) << ", mode "
                  << static_cast<int>(mode));
      CT_REQUIRE_GRADGRAD(
          [&](const std::vector<Tensor>& in) { return correlate(in[0], in[1], mode); },
          (std::vector<Tensor>{leaf(a), leaf(b)}), curved());
      CT_REQUIRE_GRADGRAD(
          [&](const std::vector<Tensor>& in) { return convolve(in[0], in[1], mode); },
          (std::vector<Tensor>{leaf(a), leaf(b)}), curved());
    }
  }
}

TEST_CASE("the d2l corr2d helpers' second derivatives", "[gradgrad][signal]") {
  using Fn = Tensor (*)(const Tensor&, const Tensor&);
  const std::vector<std::tuple<const char*, Fn, Shape, Shape>> cases = {
      {"corr2d", &d2l::corr2d, {4, 5}, {2, 3}},
      {"corr2d_multi_in", &d2l::corr2d_multi_in, {2, 4, 4}, {2, 2, 2}},
      {"corr2d_multi_in_out", &d2l::corr2d_multi_in_out, {2, 4, 3}, {3, 2, 2, 2}},
      {"corr2d_multi_in_out_1x1", &d2l::corr2d_multi_in_out_1x1, {3, 3, 3}, {2, 3, 1, 1}},
  };
  for (const auto& [name, fn, xs, ks] : cases) {
    INFO(name);
    CT_REQUIRE_GRADGRAD([&](const std::vector<Tensor>& in) { return fn(in[0], in[1]); },
                        (std::vector<Tensor>{leaf(xs), leaf(ks)}), curved());
  }
}

TEST_CASE("dropout masks are constants of the second derivative", "[gradgrad][dropout]") {
  // A fixed generator draws the same mask on every evaluation, so finite differences see the
  // function the tape recorded.
  for (const auto& [name, shape] :
       std::vector<std::pair<const char*, Shape>>{{"dropout", {4, 5}}, {"feature", {2, 3, 4}}}) {
    INFO(name);
    const std::string kind = name;
    CT_REQUIRE_GRADGRAD(
        [&](const std::vector<Tensor>& in) {
          Generator gen(7);
          const Tensor d = kind == "dropout" ? dropout(in[0], 0.4, true, &gen)
                                             : feature_dropout(in[0], 0.4, true, &gen);
          return square(d);
        },
        std::vector<Tensor>{leaf(shape)}, curved());
  }
}

// ---- softmax and the losses

TEST_CASE("softmax and log_softmax second derivatives", "[gradgrad][loss]") {
  for (const auto& [shape, dim] : std::vector<std::pair<Shape, std::int64_t>>{
           {{5}, 0}, {{3, 4}, 0}, {{3, 4}, 1}, {{2, 3, 4}, 1}, {{2, 3, 4}, -1}}) {
    INFO("x " << to_string(shape) << ", dim " << dim);
    CT_REQUIRE_GRADGRAD([&](const std::vector<Tensor>& in) { return softmax(in[0], dim); },
                        std::vector<Tensor>{leaf(shape, -2, 2)}, curved());
    CT_REQUIRE_GRADGRAD([&](const std::vector<Tensor>& in) { return log_softmax(in[0], dim); },
                        std::vector<Tensor>{leaf(shape, -2, 2)}, curved());
  }
}

TEST_CASE("log_softmax: the Hessian of a two-class loss by hand", "[gradgrad][loss]") {
  // L = -log_softmax(x)[0] at x = [0, 0]: p = [1/2, 1/2] and the Hessian diag(p) - p p^T =
  // [[1/4, -1/4], [-1/4, 1/4]]; its first row is the gradient of dL/dx0.
  Tensor x = zeros({2}, kFloat64).requires_grad_(true);
  const Tensor loss = neg(sum(mul(log_softmax(x, 0), tensor({1.0, 0.0}, kFloat64))));
  const auto g = autograd::grad({loss}, {x}, {}, {.create_graph = true});
  CHECK(ct_test::allclose(g[0], tensor({-0.5, 0.5}, kFloat64), 0, 1e-15));
  const auto h = autograd::grad({sum(mul(g[0], tensor({1.0, 0.0}, kFloat64)))}, {x});
  CHECK(ct_test::allclose(h[0], tensor({0.25, -0.25}, kFloat64), 0, 1e-15));
}

Tensor labels_of(const std::vector<std::int64_t>& v, const Shape& shape) {
  return from_vector(v, shape);
}

TEST_CASE("cross_entropy second derivatives", "[gradgrad][loss]") {
  const Tensor labels = labels_of({0, 3, 1, 4}, {4});
  const Tensor ignored = labels_of({0, -100, 2, 4}, {4});
  const Tensor weight = tensor({0.5, 1.0, 2.0, 1.5, 0.7}, kFloat64);
  for (const Reduction r : {Reduction::None, Reduction::Sum, Reduction::Mean}) {
    for (const double eps : {0.0, 0.2}) {
      for (const bool weighted : {false, true}) {
        for (const Tensor& lab : {labels, ignored}) {
          INFO("reduction " << static_cast<int>(r) << ", label_smoothing " << eps << ", weighted "
                            << weighted);
          CrossEntropyOptions o = CrossEntropyOptions().reduction(r).label_smoothing(eps);
          if (weighted) o.weight(weight);
          CT_REQUIRE_GRADGRAD(
              [&](const std::vector<Tensor>& in) { return cross_entropy(in[0], lab, o); },
              std::vector<Tensor>{leaf({4, 5}, -2, 2)}, curved());
        }
      }
    }
  }
  // N-d logits [N, C, d1, d2] (the class dim moved last), a custom ignore_index.
  const Tensor nd_labels = labels_of({0, 2, 1, 7, 2, 2, 0, 1}, {2, 2, 2});
  for (const double eps : {0.0, 0.1})
    CT_REQUIRE_GRADGRAD(
        [&](const std::vector<Tensor>& in) {
          return cross_entropy(in[0], nd_labels,
                               CrossEntropyOptions().ignore_index(7).label_smoothing(eps).weight(
                                   tensor({1.0, 2.0, 0.5}, kFloat64)));
        },
        std::vector<Tensor>{leaf({2, 3, 2, 2}, -2, 2)}, curved());
  // Unbatched logits [C].
  CT_REQUIRE_GRADGRAD(
      [&](const std::vector<Tensor>& in) { return cross_entropy(in[0], labels_of({2}, {})); },
      std::vector<Tensor>{leaf({5}, -2, 2)}, curved());
}

TEST_CASE("cross_entropy with class-probability targets", "[gradgrad][loss]") {
  // Differentiable in the logits, the targets and (a plain product here) the class weights.
  for (const Reduction r : {Reduction::None, Reduction::Sum, Reduction::Mean}) {
    for (const double eps : {0.0, 0.25}) {
      INFO("reduction " << static_cast<int>(r) << ", label_smoothing " << eps);
      CT_REQUIRE_GRADGRAD(
          [&](const std::vector<Tensor>& in) {
            return cross_entropy(
                in[0], in[1],
                CrossEntropyOptions().reduction(r).label_smoothing(eps).weight(in[2]));
          },
          (std::vector<Tensor>{leaf({3, 4}, -2, 2), leaf({3, 4}, 0, 1), leaf({4}, 0.5, 2)}),
          curved());
      CT_REQUIRE_GRADGRAD(
          [&](const std::vector<Tensor>& in) {
            return cross_entropy(in[0], in[1],
                                 CrossEntropyOptions().reduction(r).label_smoothing(eps));
          },
          (std::vector<Tensor>{leaf({2, 3, 2}, -2, 2), leaf({2, 3, 2}, 0, 1)}), curved());
    }
  }
}

TEST_CASE("nll_loss second and third derivatives", "[gradgrad][loss]") {
  const Tensor labels = labels_of({1, 0, 4, 2, 3, 1}, {6});
  const Tensor ignored = labels_of({1, 5, 4, 2, 5, 1}, {6});
  const Tensor weight = tensor({0.5, 1.0, 2.0, 1.5, 0.7}, kFloat64);
  for (const Reduction r : {Reduction::None, Reduction::Sum, Reduction::Mean}) {
    for (const bool weighted : {false, true}) {
      INFO("reduction " << static_cast<int>(r) << ", weighted " << weighted);
      NllLossOptions o = NllLossOptions().reduction(r).ignore_index(5);
      if (weighted) o.weight(weight);
      for (const Tensor& lab : {labels, ignored}) {
        // Linear in the log-probabilities: the derivative in the output gradient (the map's
        // adjoint), then curvature through log_softmax and through a square.
        CT_REQUIRE_GRADGRAD([&](const std::vector<Tensor>& in) { return nll_loss(in[0], lab, o); },
                            std::vector<Tensor>{leaf({6, 5})}, GradgradcheckOptions());
        CT_REQUIRE_GRADGRAD(
            [&](const std::vector<Tensor>& in) { return nll_loss(log_softmax(in[0], 1), lab, o); },
            std::vector<Tensor>{leaf({6, 5}, -2, 2)}, curved());
        CT_REQUIRE_GRADGRAD(
            [&](const std::vector<Tensor>& in) { return nll_loss(square(in[0]), lab, o); },
            std::vector<Tensor>{leaf({6, 5})}, curved());
      }
    }
  }
  // N-d log-probabilities.
  CT_REQUIRE_GRADGRAD(
      [&](const std::vector<Tensor>& in) {
        return nll_loss(log_softmax(in[0], 1), labels_of({0, 2, 1, 1, 0, 2}, {2, 3}),
                        NllLossOptions().weight(tensor({1.0, 2.0, 0.5}, kFloat64)));
      },
      std::vector<Tensor>{leaf({2, 3, 3}, -2, 2)}, curved());
  // Third order: fn(v) = the nll gradient in the direction v (the adjoint map of v);
  // gradgradcheck differentiates it twice more, through the forward map and the adjoint again.
  const Tensor lp = leaf({6, 5});
  CT_REQUIRE_GRADGRAD(
      [&](const std::vector<Tensor>& in) {
        const Tensor loss =
            nll_loss(lp, ignored,
                     NllLossOptions().reduction(Reduction::None).ignore_index(5).weight(weight));
        return square(autograd::grad({loss}, {lp}, {in[0]}, {.create_graph = true})[0]);
      },
      std::vector<Tensor>{leaf({6})}, curved());
}

TEST_CASE("binary cross-entropy second derivatives", "[gradgrad][loss]") {
  const Tensor weight = tensor({0.5, 2.0, 1.0}, kFloat64);
  for (const Reduction r : {Reduction::None, Reduction::Sum, Reduction::Mean}) {
    for (const bool weighted : {false, true}) {
      INFO("reduction " << static_cast<int>(r) << ", weighted " << weighted);
      CT_REQUIRE_GRADGRAD(
          [&](const std::vector<Tensor>& in) {
            return binary_cross_entropy(in[0], in[1], weighted ? weight : Tensor(), r);
          },
          (std::vector<Tensor>{leaf({4, 3}, 0.05, 0.95), leaf({4, 3}, 0, 1)}), curved());
    }
  }
}

TEST_CASE("binary cross-entropy with logits second derivatives", "[gradgrad][loss]") {
  const Tensor weight = tensor({0.5, 2.0, 1.0}, kFloat64);
  const Tensor pos_weight = tensor({3.0, 0.5, 1.5}, kFloat64);
  for (const Reduction r : {Reduction::None, Reduction::Sum, Reduction::Mean}) {
    for (const bool weighted : {false, true}) {
      for (const bool pos : {false, true}) {
        INFO("reduction " << static_cast<int>(r) << ", weighted " << weighted << ", pos_weight "
                          << pos);
        CT_REQUIRE_GRADGRAD(
            [&](const std::vector<Tensor>& in) {
              return binary_cross_entropy_with_logits(in[0], in[1], weighted ? weight : Tensor(),
                                                      pos ? pos_weight : Tensor(), r);
            },
            (std::vector<Tensor>{leaf({4, 3}, -3, 3), leaf({4, 3}, 0, 1)}), curved());
      }
    }
  }
}

TEST_CASE("mse_loss second derivatives", "[gradgrad][loss]") {
  for (const Reduction r : {Reduction::None, Reduction::Sum, Reduction::Mean}) {
    INFO("reduction " << static_cast<int>(r));
    CT_REQUIRE_GRADGRAD([&](const std::vector<Tensor>& in) { return mse_loss(in[0], in[1], r); },
                        (std::vector<Tensor>{leaf({3, 4}), leaf({3, 4})}), curved());
  }
  // The Hessian of mean((x - t)^2) over n = 4 elements is 2/n I: row sums 1/2 in x.
  Tensor x = ct_test::leaf({4}), t = ct_test::leaf({4});
  const auto g = autograd::grad({mse_loss(x, t)}, {x}, {}, {.create_graph = true});
  const auto h = autograd::grad({sum(g[0])}, {x, t});
  CHECK(h[0].to_vector<double>() == std::vector<double>(4, 0.5));
  CHECK(h[1].to_vector<double>() == std::vector<double>(4, -0.5));
}

// ---- normalisation

TEST_CASE("layer_norm, group_norm and instance_norm second derivatives", "[gradgrad][norm]") {
  CT_REQUIRE_GRADGRAD(
      [](const std::vector<Tensor>& in) { return layer_norm(in[0], {4}, in[1], in[2]); },
      (std::vector<Tensor>{leaf({2, 3, 4}), leaf({4}), leaf({4})}), curved());
  CT_REQUIRE_GRADGRAD(
      [](const std::vector<Tensor>& in) {
        return layer_norm(in[0], {3, 4}, in[1], in[2], 1e-3);
      },
      (std::vector<Tensor>{leaf({2, 3, 4}), leaf({3, 4}), leaf({3, 4})}), curved());
  CT_REQUIRE_GRADGRAD([](const std::vector<Tensor>& in) { return layer_norm(in[0], {5}); },
                      std::vector<Tensor>{leaf({3, 5})}, curved());
  CT_REQUIRE_GRADGRAD(
      [](const std::vector<Tensor>& in) { return group_norm(in[0], 2, in[1], in[2]); },
      (std::vector<Tensor>{leaf({2, 4, 3}), leaf({4}), leaf({4})}), curved());
  CT_REQUIRE_GRADGRAD([](const std::vector<Tensor>& in) { return group_norm(in[0], 3); },
                      std::vector<Tensor>{leaf({2, 3, 2, 2})}, curved());
  CT_REQUIRE_GRADGRAD(
      [](const std::vector<Tensor>& in) { return instance_norm(in[0], {}, {}, in[1], in[2]); },
      (std::vector<Tensor>{leaf({2, 3, 4}), leaf({3}), leaf({3})}), curved());
  // With running statistics updated on the side (off the tape).
  const Tensor running_mean = zeros({2}, kFloat64), running_var = ones({2}, kFloat64);
  CT_REQUIRE_GRADGRAD(
      [&](const std::vector<Tensor>& in) {
        return instance_norm(in[0], running_mean, running_var, {}, {}, true, 0.1, 1e-4);
      },
      std::vector<Tensor>{leaf({2, 2, 2, 3})}, curved());
}

TEST_CASE("BatchNorm in training mode: second derivatives through the batch statistics",
          "[gradgrad][norm]") {
  // Batch statistics make every output depend on every input of its channel: the Hessian is
  // dense within a channel. The module's weight and bias are set away from 1 and 0.
  const auto set_affine = [](nn::BatchNormNd& bn) {
    NoGradGuard off;
    const std::int64_t c = bn.weight().size(0);
    bn.weight().copy_(linspace(0.5, 2.0, c, kFloat64));
    bn.bias().copy_(linspace(-1.0, 1.0, c, kFloat64));
  };
  {
    nn::BatchNorm2d bn(nn::BatchNormOptions(3));
    bn.to(kFloat64);
    set_affine(bn);
    CT_REQUIRE_GRADGRAD([&](const std::vector<Tensor>& in) { return bn(in[0]); },
                        std::vector<Tensor>{leaf({2, 3, 3, 2})}, curved());
  }
  {
    nn::BatchNorm1d bn(nn::BatchNormOptions(3).momentum(std::nullopt));
    bn.to(kFloat64);
    set_affine(bn);
    CT_REQUIRE_GRADGRAD([&](const std::vector<Tensor>& in) { return bn(in[0]); },
                        std::vector<Tensor>{leaf({5, 3})}, curved());
    CT_REQUIRE_GRADGRAD([&](const std::vector<Tensor>& in) { return bn(in[0]); },
                        std::vector<Tensor>{leaf({3, 3, 4})}, curved());
  }
  {
    nn::BatchNorm3d bn(nn::BatchNormOptions(2).affine(false).track_running_stats(false));
    bn.to(kFloat64);
    CT_REQUIRE_GRADGRAD([&](const std::vector<Tensor>& in) { return bn(in[0]); },
                        std::vector<Tensor>{leaf({2, 2, 2, 2, 2})}, curved());
  }
}

TEST_CASE("BatchNorm in training mode: the Hessian of sum(y^2) by hand", "[gradgrad][norm]") {
  // Without affine, y = (x - m) / sqrt(v + eps) with the batch mean m and biased variance v over
  // n values: sum(y^2) = n v / (v + eps), whose gradient is g = c(v) (x - m) with
  // c(v) = 2 eps / (v + eps)^2. sum(g) = 0 for every x, so its gradient is 0; and the Hessian
  // applied to u = x - m is H u = c u + (x - m) c'(v) 2 <x - m, u> / n = (c + 2 v c') u, with
  // c' = -4 eps / (v + eps)^3: H u = 2 eps (eps - 3 v) / (v + eps)^3 u.
  // x = [1, 2, 4, -1]: m = 1.5, u = [-0.5, 0.5, 2.5, -2.5], v = 13 / 4; eps = 3 / 4 makes
  // v + eps = 4: c = 3 / 32 and H u = -13.5 / 64 u.
  nn::BatchNorm1d bn(nn::BatchNormOptions(1).affine(false).eps(0.75));
  bn.to(kFloat64);
  Tensor x = tensor({1.0, 2.0, 4.0, -1.0}, {4, 1}, kFloat64).requires_grad_(true);
  const Tensor u = tensor({-0.5, 0.5, 2.5, -2.5}, {4, 1}, kFloat64);
  const auto g = autograd::grad({sum(square(bn(x)))}, {x}, {}, {.create_graph = true});
  REQUIRE(g[0].requires_grad());
  CHECK(ct_test::allclose(g[0], mul(u, 3.0 / 32), 0, 1e-15));
  const auto h = autograd::grad({sum(g[0])}, {x}, {}, {.retain_graph = true});
  CHECK(ct_test::allclose(h[0], zeros({4, 1}, kFloat64), 0, 1e-15));
  const auto hu = autograd::grad({sum(mul(g[0], u))}, {x});
  CHECK(ct_test::allclose(hu[0], mul(u, -13.5 / 64), 0, 1e-14));
}

// ---- interpolate

TEST_CASE("interpolate second derivatives", "[gradgrad][resample]") {
  struct Case {
    Shape x;
    InterpolateOptions o;
    std::string what;
  };
  const std::vector<Case> cases = {
      {{1, 2, 4}, InterpolateOptions().size(7), "nearest 1-d"},
      {{1, 1, 3, 4}, InterpolateOptions().scale_factor(2.0), "nearest 2-d x2"},
      {{1, 2, 3, 4}, InterpolateOptions().size({5, 3}), "nearest 2-d"},
      {{1, 1, 3, 4}, InterpolateOptions().size({5, 7}).mode("nearest-exact"), "nearest-exact"},
      {{1, 2, 5}, InterpolateOptions().size(8).mode("linear"), "linear"},
      {{1, 2, 3, 4}, InterpolateOptions().size({5, 7}).mode("bilinear"), "bilinear"},
      {{1, 2, 3, 4},
       InterpolateOptions().size({5, 7}).mode("bilinear").align_corners(true),
       "bilinear, align_corners"},
      {{1, 1, 4, 5}, InterpolateOptions().size({3, 2}).mode("bilinear"), "bilinear down"},
      {{1, 1, 2, 3, 2},
       InterpolateOptions().scale_factor(1.5).mode("trilinear").align_corners(true),
       "trilinear"},
  };
  for (const Case& c : cases) {
    INFO(c.what << ", input " << to_string(c.x));
    check_linear_op([&](const Tensor& t) { return interpolate(t, c.o); }, leaf(c.x));
  }
}

}  // namespace
