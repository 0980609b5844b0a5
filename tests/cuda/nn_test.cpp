// CUDA softmax, losses, index_select and the shape ops against the CPU backend, through the public
// ops: softmax / log_softmax over every dim (large logits, -inf entries, long lines that the GPU
// cuts into parts), cross_entropy with labels, label smoothing and probability targets, nll_loss,
// mse_loss, index_select with repeated indices (its gradient sums them), and cat, stack, pad,
// flip, rot90, narrow, slice, expand, permute, transpose, reshape of CUDA tensors. Each case runs
// forward and backward on CPU and CUDA copies of the same inputs with one upstream gradient (the
// op harness, support/op_check.h):
// float32 within rtol 1e-4 / atol 1e-5, float64 within 1e-12. Then float64 gradcheck on the GPU,
// and bad labels / indices on the GPU, which must give the CPU's error message.
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "support/op_check.h"

namespace {

using namespace convtape;
using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

const Device kGpu(DeviceType::CUDA, 0);  // named only: the main checks that it exists

Tensor dev(const Tensor& x) {
  return x.to(kGpu);
}

Tensor i64(const std::vector<std::int64_t>& v) {
  return from_vector(v, {static_cast<std::int64_t>(v.size())});
}

// A CUDA result against the CPU's: on the device, the same dtype and shape, within the dtype's
// tolerance (indices exactly).
bool matches(const Tensor& on_cuda, const Tensor& on_cpu) {
  if (!on_cuda.is_cuda()) {
    UNSCOPED_INFO("the result lives on " << on_cuda.device().str());
    return false;
  }
  return ct_test::close(on_cuda, on_cpu);
}

// fn on CPU inputs and on their CUDA copies, in the dtype of the floating inputs: the outputs
// agree, and so do the gradients of every floating input for one random upstream gradient.
// Integer inputs (labels, indices) are passed as they are, moved to the GPU for the CUDA run.
void check_against_cpu(const Fn& fn, const std::vector<Tensor>& inputs) {
  std::vector<Tensor> in;
  DType dtype = kFloat64;
  for (const Tensor& t : inputs) {
    if (!t.is_floating_point()) {
      in.push_back(t);
      continue;
    }
    dtype = t.dtype();
    in.push_back(t.detach().to(kFloat64).requires_grad_(true));
  }
  ct_test::OpCheck("nn op", fn, in).cuda_only().dtypes({dtype}).run();
}

void require_gradcheck(const Fn& fn, const std::vector<Tensor>& inputs) {
  CT_REQUIRE_GRADCHECK(fn, inputs);
}

Tensor cuda_leaf(const Shape& shape, double low = -1.0, double high = 1.0) {
  return dev(uniform(shape, low, high, kFloat64)).detach().requires_grad_(true);
}

// The message of the Error that f throws ("(no error)" when it throws none).
std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.message();
  }
  return "(no error)";
}

const std::vector<Reduction> kReductions = {Reduction::None, Reduction::Mean, Reduction::Sum};

}  // namespace

TEST_CASE("softmax and log_softmax over every dim match the CPU", "[cuda][nn]") {
  const std::vector<Shape> shapes = {{5}, {4, 7}, {2, 3, 4}, {2, 1, 3, 5}, {3, 1}};
  for (const DType dt : {kFloat32, kFloat64})
    for (const auto& shape : shapes)
      for (std::int64_t d = -1; d < static_cast<std::int64_t>(shape.size()); ++d) {
        INFO(to_string(shape) << " dim " << d << " " << dtype_name(dt));
        for (const double centre : {0.0, 1000.0}) {
          const Tensor x = uniform(shape, centre - 5, centre + 5, dt);
          check_against_cpu([d](const std::vector<Tensor>& v) { return softmax(v[0], d); }, {x});
          check_against_cpu([d](const std::vector<Tensor>& v) { return log_softmax(v[0], d); },
                            {x});
        }
      }
  for (const DType dt : {kFloat32, kFloat64}) {
    // A scalar is a one-element distribution.
    check_against_cpu([](const std::vector<Tensor>& v) { return softmax(v[0], 0); },
                      {full({}, 3.0, dt)});
    // -inf entries (masked logits) and an all -inf row, forward only (its gradient is NaN).
    const double inf = std::numeric_limits<double>::infinity();
    const Tensor masked = tensor({1, -inf, 2, 0, -inf, -inf, 3, 1}, {2, 4}, dt);
    CHECK(matches(softmax(dev(masked), 1), softmax(masked, 1)));
    CHECK(matches(log_softmax(dev(masked), 1), log_softmax(masked, 1)));
    const Tensor all_masked = full({2, 3}, -inf, dt);
    CHECK(matches(softmax(dev(all_masked), 1), softmax(all_masked, 1)));
  }
}

