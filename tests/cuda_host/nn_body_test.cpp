// Host tests of the CUDA softmax, nll, index and range-check kernels (cuda/nn_body.h): the functors
// and pass chains that cuda/nn.cu launches, run over host buffers and compared with cpu/nn.h.
// softmax over [outer, n, inner] must match cpu::softmax bit for bit when each line is one work
// item, and within double rounding when long lines are cut into parts; nll, index_select and
// index_add (whose stable sort of the index is done here with std::stable_sort, as CUB's radix
// sort does on the device) bit for bit.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <vector>

#include "cpu/nn.h"
#include "cuda/nn_body.h"
#include "support/host_launch.h"
#include "support/test_util.h"

namespace {

using namespace convtape;

struct Case {
  std::int64_t outer, n, inner;
};

const auto host = [](std::int64_t n, const auto& f) {
  ct_test::run_on_host(n, f);
  return 0;
};

bool identical(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  const auto* pa = static_cast<const unsigned char*>(a.raw_data());
  const auto* pb = static_cast<const unsigned char*>(b.raw_data());
  const auto size = static_cast<std::size_t>(dtype_size(a.dtype()));
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    const auto at = static_cast<std::size_t>(i) * size;
    if (std::memcmp(pa + at, pb + at, size) != 0) {
      UNSCOPED_INFO("element " << i
                               << " differs: " << a.to_vector<double>()[static_cast<std::size_t>(i)]
                               << " vs " << b.to_vector<double>()[static_cast<std::size_t>(i)]);
      return false;
    }
  }
  return true;
}

// Elementwise: the same value (infinities included), both NaN, or within 1e-6 relative.
bool same_or_close(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return false;
  const auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  for (std::size_t i = 0; i < va.size(); ++i) {
    const bool ok = va[i] == vb[i] || (std::isnan(va[i]) && std::isnan(vb[i])) ||
                    std::abs(va[i] - vb[i]) <= 1e-6 * std::abs(vb[i]);
    if (!ok) {
      UNSCOPED_INFO("element " << i << ": " << va[i] << " vs " << vb[i]);
      return false;
    }
  }
  return true;
}

// cuda::softmax's work on the host: the same scratch sizes and passes.
Tensor body_softmax(const Tensor& x, std::int64_t outer, std::int64_t n, std::int64_t inner,
                    bool log) {
  Tensor y = Tensor::empty_cpu(x.shape(), x.dtype());
  if (y.numel() == 0) return y;
  const std::int64_t lines = outer * inner;
  const cuda::SoftmaxScratch s = cuda::softmax_scratch(lines, n);
  dispatch_floating(x.dtype(), [&]<class T>() {
    std::vector<T> mx(static_cast<std::size_t>(lines));
    std::vector<double> sum(static_cast<std::size_t>(lines));
    std::vector<double> partial(static_cast<std::size_t>(s.partials));
    std::vector<T> va(static_cast<std::size_t>(s.max_values)), vb(va.size());
    std::vector<double> a(static_cast<std::size_t>(s.sum_values)), b(a.size());
    const int status = cuda::softmax_passes(host, x.data_ptr<T>(), y.data_ptr<T>(), outer, n, inner,
                                            log, mx.data(), sum.data(), partial.data(), va.data(),
                                            vb.data(), a.data(), b.data());
    REQUIRE(status == 0);
  });
  return y;
}

Tensor i64(const std::vector<std::int64_t>& v) {
  return from_vector(v, {static_cast<std::int64_t>(v.size())});
}

// CUB's stable radix sort on the host: keys ascending, equal keys in increasing position.
void stable_sort_index(const Tensor& index, std::vector<std::int64_t>& keys,
                       std::vector<std::int64_t>& perm) {
  const auto len = index.numel();
  const auto v = index.to_vector<std::int64_t>();
  perm.assign(static_cast<std::size_t>(len), -1);
  ct_test::run_on_host(len, cuda::Iota{perm.data()});
  std::stable_sort(perm.begin(), perm.end(), [&](std::int64_t p, std::int64_t q) {
    return v[static_cast<std::size_t>(p)] < v[static_cast<std::size_t>(q)];
  });
  keys.resize(perm.size());
  for (std::size_t k = 0; k < perm.size(); ++k) keys[k] = v[static_cast<std::size_t>(perm[k])];
}

