// The CUDA elementwise kernels as host/device functors (cuda/device_fn.h), shared by
// cuda/elementwise.cu, cuda/copy.cu (through cuda/copy_body.h) and the host tests. Work item i is
// element i of the output in row-major order over the shape that the host has reduced by merging
// dims (cuda/elementwise_plan.h); each operand finds its element through an index of one layout
// for the whole call: contiguous (i), linear (i * stride: one merged dim), strided with 32-bit
// multiply-shift divisions (fewer than 2^31 elements) or strided with StridedIndexer's 64-bit
// divisions (the rest); broadcast dims have stride 0.
//   unary   y[i] = f(x[ix(i)]; p0, p1)                y contiguous
//   binary  y[i] = f(a[ia(i)], b[ib(i)]; p0, p1)      y contiguous, shape broadcast(a, b)
//   axpy    y[i] = y[i] + alpha * x[i]     scale  y[i] = y[i] * factor     (contiguous)
// Each formula is cpu/elementwise.cpp's, operation for operation, so the host tests compare bit
// for bit and the device differs only by its libm (exp, log, tanh, pow).
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "cuda/device_fn.h"

namespace convtape::cuda {

// The maps of convtape::Unary / convtape::Binary (core/kernel_args.h, which .cu files cannot
// include); cuda/elementwise_plan.h translates.
enum class UnaryKind {
  Neg,
  Exp,
  Log,
  Sqrt,
  Abs,
  Sign,
  Relu,
  Sigmoid,
  Tanh,
  LeakyRelu,
  Clamp,
  PowScalar,
  AddScalar,
  MulScalar,
  DivScalar,
  RSubScalar,
  RDivScalar,
};

enum class BinaryKind {
  Add,
  Sub,
  Mul,
  Div,
  Pow,
  ReluGrad,
  LeakyReluGrad,
  SigmoidGrad,
  TanhGrad,
  AbsGrad,
  ClampGrad,
  SqrtGrad,
  PowScalarGrad,
};

// ---------------------------------------------------------------------------- operand indices

struct ContiguousIndex {
  CT_HD std::int64_t offset(std::int64_t i) const { return i; }
};

struct LinearIndex {
  std::int64_t stride = 1;
  CT_HD std::int64_t offset(std::int64_t i) const { return i * stride; }
};

// n / d for n < 2^31 and 1 <= d <= 2^31 by a multiply-high and a shift (Granlund and Montgomery,
// as in PyTorch's IntDivider): the device has no 64-bit divider, and its software division costs
// dozens of instructions per dim and operand.
struct FastDivider {
  std::uint32_t divisor = 1, magic = 1, shift = 0;

  FastDivider() = default;
  explicit FastDivider(std::uint32_t d) : divisor(d) {
    while (shift < 32 && (std::uint32_t{1} << shift) < d) ++shift;
    const std::uint64_t one = 1;
    magic = static_cast<std::uint32_t>(((one << 32) * ((one << shift) - d)) / d + 1);
  }

  CT_HD std::uint32_t div(std::uint32_t n) const {
#if defined(__CUDA_ARCH__)
    const std::uint32_t t = __umulhi(n, magic);
#else
    const auto t = static_cast<std::uint32_t>((static_cast<std::uint64_t>(n) * magic) >> 32);
#endif
    return (t + n) >> shift;
  }
};

// StridedIndexer for index spaces of fewer than 2^31 elements.
struct StridedIndexer32 {
  int ndim = 0;
  FastDivider sizes[kMaxDims];
  std::int64_t strides[kMaxDims] = {};

