// CPU comparison and selection kernels: the compare maps (cpu/binary_loop.h) and where over
// broadcast strided operands (cpu/strided.h's rows), nonzero_flat in one pass, and topk as a
// partial sort per row, rows split across OpenMP threads.
#include "cpu/select.h"

#include <algorithm>
#include <numeric>
#include <type_traits>
#include <vector>

#include "cpu/binary_loop.h"
#include "cpu/parallel.h"
#include "cpu/strided.h"

namespace convtape::cpu {

namespace {

template <class T>
bool is_nan(T v) {
  if constexpr (std::is_integral_v<T>)
    return false;
  else
    return v != v;
}

template <class T>
const T* base(const Tensor& t) {
  return static_cast<const T*>(t.storage()->data()) + t.offset();
}

template <class T>
Tensor compare_typed(Compare op, const Tensor& a, const Tensor& b) {
  switch (op) {
    case Compare::Eq:
      return map_broadcast<T>("compare", a, b, [](T u, T v) { return static_cast<T>(u == v); });
    case Compare::Ne:
      return map_broadcast<T>("compare", a, b, [](T u, T v) { return static_cast<T>(u != v); });
    case Compare::Lt:
      return map_broadcast<T>("compare", a, b, [](T u, T v) { return static_cast<T>(u < v); });
    case Compare::Le:
      return map_broadcast<T>("compare", a, b, [](T u, T v) { return static_cast<T>(u <= v); });
    case Compare::Gt:
      return map_broadcast<T>("compare", a, b, [](T u, T v) { return static_cast<T>(u > v); });
    case Compare::Ge:
      return map_broadcast<T>("compare", a, b, [](T u, T v) { return static_cast<T>(u >= v); });
    case Compare::And:
      return map_broadcast<T>("compare", a, b,
                              [](T u, T v) { return static_cast<T>(u != T(0) && v != T(0)); });
    case Compare::Or:
      return map_broadcast<T>("compare", a, b,
                              [](T u, T v) { return static_cast<T>(u != T(0) || v != T(0)); });
    case Compare::Max:
      return map_broadcast<T>("compare", a, b, [](T u, T v) {
        return is_nan(u) ? u : is_nan(v) ? v : u < v ? v : u;
      });
    case Compare::Min:
      return map_broadcast<T>("compare", a, b, [](T u, T v) {
        return is_nan(u) ? u : is_nan(v) ? v : v < u ? v : u;
      });
  }
  return {};
}

}  // namespace

Tensor compare(Compare op, const Tensor& a, const Tensor& b) {
  return dispatch_all(a.dtype(), [&]<class T>() { return compare_typed<T>(op, a, b); });
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  const Shape shape =
      broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor y = Tensor::empty_cpu(shape, a.dtype());
  dispatch_all(a.dtype(), [&]<class T>() {
    const T *cs = base<T>(cond), *as = base<T>(a), *bs = base<T>(b);
    T* ys = y.data_ptr<T>();
    const Shape sc = broadcast_strides(cond.shape(), cond.strides(), shape);
    const Shape sa = broadcast_strides(a.shape(), a.strides(), shape);
    const Shape sb = broadcast_strides(b.shape(), b.strides(), shape);
    for_each_row<4>(shape, {y.strides(), sc, sa, sb}, [&](auto off, std::int64_t n, auto inner) {
      T* yp = ys + off[0];
      const T* cp = cs + off[1];
      const T* ap = as + off[2];
      const T* bp = bs + off[3];
      for (std::int64_t i = 0; i < n; ++i)
        yp[i * inner[0]] = cp[i * inner[1]] != T(0) ? ap[i * inner[2]] : bp[i * inner[3]];
    });
  });
  return y;
}

Tensor nonzero_flat(const Tensor& mask) {
  return dispatch_all(mask.dtype(), [&]<class T>() {
    const T* m = mask.numel() > 0 ? mask.data_ptr<T>() : nullptr;
    const std::int64_t n = mask.numel();
    std::int64_t count = 0;
    for (std::int64_t i = 0; i < n; ++i) count += m[i] != T(0);
    Tensor out = Tensor::empty_cpu({count}, kInt64);
    std::int64_t* o = count > 0 ? out.data_ptr<std::int64_t>() : nullptr;
    for (std::int64_t i = 0, j = 0; i < n; ++i)
      if (m[i] != T(0)) o[j++] = i;
    return out;
  });
}

Tensor topk(const Tensor& x, std::int64_t k, bool largest, Tensor* indices) {
  const std::int64_t rows = x.size(0), n = x.size(1);
  Tensor values = Tensor::empty_cpu({rows, k}, x.dtype());
  Tensor idx = Tensor::empty_cpu({rows, k}, kInt64);
  if (rows > 0 && k > 0) {
    dispatch_all(x.dtype(), [&]<class T>() {
      const T* xs = x.data_ptr<T>();
      T* vs = values.data_ptr<T>();
      std::int64_t* is = idx.data_ptr<std::int64_t>();
      const bool parallel = rows > 1 && static_cast<double>(rows) * static_cast<double>(n) >=
                                            static_cast<double>(kParallelGrain);
#pragma omp parallel if (parallel)
      {
        std::vector<std::int64_t> order(static_cast<std::size_t>(n));
#pragma omp for schedule(static)
        for (std::int64_t r = 0; r < rows; ++r) {
          const T* row = xs + r * n;
          std::iota(order.begin(), order.end(), std::int64_t{0});
          const auto before = [row, largest](std::int64_t i, std::int64_t j) {
            return topk_before(row[i], i, row[j], j, largest);
          };
          if (k == n)
            std::sort(order.begin(), order.end(), before);
          else
            std::partial_sort(order.begin(), order.begin() + k, order.end(), before);
          for (std::int64_t j = 0; j < k; ++j) {
            const std::int64_t at = order[static_cast<std::size_t>(j)];
            vs[r * k + j] = row[at];
            is[r * k + j] = at;
          }
        }
      }
    });
  }
  if (indices) *indices = idx;
  return values;
}

}  // namespace convtape::cpu
