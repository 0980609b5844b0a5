// Tests of ops/signal: correlate / convolve (numpy, scipy.signal and jax.scipy.signal semantics)
// and the d2l corr2d helpers.
// - A direct reference from the definitions, in any rank: the full correlation
//   z[i + (n2 - 1) - j] += in1[i] * in2[j] and the full convolution z[i + j] += in1[i] * in2[j],
//   cropped per dim as scipy does (same: n1 values from (n2 - 1) / 2; valid: |n1 - n2| + 1 values
//   from min(n1, n2) - 1). Seeded shapes in ranks 1 to 3 with odd and even sizes, in2 larger than
//   in1 in every mode that allows it; small integers make float32 exact, compared with ==.
// - Known values: numpy's documented convolve / correlate examples, and 2-d cases computed with
//   scipy.signal 1.17 (values written next to each check), including in2 larger than in1.
// - float64 gradcheck in both arguments for every mode and rank 1 to 3.
// - The JAX tutorial's two smoothing examples (seeds 003 / 000): jnp.convolve(y, ones(10) / 10,
//   'same') on 500 points and jsp.signal.convolve(image, 7x7 Gaussian, 'same') on a 768 x 1024
//   image, shapes and values against the direct reference, and the noise-free versions against
//   numpy / scipy numbers.
// - The d2l notebook's corr2d, edge detection (and its transpose), multiple input channels,
//   multiple output channels and the 1x1 convolution as a matrix product (seed 001), with its
//   printed numbers.
// - Every argument error.
#include <cmath>
#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "support/draw.h"
#include "support/test_util.h"

namespace {

using namespace convtape;
using Values = std::vector<double>;

using ct_test::Draw;

std::size_t at(std::int64_t i) {
  return static_cast<std::size_t>(i);
}

using ct_test::str;

const char* mode_name(SignalMode m) {
  return m == SignalMode::Full ? "full" : m == SignalMode::Same ? "same" : "valid";
}

// An N-d array of doubles, row-major.
struct Nd {
  Values v;
  Shape shape;
};

// The full correlation (convolution: flipped kernel) of a with b, from the definition.
Nd ref_full(const Nd& a, const Nd& b, bool convolution) {
  const std::size_t rank = a.shape.size();
  Nd z;
  for (std::size_t d = 0; d < rank; ++d) z.shape.push_back(a.shape[d] + b.shape[d] - 1);
  z.v.assign(at(numel(z.shape)), 0.0);
  // b's multi-indices once.
  std::vector<Shape> bidx;
  for (std::int64_t j = 0; j < numel(b.shape); ++j) {
    Shape idx(rank);
    std::int64_t rem = j;
    for (std::size_t d = rank; d-- > 0;) {
      idx[d] = rem % b.shape[d];
      rem /= b.shape[d];
    }
    bidx.push_back(idx);
  }
  Shape ia(rank);
  for (std::int64_t i = 0; i < numel(a.shape); ++i) {
    std::int64_t rem = i;
    for (std::size_t d = rank; d-- > 0;) {
      ia[d] = rem % a.shape[d];
      rem /= a.shape[d];
    }
    const double ai = a.v[at(i)];
    for (std::size_t j = 0; j < bidx.size(); ++j) {
      std::int64_t k = 0;
      for (std::size_t d = 0; d < rank; ++d) {
        const std::int64_t kd =
            convolution ? ia[d] + bidx[j][d] : ia[d] + (b.shape[d] - 1) - bidx[j][d];
        k = k * z.shape[d] + kd;
      }
      z.v[at(k)] += ai * b.v[j];
    }
  }
  return z;
}

// scipy's crop of the full result.
Nd ref_signal(const Nd& a, const Nd& b, SignalMode mode, bool convolution) {
  const Nd full = ref_full(a, b, convolution);
  const std::size_t rank = a.shape.size();
  Shape start(rank), len(rank);
  for (std::size_t d = 0; d < rank; ++d) {
    const std::int64_t n1 = a.shape[d], n2 = b.shape[d];
    if (mode == SignalMode::Full) {
      start[d] = 0;
      len[d] = n1 + n2 - 1;
    } else if (mode == SignalMode::Same) {
      start[d] = (n2 - 1) / 2;
      len[d] = n1;
    } else {
      start[d] = std::min(n1, n2) - 1;
      len[d] = std::max(n1, n2) - std::min(n1, n2) + 1;
    }
  }
  Nd out{Values(at(numel(len))), len};
  for (std::int64_t i = 0; i < numel(len); ++i) {
    std::int64_t rem = i, src = 0, mul = 1;
    for (std::size_t d = rank; d-- > 0;) {
      src += (rem % len[d] + start[d]) * mul;
      mul *= full.shape[d];
      rem /= len[d];
    }
    out.v[at(i)] = full.v[at(src)];
  }
  return out;
}

Values small_ints(const Shape& shape, Draw& d) {
  Values v(at(numel(shape)));
  for (auto& x : v) x = static_cast<double>(d(-4, 4));
  return v;
}

Tensor f32(const Values& v, const Shape& shape) {
  return tensor(v, shape, kFloat32);
}

bool contains(const Shape& a, const Shape& b) {
  for (std::size_t d = 0; d < a.size(); ++d)
    if (a[d] < b[d]) return false;
  return true;
}

// sin of each element (the tutorial's jnp.sin), computed on the host.
Tensor sin_of(const Tensor& x) {
  Values v = x.to_vector<double>();
  for (auto& e : v) e = std::sin(e);
  return tensor(v, x.shape(), x.dtype());
}

// x[i] along the first dim.
Tensor select_channel(const Tensor& x, std::int64_t i) {
  return squeeze(narrow(x, 0, i, 1), 0);
}

Tensor apply(bool convolution, const Tensor& a, const Tensor& b, SignalMode m) {
  return convolution ? convolve(a, b, m) : correlate(a, b, m);
}

}  // namespace

