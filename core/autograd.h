// The autograd tape. Each op output that needs a gradient holds a Node: edges to the nodes (or
// leaves) of its inputs, the tensors its backward needs (saved detached, so no reference cycle runs
// through an output), the backward closure, the op name and a monotonic sequence number.
// record() attaches a node; the engine that runs nodes newest-first is in ops/engine.cpp because it
// sums gradients with ops.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
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

// Sets grad mode for its scope and restores the previous mode after (GradModeGuard(true) records
// inside a NoGradGuard, as torch.enable_grad does).
class GradModeGuard {
 public:
  explicit GradModeGuard(bool enabled) noexcept : previous_(GradMode::is_enabled()) {
    GradMode::set_enabled(enabled);
  }
  ~GradModeGuard() { GradMode::set_enabled(previous_); }
  GradModeGuard(const GradModeGuard&) = delete;
  GradModeGuard& operator=(const GradModeGuard&) = delete;

 private:
  bool previous_;
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

namespace autograd {
struct Node;
}

// One tensor handed to record() for backward: the values the backward reads (`data`) and, where
// they differ, the tensor on the tape those values are (`origin`: conv saves a dense copy of a
// strided input for its fast path, and the input itself for a differentiable backward).
struct SavedValue {
  SavedValue() = default;
  SavedValue(Tensor t) : data(std::move(t)) {}  // NOLINT: a plain tensor is saved as itself
  SavedValue(Tensor data_, Tensor origin_) : data(std::move(data_)), origin(std::move(origin_)) {}
  Tensor data, origin;
};

// Tensors saved for backward. Access checks that none was modified in place since it was saved.
// A backward running with grad mode off (the ordinary one) reads them detached. A backward with
// create_graph runs with grad mode on and reads them as they are on the tape, so that the ops of
// the backward formula record their dependence on the forward's inputs: an input is kept with
// its history, and the op's own output (never held directly: it would hold its own node) comes
// back as a new tensor over the same memory whose grad_fn is this node, as PyTorch's saved
// variables do.
class Saved {
 public:
  Saved() = default;
  Saved(std::string_view op, const std::vector<SavedValue>& tensors, const TensorImpl* output,
        const std::shared_ptr<autograd::Node>& node);
  Tensor operator[](std::size_t i) const;
  std::size_t size() const { return data_.size(); }
  void clear() {
    data_.clear();
    vars_.clear();
    versions_.clear();
    is_output_.clear();
  }

 private:
  std::string op_;
  std::vector<Tensor> data_;  // detached
  std::vector<Tensor> vars_;  // on the tape; undefined where no history is kept (or the output)
  std::vector<std::uint64_t> versions_;
  std::vector<bool> is_output_;
  std::weak_ptr<autograd::Node> node_;
};

// backward(saved, dy, need) returns one gradient per input (undefined where need[i] is false).
using BackwardFn =
    std::function<std::vector<Tensor>(const Saved& saved, const Tensor& dy, const GradMask& need)>;

namespace autograd {

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

// ---- gradients as values, and gradients of gradients (defined in ops/engine.cpp)

struct BackwardOptions {
  bool create_graph = false;
  // Keep the saved tensors for another backward; by default the same as create_graph.
  std::optional<bool> retain_graph = std::nullopt;
};

// The backward of several outputs at once: accumulates sum_i grad_outputs[i]^T d outputs[i] into
// every leaf's .grad. grad_outputs may be empty when every output holds one element.
void backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs = {},
              const BackwardOptions& options = {});

struct GradOptions {
  // Run the backward formulas as ops on the tape, so that the returned gradients can be
  // differentiated again (gradient penalties, Hessian-vector products, double backward).
  bool create_graph = false;
  // Keep the saved tensors for another backward; by default the same as create_graph.
  std::optional<bool> retain_graph = std::nullopt;
  // An input that the outputs do not depend on gets an undefined gradient instead of an error.
  bool allow_unused = false;
};

// The gradients of sum_i <grad_outputs[i], outputs[i]> with respect to each input (leaves or
// intermediate tensors that require grad), returned instead of accumulated: no .grad is touched
// and only the part of the graph between the outputs and the inputs runs. An input that the
// outputs reach only through zero derivatives (a mask, an index) gets zeros. grad_outputs may be
// empty when every output holds one element; with create_graph they may themselves be on the tape
// (the double-vjp trick of autograd::jvp differentiates with respect to them).
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs = {},
                         const GradOptions& options = {});

// True while this thread runs a backward().
bool in_backward() noexcept;

// True inside a backward closure run for create_graph (grad mode is on there): the closure's
// formula must then be made of ops that record, so that the gradient it returns is on the tape.
inline bool creating_graph() noexcept {
  return GradMode::is_enabled();
}

}  // namespace autograd

// Puts y on the tape as the output of op(inputs) when grad mode is on and any input requires grad.
// Undefined inputs (an absent bias) are allowed and get no gradient.
//
// Backward closures compute with ops (or kernels, when the formula is cheaper as one fused
// kernel): the engine runs them with grad mode off, or with grad mode on for create_graph, where
// every step of the formula must be an op that records (autograd::creating_graph() tells which,
// for closures that keep a fused kernel for the ordinary backward).
void record(Tensor& y, std::string_view op, const std::vector<Tensor>& inputs,
            const std::vector<SavedValue>& saved, BackwardFn backward);

// True when grad mode is on and any defined input requires grad.
bool any_requires_grad(const std::vector<Tensor>& inputs);

}  // namespace convtape
