// Per-sample transforms: crops that take the window the generator's draws name (against a naive
// padded-image reference), exact flips and normalisation, the flip rate over many samples,
// composition on one generator, and one test per error message.
#include <cmath>

#include "data/transforms.h"
#include "support/test_util.h"

using namespace convtape;
using namespace convtape::data::transforms;

namespace {

// [planes, h, w] (or [h, w] when planes is 0) holding 1, 2, 3, ... in order.
Tensor counting(std::int64_t planes, std::int64_t h, std::int64_t w, DType dtype = kFloat32) {
  const Shape shape = planes == 0 ? Shape{h, w} : Shape{planes, h, w};
  return add(arange(static_cast<double>(numel(shape)), kFloat64), 1.0).reshape(shape).to(dtype);
}

// The crop the naive way: pad every plane into a [H + t + b, W + l + r] image of `fill`, then
// take rows [top, top + th) and columns [left, left + tw).
Tensor reference_crop(const Tensor& x, std::int64_t th, std::int64_t tw, std::int64_t l,
                      std::int64_t t, std::int64_t r, std::int64_t b, double fill, std::int64_t top,
                      std::int64_t left) {
  const std::int64_t h = x.size(-2), w = x.size(-1), planes = x.numel() / (h * w);
  const std::int64_t ph = h + t + b, pw = w + l + r;
  const auto v = x.to(kFloat64).to_vector<double>();
  std::vector<double> out;
  for (std::int64_t p = 0; p < planes; ++p) {
    std::vector<double> padded(static_cast<std::size_t>(ph * pw), fill);
    for (std::int64_t y = 0; y < h; ++y)
      for (std::int64_t c = 0; c < w; ++c)
        padded[static_cast<std::size_t>((y + t) * pw + c + l)] =
            v[static_cast<std::size_t>(p * h * w + y * w + c)];
    for (std::int64_t y = 0; y < th; ++y)
      for (std::int64_t c = 0; c < tw; ++c)
        out.push_back(padded[static_cast<std::size_t>((top + y) * pw + left + c)]);
  }
  Shape shape = x.shape();
  shape[shape.size() - 2] = th;
  shape[shape.size() - 1] = tw;
  return from_vector(out, shape).to(x.dtype());
}

}  // namespace

TEST_CASE("RandomCrop takes the padded window that the generator's draws name", "[transforms]") {
  struct Case {
    Shape image;  // planes (0: a [H, W] image), H, W
    std::int64_t th, tw, l, t, r, b;
    double fill;
    DType dtype;
  };
  const std::vector<Case> cases = {
      {{1, 4, 5}, 3, 4, 1, 1, 1, 1, 0.0, kFloat32},   // padding on every side
      {{2, 6, 6}, 6, 6, 2, 2, 2, 2, -1.5, kFloat64},  // crop of the image's size out of a pad of 2
      {{0, 3, 4}, 2, 2, 0, 0, 0, 0, 0.0, kFloat32},   // [H, W], no padding
      {{3, 2, 3}, 4, 4, 3, 0, 1, 2, 7.0, kInt64},     // uneven padding
      {{1, 2, 2}, 3, 3, 5, 5, 5, 5, 9.0, kFloat32},   // windows that may miss the image entirely
  };
  for (const Case& c : cases) {
    const Tensor x = counting(c.image[0], c.image[1], c.image[2], c.dtype);
    const RandomCrop crop(RandomCropOptions(c.th, c.tw).padding(c.l, c.t, c.r, c.b).fill(c.fill));
    for (std::uint64_t seed = 0; seed < 40; ++seed) {
      INFO("image " << ct_test::str(x.shape()) << " seed " << seed);
      Generator gen(seed), draws(seed);
      const std::int64_t top = draws.integer(0, c.image[1] + c.t + c.b - c.th + 1);
      const std::int64_t left = draws.integer(0, c.image[2] + c.l + c.r - c.tw + 1);
      const Tensor y = crop(x, gen);
      CHECK(y.dtype() == c.dtype);
      CHECK(
          ct_test::equal(y, reference_crop(x, c.th, c.tw, c.l, c.t, c.r, c.b, c.fill, top, left)));
      CHECK(gen.next_u64() == draws.next_u64());  // exactly two draws
    }
  }
  // One hand-checked window: a 2 x 2 crop at top = 0, left = 2 of [[1, 2], [3, 4]] padded by 1.
  const Tensor small = counting(1, 2, 2);
  for (std::uint64_t seed = 0;; ++seed) {
    Generator draws(seed);
    if (draws.integer(0, 3) != 0 || draws.integer(0, 3) != 2) continue;
    Generator gen(seed);
    CHECK(RandomCrop(RandomCropOptions(2).padding(1))(small, gen).to_vector<float>() ==
          std::vector<float>{0, 0, 2, 0});
    break;
  }
}

