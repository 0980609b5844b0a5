// CUDA pooling (our own kernels, cuda/pool.cu) against the CPU backend through the public ops:
// max_pool(1d/2d/3d), max_pool_with_indices, avg_pool(1d/2d/3d), max_unpool(1d/2d/3d),
// adaptive_max_pool(_with_indices), adaptive_avg_pool and global_avg_pool.
// - Forward and backward on CPU and CUDA copies of the same inputs with one upstream gradient
//   (the op harness, support/op_check.h):
//   float32 within rtol 1e-4 / atol 1e-5, float64 within 1e-12; max values and argmax indices
//   exactly (the tie and NaN rules are the CPU's). A seeded sweep over spatial ranks 1 to 3,
//   strides, default strides, symmetric and per-side padding, dilation, ceil_mode,
//   count_include_pad and divisor_override, adaptive sizes that do and do not divide the input,
//   and windows wide enough to be split over several threads per output.
// - Ties, NaN and padding give the CPU's indices (all-padding windows its error); max_unpool with
//   duplicate indices keeps the later source as the CPU does; bad unpool indices give the CPU's
//   error, from the front end and from the kernel itself.
// - float64 gradcheck on the GPU of max_pool (no ties), avg_pool, the adaptive pools,
//   global_avg_pool and max_unpool; empty batches, strided views and the kernels' own argument
//   errors.
// - Windows of -inf (the argmax is the first input element, PyTorch's rule) and arguments near
//   2^63 (kernels of 2^62 and 2^63 - 1 with huge padding, stride 2^63 - 1): values, indices and
//   gradients equal to the CPU's.
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cuda/pool.h"
#include "support/draw.h"
#include "support/op_check.h"

namespace {

using namespace convtape;
using Fn = std::function<Tensor(const std::vector<Tensor>&)>;
using ct_test::Pads;

const Device kGpu(DeviceType::CUDA, 0);  // named only: the main checks that it exists

using ct_test::close;
using ct_test::Draw;
using ct_test::kExact;

// Forward and backward of fn on CPU and CUDA copies of x (float64 values, rounded for float32):
// the output compared exactly when `exact`, the gradient within the dtype's tolerance.
void compare(const std::string& name, const Fn& fn, const Tensor& x, bool exact,
             std::uint64_t seed = 1) {
  ct_test::OpCheck check(name, fn, {x.detach().requires_grad_(true)});
  check.cuda_only().upstream_seed(seed + 17);
  if (exact)
    for (const DType dtype : {kFloat32, kFloat64})
      check.tolerance(dtype, kExact, ct_test::default_tolerance(dtype));
  check.run();
}

Tensor uniform_values(const Shape& shape, DType dtype, std::uint64_t seed) {
  Generator gen(seed);
  return uniform(shape, -1.0, 1.0, kFloat64, &gen).to(dtype);
}

Tensor small_ints(const Shape& shape, DType dtype, Draw& d) {
  std::vector<double> v(static_cast<std::size_t>(numel(shape)));
  for (auto& e : v) e = static_cast<double>(d(-4, 4));
  return tensor(v, shape, dtype);
}

// Distinct values 0.05 apart in a shuffled order (float64): max pooling without ties.
Tensor distinct(const Shape& shape, Draw& d) {
  const std::int64_t n = numel(shape);
  std::vector<double> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = 0.05 * double(i - n / 2);
  for (std::int64_t i = n - 1; i > 0; --i)
    std::swap(v[static_cast<std::size_t>(i)], v[static_cast<std::size_t>(d(0, i))]);
  return tensor(v, shape, kFloat64);
}

// A random pooling within ops/pool.cpp's limits, as options.
struct Spec {
  Shape x;
  PoolOptions options;
  std::string text;
};

Spec random_pool(Draw& d, std::size_t rank, bool max) {
  Spec sp;
  sp.x = {d(1, 3), d(1, 4)};
  Shape kernel, stride, dilation;
  Pads pads;
  const bool given_stride = !d.one_in(4), symmetric = !d.one_in(3), ceil = d.one_in(2);
  for (std::size_t i = 0; i < rank; ++i) {
    const std::int64_t k = d(1, 4);
    kernel.push_back(k);
    stride.push_back(given_stride ? d(1, 3) : k);
    dilation.push_back(max && d.one_in(3) ? 2 : 1);
    const std::int64_t lo = d(0, k / 2), hi = symmetric ? lo : d(0, k / 2);
    pads.emplace_back(lo, hi);
    const std::int64_t window = dilation.back() * (k - 1) + 1;
    sp.x.push_back(std::max(window - lo - hi, dilation.back()) + d(0, 6));
  }
  PoolOptions o(kernel);
  if (given_stride) o.stride(stride);
  o.padding(pads).ceil_mode(ceil);
  std::ostringstream s;
  s << "kernel " << to_string(kernel) << " stride " << (given_stride ? to_string(stride) : "-")
    << " padding";
  for (const auto& p : pads) s << " (" << p.first << ", " << p.second << ")";
  if (max) {
    o.dilation(dilation);
    s << " dilation " << to_string(dilation);
  } else {
    const bool include = !d.one_in(2);
    o.count_include_pad(include);
    if (!include) s << " exclude_pad";
    if (d.one_in(4)) {
      const std::int64_t div = d(1, 6) * (d.one_in(5) ? -1 : 1);
      o.divisor_override(div);
      s << " divisor " << div;
    }
  }
  if (ceil) s << " ceil_mode";
  sp.options = o;
  sp.text = s.str();
  return sp;
}

}  // namespace

