// The training stack on the GPU: modules moved with to(Device::cuda()), forward and backward of
// whole networks (conv, pooling, BatchNorm, dropout, linear, cross-entropy), the optimizers'
// in-place updates on device tensors, and checkpoints written from and loaded into a GPU model.
// Every figure is compared with the same computation on the CPU from the same parameters
// (float32: rtol 1e-4 / atol 1e-5 per step; float64: 1e-10).
#include <cstdio>
#include <filesystem>

#include "support/test_util.h"

using namespace convtape;

namespace {

std::shared_ptr<nn::Sequential> small_cnn(bool batchnorm = false) {
  auto m = std::make_shared<nn::Sequential>();
  m->push_back(std::make_shared<nn::Conv2d>(nn::Conv2dOptions(1, 8, 3).padding(1)));
  if (batchnorm) m->push_back(std::make_shared<nn::BatchNorm2d>(nn::BatchNormOptions(8)));
  m->push_back(std::make_shared<nn::ReLU>());
  m->push_back(std::make_shared<nn::MaxPool2d>(2));
  m->push_back(std::make_shared<nn::Conv2d>(nn::Conv2dOptions(8, 16, 3).padding(1).groups(2)));
  m->push_back(std::make_shared<nn::ReLU>());
  m->push_back(std::make_shared<nn::AvgPool2d>(2));
  m->push_back(std::make_shared<nn::Flatten>());
  m->push_back(std::make_shared<nn::Linear>(16 * 3 * 3, 10));
  return m;
}

// Trains a CPU copy and a GPU copy of one model side by side with optimizer `make`, checking the
// losses and every parameter after each step.
template <class MakeOpt>
void train_side_by_side(DType dtype, bool batchnorm, MakeOpt make, int steps) {
  manual_seed(11);
  auto cpu_model = small_cnn(batchnorm);
  auto gpu_model = small_cnn(batchnorm);
  cpu_model->to(dtype);
  gpu_model->to(dtype);
  gpu_model->load_state_dict(cpu_model->state_dict());
  gpu_model->to(Device::cuda());
  for (const Tensor& p : gpu_model->parameters()) REQUIRE(p.is_cuda());
  auto cpu_opt = make(cpu_model->parameters());
  auto gpu_opt = make(gpu_model->parameters());
  const double rtol = dtype == kFloat64 ? 1e-10 : 1e-4, atol = dtype == kFloat64 ? 1e-10 : 1e-5;
  for (int s = 0; s < steps; ++s) {
    const Tensor x = randn({6, 1, 12, 12}, dtype);
    const Tensor y = randint(0, 10, {6});
    const Tensor l_cpu = cross_entropy((*cpu_model)(x), y);
    const Tensor l_gpu = cross_entropy((*gpu_model)(x.to(Device::cuda())), y.to(Device::cuda()));
    REQUIRE(l_gpu.is_cuda());
    CHECK(std::abs(l_gpu.item() - l_cpu.item()) <= atol + rtol * std::abs(l_cpu.item()));
    cpu_opt.zero_grad();
    gpu_opt.zero_grad();
    l_cpu.backward();
    l_gpu.backward();
    cpu_opt.step();
    gpu_opt.step();
    const auto pc = cpu_model->named_parameters();
    const auto pg = gpu_model->named_parameters();
    REQUIRE(pc.size() == pg.size());
    for (std::size_t i = 0; i < pc.size(); ++i) {
      INFO("step " << s << ", parameter " << pc[i].first);
      REQUIRE(pg[i].second.is_cuda());
      CHECK(ct_test::allclose(pg[i].second.cpu(), pc[i].second, rtol, atol));
    }
  }
  // Buffers (BatchNorm's running statistics) follow too.
  const auto bc = cpu_model->state_dict();
  const auto bg = gpu_model->state_dict();
  for (std::size_t i = 0; i < bc.size(); ++i) {
    INFO("state entry " << bc[i].first);
    CHECK(ct_test::allclose(bg[i].second.cpu().to(bc[i].second.dtype()), bc[i].second, rtol, atol));
  }
}

}  // namespace