TEST_CASE("correlate / convolve: numpy's documented values", "[ops][signal]") {
  const Tensor a = f32({1, 2, 3}, {3}), v = f32({0, 1, 0.5}, {3});
  // np.convolve([1, 2, 3], [0, 1, 0.5]) and its 'same' / 'valid' forms.
  CHECK(ct_test::equal(convolve(a, v), f32({0, 1, 2.5, 4, 1.5}, {5})));
  CHECK(ct_test::equal(convolve(a, v, "same"), f32({1, 2.5, 4}, {3})));
  CHECK(ct_test::equal(convolve(a, v, SignalMode::Valid), f32({2.5}, {1})));
  // np.correlate([1, 2, 3], [0, 1, 0.5], mode) for 'full', 'same', 'valid'.
  CHECK(ct_test::equal(correlate(a, v, "full"), f32({0.5, 2, 3.5, 3, 0}, {5})));
  CHECK(ct_test::equal(correlate(a, v, "same"), f32({2, 3.5, 3}, {3})));
  CHECK(ct_test::equal(correlate(a, v, "valid"), f32({3.5}, {1})));
  // The longer operand second: convolution commutes; correlation's full result reverses.
  CHECK(ct_test::equal(convolve(v, a), convolve(a, v)));
  CHECK(ct_test::equal(correlate(v, a), f32({0, 3, 3.5, 2, 0.5}, {5})));
  // np.convolve([1, 2, 3, 4, 5], [1, -2, 3, 7], 'valid') and scipy.signal.correlate(
  // [1, -2, 3, 7], [1, 2, 3, 4, 5], 'valid') (in2 larger: swapped, as scipy does) = [43, 34].
  const Tensor x = f32({1, 2, 3, 4, 5}, {5}), k = f32({1, -2, 3, 7}, {4});
  CHECK(ct_test::equal(correlate(x, k, "valid"), f32({34, 43}, {2})));
  CHECK(ct_test::equal(correlate(k, x, "valid"), f32({43, 34}, {2})));
  CHECK(ct_test::equal(convolve(k, x, "valid"), f32({11, 20}, {2})));
  // scipy.signal.correlate(k, x, 'same') = [10, 43, 34, 25], convolve = [2, 11, 20, 23]: the shape
  // of in1 even when in2 is longer.
  CHECK(ct_test::equal(correlate(k, x, "same"), f32({10, 43, 34, 25}, {4})));
  CHECK(ct_test::equal(convolve(k, x, "same"), f32({2, 11, 20, 23}, {4})));
}

