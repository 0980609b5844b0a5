// The CUDA optimizer steps as host/device functors (cuda/device_fn.h), shared by cuda/optim.cu and
// the host tests. Work item i is element i of the contiguous parameter p, its gradient g and its
// momentum buffer buf (null without momentum):
//   d = g[i] + p[i] * weight_decay;  buf[i] = first ? d : buf[i] * momentum + keep * d;
//   d = nesterov ? d + buf[i] * momentum : buf[i];  p[i] = p[i] + neg_lr * d
// with keep = 1 - dampening and neg_lr = -lr, each step taken only when its option is on
// (core/kernel_args.h's SgdStep). The formula is cpu/optim.cpp's, operation for operation, with
// every product rounded before its sum, so the host tests compare bit for bit.
#pragma once

#include <cstdint>

#include "cuda/device_fn.h"
#include "cuda/elementwise_body.h"

namespace convtape::cuda {

template <class T>
struct SgdStepMap {
  T* p;
  const T* g;
  T* buf;
  T weight_decay, momentum, keep, neg_lr;
  // The options are uniform across the launch, so these branches never diverge within a warp.
  bool decay, has_momentum, first, nesterov;

  CT_HD void operator()(std::int64_t i) const {
    T d = g[i];
    if (decay) d = d + ew::mul_rn(p[i], weight_decay);
    if (has_momentum) {
      const T b = first ? d : ew::mul_rn(buf[i], momentum) + ew::mul_rn(keep, d);
      buf[i] = b;
      d = nesterov ? d + ew::mul_rn(b, momentum) : b;
    }
    p[i] = p[i] + ew::mul_rn(neg_lr, d);
  }
};

// The functor of one step, its coefficients converted to T as the CPU backend converts them
// (weight_decay, momentum, 1 - dampening and -lr, each computed in double first).
template <class T>
SgdStepMap<T> sgd_step_map(T* p, const T* g, T* buf, double lr, double momentum, double dampening,
                           double weight_decay, bool nesterov, bool first) {
  return SgdStepMap<T>{p,
                       g,
                       buf,
                       static_cast<T>(weight_decay),
                       static_cast<T>(momentum),
                       static_cast<T>(1.0 - dampening),
                       static_cast<T>(-lr),
                       weight_decay != 0.0,
                       momentum != 0.0,
                       first,
                       nesterov};
}

}  // namespace convtape::cuda
