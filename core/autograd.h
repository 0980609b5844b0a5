// The autograd tape. Each op output that needs a gradient holds a Node: edges to the nodes (or
// leaves) of its inputs, the tensors its backward needs (saved detached, so no reference cycle runs
// through an output), the backward closure, the op name and a monotonic sequence number.
// record() attaches a node; the engine that runs nodes newest-first is in ops/engine.cpp because it
// sums gradients with ops.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"

namespace convtape {

// Grad mode is per thread and on by default.
class GradMode {
 public:
  static bool is_enabled() noexcept;
  static void set_enabled(bool enabled) noexcept;
};

// Turns recording off for its scope: ops inside it build no graph.
class NoGradGuard {
 public:
  NoGradGuard() noexcept : previous_(GradMode::is_enabled()) { GradMode::set_enabled(false); }
  ~NoGradGuard() { GradMode::set_enabled(previous_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// Which inputs of a node need a gradient; backward closures skip the others.
using GradMask = std::vector<bool>;

// Tensors saved for backward. Access checks that none was modified in place since it was saved.
class Saved {
 public:
  Saved() = default;
  Saved(std::string_view op, const std::vector<Tensor>& tensors);
  const Tensor& operator[](std::size_t i) const;
  std::size_t size() const { return tensors_.size(); }
  void clear() {
    tensors_.clear();
    versions_.clear();
  }

 private:
  std::string op_;
  std::vector<Tensor> tensors_;
  std::vector<std::uint64_t> versions_;
};

// backward(saved, dy, need) returns one gradient per input (undefined where need[i] is false).
using BackwardFn =
    std::function<std::vector<Tensor>(const Saved& saved, const Tensor& dy, const GradMask& need)>;

namespace autograd {

struct Node;

// Where an input's gradient goes: the node that produced it, or the leaf itself.
struct Edge {
  std::shared_ptr<Node> node;
  std::shared_ptr<TensorImpl> leaf;
  bool active() const { return node != nullptr || leaf != nullptr; }
};

struct InputMeta {
  Shape shape;
  DType dtype;
  Device device;
};

struct Node {
  Node();
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  std::string name;
  std::uint64_t sequence = 0;
  std::vector<Edge> next;
  std::vector<InputMeta> inputs;
  Saved saved;
  BackwardFn backward;
  bool released = false;  // saved tensors freed by a backward without retain_graph
};

// ---- hooks into backward (what data-parallel training needs to overlap communication with it)

// Called by backward with the leaf once its gradient for this backward is final: every node that
// feeds it has run (a leaf used by several ops gets one call, after the last of them). A leaf that
// receives no gradient in a backward gets no call.
using PostAccumulateGradHook = std::function<void(const Tensor& leaf)>;

struct LeafHooks {
  std::vector<std::pair<std::uint64_t, PostAccumulateGradHook>> hooks;
  std::uint64_t next_id = 1;
};

// Removes its hook when remove() is called (not on destruction: a handle may be dropped while the
// hook stays). Holds the leaf weakly.
class HookHandle {
 public:
  HookHandle() = default;
  HookHandle(std::weak_ptr<TensorImpl> leaf, std::uint64_t id) : leaf_(std::move(leaf)), id_(id) {}
  void remove();

 private:
  std::weak_ptr<TensorImpl> leaf_;
  std::uint64_t id_ = 0;
};

// Registers a hook on a leaf that requires grad.
HookHandle register_post_accumulate_grad_hook(const Tensor& leaf, PostAccumulateGradHook hook);

// Queues fn to run when the backward() running on this thread has processed its last node, before
// it returns (hooks use it to finish work that they started). Only valid inside a backward (from a
// hook or a backward closure); callbacks run in the order queued, and one that throws ends the
// backward with its exception (the callbacks after it are dropped).
void queue_callback(std::function<void()> fn);

// True while this thread runs a backward().
bool in_backward() noexcept;

}  // namespace autograd

// Puts y on the tape as the output of op(inputs) when grad mode is on and any input requires grad.
// Undefined inputs (an absent bias) are allowed and get no gradient.
void record(Tensor& y, std::string_view op, const std::vector<Tensor>& inputs,
            const std::vector<Tensor>& saved, BackwardFn backward);

// True when grad mode is on and any defined input requires grad.
bool any_requires_grad(const std::vector<Tensor>& inputs);

}  // namespace convtape