  CT_HD std::int64_t offset(std::int64_t i) const {
    auto linear = static_cast<std::uint32_t>(i);
    std::int64_t off = 0;
    for (int d = ndim - 1; d > 0; --d) {
      const std::uint32_t q = sizes[d].div(linear);
      off += static_cast<std::int64_t>(linear - q * sizes[d].divisor) * strides[d];
      linear = q;
    }
    // i < the product of the sizes, so what is left indexes dim 0.
    return ndim > 0 ? off + static_cast<std::int64_t>(linear) * strides[0] : off;
  }
};

enum class Layout : int { Contiguous, Linear, Strided32, Strided };

// One call's layout and the indexers of up to three operands (which operand sits where is the
// map's convention). Linear reads index[k].strides[0]; Strided32 reads index32[k].
struct MapLayout {
  Layout layout = Layout::Contiguous;
  StridedIndexer index[3];
  StridedIndexer32 index32[3];
};

namespace detail {
template <class F, std::size_t... K>
decltype(auto) visit_layout(const MapLayout& m, F&& f, std::index_sequence<K...>) {
  switch (m.layout) {
    case Layout::Contiguous:
      return f(((void)K, ContiguousIndex{})...);
    case Layout::Linear:
      return f(LinearIndex{m.index[K].strides[0]}...);
    case Layout::Strided32:
      return f(m.index32[K]...);
    case Layout::Strided:
      break;
  }
  return f(m.index[K]...);
}
}  // namespace detail

// Calls f with the indices of operands 0 .. N-1, all of one type, so that each layout is its own
// kernel: contiguous and one-dim calls pay no division at all.
template <std::size_t N, class F>
decltype(auto) visit_layout(const MapLayout& m, F&& f) {
  return detail::visit_layout(m, f, std::make_index_sequence<N>{});
}

// ---------------------------------------------------------------------------- scalar maths

namespace ew {

// Split by sign so that exp never overflows.
template <class T>
CT_HD inline T sigmoid(T x) {
  if (x >= T(0)) return T(1) / (T(1) + d_exp(-x));
  const T e = d_exp(x);
  return e / (T(1) + e);
}

// -1, 0 or 1; 0 for NaN.
template <class T>
CT_HD inline T sign(T x) {
  return static_cast<T>((x > T(0)) - (x < T(0)));
}

// A product that the device compiler must not fuse with the sum it feeds (nvcc contracts a * b + c
// into one FMA by default; the CPU backend rounds the product first).
CT_HD inline float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
CT_HD inline double mul_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}

}  // namespace ew

// f(x) of UnaryKind K; p0 and p1 as in convtape::Unary.
template <class T, UnaryKind K>
struct UnaryFn {
  T p0 = T(0), p1 = T(0);

  CT_HD T operator()(T v) const {
    if constexpr (K == UnaryKind::Neg) {
      return -v;
    } else if constexpr (K == UnaryKind::Exp) {
      return d_exp(v);
    } else if constexpr (K == UnaryKind::Log) {
      return d_log(v);
    } else if constexpr (K == UnaryKind::Sqrt) {
      return d_sqrt(v);
    } else if constexpr (K == UnaryKind::Abs) {
      return d_fabs(v);
    } else if constexpr (K == UnaryKind::Sign) {
      return ew::sign(v);
    } else if constexpr (K == UnaryKind::Relu) {
      return v > T(0) ? v : (v == v ? T(0) : v);  // NaN passes through
    } else if constexpr (K == UnaryKind::Sigmoid) {
      return ew::sigmoid(v);
    } else if constexpr (K == UnaryKind::Tanh) {
      return d_tanh(v);
    } else if constexpr (K == UnaryKind::LeakyRelu) {
      return v > T(0) ? v : v * p0;
    } else if constexpr (K == UnaryKind::Clamp) {
      return v < p0 ? p0 : (v > p1 ? p1 : v);  // NaN passes through
    } else if constexpr (K == UnaryKind::PowScalar) {
      return d_pow(v, p0);
    } else if constexpr (K == UnaryKind::AddScalar) {
      return v + p0;
    } else if constexpr (K == UnaryKind::MulScalar) {
      return v * p0;
    } else if constexpr (K == UnaryKind::DivScalar) {
      return v / p0;
    } else if constexpr (K == UnaryKind::RSubScalar) {
      return p0 - v;
    } else {
      static_assert(K == UnaryKind::RDivScalar, "every UnaryKind has a formula");
      return p0 / v;
    }
  }
};

