// Threads: library calls made from several std::threads at once, the cases the ThreadSanitizer
// job (scripts/tsan) runs. Two threads training models with Dropout and BatchNorm from the shared
// default generator; the same with a generator each, which must give exactly the single-threaded
// result; convolutions forward and backward on separate tensors at once, against the results
// computed alone; and allocations racing through the host block cache while another thread
// empties and resizes it. Deterministic mode makes the results independent of the OpenMP team
// each std::thread starts, so comparisons are bitwise.
#include <atomic>
#include <thread>
#include <vector>

#include "support/test_util.h"

namespace {

using namespace convtape;
using ct_test::equal;

std::shared_ptr<nn::Sequential> model_with_dropout(Generator* dropout_gen) {
  auto m = std::make_shared<nn::Sequential>();
  m->push_back(std::make_shared<nn::Conv2d>(nn::Conv2dOptions(2, 8, 3).padding(1)));
  m->push_back(std::make_shared<nn::BatchNorm2d>(8));
  m->push_back(std::make_shared<nn::ReLU>());
  m->push_back(std::make_shared<nn::MaxPool2d>(2));
  m->push_back(std::make_shared<nn::Flatten>());
  m->push_back(std::make_shared<nn::Dropout>(0.3, dropout_gen));
  m->push_back(std::make_shared<nn::Linear>(8 * 8 * 8, 10));
  return m;
}

struct Run {
  std::vector<Tensor> state;
  std::vector<double> losses;
};

// `steps` SGD steps from the parameters in `init`, on data from data_seed; Dropout draws from
// dropout_gen (the default generator when null).
Run train(const StateDict& init, Generator* dropout_gen, std::uint64_t data_seed, int steps) {
  auto model = model_with_dropout(dropout_gen);
  model->load_state_dict(init);
  Generator data(data_seed);
  optim::SGD sgd(model->parameters(), optim::SGDOptions(0.05).momentum(0.9));
  Run r;
  for (int s = 0; s < steps; ++s) {
    const Tensor x = uniform({6, 2, 16, 16}, -1, 1, kFloat32, &data);
    const Tensor y = randint(0, 10, {6}, kInt64, &data);
    const Tensor loss = cross_entropy((*model)(x), y);
    sgd.zero_grad();
    loss.backward();
    sgd.step();
    r.losses.push_back(loss.item());
  }
  for (const auto& [name, t] : model->state_dict()) r.state.push_back(t);
  return r;
}

StateDict initial_state() {
  manual_seed(31);
  return model_with_dropout(nullptr)->state_dict();
}

TEST_CASE("threads: two threads train with Dropout and BatchNorm from the default generator") {
  DeterministicGuard det(true);
  const StateDict init = initial_state();
  manual_seed(32);  // seeded in main, drawn in the workers
  std::vector<Run> runs(2);
  std::vector<std::thread> pool;
  for (int t = 0; t < 2; ++t)
    pool.emplace_back([&, t] { runs[static_cast<std::size_t>(t)] = train(init, nullptr, 40, 6); });
  for (auto& th : pool) th.join();
  // Which masks each thread got depends on the scheduler; that each trained is what counts, and
  // that the default generator then still gives the seeded stream.
  for (const Run& r : runs) {
    REQUIRE(r.losses.size() == 6);
    for (double l : r.losses) CHECK(std::isfinite(l));
    CHECK_FALSE(equal(r.state[0], init.begin()->second));
  }
  manual_seed(33);
  const Tensor a = rand({16});
  manual_seed(33);
  CHECK(equal(rand({16}), a));
}

TEST_CASE("threads: with a generator each, concurrent training equals training alone") {
  DeterministicGuard det(true);
  const StateDict init = initial_state();
  std::vector<Run> alone;
  for (std::uint64_t t = 0; t < 2; ++t) {
    Generator gen(50 + t);
    alone.push_back(train(init, &gen, 60 + t, 6));
  }
  std::vector<Run> together(2);
  std::vector<std::thread> pool;
  for (std::uint64_t t = 0; t < 2; ++t)
    pool.emplace_back([&, t] {
      Generator gen(50 + t);
      together[t] = train(init, &gen, 60 + t, 6);
    });
  for (auto& th : pool) th.join();
  for (std::size_t t = 0; t < 2; ++t) {
    INFO("thread " << t);
    CHECK(together[t].losses == alone[t].losses);
    REQUIRE(together[t].state.size() == alone[t].state.size());
    for (std::size_t i = 0; i < alone[t].state.size(); ++i)
      CHECK(equal(together[t].state[i], alone[t].state[i]));
  }
}

TEST_CASE("threads: convolutions forward and backward at once agree with each computed alone") {
  DeterministicGuard det(true);
  struct Case {
    Shape x, w;
    ConvOptions o;
  };
  const std::vector<Case> cases = {{{4, 8, 16, 16}, {16, 8, 3, 3}, ConvOptions().padding(1)},
                                   {{2, 8, 16, 16}, {8, 8, 3, 3}, ConvOptions().stride(2)},
                                   {{4, 8, 16, 16}, {8, 1, 3, 3}, ConvOptions().groups(8)},
                                   {{4, 16, 12, 12}, {16, 16, 1, 1}, ConvOptions()}};
  auto pass = [&](std::size_t i) {
    Generator gen(70 + i);
    const Case& c = cases[i];
    const Tensor x = uniform(c.x, -1, 1, kFloat32, &gen).requires_grad_();
    const Tensor w = uniform(c.w, -1, 1, kFloat32, &gen).requires_grad_();
    const Tensor y = conv(x, w, Tensor(), c.o);
    y.backward(uniform(y.shape(), -1, 1, kFloat32, &gen));
    return std::vector<Tensor>{y.detach(), x.grad(), w.grad()};
  };
  std::vector<std::vector<Tensor>> alone;
  for (std::size_t i = 0; i < cases.size(); ++i) alone.push_back(pass(i));
  std::vector<std::vector<Tensor>> together(cases.size());
  std::vector<std::thread> pool;
  for (std::size_t i = 0; i < cases.size(); ++i)
    pool.emplace_back([&, i] {
      for (int rep = 0; rep < 3; ++rep) together[i] = pass(i);
    });
  for (auto& th : pool) th.join();
  for (std::size_t i = 0; i < cases.size(); ++i) {
    INFO("case " << i);
    for (std::size_t k = 0; k < 3; ++k) CHECK(equal(together[i][k], alone[i][k]));
  }
}

TEST_CASE("threads: allocations race through the host cache while it is emptied and resized") {
  const std::int64_t limit = cpu_cache_limit();
  const std::int64_t before = memory_stats().cpu_bytes;
  std::atomic<int> bad{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> pool;
  for (int t = 0; t < 3; ++t)
    pool.emplace_back([&, t] {
      for (int i = 0; i < 150; ++i) {
        // 256 KiB .. 1.3 MiB: every size is cached, and neighbouring sizes share blocks.
        const std::int64_t n = (1 << 16) + ((i * 7 + t * 13) % 16) * (1 << 14);
        Tensor a = full({n}, static_cast<double>(t * 1000 + i));
        Tensor b = full({n / 2 + 1}, static_cast<double>(-t));
        if (a.data_ptr<float>()[n - 1] != static_cast<float>(t * 1000 + i) ||
            b.data_ptr<float>()[0] != static_cast<float>(-t))
          ++bad;
      }
    });
  std::thread churn([&] {
    for (int i = 0; !stop.load(); ++i) {
      if (i % 2 == 0) empty_cache();
      set_cpu_cache_limit(i % 3 == 0 ? (std::int64_t{4} << 20) : limit);
      std::this_thread::yield();
    }
  });
  for (auto& th : pool) th.join();
  stop = true;
  churn.join();
  set_cpu_cache_limit(limit);
  CHECK(bad.load() == 0);
  CHECK(memory_stats().cpu_bytes == before);
  CHECK(memory_stats().cpu_cached_bytes <= limit);
}

}  // namespace
