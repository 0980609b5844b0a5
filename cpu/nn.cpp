// Softmax, NLL and index kernels on CPU.
#include "cpu/nn.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "cpu/strided.h"

namespace convtape::cpu {

Tensor softmax(const Tensor& x, std::int64_t outer, std::int64_t n, std::int64_t inner, bool log) {
  Tensor y = Tensor::empty_cpu(x.shape(), x.dtype());
  if (n == 0) return y;  // nothing to normalise
  dispatch_floating(x.dtype(), [&]<class T>() {
    const T* xs = x.data_ptr<T>();
    T* ys = y.data_ptr<T>();
    const std::int64_t lines = outer * inner;
#pragma omp parallel for schedule(static) if (lines > 1 && lines * n >= kParallelGrain)
    for (std::int64_t l = 0; l < lines; ++l) {
      const std::int64_t o = l / inner, i = l % inner;
      const T* xp = xs + o * n * inner + i;
      T* yp = ys + o * n * inner + i;
      T mx = xp[0];
      for (std::int64_t j = 1; j < n; ++j) mx = std::max(mx, xp[j * inner]);
      if (std::isinf(mx) && mx < 0) mx = T(0);  // all -inf: keep exp finite
      double sum = 0.0;
      for (std::int64_t j = 0; j < n; ++j) sum += std::exp(static_cast<double>(xp[j * inner] - mx));
      if (log) {
        const T lse = static_cast<T>(std::log(sum));
        for (std::int64_t j = 0; j < n; ++j) yp[j * inner] = xp[j * inner] - mx - lse;
      } else {
        const double inv = 1.0 / sum;
        for (std::int64_t j = 0; j < n; ++j)
          yp[j * inner] = static_cast<T>(std::exp(static_cast<double>(xp[j * inner] - mx)) * inv);
      }
    }
  });
  return y;
}

Tensor nll(const Tensor& logp, const Tensor& labels, const Tensor& weight,
           std::int64_t ignore_index, OutOfRange& bad, Tensor* sample_weights) {
  const std::int64_t batch = logp.size(0), classes = logp.size(1);
  Tensor out = Tensor::empty_cpu({batch}, logp.dtype());
  if (sample_weights) *sample_weights = Tensor::empty_cpu({batch}, logp.dtype());
  bad = OutOfRange{};
  dispatch_floating(logp.dtype(), [&]<class T>() {
    const T* lp = logp.data_ptr<T>();
    const std::int64_t* lab = labels.data_ptr<std::int64_t>();
    const T* w = weight.defined() ? weight.data_ptr<T>() : nullptr;
    T* o = out.data_ptr<T>();
    T* sw = sample_weights ? sample_weights->data_ptr<T>() : nullptr;
    for (std::int64_t i = 0; i < batch; ++i) {
      const std::int64_t c = lab[i];
      T loss = T(0), wi = T(0);
      if (c != ignore_index) {
        if (c >= 0 && c < classes) {
          wi = w ? w[c] : T(1);
          loss = w ? -lp[i * classes + c] * wi : -lp[i * classes + c];
        } else {
          if (!bad.found()) bad = OutOfRange{i, c};
          loss = wi = std::numeric_limits<T>::quiet_NaN();
        }
      }
      o[i] = loss;
      if (sw) sw[i] = wi;
    }
  });
  return out;
}

Tensor nll_backward(const Tensor& g, const Tensor& labels, const Tensor& weight,
                    std::int64_t ignore_index, std::int64_t classes) {
  const std::int64_t batch = g.size(0);
  Tensor dx = Tensor::empty_cpu({batch, classes}, g.dtype());
  dispatch_floating(g.dtype(), [&]<class T>() {
    T* d = dx.data_ptr<T>();
    const T* gs = g.data_ptr<T>();
    const std::int64_t* lab = labels.data_ptr<std::int64_t>();
    const T* w = weight.defined() ? weight.data_ptr<T>() : nullptr;
    std::fill_n(d, batch * classes, T(0));
    for (std::int64_t i = 0; i < batch; ++i) {
      const std::int64_t c = lab[i];
      if (c == ignore_index || c < 0 || c >= classes) continue;
      d[i * classes + c] = w ? -gs[i] * w[c] : -gs[i];
    }
  });
  return dx;
}

Tensor index_select(const Tensor& x, std::int64_t outer, std::int64_t n, std::int64_t inner,
                    const Tensor& index) {
  const std::int64_t len = index.numel();
  Tensor y = Tensor::empty_cpu({outer, len, inner}, x.dtype());
  dispatch_all(x.dtype(), [&]<class T>() {
    const T* xs = x.data_ptr<T>();
    T* ys = y.data_ptr<T>();
    const std::int64_t* idx = index.data_ptr<std::int64_t>();
    for (std::int64_t o = 0; o < outer; ++o)
      for (std::int64_t j = 0; j < len; ++j)
        std::copy_n(xs + (o * n + idx[j]) * inner, inner, ys + (o * len + j) * inner);
  });
  return y;
}

Tensor index_add(const Tensor& src, std::int64_t outer, std::int64_t n, std::int64_t inner,
                 const Tensor& index) {
  const std::int64_t len = index.numel();
  Tensor y = Tensor::empty_cpu({outer, n, inner}, src.dtype());
  dispatch_floating(src.dtype(), [&]<class T>() {
    const T* s = src.data_ptr<T>();
    T* ys = y.data_ptr<T>();
    const std::int64_t* idx = index.data_ptr<std::int64_t>();
    std::fill_n(ys, outer * n * inner, T(0));
    for (std::int64_t o = 0; o < outer; ++o)
      for (std::int64_t j = 0; j < len; ++j) {
        T* dst = ys + (o * n + idx[j]) * inner;
        const T* sp = s + (o * len + j) * inner;
        for (std::int64_t i = 0; i < inner; ++i) dst[i] += sp[i];
      }
  });
  return y;
}

OutOfRange find_out_of_range(const Tensor& values, std::int64_t lo, std::int64_t hi) {
  OutOfRange r;
  const std::int64_t n = values.numel();
  if (n == 0) return r;
  const std::int64_t* v = values.data_ptr<std::int64_t>();
  for (std::int64_t i = 0; i < n; ++i)
    if (v[i] < lo || v[i] >= hi) return {i, v[i]};
  return r;
}

}  // namespace convtape::cpu