TEST_CASE("softmax over long lines (cut into parts on the GPU) matches the CPU",
          "[cuda][nn][slow]") {
  for (const DType dt : {kFloat32, kFloat64}) {
    INFO(dtype_name(dt));
    for (const auto& [shape, dim] : std::vector<std::pair<Shape, std::int64_t>>{
             {{2, 5000}, 1}, {{1, 100000}, -1}, {{3000, 2}, 0}, {{2, 1500, 3}, 1}}) {
      INFO(to_string(shape) << " dim " << dim);
      const Tensor x = uniform(shape, -8, 8, dt);
      check_against_cpu([dim](const std::vector<Tensor>& v) { return softmax(v[0], dim); }, {x});
      check_against_cpu([dim](const std::vector<Tensor>& v) { return log_softmax(v[0], dim); },
                        {x});
    }
    // One large logit in a long line: the shift must be the line's true maximum.
    Tensor x = zeros({1, 50000}, dt);
    x.put_({0, 31337}, 500.0);
    CHECK(softmax(dev(x), 1).cpu().to_vector<double>()[31337] == 1.0);
  }
}

TEST_CASE("cross_entropy, nll_loss and mse_loss match the CPU", "[cuda][nn]") {
  for (const DType dt : {kFloat32, kFloat64})
    for (const Reduction r : kReductions) {
      INFO(dtype_name(dt) << " reduction " << static_cast<int>(r));
      const Tensor logits = uniform({8, 5}, -3, 3, dt);
      const Tensor labels = randint(0, 5, {8});
      for (const double eps : {0.0, 0.1, 1.0}) {
        INFO("label_smoothing " << eps);
        check_against_cpu(
            [r, eps](const std::vector<Tensor>& v) { return cross_entropy(v[0], v[1], r, eps); },
            {logits, labels});
        // Probability targets, differentiable too.
        const Tensor probs = softmax(uniform({8, 5}, -2, 2, dt), 1);
        check_against_cpu(
            [r, eps](const std::vector<Tensor>& v) { return cross_entropy(v[0], v[1], r, eps); },
            {logits, probs});
      }
      check_against_cpu(
          [r](const std::vector<Tensor>& v) { return nll_loss(log_softmax(v[0], 1), v[1], r); },
          {logits, labels});
      check_against_cpu([r](const std::vector<Tensor>& v) { return mse_loss(v[0], v[1], r); },
                        {uniform({4, 6}, -1, 1, dt), uniform({4, 6}, -1, 1, dt)});
      // A batch of many samples and classes.
      check_against_cpu(
          [r](const std::vector<Tensor>& v) { return cross_entropy(v[0], v[1], r, 0.05); },
          {uniform({512, 1000}, -4, 4, dt), randint(0, 1000, {512})});
    }
  // An empty batch.
  check_against_cpu(
      [](const std::vector<Tensor>& v) { return cross_entropy(v[0], v[1], Reduction::Sum); },
      {Tensor::empty_cpu({0, 3}, kFloat32), Tensor::empty_cpu({0}, kInt64)});
}