TEST_CASE("correlate / convolve: scipy.signal values in 2-d", "[ops][signal]") {
  // a [3, 4], b [2, 3] and big [4, 5] (larger than a in both dims), values from scipy.signal 1.17.
  const Tensor a = f32({1, -2, 3, 0, 4, 1, -1, 2, 0, 3, 2, -3}, {3, 4});
  const Tensor b = f32({2, 0, -1, 1, 3, 1}, {2, 3});
  const Tensor big = f32({1, 2, 0, -1, 3, 0, -2, 1, 4, 1, 2, 1, -3, 0, 2, 1, 0, 1, 2, -1}, {4, 5});
  CHECK(ct_test::equal(correlate(a, b), f32({1,  1, -2, 7, 3,  0, 3, 15, 5,  -4, 11, 2,
                                             -4, 2, 20, 6, -9, 1, 0, -3, -2, 9,  4,  -6},
                                            {4, 6})));
  CHECK(ct_test::equal(convolve(a, b), f32({2, -4, 5,  2,  -3, 0, 9, 3, -8, 10, 4,  -2,
                                            4, 19, 10, -9, 3,  5, 0, 3, 11, 6,  -7, -3},
                                           {4, 6})));
  CHECK(ct_test::equal(correlate(a, b, "same"),
                       f32({1, -2, 7, 3, 15, 5, -4, 11, 2, 20, 6, -9}, {3, 4})));
  CHECK(ct_test::equal(convolve(a, b, "same"),
                       f32({-4, 5, 2, -3, 3, -8, 10, 4, 19, 10, -9, 3}, {3, 4})));
  CHECK(ct_test::equal(correlate(a, b, "valid"), f32({5, -4, 20, 6}, {2, 2})));
  CHECK(ct_test::equal(convolve(a, b, "valid"), f32({-8, 10, 10, -9}, {2, 2})));
  CHECK(ct_test::equal(correlate(a, big, "valid"), f32({23, 15, -25, -1}, {2, 2})));
  CHECK(ct_test::equal(convolve(a, big, "valid"), f32({29, -13, -1, 31}, {2, 2})));
  CHECK(ct_test::equal(correlate(a, big, "same"),
                       f32({10, 4, -2, 2, -14, 23, 15, -11, 22, -25, -1, 25}, {3, 4})));
  CHECK(ct_test::equal(convolve(a, big, "same"),
                       f32({6, -8, 11, 14, 11, 29, -13, 2, -15, -1, 31, 12}, {3, 4})));
  CHECK(ct_test::equal(correlate(a, big),
                       f32({-1, 4, -6,  4,  4,   -2,  3, 0, -2, 3,  10, 4,   -2, 2,  5,  2,
                            9,  1, -14, 23, 15,  -11, 2, 1, 7,  16, 22, -25, -1, 25, 0,  -6,
                            12, 2, 10,  23, -12, -8,  9, 2, 0,  9,  3,  -11, 9,  7,  -4, -3},
                           {6, 8})));
}