TEST_CASE("max_pool and avg_pool on CUDA match the CPU over a seeded sweep", "[cuda][pool]") {
  Draw d(606u);
  for (int i = 0; i < 48; ++i) {
    const auto rank = static_cast<std::size_t>(1 + i % 3);
    const bool max = i % 2 == 0;
    const Spec sp = random_pool(d, rank, max);
    const PoolOptions o = sp.options;
    const Fn fn = max ? Fn([o](const std::vector<Tensor>& v) { return max_pool(v[0], o); })
                      : Fn([o](const std::vector<Tensor>& v) { return avg_pool(v[0], o); });
    compare((max ? "max_pool " : "avg_pool ") + sp.text, fn,
            uniform_values(sp.x, kFloat64, 100 + static_cast<std::uint64_t>(i)), max,
            static_cast<std::uint64_t>(i));
  }
}

TEST_CASE("the rank-checked pooling wrappers on CUDA match the CPU", "[cuda][pool]") {
  const PoolOptions o = PoolOptions(3).stride(2).padding(1);
  compare(
      "max_pool1d", [o](const std::vector<Tensor>& v) { return max_pool1d(v[0], o); },
      uniform_values({2, 3, 17}, kFloat64, 1), true);
  compare(
      "max_pool2d", [o](const std::vector<Tensor>& v) { return max_pool2d(v[0], o); },
      uniform_values({2, 3, 9, 10}, kFloat64, 2), true);
  compare(
      "max_pool3d", [o](const std::vector<Tensor>& v) { return max_pool3d(v[0], o); },
      uniform_values({1, 2, 5, 6, 7}, kFloat64, 3), true);
  compare(
      "avg_pool1d", [o](const std::vector<Tensor>& v) { return avg_pool1d(v[0], o); },
      uniform_values({2, 3, 17}, kFloat64, 4), false);
  compare(
      "avg_pool2d", [o](const std::vector<Tensor>& v) { return avg_pool2d(v[0], o); },
      uniform_values({2, 3, 9, 10}, kFloat64, 5), false);
  compare(
      "avg_pool3d", [o](const std::vector<Tensor>& v) { return avg_pool3d(v[0], o); },
      uniform_values({1, 2, 5, 6, 7}, kFloat64, 6), false);
  // A ResNet stem's pooling on a realistic map.
  compare(
      "resnet max_pool2d",
      [](const std::vector<Tensor>& v) {
        return max_pool2d(v[0], PoolOptions(3).stride(2).padding(1));
      },
      uniform_values({8, 64, 56, 56}, kFloat64, 7), true);
}