TEST_CASE("RandomCrop of the whole padded image draws nothing", "[transforms]") {
  const Tensor x = counting(1, 2, 3);
  Generator gen(5), fresh(5);
  const Tensor y = RandomCrop(RandomCropOptions(4, 5).padding(1).fill(-1))(x, gen);
  CHECK(y.to_vector<float>() == std::vector<float>{-1, -1, -1, -1, -1, -1, 1,  2,  3,  -1,
                                                   -1, 4,  5,  6,  -1, -1, -1, -1, -1, -1});
  CHECK(gen.next_u64() == fresh.next_u64());
  // Without padding, a crop of the image's size is the image.
  CHECK(ct_test::equal(RandomCrop(RandomCropOptions(2, 3))(x, gen), x));
}

TEST_CASE("flips mirror the last or the second-last dim, one draw each", "[transforms]") {
  const Tensor x = counting(2, 2, 3);
  Generator gen(1), fresh(1);
  CHECK(RandomHorizontalFlip(1.0)(x, gen).to_vector<float>() ==
        std::vector<float>{3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10});
  CHECK(RandomVerticalFlip(1.0)(x, gen).to_vector<float>() ==
        std::vector<float>{4, 5, 6, 1, 2, 3, 10, 11, 12, 7, 8, 9});
  CHECK(ct_test::equal(RandomHorizontalFlip(0.0)(x, gen), x));
  CHECK(ct_test::equal(RandomVerticalFlip(0.0)(x, gen), x));
  for (int i = 0; i < 4; ++i) fresh.uniform01();
  CHECK(gen.next_u64() == fresh.next_u64());

  // [H, W] and int64 images; the input is left alone.
  const Tensor m = counting(0, 2, 2, kInt64);
  CHECK(RandomHorizontalFlip(1.0)(m, gen).to_vector<std::int64_t>() ==
        std::vector<std::int64_t>{2, 1, 4, 3});
  CHECK(m.to_vector<std::int64_t>() == std::vector<std::int64_t>{1, 2, 3, 4});

  // The flip fires exactly when the draw is below p.
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    Generator g(seed), d(seed);
    const bool fires = d.uniform01() < 0.5;
    CHECK(ct_test::equal(RandomHorizontalFlip()(x, g), fires ? flip(x, {2}) : x));
  }
}

TEST_CASE("RandomHorizontalFlip(p) flips a fraction p of the samples", "[transforms]") {
  const Tensor x = counting(1, 1, 2);
  for (const double p : {0.1, 0.5, 0.8}) {
    Generator gen(42);
    const RandomHorizontalFlip flipper(p);
    const int n = 20000;
    int flipped = 0;
    for (int i = 0; i < n; ++i) flipped += flipper(x, gen).to_vector<float>()[0] == 2.0f;
    // Binomial(n, p): 5 standard deviations is at most 354 samples for these p.
    INFO("p " << p << " flipped " << flipped);
    CHECK(std::abs(flipped - p * n) < 5 * std::sqrt(n * p * (1 - p)));
  }
}

TEST_CASE("Normalize subtracts the channel's mean and divides by its std", "[transforms]") {
  Generator gen;
  const Tensor x = counting(2, 1, 2);  // channel 0: 1, 2; channel 1: 3, 4
  CHECK(Normalize({1, 2}, {2, 4})(x, gen).to_vector<float>() ==
        std::vector<float>{0, 0.5f, 0.25f, 0.5f});
  CHECK(Normalize({1}, {0.5})(x, gen).to_vector<float>() == std::vector<float>{0, 2, 4, 6});
  CHECK(Normalize({1}, {-2})(counting(0, 1, 2, kFloat64), gen).to_vector<double>() ==
        std::vector<double>{0, -0.5});
  // In the sample's dtype, as torchvision: (x - mean) then / std, both rounded to float32.
  const Tensor v = from_vector(std::vector<float>{0.7f}, {1, 1, 1});
  CHECK(Normalize({0.2860}, {0.3530})(v, gen).to_vector<float>()[0] ==
        (0.7f - static_cast<float>(0.2860)) / static_cast<float>(0.3530));
  CHECK(x.to_vector<float>() == std::vector<float>{1, 2, 3, 4});
}

TEST_CASE("Compose applies its transforms in turn on one generator; Lambda calls a function",
          "[transforms]") {
  const Tensor x = counting(1, 4, 4);
  const RandomCrop crop(RandomCropOptions(3).padding(1));
  const RandomHorizontalFlip flipper;
  const Compose both({crop, flipper, Lambda([](const Tensor& t) { return mul(t, 2.0); })});
  for (std::uint64_t seed = 0; seed < 10; ++seed) {
    Generator g(seed), h(seed);
    CHECK(ct_test::equal(both(x, g), mul(flipper(crop(x, h), h), 2.0)));
  }
  Generator gen;
  CHECK(ct_test::equal(Compose({})(x, gen), x));
}