TEST_CASE("correlate / convolve: every mode equals the direct reference in ranks 1 to 3",
          "[ops][signal][exact]") {
  Draw d(31u);
  int checked_swaps = 0, checked_valid = 0;
  for (std::size_t rank = 1; rank <= 3; ++rank) {
    const std::int64_t hi = rank == 1 ? 9 : rank == 2 ? 6 : 4;
    for (int trial = 0; trial < 24; ++trial) {
      Shape s1, s2;
      for (std::size_t q = 0; q < rank; ++q) {
        s1.push_back(d(1, hi));
        s2.push_back(d(1, hi));
      }
      // One trial in four makes one operand contain the other, so that 'valid' applies.
      if (trial % 4 == 0)
        for (std::size_t q = 0; q < rank; ++q) s2[q] = std::min(s2[q], s1[q]);
      if (trial % 4 == 1)
        for (std::size_t q = 0; q < rank; ++q) s2[q] = std::max(s2[q], s1[q]);
      const Nd a{small_ints(s1, d), s1}, b{small_ints(s2, d), s2};
      for (SignalMode m : {SignalMode::Full, SignalMode::Same, SignalMode::Valid})
        for (bool convolution : {false, true}) {
          INFO((convolution ? "convolve " : "correlate ")
               << str(s1) << " with " << str(s2) << ", " << mode_name(m));
          const Tensor ta = f32(a.v, s1), tb = f32(b.v, s2);
          if (m == SignalMode::Valid && !contains(s1, s2) && !contains(s2, s1)) {
            CT_REQUIRE_ERROR(apply(convolution, ta, tb, m),
                             "one input at least as large as the other in every dim");
            continue;
          }
          const Nd want = ref_signal(a, b, m, convolution);
          const Tensor got = apply(convolution, ta, tb, m);
          REQUIRE(got.shape() == want.shape);
          CHECK(got.to_vector<double>() == want.v);
          checked_valid += m == SignalMode::Valid;
          checked_swaps += m == SignalMode::Valid && !contains(s1, s2);
        }
    }
  }
  CHECK(checked_valid >= 40);
  CHECK(checked_swaps >= 10);  // 'valid' with in2 the larger operand
}

TEST_CASE("correlate / convolve: float64 gradcheck in both arguments", "[ops][signal][gradcheck]") {
  struct Case {
    Shape a, b;
  };
  const std::vector<Case> cases{{{7}, {3}},
                                {{4}, {6}},
                                {{5, 4}, {2, 3}},
                                {{3, 3}, {4, 5}},
                                {{3, 4, 2}, {2, 2, 2}},
                                {{2, 3, 2}, {3, 3, 4}}};
  manual_seed(17);
  for (const Case& c : cases)
    for (SignalMode m : {SignalMode::Full, SignalMode::Same, SignalMode::Valid})
      for (bool convolution : {false, true}) {
        INFO((convolution ? "convolve " : "correlate ")
             << str(c.a) << " with " << str(c.b) << ", " << mode_name(m));
        const Tensor a = ct_test::leaf(c.a), b = ct_test::leaf(c.b);
        CT_REQUIRE_GRADCHECK(
            [=](const std::vector<Tensor>& in) { return apply(convolution, in[0], in[1], m); },
            (std::vector<Tensor>{a, b}));
      }
}

TEST_CASE("signal_mode_from_string maps numpy's names", "[ops][signal]") {
  CHECK(signal_mode_from_string("full") == SignalMode::Full);
  CHECK(signal_mode_from_string("same") == SignalMode::Same);
  CHECK(signal_mode_from_string("valid") == SignalMode::Valid);
  CT_REQUIRE_ERROR(signal_mode_from_string("SAME"),
                   "signal mode: expected 'full', 'same' or 'valid', got 'SAME'");
}

// ================================================================================================
// JAX "Generalized convolutions" tutorial (seeds 003 English, 000 Chinese)
// ================================================================================================

