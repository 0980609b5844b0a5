// SGD's step: one fused kernel per parameter (backend::sgd_step_, core/kernels.def), so that a
// parameter's update is one pass over its memory on either device instead of three to five tensor
// ops and their temporaries. The kernel gives the bits of those ops (core/kernel_args.h's SgdStep).
#include "optim/sgd.h"

#include <cmath>

#include "core/autograd.h"
#include "core/kernel_args.h"
#include "ops/backend.h"
#include "ops/factory.h"

namespace convtape::optim {

Hyper SGDOptions::to_hyper() const {
  return {{"lr", lr_},
          {"momentum", momentum_},
          {"dampening", dampening_},
          {"nesterov", nesterov_ ? 1.0 : 0.0},
          {"weight_decay", weight_decay_}};
}

SGDOptions SGDOptions::from_hyper(const Hyper& h) {
  return SGDOptions(h.at("lr"))
      .momentum(h.at("momentum"))
      .dampening(h.at("dampening"))
      .nesterov(h.at("nesterov") != 0.0)
      .weight_decay(h.at("weight_decay"));
}

SGD::SGD(std::vector<Tensor> params, const SGDOptions& options)
    : SGD(std::vector<ParamGroup>{ParamGroup(std::move(params))}, options) {}

SGD::SGD(std::vector<ParamGroup> groups, const SGDOptions& options)
    : Optimizer("SGD", options.to_hyper()) {
  init_groups(std::move(groups));
}

void SGD::check_hyper(const Hyper& h, const std::string& where) const {
  const double lr = h.at("lr"), momentum = h.at("momentum"), dampening = h.at("dampening"),
               nesterov = h.at("nesterov"), wd = h.at("weight_decay");
  CT_CHECK(lr >= 0.0, "SGD: expected lr >= 0{}, got {}", where, lr);
  CT_CHECK(momentum >= 0.0, "SGD: expected momentum >= 0{}, got {}", where, momentum);
  CT_CHECK(std::isfinite(dampening), "SGD: expected a finite dampening{}, got {}", where,
           dampening);
  CT_CHECK(wd >= 0.0, "SGD: expected weight_decay >= 0{}, got {}", where, wd);
  CT_CHECK(nesterov == 0.0 || nesterov == 1.0, "SGD: expected nesterov 0 or 1{}, got {}", where,
           nesterov);
  CT_CHECK(nesterov == 0.0 || (momentum > 0.0 && dampening == 0.0),
           "SGD: expected momentum > 0 and dampening 0 with nesterov{}, got momentum {} and "
           "dampening {}",
           where, momentum, dampening);
}

Optimizer::StateLayout SGD::state_layout(const Hyper& h) const {
  if (h.at("momentum") == 0.0) return {};
  return {{"momentum_buffer"}, {}};
}

void SGD::step() {
  NoGradGuard no_grad;
  for (std::size_t gi = 0; gi < param_groups().size(); ++gi) {
    const SGDOptions o = SGDOptions::from_hyper(checked_hyper(gi));
    SgdStep s{o.lr(), o.momentum(), o.dampening(), o.weight_decay(), o.nesterov(), false};
    for (Tensor& p : param_groups()[gi].params) {
      const Tensor grad = p.grad();
      if (!grad.defined()) continue;
      // The kernel takes contiguous operands of p's dtype: a no-op for most gradients (backward
      // and set_grad leave p's shape, dtype and device), a copy for a strided one. A strided
      // parameter (a view made a leaf) steps through a contiguous copy that is written back.
      const Tensor g = grad.to(p.dtype()).contiguous();
      Tensor target = p.contiguous();
      Tensor no_buffer;
      Tensor* buffer = &no_buffer;
      if (o.momentum() != 0.0) {
        ParamState& st = state_of(p);
        auto it = st.buffers.find("momentum_buffer");
        s.first = it == st.buffers.end();
        // New buffers are left unwritten: the kernel writes d into them (s.first).
        if (s.first) it = st.buffers.emplace("momentum_buffer", empty_like(target)).first;
        // Buffers are born contiguous, here and in load_state_dict; the kernel relies on it.
        if (!it->second.is_contiguous()) it->second = it->second.contiguous();
        buffer = &it->second;
      }
      backend::sgd_step_(target, g, *buffer, s);
      if (target.impl() == p.impl()) {
        p.storage()->bump_version();  // as an in-place op: saved copies of p are now stale
      } else {
        p.copy_(target);
      }
    }
  }
}

}  // namespace convtape::optim