TEST_CASE("RandomCrop refuses a crop larger than the padded image", "[transforms]") {
  Generator gen;
  CT_REQUIRE_ERROR(RandomCrop(RandomCropOptions(31).padding(1))(counting(1, 28, 28), gen),
                   "RandomCrop: expected a crop [31, 31] no larger than the padded image, got "
                   "image [1, 28, 28] padded by (1, 1, 1, 1) to [30, 30]");
  CT_REQUIRE_ERROR(RandomCrop(RandomCropOptions(2, 5))(counting(0, 3, 4), gen),
                   "got image [3, 4] padded by (0, 0, 0, 0) to [3, 4]");
}

TEST_CASE("RandomCrop refuses negative padding", "[transforms]") {
  CT_REQUIRE_ERROR(RandomCrop(RandomCropOptions(3).padding(-1)),
                   "RandomCrop: expected padding >= 0 (left, top, right, bottom), got (-1, -1, "
                   "-1, -1)");
  CT_REQUIRE_ERROR(RandomCrop(RandomCropOptions(3).padding(0, 0, 0, -2)), "got (0, 0, 0, -2)");
}

TEST_CASE("RandomCrop refuses an empty crop size", "[transforms]") {
  CT_REQUIRE_ERROR(RandomCrop(RandomCropOptions(0, 3)),
                   "RandomCrop: expected a crop size >= 1, got [0, 3]");
}

TEST_CASE("the image transforms refuse a sample that is not an image", "[transforms]") {
  Generator gen;
  CT_REQUIRE_ERROR(RandomHorizontalFlip()(arange(3.0), gen),
                   "RandomHorizontalFlip: expected an image [C, H, W] or [H, W], got [3]");
  CT_REQUIRE_ERROR(RandomCrop(RandomCropOptions(1))(Tensor(), gen),
                   "RandomCrop: expected an image [C, H, W] or [H, W], got an undefined tensor");
}

TEST_CASE("flips refuse a probability outside [0, 1]", "[transforms]") {
  CT_REQUIRE_ERROR(RandomHorizontalFlip(1.5),
                   "RandomHorizontalFlip: expected a probability p in [0, 1], got 1.5");
  CT_REQUIRE_ERROR(RandomVerticalFlip(-0.1),
                   "RandomVerticalFlip: expected a probability p in [0, 1], got -0.1");
  CT_REQUIRE_ERROR(RandomVerticalFlip(std::nan("")), "got nan");
}

TEST_CASE("Normalize refuses means and stds of different counts", "[transforms]") {
  CT_REQUIRE_ERROR(Normalize({0, 0}, {1}),
                   "Normalize: expected as many means as standard deviations (at least one), got "
                   "2 and 1");
  CT_REQUIRE_ERROR(Normalize({}, {}), "got 0 and 0");
}

TEST_CASE("Normalize refuses a zero std", "[transforms]") {
  CT_REQUIRE_ERROR(Normalize({0, 0}, {1, 0}),
                   "Normalize: expected a finite mean and a finite, non-zero std, got mean 0 and "
                   "std 0 for channel 1");
  CT_REQUIRE_ERROR(Normalize({std::nan("")}, {1}), "got mean nan and std 1 for channel 0");
  Generator gen;
  CT_REQUIRE_ERROR(Normalize({0}, {1e-50})(counting(1, 1, 1), gen),
                   "Normalize: expected a std that stays non-zero in float32, got 1e-50 for "
                   "channel 0, which rounds to 0");
}

TEST_CASE("Normalize refuses an image whose channels do not match its means", "[transforms]") {
  Generator gen;
  CT_REQUIRE_ERROR(Normalize({0, 0, 0}, {1, 1, 1})(counting(1, 2, 2), gen),
                   "Normalize: expected an image with 3 channels (dim -3) for its 3 means, got "
                   "[1, 2, 2]");
  CT_REQUIRE_ERROR(Normalize({0, 0}, {1, 1})(counting(0, 2, 2), gen), "got [2, 2]");
}

TEST_CASE("Normalize refuses integer images", "[transforms]") {
  Generator gen;
  CT_REQUIRE_ERROR(Normalize({0}, {1})(counting(1, 2, 2, kInt64), gen),
                   "Normalize: expected a float32 or float64 image, got int64");
}

TEST_CASE("Compose and Lambda refuse empty functions", "[transforms]") {
  CT_REQUIRE_ERROR(Compose({RandomHorizontalFlip(), data::Transform()}),
                   "Compose: expected a transform at every position, got an empty one at "
                   "position 1");
  CT_REQUIRE_ERROR(Lambda(nullptr), "Lambda: expected a function, got an empty std::function");
}
