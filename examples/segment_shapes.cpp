// segment_shapes: a small U-Net that segments shapes, trained end to end on the CPU.
// The data are generated 32x32 grayscale images: one to three filled circles, rectangles and
// triangles at random places and sizes, brighter than a random background level, with Gaussian
// noise; the target is the shapes' binary mask. Held-out images come from a different seed.
// The model shows the layers a segmentation network needs:
//   encoder   conv 3x3 + GroupNorm + ReLU blocks, down by MaxPool2d(2)       32 -> 16 -> 8
//   decoder   up by Upsample(scale 2, bilinear) + conv in one stage (8 -> 16) and by a learned
//             ConvTranspose2d(stride 2) in the other (16 -> 32), each followed by a skip connection
//             (cat along channels with the encoder's features of that size) and a conv block
//   head      a 1x1 conv to one logit per pixel, trained with binary_cross_entropy_with_logits
// After each epoch it prints the training loss and the held-out IoU, |pred AND mask| /
// |pred OR mask| over every held-out pixel (pred = logit > 0), computed with tensor ops (gt,
// logical_and, logical_or, sum). It exits 1 unless the final held-out IoU is >= 0.95 (the goal is
// met in well under a minute on 2 cores, Release build). With --png it saves a picture of a few
// held-out images: input | target | predicted probability, one image per row.
//   usage: segment_shapes [--help] [--seed S] [--epochs N] [--threads N] [--png PATH]
#include "example_args.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "convtape.h"
#include "modules/normalization.h"
#include "modules/upsample.h"
#include "ops/compare.h"
#include "ops/loss.h"

using namespace convtape;

namespace {

constexpr std::int64_t kSize = 32;  // images are kSize x kSize

struct Data {
  Tensor images;  // [N, 1, kSize, kSize] float32
  Tensor masks;   // [N, 1, kSize, kSize] float32, 1 inside a shape
};

// Twice the signed area of the triangle (a, b, c); its sign says on which side of ab c lies.
double cross(double ax, double ay, double bx, double by, double cx, double cy) {
  return (bx - ax) * (cy - ay) - (by - ay) * (cx - ax);
}

// n images of one to three shapes each, drawn from gen (pixel loops are fine here: this is data
// generation, not a metric).
Data make_data(std::int64_t n, Generator& gen) {
  const auto u = [&gen](double lo, double hi) { return lo + (hi - lo) * gen.uniform01(); };
  std::vector<float> images(static_cast<std::size_t>(n * kSize * kSize));
  std::vector<float> masks(images.size(), 0.0f);
  for (std::int64_t i = 0; i < n; ++i) {
    float* img = images.data() + i * kSize * kSize;
    float* mask = masks.data() + i * kSize * kSize;
    const double background = u(0.0, 0.5);
    std::fill(img, img + kSize * kSize, static_cast<float>(background));
    const std::int64_t shapes = gen.integer(1, 4);
    for (std::int64_t s = 0; s < shapes; ++s) {
      const float level = static_cast<float>(background + u(0.3, 0.5));
      const std::int64_t kind = gen.integer(0, 3);
      // The shape's test for the pixel centre (x, y).
      double cx = 0, cy = 0, r = 0, x0 = 0, y0 = 0, x1 = 0, y1 = 0;
      double t[6] = {};
      if (kind == 0) {  // circle
        r = u(3.0, 8.0);
        cx = u(r, kSize - r);
        cy = u(r, kSize - r);
      } else if (kind == 1) {  // rectangle
        const double w = u(5.0, 14.0), h = u(5.0, 14.0);
        x0 = u(0.0, kSize - w);
        y0 = u(0.0, kSize - h);
        x1 = x0 + w;
        y1 = y0 + h;
      } else {  // triangle: three corners in a box, redrawn until it is not too thin
        const double side = u(9.0, 18.0);
        const double bx = u(0.0, kSize - side), by = u(0.0, kSize - side);
        do {
          for (int k = 0; k < 3; ++k) {
            t[2 * k] = bx + u(0.0, side);
            t[2 * k + 1] = by + u(0.0, side);
          }
        } while (std::abs(cross(t[0], t[1], t[2], t[3], t[4], t[5])) < 0.4 * side * side);
      }
      for (std::int64_t y = 0; y < kSize; ++y) {
        for (std::int64_t x = 0; x < kSize; ++x) {
          const double px = static_cast<double>(x) + 0.5, py = static_cast<double>(y) + 0.5;
          bool inside = false;
          if (kind == 0) {
            inside = (px - cx) * (px - cx) + (py - cy) * (py - cy) <= r * r;
          } else if (kind == 1) {
            inside = px >= x0 && px <= x1 && py >= y0 && py <= y1;
          } else {
            const double d0 = cross(t[0], t[1], t[2], t[3], px, py);
            const double d1 = cross(t[2], t[3], t[4], t[5], px, py);
            const double d2 = cross(t[4], t[5], t[0], t[1], px, py);
            inside = (d0 >= 0 && d1 >= 0 && d2 >= 0) || (d0 <= 0 && d1 <= 0 && d2 <= 0);
          }
          if (inside) {
            img[y * kSize + x] = level;
            mask[y * kSize + x] = 1.0f;
          }
        }
      }
    }
    for (std::int64_t p = 0; p < kSize * kSize; ++p)
      img[p] += static_cast<float>(0.08 * gen.normal01());
  }
  return {from_vector(images, {n, 1, kSize, kSize}), from_vector(masks, {n, 1, kSize, kSize})};
}

// conv 3x3 (padding 1) + GroupNorm + ReLU, twice: the U-Net's building block.
class ConvBlock : public nn::Module {
 public:
  ConvBlock(std::int64_t in, std::int64_t out) {
    conv1 = register_module("conv1",
                            std::make_shared<nn::Conv2d>(nn::Conv2dOptions(in, out, 3).padding(1)));
    norm1 = register_module("norm1", std::make_shared<nn::GroupNorm>(4, out));
    conv2 = register_module(
        "conv2", std::make_shared<nn::Conv2d>(nn::Conv2dOptions(out, out, 3).padding(1)));
    norm2 = register_module("norm2", std::make_shared<nn::GroupNorm>(4, out));
  }
  Tensor forward(const Tensor& x) override {
    const Tensor h = relu((*norm1)((*conv1)(x)));
    return relu((*norm2)((*conv2)(h)));
  }
  std::string type_name() const override { return "ConvBlock"; }

