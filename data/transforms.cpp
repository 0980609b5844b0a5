// Per-sample transforms: padded random crops, random flips, per-channel normalisation, composition
// and user functions, as loops over contiguous CPU samples [..., H, W].
#include "data/transforms.h"

#include <algorithm>
#include <cmath>

#include "core/autograd.h"
#include "core/checked.h"

namespace convtape::data::transforms {

namespace {

// The sample as a contiguous CPU tensor, for an image [..., H, W] of a dtype the caller takes.
Tensor host_image(const Tensor& x, std::string_view op, bool floating_only) {
  CT_CHECK(x.defined() && x.dim() >= 2, "{}: expected an image [C, H, W] or [H, W], got {}", op,
           x.defined() ? to_string(x.shape()) : std::string("an undefined tensor"));
  CT_CHECK(x.is_floating_point() || !floating_only,
           "{}: expected a float32 or float64 image, got {}", op, dtype_name(x.dtype()));
  if (x.is_cpu() && x.is_contiguous() && !x.requires_grad()) return x;
  NoGradGuard no_grad;
  return x.detach().cpu().contiguous();
}

// The number of [H, W] planes in front of the last two dims (no structured bindings: clang 14's
// lambdas cannot capture them).
std::int64_t planes_of(const Tensor& x) {
  std::int64_t planes = 1;
  for (std::int64_t d = 0; d + 2 < x.dim(); ++d) planes *= x.size(d);
  return planes;
}

void check_probability(double p, std::string_view op) {
  CT_CHECK(p >= 0.0 && p <= 1.0, "{}: expected a probability p in [0, 1], got {}", op, p);
}

// Mirrors x [..., H, W] along W (horizontal) or H (vertical) into a new tensor.
Tensor flip(const Tensor& src, bool horizontal) {
  Tensor out = Tensor::empty_cpu(src.shape(), src.dtype());
  const std::int64_t h = src.size(-2), w = src.size(-1), planes = planes_of(src), plane = h * w;
  dispatch_all(src.dtype(), [&]<class T>() {
    const T* from = src.data_ptr<T>();
    T* to = out.data_ptr<T>();
    for (std::int64_t p = 0; p < planes; ++p, from += plane, to += plane)
      for (std::int64_t r = 0; r < h; ++r) {
        if (horizontal) {
          const T* row = from + r * w;
          T* dst = to + r * w;
          for (std::int64_t c = 0; c < w; ++c) dst[c] = row[w - 1 - c];
        } else {
          std::copy(from + (h - 1 - r) * w, from + (h - r) * w, to + r * w);
        }
      }
  });
  return out;
}

}  // namespace

Compose::Compose(std::vector<Transform> transforms) : transforms_(std::move(transforms)) {
  for (std::size_t i = 0; i < transforms_.size(); ++i)
    CT_CHECK(static_cast<bool>(transforms_[i]),
             "Compose: expected a transform at every position, got an empty one at position {}", i);
}

Tensor Compose::operator()(const Tensor& sample, Generator& gen) const {
  Tensor x = sample;
  for (const Transform& t : transforms_) x = t(x, gen);
  return x;
}

RandomCrop::RandomCrop(RandomCropOptions options) : options_(options) {
  const auto& s = options_.size();
  CT_CHECK(s[0] >= 1 && s[1] >= 1, "RandomCrop: expected a crop size >= 1, got [{}, {}]", s[0],
           s[1]);
  const auto& p = options_.padding();
  CT_CHECK(p[0] >= 0 && p[1] >= 0 && p[2] >= 0 && p[3] >= 0,
           "RandomCrop: expected padding >= 0 (left, top, right, bottom), got ({}, {}, {}, {})",
           p[0], p[1], p[2], p[3]);
}

Tensor RandomCrop::operator()(const Tensor& sample, Generator& gen) const {
  const Tensor src = host_image(sample, "RandomCrop", /*floating_only=*/false);
  const std::int64_t th = options_.size()[0], tw = options_.size()[1];
  const std::int64_t pl = options_.padding()[0], pt = options_.padding()[1],
                     pr = options_.padding()[2], pb = options_.padding()[3];
  const std::int64_t h = src.size(-2), w = src.size(-1);
  const std::int64_t ph = checked::add(checked::add(h, pt, "RandomCrop", "the padded height"), pb,
                                       "RandomCrop", "the padded height");
  const std::int64_t pw = checked::add(checked::add(w, pl, "RandomCrop", "the padded width"), pr,
                                       "RandomCrop", "the padded width");
  CT_CHECK(th <= ph && tw <= pw,
           "RandomCrop: expected a crop [{}, {}] no larger than the padded image, got image {} "
           "padded by ({}, {}, {}, {}) to [{}, {}]",
           th, tw, to_string(src.shape()), pl, pt, pr, pb, ph, pw);
  // torchvision's RandomCrop.get_params: no draw for the whole image, else the top, then the left.
  std::int64_t top = 0, left = 0;
  if (th != ph || tw != pw) {
    top = gen.integer(0, ph - th + 1);
    left = gen.integer(0, pw - tw + 1);
  }
  Shape shape = src.shape();
  shape[shape.size() - 2] = th;
  shape[shape.size() - 1] = tw;
  Tensor out = Tensor::empty_cpu(shape, src.dtype());
  const std::int64_t planes = planes_of(src), plane = h * w;
  // Output column c reads input column left + c - pl: those in [0, w) come from the image.
  const std::int64_t c0 = std::clamp<std::int64_t>(pl - left, 0, tw);
  const std::int64_t c1 = std::clamp<std::int64_t>(w + pl - left, c0, tw);
  dispatch_all(src.dtype(), [&]<class T>() {
    const T fill = static_cast<T>(options_.fill());
    const T* from = src.data_ptr<T>();
    T* to = out.data_ptr<T>();
    for (std::int64_t p = 0; p < planes; ++p, from += plane) {
      for (std::int64_t r = 0; r < th; ++r, to += tw) {
        const std::int64_t y = top + r - pt;
        if (y < 0 || y >= h) {
          std::fill(to, to + tw, fill);
          continue;
        }
        std::fill(to, to + c0, fill);
        std::copy(from + y * w + (left + c0 - pl), from + y * w + (left + c1 - pl), to + c0);
        std::fill(to + c1, to + tw, fill);
      }
    }
  });
  return out;
}

RandomHorizontalFlip::RandomHorizontalFlip(double p) : p_(p) {
  check_probability(p_, "RandomHorizontalFlip");
}

Tensor RandomHorizontalFlip::operator()(const Tensor& sample, Generator& gen) const {
  const Tensor src = host_image(sample, "RandomHorizontalFlip", /*floating_only=*/false);
  return gen.uniform01() < p_ ? flip(src, /*horizontal=*/true) : sample;
}

RandomVerticalFlip::RandomVerticalFlip(double p) : p_(p) {
  check_probability(p_, "RandomVerticalFlip");
}

Tensor RandomVerticalFlip::operator()(const Tensor& sample, Generator& gen) const {
  const Tensor src = host_image(sample, "RandomVerticalFlip", /*floating_only=*/false);
  return gen.uniform01() < p_ ? flip(src, /*horizontal=*/false) : sample;
}

Normalize::Normalize(std::vector<double> mean, std::vector<double> std)
    : mean_(std::move(mean)), std_(std::move(std)) {
  CT_CHECK(!mean_.empty() && mean_.size() == std_.size(),
           "Normalize: expected as many means as standard deviations (at least one), got {} and {}",
           mean_.size(), std_.size());
  for (std::size_t c = 0; c < mean_.size(); ++c)
    CT_CHECK(std::isfinite(mean_[c]) && std::isfinite(std_[c]) && std_[c] != 0.0,
             "Normalize: expected a finite mean and a finite, non-zero std, got mean {} and std {} "
             "for channel {}",
             mean_[c], std_[c], c);
}

Tensor Normalize::operator()(const Tensor& sample, Generator&) const {
  const Tensor src = host_image(sample, "Normalize", /*floating_only=*/true);
  const std::int64_t channels = src.dim() >= 3 ? src.size(-3) : 1;
  CT_CHECK(mean_.size() == 1 || static_cast<std::int64_t>(mean_.size()) == channels,
           "Normalize: expected an image with {} channels (dim -3) for its {} means, got {}",
           mean_.size(), mean_.size(), to_string(src.shape()));
  Tensor out = Tensor::empty_cpu(src.shape(), src.dtype());
  const std::int64_t planes = planes_of(src), plane = src.size(-2) * src.size(-1);
  dispatch_floating(src.dtype(), [&]<class T>() {
    const T* from = src.data_ptr<T>();
    T* to = out.data_ptr<T>();
    for (std::int64_t p = 0; p < planes; ++p, from += plane, to += plane) {
      const std::size_t k = mean_.size() == 1 ? 0 : static_cast<std::size_t>(p % channels);
      // In T, a subtraction then a division, as torchvision's sub_(mean).div_(std).
      const T m = static_cast<T>(mean_[k]), s = static_cast<T>(std_[k]);
      CT_CHECK(s != T(0),
               "Normalize: expected a std that stays non-zero in {}, got {} for channel {}, which "
               "rounds to 0",
               dtype_name(src.dtype()), std_[k], k);
      for (std::int64_t i = 0; i < plane; ++i) to[i] = (from[i] - m) / s;
    }
  });
  return out;
}

Lambda::Lambda(std::function<Tensor(const Tensor&)> fn) : fn_(std::move(fn)) {
  CT_CHECK(static_cast<bool>(fn_), "Lambda: expected a function, got an empty std::function");
}

Tensor Lambda::operator()(const Tensor& sample, Generator&) const {
  return fn_(sample);
}

}  // namespace convtape::data::transforms
