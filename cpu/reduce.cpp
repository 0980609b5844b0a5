// Reductions over [outer, mid, inner]: one pass over memory in order, output rows accumulated in
// registers or a small buffer, threads split over outer rows and inner chunks.
#include "cpu/reduce.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/strided.h"

namespace convtape::cpu {

namespace {

constexpr std::int64_t kChunk = 256;

template <class T>
bool better(Reduce op, T v, T best) {
  if (std::isnan(best)) return false;
  if (std::isnan(v)) return true;
  return op == Reduce::Max ? v > best : v < best;
}

template <class T>
void reduce_block(Reduce op, const T* x, std::int64_t mid, std::int64_t inner, std::int64_t i0,
                  std::int64_t i1, T* out, std::int64_t* idx) {
  const std::int64_t w = i1 - i0;
  if (op == Reduce::Sum && inner == 1) {
    // One contiguous row: eight independent partial sums (vectorisable, and no long add chain).
    double part[8] = {};
    std::int64_t m = 0;
    for (; m + 8 <= mid; m += 8)
      for (int j = 0; j < 8; ++j) part[j] += static_cast<double>(x[m + j]);
    double acc = 0.0;
    for (; m < mid; ++m) acc += static_cast<double>(x[m]);
    for (double v : part) acc += v;
    out[i0] = static_cast<T>(acc);
    return;
  }
  if (op == Reduce::Sum) {
    double acc[kChunk] = {};
    for (std::int64_t m = 0; m < mid; ++m) {
      const T* row = x + m * inner + i0;
      for (std::int64_t i = 0; i < w; ++i) acc[i] += static_cast<double>(row[i]);
    }
    for (std::int64_t i = 0; i < w; ++i) out[i0 + i] = static_cast<T>(acc[i]);
    return;
  }
  T best[kChunk];
  std::int64_t where[kChunk] = {};
  for (std::int64_t i = 0; i < w; ++i) best[i] = x[i0 + i];
  for (std::int64_t m = 1; m < mid; ++m) {
    const T* row = x + m * inner + i0;
    for (std::int64_t i = 0; i < w; ++i) {
      if (better(op, row[i], best[i])) {
        best[i] = row[i];
        where[i] = m;
      }
    }
  }
  for (std::int64_t i = 0; i < w; ++i) {
    out[i0 + i] = best[i];
    if (idx) idx[i0 + i] = where[i];
  }
}

template <class T>
void reduce_typed(Reduce op, const T* x, std::int64_t outer, std::int64_t mid, std::int64_t inner,
                  T* out, std::int64_t* idx) {
  const std::int64_t chunks = (inner + kChunk - 1) / kChunk;
  const std::int64_t tasks = outer * chunks;
#pragma omp parallel for schedule(static) if (tasks > 1 && outer * mid * inner >= kParallelGrain)
  for (std::int64_t t = 0; t < tasks; ++t) {
    const std::int64_t o = t / chunks;
    const std::int64_t i0 = (t % chunks) * kChunk;
    const std::int64_t i1 = std::min(inner, i0 + kChunk);
    reduce_block<T>(op, x + o * mid * inner, mid, inner, i0, i1, out + o * inner,
                    idx ? idx + o * inner : nullptr);
  }
}

}  // namespace

Tensor reduce(Reduce op, const Tensor& x, std::int64_t outer, std::int64_t mid, std::int64_t inner,
              Tensor* indices) {
  Tensor out = Tensor::empty_cpu({outer, inner}, x.dtype());
  std::int64_t* idx = nullptr;
  if (indices && op != Reduce::Sum) {
    *indices = Tensor::empty_cpu({outer, inner}, kInt64);
    idx = indices->data_ptr<std::int64_t>();
  }
  dispatch_floating(x.dtype(), [&]<class T>() {
    if (mid == 0) {
      // Only a sum over nothing is defined (0); the front end refuses empty max/min.
      std::fill_n(out.data_ptr<T>(), outer * inner, T(0));
      return;
    }
    reduce_typed<T>(op, x.data_ptr<T>(), outer, mid, inner, out.data_ptr<T>(), idx);
  });
  return out;
}

}  // namespace convtape::cpu

namespace convtape::cpu {
Tensor reduce_scatter(const Tensor& dy, const Tensor& indices, std::int64_t outer, std::int64_t mid,
                      std::int64_t inner) {
  Tensor dx = Tensor::empty_cpu({outer, mid, inner}, dy.dtype());
  dispatch_floating(dy.dtype(), [&]<class T>() {
    T* d = dx.data_ptr<T>();
    const T* g = dy.data_ptr<T>();
    const std::int64_t* idx = indices.data_ptr<std::int64_t>();
    std::fill_n(d, outer * mid * inner, T(0));
    for (std::int64_t o = 0; o < outer; ++o)
      for (std::int64_t i = 0; i < inner; ++i)
        d[(o * mid + idx[o * inner + i]) * inner + i] = g[o * inner + i];
  });
  return dx;
}
}  // namespace convtape::cpu
