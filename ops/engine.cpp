// The autograd engine: Tensor::backward. Reachable nodes are gathered iteratively (no recursion,
// so deep graphs cannot overflow the stack), run newest-first by sequence number (a node's inputs
// are always older than it, so this is a topological order), gradients for a tensor with several
// consumers are summed, and leaves accumulate into .grad. Without retain_graph every visited node
// drops its saved tensors and closure; reaching such a node again is an error.
// Leaves with post-accumulate hooks get one call each, once the last node feeding them has run
// (the engine counts each such leaf's incoming edges first); callbacks queued during the backward
// run after the last node. Both exist for data-parallel training (dist/ddp.cpp), which starts a
// gradient bucket's all-reduce as soon as its gradients are final.
#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "core/autograd.h"
#include "ops/elementwise.h"
#include "ops/factory.h"

namespace convtape {

namespace {

// The backward running on this thread: whether one runs, and the callbacks queued during it.
struct BackwardState {
  bool active = false;
  std::vector<std::function<void()>> callbacks;
};
thread_local BackwardState t_backward;

// Marks this thread as running a backward, and drops queued callbacks on every way out.
class BackwardScope {
 public:
  BackwardScope() {
    CT_CHECK(!t_backward.active,
             "backward: expected no backward() running on this thread, got a call from inside "
             "one (a hook or backward function called backward())");
    t_backward.active = true;
  }
  ~BackwardScope() {
    t_backward.active = false;
    t_backward.callbacks.clear();
  }
  BackwardScope(const BackwardScope&) = delete;
  BackwardScope& operator=(const BackwardScope&) = delete;

  // Runs the queued callbacks, including any that they queue themselves.
  static void run_callbacks() {
    for (std::size_t i = 0; i < t_backward.callbacks.size(); ++i) {
      auto fn = std::move(t_backward.callbacks[i]);
      fn();
    }
    t_backward.callbacks.clear();
  }
};

void run_leaf_hooks(const std::shared_ptr<TensorImpl>& leaf) {
  // A copy: a hook may remove itself (HookHandle::remove) while the list is walked.
  const auto hooks = leaf->hooks;
  if (!hooks) return;
  const auto list = hooks->hooks;
  const Tensor t(leaf);
  for (const auto& h : list) h.second(t);
}

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
  BackwardScope scope;
  if (root.is_leaf()) {
    accumulate_leaf(*root.impl(), grad);
    run_leaf_hooks(root.impl_ptr());
    BackwardScope::run_callbacks();
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

  // Leaves with hooks: how many edges still lead to each, and whether it got a gradient yet. Empty
  // (and free) when no leaf of the graph has a hook.
  struct HookedLeaf {
    std::int64_t pending = 0;
    bool received = false;
  };
  std::unordered_map<TensorImpl*, HookedLeaf> hooked;
  for (autograd::Node* n : order)
    for (auto& e : n->next)
      if (e.leaf && e.leaf->hooks) ++hooked[e.leaf.get()].pending;
  // Called for every leaf edge of a node once the node has run (or was skipped for want of a
  // gradient): the last one fires the leaf's hooks, if it received anything.
  const auto leaf_edge_done = [&](const std::shared_ptr<TensorImpl>& leaf, bool received) {
    if (hooked.empty() || !leaf->hooks) return;
    auto it = hooked.find(leaf.get());
    if (it == hooked.end()) return;  // a hook added during this backward
    it->second.received = it->second.received || received;
    if (--it->second.pending == 0 && it->second.received) run_leaf_hooks(leaf);
  };

  std::unordered_map<autograd::Node*, Tensor> grads;
  grads.emplace(root.grad_fn().get(), grad);
  for (autograd::Node* n : order) {
    auto it = grads.find(n);
    if (it == grads.end()) {  // no gradient flowed here (every consumer's gradient was skipped)
      for (auto& e : n->next)
        if (e.leaf) leaf_edge_done(e.leaf, false);
      continue;
    }
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
    if (!hooked.empty())
      for (std::size_t i = 0; i < gs.size(); ++i)
        if (n->next[i].leaf) leaf_edge_done(n->next[i].leaf, need[i] && gs[i].defined());
  }
  BackwardScope::run_callbacks();
}

}  // namespace

namespace autograd {

void queue_callback(std::function<void()> fn) {
  CT_CHECK(t_backward.active,
           "queue_callback: expected to be called during backward() (from a hook or a backward "
           "function), got a call outside any backward");
  CT_CHECK(fn != nullptr, "queue_callback: expected a function, got an empty one");
  t_backward.callbacks.push_back(std::move(fn));
}

bool in_backward() noexcept {
  return t_backward.active;
}

}  // namespace autograd

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