TEST_CASE("adaptive pooling and global_avg_pool on CUDA match the CPU", "[cuda][pool]") {
  Draw d(4242u);
  for (int i = 0; i < 36; ++i) {
    const auto rank = static_cast<std::size_t>(1 + i % 3);
    Shape x{d(1, 3), d(1, 3)}, out;
    const bool divides = d.one_in(3);
    for (std::size_t k = 0; k < rank; ++k) {
      out.push_back(d(1, 5));
      x.push_back(divides ? out.back() * d(1, 3) : d(1, 11));
    }
    const bool max = i % 2 == 0;
    const Fn fn =
        max ? Fn([out](const std::vector<Tensor>& v) { return adaptive_max_pool(v[0], out); })
            : Fn([out](const std::vector<Tensor>& v) { return adaptive_avg_pool(v[0], out); });
    compare(std::string(max ? "adaptive_max_pool to " : "adaptive_avg_pool to ") + to_string(out),
            fn, uniform_values(x, kFloat64, 300 + static_cast<std::uint64_t>(i)), max);
  }
  const Fn global = [](const std::vector<Tensor>& v) { return global_avg_pool(v[0]); };
  compare("global_avg_pool", global, uniform_values({4, 16, 7, 7}, kFloat64, 8), false);
  compare("global_avg_pool 1-d", global, uniform_values({3, 5, 33}, kFloat64, 9), false);
}

TEST_CASE("wide windows split over several threads per output match the CPU", "[cuda][pool]") {
  // Few outputs with windows of thousands of elements: the kernels split each window over lanes
  // and combine the partial results in a second pass.
  const Tensor x = uniform_values({2, 3, 160, 170}, kFloat64, 11);
  compare(
      "global_avg_pool", [](const std::vector<Tensor>& v) { return global_avg_pool(v[0]); }, x,
      false);
  compare(
      "adaptive_max_pool to 1 x 1",
      [](const std::vector<Tensor>& v) {
        return adaptive_max_pool(v[0], {1, 1});
      },
      x, true);
  compare(
      "adaptive_avg_pool to 2 x 3 (not dividing)",
      [](const std::vector<Tensor>& v) {
        return adaptive_avg_pool(v[0], {2, 3});
      },
      x, false);
  compare(
      "adaptive_max_pool to 3 x 2 (not dividing)",
      [](const std::vector<Tensor>& v) {
        return adaptive_max_pool(v[0], {3, 2});
      },
      x, true);
  compare(
      "max_pool with a 70 x 80 kernel",
      [](const std::vector<Tensor>& v) {
        return max_pool2d(v[0], PoolOptions({70, 80}).stride({45, 40}));
      },
      x, true);
  // Ties and NaN across lanes: the first maximal element and the first NaN, as on the CPU.
  Draw d(12u);
  const Tensor ties = small_ints({1, 2, 100, 90}, kFloat32, d);
  const auto a = adaptive_max_pool_with_indices(ties, {1, 1});
  const auto b = adaptive_max_pool_with_indices(ties.to(kGpu), {1, 1});
  CHECK(close(b.values.cpu(), a.values, kExact));
  CHECK(b.indices.cpu().to_vector<std::int64_t>() == a.indices.to_vector<std::int64_t>());
  Tensor with_nan = ties.clone();
  with_nan.put_({0, 0, 70, 3}, std::nan(""));
  with_nan.put_({0, 0, 20, 50}, std::nan(""));
  with_nan.put_({0, 1, 99, 89}, std::nan(""));
  const auto c = adaptive_max_pool_with_indices(with_nan, {1, 1});
  const auto e = adaptive_max_pool_with_indices(with_nan.to(kGpu), {1, 1});
  CHECK(e.indices.cpu().to_vector<std::int64_t>() ==
        std::vector<std::int64_t>{20 * 90 + 50, 99 * 90 + 89});
  CHECK(e.indices.cpu().to_vector<std::int64_t>() == c.indices.to_vector<std::int64_t>());
  CHECK(close(e.values.cpu(), c.values, kExact));
}