Tensor body_index_add(const Tensor& src, std::int64_t outer, std::int64_t n, std::int64_t inner,
                      const Tensor& index) {
  const std::int64_t len = index.numel();
  Tensor y = Tensor::empty_cpu({outer, n, inner}, src.dtype());
  std::vector<std::int64_t> keys, perm;
  stable_sort_index(index, keys, perm);
  dispatch_floating(src.dtype(), [&]<class T>() {
    ct_test::run_on_host(y.numel(),
                         cuda::IndexAddGather<T>{src.data_ptr<T>(), keys.data(), perm.data(),
                                                 y.data_ptr<T>(), n, len, inner});
  });
  return y;
}

const std::vector<Case> kLines = {{1, 1, 1}, {2, 5, 3},  {1, 10, 1},  {4, 1, 2},
                                  {3, 7, 1}, {2, 4, 17}, {1, 127, 1}, {70000, 20, 1}};
const std::vector<Case> kLongLines = {{1, 128, 1},  {2, 1000, 3},   {1, 5000, 1},
                                      {2, 3000, 3}, {1, 100000, 1}, {3, 1500, 2}};

}  // namespace

TEST_CASE("softmax body: one work item per line matches cpu::softmax bit for bit",
          "[cpu][cuda_body]") {
  for (const DType dt : {kFloat32, kFloat64})
    for (const bool log : {false, true})
      for (const auto& c : kLines) {
        INFO(dtype_name(dt) << (log ? " log_softmax" : " softmax") << " [" << c.outer << ", " << c.n
                            << ", " << c.inner << "]");
        REQUIRE(cuda::plan_reduce(c.outer * c.inner, c.n).passes == 1);
        const Tensor x = uniform({c.outer, c.n, c.inner}, -6, 6, dt);
        CHECK(identical(body_softmax(x, c.outer, c.n, c.inner, log),
                        cpu::softmax(x, c.outer, c.n, c.inner, log)));
        // Logits around 1000 (exp would overflow without the shift).
        const Tensor big = uniform({c.outer, c.n, c.inner}, 990, 1010, dt);
        const Tensor y = body_softmax(big, c.outer, c.n, c.inner, log);
        CHECK(identical(y, cpu::softmax(big, c.outer, c.n, c.inner, log)));
        const auto yv = y.to_vector<double>();
        CHECK(std::all_of(yv.begin(), yv.end(), [](double v) { return std::isfinite(v); }));
      }
}

TEST_CASE("softmax body: long lines cut into parts match cpu::softmax", "[cpu][cuda_body]") {
  for (const DType dt : {kFloat32, kFloat64})
    for (const bool log : {false, true})
      for (const auto& c : kLongLines) {
        INFO(dtype_name(dt) << (log ? " log_softmax" : " softmax") << " [" << c.outer << ", " << c.n
                            << ", " << c.inner << "]");
        REQUIRE(cuda::plan_reduce(c.outer * c.inner, c.n).passes >= 2);
        for (const double shift : {0.0, 1000.0}) {
          const Tensor x = uniform({c.outer, c.n, c.inner}, shift - 8, shift + 8, dt);
          const Tensor got = body_softmax(x, c.outer, c.n, c.inner, log);
          const Tensor want = cpu::softmax(x, c.outer, c.n, c.inner, log);
          // Z is summed in another order; the lines' maxima are the same.
          CHECK(ct_test::allclose(got, want, dt == kFloat32 ? 1e-6 : 1e-13, 1e-30));
        }
      }
  // The maximum of a long line sits in one part only: a wrong shift would overflow exp.
  Tensor x = zeros({1, 5000, 1}, kFloat64);
  x.put_({0, 4321, 0}, 800.0);
  const Tensor y = body_softmax(x, 1, 5000, 1, false);
  CHECK(y.to_vector<double>()[4321] == 1.0);
  CHECK(identical(y, cpu::softmax(x, 1, 5000, 1, false)));
}

