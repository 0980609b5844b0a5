// nn::Module: the base of every layer and model. A module owns named parameters (leaf tensors that
// require grad and that optimizers update), named buffers (state that is saved but not trained,
// such as BatchNorm's running statistics) and named child modules, each in registration order. From
// these it derives, recursively and with dotted names ("features.0.weight"):
//   parameters() / named_parameters()   every parameter once, in registration order (pre-order)
//   buffers() / named_buffers()         likewise for buffers
//   children() / modules()              direct children; every module of the tree, itself first
//   train() / eval()                    the training flag of the whole tree (Dropout, BatchNorm)
//   to(DType) / to(Device)              converts every floating parameter and buffer in place: the
//                                       tensors keep their identity (handles held by an optimizer
//                                       stay valid), their names and their requires_grad flag
//   zero_grad()                         drops every parameter's accumulated gradient
//   state_dict() / load_state_dict()    per module its parameters, then its buffers, then its
//                                       children's entries; a load validates every entry (names,
//                                       shapes, dtypes) before it writes anything
//   str()                               a PyTorch-style printout of the tree
//   summary(input_shape)                a table of every layer's output shape and parameter count
// Modules are polymorphic and held by std::shared_ptr; copying one is disabled because its
// parameters are shared handles. A module with one input overrides forward(x); one with several
// (a FlowNet pair, an image and a condition) overrides forward_inputs(inputs). Either is called
// through operator(), m(x) or m(a, b) or m({a, b, c}), which is where summary() observes output
// shapes, hooks run (register_forward_pre_hook, register_forward_hook, register_backward_hook) and
// an Error raised anywhere below gets the dotted name of the module it came from appended:
//   "conv2d: expected ..., got ... [in module 'enc2.0' (Conv2d)]".
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/shape.h"
#include "core/state_dict.h"
#include "core/tensor.h"

namespace convtape::nn {

class Module;

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;
using NamedModules = std::vector<std::pair<std::string, std::shared_ptr<Module>>>;

class Module : public std::enable_shared_from_this<Module> {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // ---- computation
  // The one-input computation. The default throws: a module overrides this or forward_inputs.
  virtual Tensor forward(const Tensor& x);
  // The computation of a module with several inputs. The default passes a single input to
  // forward(x) and refuses any other count ("<type>: expected 1 input, got 2 of shapes ...").
  virtual Tensor forward_inputs(const std::vector<Tensor>& inputs);
  // forward(x) / forward_inputs(inputs), with the hooks run, the output shape observed by summary()
  // and errors named after the layer. Call child modules through these, not through forward.
  Tensor operator()(const Tensor& x);
  Tensor operator()(const std::vector<Tensor>& inputs);
  template <class... More>
  requires(std::is_convertible_v<const More&, const Tensor&>&&...) Tensor operator()(
      const Tensor& a, const Tensor& b, const More&... more) {
    return (*this)(std::vector<Tensor>{a, b, more...});
  }

  // ---- hooks, run by operator() in registration order. A forward pre-hook sees the inputs before
  // forward, a forward hook the inputs and the output after it; a backward hook is called with
  // the gradient of the module's output when backward reaches it (only for calls made with grad
  // mode on and an output that requires grad). Hooks observe; they do not replace values. The
  // handle's remove() unregisters the hook (it is safe after the module is gone).
  using ForwardPreHook = std::function<void(Module& m, const std::vector<Tensor>& inputs)>;
  using ForwardHook =
      std::function<void(Module& m, const std::vector<Tensor>& inputs, const Tensor& output)>;
  using BackwardHook = std::function<void(Module& m, const Tensor& grad_output)>;
  class HookHandle {
   public:
    HookHandle() = default;
    void remove();

   private:
    friend class Module;
    struct Table;
    HookHandle(std::weak_ptr<Table> table, std::uint64_t id) : table_(std::move(table)), id_(id) {}
    std::weak_ptr<Table> table_;
    std::uint64_t id_ = 0;
  };
  HookHandle register_forward_pre_hook(ForwardPreHook hook);
  HookHandle register_forward_hook(ForwardHook hook);
  HookHandle register_backward_hook(BackwardHook hook);

