// train_fashion_mnist: trains a CNN on Fashion-MNIST (Debian's dataset-fashion-mnist) with SGD and
// momentum, and reports per epoch the training loss, the test accuracy and the training speed.
// The default model is the small CNN of REFERENCE.md:
//   Conv(1,32,3,p1)-ReLU-MaxPool2-Conv(32,64,3,p1)-ReLU-MaxPool2-Flatten-Linear(3136,128)-ReLU-
//   Linear(128,10)                                                          (421,642 parameters)
// and --model deep a wider one with batch normalisation and dropout. The learning rate follows a
// cosine schedule from --lr down to 0 over the run. Each epoch is checkpointed (model, optimizer,
// epoch and the learning-rate schedule; --resume continues from such a file), its metrics are
// appended to a CSV file, and the first layer's kernels are drawn into a PNG at the end.
//   usage: train_fashion_mnist [--help] [options]   (see --help)
#include <unistd.h>

#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

#include "convtape.h"

using namespace convtape;

namespace {

struct Settings {
  int epochs = 12;
  std::int64_t batch_size = 64;
  double lr = 0.05;
  double momentum = 0.9;
  std::string device = "cpu";
  std::uint64_t seed = 1;
  std::string data = std::string(data::kFashionMnistRoot);
  std::string save = "fashion_mnist.ckpt";
  std::string resume;
  std::string csv = "fashion_mnist_metrics.csv";
  std::string png = "fashion_mnist_conv1.png";
  std::string model = "small";
  int threads = 0;  // 0: OpenMP's default
};

void usage() {
  std::printf(
      "train_fashion_mnist: trains a CNN on Fashion-MNIST and reports loss, test accuracy and\n"
      "images/s per epoch.\n"
      "  --epochs N        epochs to train (default 12)\n"
      "  --batch-size B    training batch size (default 64)\n"
      "  --lr X            initial learning rate, cosine-annealed to 0 (default 0.05)\n"
      "  --momentum X      SGD momentum (default 0.9)\n"
      "  --model NAME      small (REFERENCE.md's CNN, default) or deep\n"
      "  --device D        cpu (default) or cuda\n"
      "  --seed S          seed of the initialisation and the shuffling (default 1)\n"
      "  --threads N       OpenMP threads (default: all cores)\n"
      "  --data DIR        Fashion-MNIST directory (default %s)\n"
      "  --save FILE       checkpoint written after every epoch (default %s; '' for none)\n"
      "  --resume FILE     continue from a checkpoint written by --save\n"
      "  --csv FILE        per-epoch metrics (default %s; '' for none)\n"
      "  --png FILE        the first layer's kernels at the end (default %s; '' for none)\n",
      std::string(data::kFashionMnistRoot).c_str(), Settings().save.c_str(), Settings().csv.c_str(),
      Settings().png.c_str());
}

bool parse(int argc, char** argv, Settings& s) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      usage();
      std::exit(0);
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "train_fashion_mnist: %s needs a value (try --help)\n", a.c_str());
      return false;
    }
    const std::string v = argv[++i];
    if (a == "--epochs")
      s.epochs = std::atoi(v.c_str());
    else if (a == "--batch-size")
      s.batch_size = std::atoll(v.c_str());
    else if (a == "--lr")
      s.lr = std::atof(v.c_str());
    else if (a == "--momentum")
      s.momentum = std::atof(v.c_str());
    else if (a == "--model")
      s.model = v;
    else if (a == "--device")
      s.device = v;
    else if (a == "--seed")
      s.seed = std::strtoull(v.c_str(), nullptr, 10);
    else if (a == "--threads")
      s.threads = std::atoi(v.c_str());
    else if (a == "--data")
      s.data = v;
    else if (a == "--save")
      s.save = v;
    else if (a == "--resume")
      s.resume = v;
    else if (a == "--csv")
      s.csv = v;
    else if (a == "--png")
      s.png = v;
    else {
      std::fprintf(stderr, "train_fashion_mnist: unknown option %s (try --help)\n", a.c_str());
      return false;
    }
  }
  if (s.epochs < 1 || s.batch_size < 1 || !(s.lr > 0) ||
      (s.model != "small" && s.model != "deep") || (s.device != "cpu" && s.device != "cuda")) {
    std::fprintf(stderr,
                 "train_fashion_mnist: expected --epochs >= 1, --batch-size >= 1, --lr > 0, "
                 "--model small|deep and --device cpu|cuda\n");
    return false;
  }
  return true;
}