// x = jnp.linspace(0, 10, 500); y = jnp.sin(x) + 0.2 * random.normal(key, (500,));
// y_smooth = jnp.convolve(y, jnp.ones(10) / 10, mode='same'). The tutorial's noise comes from its
// own PRNG; ours is seeded. The noise-free signal is also checked against numpy.convolve.
TEST_CASE("seeds/jax: 1-d smoothing, convolve(y, ones(10) / 10, 'same')", "[seeds][jax][signal]") {
  manual_seed(1701);
  const Tensor x = linspace(0, 10, 500);
  const Tensor y = add(sin_of(x), mul(randn({500}), 0.2));
  const Tensor window = div(ones({10}), 10.0);
  const Tensor smooth = convolve(y, window, "same");
  REQUIRE(smooth.shape() == Shape{500});
  const Nd want = ref_signal({y.to_vector<double>(), {500}}, {window.to_vector<double>(), {10}},
                             SignalMode::Same, true);
  CHECK(ct_test::allclose(smooth, tensor(want.v, {500}, kFloat64), 1e-5, 1e-6));

  // numpy.convolve(sin(linspace(0, 10, 500)), ones(10) / 10, 'same')
  const Tensor clean = convolve(sin_of(linspace(0, 10, 500, kFloat64)),
                                div(ones({10}, kFloat64), 10.0), SignalMode::Same);
  const std::pair<std::int64_t, double> numpy[] = {
      {0, 0.020026670006978158}, {1, 0.030029951434291626},  {4, 0.07197061392447926},
      {5, 0.08990905945316967},  {250, -0.9573364803583919}, {494, -0.447681725740643},
      {495, -0.465473218481137}, {499, -0.3006149229692488}};
  for (const auto& [i, value] : numpy) {
    INFO("index " << i);
    CHECK(std::abs(clean.at<double>({i}) - value) <= 1e-12);
  }
  CHECK(std::abs(clean.sum().item() - 92.25642549413399) <= 1e-10);
}

// x = jnp.linspace(-3, 3, 7); window = norm.pdf(x) * norm.pdf(x[:, None]);
// smooth_image = jsp.signal.convolve(noisy_image, window, mode='same') on the 768 x 1024 grey
// face plus 50 * normal noise. The photograph is not in the seed: a deterministic stand-in
// ((7i + 13j) mod 256) takes its place, with seeded noise; the noise-free stand-in is checked
// against scipy.signal.convolve.
TEST_CASE("seeds/jax: 2-d Gaussian denoise, convolve(image, 7x7 Gaussian, 'same')",
          "[seeds][jax][signal]") {
  const double pi = std::acos(-1.0);
  Values pdf, win;
  for (int i = 0; i < 7; ++i) {
    const double t = -3.0 + i;  // linspace(-3, 3, 7)
    pdf.push_back(std::exp(-0.5 * t * t) / std::sqrt(2 * pi));
  }
  for (double a : pdf)
    for (double b : pdf) win.push_back(a * b);
  Values img(768 * 1024);
  for (std::int64_t i = 0; i < 768; ++i)
    for (std::int64_t j = 0; j < 1024; ++j) img[at(i * 1024 + j)] = double((7 * i + 13 * j) % 256);

  manual_seed(1701);
  const Tensor noisy = add(f32(img, {768, 1024}), mul(randn({768, 1024}), 50.0));
  const Tensor window = f32(win, {7, 7});
  const Tensor smooth = convolve(noisy, window, "same");
  REQUIRE(smooth.shape() == Shape{768, 1024});
  const Nd want = ref_signal({noisy.to_vector<double>(), {768, 1024}},
                             {window.to_vector<double>(), {7, 7}}, SignalMode::Same, true);
  CHECK(ct_test::allclose(smooth, tensor(want.v, want.shape, kFloat64), 1e-5, 1e-3));

  // scipy.signal.convolve(img, window, 'same') at corners, edges and the interior.
  const Tensor clean =
      convolve(tensor(img, {768, 1024}, kFloat64), tensor(win, {7, 7}, kFloat64), SignalMode::Same);
  struct Spot {
    std::int64_t i, j;
    double value;
  };
  for (const Spot s : {Spot{0, 0, 5.0806495939911755}, Spot{0, 1023, 111.35328148967545},
                       Spot{767, 0, 88.19231007289534}, Spot{767, 1023, 110.34000939095418},
                       Spot{1, 2, 31.92468959344187}, Spot{400, 500, 83.95453851341229},
                       Spot{383, 17, 85.95345609706493}, Spot{700, 1000, 206.0167053053695}}) {
    INFO("(" << s.i << ", " << s.j << ")");
    CHECK(std::abs(clean.at<double>({s.i, s.j}) - s.value) <= 1e-9);
  }
  CHECK(std::abs(clean.sum().item() - 100049958.8513753) <= 1e-3);
}

