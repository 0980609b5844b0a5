// Adam / AdamW step with in-place tensor methods under NoGradGuard (any device). The order of
// operations follows PyTorch's (value * g) * g and (-step_size * m) / denom, so that float64
// trajectories agree to rounding. Temporaries per parameter: the weight-decayed gradient (Adam
// with weight_decay), two for v's increment, two for the denominator, one for the update, and two
// for the amsgrad maximum.
#include "optim/adam.h"

#include <cmath>

#include "core/autograd.h"
#include "ops/elementwise.h"
#include "ops/factory.h"

namespace convtape::optim {

namespace detail {

void AdamBase::check_hyper(const Hyper& h, const std::string& where) const {
  const char* op = name().c_str();
  const double lr = h.at("lr"), b1 = h.at("beta1"), b2 = h.at("beta2"), eps = h.at("eps"),
               wd = h.at("weight_decay"), amsgrad = h.at("amsgrad");
  CT_CHECK(lr >= 0.0, "{}: expected lr >= 0{}, got {}", op, where, lr);
  CT_CHECK(eps >= 0.0, "{}: expected eps >= 0{}, got {}", op, where, eps);
  CT_CHECK(b1 >= 0.0 && b1 < 1.0, "{}: expected beta1 in [0, 1){}, got {}", op, where, b1);
  CT_CHECK(b2 >= 0.0 && b2 < 1.0, "{}: expected beta2 in [0, 1){}, got {}", op, where, b2);
  CT_CHECK(wd >= 0.0, "{}: expected weight_decay >= 0{}, got {}", op, where, wd);
  CT_CHECK(amsgrad == 0.0 || amsgrad == 1.0, "{}: expected amsgrad 0 or 1{}, got {}", op, where,
           amsgrad);
}

Optimizer::StateLayout AdamBase::state_layout(const Hyper& h) const {
  StateLayout layout{{"exp_avg", "exp_avg_sq"}, {"step"}};
  if (h.at("amsgrad") != 0.0) layout.buffers.push_back("max_exp_avg_sq");
  return layout;
}

void AdamBase::step() {
  NoGradGuard no_grad;
  for (std::size_t gi = 0; gi < param_groups().size(); ++gi) {
    const Hyper& h = checked_hyper(gi);
    const double lr = h.at("lr"), b1 = h.at("beta1"), b2 = h.at("beta2"), eps = h.at("eps"),
                 wd = h.at("weight_decay");
    const bool amsgrad = h.at("amsgrad") != 0.0;
    for (Tensor& p : param_groups()[gi].params) {
      Tensor grad = p.grad();
      if (!grad.defined()) continue;
      ParamState& st = state_of(p);
      if (st.empty()) {
        st.scalars["step"] = 0.0;
        st.buffers["exp_avg"] = zeros_like(p);
        st.buffers["exp_avg_sq"] = zeros_like(p);
      }
      // Also when amsgrad was switched on after the first step.
      if (amsgrad && st.buffers.count("max_exp_avg_sq") == 0)
        st.buffers["max_exp_avg_sq"] = zeros_like(p);
      const double step = st.scalars.at("step") + 1.0;
      st.scalars["step"] = step;
      if (wd != 0.0) {
        if (decoupled_)
          p.mul_(1.0 - lr * wd);
        else
          grad = add(grad, mul(p, wd));
      }
      Tensor& m = st.buffers.at("exp_avg");
      Tensor& v = st.buffers.at("exp_avg_sq");
      m.mul_(b1).add_(grad, 1.0 - b1);
      v.mul_(b2).add_(mul(mul(grad, 1.0 - b2), grad));
      const double bias_correction1 = 1.0 - std::pow(b1, step);
      const double bias_correction2_sqrt = std::sqrt(1.0 - std::pow(b2, step));
      const double step_size = lr / bias_correction1;
      Tensor second = v;
      if (amsgrad) {
        // max(a, b) = a + relu(b - a): exact whenever b <= 2a (Sterbenz), within an ulp otherwise.
        Tensor& vmax = st.buffers.at("max_exp_avg_sq");
        vmax.add_(relu(sub(v, vmax)));
        second = vmax;
      }
      const Tensor denom = add(div(sqrt(second), bias_correction2_sqrt), eps);
      p.add_(div(mul(m, -step_size), denom));
    }
  }
}

}  // namespace detail

Adam::Adam(std::vector<Tensor> params, const AdamOptions& options)
    : Adam(std::vector<ParamGroup>{ParamGroup(std::move(params))}, options) {}

Adam::Adam(std::vector<ParamGroup> groups, const AdamOptions& options)
    : AdamBase("Adam", options.to_hyper(), false) {
  init_groups(std::move(groups));
}

AdamW::AdamW(std::vector<Tensor> params, const AdamWOptions& options)
    : AdamW(std::vector<ParamGroup>{ParamGroup(std::move(params))}, options) {}

AdamW::AdamW(std::vector<ParamGroup> groups, const AdamWOptions& options)
    : AdamBase("AdamW", options.to_hyper(), true) {
  init_groups(std::move(groups));
}

}  // namespace convtape::optim
