// One traced forward pass (see capture.h).
#include "onnx/capture.h"

#include <utility>

#include "core/autograd.h"

namespace convtape::onnx::detail {

namespace {

// Collects the session's events, each with the innermost module running when it was reported.
class Recorder final : public trace::Tracer {
 public:
  void on_event(trace::Event event) override {
    TracedOp op;
    op.event = std::move(event);
    if (!stack_.empty()) {
      op.module = stack_.back().first;
      op.module_type = stack_.back().second;
    }
    ops_.push_back(std::move(op));
  }
  void enter(std::string name, std::string type) {
    stack_.emplace_back(std::move(name), std::move(type));
  }
  void leave() {
    if (!stack_.empty()) stack_.pop_back();
  }
  std::vector<TracedOp> take() { return std::move(ops_); }

 private:
  std::vector<std::pair<std::string, std::string>> stack_;
  std::vector<TracedOp> ops_;
};

// Removes the hooks it holds when it goes, whether the pass finished or threw.
class Hooks {
 public:
  Hooks() = default;
  Hooks(const Hooks&) = delete;
  Hooks& operator=(const Hooks&) = delete;
  ~Hooks() {
    for (auto& h : handles_) h.remove();
  }
  void add(nn::Module::HookHandle h) { handles_.push_back(std::move(h)); }

 private:
  std::vector<nn::Module::HookHandle> handles_;
};

}  // namespace

Origin Pass::origin(const Tensor& t) const {
  Origin o;
  if (!t.defined()) return o;
  if (const auto in = input_index.find(t.impl()); in != input_index.end()) {
    o.kind = Origin::Kind::Input;
    o.index = in->second;
    return o;
  }
  if (const auto op = producer.find(t.impl()); op != producer.end()) {
    o.kind = Origin::Kind::Op;
    o.index = op->second;
    return o;
  }
  if (states != nullptr) {
    if (const auto state = states->find(t.impl()); state != states->end()) {
      o.kind = Origin::Kind::State;
      o.name = state->second;
      return o;
    }
  }
  o.kind = Origin::Kind::Constant;
  return o;
}

StateNames state_names(nn::Module& module) {
  StateNames names;
  for (const auto& [name, t] : module.named_parameters()) names.emplace(t.impl(), name);
  for (const auto& [name, t] : module.named_buffers()) names.emplace(t.impl(), name);
  return names;
}

Pass capture(nn::Module& module, const std::vector<Tensor>& inputs, const StateNames& states) {
  Recorder recorder;
  Pass pass;
  pass.inputs = inputs;
  pass.states = &states;
  {
    Hooks hooks;
    for (const auto& [name, m] : module.named_modules()) {
      const std::string type = m->type_name();
      hooks.add(m->register_forward_pre_hook(
          [&recorder, name = name, type](nn::Module&, const std::vector<Tensor>&) {
            recorder.enter(name, type);
          }));
      hooks.add(m->register_forward_hook([&recorder](nn::Module&, const std::vector<Tensor>&,
                                                     const Tensor&) { recorder.leave(); }));
    }
    GradModeGuard grad(true);
    trace::Session session(recorder);
    pass.output = module(inputs);
  }
  pass.ops = recorder.take();
  for (std::size_t i = 0; i < inputs.size(); ++i) pass.input_index.emplace(inputs[i].impl(), i);
  for (std::size_t i = 0; i < pass.ops.size(); ++i) {
    const trace::Event& e = pass.ops[i].event;
    if (!e.output.defined()) continue;
    bool returns_input = false;  // an op that hands back an operand is no op of the graph
    for (const Tensor& t : e.inputs)
      returns_input = returns_input || (t.defined() && t.same(e.output));
    if (!returns_input) pass.producer[e.output.impl()] = i;
  }
  return pass;
}

std::string where(const TracedOp& op) {
  return fmt::format("'{}' in module '{}' ({})", op.event.op,
                     op.module.empty() ? "<root>" : op.module,
                     op.module_type.empty() ? "Module" : op.module_type);
}

}  // namespace convtape::onnx::detail
