// conv_tour: the convolution examples of three libraries' documentation, run with convtape.
// Part 1 is JAX's "Generalized convolutions" tutorial in C++: its 1-D and 2-D signal smoothing
// (jnp.convolve / jax.scipy.signal.convolve, mode='same'), then its synthetic NHWC image
// [1, 200, 198, 3] (three 10x10 squares) and 3x3 diagonal-edge HWIO kernel through lax.conv,
// conv_with_general_padding and conv_general_dilated (SAME, VALID, stride 2, kernel dilation 12,
// input dilation 2, the transposed convolution), the dimension numbers it prints, and its 1-D
// (NWC / WIO / NWC) and 3-D (NHWDC / HWDIO / NHWDC) demos. Every "in shape" / "out shape" line the
// tutorial prints is printed the same way, with a short summary of the values (the tutorial plots
// them) that is compared with JAX's.
// Part 2 is PuzzleLib's Conv2D page: layers built with nn::Conv2d from PuzzleLib's parameter set
// (Conv2dOptions::puzzlelib), the page's customW weights on arange(25) data, every printed
// output, then the groups weight shapes and the depthwise-separable block.
// Part 3 is mygrad's conv_nd docstring: the square wave * constant kernel, x.grad and k.grad, the
// channel-wise edge detection and the N-d shapes.
// Every number the documents print (shapes and values) is checked, not just printed; the exit
// status is 0 only when all of them match, so the program doubles as a test.
//   usage: conv_tour [--help] [--seed S]
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "convtape.h"

using namespace convtape;

namespace {

using Pads = std::vector<std::pair<std::int64_t, std::int64_t>>;

// ---- checking: every comparison with a seed's number goes through here.
class Checks {
 public:
  void expect(bool ok, const std::string& what) {
    if (ok) {
      ++passed_;
    } else {
      failed_.push_back(what);
      std::printf("  ** MISMATCH: %s\n", what.c_str());
    }
  }
  int passed() const { return passed_; }
  const std::vector<std::string>& failed() const { return failed_; }

