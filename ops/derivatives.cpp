// vjp, jvp (double vjp) and hvp (vjp of the gradient) on autograd::grad; see ops/derivatives.h.
#include "ops/derivatives.h"

#include <string_view>

#include "core/autograd.h"
#include "ops/elementwise.h"
#include "ops/factory.h"

namespace convtape::autograd {

namespace {

// The point: new leaves, or (create_graph) the inputs as they are when they require grad.
std::vector<Tensor> prepare(std::string_view op, const std::vector<Tensor>& inputs,
                            bool create_graph) {
  CT_CHECK(!inputs.empty(), "{}: expected at least one input, got none", op);
  std::vector<Tensor> xs;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    CT_CHECK(x.defined() && x.is_floating_point(),
             "{}: expected floating-point inputs, got {} for input {}", op,
             x.defined() ? dtype_name(x.dtype()) : std::string("an undefined tensor"), i);
    xs.push_back(create_graph && x.requires_grad() ? x : x.detach().requires_grad_(true));
  }
  return xs;
}

void check_directions(std::string_view op, std::string_view what, const std::vector<Tensor>& xs,
                      const std::vector<Tensor>& ds) {
  CT_CHECK(ds.size() == xs.size(), "{}: expected one {} per input ({}), got {}", op, what,
           xs.size(), ds.size());
  for (std::size_t i = 0; i < xs.size(); ++i)
    CT_CHECK(ds[i].defined() && ds[i].shape() == xs[i].shape() && ds[i].dtype() == xs[i].dtype() &&
                 ds[i].device() == xs[i].device(),
             "{}: expected {} {} of shape {} ({}, {}), got {}", op, what, i,
             to_string(xs[i].shape()), dtype_name(xs[i].dtype()), xs[i].device().str(),
             ds[i].defined() ? fmt::format("{} ({}, {})", to_string(ds[i].shape()),
                                           dtype_name(ds[i].dtype()), ds[i].device().str())
                             : std::string("an undefined tensor"));
}

Tensor evaluate(std::string_view op, const Function& f, const std::vector<Tensor>& xs) {
  CT_CHECK(f != nullptr, "{}: expected a function, got an empty one", op);
  GradModeGuard on(true);
  Tensor y = f(xs);
  CT_CHECK(y.defined() && y.is_floating_point(),
           "{}: expected the function to return a floating-point tensor, got {}", op,
           y.defined() ? dtype_name(y.dtype()) : std::string("an undefined tensor"));
  return y;
}

// Undefined gradients (inputs not used) become zeros.
std::vector<Tensor> filled(std::vector<Tensor> gs, const std::vector<Tensor>& like) {
  for (std::size_t i = 0; i < gs.size(); ++i)
    if (!gs[i].defined()) gs[i] = zeros_like(like[i]);
  return gs;
}

}  // namespace

Derivative vjp(const Function& f, const std::vector<Tensor>& inputs, const Tensor& v,
               bool create_graph) {
  const auto xs = prepare("vjp", inputs, create_graph);
  Derivative r;
  r.output = evaluate("vjp", f, xs);
  CT_CHECK(v.defined() && v.shape() == r.output.shape() && v.dtype() == r.output.dtype() &&
               v.device() == r.output.device(),
           "vjp: expected v of the output's shape {} ({}, {}), got {}", to_string(r.output.shape()),
           dtype_name(r.output.dtype()), r.output.device().str(),
           v.defined() ? to_string(v.shape()) : std::string("an undefined tensor"));
  if (!r.output.requires_grad()) {  // f does not depend on x at all
    r.derivatives = filled(std::vector<Tensor>(xs.size()), xs);
  } else {
    GradModeGuard on(true);
    r.derivatives =
        filled(grad({r.output}, xs, {v}, {.create_graph = create_graph, .allow_unused = true}), xs);
  }
  if (!create_graph) r.output = r.output.detach();
  return r;
}

Derivative jvp(const Function& f, const std::vector<Tensor>& inputs,
               const std::vector<Tensor>& tangents, bool create_graph) {
  const auto xs = prepare("jvp", inputs, create_graph);
  check_directions("jvp", "tangent", xs, tangents);
  Derivative r;
  r.output = evaluate("jvp", f, xs);
  GradModeGuard on(true);
  Tensor jt;
  if (r.output.requires_grad()) {
    // g(u) = J^T u with a dummy u; the vjp of g in the direction t is J t.
    const Tensor u = zeros_like(r.output).requires_grad_(true);
    const auto gs = grad({r.output}, xs, {u}, {.create_graph = true, .allow_unused = true});
    std::vector<Tensor> outs, dirs;
    for (std::size_t i = 0; i < gs.size(); ++i)
      if (gs[i].defined() && gs[i].requires_grad()) {
        outs.push_back(gs[i]);
        dirs.push_back(tangents[i]);
      }
    if (!outs.empty())
      jt = grad(outs, {u}, dirs, {.create_graph = create_graph, .allow_unused = true})[0];
  }
  r.derivatives = {jt.defined() ? jt : zeros_like(r.output)};
  if (!create_graph) {
    r.output = r.output.detach();
    r.derivatives[0] = r.derivatives[0].detach();
  }
  return r;
}

Derivative hvp(const Function& f, const std::vector<Tensor>& inputs, const std::vector<Tensor>& v,
               bool create_graph) {
  const auto xs = prepare("hvp", inputs, create_graph);
  check_directions("hvp", "direction", xs, v);
  Derivative r;
  r.output = evaluate("hvp", f, xs);
  CT_CHECK(r.output.numel() == 1,
           "hvp: expected a function with a one-element output, got shape {}",
           to_string(r.output.shape()));
  GradModeGuard on(true);
  std::vector<Tensor> hv(xs.size());
  if (r.output.requires_grad()) {
    const auto gs = grad({r.output}, xs, {}, {.create_graph = true, .allow_unused = true});
    std::vector<Tensor> outs, dirs;
    for (std::size_t i = 0; i < gs.size(); ++i)
      if (gs[i].defined() && gs[i].requires_grad()) {
        outs.push_back(gs[i]);
        dirs.push_back(v[i]);
      }
    if (!outs.empty())
      hv = grad(outs, xs, dirs, {.create_graph = create_graph, .allow_unused = true});
  }
  r.derivatives = filled(std::move(hv), xs);
  if (!create_graph) {
    r.output = r.output.detach();
    for (auto& d : r.derivatives) d = d.detach();
  }
  return r;
}

}  // namespace convtape::autograd
