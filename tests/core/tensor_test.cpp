// Tensor basics: factories, metadata, views sharing storage, element access, conversions,
// in-place writes, printing, and the error for each misuse.
#include "support/test_util.h"

using namespace convtape;
using ct_test::equal;

TEST_CASE("factories fill, shape and type tensors", "[tensor]") {
  const Tensor z = zeros({2, 3});
  CHECK(z.shape() == Shape{2, 3});
  CHECK(z.dtype() == kFloat32);
  CHECK(z.is_cpu());
  CHECK(z.numel() == 6);
  CHECK(z.to_vector<float>() == std::vector<float>(6, 0.0f));
  CHECK(ones({4}, kFloat64).to_vector<double>() == std::vector<double>(4, 1.0));
  CHECK(full({2, 2}, 2.5).to_vector<float>() == std::vector<float>(4, 2.5f));
  CHECK(arange(5).to_vector<float>() == std::vector<float>{0, 1, 2, 3, 4});
  CHECK(arange(1, 2, 0.25, kFloat64).to_vector<double>() ==
        std::vector<double>{1, 1.25, 1.5, 1.75});
  CHECK(arange(3, 0, -1).to_vector<float>() == std::vector<float>{3, 2, 1});
  const auto ls = linspace(-3, 3, 7, kFloat64).to_vector<double>();
  CHECK(ls == std::vector<double>{-3, -2, -1, 0, 1, 2, 3});
  CHECK(linspace(0, 1, 1).to_vector<float>() == std::vector<float>{0});
  const Tensor t = tensor({1, 2, 3, 4, 5, 6}, {2, 3}, kFloat64);
  CHECK(t.at<double>({1, 2}) == 6);
  CHECK(t.at<double>({-1, 0}) == 4);
  CHECK(from_vector(std::vector<std::int64_t>{3, 1}, {2}).dtype() == kInt64);
  CHECK(zeros_like(t).dtype() == kFloat64);
  CHECK(full_like(t, 7).to_vector<double>() == std::vector<double>(6, 7));
  CHECK(tensor({5}, Shape{}).dim() == 0);
  CHECK(tensor({5}, Shape{}).item() == 5);
}

TEST_CASE("random factories are reproducible from a seed", "[tensor][random]") {
  manual_seed(42);
  const auto a = randn({100}, kFloat64).to_vector<double>();
  const auto u = rand({50}).to_vector<float>();
  manual_seed(42);
  CHECK(randn({100}, kFloat64).to_vector<double>() == a);
  CHECK(rand({50}).to_vector<float>() == u);
  for (float v : u) CHECK((v >= 0.0f && v < 1.0f));
  double m = 0, s = 0;
  for (double v : a) m += v / 100;
  for (double v : a) s += (v - m) * (v - m) / 99;
  CHECK(std::abs(m) < 0.35);
  CHECK(std::abs(s - 1.0) < 0.4);
  Generator g(1);
  const auto r = randint(0, 10, {200}, kInt64, &g).to_vector<std::int64_t>();
  for (auto v : r) CHECK((v >= 0 && v < 10));
  const auto un = uniform({100}, 2.0, 3.0, kFloat64, &g).to_vector<double>();
  for (double v : un) CHECK((v >= 2.0 && v < 3.0));
  const auto nm = normal({1000}, 5.0, 0.1, kFloat64, &g).to_vector<double>();
  double mean5 = 0;
  for (double v : nm) mean5 += v / 1000;
  CHECK(std::abs(mean5 - 5.0) < 0.02);
}

TEST_CASE("empty tensors are contiguous whatever their strides", "[tensor][view]") {
  const Tensor e = zeros({2, 0, 3});
  CHECK(e.numel() == 0);
  CHECK(e.is_contiguous());
  CHECK(e.transpose(0, 2).is_contiguous());  // nothing to address, so no order to break
  CHECK(e.contiguous().shape() == Shape{2, 0, 3});
  CHECK(zeros({0}).is_contiguous());
  // A non-empty transpose is not.
  CHECK_FALSE(zeros({2, 3}).transpose(0, 1).is_contiguous());
}