TEST_CASE("index_select and its gradient (repeated indices) match the CPU", "[cuda][nn]") {
  const std::vector<std::vector<std::int64_t>> indices = {
      {0}, {2, 0, 2, 2, 1}, {}, {3, 2, 1, 0, 0, 1, 2, 3}};
  for (const DType dt : {kFloat32, kFloat64}) {
    const Tensor x = randn({4, 5, 6}, dt);
    for (std::int64_t d = -1; d < 3; ++d)
      for (const auto& iv : indices) {
        INFO(dtype_name(dt) << " dim " << d << ", " << iv.size() << " indices");
        check_against_cpu([d](const std::vector<Tensor>& v) { return index_select(v[0], d, v[1]); },
                          {x, i64(iv)});
      }
    // Thousands of indices into few rows, and few into many rows.
    check_against_cpu([](const std::vector<Tensor>& v) { return index_select(v[0], 0, v[1]); },
                      {randn({7, 3}, dt), randint(0, 7, {5000})});
    check_against_cpu([](const std::vector<Tensor>& v) { return index_select(v[0], 1, v[1]); },
                      {randn({3, 20000}, dt), randint(0, 20000, {300})});
  }
  // int64 data is selected too (no gradient).
  const Tensor ints = randint(-9, 9, {3, 4});
  CHECK(matches(index_select(dev(ints), 1, dev(i64({3, 3, 0}))),
                index_select(ints, 1, i64({3, 3, 0}))));
  // Deterministic: the gradient of many repeated rows is the same bits every time.
  const Tensor src = dev(randn({10, 4}));
  const Tensor many = dev(randint(0, 10, {20000}));
  auto grad_of = [&]() {
    Tensor leaf = src.detach().requires_grad_(true);
    sum(mul(index_select(leaf, 0, many), 1.5)).backward();
    return leaf.grad().cpu();
  };
  const Tensor first = grad_of();
  CHECK(ct_test::equal(grad_of(), first));
}

TEST_CASE("shape ops of CUDA tensors match the CPU, forward and backward", "[cuda][nn]") {
  for (const DType dt : {kFloat32, kFloat64}) {
    INFO(dtype_name(dt));
    const Tensor x = randn({2, 3, 4}, dt);
    const Tensor y = randn({2, 5, 4}, dt);
    check_against_cpu([](const std::vector<Tensor>& v) { return cat({v[0], v[1]}, 1); }, {x, y});
    check_against_cpu([](const std::vector<Tensor>& v) { return cat({v[0], v[0]}, -1); }, {x});
    check_against_cpu([](const std::vector<Tensor>& v) { return stack({v[0], v[0]}, 1); }, {x});
    check_against_cpu(
        [](const std::vector<Tensor>& v) {
          return pad(v[0], {{1, 2}, {0, 3}}, 0.5);
        },
        {x});
    check_against_cpu([](const std::vector<Tensor>& v) { return flip(v[0], {0, 2}); }, {x});
    check_against_cpu([](const std::vector<Tensor>& v) { return rot90(v[0], 1, {1, 2}); }, {x});
    check_against_cpu([](const std::vector<Tensor>& v) { return narrow(v[0], 2, 1, 2); }, {x});
    check_against_cpu([](const std::vector<Tensor>& v) { return slice(v[0], 1, -2, 3, 1); }, {x});
    check_against_cpu([](const std::vector<Tensor>& v) { return slice(v[0], 2, 0, 4, 3); }, {x});
    check_against_cpu(
        [](const std::vector<Tensor>& v) {
          return expand(v[0], {3, 2, 3, 4}).contiguous();
        },
        {x});
    check_against_cpu(
        [](const std::vector<Tensor>& v) {
          return expand(v[0], {2, 3, 4, 5});
        },
        {randn({2, 1, 4, 1}, dt)});
    check_against_cpu([](const std::vector<Tensor>& v) { return permute(v[0], {2, 0, 1}); }, {x});
    check_against_cpu([](const std::vector<Tensor>& v) { return transpose(v[0], 0, 2); }, {x});
    check_against_cpu([](const std::vector<Tensor>& v) { return reshape(v[0], {4, -1}); }, {x});
    // reshape of a non-contiguous view copies.
    check_against_cpu(
        [](const std::vector<Tensor>& v) {
          return reshape(transpose(v[0], 1, 2), {8, 3});
        },
        {x});
    check_against_cpu([](const std::vector<Tensor>& v) { return flatten(v[0], 1); }, {x});
    check_against_cpu([](const std::vector<Tensor>& v) { return unsqueeze(squeeze(v[0]), 0); },
                      {randn({2, 1, 3}, dt)});
    // A chain of views feeding a reduction and a softmax.
    check_against_cpu(
        [](const std::vector<Tensor>& v) {
          return softmax(sum(permute(flip(v[0], {1}), {2, 1, 0}), {2}), 0);
        },
        {x});
  }
}

