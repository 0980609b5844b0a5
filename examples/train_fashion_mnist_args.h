// train_fashion_mnist's command line and resume checks: the settings, --help's text, a parser that
// checks every value (numbers in full, in range, finite: "--threads -5" is an error, not a silent
// default), and the check of the epoch count a checkpoint stores, made on the stored double before
// any cast to int. A header of its own so that the test suite runs the same code
// (tests/examples/train_fashion_mnist_args_test.cpp).
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

#include "convtape.h"

namespace train_fashion_mnist {

inline constexpr std::int64_t kMaxEpochs = 1000000;
inline constexpr std::int64_t kMaxBatchSize = std::int64_t{1} << 31;
inline constexpr std::int64_t kMaxThreads = 4096;
inline constexpr std::int64_t kMaxWorkers = 256;

struct Settings {
  int epochs = 12;
  std::int64_t batch_size = 64;
  double lr = 0.05;
  double momentum = 0.9;
  std::string device = "cpu";
  std::uint64_t seed = 1;
  std::string data = std::string(convtape::data::kFashionMnistRoot);
  std::string save = "fashion_mnist.ckpt";
  std::string resume;
  std::string csv = "fashion_mnist_metrics.csv";
  std::string png = "fashion_mnist_conv1.png";
  std::string model = "small";
  int threads = 0;  // 0: OpenMP's default (not a value --threads accepts)
  // Data-parallel over the ranks of an MPI job; --batch-size stays the global batch.
  bool distributed = false;
  std::int64_t limit = 0;   // only the first `limit` training and test images; 0: all
  double bucket_mb = 25.0;  // DDP's gradient bucket size (MiB), the library's default
  // Random crops (28 of the image padded by 1) and horizontal flips of the training images.
  bool augment = false;
  int workers = 0;  // DataLoader worker threads; 0: batches are built in the training thread
  // The trained model written as ONNX (eval mode, dynamic batch) at the end; empty: none. Needs a
  // build with libconvtape_onnx.
  std::string export_path;
  // Weights (a safetensors file with the model's state_dict names) loaded before training.
  std::string init_from;
};

inline std::string usage_text() {
  const Settings d;
  return fmt::format(
      "train_fashion_mnist: trains a CNN on Fashion-MNIST and reports loss, test accuracy and\n"
      "images/s per epoch.\n"
      "  --epochs N        epochs to train, 1 to {} (default {})\n"
      "  --batch-size B    training batch size, 1 to {} (default {})\n"
      "  --lr X            initial learning rate > 0, cosine-annealed to 0 (default {})\n"
      "  --momentum X      SGD momentum >= 0 (default {})\n"
      "  --model NAME      small (REFERENCE.md's CNN, default) or deep\n"
      "  --device D        cpu (default) or cuda\n"
      "  --seed S          seed of the initialisation and the shuffling, 0 to 2^64 - 1 (default "
      "{})\n"
      "  --threads N       OpenMP threads, 1 to {} (default: all cores)\n"
      "  --data DIR        Fashion-MNIST directory (default {})\n"
      "  --save FILE       checkpoint written after every epoch (default {}; '' for none)\n"
      "  --resume FILE     continue from a checkpoint written by --save\n"
      "  --csv FILE        per-epoch metrics (default {}; '' for none)\n"
      "  --png FILE        the first layer's kernels at the end (default {}; '' for none)\n"
      "  --distributed     data-parallel training over the ranks of an MPI job (start with\n"
      "                    mpirun -np N); --batch-size stays the global batch, split evenly;\n"
      "                    rank 0 prints and writes the files\n"
      "  --bucket-mb X     with --distributed, the gradient bucket size in MiB (default {})\n"
      "  --limit N         only the first N training and N test images (quick runs; default all)\n"
      "  --augment         augment the training images: a random 28 x 28 crop of the image padded\n"
      "                    by 1 and a random horizontal flip (seeded by --seed, the epoch and the\n"
      "                    image, so a resumed or distributed run sees the same images)\n"
      "  --workers N       data-loading threads that build batches ahead of training, 0 to {}\n"
      "                    (default {}: in the training thread); the batches are the same\n"
      "  --init-from FILE  start from the weights in a safetensors file (the model's state_dict\n"
      "                    names, as PyTorch's nn.Sequential gives them: 0.weight, 0.bias, ...);\n"
      "                    the test accuracy of those weights is printed before training\n"
      "  --export FILE     write the trained model as ONNX (eval mode, dynamic batch; input\n"
      "                    [N, 1, 28, 28] normalised images, output [N, 10] logits); needs a\n"
      "                    build with libconvtape_onnx (Debian's libonnx-dev)\n",
      kMaxEpochs, d.epochs, kMaxBatchSize, d.batch_size, d.lr, d.momentum, d.seed, kMaxThreads,
      d.data, d.save, d.csv, d.png, d.bucket_mb, kMaxWorkers, d.workers);
}

struct ParseResult {
  Settings settings;
  bool help = false;
  std::string error;  // empty when the command line is valid
};

namespace detail {

// The whole of `text` as an integer in [low, high], or an error naming the flag and the text.
template <class Int>
bool parse_integer(std::string_view flag, std::string_view text, Int low, Int high, Int& out,
                   std::string& error) {
  Int v{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || v < low ||
      v > high) {
    error = fmt::format(
        "train_fashion_mnist: expected {} to be an integer from {} to {}, got '{}' (try --help)",
        flag, low, high, text);
    return false;
  }
  out = v;
  return true;
}

// The whole of `text` as a finite number, above zero (positive) or at least zero.
inline bool parse_real(std::string_view flag, std::string_view text, bool positive, double& out,
                       std::string& error) {
  double v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v) ||
      (positive ? !(v > 0) : !(v >= 0))) {
    error = fmt::format(
        "train_fashion_mnist: expected {} to be a finite number {}, got '{}' (try "
        "--help)",
        flag, positive ? "> 0" : ">= 0", text);
    return false;
  }
  out = v;
  return true;
}

}  // namespace detail