 private:
  std::shared_ptr<nn::Conv2d> conv1, conv2;
  std::shared_ptr<nn::GroupNorm> norm1, norm2;
};

// x [N, 1, 32, 32] -> one logit per pixel [N, 1, 32, 32]; c is the first stage's channel count.
class UNet : public nn::Module {
 public:
  explicit UNet(std::int64_t c) {
    enc1 = register_module("enc1", std::make_shared<ConvBlock>(1, c));
    pool = register_module("pool", std::make_shared<nn::MaxPool2d>(2));
    enc2 = register_module("enc2", std::make_shared<ConvBlock>(c, 2 * c));
    bottom = register_module("bottom", std::make_shared<ConvBlock>(2 * c, 4 * c));
    // 8 -> 16: a fixed bilinear upsampling, then a conv to halve the channels.
    up2 = register_module(
        "up2", std::make_shared<nn::Upsample>(
                   nn::UpsampleOptions().scale_factor(2.0).mode("bilinear").align_corners(false)));
    up2_conv = register_module(
        "up2_conv", std::make_shared<nn::Conv2d>(nn::Conv2dOptions(4 * c, 2 * c, 3).padding(1)));
    dec2 = register_module("dec2", std::make_shared<ConvBlock>(4 * c, 2 * c));
    // 16 -> 32: a learned upsampling.
    up1 = register_module("up1", std::make_shared<nn::ConvTranspose2d>(
                                     nn::ConvTranspose2dOptions(2 * c, c, 2).stride(2)));
    dec1 = register_module("dec1", std::make_shared<ConvBlock>(2 * c, c));
    head = register_module("head", std::make_shared<nn::Conv2d>(nn::Conv2dOptions(c, 1, 1)));
  }
  Tensor forward(const Tensor& x) override {
    const Tensor e1 = (*enc1)(x);                 // [N, c, 32, 32]
    const Tensor e2 = (*enc2)((*pool)(e1));       // [N, 2c, 16, 16]
    const Tensor b = (*bottom)((*pool)(e2));      // [N, 4c, 8, 8]
    const Tensor u2 = (*up2_conv)((*up2)(b));     // [N, 2c, 16, 16]
    const Tensor d2 = (*dec2)(cat({u2, e2}, 1));  // skip: [N, 4c, 16, 16] -> [N, 2c, 16, 16]
    const Tensor u1 = (*up1)(d2);                 // [N, c, 32, 32]
    const Tensor d1 = (*dec1)(cat({u1, e1}, 1));  // skip: [N, 2c, 32, 32] -> [N, c, 32, 32]
    return (*head)(d1);                           // [N, 1, 32, 32]
  }
  std::string type_name() const override { return "UNet"; }