TEST_CASE("correlate / convolve: argument errors", "[ops][signal][errors]") {
  const Tensor a = zeros({4}), b = zeros({2});
  CT_REQUIRE_ERROR(correlate(Tensor(), b),
                   "correlate: expected a defined in1 tensor, got an undefined one");
  CT_REQUIRE_ERROR(convolve(a, Tensor()),
                   "convolve: expected a defined in2 tensor, got an undefined one");
  CT_REQUIRE_ERROR(correlate(a, zeros({2}, kFloat64)),
                   "correlate: expected tensors of one dtype, got float32 and float64");
  CT_REQUIRE_ERROR(convolve(zeros({4}, kInt64), zeros({2}, kInt64)),
                   "convolve: expected a floating-point tensor (float32 or float64), got int64");
  CT_REQUIRE_ERROR(correlate(zeros({4, 4}), b),
                   "correlate: expected in1 and in2 of one rank, got [4, 4] and [2]");
  CT_REQUIRE_ERROR(convolve(zeros({}), zeros({})),
                   "convolve: expected inputs of rank 1 to 8, got [] and []");
  CT_REQUIRE_ERROR(correlate(zeros(Shape(9, 1)), zeros(Shape(9, 1))),
                   "correlate: expected inputs of rank 1 to 8");
  CT_REQUIRE_ERROR(convolve(zeros({0}), b), "convolve: expected non-empty inputs, got [0] and [2]");
  CT_REQUIRE_ERROR(correlate(zeros({4, 2}), zeros({2, 3}), SignalMode::Valid),
                   "correlate: expected, for mode 'valid', one input at least as large as the "
                   "other in every dim, got [4, 2] and [2, 3]");
  CT_REQUIRE_ERROR(convolve(a, b, "circular"),
                   "signal mode: expected 'full', 'same' or 'valid', got 'circular'");
  static float host[16] = {};
  auto fake = std::make_shared<Storage>(host, sizeof(host), Device(DeviceType::CUDA, 0), nullptr);
  const Tensor ad = Tensor::make(fake, {4}, {1}, 0, kFloat32);
  CT_REQUIRE_ERROR(correlate(a, ad),
                   "correlate: expected tensors on one device, got cpu and cuda:0");
}

// ================================================================================================
// d2l conv notebook (seed 001)
// ================================================================================================

namespace {

// X = ones((6, 8)); X[:, 2:6] = 0
Tensor stripe_image() {
  Values v;
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 8; ++j) v.push_back(j >= 2 && j < 6 ? 0.0 : 1.0);
  return f32(v, {6, 8});
}

// The notebook's X (2, 3, 3) and K (2, 2, 2) of "Multiple input channels".
Tensor two_channel_x() {
  return f32({0, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {2, 3, 3});
}
Tensor two_channel_k() {
  return f32({0, 1, 2, 3, 1, 2, 3, 4}, {2, 2, 2});
}

}  // namespace

