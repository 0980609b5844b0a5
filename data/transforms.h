// Per-sample data transforms (torchvision.transforms' tensor pipeline) for the DataLoader.
//
// A Transform maps one sample's data, an image [C, H, W] or [H, W] (any [..., H, W]: the leading
// dims are planes treated alike), to a new tensor, and draws whatever random numbers it needs from
// the Generator it is given. The DataLoader (DataLoaderOptions::transform) applies it to each
// sample's data before collation, with a Generator seeded from (the loader's seed, the epoch, the
// sample's index) (data::transform_seed): a sample's augmentation depends on nothing else, so it
// is the same whatever the batch size, the sampler or the number of worker threads.
//
//   auto augment = data::transforms::Compose({
//       data::transforms::RandomCrop(data::transforms::RandomCropOptions(28).padding(2)),
//       data::transforms::RandomHorizontalFlip()});
//   DataLoader loader(train, DataLoaderOptions().batch_size(64).transform(augment));
//
//   Compose               the transforms in turn, all drawing from the one generator.
//   RandomCrop            pads the image by `padding` on every side (constant `fill`, torchvision's
//                         padding_mode="constant"), then crops a [h, w] window whose top and left
//                         are drawn as torchvision draws them: top = gen.integer(0, H' - h + 1),
//                         then left = gen.integer(0, W' - w + 1) on the padded extents H', W';
//                         nothing is drawn when the window is the whole padded image.
//   RandomHorizontalFlip  mirrors the last dim (W) when gen.uniform01() < p (one draw per call).
//   RandomVerticalFlip    mirrors dim -2 (H) likewise.
//   Normalize             per channel (dim -3; one channel for [H, W]) (x - mean[c]) / std[c],
//                         computed in the sample's dtype as torchvision does (a subtraction, then
//                         a division); one mean and std may serve every channel.
//   Lambda                a user function of the sample (no random numbers; a random user
//                         transform is any callable with the Transform signature).
//
// These are data preparation, not autograd ops: plain loops over contiguous CPU memory, outputs
// that do not require grad. Crop and flips take float32, float64 and int64 samples; Normalize
// float32 and float64. A transform never writes to its input (a flip that does not fire returns
// the input itself), and it is called concurrently from the loader's worker threads, so it must
// not change shared state: the classes here are immutable once built.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <vector>

#include "core/random.h"
#include "core/tensor.h"

namespace convtape::data {

// One sample's data in, the transformed data out, random numbers from gen.
using Transform = std::function<Tensor(const Tensor& sample, Generator& gen)>;

namespace transforms {

class Compose {
 public:
  // Each transform must be set (a default-constructed std::function is refused).
  explicit Compose(std::vector<Transform> transforms);
  Tensor operator()(const Tensor& sample, Generator& gen) const;
  const std::vector<Transform>& transforms() const { return transforms_; }

 private:
  std::vector<Transform> transforms_;
};

class RandomCropOptions {
 public:
  // A square crop, or height x width; both >= 1.
  explicit RandomCropOptions(std::int64_t size) : size_{size, size} {}
  RandomCropOptions(std::int64_t height, std::int64_t width) : size_{height, width} {}
  // The same padding on all four sides, >= 0 (default 0).
  RandomCropOptions& padding(std::int64_t p) {
    padding_ = {p, p, p, p};
    return *this;
  }
  // torchvision's 4-sequence order: left, top, right, bottom.
  RandomCropOptions& padding(std::int64_t left, std::int64_t top, std::int64_t right,
                             std::int64_t bottom) {
    padding_ = {left, top, right, bottom};
    return *this;
  }
  // The value of the padded pixels (default 0).
  RandomCropOptions& fill(double v) {
    fill_ = v;
    return *this;
  }

  const std::array<std::int64_t, 2>& size() const { return size_; }
  const std::array<std::int64_t, 4>& padding() const { return padding_; }
  double fill() const { return fill_; }

 private:
  std::array<std::int64_t, 2> size_;
  std::array<std::int64_t, 4> padding_{0, 0, 0, 0};
  double fill_ = 0.0;
};

class RandomCrop {
 public:
  explicit RandomCrop(RandomCropOptions options);
  // [..., H, W] -> [..., h, w].
  Tensor operator()(const Tensor& sample, Generator& gen) const;
  const RandomCropOptions& options() const { return options_; }

 private:
  RandomCropOptions options_;
};

class RandomHorizontalFlip {
 public:
  // p in [0, 1].
  explicit RandomHorizontalFlip(double p = 0.5);
  Tensor operator()(const Tensor& sample, Generator& gen) const;
  double p() const { return p_; }

 private:
  double p_;
};

class RandomVerticalFlip {
 public:
  explicit RandomVerticalFlip(double p = 0.5);
  Tensor operator()(const Tensor& sample, Generator& gen) const;
  double p() const { return p_; }

 private:
  double p_;
};

class Normalize {
 public:
  // As many means as standard deviations (at least one); every std finite and non-zero.
  Normalize(std::vector<double> mean, std::vector<double> std);
  Tensor operator()(const Tensor& sample, Generator& gen) const;
  const std::vector<double>& mean() const { return mean_; }
  const std::vector<double>& stddev() const { return std_; }

 private:
  std::vector<double> mean_;
  std::vector<double> std_;
};

class Lambda {
 public:
  explicit Lambda(std::function<Tensor(const Tensor&)> fn);
  Tensor operator()(const Tensor& sample, Generator& gen) const;

 private:
  std::function<Tensor(const Tensor&)> fn_;
};

}  // namespace transforms

}  // namespace convtape::data