// argv[1..argc) as flag-value pairs; --help (or -h) anywhere asks for the usage text.
inline ParseResult parse_args(int argc, const char* const* argv) {
  ParseResult r;
  Settings& s = r.settings;
  std::string& error = r.error;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      r.help = true;
      return r;
    }
    if (a == "--distributed") {  // the flags without a value
      s.distributed = true;
      continue;
    }
    if (a == "--augment") {
      s.augment = true;
      continue;
    }
    if (i + 1 >= argc) {
      error = fmt::format("train_fashion_mnist: {} needs a value (try --help)", a);
      return r;
    }
    const std::string_view v = argv[++i];
    bool ok = true;
    if (a == "--epochs") {
      std::int64_t e = 0;
      ok = detail::parse_integer<std::int64_t>(a, v, 1, kMaxEpochs, e, error);
      s.epochs = static_cast<int>(e);
    } else if (a == "--batch-size") {
      ok = detail::parse_integer<std::int64_t>(a, v, 1, kMaxBatchSize, s.batch_size, error);
    } else if (a == "--lr") {
      ok = detail::parse_real(a, v, /*positive=*/true, s.lr, error);
    } else if (a == "--momentum") {
      ok = detail::parse_real(a, v, /*positive=*/false, s.momentum, error);
    } else if (a == "--seed") {
      ok = detail::parse_integer<std::uint64_t>(a, v, 0, UINT64_MAX, s.seed, error);
    } else if (a == "--threads") {
      std::int64_t t = 0;
      ok = detail::parse_integer<std::int64_t>(a, v, 1, kMaxThreads, t, error);
      s.threads = static_cast<int>(t);
    } else if (a == "--model") {
      s.model = v;
      if (v != "small" && v != "deep") {
        error = fmt::format("train_fashion_mnist: expected --model small or deep, got '{}'", v);
        ok = false;
      }
    } else if (a == "--device") {
      s.device = v;
      if (v != "cpu" && v != "cuda") {
        error = fmt::format("train_fashion_mnist: expected --device cpu or cuda, got '{}'", v);
        ok = false;
      }
    } else if (a == "--data") {
      s.data = v;
    } else if (a == "--save") {
      s.save = v;
    } else if (a == "--resume") {
      s.resume = v;
    } else if (a == "--csv") {
      s.csv = v;
    } else if (a == "--png") {
      s.png = v;
    } else if (a == "--export") {
      s.export_path = v;
      if (v.empty()) {
        error = "train_fashion_mnist: expected a file name after --export, got ''";
        ok = false;
      }
    } else if (a == "--init-from") {
      s.init_from = v;
      if (v.empty()) {
        error = "train_fashion_mnist: expected a file name after --init-from, got ''";
        ok = false;
      }
    } else if (a == "--limit") {
      ok = detail::parse_integer<std::int64_t>(a, v, 1, kMaxBatchSize, s.limit, error);
    } else if (a == "--workers") {
      std::int64_t w = 0;
      ok = detail::parse_integer<std::int64_t>(a, v, 0, kMaxWorkers, w, error);
      s.workers = static_cast<int>(w);
    } else if (a == "--bucket-mb") {
      ok = detail::parse_real(a, v, /*positive=*/true, s.bucket_mb, error);
    } else {
      error = fmt::format("train_fashion_mnist: unknown option {} (try --help)", a);
      ok = false;
    }
    if (!ok) return r;
  }
  if (!s.init_from.empty() && !s.resume.empty())
    error = fmt::format(
        "train_fashion_mnist: expected at most one of --init-from and --resume (the checkpoint "
        "holds the model's weights), got both: '{}' and '{}'",
        s.init_from, s.resume);
  return r;
}

// The number of epochs a checkpoint written by --save has finished, from its "trainer.epoch"
// entry: a 1-element float64 holding a whole number from 1 to kMaxEpochs. The stored double is
// checked before it becomes an int (a cast of 1e30 or NaN is undefined behaviour, and used to
// surface as "expected epoch >= 0, got -2147483648"); errors name the stored value.
inline int checked_epoch(const convtape::Tensor& stored, const std::string& path) {
  CT_CHECK(stored.defined() && stored.numel() == 1 && stored.dtype() == convtape::kFloat64,
           "train_fashion_mnist: expected trainer.epoch to be one float64 value, got {} in {}",
           stored.defined() ? fmt::format("{} {}", convtape::to_string(stored.shape()),
                                          convtape::dtype_name(stored.dtype()))
                            : std::string("an undefined tensor"),
           path);
  const double v = stored.item();
  CT_CHECK(std::isfinite(v) && v == std::floor(v) && v >= 1 && v <= static_cast<double>(kMaxEpochs),
           "train_fashion_mnist: expected trainer.epoch to be a whole number from 1 to {}, got {} "
           "in {}",
           kMaxEpochs, v, path);
  return static_cast<int>(v);
}

}  // namespace train_fashion_mnist
