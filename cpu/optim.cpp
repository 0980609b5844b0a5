// CPU optimizer steps: SGD's update of a parameter in one pass over its elements
// (core/kernels.def's sgd_step_; core/kernel_args.h's SgdStep gives the maths). Per element i, in
// the dtype T:
//   d = g[i] + p[i] * weight_decay;  buf[i] = first ? d : buf[i] * momentum + (1 - dampening) * d;
//   d = nesterov ? d + buf[i] * momentum : buf[i];  p[i] = p[i] + (-lr) * d
// which is what optim/sgd.cpp's tensor ops did one tensor at a time, operation for operation.
#include <cstdint>
#include <type_traits>

#include "cpu/backend_kernels.h"

namespace convtape::cpu {

namespace {

// Below this many elements one thread is faster than waking the team (as cpu/elementwise.cpp's
// in-place updates).
constexpr std::int64_t kParallelMin = std::int64_t{1} << 18;

template <class T>
struct SgdCoefs {
  T weight_decay, momentum, keep, neg_lr;  // keep = 1 - dampening
};

// One pass with the options that change the loop's shape fixed at compile time, so that each
// variant is a branch-free loop the compiler vectorises and no variant touches memory it does not
// need (buf is null without momentum, and not read on the first step).
template <class T, bool kDecay, bool kMomentum, bool kFirst, bool kNesterov>
void sgd_pass(T* p, const T* g, T* buf, std::int64_t n, SgdCoefs<T> c) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (std::int64_t i = 0; i < n; ++i) {
    T d = g[i];
    if constexpr (kDecay) d = d + p[i] * c.weight_decay;
    if constexpr (kMomentum) {
      T b;
      if constexpr (kFirst) {
        b = d;
      } else {
        b = buf[i] * c.momentum + c.keep * d;
      }
      buf[i] = b;
      if constexpr (kNesterov) {
        d = d + b * c.momentum;
      } else {
        d = b;
      }
    }
    p[i] = p[i] + c.neg_lr * d;
  }
}

// Calls f(std::true_type{}) or f(std::false_type{}): a run-time flag made a template argument.
template <class F>
void with_flag(bool flag, F&& f) {
  if (flag) {
    f(std::true_type{});
  } else {
    f(std::false_type{});
  }
}

}  // namespace

void sgd_step_(Tensor& param, const Tensor& grad, Tensor& momentum_buffer, const SgdStep& s) {
  dispatch_floating(param.dtype(), [&]<class T>() {
    T* p = param.data_ptr<T>();
    const T* g = grad.data_ptr<T>();
    const std::int64_t n = param.numel();
    // The conversions of the unfused ops: mul(p, wd), mul_(momentum), add_(d, 1 - dampening),
    // add_(d, -lr) each turned its double into T.
    const SgdCoefs<T> c{static_cast<T>(s.weight_decay), static_cast<T>(s.momentum),
                        static_cast<T>(1.0 - s.dampening), static_cast<T>(-s.lr)};
    with_flag(s.weight_decay != 0.0, [&](auto decay) {
      constexpr bool kDecay = decltype(decay)::value;
      if (s.momentum == 0.0) {
        sgd_pass<T, kDecay, false, false, false>(p, g, nullptr, n, c);
        return;
      }
      T* buf = momentum_buffer.data_ptr<T>();
      with_flag(s.first, [&](auto first) {
        with_flag(s.nesterov, [&](auto nesterov) {
          sgd_pass<T, kDecay, true, decltype(first)::value, decltype(nesterov)::value>(p, g, buf, n,
                                                                                       c);
        });
      });
    });
  });
}

}  // namespace convtape::cpu