TEST_CASE("softmax body: -inf, +inf and NaN lines behave as on the CPU", "[cpu][cuda_body]") {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const DType dt : {kFloat32, kFloat64})
    for (const bool log : {false, true}) {
      INFO(dtype_name(dt) << (log ? " log_softmax" : " softmax"));
      // Lines: some -inf, all -inf, one +inf, NaN first, NaN later.
      const Tensor x =
          tensor({1, -inf, 2, -inf, -inf, -inf, 0, inf, 1, nan, 1, 2, 1, nan, 2}, {5, 3, 1}, dt);
      const Tensor got = body_softmax(x, 5, 3, 1, log);
      CHECK(identical(got, cpu::softmax(x, 5, 3, 1, log)));
      const auto v = got.to_vector<double>();
      CHECK(std::isfinite(v[0]));
      CHECK(v[1] == (log ? -inf : 0.0));
      for (std::size_t i = 9; i < 15; ++i) CHECK(std::isnan(v[i]));
      // The same lines, long enough to be cut into parts.
      Tensor l = full({5, 3000, 1}, -inf, dt);
      const auto xv = x.to_vector<double>();
      for (std::int64_t r = 0; r < 5; ++r)
        for (std::int64_t k = 0; k < 3; ++k)
          l.put_({r, 1000 * k + 7, 0}, xv[static_cast<std::size_t>(r * 3 + k)]);
      CHECK(same_or_close(body_softmax(l, 5, 3000, 1, log), cpu::softmax(l, 5, 3000, 1, log)));
    }
  // An empty axis or no lines: nothing to compute.
  CHECK(body_softmax(Tensor::empty_cpu({2, 0, 3}, kFloat32), 2, 0, 3, false).numel() == 0);
}