// f(a, b) of BinaryKind K; for the gradient maps a = dy and b = the saved tensor.
template <class T, BinaryKind K>
struct BinaryFn {
  T p0 = T(0), p1 = T(0);

  CT_HD T operator()(T u, T v) const {
    if constexpr (K == BinaryKind::Add) {
      return u + v;
    } else if constexpr (K == BinaryKind::Sub) {
      return u - v;
    } else if constexpr (K == BinaryKind::Mul) {
      return u * v;
    } else if constexpr (K == BinaryKind::Div) {
      return u / v;
    } else if constexpr (K == BinaryKind::Pow) {
      return d_pow(u, v);
    } else if constexpr (K == BinaryKind::ReluGrad) {
      return v > T(0) ? u : T(0);
    } else if constexpr (K == BinaryKind::LeakyReluGrad) {
      return v > T(0) ? u : u * p0;
    } else if constexpr (K == BinaryKind::SigmoidGrad) {
      return u * v * (T(1) - v);
    } else if constexpr (K == BinaryKind::TanhGrad) {
      return u * (T(1) - ew::mul_rn(v, v));
    } else if constexpr (K == BinaryKind::AbsGrad) {
      return u * ew::sign(v);
    } else if constexpr (K == BinaryKind::ClampGrad) {
      return v >= p0 && v <= p1 ? u : T(0);
    } else if constexpr (K == BinaryKind::SqrtGrad) {
      return u / (T(2) * v);
    } else {
      static_assert(K == BinaryKind::PowScalarGrad, "every BinaryKind has a formula");
      return p0 == T(0) ? T(0) : u * p0 * d_pow(v, p0 - T(1));
    }
  }
};

// Calls f(UnaryFn<T, kind>{p0, p1}): one kernel per map.
template <class T, class F>
decltype(auto) visit_unary(UnaryKind kind, T p0, T p1, F&& f) {
  switch (kind) {
    case UnaryKind::Neg:
      return f(UnaryFn<T, UnaryKind::Neg>{p0, p1});
    case UnaryKind::Exp:
      return f(UnaryFn<T, UnaryKind::Exp>{p0, p1});
    case UnaryKind::Log:
      return f(UnaryFn<T, UnaryKind::Log>{p0, p1});
    case UnaryKind::Sqrt:
      return f(UnaryFn<T, UnaryKind::Sqrt>{p0, p1});
    case UnaryKind::Abs:
      return f(UnaryFn<T, UnaryKind::Abs>{p0, p1});
    case UnaryKind::Sign:
      return f(UnaryFn<T, UnaryKind::Sign>{p0, p1});
    case UnaryKind::Relu:
      return f(UnaryFn<T, UnaryKind::Relu>{p0, p1});
    case UnaryKind::Sigmoid:
      return f(UnaryFn<T, UnaryKind::Sigmoid>{p0, p1});
    case UnaryKind::Tanh:
      return f(UnaryFn<T, UnaryKind::Tanh>{p0, p1});
    case UnaryKind::LeakyRelu:
      return f(UnaryFn<T, UnaryKind::LeakyRelu>{p0, p1});
    case UnaryKind::Clamp:
      return f(UnaryFn<T, UnaryKind::Clamp>{p0, p1});
    case UnaryKind::PowScalar:
      return f(UnaryFn<T, UnaryKind::PowScalar>{p0, p1});
    case UnaryKind::AddScalar:
      return f(UnaryFn<T, UnaryKind::AddScalar>{p0, p1});
    case UnaryKind::MulScalar:
      return f(UnaryFn<T, UnaryKind::MulScalar>{p0, p1});
    case UnaryKind::DivScalar:
      return f(UnaryFn<T, UnaryKind::DivScalar>{p0, p1});
    case UnaryKind::RSubScalar:
      return f(UnaryFn<T, UnaryKind::RSubScalar>{p0, p1});
    case UnaryKind::RDivScalar:
      break;
  }
  return f(UnaryFn<T, UnaryKind::RDivScalar>{p0, p1});
}