TEST_CASE("max_pool_with_indices on CUDA: ties, NaN, padding and empty windows as on the CPU",
          "[cuda][pool]") {
  Draw d(31337u);
  // Small integers: ties in almost every window.
  for (int i = 0; i < 30; ++i) {
    const Spec sp = random_pool(d, static_cast<std::size_t>(1 + i % 3), true);
    INFO(sp.text << " x " << to_string(sp.x));
    const DType dtype = i % 2 == 0 ? kFloat32 : kFloat64;
    const Tensor x = small_ints(sp.x, dtype, d);
    const PoolWithIndices want = max_pool_with_indices(x, sp.options);
    const PoolWithIndices got = max_pool_with_indices(x.to(kGpu), sp.options);
    REQUIRE(got.indices.is_cuda());
    CHECK(close(got.values.cpu(), want.values, kExact));
    CHECK(got.indices.cpu().to_vector<std::int64_t>() == want.indices.to_vector<std::int64_t>());
    // The gradient goes to the same elements (small-integer sums are exact in any order).
    const Tensor g = small_ints(want.values.shape(), dtype, d);
    const Tensor xc = x.clone().requires_grad_(true);
    const Tensor xg = x.to(kGpu).detach().requires_grad_(true);
    max_pool(xc, sp.options).backward(g);
    max_pool(xg, sp.options).backward(g.to(kGpu));
    CHECK(close(xg.grad().cpu(), xc.grad(), kExact));
  }
  // NaN: the first NaN of each window, in row-major order.
  const Tensor x = tensor({1, std::nan(""), 3, 2, 5, 0, std::nan(""), 4}, {1, 1, 8});
  const PoolWithIndices r = max_pool_with_indices(x.to(kGpu), PoolOptions(4));
  CHECK(r.indices.cpu().to_vector<std::int64_t>() == std::vector<std::int64_t>{1, 6});
  Tensor z = zeros({1, 1, 2, 2});
  z.put_({0, 0, 0, 1}, std::nan(""));
  z.put_({0, 0, 1, 0}, std::nan(""));
  CHECK(max_pool_with_indices(z.to(kGpu), PoolOptions(2)).indices.item<std::int64_t>() == 1);
  // Padding never wins over negative inputs.
  const Tensor neg = arange(-16.0, 0.0).reshape({1, 1, 4, 4});
  const PoolWithIndices rp =
      max_pool_with_indices(neg.to(kGpu), PoolOptions(3).stride(2).padding(1));
  CHECK(rp.values.cpu().to_vector<double>() == std::vector<double>{-11, -9, -3, -1});
  CHECK(rp.indices.cpu().to_vector<std::int64_t>() == std::vector<std::int64_t>{5, 7, 13, 15});
  // A dilated window of padding only is refused before any kernel runs, as on the CPU.
  const Tensor one = tensor({4}, {1, 1, 1}).to(kGpu);
  CT_REQUIRE_ERROR(max_pool_with_indices(one, PoolOptions(2).stride(1).dilation(2).padding(1)),
                   "max_pool_with_indices: expected every dilated window to hold an input element");
}

TEST_CASE("max_unpool on CUDA matches the CPU, duplicate indices included", "[cuda][pool]") {
  Draw d(99u);
  struct Case {
    Shape pooled;
    PoolOptions o;
    Shape size;
  };
  const std::vector<Case> cases{
      {{2, 2, 9}, PoolOptions(2), {}},
      {{1, 2, 10}, PoolOptions(3).stride(3).padding(1), {10}},
      {{2, 1, 6, 7}, PoolOptions(2), {6, 7}},
      {{1, 2, 7, 8}, PoolOptions({2, 3}).stride({2, 3}).padding({1, 0}), {7, 8}},
      {{1, 1, 4, 5, 4}, PoolOptions(2), {4, 5, 4}},
      // Overlapping windows (stride 1): the same argmax in several windows.
      {{2, 3, 8, 8}, PoolOptions(3).stride(1), {}},
  };
  for (const auto& c : cases) {
    for (const DType dtype : {kFloat32, kFloat64}) {
      INFO(to_string(c.pooled) << " " << dtype_name(dtype));
      const Tensor x = small_ints(c.pooled, dtype, d);
      const PoolWithIndices p = max_pool_with_indices(x, c.o);
      const PoolOptions o = c.o;
      const Shape size = c.size;
      // Different values per source, so that which duplicate wins shows; the output exactly.
      const Tensor src = uniform_values(p.values.shape(), dtype, 21);
      ct_test::OpCheck(
          "max_unpool",
          [o, size](const std::vector<Tensor>& v) { return max_unpool(v[0], v[1], o, size); },
          {src.detach().to(kFloat64).requires_grad_(true), p.indices})
          .cuda_only()
          .dtypes({dtype})
          .tolerance(dtype, kExact, ct_test::default_tolerance(dtype))
          .upstream_seed(18)
          .run();
    }
  }
  const Tensor v = tensor({1, 2, 3, 4}, {1, 1, 4});
  const Tensor dup = from_vector(std::vector<std::int64_t>{1, 1, 0, 1}, {1, 1, 4});
  const PoolOptions o1 = PoolOptions(2).stride(1);
  CHECK(max_unpool1d(v.to(kGpu), dup.to(kGpu), o1).cpu().to_vector<double>() ==
        std::vector<double>{3, 4, 0, 0, 0});
  CHECK(close(max_unpool1d(v.to(kGpu), dup.to(kGpu), o1).cpu(), max_unpool1d(v, dup, o1), kExact));
}