TEST_CASE("seeds/d2l: corr2d(X, K) = [[19, 25], [37, 43]]", "[seeds][d2l][signal]") {
  const Tensor x = f32({0, 1, 2, 3, 4, 5, 6, 7, 8}, {3, 3}), k = f32({0, 1, 2, 3}, {2, 2});
  CHECK(ct_test::equal(d2l::corr2d(x, k), f32({19, 25, 37, 43}, {2, 2})));
  // "Convolution as matrix multiplication": X = arange(9).reshape(3, 3), K = [[1, 2], [3, 4]].
  CHECK(ct_test::equal(d2l::corr2d(arange(9.0).reshape({3, 3}), f32({1, 2, 3, 4}, {2, 2})),
                       f32({27, 37, 57, 67}, {2, 2})));
  // The same as the valid 2-d correlate, and differentiable in both arguments.
  CHECK(ct_test::equal(d2l::corr2d(x, k), correlate(x, k, SignalMode::Valid)));
  manual_seed(4);
  CT_REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return d2l::corr2d(in[0], in[1]); },
                       (std::vector<Tensor>{ct_test::leaf({4, 5}), ct_test::leaf({2, 3})}));
}

TEST_CASE("seeds/d2l: edge detection with K = [[1, -1]], and X.T", "[seeds][d2l][signal]") {
  const Tensor x = stripe_image(), k = f32({1, -1}, {1, 2});
  // [[0, 1, 0, 0, 0, -1, 0]] * 6
  Values want;
  for (int i = 0; i < 6; ++i) want.insert(want.end(), {0, 1, 0, 0, 0, -1, 0});
  const Tensor y = d2l::corr2d(x, k);
  CHECK(y.shape() == Shape{6, 7});  // "(6, 7)"
  CHECK(ct_test::equal(y, f32(want, {6, 7})));
  // "It fails to detect horizontal edges": corr2d(X.T, K) is all zeros, shape (8, 5).
  CHECK(ct_test::equal(d2l::corr2d(transpose(x, 0, 1), k), zeros({8, 5})));
}

TEST_CASE("seeds/d2l: corr2d_multi_in = [[56, 72], [104, 120]]", "[seeds][d2l][signal]") {
  const Tensor x = two_channel_x(), k = two_channel_k();
  CHECK(x.shape() == Shape{2, 3, 3});  // "(2, 3, 3)"
  CHECK(k.shape() == Shape{2, 2, 2});  // "(2, 2, 2)"
  const Tensor out = d2l::corr2d_multi_in(x, k);
  CHECK(out.shape() == Shape{2, 2});  // "(2, 2)"
  CHECK(ct_test::equal(out, f32({56, 72, 104, 120}, {2, 2})));
  // The notebook's definition: the sum of the per-channel corr2d.
  CHECK(ct_test::equal(out, add(d2l::corr2d(select_channel(x, 0), select_channel(k, 0)),
                                d2l::corr2d(select_channel(x, 1), select_channel(k, 1)))));
}

TEST_CASE("seeds/d2l: corr2d_multi_in_out with K = stack((K, K + 1, K + 2))",
          "[seeds][d2l][signal]") {
  const Tensor x = two_channel_x(), k0 = two_channel_k();
  const Tensor k = stack({k0, add(k0, 1.0), add(k0, 2.0)}, 0);
  CHECK(k.shape() == Shape{3, 2, 2, 2});  // "(3, 2, 2, 2)"
  const Tensor out = d2l::corr2d_multi_in_out(x, k);
  CHECK(out.shape() == Shape{3, 2, 2});  // "(3, 2, 2)"
  // The d2l book prints these values for the same example.
  CHECK(ct_test::equal(out,
                       f32({56, 72, 104, 120, 76, 100, 148, 172, 96, 128, 192, 224}, {3, 2, 2})));
  // The notebook's definition: stack the corr2d_multi_in of each output kernel.
  CHECK(
      ct_test::equal(out, stack({d2l::corr2d_multi_in(x, k0), d2l::corr2d_multi_in(x, add(k0, 1.0)),
                                 d2l::corr2d_multi_in(x, add(k0, 2.0))},
                                0)));
}