std::shared_ptr<nn::Sequential> make_model(const std::string& name) {
  auto m = std::make_shared<nn::Sequential>();
  if (name == "small") {
    m->push_back(std::make_shared<nn::Conv2d>(nn::Conv2dOptions(1, 32, 3).padding(1)));
    m->push_back(std::make_shared<nn::ReLU>());
    m->push_back(std::make_shared<nn::MaxPool2d>(2));
    m->push_back(std::make_shared<nn::Conv2d>(nn::Conv2dOptions(32, 64, 3).padding(1)));
    m->push_back(std::make_shared<nn::ReLU>());
    m->push_back(std::make_shared<nn::MaxPool2d>(2));
    m->push_back(std::make_shared<nn::Flatten>());
    m->push_back(std::make_shared<nn::Linear>(3136, 128));
    m->push_back(std::make_shared<nn::ReLU>());
    m->push_back(std::make_shared<nn::Linear>(128, 10));
    return m;
  }
  // deep: two conv blocks of two 3x3 convs each, batch norm, dropout before the classifier.
  const std::int64_t widths[] = {1, 32, 32, 64, 64};
  for (int i = 0; i < 4; ++i) {
    m->push_back(std::make_shared<nn::Conv2d>(
        nn::Conv2dOptions(widths[i], widths[i + 1], 3).padding(1).bias(false)));
    m->push_back(std::make_shared<nn::BatchNorm2d>(widths[i + 1]));
    m->push_back(std::make_shared<nn::ReLU>());
    if (i % 2 == 1) m->push_back(std::make_shared<nn::MaxPool2d>(2));
  }
  m->push_back(std::make_shared<nn::Flatten>());
  m->push_back(std::make_shared<nn::Dropout>(0.3));
  m->push_back(std::make_shared<nn::Linear>(3136, 256));
  m->push_back(std::make_shared<nn::ReLU>());
  m->push_back(std::make_shared<nn::Dropout>(0.3));
  m->push_back(std::make_shared<nn::Linear>(256, 10));
  return m;
}

// A one-line progress bar redrawn in place on a terminal; nothing otherwise (the epoch summary
// lines are printed either way).
void progress(bool tty, int epoch, std::int64_t done, std::int64_t total, double loss,
              double images_per_second) {
  if (!tty) return;
  const int width = 30, filled = static_cast<int>(width * done / std::max<std::int64_t>(total, 1));
  std::printf("\repoch %2d [%.*s%*s] %3lld%%  loss %.4f  %6.0f img/s", epoch, filled,
              "==============================", width - filled, "",
              static_cast<long long>(100 * done / std::max<std::int64_t>(total, 1)), loss,
              images_per_second);
  std::fflush(stdout);
}