TEST_CASE("nll body: forward, sample weights, range check and gradient match cpu::nll",
          "[cpu][cuda_body]") {
  for (const DType dt : {kFloat32, kFloat64})
    for (const bool weighted : {false, true})
      for (const std::int64_t ignore : {std::int64_t{-100}, std::int64_t{3}}) {
        INFO(dtype_name(dt) << (weighted ? " weighted" : "") << " ignore_index " << ignore);
        const std::int64_t batch = 37, classes = 11;
        const Tensor logp = uniform({batch, classes}, -5, 0, dt);
        std::vector<std::int64_t> lv = randint(0, classes, {batch}).to_vector<std::int64_t>();
        for (std::size_t k = 0; k < lv.size(); k += 4) lv[k] = ignore;
        const Tensor labels = i64(lv);
        const Tensor w = weighted ? uniform({classes}, 0.5, 2, dt) : Tensor();
        const Tensor g = randn({batch}, dt);
        Tensor out = Tensor::empty_cpu({batch}, dt), sw = Tensor::empty_cpu({batch}, dt);
        Tensor dx = Tensor::empty_cpu({batch, classes}, dt);
        std::int64_t first = batch;
        dispatch_floating(dt, [&]<class T>() {
          const T* wp = weighted ? w.data_ptr<T>() : nullptr;
          ct_test::run_on_host(
              batch,
              cuda::NllForward<T>{logp.data_ptr<T>(), labels.data_ptr<std::int64_t>(), wp,
                                  out.data_ptr<T>(), sw.data_ptr<T>(), &first, classes, ignore});
          ct_test::run_on_host(
              batch * classes,
              cuda::NllBackward<T>{g.data_ptr<T>(), labels.data_ptr<std::int64_t>(), wp,
                                   dx.data_ptr<T>(), classes, ignore});
        });
        OutOfRange bad;
        Tensor cpu_sw;
        CHECK(identical(out, cpu::nll(logp, labels, w, ignore, bad, &cpu_sw)));
        CHECK(identical(sw, cpu_sw));
        CHECK(bad.position == -1);
        CHECK(first == batch);
        CHECK(identical(dx, cpu::nll_backward(g, labels, w, ignore, classes)));
      }
  // A label out of range reads nothing: NaN loss and sample weight, zero gradient row, and the
  // first such position is reported; an ignored one gives 0.
  const Tensor logp = zeros({4, 4}, kFloat64);
  const Tensor labels = i64({1, 4, -100, -1});
  const Tensor g = ones({4}, kFloat64);
  Tensor out = Tensor::empty_cpu({4}, kFloat64), sw = Tensor::empty_cpu({4}, kFloat64);
  Tensor dx = Tensor::empty_cpu({4, 4}, kFloat64);
  std::int64_t first = 4;
  ct_test::run_on_host(
      4, cuda::NllForward<double>{logp.data_ptr<double>(), labels.data_ptr<std::int64_t>(), nullptr,
                                  out.data_ptr<double>(), sw.data_ptr<double>(), &first, 4, -100});
  ct_test::run_on_host(
      16, cuda::NllBackward<double>{g.data_ptr<double>(), labels.data_ptr<std::int64_t>(), nullptr,
                                    dx.data_ptr<double>(), 4, -100});
  const auto o = out.to_vector<double>(), s = sw.to_vector<double>();
  CHECK(o[0] == 0.0);
  CHECK(s[0] == 1.0);
  CHECK((std::isnan(o[1]) && std::isnan(s[1])));
  CHECK((o[2] == 0.0 && s[2] == 0.0));
  CHECK(std::isnan(o[3]));
  CHECK(first == 1);
  OutOfRange bad;
  cpu::nll(logp, labels, Tensor(), -100, bad);
  CHECK((bad.position == 1 && bad.value == 4));
  CHECK(dx.to_vector<double>() ==
        std::vector<double>{0, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
}

TEST_CASE("index_select body matches cpu::index_select for every dtype", "[cpu][cuda_body]") {
  const std::vector<std::vector<std::int64_t>> indices = {
      {0}, {2, 0, 2, 2, 1}, {}, {4, 3, 2, 1, 0, 0, 1, 2, 3, 4}};
  for (const DType dt : {kFloat32, kFloat64, kInt64})
    for (const Case c : {Case{1, 5, 1}, Case{3, 5, 1}, Case{2, 5, 4}, Case{1, 5, 7}})
      for (const auto& iv : indices) {
        INFO(dtype_name(dt) << " [" << c.outer << ", " << c.n << ", " << c.inner << "], "
                            << iv.size() << " indices");
        const Tensor x = randint(-50, 50, {c.outer, c.n, c.inner}).to(dt);
        const Tensor index = i64(iv);
        const auto len = static_cast<std::int64_t>(iv.size());
        Tensor y = Tensor::empty_cpu({c.outer, len, c.inner}, dt);
        dispatch_all(dt, [&]<class T>() {
          ct_test::run_on_host(y.numel(),
                               cuda::IndexSelect<T>{x.data_ptr<T>(), index.data_ptr<std::int64_t>(),
                                                    y.data_ptr<T>(), c.n, len, c.inner});
        });
        CHECK(identical(y, cpu::index_select(x, c.outer, c.n, c.inner, index)));
      }
  // An index that slipped past the front end's check reads nothing.
  const Tensor x = tensor({1, 2, 3}, {1, 3, 1}, kFloat64);
  const Tensor bad = i64({2, 3, -1});
  Tensor y = Tensor::empty_cpu({1, 3, 1}, kFloat64);
  ct_test::run_on_host(3,
                       cuda::IndexSelect<double>{x.data_ptr<double>(), bad.data_ptr<std::int64_t>(),
                                                 y.data_ptr<double>(), 3, 3, 1});
  CHECK(y.to_vector<double>() == std::vector<double>{3, 0, 0});
}

TEST_CASE("index_add body: sorted gather matches cpu::index_add bit for bit", "[cpu][cuda_body]") {
  const std::vector<std::vector<std::int64_t>> indices = {
      {0}, {2, 0, 2, 2, 1, 0}, {}, {4, 3, 2, 1, 0}, {3, 3, 3, 3}};
  for (const DType dt : {kFloat32, kFloat64})
    for (const Case c : {Case{1, 5, 1}, Case{3, 5, 1}, Case{2, 5, 4}, Case{1, 6, 7}})
      for (const auto& iv : indices) {
        INFO(dtype_name(dt) << " [" << c.outer << ", " << c.n << ", " << c.inner << "], "
                            << iv.size() << " indices");
        const Tensor index = i64(iv);
        const auto len = static_cast<std::int64_t>(iv.size());
        const Tensor src = randn({c.outer, len, c.inner}, dt);
        CHECK(identical(body_index_add(src, c.outer, c.n, c.inner, index),
                        cpu::index_add(src, c.outer, c.n, c.inner, index)));
      }
  // Many repeats of few rows: float sums whose rounding depends on the order of their terms.
  for (const DType dt : {kFloat32, kFloat64}) {
    const std::int64_t n = 7, len = 3000, inner = 3;
    const Tensor index = randint(0, n, {len});
    const Tensor src = uniform({2, len, inner}, -1e3, 1e3, dt);
    const Tensor got = body_index_add(src, 2, n, inner, index);
    CHECK(identical(got, cpu::index_add(src, 2, n, inner, index)));
    // The terms summed in another order round differently, so the check above sees the order.
    Tensor reversed = Tensor::empty_cpu({2, n, inner}, dt);
    std::vector<std::int64_t> keys, perm;
    stable_sort_index(index, keys, perm);
    for (std::size_t b = 0; b < keys.size();) {
      std::size_t e = b;
      while (e < keys.size() && keys[e] == keys[b]) ++e;
      std::reverse(perm.begin() + static_cast<std::ptrdiff_t>(b),
                   perm.begin() + static_cast<std::ptrdiff_t>(e));
      b = e;
    }
    dispatch_floating(dt, [&]<class T>() {
      ct_test::run_on_host(reversed.numel(),
                           cuda::IndexAddGather<T>{src.data_ptr<T>(), keys.data(), perm.data(),
                                                   reversed.data_ptr<T>(), n, len, inner});
    });
    CHECK_FALSE(identical(reversed, got));
    CHECK(ct_test::allclose(reversed, got, 1e-5, 1.0));
  }
}

TEST_CASE("range check body finds the first value outside [lo, hi)", "[cpu][cuda_body]") {
  auto first = [](const std::vector<std::int64_t>& v, std::int64_t lo, std::int64_t hi) {
    const auto count = static_cast<std::int64_t>(v.size());
    std::int64_t at = count;
    ct_test::run_on_host(count, cuda::FirstOutOfRange{v.data(), lo, hi, &at});
    return at;
  };
  CHECK(first({0, 1, 2, 3}, 0, 4) == 4);
  CHECK(first({0, 1, 4, 3}, 0, 4) == 2);
  CHECK(first({0, -1, 9, 3}, 0, 4) == 1);
  CHECK(first({5, 5, 9, -3}, 0, 4) == 0);
  CHECK(first({3, 2, 1, 0, 7}, 1, 4) == 3);
  CHECK(first({}, 0, 4) == 0);
  CHECK(first({std::numeric_limits<std::int64_t>::max()}, 0, 4) == 0);
  // The position is the smallest one whatever the order the work items run in.
  std::vector<std::int64_t> v(1000, 1);
  v[700] = v[300] = v[999] = 8;
  std::int64_t at = 1000;
  for (std::int64_t i = 999; i >= 0; --i) cuda::FirstOutOfRange{v.data(), 0, 4, &at}(i);
  CHECK(at == 300);
}

TEST_CASE("split_dim names the dim that index_select's error message refers to",
          "[cpu][cuda_body]") {
  auto dim_of = [](const Shape& s, std::int64_t outer, std::int64_t n, std::int64_t inner) {
    return cuda::split_dim(s.data(), s.size(), outer, n, inner);
  };
  CHECK(dim_of({2, 3, 4}, 1, 2, 12) == 0);
  CHECK(dim_of({2, 3, 4}, 2, 3, 4) == 1);
  CHECK(dim_of({2, 3, 4}, 6, 4, 1) == 2);
  CHECK(dim_of({5}, 1, 5, 1) == 0);
  CHECK(dim_of({0, 3}, 0, 3, 1) == 1);
  CHECK(dim_of({3, 3}, 1, 3, 3) == 0);
  CHECK(dim_of({3, 3}, 3, 3, 1) == 1);
  // Size-1 neighbours: the first dim that fits.
  CHECK(dim_of({4, 1, 1}, 4, 1, 1) == 1);
  CHECK(dim_of({2, 3}, 2, 5, 1) == -1);
}
