// Strided copy with dtype conversion and fill on CPU, through the coalescing row iterator.
#include "cpu/copy.h"

#include "cpu/strided.h"

namespace convtape::cpu {

namespace {
template <class D, class S>
void copy_typed(const Tensor& src, const Tensor& dst) {
  const S* s = static_cast<const S*>(src.storage()->data());
  D* d = static_cast<D*>(dst.storage()->data());
  const Shape s_strides = broadcast_strides(src.shape(), src.strides(), dst.shape());
  const std::int64_t s0 = src.offset(), d0 = dst.offset();
  for_each_row<2>(dst.shape(), {dst.strides(), s_strides},
                  [&](auto off, std::int64_t n, auto inner) {
                    D* dp = d + d0 + off[0];
                    const S* sp = s + s0 + off[1];
                    if (inner[0] == 1 && inner[1] == 1) {
                      for (std::int64_t i = 0; i < n; ++i) dp[i] = static_cast<D>(sp[i]);
                    } else {
                      for (std::int64_t i = 0; i < n; ++i)
                        dp[i * inner[0]] = static_cast<D>(sp[i * inner[1]]);
                    }
                  });
}
}  // namespace

void copy(const Tensor& src, const Tensor& dst) {
  CT_CHECK(src.is_cpu() && dst.is_cpu(), "copy: expected CPU tensors, got {} and {}",
           src.device().str(), dst.device().str());
  dispatch_all(dst.dtype(), [&]<class D>() {
    dispatch_all(src.dtype(), [&]<class S>() { copy_typed<D, S>(src, dst); });
  });
}

void fill(const Tensor& dst, double value) {
  CT_CHECK(dst.is_cpu(), "fill: expected a CPU tensor, got one on {}", dst.device().str());
  dispatch_all(dst.dtype(), [&]<class T>() {
    T* d = static_cast<T*>(dst.storage()->data()) + dst.offset();
    const T v = static_cast<T>(value);
    for_each_row<1>(dst.shape(), {dst.strides()}, [&](auto off, std::int64_t n, auto inner) {
      T* p = d + off[0];
      for (std::int64_t i = 0; i < n; ++i) p[i * inner[0]] = v;
    });
  });
}

}  // namespace convtape::cpu