double accuracy(nn::Module& model, data::DataLoader& loader, const Device& device) {
  NoGradGuard no_grad;
  model.eval();
  std::int64_t correct = 0, seen = 0;
  for (const data::Batch& b : loader) {
    const Tensor pred = argmax(model(b.data.to(device)), 1).to(Device::cpu());
    const auto p = pred.to_vector<std::int64_t>();
    const auto t = b.target.to_vector<std::int64_t>();
    for (std::size_t i = 0; i < p.size(); ++i) correct += p[i] == t[i];
    seen += static_cast<std::int64_t>(p.size());
  }
  model.train();
  return seen ? static_cast<double>(correct) / static_cast<double>(seen) : 0.0;
}

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  if (!parse(argc, argv, s)) return 2;
  try {
    if (s.threads > 0) omp_set_num_threads(s.threads);
    manual_seed(s.seed);
    if (s.device == "cuda" && cuda::device_count() == 0) {
      std::fprintf(stderr,
                   "train_fashion_mnist: expected a CUDA device for --device cuda, got none "
                   "(no GPU, or a build without CUDA)\n");
      return 1;
    }
    const Device device = s.device == "cuda" ? Device::cuda(0) : Device::cpu();
    if (!data::FashionMNIST::available(s.data, true)) {
      std::fprintf(stderr,
                   "train_fashion_mnist: expected the Fashion-MNIST IDX files in %s, got none "
                   "(install Debian's dataset-fashion-mnist or pass --data)\n",
                   s.data.c_str());
      return 1;
    }
    // Images in [0, 1], normalised with the training set's mean and standard deviation.
    const data::Normalize norm({0.2860}, {0.3530});
    data::DataLoader train(data::FashionMNIST(s.data, true), data::DataLoaderOptions()
                                                                 .batch_size(s.batch_size)
                                                                 .shuffle(true)
                                                                 .seed(s.seed)
                                                                 .normalize(norm));
    data::DataLoader test(data::FashionMNIST(s.data, false),
                          data::DataLoaderOptions().batch_size(1000).normalize(norm));

    auto model = make_model(s.model);
    model->to(device);
    optim::SGD sgd(model->parameters(), optim::SGDOptions(s.lr).momentum(s.momentum));
    optim::CosineAnnealingLR schedule(sgd, s.epochs, 0.0);
    int first_epoch = 1;
    if (!s.resume.empty()) {
      io::Checkpoint ck = io::load_checkpoint(s.resume);
      // The optimizer section also carries the trainer's entries: "trainer.epoch" and the
      // scheduler's state under "scheduler.". They are split off before the optimizer loads.
      StateDict opt_state, sched_state;
      double epoch_done = -1;
      for (auto& [name, t] : ck.optimizer) {
        if (name == "trainer.epoch")
          epoch_done = t.item();
        else if (name.rfind("scheduler.", 0) == 0)
          sched_state.emplace_back(name.substr(10), t);
        else
          opt_state.emplace_back(name, t);
      }
      CT_CHECK(epoch_done >= 1 && !sched_state.empty(),
               "train_fashion_mnist: expected a checkpoint written by --save (with trainer.epoch "
               "and the scheduler's state), got one without them in {}",
               s.resume);
      model->load_state_dict(ck.model);
      sgd.load_state_dict(opt_state);
      schedule.load_state_dict(sched_state);
      first_epoch = static_cast<int>(epoch_done) + 1;
      train.set_epoch(first_epoch - 1);
      std::printf("resumed from %s after epoch %d\n", s.resume.c_str(), first_epoch - 1);
    }
    std::printf("%s", model->summary({1, 1, 28, 28}).c_str());
    std::printf("training on %lld images, testing on %lld, batch %lld, %d thread%s, %s\n",
                static_cast<long long>(train.dataset().size()),
                static_cast<long long>(test.dataset().size()), static_cast<long long>(s.batch_size),
                omp_get_max_threads(), omp_get_max_threads() == 1 ? "" : "s", s.device.c_str());

    std::FILE* csv = nullptr;
    if (!s.csv.empty()) {
      const bool fresh = first_epoch == 1 || !std::filesystem::exists(s.csv);
      csv = std::fopen(s.csv.c_str(), fresh ? "w" : "a");
      CT_CHECK(csv != nullptr, "train_fashion_mnist: expected a writable CSV file, got {}", s.csv);
      if (fresh) std::fprintf(csv, "epoch,lr,train_loss,test_accuracy,images_per_second,seconds\n");
    }
    const bool tty = isatty(fileno(stdout)) != 0;
    double test_acc = 0.0;
    for (int epoch = first_epoch; epoch <= s.epochs; ++epoch) {
      const double lr = sgd.lr();
      const auto start = std::chrono::steady_clock::now();
      double loss_sum = 0.0;
      // The running sum of loss * batch stays on the training device and is read only when the
      // progress line is printed: reading it every step would wait for the GPU every step.
      Tensor loss_acc;
      std::int64_t seen = 0, step = 0;
      for (const data::Batch& b : train) {
        const Tensor loss = cross_entropy((*model)(b.data.to(device)), b.target.to(device));
        sgd.zero_grad();
        loss.backward();
        sgd.step();
        const std::int64_t n = b.data.size(0);
        const Tensor weighted = mul(loss.detach(), static_cast<double>(n));
        loss_acc = loss_acc.defined() ? add(loss_acc, weighted) : weighted;
        seen += n;
        if (++step % 20 == 0 || step == train.size()) {
          loss_sum = loss_acc.item();
          const double secs =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          progress(tty, epoch, step, train.size(), loss_sum / static_cast<double>(seen),
                   static_cast<double>(seen) / secs);
        }
      }
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (tty) std::printf("\n");
      test_acc = accuracy(*model, test, device);
      const double ips = static_cast<double>(seen) / secs;
      std::printf(
          "epoch %2d  lr %.5f  train loss %.4f  test accuracy %.2f%%  %.0f images/s  (%.1f s)\n",
          epoch, lr, loss_sum / static_cast<double>(seen), 100.0 * test_acc, ips, secs);
      std::fflush(stdout);
      if (csv) {
        std::fprintf(csv, "%d,%.6g,%.6f,%.6f,%.1f,%.2f\n", epoch, lr,
                     loss_sum / static_cast<double>(seen), test_acc, ips, secs);
        std::fflush(csv);
      }
      schedule.step();
      if (!s.save.empty()) {
        io::Checkpoint ck{model->state_dict(), sgd.state_dict()};
        for (auto& [name, t] : schedule.state_dict())
          ck.optimizer.emplace_back("scheduler." + name, t);
        ck.optimizer.emplace_back("trainer.epoch", full({}, epoch, kFloat64));
        io::save_checkpoint(s.save, ck);
      }
    }
    if (csv) std::fclose(csv);
    if (first_epoch > s.epochs) test_acc = accuracy(*model, test, device);  // nothing left to train
    if (!s.png.empty()) {
      const auto conv1 = model->at<nn::Conv2d>(0);
      io::write_png(s.png, io::kernel_grid(conv1->weight(), io::KernelGridOptions().columns(8)));
      std::printf("first-layer kernels written to %s\n", s.png.c_str());
    }
    if (!s.save.empty()) std::printf("checkpoint written to %s\n", s.save.c_str());
    std::printf("final test accuracy %.2f%%\n", 100.0 * test_acc);
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "train_fashion_mnist: %s\n", e.what());
    return 1;
  }
}
