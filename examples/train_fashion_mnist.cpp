// train_fashion_mnist: trains a CNN on Fashion-MNIST (Debian's dataset-fashion-mnist) with SGD and
// momentum, and reports per epoch the training loss, the test accuracy and the training speed.
// The default model is the small CNN of REFERENCE.md:
//   Conv(1,32,3,p1)-ReLU-MaxPool2-Conv(32,64,3,p1)-ReLU-MaxPool2-Flatten-Linear(3136,128)-ReLU-
//   Linear(128,10)                                                          (421,642 parameters)
// and --model deep a wider one with batch normalisation and dropout (both built by
// fashion_mnist_models.h, which onnx_models shares). The learning rate follows a cosine schedule
// from --lr down to 0 over the run. Each epoch is checkpointed (model, optimizer, epoch and the
// learning-rate schedule; --resume continues from such a file), its metrics are written to a CSV
// file, and the first layer's kernels are drawn into a PNG at the end. Every file is written
// atomically (io::AtomicFile). The flags are parsed and checked in train_fashion_mnist_args.h.
// --augment trains on random crops (28 x 28 of the image padded by 1) and horizontal flips, drawn
// per image from (--seed, epoch, image index), so the same in a resumed or a distributed run (with
// padding 1 the default 12-epoch schedule ends at 92.64% against 92.21% without augmentation;
// padding 2 regularises more than 12 epochs can use and ends at 92.06%); --workers N builds the
// batches in N threads ahead of training (data/dataloader.h: the same batches, bit for bit). With
// --distributed (under mpirun -np N, in a build with MPI) it trains data-parallel: each rank takes
// batch / N images of every global batch from its shard (data::DistributedSampler), the gradients
// are averaged by nn::DistributedDataParallel, and rank 0 alone prints and writes the files; the
// global batch, and so the training, is that of one process.
// Models in and out: --init-from FILE.safetensors starts from weights saved by
// io::save_safetensors or by PyTorch's safetensors (the state_dict names of the same
// nn.Sequential: 0.weight, 0.bias, ...; every name, shape and dtype is checked before anything is
// loaded) and prints their test accuracy before training; --export FILE.onnx writes the trained
// model in eval mode as ONNX with a dynamic batch dim (onnx::export_model), in a build with
// libconvtape_onnx (elsewhere the flag is refused, as --distributed without MPI).
//   usage: train_fashion_mnist [--help] [options]   (see --help)
#include <unistd.h>

#include <omp.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

#include "convtape.h"
#include "fashion_mnist_models.h"
#include "io/file.h"
#if defined(CT_WITH_DIST)
#include "dist/ddp.h"
#endif
#if defined(CT_WITH_ONNX)
#include "onnx/export.h"
#endif
#include "train_fashion_mnist_args.h"

using namespace convtape;