template <class T, class F>
decltype(auto) visit_binary(BinaryKind kind, T p0, T p1, F&& f) {
  switch (kind) {
    case BinaryKind::Add:
      return f(BinaryFn<T, BinaryKind::Add>{p0, p1});
    case BinaryKind::Sub:
      return f(BinaryFn<T, BinaryKind::Sub>{p0, p1});
    case BinaryKind::Mul:
      return f(BinaryFn<T, BinaryKind::Mul>{p0, p1});
    case BinaryKind::Div:
      return f(BinaryFn<T, BinaryKind::Div>{p0, p1});
    case BinaryKind::Pow:
      return f(BinaryFn<T, BinaryKind::Pow>{p0, p1});
    case BinaryKind::ReluGrad:
      return f(BinaryFn<T, BinaryKind::ReluGrad>{p0, p1});
    case BinaryKind::LeakyReluGrad:
      return f(BinaryFn<T, BinaryKind::LeakyReluGrad>{p0, p1});
    case BinaryKind::SigmoidGrad:
      return f(BinaryFn<T, BinaryKind::SigmoidGrad>{p0, p1});
    case BinaryKind::TanhGrad:
      return f(BinaryFn<T, BinaryKind::TanhGrad>{p0, p1});
    case BinaryKind::AbsGrad:
      return f(BinaryFn<T, BinaryKind::AbsGrad>{p0, p1});
    case BinaryKind::ClampGrad:
      return f(BinaryFn<T, BinaryKind::ClampGrad>{p0, p1});
    case BinaryKind::SqrtGrad:
      return f(BinaryFn<T, BinaryKind::SqrtGrad>{p0, p1});
    case BinaryKind::PowScalarGrad:
      break;
  }
  return f(BinaryFn<T, BinaryKind::PowScalarGrad>{p0, p1});
}

// ---------------------------------------------------------------------------- kernels

template <class T, class Op, class Index>
struct UnaryMap {
  const T* x;
  T* y;
  Index ix;
  Op op;

  CT_HD void operator()(std::int64_t i) const { y[i] = op(x[ix.offset(i)]); }
};

template <class T, class Op, class Index>
struct BinaryMap {
  const T* a;
  const T* b;
  T* y;
  Index ia, ib;
  Op op;

  CT_HD void operator()(std::int64_t i) const { y[i] = op(a[ia.offset(i)], b[ib.offset(i)]); }
};

template <class T>
struct AxpyMap {
  T* y;
  const T* x;
  T alpha;

  CT_HD void operator()(std::int64_t i) const { y[i] = y[i] + ew::mul_rn(alpha, x[i]); }
};

template <class T>
struct ScaleMap {
  T* y;
  T factor;

  CT_HD void operator()(std::int64_t i) const { y[i] = y[i] * factor; }
};

// Builds the kernel of one unary call and hands it to run (a device launch, or a host loop in the
// tests). The layout's operand 0 is x.
template <class T, class Run>
decltype(auto) run_unary(UnaryKind kind, const T* x, T* y, const MapLayout& m, T p0, T p1,
                         Run&& run) {
  return visit_unary<T>(kind, p0, p1, [&](auto op) -> decltype(auto) {
    return visit_layout<1>(m, [&](auto ix) -> decltype(auto) {
      return run(UnaryMap<T, decltype(op), decltype(ix)>{x, y, ix, op});
    });
  });
}

// As run_unary; the layout's operands 0 and 1 are a and b.
template <class T, class Run>
decltype(auto) run_binary(BinaryKind kind, const T* a, const T* b, T* y, const MapLayout& m, T p0,
                          T p1, Run&& run) {
  return visit_binary<T>(kind, p0, p1, [&](auto op) -> decltype(auto) {
    return visit_layout<2>(m, [&](auto ia, auto ib) -> decltype(auto) {
      return run(BinaryMap<T, decltype(op), decltype(ia)>{a, b, y, ia, ib, op});
    });
  });
}

}  // namespace convtape::cuda
