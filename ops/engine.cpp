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
  if (g.requires_grad()) {
    // create_graph: the gradient keeps its history (PyTorch's behaviour; the leaf and its graph
    // then hold each other until .grad is reset, see Tensor::backward).
    leaf.grad = leaf.grad ? add(Tensor(leaf.grad), g).impl_ptr() : g.impl_ptr();
    return;
  }
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

// The tensors autograd::grad differentiates with respect to: leaves by their TensorImpl, other
// tensors by the node that produced them (every node has one output, so the gradient that reaches
// a node is its output's gradient). Empty for backward(), which accumulates into every leaf.
struct Targets {
  std::unordered_map<TensorImpl*, std::size_t> leaves;
  std::unordered_map<autograd::Node*, std::size_t> nodes;
  std::vector<Tensor> grads;  // one per input of grad()
  std::vector<bool> reached;  // an edge or node of the graph leads to it
  bool empty() const { return leaves.empty() && nodes.empty(); }
};

void add_into(Tensor& slot, const Tensor& g) {
  slot = slot.defined() ? add(slot, g) : g;
}

// Runs the graph behind roots with the given output gradients. With targets (autograd::grad),
// gradients of the targets are collected there and nothing is accumulated into any .grad; nodes
// that lead to no target are not run. With create_graph, grad mode is on while the backward
// closures run, so their ops record and the gradients are on the tape.
void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& root_grads,
                  bool retain_graph, bool create_graph, Targets* targets) {
  GradModeGuard grad_mode(create_graph);
  BackwardScope scope;
  const bool collect = targets != nullptr;

  std::unordered_map<autograd::Node*, Tensor> grads;
  std::vector<autograd::Node*> stack;
  std::unordered_set<autograd::Node*> seen;
  for (std::size_t r = 0; r < roots.size(); ++r) {
    const Tensor& root = roots[r];
    const Tensor& g = root_grads[r];
    if (root.is_leaf()) {
      if (collect) {
        auto it = targets->leaves.find(root.impl());
        if (it != targets->leaves.end()) {
          targets->reached[it->second] = true;
          add_into(targets->grads[it->second], g);
        }
      } else {
        accumulate_leaf(*root.impl(), g);
        run_leaf_hooks(root.impl_ptr());
      }
      continue;
    }
    autograd::Node* n = root.grad_fn().get();
    add_into(grads[n], g);
    if (seen.insert(n).second) stack.push_back(n);
  }

  std::vector<autograd::Node*> order;
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

  // With targets: which nodes lead to one (inputs are older than their consumers, so walking
  // oldest-first sees every input's answer before its consumers ask).
  std::unordered_set<autograd::Node*> useful;
  if (collect) {
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
      autograd::Node* n = *it;
      bool leads = false;
      for (auto& e : n->next)
        leads = leads || (e.node ? useful.count(e.node.get()) > 0
                                 : e.leaf && targets->leaves.count(e.leaf.get()) > 0);
      if (leads) useful.insert(n);
      auto t = targets->nodes.find(n);
      if (t != targets->nodes.end()) targets->reached[t->second] = true;
      for (auto& e : n->next)
        if (e.leaf) {
          auto l = targets->leaves.find(e.leaf.get());
          if (l != targets->leaves.end()) targets->reached[l->second] = true;
        }
    }
  }

  // Leaves with hooks: how many edges still lead to each, and whether it got a gradient yet. Empty
  // (and free) when no leaf of the graph has a hook, and under autograd::grad (nothing is
  // accumulated, so no gradient becomes final).
  struct HookedLeaf {
    std::int64_t pending = 0;
    bool received = false;
  };
  std::unordered_map<TensorImpl*, HookedLeaf> hooked;
  if (!collect)
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

  for (autograd::Node* n : order) {
    auto it = grads.find(n);
    if (it == grads.end()) {  // no gradient flowed here (every consumer's gradient was skipped)
      for (auto& e : n->next)
        if (e.leaf) leaf_edge_done(e.leaf, false);
      continue;
    }
    const Tensor dy = std::move(it->second);
    grads.erase(it);
    if (collect) {
      auto t = targets->nodes.find(n);
      if (t != targets->nodes.end()) add_into(targets->grads[t->second], dy);
      if (!useful.count(n)) continue;
    }
    GradMask need(n->next.size());
    for (std::size_t i = 0; i < need.size(); ++i) {
      const auto& e = n->next[i];
      need[i] = collect ? (e.node ? useful.count(e.node.get()) > 0
                                  : e.leaf && targets->leaves.count(e.leaf.get()) > 0)
                        : e.active();
    }
    CT_CHECK(n->backward != nullptr,
             "backward: expected a graph that is still alive, got one freed by an earlier "
             "backward() at '{}' (pass retain_graph = true to the first backward)",
             n->name);
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
      } else if (collect) {
        add_into(targets->grads[targets->leaves.at(e.leaf.get())], gs[i]);
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

// Checks the output gradients of backward / grad: one per output, each of its output's shape,
// dtype and device; an absent one is 1 for a one-element output. Kept on the tape only for
// create_graph (the double-vjp of autograd::jvp differentiates with respect to it).
std::vector<Tensor> output_grads(std::string_view op, const std::vector<Tensor>& outputs,
                                 const std::vector<Tensor>& given, bool create_graph) {
  CT_CHECK(given.empty() || given.size() == outputs.size(),
           "{}: expected one output gradient per output ({}), got {}", op, outputs.size(),
           given.size());
  const auto which = [&](std::size_t i) {
    return outputs.size() == 1 ? std::string() : fmt::format(" for output {}", i);
  };
  std::vector<Tensor> gs;
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& y = outputs[i];
    CT_CHECK(y.defined(), "{}: expected defined outputs, got an undefined output {}", op, i);
    CT_CHECK(y.requires_grad(),
             "{}: expected outputs that require grad, got output {} (shape {}) that does not; call "
             "requires_grad_() on the leaves first",
             op, i, to_string(y.shape()));
    Tensor g = given.empty() ? Tensor() : given[i];
    if (!g.defined()) {
      CT_CHECK(y.numel() == 1,
               "{}: expected a one-element tensor when no gradient is given, got shape {}{} (pass "
               "its gradient)",
               op, to_string(y.shape()), which(i));
      g = ones_like(y);
    } else {
      CT_CHECK(g.shape() == y.shape() && g.dtype() == y.dtype() && g.device() == y.device(),
               "{}: expected a gradient of shape {} ({}, {}){}, got {} ({}, {})", op,
               to_string(y.shape()), dtype_name(y.dtype()), y.device().str(), which(i),
               to_string(g.shape()), dtype_name(g.dtype()), g.device().str());
      if (!create_graph) g = g.detach();
    }
    gs.push_back(std::move(g));
  }
  return gs;
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

void Tensor::backward(const Tensor& grad, bool retain_graph, bool create_graph) const {
  CT_CHECK(requires_grad(),
           "backward: expected a tensor that requires grad, got one that does not (shape {}); call "
           "requires_grad_() "
           "on the leaves first",
           to_string(shape()));
  const auto gs = output_grads("backward", {*this}, {grad}, create_graph);
  run_backward({*this}, gs, retain_graph || create_graph, create_graph, nullptr);
}

namespace autograd {

void backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs,
              const BackwardOptions& options) {
  CT_CHECK(!outputs.empty(), "backward: expected at least one output, got none");
  const bool create = options.create_graph;
  const auto gs = output_grads("backward", outputs, grad_outputs, create);
  run_backward(outputs, gs, options.retain_graph.value_or(create), create, nullptr);
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs, const GradOptions& options) {
  CT_CHECK(!outputs.empty(), "grad: expected at least one output, got none");
  CT_CHECK(!inputs.empty(), "grad: expected at least one input, got none");
  Targets targets;
  targets.grads.resize(inputs.size());
  targets.reached.assign(inputs.size(), false);
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    CT_CHECK(x.defined(), "grad: expected defined inputs, got an undefined input {}", i);
    CT_CHECK(x.requires_grad(),
             "grad: expected inputs that require grad, got input {} (shape {}) that does not", i,
             to_string(x.shape()));
    const bool fresh = x.is_leaf() ? targets.leaves.emplace(x.impl(), i).second
                                   : targets.nodes.emplace(x.grad_fn().get(), i).second;
    CT_CHECK(fresh, "grad: expected distinct inputs, got input {} twice (shape {})", i,
             to_string(x.shape()));
  }
  const bool create = options.create_graph;
  const auto gs = output_grads("grad", outputs, grad_outputs, create);
  run_backward(outputs, gs, options.retain_graph.value_or(create), create, &targets);
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    Tensor& g = targets.grads[i];
    if (g.defined()) continue;
    CT_CHECK(targets.reached[i] || options.allow_unused,
             "grad: expected every input to be used in computing the outputs, got input {} (shape "
             "{}) that is not (pass allow_unused = true to get an undefined gradient for it)",
             i, to_string(inputs[i].shape()));
    // Reached, but every path to it has a zero derivative (a mask, an index): the gradient is 0.
    if (targets.reached[i]) g = zeros_like(inputs[i]);
  }
  return std::move(targets.grads);
}

}  // namespace autograd

}  // namespace convtape
