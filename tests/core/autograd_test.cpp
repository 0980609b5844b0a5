// The tape: accumulation, shared inputs, retain_graph, freed graphs, grad mode, detach, in-place
// safety, deep graphs, and memory that stays flat over 10,000 training steps.
#include "support/test_util.h"

using namespace convtape;

TEST_CASE("gradients of a small expression match hand-derived values", "[autograd]") {
  Tensor x = tensor({1, 2, 3}, kFloat64).requires_grad_();
  Tensor w = tensor({4, 5, 6}, kFloat64).requires_grad_();
  Tensor y = sum(x * w + x * x);  // dy/dx = w + 2x, dy/dw = x
  y.backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{6, 9, 12});
  CHECK(w.grad().to_vector<double>() == std::vector<double>{1, 2, 3});
  CHECK(x.is_leaf());
  CHECK_FALSE(y.is_leaf());
  CHECK(y.grad_fn_name() == "sum");
}

TEST_CASE("leaf gradients accumulate across backward calls until zero_grad", "[autograd]") {
  Tensor x = tensor({1, -2}, kFloat64).requires_grad_();
  sum(x * 3.0).backward();
  sum(x * 3.0).backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{6, 6});
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
  sum(x * x).backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{2, -4});
}

TEST_CASE("a tensor with several consumers sums their gradients", "[autograd]") {
  Tensor x = tensor({2}, kFloat64).requires_grad_();
  Tensor a = x * 3.0;                   // a = 6
  Tensor b = a * a + a + exp(a * 0.0);  // db/da = 2a + 1 = 13
  Tensor c = b * x;                     // dc/dx = b + x * 13 * 3 = 43 + 78
  c.sum().backward();
  CHECK(x.grad().item() == 121.0);
  // Diamond: x feeds two branches that meet again.
  Tensor z = tensor({3}, kFloat64).requires_grad_();
  Tensor left = z * 2.0, right = z * z;
  sum(left * right).backward();  // d(2 z^3)/dz = 6 z^2 = 54
  CHECK(z.grad().item() == 54.0);
}

TEST_CASE("backward with an explicit gradient on a non-scalar", "[autograd]") {
  Tensor x = tensor({1, 2, 3, 4}, {2, 2}, kFloat64).requires_grad_();
  Tensor y = x * x;
  y.backward(tensor({1, 0, 0, 2}, {2, 2}, kFloat64));
  CHECK(x.grad().to_vector<double>() == std::vector<double>{2, 0, 0, 16});
  CT_REQUIRE_ERROR(
      (x * 2.0).backward(),
      "backward: expected a one-element tensor when no gradient is given, got shape [2, 2]");
  CT_REQUIRE_ERROR((x * 2.0).backward(ones({2}, kFloat64)),
                   "backward: expected a gradient of shape [2, 2]");
  CT_REQUIRE_ERROR(ones({2}).sum().backward(), "backward: expected a tensor that requires grad");
}

TEST_CASE("retain_graph allows a second backward; without it the graph is freed", "[autograd]") {
  Tensor x = tensor({1.5}, kFloat64).requires_grad_();
  Tensor y = sum(exp(x) * x);
  y.backward({}, /*retain_graph=*/true);
  const double g1 = x.grad().item();
  y.backward();
  CHECK(x.grad().item() == Approx(2 * g1));
  CT_REQUIRE_ERROR(
      y.backward(),
      "backward: expected a graph that is still alive, got one freed by an earlier backward()");
}

TEST_CASE("NoGradGuard, detach and requires_grad_", "[autograd]") {
  Tensor x = ones({3}, kFloat64).requires_grad_();
  {
    NoGradGuard guard;
    CHECK_FALSE(GradMode::is_enabled());
    Tensor y = x * 2.0;
    CHECK_FALSE(y.requires_grad());
    CHECK_FALSE(y.grad_fn());
    { NoGradGuard nested; }
    CHECK_FALSE(GradMode::is_enabled());
  }
  CHECK(GradMode::is_enabled());
  Tensor d = (x * 2.0).detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.is_leaf());
  Tensor y = sum(d * x);
  y.backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{2, 2, 2});
  Tensor nonleaf = x * 1.0;
  CT_REQUIRE_ERROR(nonleaf.requires_grad_(false),
                   "requires_grad_: expected a leaf tensor, got the output of mul");
  Tensor leaf = zeros({1}, kFloat64);
  leaf.requires_grad_();
  CHECK(leaf.requires_grad());
  CHECK(zeros({2}, TensorOptions(kFloat64).requires_grad(true)).requires_grad());
}