TEST_CASE("float64 gradcheck of softmax, the losses and index_select on the GPU", "[cuda][nn]") {
  const Tensor x = cuda_leaf({3, 5});
  require_gradcheck([](const std::vector<Tensor>& v) { return softmax(v[0], 1); }, {x});
  require_gradcheck([](const std::vector<Tensor>& v) { return softmax(v[0], 0); }, {x});
  require_gradcheck([](const std::vector<Tensor>& v) { return log_softmax(v[0], -1); }, {x});
  const Tensor labels = dev(i64({4, 0, 2}));
  require_gradcheck([](const std::vector<Tensor>& v) { return cross_entropy(v[0], v[1]); },
                    {x, labels});
  require_gradcheck(
      [](const std::vector<Tensor>& v) { return cross_entropy(v[0], v[1], Reduction::Sum, 0.2); },
      {x, labels});
  const Tensor probs =
      dev(softmax(uniform({3, 5}, -1, 1, kFloat64), 1)).detach().requires_grad_(true);
  require_gradcheck(
      [](const std::vector<Tensor>& v) { return cross_entropy(v[0], v[1], Reduction::None, 0.1); },
      {x, probs});
  require_gradcheck(
      [](const std::vector<Tensor>& v) {
        return nll_loss(log_softmax(v[0], 1), v[1], Reduction::None);
      },
      {x, labels});
  const Tensor index = dev(i64({2, 0, 2, 1, 2}));
  require_gradcheck([](const std::vector<Tensor>& v) { return index_select(v[0], 1, v[1]); },
                    {cuda_leaf({2, 3, 4}), index});
}

TEST_CASE("bad labels and indices on the GPU give the CPU's error message", "[cuda][nn]") {
  const Tensor logp = log_softmax(uniform({3, 4}, -1, 1, kFloat64), 1);
  for (const auto& bad : {i64({1, 7, 2}), i64({-1, 0, 0}), i64({0, 1, 4})}) {
    const std::string want = message_of([&] { nll_loss(logp, bad); });
    REQUIRE(want.find("nll_loss: expected labels in [0, 4)") == 0);
    CHECK(message_of([&] { nll_loss(dev(logp), dev(bad)); }) == want);
    CHECK(message_of([&] { cross_entropy(dev(logp), dev(bad)); }) == want);
  }
  CT_REQUIRE_ERROR(nll_loss(dev(logp), dev(i64({1, 7, 2}))),
                   "nll_loss: expected labels in [0, 4), got 7 at position 1");
  const Tensor x = randn({2, 3, 1, 1});
  for (const std::int64_t d : {0, 1, -3})
    for (const auto& bad : {i64({0, 3}), i64({-2}), i64({1, 1, 9, -1})}) {
      INFO("dim " << d);
      const std::string want = message_of([&] { index_select(x, d, bad); });
      REQUIRE(want.find("index_select: expected indices in") == 0);
      CHECK(message_of([&] { index_select(dev(x), d, dev(bad)); }) == want);
    }
  // The device is still usable afterwards.
  CHECK(matches(nll_loss(dev(logp), dev(i64({3, 2, 1}))), nll_loss(logp, i64({3, 2, 1}))));
}
