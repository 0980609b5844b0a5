// Tests of deterministic mode (core/settings.h, cpu/parallel.h): the switch (shared with the CUDA
// backend) and its environment rule; every CPU convolution path (implicit GEMM, strided phases,
// im2col, pointwise, depthwise, dilated) and the matrix products giving the same bits with 1, 2
// and 3 OpenMP threads; the default mode giving the same bits run to run at a fixed thread count;
// and a small CNN with BatchNorm and Dropout training to bit-identical parameters with 1 and 2
// threads. Shapes are large enough for the kernels' parallel cuts (kParallelWork) to apply.
#include <string>
#include <vector>

#include "support/test_util.h"

namespace {

using namespace convtape;
using ct_test::equal;

// Sets the calling thread's OpenMP team size for a scope.
class ThreadsGuard {
 public:
  explicit ThreadsGuard(int n) : previous_(num_threads()) { set_num_threads(n); }
  ~ThreadsGuard() { set_num_threads(previous_); }
  ThreadsGuard(const ThreadsGuard&) = delete;
  ThreadsGuard& operator=(const ThreadsGuard&) = delete;

 private:
  int previous_;
};

struct ConvCase {
  std::string name;
  Shape x, w;
  ConvOptions options;
};

std::vector<ConvCase> conv_cases() {
  return {
      {"implicit GEMM, unit stride", {8, 8, 20, 20}, {16, 8, 3, 3}, ConvOptions().padding(1)},
      {"strided (phase split)", {8, 8, 20, 20}, {16, 8, 3, 3}, ConvOptions().stride(2).padding(1)},
      {"im2col (batch below the planned threads)",
       {3, 8, 24, 24},
       {16, 8, 3, 3},
       ConvOptions().padding(1)},
      {"pointwise", {4, 32, 24, 24}, {32, 32, 1, 1}, ConvOptions()},
      {"depthwise", {4, 16, 24, 24}, {16, 1, 3, 3}, ConvOptions().padding(1).groups(16)},
      {"dilated, grouped", {4, 8, 24, 24}, {16, 4, 3, 3}, ConvOptions().dilation(2).groups(2)},
      {"3-d", {4, 4, 10, 10, 10}, {8, 4, 3, 3, 3}, ConvOptions().padding(1)},
  };
}

// y, dx, dw and db of one convolution, forward and backward, from fixed inputs.
std::vector<Tensor> conv_pass(const ConvCase& c) {
  Generator gen(11);
  const Tensor x = uniform(c.x, -1, 1, kFloat32, &gen).requires_grad_();
  const Tensor w = uniform(c.w, -1, 1, kFloat32, &gen).requires_grad_();
  const Tensor b = uniform({c.w[0]}, -1, 1, kFloat32, &gen).requires_grad_();
  const Tensor y = conv(x, w, b, c.options);
  y.backward(uniform(y.shape(), -1, 1, kFloat32, &gen));
  return {y.detach(), x.grad(), w.grad(), b.grad()};
}

bool all_equal(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!equal(a[i], b[i])) return false;
  return true;
}

TEST_CASE("deterministic: one switch for both backends, scoped by DeterministicGuard") {
  const bool before = deterministic();
  {
    DeterministicGuard on(true);
    CHECK(deterministic());
    CHECK(cuda::deterministic());
    cuda::set_deterministic(false);  // the CUDA name sets the same switch
    CHECK_FALSE(deterministic());
  }
  CHECK(deterministic() == before);
  // CONVTAPE_DETERMINISTIC's values (and every other CONVTAPE_* on/off variable's).
  using detail::parse_env_flag;
  for (const char* on : {"1", "true", "ON", "Yes"}) CHECK(parse_env_flag(on, false));
  for (const char* off : {"0", "false", "Off", "no", ""}) CHECK_FALSE(parse_env_flag(off, true));
  CHECK(parse_env_flag("maybe", true));
  CHECK_FALSE(parse_env_flag(nullptr, false));
}

TEST_CASE("deterministic: set_num_threads sets the team and refuses fewer than one thread") {
  {
    ThreadsGuard one(1);
    CHECK(num_threads() == 1);
    set_num_threads(3);
    CHECK(num_threads() == 3);
  }
  CT_REQUIRE_ERROR(set_num_threads(0), "set_num_threads: expected at least 1 thread, got 0");
  CT_REQUIRE_ERROR(set_num_threads(-5), "set_num_threads: expected at least 1 thread, got -5");
}

TEST_CASE("deterministic: every conv path gives the same bits with 1, 2 and 3 threads") {
  DeterministicGuard det(true);
  for (const ConvCase& c : conv_cases()) {
    INFO(c.name);
    std::vector<Tensor> one;
    {
      ThreadsGuard t(1);
      one = conv_pass(c);
    }
    for (int threads : {2, 3}) {
      INFO(threads << " threads");
      ThreadsGuard t(threads);
      CHECK(all_equal(conv_pass(c), one));
    }
  }
}