 private:
  std::shared_ptr<ConvBlock> enc1, enc2, bottom, dec2, dec1;
  std::shared_ptr<nn::MaxPool2d> pool;
  std::shared_ptr<nn::Upsample> up2;
  std::shared_ptr<nn::ConvTranspose2d> up1;
  std::shared_ptr<nn::Conv2d> up2_conv, head;
};

// The model's logits for every image, computed in chunks, in eval mode, without a tape.
Tensor predict(UNet& model, const Tensor& images) {
  NoGradGuard no_grad;
  model.eval();
  std::vector<Tensor> parts;
  const std::int64_t n = images.size(0), chunk = 128;
  for (std::int64_t start = 0; start < n; start += chunk)
    parts.push_back(model(images.narrow(0, start, std::min(chunk, n - start))));
  model.train();
  return cat(parts, 0);
}

// Intersection over union of the predicted masks (logit > 0) and the true ones, over every pixel.
double iou(const Tensor& logits, const Tensor& masks) {
  const Tensor predicted = gt(logits, 0.0);
  const double intersection = sum(logical_and(predicted, masks)).item();
  const double union_ = sum(logical_or(predicted, masks)).item();
  return union_ > 0 ? intersection / union_ : 1.0;
}

// rows held-out images, one per row: input | target | predicted probability, each scaled up.
void save_png(const std::string& path, const Tensor& images, const Tensor& masks,
              const Tensor& logits, std::int64_t rows) {
  constexpr std::int64_t kScale = 4, kGap = 4;
  const std::int64_t tile = kSize * kScale;
  io::Image out(3 * tile + 4 * kGap, rows * tile + (rows + 1) * kGap, 1, 255);
  const Tensor columns[3] = {clamp(images.narrow(0, 0, rows), 0.0, 1.0), masks.narrow(0, 0, rows),
                             sigmoid(logits.narrow(0, 0, rows))};
  for (int c = 0; c < 3; ++c) {
    const std::vector<float> v = columns[c].contiguous().to_vector<float>();
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t y = 0; y < tile; ++y)
        for (std::int64_t x = 0; x < tile; ++x) {
          const float value =
              v[static_cast<std::size_t>((r * kSize + y / kScale) * kSize + x / kScale)];
          out.at(kGap + c * (tile + kGap) + x, kGap + r * (tile + kGap) + y) =
              static_cast<std::uint8_t>(std::lround(255.0f * value));
        }
  }
  io::write_png(path, out);
}

}  // namespace

int main(int argc, char** argv) {
  example_args::CommonArgs args;
  args.epochs = 6;
  std::string png;
  const int rc = example_args::parse_common(
      argc, argv, "segment_shapes",
      "segment_shapes: trains a small U-Net (GroupNorm, MaxPool2d, ConvTranspose2d, Upsample,\n"
      "skip connections) to segment generated 32x32 images of shapes; prints the held-out IoU\n"
      "per epoch and exits 1 unless the final IoU is >= 0.95.\n"
      "  --seed S      seed of the model, the training images and the shuffling (default 0);\n"
      "                the held-out images always come from another seed\n"
      "  --epochs N    training epochs (default 6)\n"
      "  --threads N   CPU threads (default: OpenMP's default)\n"
      "  --png PATH    also save input | target | prediction of 8 held-out images to PATH\n"
      "                (default: no picture)\n",
      args, [&](const std::string& flag, const char* value) {
        if (flag != "--png") return false;
        png = value;
        return true;
      });
  if (rc >= 0) return rc;
  const long long seed = args.seed, epochs = args.epochs, threads = args.threads;
  if (threads > 0) set_num_threads(static_cast<int>(threads));

  const auto start = std::chrono::steady_clock::now();
  manual_seed(static_cast<std::uint64_t>(seed));
  Generator train_gen(static_cast<std::uint64_t>(seed) * 2 + 1);
  Generator test_gen(0x7e58);  // held-out images: a fixed even seed (training seeds are odd)
  const std::int64_t n_train = 1024, n_test = 256, batch = 32;
  const Data train = make_data(n_train, train_gen);
  const Data test = make_data(n_test, test_gen);

  auto model = std::make_shared<UNet>(8);
  std::printf("%s\n", model->summary(Shape{1, 1, kSize, kSize}).c_str());
  optim::Adam opt(model->parameters(), optim::AdamOptions(5e-3));
  optim::CosineAnnealingLR schedule(opt, epochs);

  double final_iou = 0.0;
  for (long long epoch = 1; epoch <= epochs; ++epoch) {
    // A fresh order of the training set each epoch: the DataLoader's seeded shuffle.
    const Tensor perm = from_vector(
        data::epoch_permutation(n_train, static_cast<std::uint64_t>(seed), epoch), {n_train});
    double loss_sum = 0.0;
    std::int64_t steps = 0;
    for (std::int64_t b = 0; b + batch <= n_train; b += batch) {
      const Tensor idx = perm.narrow(0, b, batch);
      const Tensor x = index_select(train.images, 0, idx);
      const Tensor y = index_select(train.masks, 0, idx);
      const Tensor loss = binary_cross_entropy_with_logits((*model)(x), y);
      opt.zero_grad();
      loss.backward();
      opt.step();
      loss_sum += loss.item();
      ++steps;
    }
    schedule.step();
    final_iou = iou(predict(*model, test.images), test.masks);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("epoch %2lld  train loss %.4f  held-out IoU %.4f  (%.1f s)\n", epoch,
                loss_sum / static_cast<double>(steps), final_iou, seconds);
    std::fflush(stdout);
  }

  if (!png.empty()) {
    save_png(png, test.images, test.masks, predict(*model, test.images), 8);
    std::printf("saved input | target | prediction of 8 held-out images to %s\n", png.c_str());
  }
  const bool ok = final_iou >= 0.95;
  std::printf("%s: held-out IoU %.4f (goal >= 0.95)\n", ok ? "reached the goal" : "MISSED the goal",
              final_iou);
  return ok ? 0 : 1;
}