TEST_CASE("bad max_unpool indices on CUDA give the CPU's error", "[cuda][pool][errors]") {
  const Tensor odd = arange(15.0).reshape({1, 1, 3, 5});
  const PoolOptions o = PoolOptions(2);
  const PoolWithIndices r = max_pool_with_indices(odd, o);
  std::string cpu_message, gpu_message;
  try {
    max_unpool2d(r.values, r.indices, o);
  } catch (const Error& e) {
    cpu_message = e.message();
  }
  try {
    max_unpool2d(r.values.to(kGpu), r.indices.to(kGpu), o);
  } catch (const Error& e) {
    gpu_message = e.message();
  }
  CHECK(cpu_message.find("max_unpool2d: expected indices in [0, 8) (the output plane 2 x 4), got "
                         "8") != std::string::npos);
  CHECK(gpu_message == cpu_message);
  // The kernel's own check, which a caller bypassing the front end meets: the smallest flat
  // position of an index past the plane, with the front end's wording.
  const Tensor src = tensor({1, 2, 3, 4, 5, 6}, {2, 1, 3}).to(kGpu);
  const Tensor bad = from_vector(std::vector<std::int64_t>{0, 1, 2, 0, 9, 3}, {2, 1, 3}).to(kGpu);
  CT_REQUIRE_ERROR(cuda::index_scatter(src, bad, {3}, /*accumulate=*/false),
                   "max_unpool: expected indices in [0, 3) (the output plane 3), got 9 at flat "
                   "position 4");
  // Negative indices are skipped by the kernel (the front end refuses them).
  const Tensor skip = from_vector(std::vector<std::int64_t>{-1, 1, 2, 0, -1, -1}, {2, 1, 3});
  CHECK(cuda::index_scatter(src, skip.to(kGpu), {3}, false).cpu().to_vector<double>() ==
        std::vector<double>{0, 2, 3, 4, 0, 0});
}

