// SGD's step, with in-place tensor methods under NoGradGuard so that the same code serves any
// device. Temporaries per parameter: the weight-decayed gradient (when weight_decay != 0) and the
// Nesterov direction (when nesterov).
#include "optim/sgd.h"

#include <cmath>

#include "core/autograd.h"
#include "ops/elementwise.h"

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
    for (Tensor& p : param_groups()[gi].params) {
      const Tensor grad = p.grad();
      if (!grad.defined()) continue;
      Tensor d = o.weight_decay() != 0.0 ? add(grad, mul(p, o.weight_decay())) : grad;
      if (o.momentum() != 0.0) {
        ParamState& st = state_of(p);
        auto it = st.buffers.find("momentum_buffer");
        if (it == st.buffers.end()) {
          it = st.buffers.emplace("momentum_buffer", d.detach().clone()).first;
        } else {
          it->second.mul_(o.momentum()).add_(d, 1.0 - o.dampening());
        }
        d = o.nesterov() ? add(d, mul(it->second, o.momentum())) : it->second;
      }
      p.add_(d, -o.lr());
    }
  }
}

}  // namespace convtape::optim