TEST_CASE("modifying a saved tensor in place is caught at backward", "[autograd]") {
  Tensor x = tensor({1, 2}, kFloat64).requires_grad_();
  Tensor y = x * 2.0;
  Tensor z = exp(y);  // saves its output
  {
    NoGradGuard guard;
    z.mul_(3.0);
  }
  CT_REQUIRE_ERROR(z.sum().backward(),
                   "backward of exp: expected saved tensor 0 unchanged since the forward pass");
}

TEST_CASE("deep graphs run and free without recursion", "[autograd]") {
  Tensor x = tensor({1}, kFloat64).requires_grad_();
  Tensor y = x;
  for (int i = 0; i < 100000; ++i) y = y * 1.0;
  y.sum().backward();
  CHECK(x.grad().item() == 1.0);
  y = Tensor();  // destroys 100,000 chained nodes
  CHECK(memory_stats().autograd_nodes == 0);
}

TEST_CASE("gradients flow through dtype conversions and views", "[autograd]") {
  Tensor x = tensor({1, 2, 3, 4, 5, 6}, {2, 3}, kFloat64).requires_grad_();
  Tensor y = x.to(kFloat32).transpose(0, 1).reshape({6}) * 2.0;
  y.to(kFloat64).sum().backward();
  CHECK(x.grad().dtype() == kFloat64);
  CHECK(x.grad().to_vector<double>() == std::vector<double>(6, 2.0));
}

TEST_CASE("memory stays flat over 10,000 training steps", "[autograd][memory]") {
  manual_seed(3);
  const Tensor xs = randn({32, 4}, kFloat64);
  const Tensor ys = matmul(xs, tensor({1, -2, 0.5, 3}, {4, 1}, kFloat64)) + 0.25;
  Tensor w = zeros({4, 1}, kFloat64).requires_grad_();
  Tensor b = zeros({1}, kFloat64).requires_grad_();
  MemoryStats after_warmup, end;
  for (int step = 0; step < 10000; ++step) {
    Tensor loss = mse_loss(matmul(xs, w) + b, ys);
    w.zero_grad();
    b.zero_grad();
    loss.backward();
    {
      NoGradGuard guard;
      w.add_(w.grad(), -0.05);
      b.add_(b.grad(), -0.05);
    }
    // Measured at the same point of the step (the loss and its freed graph are still alive).
    if (step == 99) after_warmup = memory_stats();
    if (step == 9999) end = memory_stats();
  }
  CHECK(end.cpu_bytes == after_warmup.cpu_bytes);
  CHECK(end.storages == after_warmup.storages);
  CHECK(end.autograd_nodes == after_warmup.autograd_nodes);
  CHECK(memory_stats().autograd_nodes == 0);
  CHECK(w.to_vector<double>()[1] == Approx(-2.0).margin(1e-6));
  CHECK(b.item() == Approx(0.25).margin(1e-6));
}

TEST_CASE("set_grad with a gradient on the tape stores it detached (no cycle)",
          "[autograd][memory]") {
  Tensor w = ones({256}, kFloat64).requires_grad_();
  // w.set_grad(mul(w, 2.0)) would make w -> grad -> mul node -> w: a shared_ptr cycle.
  w.set_grad(mul(w, 2.0));
  CHECK(w.grad().is_leaf());
  CHECK_FALSE(w.grad().requires_grad());
  CHECK(w.grad().to_vector<double>() == std::vector<double>(256, 2.0));
  const MemoryStats before = memory_stats();
  for (int step = 0; step < 1000; ++step) w.set_grad(mul(w, 2.0));
  const MemoryStats after = memory_stats();
  CHECK(after.autograd_nodes == before.autograd_nodes);
  CHECK(after.storages == before.storages);
  CHECK(after.cpu_bytes == before.cpu_bytes);
  // A leaf's own handle is a cycle too: w.set_grad(w).
  Tensor v = ones({3}, kFloat64).requires_grad_();
  v.set_grad(v);
  CHECK_FALSE(v.grad().same(v));
  CHECK(v.grad().storage() == v.storage());
  // A plain tensor is kept as it is (its identity too).
  const Tensor g = full({256}, 3.0, kFloat64);
  w.set_grad(g);
  CHECK(w.grad().same(g));
  w.set_grad(Tensor());
  CHECK_FALSE(w.grad().defined());
  // Backward accumulates into a stored gradient as before.
  w.set_grad(mul(w, 1.0));
  sum(w).backward();
  CHECK(w.grad().to_vector<double>() == std::vector<double>(256, 2.0));
  CHECK(memory_stats().autograd_nodes == 0);
}