TEST_CASE("pooling on CUDA: float64 gradcheck on the GPU", "[cuda][pool][gradcheck]") {
  Draw d(2024u);
  const auto gpu_leaf = [](const Tensor& t) { return t.to(kGpu).detach().requires_grad_(true); };
  for (int i = 0; i < 6; ++i) {
    const Spec sp = random_pool(d, static_cast<std::size_t>(1 + i % 3), true);
    INFO("max_pool " << sp.text << " x " << to_string(sp.x));
    const PoolOptions o = sp.options;
    CT_REQUIRE_GRADCHECK([o](const std::vector<Tensor>& v) { return max_pool(v[0], o); },
                         std::vector<Tensor>{gpu_leaf(distinct(sp.x, d))});
  }
  manual_seed(5);
  for (int i = 0; i < 6; ++i) {
    const Spec sp = random_pool(d, static_cast<std::size_t>(1 + i % 3), false);
    INFO("avg_pool " << sp.text << " x " << to_string(sp.x));
    const PoolOptions o = sp.options;
    CT_REQUIRE_GRADCHECK([o](const std::vector<Tensor>& v) { return avg_pool(v[0], o); },
                         std::vector<Tensor>{gpu_leaf(ct_test::leaf(sp.x))});
  }
  for (const Shape& out : {Shape{2, 3}, Shape{3}, Shape{5, 2}}) {
    const Shape x = out.size() == 1 ? Shape{2, 2, 7} : Shape{1, 2, 7, 5};
    CT_REQUIRE_GRADCHECK(
        [out](const std::vector<Tensor>& v) { return adaptive_avg_pool(v[0], out); },
        std::vector<Tensor>{gpu_leaf(ct_test::leaf(x))});
    CT_REQUIRE_GRADCHECK(
        [out](const std::vector<Tensor>& v) { return adaptive_max_pool(v[0], out); },
        std::vector<Tensor>{gpu_leaf(distinct(x, d))});
  }
  CT_REQUIRE_GRADCHECK([](const std::vector<Tensor>& v) { return global_avg_pool(v[0]); },
                       std::vector<Tensor>{gpu_leaf(ct_test::leaf({2, 3, 4, 5}))});
  const PoolOptions o = PoolOptions(2).stride(2).padding(1);
  const PoolWithIndices p = max_pool_with_indices(distinct({1, 2, 7, 6}, d), o);
  const Tensor ind = p.indices.to(kGpu);
  const Shape size{7, 6};
  const auto unpool = [ind, o, size](const std::vector<Tensor>& v) {
    return max_unpool(v[0], ind, o, size);
  };
  CT_REQUIRE_GRADCHECK(unpool, std::vector<Tensor>{gpu_leaf(ct_test::leaf(p.values.shape()))});
}

TEST_CASE("pooling on CUDA: empty batches, strided views and kernel argument errors",
          "[cuda][pool]") {
  Tensor x = zeros({0, 3, 6, 6}, TensorOptions().device(kGpu).requires_grad(true));
  const Tensor y = max_pool2d(x, PoolOptions(2));
  CHECK(y.shape() == Shape{0, 3, 3, 3});
  CHECK(y.is_cuda());
  y.backward(zeros({0, 3, 3, 3}, kGpu));
  CHECK(x.grad().shape() == Shape{0, 3, 6, 6});
  CHECK(avg_pool2d(zeros({2, 0, 6, 6}, kGpu), PoolOptions(3)).shape() == Shape{2, 0, 2, 2});
  CHECK(global_avg_pool(zeros({3, 0, 4, 4}, kGpu)).shape() == Shape{3, 0, 1, 1});
  // A permuted (non-contiguous) device input reads like its contiguous copy.
  const Tensor base = uniform_values({2, 6, 5, 3}, kFloat64, 3).to(kGpu);
  const Tensor v = permute(base, {0, 3, 2, 1});
  REQUIRE_FALSE(v.is_contiguous());
  const PoolOptions o = PoolOptions(3).stride(2).padding(1);
  CHECK(close(max_pool2d(v, o).cpu(), max_pool2d(v.cpu(), o), kExact));
  CHECK(ct_test::allclose(avg_pool2d(v, o).cpu(), avg_pool2d(v.cpu(), o), 1e-12, 1e-12));
  // The kernels' own checks (the front ends never pass such operands).
  PoolGeometry g;
  g.batch = 1;
  g.channels = 1;
  g.in = {4};
  g.out = {2};
  g.kernel = {2};
  g.stride = {2};
  g.dilation = {1};
  g.pad_lo = {0};
  g.pad_hi = {0};
  CT_REQUIRE_ERROR(cuda::max_pool_forward(zeros({1, 1, 4}), g, true),
                   "max_pool: expected input on a CUDA device, got one on cpu");
  CT_REQUIRE_ERROR(cuda::avg_pool_forward(zeros({1, 1, 5}, kGpu), g),
                   "avg_pool: expected input of shape [1, 1, 4], got [1, 1, 5]");
  CT_REQUIRE_ERROR(cuda::avg_pool_forward(zeros({1, 1, 4}, TensorOptions(kInt64).device(kGpu)), g),
                   "avg_pool: expected input of dtype float32 or float64, got int64");
  const Tensor wide = zeros({1, 1, 8}, kGpu);
  CT_REQUIRE_ERROR(cuda::max_pool_forward(slice(wide, 2, 0, 8, 2), g, false),
                   "max_pool: expected contiguous input, got strides [8, 8, 2]");
  CT_REQUIRE_ERROR(cuda::index_gather(zeros({1, 1, 4}, kGpu), zeros({1, 1, 2}, kGpu)),
                   "max_unpool: expected int64 indices, got float32");
}

