// CPU elementwise kernels. Each op is a small functor; the strided iterator supplies rows whose
// unit-stride case the compiler vectorises.
#include "cpu/elementwise.h"

#include <cmath>

#include "cpu/binary_loop.h"
#include "cpu/strided.h"

namespace convtape::cpu {

namespace {

template <class T>
T sigmoid(T x) {
  // Split by sign so that exp never overflows.
  if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
  const T e = std::exp(x);
  return e / (T(1) + e);
}

template <class T>
T sign(T x) {
  return static_cast<T>((x > T(0)) - (x < T(0)));
}

template <class T, class F>
Tensor map_unary(const Tensor& x, F f) {
  Tensor y = Tensor::empty_cpu(x.shape(), x.dtype());
  const T* xs = static_cast<const T*>(x.storage()->data()) + x.offset();
  T* ys = y.data_ptr<T>();
  for_each_row<2>(x.shape(), {y.strides(), x.strides()}, [&](auto off, std::int64_t n, auto inner) {
    T* yp = ys + off[0];
    const T* xp = xs + off[1];
    if (inner[1] == 1) {
      for (std::int64_t i = 0; i < n; ++i) yp[i] = f(xp[i]);
    } else {
      for (std::int64_t i = 0; i < n; ++i) yp[i * inner[0]] = f(xp[i * inner[1]]);
    }
  });
  return y;
}

template <class T>
Tensor unary_typed(Unary op, const Tensor& x, T p0, T p1) {
  switch (op) {
    case Unary::Neg:
      return map_unary<T>(x, [](T v) { return -v; });
    case Unary::Exp:
      return map_unary<T>(x, [](T v) { return std::exp(v); });
    case Unary::Log:
      return map_unary<T>(x, [](T v) { return std::log(v); });
    case Unary::Sqrt:
      return map_unary<T>(x, [](T v) { return std::sqrt(v); });
    case Unary::Abs:
      return map_unary<T>(x, [](T v) { return std::abs(v); });
    case Unary::Sign:
      return map_unary<T>(x, [](T v) { return sign(v); });
    case Unary::Relu:
      return map_unary<T>(x, [](T v) { return v > T(0) ? v : (v == v ? T(0) : v); });
    case Unary::Sigmoid:
      return map_unary<T>(x, [](T v) { return sigmoid(v); });
    case Unary::Tanh:
      return map_unary<T>(x, [](T v) { return std::tanh(v); });
    case Unary::LeakyRelu:
      return map_unary<T>(x, [p0](T v) { return v > T(0) ? v : v * p0; });
    case Unary::Clamp:
      return map_unary<T>(x, [p0, p1](T v) { return v < p0 ? p0 : (v > p1 ? p1 : v); });
    case Unary::PowScalar:
      return map_unary<T>(x, [p0](T v) { return std::pow(v, p0); });
    case Unary::AddScalar:
      return map_unary<T>(x, [p0](T v) { return v + p0; });
    case Unary::MulScalar:
      return map_unary<T>(x, [p0](T v) { return v * p0; });
    case Unary::DivScalar:
      return map_unary<T>(x, [p0](T v) { return v / p0; });
    case Unary::RSubScalar:
      return map_unary<T>(x, [p0](T v) { return p0 - v; });
    case Unary::RDivScalar:
      return map_unary<T>(x, [p0](T v) { return p0 / v; });
  }
  return {};
}

template <class T>
Tensor binary_typed(Binary op, const Tensor& a, const Tensor& b, T p0, T p1) {
  switch (op) {
    case Binary::Add:
      return map_broadcast<T>("binary", a, b, [](T u, T v) { return u + v; });
    case Binary::Sub:
      return map_broadcast<T>("binary", a, b, [](T u, T v) { return u - v; });
    case Binary::Mul:
      return map_broadcast<T>("binary", a, b, [](T u, T v) { return u * v; });
    case Binary::Div:
      return map_broadcast<T>("binary", a, b, [](T u, T v) { return u / v; });
    case Binary::Pow:
      return map_broadcast<T>("binary", a, b, [](T u, T v) { return std::pow(u, v); });
    case Binary::ReluGrad:
      return map_broadcast<T>("binary", a, b, [](T dy, T x) { return x > T(0) ? dy : T(0); });
    case Binary::LeakyReluGrad:
      return map_broadcast<T>("binary", a, b, [p0](T dy, T x) { return x > T(0) ? dy : dy * p0; });
    case Binary::SigmoidGrad:
      return map_broadcast<T>("binary", a, b, [](T dy, T y) { return dy * y * (T(1) - y); });
    case Binary::TanhGrad:
      return map_broadcast<T>("binary", a, b, [](T dy, T y) { return dy * (T(1) - y * y); });
    case Binary::AbsGrad:
      return map_broadcast<T>("binary", a, b, [](T dy, T x) { return dy * sign(x); });
    case Binary::ClampGrad:
      return map_broadcast<T>("binary", a, b,
                              [p0, p1](T dy, T x) { return x >= p0 && x <= p1 ? dy : T(0); });
    case Binary::SqrtGrad:
      return map_broadcast<T>("binary", a, b, [](T dy, T y) { return dy / (T(2) * y); });
    case Binary::PowScalarGrad:
      return map_broadcast<T>("binary", a, b, [p0](T dy, T x) {
        return p0 == T(0) ? T(0) : dy * p0 * std::pow(x, p0 - T(1));
      });
  }
  return {};
}

}  // namespace

Tensor unary(Unary op, const Tensor& x, double p0, double p1) {
  return dispatch_floating(x.dtype(), [&]<class T>() {
    return unary_typed<T>(op, x, static_cast<T>(p0), static_cast<T>(p1));
  });
}

Tensor binary(Binary op, const Tensor& a, const Tensor& b, double p0, double p1) {
  return dispatch_floating(a.dtype(), [&]<class T>() {
    return binary_typed<T>(op, a, b, static_cast<T>(p0), static_cast<T>(p1));
  });
}

void axpy_(Tensor& y, const Tensor& x, double alpha) {
  dispatch_floating(y.dtype(), [&]<class T>() {
    T* yp = y.data_ptr<T>();
    const T* xp = x.data_ptr<T>();
    const T a = static_cast<T>(alpha);
    const std::int64_t n = y.numel();
#pragma omp parallel for simd schedule(static) if (n >= (1 << 18))
    for (std::int64_t i = 0; i < n; ++i) yp[i] += a * xp[i];
  });
}

void scale_(Tensor& y, double factor) {
  dispatch_floating(y.dtype(), [&]<class T>() {
    T* yp = y.data_ptr<T>();
    const T f = static_cast<T>(factor);
    const std::int64_t n = y.numel();
#pragma omp parallel for simd schedule(static) if (n >= (1 << 18))
    for (std::int64_t i = 0; i < n; ++i) yp[i] *= f;
  });
}

}  // namespace convtape::cpu