 private:
  int passed_ = 0;
  std::vector<std::string> failed_;
};

// ---- printing in the seeds' (NumPy's) style
std::string format(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

// "(1, 200, 198, 3)", "(500,)": a shape as Python prints a tuple.
std::string py_tuple(const std::vector<std::int64_t>& s) {
  std::string out = "(";
  for (std::size_t i = 0; i < s.size(); ++i)
    out += (i ? ", " : "") + std::to_string(static_cast<long long>(s[i]));
  return out + (s.size() == 1 ? ",)" : ")");
}

// NumPy's layout: one width for every element, integral floats as "6.", rows on their own lines,
// (rank - d - 1) line breaks between the blocks of dim d. sep " " is str(), ", " is repr().
std::string numpy_text(const Tensor& t, const std::string& sep = " ", std::size_t indent = 0) {
  const auto v = t.to_vector<double>();
  const bool integral =
      std::all_of(v.begin(), v.end(), [](double e) { return e == std::floor(e); });
  std::vector<std::string> items;
  std::size_t width = 1;
  for (double e : v) {
    items.push_back(integral ? format("%.0f.", e == 0.0 ? 0.0 : e) : format("%.4f", e));
    width = std::max(width, items.back().size());
  }
  const Shape& s = t.shape();
  const std::size_t rank = s.size();
  const bool repr = sep.find(',') != std::string::npos;
  std::string out;
  std::size_t next = 0;
  const auto write = [&](const auto& self, std::size_t d) -> void {
    if (d == rank) {
      out.append(width - items[next].size(), ' ');
      out += items[next++];
      return;
    }
    out += '[';
    for (std::int64_t i = 0; i < s[d]; ++i) {
      if (i > 0) {
        if (d + 1 == rank) {
          out += sep;
        } else {
          out += repr ? "," : "";
          out.append(rank - d - 1, '\n');
          out.append(indent + d + 1, ' ');
        }
      }
      self(self, d + 1);
    }
    out += ']';
  };
  write(write, 0);
  return out;
}

bool same_values(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.to_vector<double>() == b.to_vector<double>();
}

bool close_values(const Tensor& a, const Tensor& b, double tol) {
  if (a.shape() != b.shape()) return false;
  const auto x = a.to_vector<double>(), y = b.to_vector<double>();
  for (std::size_t i = 0; i < x.size(); ++i)
    if (std::abs(x[i] - y[i]) > tol * (1.0 + std::abs(y[i]))) return false;
  return true;
}

Tensor f32(const std::vector<double>& values, const Shape& shape) {
  return tensor(values, shape, kFloat32);
}

void expect_shape(Checks& checks, const Tensor& t, const Shape& want, const std::string& what) {
  checks.expect(t.shape() == want,
                what + ": shape " + py_tuple(t.shape()) + ", the seed says " + py_tuple(want));
}

void expect_values(Checks& checks, const Tensor& t, const std::vector<double>& want,
                   const Shape& shape, const std::string& what) {
  checks.expect(same_values(t, f32(want, shape)), what + ": values differ from the seed's");
}

// Sums, extremes and nonzeros of a result: what the tutorial's plots show, as numbers.
struct Summary {
  double sum = 0, sumsq = 0, sumabs = 0, min = 0, max = 0;
  std::int64_t nonzero = 0;
};

Summary summarize(const Tensor& t) {
  const auto v = t.to_vector<double>();
  Summary s;
  s.min = *std::min_element(v.begin(), v.end());
  s.max = *std::max_element(v.begin(), v.end());
  for (double e : v) {
    s.sum += e;
    s.sumsq += e * e;
    s.sumabs += std::abs(e);
    s.nonzero += e != 0.0;
  }
  return s;
}

// Prints the summary and compares it with JAX's (exact: the data are small integers).
void summary_line(Checks& checks, const Tensor& t, const Summary& jax, const std::string& what) {
  const Summary s = summarize(t);
  std::printf("  sum %g, sum of squares %g, sum |.| %g, %lld nonzeros, min %g, max %g\n", s.sum,
              s.sumsq, s.sumabs, static_cast<long long>(s.nonzero), s.min, s.max);
  checks.expect(s.sum == jax.sum && s.sumsq == jax.sumsq && s.sumabs == jax.sumabs &&
                    s.nonzero == jax.nonzero && s.min == jax.min && s.max == jax.max,
                what + ": summary differs from JAX's");
}

void heading(const char* title) {
  std::printf("\n== %s\n", title);
}

// ================================================================================================
// Part 1: JAX's tutorial
// ================================================================================================

// img = zeros((1, 200, 198, 3)); img[0, x:x+10, y:y+10, k] = 1 with x = 30 + 60k, y = 20 + 60k.
Tensor jax_image() {
  std::vector<double> v(200 * 198 * 3, 0.0);
  for (std::int64_t k = 0; k < 3; ++k)
    for (std::int64_t x = 30 + 60 * k; x < 40 + 60 * k; ++x)
      for (std::int64_t y = 20 + 60 * k; y < 30 + 60 * k; ++y)
        v[static_cast<std::size_t>((x * 198 + y) * 3 + k)] = 1.0;
  return f32(v, {1, 200, 198, 3});
}

// HWIO [3, 3, 3, 3]: [[1, 1, 0], [1, 0, -1], [0, -1, -1]] for every (input, output) channel pair.
Tensor jax_kernel() {
  const double edge[3][3] = {{1, 1, 0}, {1, 0, -1}, {0, -1, -1}};
  std::vector<double> v;
  for (const auto& row : edge)
    for (double e : row)
      for (int io = 0; io < 9; ++io) v.push_back(e);
  return f32(v, {3, 3, 3, 3});
}

Tensor nhwc_to_nchw(const Tensor& t) {
  return permute(t, {0, 3, 1, 2}).contiguous();
}
Tensor hwio_to_oihw(const Tensor& t) {
  return permute(t, {3, 2, 0, 1}).contiguous();
}

ConvGeneralOptions general(std::vector<std::int64_t> strides, PaddingKind mode,
                           ConvDimensionNumbers dn = {"NHWC", "HWIO", "NHWC"}) {
  ConvGeneralOptions o;
  o.window_strides = std::move(strides);
  o.padding_kind = mode;
  o.dimension_numbers = std::move(dn);
  return o;
}

// lax.conv_dimension_numbers: where the batch / feature dims and the spatial dims (in the kernel
// string's order) sit in each operand.
struct Specs {
  std::vector<std::int64_t> lhs, rhs, out;
};

Specs dimension_specs(const ConvDimensionNumbers& dn) {
  const auto pos = [](const std::string& s, char c) {
    return static_cast<std::int64_t>(s.find(c));
  };
  Specs sp{{pos(dn.lhs, 'N'), pos(dn.lhs, 'C')},
           {pos(dn.rhs, 'O'), pos(dn.rhs, 'I')},
           {pos(dn.out, 'N'), pos(dn.out, 'C')}};
  for (char c : dn.rhs) {
    if (c == 'O' || c == 'I') continue;
    sp.lhs.push_back(pos(dn.lhs, c));
    sp.rhs.push_back(pos(dn.rhs, c));
    sp.out.push_back(pos(dn.out, c));
  }
  return sp;
}

void print_dimension_numbers(Checks& checks, const ConvDimensionNumbers& dn,
                             const std::string& printed) {
  const Specs sp = dimension_specs(dn);
  const std::string line = "ConvDimensionNumbers(lhs_spec=" + py_tuple(sp.lhs) +
                           ", rhs_spec=" + py_tuple(sp.rhs) + ", out_spec=" + py_tuple(sp.out) +
                           ")";
  std::printf("%s\n", line.c_str());
  checks.expect(line == printed, "dimension numbers " + dn.lhs + "/" + dn.rhs + "/" + dn.out +
                                     ": the tutorial prints " + printed);
}

void out_shape(const Tensor& t, const char* note = "") {
  std::printf("out shape:  %s%s\n", py_tuple(t.shape()).c_str(), note);
}

// y = sin(x) + 0.2 * noise on x = linspace(0, 10, 500), smoothed by a 10-tap box: jnp.convolve
// 'same' is a true convolution whose even-length window puts the extra tap on the low side.
void jax_smoothing_1d(Checks& checks) {
  heading("JAX 1: basic one-dimensional convolution (jnp.convolve, mode='same')");
  std::printf("a 10-tap moving average smooths a noisy sine; 'same' keeps the input's length\n");
  std::vector<double> clean, noisy;
  const auto noise = randn({500}).to_vector<double>();
  for (int i = 0; i < 500; ++i) {
    clean.push_back(std::sin(10.0 * i / 499.0));
    noisy.push_back(clean.back() + 0.2 * noise[static_cast<std::size_t>(i)]);
  }
  const Tensor window = full({10}, 0.1);
  const Tensor y = f32(noisy, {500});
  const Tensor y_smooth = convolve(y, window, "same");
  const Tensor sine = f32(clean, {500});
  const auto rms = [&](const Tensor& t) { return std::sqrt(pow(t - sine, 2.0).mean().item()); };
  std::printf("y %s -> y_smooth %s; distance to sin(x): rms %.3f before, %.3f after\n",
              py_tuple(y.shape()).c_str(), py_tuple(y_smooth.shape()).c_str(), rms(y),
              rms(y_smooth));
  expect_shape(checks, y_smooth, {500}, "jnp.convolve same");
  // Without the noise the result is numpy.convolve(sin(linspace(0, 10, 500)), ones(10)/10, 'same').
  const Tensor smooth = convolve(sine, window, "same");
  const std::pair<std::int64_t, double> numpy[] = {
      {0, 0.020026670006978158},  {1, 0.030029951434291626}, {5, 0.08990905945316967},
      {250, -0.9573364803583919}, {495, -0.465473218481137}, {499, -0.3006149229692488}};
  std::printf(
      "noise-free: y_smooth[0] %.6f, [250] %.6f, [499] %.6f, sum %.4f (numpy: %.6f, %.6f, "
      "%.6f, 92.2564)\n",
      smooth.at<float>({0}), smooth.at<float>({250}), smooth.at<float>({499}), smooth.sum().item(),
      numpy[0].second, numpy[3].second, numpy[5].second);
  for (const auto& [i, want] : numpy)
    checks.expect(std::abs(smooth.at<float>({i}) - want) <= 1e-6,
                  "jnp.convolve same: value " + std::to_string(i) + " differs from numpy's");
  checks.expect(std::abs(smooth.sum().item() - 92.25642549413399) <= 1e-4,
                "jnp.convolve same: sum differs from numpy's");
}

// The tutorial smooths scipy's 768 x 1024 raccoon face plus noise of std 50 with the 7x7 window
// norm.pdf(x) * norm.pdf(x[:, None]), x = linspace(-3, 3, 7). The photograph is not ours to ship;
// a synthetic greyscale image of the same size stands in for it.
void jax_smoothing_2d(Checks& checks) {
  heading("JAX 2: basic N-dimensional convolution (jax.scipy.signal.convolve, 2-D Gaussian)");
  std::printf("a 7x7 Gaussian window de-noises a 768 x 1024 image; 'same' keeps its shape\n");
  const double pi = std::acos(-1.0);
  std::vector<double> pdf, win;
  for (int i = 0; i < 7; ++i) pdf.push_back(std::exp(-0.5 * (i - 3) * (i - 3)) / std::sqrt(2 * pi));
  for (double a : pdf)
    for (double b : pdf) win.push_back(a * b);
  const Tensor window = f32(win, {7, 7});
  std::vector<double> img;
  for (int i = 0; i < 768; ++i)
    for (int j = 0; j < 1024; ++j)
      img.push_back(128.0 + 80.0 * std::sin(i / 60.0) * std::cos(j / 90.0));
  const Tensor image = f32(img, {768, 1024});
  const Tensor noisy_image = image + randn({768, 1024}) * 50.0;
  const Tensor smooth_image = convolve(noisy_image, window, "same");
  const auto rms_inside = [&](const Tensor& t) {  // away from the zero-padded border
    const Tensor d = narrow(narrow(t - image, 0, 3, 762), 1, 3, 1018);
    return std::sqrt(pow(d, 2.0).mean().item());
  };
  std::printf("image %s -> smooth_image %s; noise rms %.1f before, %.1f after\n",
              py_tuple(noisy_image.shape()).c_str(), py_tuple(smooth_image.shape()).c_str(),
              rms_inside(noisy_image), rms_inside(smooth_image));
  expect_shape(checks, smooth_image, {768, 1024}, "jsp.signal.convolve same");
  // On an image of ones the interior gives the window's sum and a corner its lower-right quarter:
  // that is where 'same' puts the zero padding.
  const Tensor ones_smooth = convolve(ones({768, 1024}), window, "same");
  double quarter = 0;
  for (std::size_t i = 3; i < 7; ++i)
    for (std::size_t j = 3; j < 7; ++j) quarter += pdf[i] * pdf[j];
  std::printf("on ones: interior %.8f (window sum 0.99945879), corner %.8f (quarter %.8f)\n",
              ones_smooth.at<float>({400, 500}), ones_smooth.at<float>({0, 0}), quarter);
  checks.expect(std::abs(ones_smooth.at<float>({400, 500}) - 0.9994587918263369) <= 1e-6,
                "2-D Gaussian: interior value is not the window's sum");
  checks.expect(std::abs(ones_smooth.at<float>({0, 0}) - quarter) <= 1e-6 &&
                    std::abs(ones_smooth.at<float>({767, 1023}) - quarter) <= 1e-6,
                "2-D Gaussian: corner values are not the window's quarter");
}

// The tutorial's first output channel around the first square, as the plot shows it.
void print_crop(const Tensor& nchw) {
  std::printf("First output channel, rows 28..41, columns 18..31 (around the first square):\n");
  for (std::int64_t r = 28; r < 42; ++r) {
    std::printf("  ");
    for (std::int64_t c = 18; c < 32; ++c) std::printf("%3.0f", nchw.at<float>({0, 0, r, c}));
    std::printf("\n");
  }
}

void jax_general(Checks& checks) {
  const Tensor img = jax_image(), kernel = jax_kernel();
  const Tensor img_nchw = nhwc_to_nchw(img);

  heading("JAX 3: the diagonal edge kernel and the synthetic image");
  std::printf(
      "Edge Conv kernel: kernel[:, :, 0, 0] of the HWIO %s kernel (every (I, O) pair "
      "holds the same 3x3):\n",
      py_tuple(kernel.shape()).c_str());
  std::printf("%s\n", numpy_text(kernel.narrow(2, 0, 1).narrow(3, 0, 1).reshape({3, 3})).c_str());
  std::printf(
      "Original Image: NHWC %s, squares of ones at rows 30/90/150, columns 20/80/140 of "
      "channels 0/1/2\n",
      py_tuple(img.shape()).c_str());
  checks.expect(img.sum().item() == 300.0, "the synthetic image does not hold 3 x 100 ones");

  heading("JAX 4: lax.conv (NCHW image, OIHW kernel, SAME)");
  std::printf("the convenience helpers assume NCHW images and OIHW kernels\n");
  const Tensor lax_conv =
      conv2d(img_nchw, hwio_to_oihw(kernel), {}, ConvOptions().padding(PaddingKind::Same));
  out_shape(lax_conv);
  expect_shape(checks, lax_conv, {1, 3, 200, 198}, "lax.conv");
  summary_line(checks, lax_conv, {0, 2664, 1332, -3, 3, 684}, "lax.conv");
  print_crop(lax_conv);

  heading("JAX 5: lax.conv_with_general_padding (padding ((2, 2), (2, 2)))");
  std::printf(
      "the kernel transposed [2, 3, 0, 1] is read as OIHW; two rows / columns of zeros "
      "on each side\n");
  const Tensor w_iohw = permute(kernel, {2, 3, 0, 1}).contiguous();
  const Tensor padded = conv2d(img_nchw, w_iohw, {}, ConvOptions().padding(Pads{{2, 2}, {2, 2}}));
  out_shape(padded);
  expect_shape(checks, padded, {1, 3, 202, 200}, "conv_with_general_padding");
  summary_line(checks, padded, {0, 2664, 1332, -3, 3, 684}, "conv_with_general_padding");

  heading("JAX 6: dimension numbers (NHWC image, HWIO kernel, NHWC output)");
  std::printf(
      "conv_general takes one layout string per operand, like lax.conv_dimension_numbers\n");
  const ConvDimensionNumbers nhwc{"NHWC", "HWIO", "NHWC"};
  print_dimension_numbers(
      checks, nhwc,
      "ConvDimensionNumbers(lhs_spec=(0, 3, 1, 2), rhs_spec=(3, 2, 0, 1), out_spec=(0, 3, 1, 2))");

  heading("JAX 7: conv_general_dilated, SAME padding, no stride, no dilation");
  const Tensor same = conv_general(img, kernel, general({1, 1}, PaddingKind::Same));
  out_shape(same);
  expect_shape(checks, same, {1, 200, 198, 3}, "SAME");
  summary_line(checks, same, {0, 2664, 1332, -3, 3, 684}, "SAME");
  const Specs sp = dimension_specs(nhwc);
  const bool agree = same_values(permute(same, sp.out).contiguous(), lax_conv);
  std::printf("permuted by out_spec it is lax.conv's NCHW result: %s\n", agree ? "yes" : "NO");
  checks.expect(agree, "conv_general NHWC and lax.conv NCHW results differ");

  heading("JAX 8: VALID padding, no stride, no dilation");
  const Tensor valid = conv_general(img, kernel, general({1, 1}, PaddingKind::Valid));
  out_shape(valid, " DIFFERENT from above!");
  expect_shape(checks, valid, {1, 198, 196, 3}, "VALID");
  summary_line(checks, valid, {0, 2664, 1332, -3, 3, 684}, "VALID");

  heading("JAX 9: SAME padding, 2,2 stride, no dilation");
  const Tensor strided = conv_general(img, kernel, general({2, 2}, PaddingKind::Same));
  out_shape(strided, "  <-- half the size of above");
  expect_shape(checks, strided, {1, 100, 99, 3}, "SAME stride 2");
  summary_line(checks, strided, {0, 684, 342, -2, 3, 180}, "SAME stride 2");

  heading("JAX 10: VALID padding, no stride, rhs (kernel) dilation 12 ~ atrous convolution");
  ConvGeneralOptions atrous = general({1, 1}, PaddingKind::Valid);
  atrous.rhs_dilation = {12, 12};
  const Tensor dilated = conv_general(img, kernel, atrous);
  out_shape(dilated);
  expect_shape(checks, dilated, {1, 176, 174, 3}, "rhs dilation 12");
  summary_line(checks, dilated, {240, 5160, 5160, -1, 1, 5160}, "rhs dilation 12");

  heading("JAX 11: VALID padding ((0, 0), (0, 0)), lhs (input) dilation 2 ~ transposed conv");
  ConvGeneralOptions lhs_dil = general({1, 1}, PaddingKind::Explicit);
  lhs_dil.padding = {{0, 0}, {0, 0}};
  lhs_dil.lhs_dilation = {2, 2};
  const Tensor larger = conv_general(img, kernel, lhs_dil);
  out_shape(larger, " <-- larger than original!");
  expect_shape(checks, larger, {1, 397, 393, 3}, "lhs dilation 2");
  summary_line(checks, larger, {0, 702, 702, -1, 1, 702}, "lhs dilation 2");

  heading("JAX 12: transposed conv = 180 deg kernel rotation plus lhs dilation");
  std::printf(
      "padding ((2, 1), (2, 1)) (the tutorial defines it; its call leaves it out, its "
      "printed shape needs it)\n");
  const Tensor kernel_rot = rot90(rot90(kernel, 1, {0, 1}), 1, {0, 1});
  ConvGeneralOptions tr = lhs_dil;
  tr.padding = {{2, 1}, {2, 1}};
  const Tensor transposed = conv_general(img, kernel_rot, tr);
  out_shape(transposed, " <-- transposed_conv");
  expect_shape(checks, transposed, {1, 400, 396, 3}, "transposed conv");
  summary_line(checks, transposed, {0, 702, 702, -1, 1, 702}, "transposed conv");
  // TensorFlow's conv2d_transpose(img, kernel, (N, 2H, 2W, C), (1, 2, 2, 1)) is the gradient of
  // the strided SAME convolution with respect to its input.
  Tensor z = zeros({1, 3, 400, 396}).requires_grad_(true);
  conv2d(z, hwio_to_oihw(kernel), {}, ConvOptions().stride(2).padding(PaddingKind::Same))
      .backward(img_nchw);
  const bool tf_ok = same_values(z.grad(), nhwc_to_nchw(transposed));
  // convtape's own: weight [C_in, C_out, kh, kw] is the forward conv's OIHW kernel.
  const Tensor t =
      conv_transpose2d(img_nchw, hwio_to_oihw(kernel), {}, ConvTransposeOptions().stride(2));
  const bool ct_ok =
      t.shape() == Shape{1, 3, 401, 397} &&
      same_values(narrow(narrow(t, 2, 0, 400), 3, 0, 396).contiguous(), nhwc_to_nchw(transposed));
  std::printf("tf.nn.conv2d_transpose (the gradient of conv2d stride 2 SAME): %s\n",
              tf_ok ? "equal" : "DIFFERENT");
  std::printf("conv_transpose2d(stride 2): %s, its first 400 x 396: %s\n",
              py_tuple(t.shape()).c_str(), ct_ok ? "equal" : "DIFFERENT");
  checks.expect(tf_ok, "transposed conv differs from the gradient of the strided conv");
  checks.expect(ct_ok, "transposed conv differs from conv_transpose2d");
}

void jax_1d(Checks& checks) {
  heading("JAX 13: 1D convolutions (NWC data, WIO kernel, NWC output, SAME)");
  // kernel = array([[[1, 0, -1], [-1, 0, 1]], [[1, 1, 1], [-1, -1, -1]]]).transpose([2, 1, 0])
  const Tensor oiw = f32({1, 0, -1, -1, 0, 1, 1, 1, 1, -1, -1, -1}, {2, 2, 3});
  const Tensor kernel = permute(oiw, {2, 1, 0}).contiguous();
  // data[0, x:x+30, k] = 1 with x = 35i + 30 + 60k
  std::vector<double> v(200 * 2, 0.0);
  for (std::int64_t i = 0; i < 2; ++i)
    for (std::int64_t k = 0; k < 2; ++k)
      for (std::int64_t x = 35 * i + 30 + 60 * k; x < 35 * i + 60 + 60 * k; ++x)
        v[static_cast<std::size_t>(x * 2 + k)] = 1.0;
  const Tensor data = f32(v, {1, 200, 2});
  std::printf("in shapes: %s %s\n", py_tuple(data.shape()).c_str(),
              py_tuple(kernel.shape()).c_str());
  expect_shape(checks, data, {1, 200, 2}, "1-D data");
  expect_shape(checks, kernel, {3, 2, 2}, "1-D kernel");
  const ConvDimensionNumbers dn{"NWC", "WIO", "NWC"};
  print_dimension_numbers(
      checks, dn,
      "ConvDimensionNumbers(lhs_spec=(0, 2, 1), rhs_spec=(2, 1, 0), out_spec=(0, 2, 1))");
  const Tensor out = conv_general(data, kernel, general({1}, PaddingKind::Same, dn));
  out_shape(out);
  expect_shape(checks, out, {1, 200, 2}, "1-D conv");
  summary_line(checks, out, {0, 974, 346, -3, 3, 134}, "1-D conv");
  const Tensor rows = narrow(out, 1, 29, 3).contiguous();
  std::printf("out[0, 29:32] (the first pulse's rising edge):\n%s\n",
              numpy_text(rows.reshape({3, 2})).c_str());
  expect_values(checks, rows, {-1, 1, -1, 2, 0, 3}, {1, 3, 2}, "1-D conv out[0, 29:32]");
  expect_values(checks, narrow(out, 1, 154, 3).contiguous(), {-1, -2, -1, -1, 0, 0}, {1, 3, 2},
                "1-D conv out[0, 154:157]");
}

void jax_3d(Checks& checks) {
  heading("JAX 14: 3D convolutions (NHWDC data, HWDIO kernel, NHWDC output, SAME)");
  const std::vector<double> k3 = {0,  0, 0,  0, 1, 0, 0, 0, 0, 0, -1, 0, -1, 0,
                                  -1, 0, -1, 0, 0, 0, 0, 0, 1, 0, 0,  0, 0};
  const Tensor kernel = f32(k3, {3, 3, 3, 1, 1});
  // data = sin(2 pi x) cos(2 pi y) cos(2 pi z) on np.mgrid[0:1:30j, 0:1:30j, 0:1:30j]
  const double pi = std::acos(-1.0);
  std::vector<double> v;
  for (int i = 0; i < 30; ++i)
    for (int j = 0; j < 30; ++j)
      for (int k = 0; k < 30; ++k)
        v.push_back(std::sin(2 * pi * i / 29.0) * std::cos(2 * pi * j / 29.0) *
                    std::cos(2 * pi * k / 29.0));
  const Tensor data = f32(v, {1, 30, 30, 30, 1});
  std::printf("in shapes: %s %s\n", py_tuple(data.shape()).c_str(),
              py_tuple(kernel.shape()).c_str());
  const ConvDimensionNumbers dn{"NHWDC", "HWDIO", "NHWDC"};
  print_dimension_numbers(checks, dn,
                          "ConvDimensionNumbers(lhs_spec=(0, 4, 1, 2, 3), rhs_spec=(4, 3, 0, 1, "
                          "2), out_spec=(0, 4, 1, 2, 3))");
  const Tensor out = conv_general(data, kernel, general({1, 1, 1}, PaddingKind::Same, dn));
  out_shape(out);
  expect_shape(checks, out, {1, 30, 30, 30, 1}, "3-D conv");
  const Summary s = summarize(out);
  std::printf(
      "  sum of squares %.4f, min %.6f, max %.6f, out[0, 1, 2, 3, 0] %.6f (JAX: "
      "10851.0335, -1.927577, 1.927577, -0.303376)\n",
      s.sumsq, s.min, s.max, out.at<float>({0, 1, 2, 3, 0}));
  checks.expect(std::abs(s.sumsq - 10851.033545330774) <= 1e-5 * 10851.0,
                "3-D conv: sum of squares differs from JAX's");
  checks.expect(
      std::abs(s.max - 1.927577018737793) <= 2e-6 && std::abs(s.min + 1.9275771379470825) <= 2e-6,
      "3-D conv: extremes differ from JAX's");
  const struct {
    std::vector<std::int64_t> at;
    double value;
  } spots[] = {{{0, 0, 0, 0, 0}, 0.2149704396724701},
               {{0, 1, 2, 3, 0}, -0.3033759891986847},
               {{0, 29, 29, 29, 0}, -0.21497096121311188},
               {{0, 10, 0, 5, 0}, -0.37863245606422424}};
  for (const auto& spot : spots)
    checks.expect(std::abs(out.at<float>(spot.at) - spot.value) <= 2e-6,
                  "3-D conv: value at " + py_tuple(spot.at) + " differs from JAX's");
}

// ================================================================================================
// Part 2: PuzzleLib's Conv2D page
// ================================================================================================

// customW(size): w1 = the identity, w2 = the anti-diagonal -1, -2, ..., -size; (2, 1, size, size).
Tensor custom_w(std::int64_t size) {
  std::vector<double> v(static_cast<std::size_t>(2 * size * size), 0.0);
  for (std::int64_t i = 0; i < size; ++i) {
    v[static_cast<std::size_t>(i * size + i)] = 1.0;
    v[static_cast<std::size_t>(size * size + i * size + (size - 1 - i))] = -(i + 1.0);
  }
  return f32(v, {2, 1, size, size});
}

// A layer with PuzzleLib's parameters and conv.setVar("W", customW(size)), applied to data.
Tensor puzzle_conv(const nn::ConvNdOptions& options, const Tensor& data) {
  nn::Conv2d conv(options);
  {
    NoGradGuard no_grad;
    conv.weight().copy_(custom_w(options.kernel_size()[0]));
  }
  return conv(data);
}

void puzzlelib_examples(Checks& checks) {
  using nn::Conv2dOptions;
  heading("PuzzleLib 1: the synthetic data and customW");
  const Tensor data = arange(25.0).reshape({1, 1, 5, 5});
  std::printf(">>> print(data)\n%s\n", numpy_text(data).c_str());
  std::printf(">>> print(customW(2))\n%s\n", numpy_text(custom_w(2)).c_str());
  expect_values(checks, custom_w(2), {1, 0, 0, 1, 0, -1, -2, 0}, {2, 1, 2, 2}, "customW(2)");

  struct Example {
    const char* title;
    const char* call;
    nn::ConvNdOptions options;
    std::vector<double> printed;
    Shape shape;
  };
  const std::vector<Example> examples = {
      {"the basic example: size 2, no padding, so the maps shrink",
       "Conv2D(inmaps=1, outmaps=2, size=2, useBias=False)",
       Conv2dOptions::puzzlelib({.inmaps = 1, .outmaps = 2, .size = 2, .useBias = false}),
       {6,   8,   10,  12,  16,  18,  20,  22,  26,  28,  30,  32,  36,  38,  40,  42,
        -11, -14, -17, -20, -26, -29, -32, -35, -41, -44, -47, -50, -56, -59, -62, -65},
       {1, 2, 4, 4}},
      {"size: a 3x3 filter",
       "Conv2D(inmaps=1, outmaps=2, size=3, useBias=False)",
       Conv2dOptions::puzzlelib({.inmaps = 1, .outmaps = 2, .size = 3, .useBias = false}),
       {18, 21, 24, 33, 36, 39, 48, 51, 54, -44, -50, -56, -74, -80, -86, -104, -110, -116},
       {1, 2, 3, 3}},
      {"pad: one ring of zeros keeps 5x5",
       "Conv2D(inmaps=1, outmaps=2, size=3, pad=1, useBias=False)",
       Conv2dOptions::puzzlelib({.inmaps = 1, .outmaps = 2, .size = 3, .pad = 1, .useBias = false}),
       {6,   8,   10,  12,  4,   16,  18,  21,   24,   12,   26,   33,  36,  39,  22,  36,  48,
        51,  54,  32,  20,  36,  38,  40,  42,   0,    -17,  -22,  -27, -32, -11, -44, -50, -56,
        -57, -26, -74, -80, -86, -82, -41, -104, -110, -116, -107, -56, -59, -62, -65, -48},
       {1, 2, 5, 5}},
      {"pad per dim: (1, 0)",
       "Conv2D(inmaps=1, outmaps=2, size=3, pad=(1, 0), useBias=False)",
       Conv2dOptions::puzzlelib(
           {.inmaps = 1, .outmaps = 2, .size = 3, .pad = {1, 0}, .useBias = false}),
       {8,   10,  12,  18,  21,  24,  33,  36,  39,  48,   51,   54,   36,  38,  40,
        -17, -22, -27, -44, -50, -56, -74, -80, -86, -104, -110, -116, -59, -62, -65},
       {1, 2, 5, 3}},
      {"stride 2",
       "Conv2D(inmaps=1, outmaps=2, size=2, stride=2, useBias=False)",
       Conv2dOptions::puzzlelib(
           {.inmaps = 1, .outmaps = 2, .size = 2, .stride = 2, .useBias = false}),
       {6, 10, 26, 30, -11, -17, -41, -47},
       {1, 2, 2, 2}},
      {"stride 2 with pad 3 gives back 5x5",
       "Conv2D(inmaps=1, outmaps=2, size=2, stride=2, pad=3, useBias=False)",
       Conv2dOptions::puzzlelib(
           {.inmaps = 1, .outmaps = 2, .size = 2, .stride = 2, .pad = 3, .useBias = false}),
       {0, 0, 0, 0, 0, 0, 0, 2,  4,  0, 0, 10, 18,  22,  0, 0, 20,  38,  42,  0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, -2, -6, 0, 0, -5, -29, -35, 0, 0, -15, -59, -65, 0, 0, 0, 0, 0, 0},
       {1, 2, 5, 5}},
      {"stride per dim: (2, 4)",
       "Conv2D(inmaps=1, outmaps=2, size=2, stride=(2, 4), pad=3, useBias=False)",
       Conv2dOptions::puzzlelib(
           {.inmaps = 1, .outmaps = 2, .size = 2, .stride = {2, 4}, .pad = 3, .useBias = false}),
       {0, 0, 0, 0, 2,  0, 0, 18,  0, 0, 38,  0, 0, 0, 0,
        0, 0, 0, 0, -2, 0, 0, -29, 0, 0, -59, 0, 0, 0, 0},
       {1, 2, 5, 3}},
      {"dilation 2: zeros inserted between the filter's taps",
       "Conv2D(inmaps=1, outmaps=2, size=2, stride=1, pad=0, dilation=2, useBias=False)",
       Conv2dOptions::puzzlelib({.inmaps = 1,
                                 .outmaps = 2,
                                 .size = 2,
                                 .stride = 1,
                                 .pad = 0,
                                 .dilation = 2,
                                 .useBias = false}),
       {12, 14, 16, 22, 24, 26, 32, 34, 36, -22, -25, -28, -37, -40, -43, -52, -55, -58},
       {1, 2, 3, 3}},
      {"dilation per dim: (3, 1)",
       "Conv2D(inmaps=1, outmaps=2, size=2, stride=1, pad=0, dilation=(3, 1), useBias=False)",
       Conv2dOptions::puzzlelib({.inmaps = 1,
                                 .outmaps = 2,
                                 .size = 2,
                                 .stride = 1,
                                 .pad = 0,
                                 .dilation = {3, 1},
                                 .useBias = false}),
       {16, 18, 20, 22, 26, 28, 30, 32, -31, -34, -37, -40, -46, -49, -52, -55},
       {1, 2, 2, 4}},
  };
  int n = 2;
  for (const Example& e : examples) {
    heading(("PuzzleLib " + std::to_string(n++) + ": " + e.title).c_str());
    if (std::string(e.call).find("pad=1,") != std::string::npos)
      std::printf("the padded map:\n%s\n", numpy_text(pad(data, {{1, 1}, {1, 1}})).c_str());
    const Tensor out = puzzle_conv(e.options, data);
    std::printf(">>> conv = %s\n>>> print(conv(data))\n%s\n", e.call, numpy_text(out).c_str());
    expect_shape(checks, out, e.shape, e.call);
    expect_values(checks, out, e.printed, e.shape, e.call);
  }

  heading(("PuzzleLib " + std::to_string(n++) + ": groups").c_str());
  std::printf("groups split the maps: each inmaps/groups inputs make outmaps/groups outputs\n");
  const Tensor x = randn({1, 16, 5, 5});
  for (std::int64_t groups : {1, 4}) {
    nn::Conv2d conv(Conv2dOptions::puzzlelib(16, 32, 2, 1, 0, 1, 1.0, true, "gaussian", groups));
    std::printf(
        ">>> conv = Conv2D(16, 32, size=2, initscheme=\"gaussian\", groups=%lld)\n"
        ">>> print(conv.W.shape)\n%s\n",
        static_cast<long long>(groups), py_tuple(conv.weight().shape()).c_str());
    expect_shape(checks, conv.weight(), {32, 16 / groups, 2, 2}, "groups weight");
    if (groups == 4) {
      // Output maps 8g..8g+7 come from input maps 4g..4g+3 alone.
      const Tensor out = conv(x);
      bool split = out.shape() == Shape{1, 32, 4, 4};
      for (std::int64_t g = 0; g < 4 && split; ++g)
        split = close_values(narrow(out, 1, 8 * g, 8).contiguous(),
                             conv2d(narrow(x, 1, 4 * g, 4).contiguous(),
                                    narrow(conv.weight(), 0, 8 * g, 8).contiguous(),
                                    narrow(conv.bias(), 0, 8 * g, 8).contiguous()),
                             1e-5);
      std::printf("output %s; maps 8g..8g+7 equal a plain conv of input maps 4g..4g+3: %s\n",
                  py_tuple(out.shape()).c_str(), split ? "yes" : "NO");
      checks.expect(split, "groups=4 is not four independent convolutions");
    }
  }

  heading(("PuzzleLib " + std::to_string(n++) + ": the depthwise separable block").c_str());
  std::printf("depthwise (inmaps == outmaps == groups) then pointwise (size 1)\n");
  nn::Sequential seq;
  seq.push_back("depthwise", std::make_shared<nn::Conv2d>(Conv2dOptions::puzzlelib(
                                 3, 3, 4, 1, 0, 1, 1.0, true, "gaussian", 3)));
  seq.push_back("pointwise", std::make_shared<nn::Conv2d>(Conv2dOptions::puzzlelib(
                                 3, 32, 1, 1, 0, 1, 1.0, true, "gaussian")));
  const auto weight_of = [&](const char* name) {
    return std::dynamic_pointer_cast<nn::Conv2d>(seq[name])->weight();
  };
  std::printf("%s\n", seq.str().c_str());
  std::printf(">>> print(seq[\"depthwise\"].W.shape)\n%s\n",
              py_tuple(weight_of("depthwise").shape()).c_str());
  std::printf(">>> print(seq[\"pointwise\"].W.shape)\n%s\n",
              py_tuple(weight_of("pointwise").shape()).c_str());
  expect_shape(checks, weight_of("depthwise"), {3, 1, 4, 4}, "depthwise W");
  expect_shape(checks, weight_of("pointwise"), {32, 3, 1, 1}, "pointwise W");
  const Tensor out = seq(randn({1, 3, 5, 5}));
  std::printf(">>> seq(data)  # data = randn(1, 3, 5, 5)\nout shape %s\n",
              py_tuple(out.shape()).c_str());
  expect_shape(checks, out, {1, 32, 2, 2}, "depthwise separable output");
}

// ================================================================================================
// Part 3: mygrad's conv_nd docstring
// ================================================================================================

void mygrad_examples(Checks& checks) {
  heading("mygrad 1: a square wave convolved with a constant kernel");
  std::printf("the length-5 kernel fits in 12 positions; the response is a triangle\n");
  std::vector<double> xv(16, 0.0);
  std::fill(xv.begin() + 5, xv.begin() + 11, 1.0);
  Tensor x = f32(xv, {1, 1, 16}).requires_grad_(true);  // x = zeros((1, 1, 16)); x[..., 5:11] = 1
  Tensor k = ones({1, 1, 5}).requires_grad_(true);      // k = ones((1, 1, 5))
  const Tensor y = conv(x, k, {}, ConvOptions().stride(1));
  std::printf(">>> conv_nd(x, k, stride=1)\nTensor(%s, dtype=float32)\n",
              numpy_text(y.detach(), ", ", 7).c_str());
  expect_values(checks, y.detach(), {0, 1, 2, 3, 4, 5, 5, 4, 3, 2, 1, 0}, {1, 1, 12},
                "conv_nd(x, k, stride=1)");
  y.sum().backward();
  std::printf(
      ">>> conv_nd(x, k, stride=1).sum().backward()\n>>> x.grad\narray(%s, dtype=float32)\n",
      numpy_text(x.grad(), ", ", 6).c_str());
  std::printf(">>> k.grad\narray(%s, dtype=float32)\n", numpy_text(k.grad(), ", ", 6).c_str());
  expect_values(checks, x.grad(), {1, 2, 3, 4, 5, 5, 5, 5, 5, 5, 5, 5, 4, 3, 2, 1}, {1, 1, 16},
                "x.grad");
  expect_values(checks, k.grad(), {6, 6, 6, 6, 6}, {1, 1, 5}, "k.grad");

  heading("mygrad 2: edge detection on each colour channel");
  std::printf(
      "an (H, W, 3) image as three greyscale images (3, 1, H, W); the meerkat photo is "
      "not in the docs, a synthetic one stands in\n");
  const std::int64_t h = 24, w = 30;
  std::vector<double> rgb(static_cast<std::size_t>(h * w * 3), 0.0);
  for (std::int64_t c = 0; c < 3; ++c)
    for (std::int64_t i = 4 + 2 * c; i < 14 + 2 * c; ++i)
      for (std::int64_t j = 5 + 3 * c; j < 20 + 3 * c; ++j)
        rgb[static_cast<std::size_t>((i * w + j) * 3 + c)] = 1.0;
  const Tensor img = f32(rgb, {h, w, 3});
  const Tensor xs = unsqueeze(permute(img, {2, 0, 1}), 1).contiguous();
  const Tensor kernel = f32({-1, -1, -1, -1, 8, -1, -1, -1, -1}, {1, 1, 3, 3});
  const Tensor processed =
      conv(xs, kernel, {}, ConvOptions().stride(std::vector<std::int64_t>{1, 1}));
  const Tensor hwc = permute(squeeze(processed), {1, 2, 0});
  std::printf("img %s -> x %s -> conv %s -> squeeze + transpose %s\n",
              py_tuple(img.shape()).c_str(), py_tuple(xs.shape()).c_str(),
              py_tuple(processed.shape()).c_str(), py_tuple(hwc.shape()).c_str());
  std::printf("flat %g, corner %g, edge %g (8 - 3 = 5 at a corner, 8 - 5 = 3 on an edge)\n",
              hwc.at<float>({8, 10, 0}), hwc.at<float>({3, 4, 0}), hwc.at<float>({3, 8, 0}));
  expect_shape(checks, hwc, {h - 2, w - 2, 3}, "edge detection");
  checks.expect(hwc.at<float>({8, 10, 0}) == 0.0f && hwc.at<float>({3, 4, 0}) == 5.0f &&
                    hwc.at<float>({3, 8, 0}) == 3.0f,
                "edge detection: flat / corner / edge responses are not 0 / 5 / 3");

  heading("mygrad 3: N-d shapes");
  std::printf("10 RGB 32x32 images, 5 kernels 3x2x2, stride 2 (non-overlapping placements)\n");
  const Tensor x2 = rand({10, 3, 32, 32}), k2 = rand({5, 3, 2, 2});
  const Tensor y2 = conv(x2, k2, {}, ConvOptions().stride(2));
  std::printf(">>> conv_nd(x, k, stride=2).shape\n%s\n", py_tuple(y2.shape()).c_str());
  expect_shape(checks, y2, {10, 5, 16, 16}, "2-D conv_nd");
  std::printf(
      "a spatial-3D batch: x (N=1, C=1, X=10, Y=12, Z=10), k (F=2, C=1, Wx=3, Wy=1, Wz=2)\n");
  const Tensor x3 = rand({1, 1, 10, 12, 10}), k3 = rand({2, 1, 3, 1, 2});
  const Tensor y3 = conv(x3, k3, {}, ConvOptions().stride(1));
  std::printf(">>> conv_nd(x, k, stride=1).shape\n%s\n", py_tuple(y3.shape()).c_str());
  expect_shape(checks, y3, {1, 2, 8, 12, 9}, "3-D conv_nd");
  // The docstring's code says rand(2, 1, 3, 1, 32): a typo, as a 32-wide kernel cannot fit Z = 10.
  try {
    conv(x3, rand({2, 1, 3, 1, 32}), {}, ConvOptions().stride(1));
    checks.expect(false, "the docstring's (2, 1, 3, 1, 32) kernel was not refused");
  } catch (const Error& e) {
    std::printf("the code's literal k = rand(2, 1, 3, 1, 32) (a typo) is refused:\n  %s\n",
                e.what());
    checks.expect(
        std::string(e.what()).find("no larger than the padded input") != std::string::npos,
        "the (2, 1, 3, 1, 32) kernel is refused with an unexpected message");
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t seed = 0;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      std::printf(
          "conv_tour: the convolution examples of JAX's generalized-convolutions tutorial,\n"
          "PuzzleLib's Conv2D page and mygrad's conv_nd docstring, run with convtape. Prints\n"
          "every shape and value the documents print and checks them; the exit status is 1 if\n"
          "any differs.\n"
          "  --seed S   seed of the noise and the random tensors (default 0); the checked\n"
          "             numbers do not depend on it\n");
      return 0;
    }
    if (!std::strcmp(argv[i], "--seed") && i + 1 < argc) {
      seed = std::strtoull(argv[++i], nullptr, 10);
    } else {
      std::fprintf(stderr, "conv_tour: unknown argument %s (try --help)\n", argv[i]);
      return 2;
    }
  }
  manual_seed(seed);
  Checks checks;
  try {
    std::printf("######## Part 1: JAX, \"Generalized convolutions in JAX\"\n");
    jax_smoothing_1d(checks);
    jax_smoothing_2d(checks);
    jax_general(checks);
    jax_1d(checks);
    jax_3d(checks);
    std::printf("\n######## Part 2: PuzzleLib, Conv2D\n");
    puzzlelib_examples(checks);
    std::printf("\n######## Part 3: mygrad, conv_nd\n");
    mygrad_examples(checks);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "conv_tour: stopped by an error: %s\n", e.what());
    return 1;
  }
  std::printf("\n%d checks against the seeds' numbers passed, %zu failed\n", checks.passed(),
              checks.failed().size());
  for (const std::string& f : checks.failed()) std::printf("  failed: %s\n", f.c_str());
  return checks.failed().empty() ? 0 : 1;
}