  // ---- description
  // The layer's class name as printed ("Conv2d"); "Module" unless a subclass says otherwise.
  virtual std::string type_name() const { return "Module"; }
  // The layer's settings as printed inside the parentheses ("1, 32, kernel_size=[3, 3], ...").
  virtual std::string extra_repr() const { return {}; }
  // The tree, PyTorch style: "Sequential(\n  (0): Conv2d(1, 32, ...)\n  (1): ReLU()\n)".
  std::string str() const;
  // Runs forward once on zeros of input_shape (dtype, on the module's device) in eval mode under
  // NoGradGuard, then restores every module's training flag. Returns a table with one row per
  // layer call (name, type, output shape, parameters), then the total, trainable and
  // non-trainable parameter counts. A row is printed for each call of a leaf module (one without
  // children) and of any module that owns parameters itself.
  std::string summary(const Shape& input_shape, DType dtype = kFloat32);
  // The same for a module with several inputs: one zero tensor per shape, passed as m(inputs).
  std::string summary(const std::vector<Shape>& input_shapes, DType dtype = kFloat32);

  // ---- registration (names: non-empty, no '.', unique within this module across parameters,
  // buffers and children)
  // Registers t (a leaf) as a parameter; it is made to require grad unless requires_grad is false
  // (a frozen parameter: saved and converted, skipped by trainable counts). Returns the handle.
  Tensor register_parameter(std::string name, Tensor t, bool requires_grad = true);
  Tensor register_buffer(std::string name, Tensor t);
  template <class M>
  std::shared_ptr<M> register_module(std::string name, std::shared_ptr<M> module) {
    CT_CHECK(module != nullptr, "register_module: expected a module for '{}', got nullptr", name);
    add_child(std::move(name), module);
    return module;
  }

  // ---- traversal; recurse = false limits the result to this module's own entries
  std::vector<Tensor> parameters(bool recurse = true) const;
  NamedTensors named_parameters(bool recurse = true) const;
  std::vector<Tensor> buffers(bool recurse = true) const;
  NamedTensors named_buffers(bool recurse = true) const;
  std::vector<std::shared_ptr<Module>> children() const;
  NamedModules named_children() const;
  // Every module of the tree, this one first (pre-order, each module once). When this module is
  // not itself owned by a std::shared_ptr, the first entry is a non-owning pointer to it.
  std::vector<std::shared_ptr<Module>> modules();
  NamedModules named_modules(const std::string& prefix = "");
  // Calls fn on every module of the tree, children before parents (as PyTorch's apply).
  void apply(const std::function<void(Module&)>& fn);
  // The number of parameter elements (each shared parameter once).
  std::int64_t num_parameters(bool trainable_only = false) const;

  // ---- modes and conversions
  virtual void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  // Floating parameters and buffers (and their gradients) become dtype, which must be floating;
  // int64 buffers stay as they are.
  void to(DType dtype);
  void to(Device device);
  void zero_grad();

  // ---- serialisation
  // Detached handles sharing storage with the module's tensors.
  StateDict state_dict() const;
  // Copies the dict's values into the module's tensors. Every problem is reported before anything
  // is written, in one Error: a model entry the dict lacks, a dict entry the model lacks (both
  // only when strict; otherwise the common entries are loaded), a shape or dtype that differs,
  // an undefined tensor or a name given twice.
  void load_state_dict(const StateDict& dict, bool strict = true);

 protected:
  // Output shapes of operator() calls are reported to the active summary (if any).
  void observe_output(const Tensor& y);
  // For containers: put module in the place of the child registered as name (its position in the
  // order of children stays), or drop that child. Both throw when there is no such child.
  void replace_child(const std::string& name, std::shared_ptr<Module> module);
  void remove_child(const std::string& name);

 private:
  // The call operators' common part: the module stack that names a failing layer, the hooks,
  // summary()'s observation. body runs forward or forward_inputs.
  template <class Body>
  Tensor invoke(const std::vector<Tensor>& inputs, Body&& body);
  Tensor after_forward(Tensor y);
  using Visitor = std::function<void(const std::string& name, const Module& m)>;
  // Pre-order over the tree, each module once (a module shared by two parents is visited under
  // the first name that reaches it).
  void walk(const std::string& prefix, std::vector<const Module*>& seen, const Visitor& fn) const;
  void check_new_name(const std::string& name, const char* op) const;
  void add_child(std::string name, std::shared_ptr<Module> module);
  // Handles (not detached) of every entry state_dict() lists, with their names.
  void collect_state(const std::string& prefix, NamedTensors& out) const;
  std::string repr(int indent) const;

  bool training_ = true;
  std::shared_ptr<HookHandle::Table> hooks_;
  NamedTensors parameters_;
  NamedTensors buffers_;
  NamedModules children_;
};

std::ostream& operator<<(std::ostream& os, const Module& m);

// "1,234,567": digits grouped in threes, as summary() prints parameter counts.
std::string group_digits(std::int64_t n);

}  // namespace convtape::nn