TEST_CASE("deterministic: matmul and bmm give the same bits with 1, 2 and 3 threads") {
  DeterministicGuard det(true);
  Generator gen(12);
  // Shapes on both sides of the GEMM's split rules (N-split, M-split, unpacked, batched).
  const std::vector<std::pair<Shape, Shape>> shapes = {{{64, 1024}, {1024, 200}},
                                                       {{700, 300}, {300, 24}},
                                                       {{16, 900}, {900, 100}},
                                                       {{5, 40, 300}, {5, 300, 120}},
                                                       {{12, 40, 300}, {12, 300, 120}}};
  for (const auto& [sa, sb] : shapes) {
    INFO(to_string(sa) << " x " << to_string(sb));
    const Tensor a = uniform(sa, -1, 1, kFloat32, &gen), b = uniform(sb, -1, 1, kFloat32, &gen);
    Tensor ref;
    {
      ThreadsGuard t(1);
      ref = matmul(a, b);
    }
    for (int threads : {2, 3}) {
      ThreadsGuard t(threads);
      CHECK(equal(matmul(a, b), ref));
    }
  }
}

TEST_CASE("deterministic: the default mode gives the same bits run to run at 2 threads") {
  DeterministicGuard det(false);
  ThreadsGuard t(2);
  for (const ConvCase& c : conv_cases()) {
    INFO(c.name);
    const std::vector<Tensor> first = conv_pass(c);
    for (int run = 0; run < 4; ++run) CHECK(all_equal(conv_pass(c), first));
  }
}

TEST_CASE("deterministic: the cut matters in the default mode, not in deterministic mode") {
  // The weight gradient of a long reduction, summed in 1 part with one thread and in 2 with two:
  // float32 rounding makes the two differ somewhere (which is why deterministic mode exists, and
  // shows that the equality checks above can fail).
  const ConvCase c{"im2col", {3, 8, 24, 24}, {16, 8, 3, 3}, ConvOptions().padding(1)};
  for (bool det : {false, true}) {
    DeterministicGuard mode(det);
    std::vector<Tensor> one, two;
    {
      ThreadsGuard t(1);
      one = conv_pass(c);
    }
    {
      ThreadsGuard t(2);
      two = conv_pass(c);
    }
    CHECK(equal(one[2], two[2]) == det);
  }
}

std::shared_ptr<nn::Sequential> small_cnn(Generator* dropout_gen) {
  auto m = std::make_shared<nn::Sequential>();
  m->push_back(std::make_shared<nn::Conv2d>(nn::Conv2dOptions(3, 8, 3).padding(1)));
  m->push_back(std::make_shared<nn::BatchNorm2d>(8));
  m->push_back(std::make_shared<nn::ReLU>());
  m->push_back(std::make_shared<nn::Conv2d>(nn::Conv2dOptions(8, 16, 3).stride(2).padding(1)));
  m->push_back(std::make_shared<nn::ReLU>());
  m->push_back(std::make_shared<nn::Conv2d>(nn::Conv2dOptions(16, 16, 1)));
  m->push_back(std::make_shared<nn::Conv2d>(nn::Conv2dOptions(16, 16, 3).padding(1).groups(16)));
  m->push_back(std::make_shared<nn::MaxPool2d>(2));
  m->push_back(std::make_shared<nn::Flatten>());
  m->push_back(std::make_shared<nn::Dropout>(0.25, dropout_gen));
  m->push_back(std::make_shared<nn::Linear>(16 * 8 * 8, 128));
  m->push_back(std::make_shared<nn::ReLU>());
  m->push_back(std::make_shared<nn::Linear>(128, 10));
  return m;
}

// Parameters and buffers after `steps` SGD steps of small_cnn from seed 5.
std::vector<Tensor> train(int steps) {
  manual_seed(5);
  Generator drop_gen(6), data_gen(7);
  auto model = small_cnn(&drop_gen);
  optim::SGD sgd(model->parameters(), optim::SGDOptions(0.05).momentum(0.9));
  for (int s = 0; s < steps; ++s) {
    const Tensor x = uniform({8, 3, 32, 32}, -1, 1, kFloat32, &data_gen);
    const Tensor y = randint(0, 10, {8}, kInt64, &data_gen);
    const Tensor loss = cross_entropy((*model)(x), y);
    sgd.zero_grad();
    loss.backward();
    sgd.step();
  }
  std::vector<Tensor> out;
  for (const auto& [name, t] : model->state_dict()) out.push_back(t);
  return out;
}

TEST_CASE(
    "deterministic: a CNN with BatchNorm and Dropout trains to the same bits on 1 and 2 "
    "threads") {
  DeterministicGuard det(true);
  std::vector<Tensor> one, two;
  {
    ThreadsGuard t(1);
    one = train(4);
  }
  {
    ThreadsGuard t(2);
    two = train(4);
  }
  REQUIRE(one.size() == two.size());
  for (std::size_t i = 0; i < one.size(); ++i) {
    INFO("state tensor " << i);
    CHECK(equal(one[i], two[i]));
  }
}

}  // namespace