namespace {

using train_fashion_mnist::make_model;
using train_fashion_mnist::Settings;

// The rows of an earlier run's metrics file for the epochs before first_epoch (the header line
// dropped): a resumed run redoes the later epochs, so their rows would otherwise appear twice.
std::string kept_csv_rows(const std::string& text, int first_epoch) {
  std::string kept;
  std::size_t pos = text.find('\n');  // after the header
  while (pos != std::string::npos && pos + 1 < text.size()) {
    const std::size_t end = text.find('\n', pos + 1);
    const std::string line =
        text.substr(pos + 1, end == std::string::npos ? std::string::npos : end - pos - 1);
    int epoch = 0;
    const auto [p, ec] = std::from_chars(line.data(), line.data() + line.size(), epoch);
    if (ec == std::errc() && p != line.data() + line.size() && *p == ',' && epoch >= 1 &&
        epoch < first_epoch)
      kept += line + "\n";
    pos = end;
  }
  return kept;
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

// The first n examples of a data set (all of them when n is 0).
data::TensorDataset first(const data::TensorDataset& d, std::int64_t n) {
  const data::Example* all = d.stacked();
  if (n == 0 || n >= d.size()) return d;
  return data::TensorDataset(narrow(all->data, 0, 0, n), narrow(all->target, 0, 0, n));
}

#if defined(CT_WITH_DIST)
int local_gpu(int) {
  return dist::local_rank();
}
#else
int local_gpu(int) {
  return 0;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  const train_fashion_mnist::ParseResult args = train_fashion_mnist::parse_args(argc, argv);
  if (args.help) {
    std::printf("%s", train_fashion_mnist::usage_text().c_str());
    return 0;
  }
  if (!args.error.empty()) {
    std::fprintf(stderr, "%s\n", args.error.c_str());
    return 2;
  }
  const Settings& s = args.settings;
  int rank = 0, world = 1;
  if (s.distributed) {
#if defined(CT_WITH_DIST)
    try {
      dist::init();
    } catch (const Error& e) {
      std::fprintf(stderr, "train_fashion_mnist: %s\n", e.what());
      return 1;
    }
    rank = dist::rank();
    world = dist::world_size();
#else
    std::fprintf(stderr,
                 "train_fashion_mnist: expected a build with MPI for --distributed, got one "
                 "without (install Open MPI: scripts/install-deps, then rebuild)\n");
    return 1;
#endif
  }
#if !defined(CT_WITH_ONNX)
  if (!s.export_path.empty()) {
    std::fprintf(
        stderr,
        "train_fashion_mnist: expected a build with libconvtape_onnx for --export, got one "
        "without (install Debian's libonnx-dev: scripts/install-deps, then rebuild)\n");
    return 1;
  }
#endif
  const bool lead = rank == 0;  // prints and writes files
  try {
    CT_CHECK(s.batch_size % world == 0,
             "train_fashion_mnist: expected --batch-size divisible by the {} ranks, got {}", world,
             s.batch_size);
    if (s.threads > 0) omp_set_num_threads(s.threads);
    manual_seed(s.seed);
    if (s.device == "cuda" && !cuda::is_available()) {
      std::fprintf(stderr, "train_fashion_mnist: expected a CUDA device for --device cuda: %s\n",
                   cuda::unavailable_reason().c_str());
      return 1;
    }
    const Device device =
        s.device == "cuda" ? Device::cuda(s.distributed ? local_gpu(rank) : 0) : Device::cpu();
    if (!data::FashionMNIST::available(s.data, true)) {
      std::fprintf(stderr,
                   "train_fashion_mnist: expected the Fashion-MNIST IDX files in %s, got none "
                   "(install Debian's dataset-fashion-mnist or pass --data)\n",
                   s.data.c_str());
      return 1;
    }
    // Images in [0, 1], normalised with the training set's mean and standard deviation.
    const data::Normalize norm({0.2860}, {0.3530});
    // Distributed, each rank takes its shard of every epoch's permutation (the same permutation
    // as one process's shuffle), batch / world images at a time.
    const data::TensorDataset train_set = first(data::FashionMNIST(s.data, true), s.limit);
    // The loader's seed also seeds --augment's draws (per epoch and image): set it either way.
    auto options = data::DataLoaderOptions()
                       .batch_size(s.batch_size / world)
                       .normalize(norm)
                       .seed(s.seed)
                       .num_workers(s.workers);
    if (s.augment)
      options.transform(data::transforms::Compose(
          {data::transforms::RandomCrop(data::transforms::RandomCropOptions(28).padding(1)),
           data::transforms::RandomHorizontalFlip()}));
    if (s.distributed)
      options.sampler(std::make_shared<data::DistributedSampler>(
          train_set.size(),
          data::DistributedSamplerOptions().num_replicas(world).rank(rank).seed(s.seed)));
    else
      options.shuffle(true);
    data::DataLoader train(train_set, options);
    data::DataLoader test(
        first(data::FashionMNIST(s.data, false), s.limit),
        data::DataLoaderOptions().batch_size(1000).normalize(norm).num_workers(s.workers));

    auto model = make_model(s.model);
    // Weights from a file (PyTorch's state_dict names), loaded on the CPU, before the model moves.
    if (!s.init_from.empty()) {
      const std::size_t n = train_fashion_mnist::load_weights(*model, s.init_from);
      if (lead) std::printf("loaded %zu tensors from %s\n", n, s.init_from.c_str());
    }
    model->to(device);
    // What the training steps call: the model, or its data-parallel wrapper.
    std::shared_ptr<nn::Module> net = model;
    optim::SGD sgd(model->parameters(), optim::SGDOptions(s.lr).momentum(s.momentum));
    optim::CosineAnnealingLR schedule(sgd, s.epochs, 0.0);
    int first_epoch = 1;
    if (!s.resume.empty()) {
      io::Checkpoint ck = io::load_checkpoint(s.resume);
      // The optimizer section also carries the trainer's entries: "trainer.epoch" and the
      // scheduler's state under "scheduler.". They are split off before the optimizer loads.
      StateDict opt_state, sched_state;
      int epoch_done = 0;
      for (auto& [name, t] : ck.optimizer) {
        if (name == "trainer.epoch")
          epoch_done = train_fashion_mnist::checked_epoch(t, s.resume);
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
      first_epoch = epoch_done + 1;
      train.set_epoch(first_epoch - 1);
      if (lead) std::printf("resumed from %s after epoch %d\n", s.resume.c_str(), first_epoch - 1);
    }
#if defined(CT_WITH_DIST)
    // After the checkpoint: the wrapper broadcasts rank 0's state, loaded or fresh.
    if (s.distributed)
      net = std::make_shared<nn::DistributedDataParallel>(
          model, nn::DistributedDataParallelOptions().bucket_cap_mb(s.bucket_mb));
#endif
    if (lead) {
      std::printf("%s", model->summary({1, 1, 28, 28}).c_str());
      std::printf("training on %lld images, testing on %lld, batch %lld, %d thread%s, %s",
                  static_cast<long long>(train.dataset().size()),
                  static_cast<long long>(test.dataset().size()),
                  static_cast<long long>(s.batch_size), omp_get_max_threads(),
                  omp_get_max_threads() == 1 ? "" : "s", s.device.c_str());
      if (s.distributed)
        std::printf(", %d ranks x batch %lld", world, static_cast<long long>(s.batch_size / world));
      if (s.augment) std::printf(", augmented");
      if (s.workers > 0) std::printf(", %d loader worker%s", s.workers, s.workers == 1 ? "" : "s");
      std::printf("\n");
    }

    // The metrics file is rewritten whole after each epoch through io::write_file_atomically: a
    // crash leaves the previous complete file, and a resumed run keeps the rows of the epochs it
    // does not redo.
    const std::string csv_header = "epoch,lr,train_loss,test_accuracy,images_per_second,seconds\n";
    std::string csv_rows;
    if (!s.csv.empty() && first_epoch > 1 && std::filesystem::exists(s.csv)) {
      const std::vector<std::uint8_t> old = io::read_file(s.csv, "train_fashion_mnist");
      csv_rows = kept_csv_rows(std::string(old.begin(), old.end()), first_epoch);
    }
    if (!s.init_from.empty()) {  // every rank evaluates, as after each epoch
      const double loaded_acc = accuracy(*net, test, device);
      if (lead) std::printf("test accuracy of the loaded weights %.2f%%\n", 100.0 * loaded_acc);
    }
    const bool tty = lead && isatty(fileno(stdout)) != 0;
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
        const Tensor loss = cross_entropy((*net)(b.data.to(device)), b.target.to(device));
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
                   static_cast<double>(seen * world) / secs);  // every rank's images
        }
      }
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (tty) std::printf("\n");
      loss_sum = loss_acc.defined() ? loss_acc.item() : 0.0;
#if defined(CT_WITH_DIST)
      if (s.distributed) {  // the epoch's loss and image count over every rank
        Tensor totals = tensor({loss_sum, static_cast<double>(seen)}, kFloat64);
        dist::all_reduce(totals);
        loss_sum = totals.at<double>({0});
        seen = static_cast<std::int64_t>(totals.at<double>({1}));
      }
#endif
      // Every rank evaluates the whole test set with the same (synchronised) weights.
      test_acc = accuracy(*net, test, device);
      const double ips = static_cast<double>(seen) / secs;
      if (lead)
        std::printf(
            "epoch %2d  lr %.5f  train loss %.4f  test accuracy %.2f%%  %.0f images/s  (%.1f s)\n",
            epoch, lr, loss_sum / static_cast<double>(seen), 100.0 * test_acc, ips, secs);
      std::fflush(stdout);
      if (lead && !s.csv.empty()) {
        csv_rows += fmt::format("{},{:.6g},{:.6f},{:.6f},{:.1f},{:.2f}\n", epoch, lr,
                                loss_sum / static_cast<double>(seen), test_acc, ips, secs);
        const std::string text = csv_header + csv_rows;
        io::write_file_atomically(s.csv, text.data(), text.size(), "train_fashion_mnist");
      }
      schedule.step();
      // Rank 0 writes the checkpoint (every replica holds the same state); it names no world size,
      // so any number of ranks can resume from it.
      if (lead && !s.save.empty()) {
        io::Checkpoint ck{model->state_dict(), sgd.state_dict()};
        for (auto& [name, t] : schedule.state_dict())
          ck.optimizer.emplace_back("scheduler." + name, t);
        ck.optimizer.emplace_back("trainer.epoch", full({}, epoch, kFloat64));
        io::save_checkpoint(s.save, ck);
      }
#if defined(CT_WITH_DIST)
      if (s.distributed) dist::barrier();  // the file is complete before any rank goes on
#endif
    }
    if (first_epoch > s.epochs) test_acc = accuracy(*net, test, device);  // nothing left to train
    if (lead && !s.png.empty()) {
      const auto conv1 = model->at<nn::Conv2d>(0);
      io::write_png(s.png, io::kernel_grid(conv1->weight(), io::KernelGridOptions().columns(8)));
      std::printf("first-layer kernels written to %s\n", s.png.c_str());
    }
    if (lead && !s.save.empty()) std::printf("checkpoint written to %s\n", s.save.c_str());
#if defined(CT_WITH_ONNX)
    // The trained model in eval mode (Dropout off, BatchNorm on its running statistics), traced on
    // the CPU with one example image; any batch size runs it.
    if (lead && !s.export_path.empty()) {
      model->to(Device::cpu());
      model->eval();
      onnx::ExportOptions export_options;
      export_options.dynamic_batch = true;
      onnx::export_model(*model, {zeros({1, 1, 28, 28})}, s.export_path, export_options);
      std::printf("ONNX model written to %s\n", s.export_path.c_str());
    }
#endif
    if (lead) std::printf("final test accuracy %.2f%%\n", 100.0 * test_acc);
#if defined(CT_WITH_DIST)
    if (s.distributed) dist::finalize();
#endif
    return 0;
  } catch (const Error& e) {
    const std::string_view what = e.what();  // library errors name their op; ours name us already
    std::fprintf(stderr, "%s%s%s\n", s.distributed ? fmt::format("rank {}: ", rank).c_str() : "",
                 what.starts_with("train_fashion_mnist:") ? "" : "train_fashion_mnist: ", e.what());
#if defined(CT_WITH_DIST)
    // The other ranks would wait for this one in their next collective: end the whole job now.
    if (s.distributed) dist::abort(1);
#endif
    return 1;
  }
}
