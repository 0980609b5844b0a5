// Datasets: indexable collections of (data, target) examples.
//   Dataset       the interface: size() and get(i); in-memory datasets also expose their whole
//                 contents as two tensors (stacked()), from which loaders copy batch rows directly.
//   TensorDataset data [N, ...] and targets [N, ...] held in memory (contiguous, on the CPU);
//                 example i is (data[i], targets[i]).
//   FashionMNIST  Zalando's 28 x 28 clothing images: images float32 [N, 1, 28, 28] scaled to
//                 [0, 1], labels int64 [N] in 0..9; N = 60000 (train) or 10000 (test). The files
//                 are read from Debian's dataset-fashion-mnist package unless another root is given
//                 (gzipped or not: "train-images-idx3-ubyte.gz" or "train-images-idx3-ubyte").
//   Normalize     per-channel (x - mean[c]) / std[c] over dim 1 of a batch [B, C, ...]; not
//                 recorded on the tape (it is preprocessing).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"

namespace convtape::data {

struct Example {
  Tensor data;
  Tensor target;
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual std::int64_t size() const = 0;
  // Index in [0, size()).
  virtual Example get(std::int64_t index) const = 0;
  // The whole dataset as data [N, ...] and targets [N, ...], contiguous on the CPU, or nullptr
  // when it is not held in memory that way.
  virtual const Example* stacked() const { return nullptr; }

 protected:
  Dataset() = default;
  Dataset(const Dataset&) = default;
  Dataset& operator=(const Dataset&) = default;
};

class TensorDataset : public Dataset {
 public:
  // Copies to contiguous CPU memory where needed (a contiguous CPU tensor is shared, not copied).
  TensorDataset(const Tensor& data, const Tensor& targets);

  std::int64_t size() const override { return all_.data.size(0); }
  Example get(std::int64_t index) const override;
  const Example* stacked() const override { return &all_; }

  const Tensor& data() const { return all_.data; }
  const Tensor& targets() const { return all_.target; }

 private:
  Example all_;
};

// Where Debian's dataset-fashion-mnist package installs the files.
inline constexpr std::string_view kFashionMnistRoot = "/usr/share/datasets/fashion-mnist";

class FashionMNIST : public TensorDataset {
 public:
  explicit FashionMNIST(const std::string& root = std::string(kFashionMnistRoot),
                        bool train = true);

  // Whether root holds the split's two files (so callers can skip, or say what to install).
  static bool available(const std::string& root = std::string(kFashionMnistRoot),
                        bool train = true);
  static constexpr std::array<std::string_view, 10> kClasses = {
      "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
      "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

 private:
  explicit FashionMNIST(const Example& loaded) : TensorDataset(loaded.data, loaded.target) {}
};

class Normalize {
 public:
  // One mean and one standard deviation per channel, or one of each for every channel; the
  // standard deviations must be positive.
  Normalize(std::vector<double> mean, std::vector<double> stddev);

  // A normalised copy of x [B, C, ...] (or [B] for one value per sample), on x's device.
  Tensor operator()(const Tensor& x) const;
  // Normalises a contiguous float32 / float64 CPU tensor [B, C, ...] in place.
  void apply_(const Tensor& x) const;
  // Throws unless x's dtype and channel count suit these statistics; op names the caller.
  void check(const Tensor& x, std::string_view op) const;

  const std::vector<double>& mean() const { return mean_; }
  const std::vector<double>& stddev() const { return stddev_; }

 private:
  std::vector<double> mean_;
  std::vector<double> stddev_;
};

}  // namespace convtape::data
