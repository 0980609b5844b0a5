// The autograd engine: Tensor::backward. Reachable nodes are gathered iteratively (no recursion,
// so deep graphs cannot overflow the stack), run newest-first by sequence number (a node's inputs
// are always older than it, so this is a topological order), gradients for a tensor with several
// consumers are summed, and leaves accumulate into .grad. Without retain_graph every visited node
// drops its saved tensors and closure; reaching such a node again is an error.
#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "core/autograd.h"
#include "ops/elementwise.h"
#include "ops/factory.h"

namespace convtape {

namespace {

void accumulate_leaf(TensorImpl& leaf, const Tensor& g) {
  if (!leaf.grad) {
    // The leaf must own its gradient's storage, so that in-place updates of .grad (clipping, say)
    // touch nothing else. A fresh dense gradient that nobody else holds is taken as it is.
    const bool sole_owner =
        g.is_contiguous() && g.offset() == 0 && g.impl_ptr().use_count() == 1 &&
        g.storage().use_count() == 1 &&
        g.storage()->nbytes() == static_cast<std::size_t>(g.numel()) * dtype_size(g.dtype());
    leaf.grad = sole_owner          ? g.impl_ptr()
                : g.is_contiguous() ? g.clone().impl_ptr()
                                    : g.contiguous().impl_ptr();  // a fresh copy already
  } else {
    leaf.grad = add(Tensor(leaf.grad), g).impl_ptr();
  }
}

void run_backward(const Tensor& root, const Tensor& grad, bool retain_graph) {
  NoGradGuard no_grad;
  if (root.is_leaf()) {
    accumulate_leaf(*root.impl(), grad);
    return;
  }
  std::vector<autograd::Node*> order;
  std::unordered_set<autograd::Node*> seen;
  std::vector<autograd::Node*> stack{root.grad_fn().get()};
  seen.insert(stack.back());
  while (!stack.empty()) {
    autograd::Node* n = stack.back();
    stack.pop_back();
    CT_CHECK(!n->released,
             "backward: expected a graph that is still alive, got one freed by an earlier "
             "backward() at '{}' "
             "(pass retain_graph = true to the first backward)",
             n->name);
    order.push_back(n);
    for (auto& e : n->next)
      if (e.node && seen.insert(e.node.get()).second) stack.push_back(e.node.get());
  }
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->sequence > b->sequence; });

  std::unordered_map<autograd::Node*, Tensor> grads;
  grads.emplace(root.grad_fn().get(), grad);
  for (autograd::Node* n : order) {
    auto it = grads.find(n);
    if (it == grads.end())
      continue;  // no gradient flowed here (every consumer's gradient was skipped)
    const Tensor dy = std::move(it->second);
    grads.erase(it);
    GradMask need(n->next.size());
    for (std::size_t i = 0; i < need.size(); ++i) need[i] = n->next[i].active();
    std::vector<Tensor> gs = n->backward(n->saved, dy, need);
    CT_CHECK(gs.size() == n->next.size(), "backward of {}: expected {} input gradients, got {}",
             n->name, n->next.size(), gs.size());
    for (std::size_t i = 0; i < gs.size(); ++i) {
      if (!need[i] || !gs[i].defined()) continue;
      const auto& meta = n->inputs[i];
      CT_CHECK(gs[i].shape() == meta.shape && gs[i].dtype() == meta.dtype,
               "backward of {}: expected the gradient of input {} to be {} {}, got {} {}", n->name,
               i, to_string(meta.shape), dtype_name(meta.dtype), to_string(gs[i].shape()),
               dtype_name(gs[i].dtype()));
      auto& e = n->next[i];
      if (e.node) {
        auto [slot, fresh] = grads.try_emplace(e.node.get(), gs[i]);
        if (!fresh) slot->second = add(slot->second, gs[i]);
      } else {
        accumulate_leaf(*e.leaf, gs[i]);
      }
    }
    if (!retain_graph) {
      n->saved.clear();
      n->backward = nullptr;
      n->released = true;
    }
  }
}

}  // namespace

void Tensor::backward(const Tensor& grad, bool retain_graph) const {
  CT_CHECK(requires_grad(),
           "backward: expected a tensor that requires grad, got one that does not (shape {}); call "
           "requires_grad_() "
           "on the leaves first",
           to_string(shape()));
  Tensor g = grad;
  if (!g.defined()) {
    CT_CHECK(numel() == 1,
             "backward: expected a one-element tensor when no gradient is given, got shape {} "
             "(pass backward(grad))",
             to_string(shape()));
    g = ones_like(*this);
  } else {
    CT_CHECK(g.shape() == shape() && g.dtype() == dtype() && g.device() == device(),
             "backward: expected a gradient of shape {} ({}, {}), got {} ({}, {})",
             to_string(shape()), dtype_name(dtype()), device().str(), to_string(g.shape()),
             dtype_name(g.dtype()), g.device().str());
    g = g.detach();
  }
  run_backward(*this, g, retain_graph);
}

}  // namespace convtape