TEST_CASE("seeds/d2l: corr2d_multi_in_out_1x1 equals the 1x1 convolution", "[seeds][d2l][signal]") {
  // X (3, 3, 3), K (2, 3, 1, 1) from a seeded normal (the notebook's draws are not printed);
  // it asserts float(jnp.abs(Y1 - Y2).sum()) < 1e-6 and prints Y2.shape = (2, 3, 3).
  manual_seed(1);
  const Tensor x = randn({3, 3, 3}), k = randn({2, 3, 1, 1});
  const Tensor y1 = d2l::corr2d_multi_in_out_1x1(x, k), y2 = d2l::corr2d_multi_in_out(x, k);
  CHECK(y2.shape() == Shape{2, 3, 3});
  CHECK(y1.shape() == Shape{2, 3, 3});
  CHECK(abs(sub(y1, y2)).sum().item() < 1e-6);
  // Both are differentiable in X and K.
  CT_REQUIRE_GRADCHECK(
      [](const std::vector<Tensor>& in) { return d2l::corr2d_multi_in_out_1x1(in[0], in[1]); },
      (std::vector<Tensor>{ct_test::leaf({3, 2, 4}), ct_test::leaf({2, 3, 1, 1})}));
  CT_REQUIRE_GRADCHECK(
      [](const std::vector<Tensor>& in) { return d2l::corr2d_multi_in_out(in[0], in[1]); },
      (std::vector<Tensor>{ct_test::leaf({2, 4, 3}), ct_test::leaf({3, 2, 2, 2})}));
}

TEST_CASE("d2l helpers: argument errors", "[ops][signal][errors]") {
  CT_REQUIRE_ERROR(d2l::corr2d(zeros({1, 3, 3}), zeros({2, 2})),
                   "corr2d: expected x [H, W] and k [h, w], got [1, 3, 3] and [2, 2]");
  CT_REQUIRE_ERROR(d2l::corr2d(zeros({3, 3}), zeros({2, 4})),
                   "corr2d: expected a non-empty kernel no larger than the input, got x [3, 3] "
                   "and k [2, 4]");
  CT_REQUIRE_ERROR(d2l::corr2d(zeros({3, 3}), zeros({0, 2})),
                   "corr2d: expected a non-empty kernel no larger than the input");
  CT_REQUIRE_ERROR(d2l::corr2d(zeros({3, 3}), zeros({2, 2}, kFloat64)),
                   "corr2d: expected tensors of one dtype, got float32 and float64");
  CT_REQUIRE_ERROR(d2l::corr2d(Tensor(), zeros({2, 2})),
                   "corr2d: expected a defined x tensor, got an undefined one");
  CT_REQUIRE_ERROR(d2l::corr2d_multi_in(zeros({2, 3, 3}), zeros({3, 2, 2})),
                   "corr2d_multi_in: expected x [C, H, W] and k [C, h, w] with one C, got "
                   "[2, 3, 3] and [3, 2, 2]");
  CT_REQUIRE_ERROR(d2l::corr2d_multi_in(zeros({2, 3, 3}), zeros({2, 4, 2})),
                   "corr2d_multi_in: expected a non-empty kernel no larger than the input");
  CT_REQUIRE_ERROR(d2l::corr2d_multi_in_out(zeros({2, 3, 3}), zeros({3, 3, 2, 2})),
                   "corr2d_multi_in_out: expected x [C, H, W] and k [O, C, h, w] with one C, got "
                   "[2, 3, 3] and [3, 3, 2, 2]");
  CT_REQUIRE_ERROR(d2l::corr2d_multi_in_out_1x1(zeros({2, 3, 3}), zeros({3, 2, 2, 1})),
                   "corr2d_multi_in_out_1x1: expected x [C, H, W] and k [O, C, 1, 1] with one C, "
                   "got [2, 3, 3] and [3, 2, 2, 1]");
}