TEST_CASE("SGD with momentum trains a CNN on the GPU as on the CPU", "[cuda][train]") {
  for (DType dt : {kFloat32, kFloat64}) {
    train_side_by_side(
        dt, false,
        [](std::vector<Tensor> p) {
          return optim::SGD(std::move(p), optim::SGDOptions(0.05).momentum(0.9).nesterov(true));
        },
        4);
  }
}

TEST_CASE("Adam and AdamW update device parameters as on the CPU", "[cuda][train]") {
  train_side_by_side(
      kFloat64, true,
      [](std::vector<Tensor> p) {
        return optim::Adam(std::move(p), optim::AdamOptions(1e-2).amsgrad(true));
      },
      3);
  train_side_by_side(
      kFloat64, false,
      [](std::vector<Tensor> p) {
        return optim::AdamW(std::move(p), optim::AdamWOptions(1e-2).weight_decay(0.1));
      },
      3);
}

TEST_CASE("gradient clipping and dropout on device tensors", "[cuda][train]") {
  manual_seed(2);
  Tensor g = randn({100}, kFloat64);
  Tensor p = zeros({100}, kFloat64).requires_grad_();
  Tensor pd = zeros({100}, TensorOptions(kFloat64).device(Device::cuda())).requires_grad_();
  sum(mul(p, g)).backward();
  sum(mul(pd, g.to(Device::cuda()))).backward();
  const double n_cpu = optim::clip_grad_norm_({p}, 1.0);
  const double n_gpu = optim::clip_grad_norm_({pd}, 1.0);
  CHECK(std::abs(n_cpu - n_gpu) <= 1e-12 * n_cpu);
  CHECK(ct_test::allclose(pd.grad().cpu(), p.grad(), 1e-12, 1e-14));

  // The mask comes from the same generator on both devices, so a seeded dropout agrees exactly.
  const Tensor x = randn({4, 50}, kFloat64);
  Generator a(7), b(7);
  const Tensor y_cpu = dropout(x, 0.3, true, &a);
  const Tensor y_gpu = dropout(x.to(Device::cuda()), 0.3, true, &b);
  REQUIRE(y_gpu.is_cuda());
  CHECK(ct_test::equal(y_gpu.cpu(), y_cpu));
}

TEST_CASE("a GPU model saves a checkpoint that loads back into CPU and GPU models",
          "[cuda][train]") {
  manual_seed(5);
  auto model = small_cnn(true);
  model->to(Device::cuda());
  optim::SGD sgd(model->parameters(), optim::SGDOptions(0.1).momentum(0.9));
  const Tensor x = randn({4, 1, 12, 12}).to(Device::cuda());
  const Tensor y = randint(0, 10, {4}).to(Device::cuda());
  sgd.zero_grad();
  cross_entropy((*model)(x), y).backward();
  sgd.step();
  const std::string path =
      (std::filesystem::temp_directory_path() / "convtape_cuda_training_test.ckpt").string();
  io::save_checkpoint(path, {model->state_dict(), sgd.state_dict()});
  const io::Checkpoint ck = io::load_checkpoint(path);
  std::filesystem::remove(path);

  auto cpu_copy = small_cnn(true);
  cpu_copy->load_state_dict(ck.model);
  auto gpu_copy = small_cnn(true);
  gpu_copy->to(Device::cuda());
  gpu_copy->load_state_dict(ck.model);
  optim::SGD sgd2(gpu_copy->parameters(), optim::SGDOptions(0.1).momentum(0.9));
  sgd2.load_state_dict(ck.optimizer);
  model->eval();
  cpu_copy->eval();
  gpu_copy->eval();
  {
    NoGradGuard no_grad;
    const Tensor ref = (*model)(x).cpu();
    CHECK(ct_test::equal((*gpu_copy)(x).cpu(), ref));
    CHECK(ct_test::allclose((*cpu_copy)(x.cpu()), ref, 1e-4, 1e-5));
  }
  // The loaded momentum buffers live on the parameters' device and continue the same trajectory.
  model->train();
  gpu_copy->train();
  for (auto [m, opt] : {std::pair{model.get(), &sgd}, std::pair{gpu_copy.get(), &sgd2}}) {
    opt->zero_grad();
    cross_entropy((*m)(x), y).backward();
    opt->step();
  }
  const auto a = model->parameters(), b = gpu_copy->parameters();
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(ct_test::allclose(b[i].cpu(), a[i].cpu()));
}