TEST_CASE("views share storage and copies do not", "[tensor][view]") {
  const Tensor x = arange(12, kFloat64).reshape({3, 4});
  const Tensor v = x.view({4, 3});
  CHECK(v.storage() == x.storage());
  const Tensor tr = x.transpose(0, 1);
  CHECK(tr.storage() == x.storage());
  CHECK_FALSE(tr.is_contiguous());
  const Tensor c = tr.contiguous();
  CHECK(c.storage() != x.storage());
  CHECK(c.is_contiguous());
  CHECK(c.to_vector<double>() == std::vector<double>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
  const Tensor n = x.narrow(1, 1, 2);
  CHECK(n.storage() == x.storage());
  CHECK(n.to_vector<double>() == std::vector<double>{1, 2, 5, 6, 9, 10});
  const Tensor cl = x.clone();
  CHECK(cl.storage() != x.storage());
  CHECK(equal(cl, x));
}

TEST_CASE("conversions between dtypes keep values", "[tensor]") {
  const Tensor x = tensor({1.5, -2.25, 3}, kFloat64);
  CHECK(x.to(kFloat32).to_vector<float>() == std::vector<float>{1.5f, -2.25f, 3.0f});
  CHECK(x.to(kInt64).to_vector<std::int64_t>() == std::vector<std::int64_t>{1, -2, 3});
  CHECK(x.to(kFloat64).same(x));
  CHECK(x.to(Device::cpu()).same(x));
  CHECK(x.narrow(0, 1, 1).item<double>() == -2.25);
}

TEST_CASE("in-place writes outside autograd", "[tensor][inplace]") {
  Tensor x = zeros({2, 3}, kFloat64);
  x.fill_(2.0);
  CHECK(x.to_vector<double>() == std::vector<double>(6, 2.0));
  x.put_({1, 2}, 9.0);
  CHECK(x.at<double>({1, 2}) == 9.0);
  x.copy_(tensor({1, 2, 3}, kFloat32));  // broadcast and convert
  CHECK(x.to_vector<double>() == std::vector<double>{1, 2, 3, 1, 2, 3});
  // Overlapping source and destination: the source is read whole before anything is written.
  Tensor s = arange(6, kFloat64);
  s.narrow(0, 1, 5).copy_(s.narrow(0, 0, 5));
  CHECK(s.to_vector<double>() == std::vector<double>{0, 0, 1, 2, 3, 4});
  Tensor t = arange(6, kFloat64);
  t.narrow(0, 0, 5).copy_(t.narrow(0, 1, 5));
  CHECK(t.to_vector<double>() == std::vector<double>{1, 2, 3, 4, 5, 5});
  Tensor sq = arange(4, kFloat64).reshape({2, 2});
  sq.copy_(sq.t());  // a transpose onto itself
  CHECK(sq.to_vector<double>() == std::vector<double>{0, 2, 1, 3});
  x.add_(ones({2, 3}, kFloat64), 0.5);
  CHECK(x.to_vector<double>() == std::vector<double>{1.5, 2.5, 3.5, 1.5, 2.5, 3.5});
  x.mul_(2.0);
  CHECK(x.to_vector<double>() == std::vector<double>{3, 5, 7, 3, 5, 7});
  // A write through a view is seen by the base.
  Tensor row = x.narrow(0, 1, 1);
  row.zero_();
  CHECK(x.to_vector<double>() == std::vector<double>{3, 5, 7, 0, 0, 0});
  Tensor w = ones({2}, kFloat64).requires_grad_();
  CT_REQUIRE_ERROR(w.fill_(1.0), "fill_: expected a tensor that does not require grad");
  CT_REQUIRE_ERROR(w.add_(w, 1.0), "add_: expected a tensor that does not require grad");
  {
    NoGradGuard no_grad;
    w.add_(ones({2}, kFloat64), -0.5);
  }
  CHECK(w.to_vector<double>() == std::vector<double>{0.5, 0.5});
}

TEST_CASE("add_ and mul_ take every path: dense, broadcast, strided and aliased operands",
          "[tensor][inplace]") {
  // Dense operands of one shape update in place; the result must equal the out-of-place maths.
  Tensor a = arange(6, kFloat32).reshape({2, 3});
  a.add_(full({2, 3}, 2.0), -1.5);
  CHECK(a.to_vector<float>() == std::vector<float>{-3, -2, -1, 0, 1, 2});
  a.mul_(-2.0);
  CHECK(a.to_vector<float>() == std::vector<float>{6, 4, 2, 0, -2, -4});
  // A broadcast operand and a strided (transposed) destination take the general path.
  Tensor b = zeros({3, 2}, kFloat64);
  Tensor bt = b.transpose(0, 1);  // [2, 3], not contiguous
  bt.add_(tensor({1, 2, 3}, kFloat64), 2.0);
  CHECK(b.to_vector<double>() == std::vector<double>{2, 2, 4, 4, 6, 6});
  bt.mul_(0.5);
  CHECK(b.to_vector<double>() == std::vector<double>{1, 1, 2, 2, 3, 3});
  // The tensor itself as the operand: x += 2 x.
  Tensor c = arange(4, kFloat64);
  c.add_(c, 2.0);
  CHECK(c.to_vector<double>() == std::vector<double>{0, 3, 6, 9});
  // A shifted view of the destination's own storage must read the values from before the update.
  Tensor base = arange(5, kFloat64);
  Tensor lo = base.narrow(0, 0, 4), hi = base.narrow(0, 1, 4);
  hi.add_(lo, 1.0);  // base[i + 1] += base[i] for the old values
  CHECK(base.to_vector<double>() == std::vector<double>{0, 1, 3, 5, 7});
}

TEST_CASE("printing shows values, shape and dtype", "[tensor][print]") {
  CHECK(tensor({1, 2, 3, 4}, {2, 2}).str() ==
        "tensor([[1., 2.],\n        [3., 4.]], shape=[2, 2], dtype=float32)");
  CHECK(tensor({0.5, -1.25}, kFloat64).str() ==
        "tensor([ 0.5000, -1.2500], shape=[2], dtype=float64)");
  CHECK(from_vector(std::vector<std::int64_t>{7, 42}, {2}).str() ==
        "tensor([ 7, 42], shape=[2], dtype=int64)");
  CHECK(tensor({1e-6, 1.0}).str() == "tensor([1.0000e-06, 1.0000e+00], shape=[2], dtype=float32)");
  const std::string big = arange(2000).str();
  CHECK(big.find("...") != std::string::npos);
  CHECK(big.find("1999.") != std::string::npos);
  const Tensor g = ones({2}).requires_grad_();
  CHECK(g.str().find("requires_grad=true") != std::string::npos);
  CHECK((g * 2.0).str().find("grad_fn=<mul>") != std::string::npos);
  CHECK(fmt::format("{}", tensor({3}, Shape{})) == "tensor(3., shape=[], dtype=float32)");
  CHECK(Tensor().str() == "tensor(undefined)");
}

TEST_CASE("tensor misuse raises clear errors", "[tensor][errors]") {
  const Tensor x = zeros({2, 3});
  CT_REQUIRE_ERROR(x.item(), "item: expected a tensor with one element, got shape [2, 3]");
  CT_REQUIRE_ERROR(x.at<double>({0, 0}), "at: expected a float64 tensor, got float32");
  CT_REQUIRE_ERROR(x.at<float>({0}), "at: expected 2 indices for shape [2, 3], got 1");
  CT_REQUIRE_ERROR(x.at<float>({2, 0}), "at: expected index 0 in [-2, 2)");
  CT_REQUIRE_ERROR(x.size(2), "size: expected dim in [-2, 2), got 2");
  CT_REQUIRE_ERROR(Tensor().shape(), "expected a defined tensor");
  CT_REQUIRE_ERROR(tensor({1, 2, 3}, {2, 2}), "tensor: expected 4 values for shape [2, 2], got 3");
  CT_REQUIRE_ERROR(zeros({2, -1}), "expected non-negative sizes");
  CT_REQUIRE_ERROR(arange(0, 1, 0), "arange: expected a finite non-zero step, got 0");
  CT_REQUIRE_ERROR(randn({2}, kInt64), "normal: expected a floating-point dtype, got int64");
  CT_REQUIRE_ERROR(uniform({2}, 1.0, 0.0), "uniform: expected low <= high");
  CT_REQUIRE_ERROR(randint(3, 3, {1}), "randint: expected low < high");
  CT_REQUIRE_ERROR(zeros({2}, kInt64).requires_grad_(),
                   "requires_grad_: expected a floating-point tensor, got int64");
  CT_REQUIRE_ERROR(
      from_vector(std::vector<float>{1}, {1}, kFloat64),
      "from_vector: expected options with dtype float32 for these values, got float64");
  Tensor y = zeros({2});
  CT_REQUIRE_ERROR(y.copy_(zeros({3})), "copy_: expected broadcastable shapes");
  CT_REQUIRE_ERROR(y.set_grad(zeros({3})), "set_grad: expected a gradient of shape [2]");
}

TEST_CASE("device mismatches are refused before any kernel runs", "[tensor][device]") {
  // A tensor labelled as living on cuda:0 over host memory that nothing dereferences: the checks
  // must reject it before a kernel could touch it, with or without a GPU.
  static float host[4] = {};
  auto fake = std::make_shared<Storage>(host, sizeof(host), Device(DeviceType::CUDA, 0), nullptr);
  const Tensor d = Tensor::make(fake, {4}, {1}, 0, kFloat32);
  const Tensor c = zeros({4});
  CT_REQUIRE_ERROR(add(c, d), "add: expected tensors on one device, got cpu and cuda:0");
  CT_REQUIRE_ERROR(matmul(c, d), "matmul: expected tensors on one device");
  CT_REQUIRE_ERROR(cat({c, d}), "cat: expected tensors on one device, got cpu and cuda:0");
  CT_REQUIRE_ERROR(d.at<float>({0}), "at: expected a CPU tensor, got one on cuda:0");
}

TEST_CASE("in-place writes refuse a destination whose elements share memory", "[tensor][inplace]") {
  const Tensor b = tensor({0, 1, 2}, kFloat64);
  const Tensor e = b.expand({4, 3});
  CHECK(has_internal_overlap(e));
  CT_REQUIRE_ERROR(Tensor(e).add_(ones({4, 3}, kFloat64)),
                   "add_: expected a written-to tensor whose elements do not share memory, got "
                   "shape [4, 3] with strides [0, 1]");
  CT_REQUIRE_ERROR(Tensor(e).mul_(2.0),
                   "mul_: expected a written-to tensor whose elements do not "
                   "share memory");
  CT_REQUIRE_ERROR(Tensor(e).copy_(ones({4, 3}, kFloat64)),
                   "copy_: expected a written-to tensor whose elements do not share memory");
  CT_REQUIRE_ERROR(Tensor(e).put_({1, 2}, 5.0), "put_: expected a written-to tensor whose");
  // Nothing was written through the refused calls.
  CHECK(b.to_vector<double>() == std::vector<double>{0, 1, 2});
  // A row of an expanded tensor: copy_ into it is refused too (issue 11's probe).
  const Tensor col = tensor({7}, kFloat64).expand({3});
  CT_REQUIRE_ERROR(Tensor(col).copy_(tensor({1, 2, 3}, kFloat64)), "copy_: expected a written-to");
  // fill_ writes one value, so PyTorch (and we) accept an expanded destination.
  Tensor(e).fill_(4.0);
  CHECK(b.to_vector<double>() == std::vector<double>{4, 4, 4});
  // Stride 0 over a size-1 dim, or over an empty tensor, shares nothing.
  Tensor one = b.expand({1, 3});
  CHECK_FALSE(has_internal_overlap(one));
  one.add_(ones({1, 3}, kFloat64));
  CHECK(b.to_vector<double>() == std::vector<double>{5, 5, 5});
  Tensor none = b.expand({0, 3});
  CHECK_FALSE(has_internal_overlap(none));
  none.mul_(2.0);
  // Ordinary views (slices, transposes, flips) never overlap.
  const Tensor m = arange(24, kFloat64).reshape({2, 3, 4});
  CHECK_FALSE(has_internal_overlap(m));
  CHECK_FALSE(has_internal_overlap(m.permute({2, 0, 1})));
  CHECK_FALSE(has_internal_overlap(slice(m, 2, 1, 4, 2)));
  CHECK_FALSE(has_internal_overlap(flip(m, {1})));
  // Views only Tensor::make can build: interleaved strides, exact either way.
  const auto& st = m.storage();
  CHECK(has_internal_overlap(Tensor::make(st, {2, 2}, {1, 1}, 0, kFloat64)));        // 1 twice
  CHECK(has_internal_overlap(Tensor::make(st, {3, 2}, {2, 4}, 0, kFloat64)));        // 4 twice
  CHECK_FALSE(has_internal_overlap(Tensor::make(st, {3, 2}, {2, 3}, 0, kFloat64)));  // 0 2 4 3 5 7
  CHECK_FALSE(has_internal_overlap(Tensor::make(st, {3, 2}, {-2, 3}, 4, kFloat64)));
  CT_REQUIRE_ERROR(Tensor::make(st, {2, 2}, {1, 1}, 0, kFloat64).mul_(2.0),
                   "mul_: expected a written-to tensor whose elements do not share memory, got "
                   "shape [2, 2] with strides [1, 1]");
  Tensor interleaved = Tensor::make(st, {3, 2}, {2, 3}, 0, kFloat64);
  interleaved.mul_(-1.0);
  CHECK(m.to_vector<double>()[7] == -7.0);
  CHECK(m.to_vector<double>()[6] == 6.0);
}

TEST_CASE("in-place writes read an overlapping source whole first", "[tensor][inplace]") {
  // PyTorch refuses a partial overlap; here the source is read before anything is written, so the
  // answer is the one a copy of the source would give (NumPy's).
  Tensor x = arange(5, kFloat64);
  slice(x, 0, 1, 5).add_(slice(x, 0, 0, 4));
  CHECK(x.to_vector<double>() == std::vector<double>{0, 1, 3, 5, 7});
  Tensor y = arange(5, kFloat64);
  y.add_(y.narrow(0, 0, 1));
  CHECK(y.to_vector<double>() == std::vector<double>{0, 1, 2, 3, 4});
  Tensor z = arange(4, kFloat64).reshape({2, 2});
  z.add_(z.t());
  CHECK(z.to_vector<double>() == std::vector<double>{0, 3, 3, 6});
  Tensor w = arange(3, kFloat64);
  w.add_(w);
  CHECK(w.to_vector<double>() == std::vector<double>{0, 2, 4});
}
