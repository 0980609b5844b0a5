// What the CUDA kernels are made of, in plain C++ that compiles on both sides: CT_HD marks a
// function for host and device under nvcc (and is empty for g++); the math wrappers pick CUDA's
// device overloads on the device and <cmath> on the host; StridedIndexer maps a row-major linear
// index to the element offset of a strided (or broadcast, stride 0) view; atomic_add is atomicAdd
// on the device and a plain += on the host.
//
// Every kernel of the backend is a functor with `CT_HD void operator()(std::int64_t i) const` over
// its output (or work-item) index, declared in a cuda/*_body.h header that includes only this one.
// The .cu files launch them in grid-stride loops (cuda/launch.cuh); the CPU test suite runs the
// same functors sequentially over every index on host buffers and compares them with the CPU
// backend (tests/cuda_host/*_body_test.cpp), so the index maths is tested on machines without a
// GPU.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#if defined(__CUDACC__)
#define CT_HD __host__ __device__
#else
#define CT_HD
#endif

namespace convtape::cuda {

// The most dimensions a strided operand of a CUDA kernel may have (after merging).
inline constexpr int kMaxDims = 16;

struct StridedIndexer {
  int ndim = 0;
  std::int64_t sizes[kMaxDims] = {};
  std::int64_t strides[kMaxDims] = {};

  CT_HD std::int64_t offset(std::int64_t linear) const {
    std::int64_t off = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      const std::int64_t s = sizes[d];
      off += (linear % s) * strides[d];
      linear /= s;
    }
    return off;
  }
};

template <class T>
CT_HD inline void atomic_add(T* p, T v) {
#if defined(__CUDA_ARCH__)
  atomicAdd(p, v);
#else
  *p += v;
#endif
}

template <class T>
CT_HD inline bool is_nan(T x) {
  return x != x;
}

template <class T>
CT_HD inline T infinity() {
#if defined(__CUDA_ARCH__)
  return static_cast<T>(1.0 / 0.0);
#else
  return std::numeric_limits<T>::infinity();
#endif
}

#if defined(__CUDA_ARCH__)
#define CT_DEVICE_MATH_1(name)        \
  template <class T>                  \
  __device__ inline T d_##name(T x) { \
    return ::name(x);                 \
  }
#define CT_DEVICE_MATH_2(name)             \
  template <class T>                       \
  __device__ inline T d_##name(T x, T y) { \
    return ::name(x, y);                   \
  }
#else
#define CT_DEVICE_MATH_1(name) \
  template <class T>           \
  inline T d_##name(T x) {     \
    return std::name(x);       \
  }
#define CT_DEVICE_MATH_2(name)  \
  template <class T>            \
  inline T d_##name(T x, T y) { \
    return std::name(x, y);     \
  }
#endif
// d_exp, d_log, d_sqrt, d_tanh, d_fabs, d_floor, d_ceil and d_pow, for float and double
// overloads on both sides.
CT_DEVICE_MATH_1(exp)
CT_DEVICE_MATH_1(log)
CT_DEVICE_MATH_1(sqrt)
CT_DEVICE_MATH_1(tanh)
CT_DEVICE_MATH_1(fabs)
CT_DEVICE_MATH_1(floor)
CT_DEVICE_MATH_1(ceil)
CT_DEVICE_MATH_2(pow)
#undef CT_DEVICE_MATH_1
#undef CT_DEVICE_MATH_2

}  // namespace convtape::cuda