TEST_CASE("pooling on CUDA: -inf windows and arguments near 2^63 as on the CPU",
          "[cuda][pool][limits]") {
  const double inf = std::numeric_limits<double>::infinity();
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  constexpr std::int64_t k2p61 = std::int64_t{1} << 61, k2p62 = std::int64_t{1} << 62;
  Draw d(4242u);
  // Inputs of small integers of which about half are -inf, and all -inf planes.
  auto with_inf = [&](const Shape& shape, bool all) {
    std::vector<double> v(static_cast<std::size_t>(numel(shape)));
    for (auto& e : v) e = all || d.one_in(2) ? -inf : static_cast<double>(d(-4, 4));
    return tensor(v, shape, kFloat64);
  };
  struct Case {
    const char* name;
    Shape x;
    PoolOptions o;
    bool avg = true;  // average pooling has no dilation
  };
  const std::vector<Case> cases = {
      {"plain", {2, 3, 6, 6}, PoolOptions(2)},
      {"padded", {2, 3, 5, 5}, PoolOptions(3).stride(2).padding(1)},
      {"dilated", {1, 2, 9}, PoolOptions(2).dilation(2).padding(1), false},
      {"ceil_mode", {1, 2, 5, 6}, PoolOptions(2).stride(2).padding(1).ceil_mode()},
      {"3-d", {1, 1, 2, 3, 3}, PoolOptions(2).stride(2).padding(1)},
      {"kernel 2^62, padding 2^61", {1, 2, 4, 4}, PoolOptions(k2p62).stride(1).padding(k2p61)},
      {"kernel 2^62, stride 2^61 - 1, ceil_mode",
       {2, 1, 5},
       PoolOptions(k2p62).stride(k2p61 - 1).padding(k2p61).ceil_mode()},
      {"kernel 2^63 - 1", {1, 1, 3, 3}, PoolOptions(kMax).stride(1).padding(k2p62 - 1)},
      {"stride 2^63 - 1", {1, 1, 5}, PoolOptions(3).stride(kMax).padding(1).ceil_mode()},
  };
  for (const Case& c : cases) {
    for (const bool all : {false, true}) {
      INFO(c.name << (all ? " (all -inf)" : ""));
      const Tensor x = with_inf(c.x, all);
      const PoolWithIndices want = max_pool_with_indices(x, c.o);
      const PoolWithIndices got = max_pool_with_indices(x.to(kGpu), c.o);
      CHECK(close(got.values.cpu(), want.values, kExact));
      CHECK(got.indices.cpu().to_vector<std::int64_t>() == want.indices.to_vector<std::int64_t>());
      for (std::int64_t i : want.indices.to_vector<std::int64_t>()) CHECK(i >= 0);
      const Tensor g = small_ints(want.values.shape(), kFloat64, d);
      const Tensor xc = x.clone().requires_grad_(true);
      const Tensor xg = x.to(kGpu).detach().requires_grad_(true);
      max_pool(xc, c.o).backward(g);
      max_pool(xg, c.o).backward(g.to(kGpu));
      CHECK(close(xg.grad().cpu(), xc.grad(), kExact));
      if (c.avg) {
        const Tensor finite = small_ints(c.x, kFloat64, d);
        CHECK(close(avg_pool(finite.to(kGpu), c.o).cpu(), avg_pool(finite, c.o), kExact));
      }
    }
  }
  // Adaptive windows and whole planes wide enough to be split over several threads per output.
  for (const Shape& out : {Shape{3, 2}, Shape{1, 1}}) {
    const Tensor x = with_inf({2, 2, 70, 90}, true);
    const PoolWithIndices want = adaptive_max_pool_with_indices(x, out);
    const PoolWithIndices got = adaptive_max_pool_with_indices(x.to(kGpu), out);
    CHECK(got.indices.cpu().to_vector<std::int64_t>() == want.indices.to_vector<std::int64_t>());
  }
}