TEST_CASE("autograd: a post-accumulate hook runs once per backward, after the leaf's last use") {
  Tensor w = tensor({1.0, 2.0}).requires_grad_();
  Tensor unused = tensor({5.0}).requires_grad_();
  std::vector<std::string> events;
  auto h = autograd::register_post_accumulate_grad_hook(w, [&](const Tensor& leaf) {
    REQUIRE(leaf.same(w));
    // Final: both uses of w have been accumulated (d/dw of sum(w * w) + sum(3 w) = 2 w + 3).
    REQUIRE(leaf.grad().to_vector<float>() == std::vector<float>{5.0f, 7.0f});
    events.push_back("hook");
  });
  autograd::register_post_accumulate_grad_hook(unused,
                                               [&](const Tensor&) { events.push_back("x"); });
  const Tensor y = add(sum(mul(w, w)), sum(mul(w, 3.0)));
  y.backward();
  REQUIRE(events == std::vector<std::string>{"hook"});
  // A removed hook gets no call.
  h.remove();
  w.zero_grad();
  add(sum(mul(w, w)), sum(mul(w, 3.0))).backward();
  REQUIRE(events.size() == 1);
}

TEST_CASE("autograd: callbacks queued during backward run after its last node") {
  Tensor a = tensor({1.0}).requires_grad_();
  Tensor b = tensor({2.0}).requires_grad_();
  std::vector<std::string> events;
  REQUIRE_FALSE(autograd::in_backward());
  autograd::register_post_accumulate_grad_hook(b, [&](const Tensor&) {
    REQUIRE(autograd::in_backward());
    events.push_back("b");
    autograd::queue_callback([&] {
      // Every gradient is in place by now, a's included.
      REQUIRE(a.grad().defined());
      events.push_back("callback");
    });
  });
  autograd::register_post_accumulate_grad_hook(a, [&](const Tensor&) { events.push_back("a"); });
  sum(mul(mul(a, 2.0), b)).backward();
  REQUIRE(events.size() == 3);
  REQUIRE(events.back() == "callback");
  REQUIRE_FALSE(autograd::in_backward());
  // A callback that throws ends the backward with its error, and the next backward is clean.
  autograd::register_post_accumulate_grad_hook(a, [&](const Tensor&) {
    autograd::queue_callback(
        [] { CT_CHECK(false, "callback: expected nothing, got a test error"); });
  });
  REQUIRE_THROWS_WITH(sum(mul(a, b)).backward(), Catch::Contains("got a test error"));
  REQUIRE_FALSE(autograd::in_backward());
}

TEST_CASE("autograd: hooks and callbacks refuse misuse") {
  REQUIRE_THROWS_WITH(autograd::queue_callback([] {}),
                      Catch::Contains("queue_callback: expected to be called during backward()"));
  Tensor x = tensor({1.0}).requires_grad_();
  REQUIRE_THROWS_WITH(
      autograd::register_post_accumulate_grad_hook(mul(x, 2.0), [](const Tensor&) {}),
      Catch::Contains("register_post_accumulate_grad_hook: expected a leaf tensor "
                      "that requires grad, got the output of"));
  REQUIRE_THROWS_WITH(
      autograd::register_post_accumulate_grad_hook(tensor({1.0}), [](const Tensor&) {}),
      Catch::Contains("got one that does not require grad"));
  REQUIRE_THROWS_WITH(autograd::register_post_accumulate_grad_hook(x, nullptr),
                      Catch::Contains("expected a hook, got an empty function"));
}
