// nn::Module: registration, traversal with dotted names, modes, in-place conversions, state dicts
// (validate everything, then copy) and the printouts (str, summary). See module.h.
#include "modules/module.h"

#include <algorithm>
#include <ostream>
#include <unordered_map>
#include <unordered_set>

#include "core/autograd.h"
#include "ops/factory.h"

namespace convtape::nn {

namespace {

// The output shapes of the module calls made while summary() runs its forward pass.
struct Trace {
  std::vector<std::pair<const Module*, Shape>> calls;
};
thread_local Trace* t_trace = nullptr;

std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

// Points t's TensorImpl at src's data (storage, view, dtype) so that every handle to t sees the
// conversion, as PyTorch's set_data does; requires_grad stays. The gradient, if any, is converted
// the same way by the caller-supplied conversion.
void replace_data(const Tensor& t, const Tensor& src,
                  const std::function<Tensor(const Tensor&)>& convert) {
  TensorImpl* impl = t.impl();
  if (impl->grad) impl->grad = convert(Tensor(impl->grad)).detach().impl_ptr();
  impl->storage = src.storage();
  impl->offset = src.offset();
  impl->shape = src.shape();
  impl->strides = src.strides();
  impl->dtype = src.dtype();
}

void convert_in_place(const Tensor& t, const std::function<Tensor(const Tensor&)>& convert) {
  NoGradGuard no_grad;
  const Tensor converted = convert(t.detach()).detach();
  if (converted.same(t) || (converted.storage() == t.storage() && converted.dtype() == t.dtype()))
    return;
  replace_data(t, converted, convert);
}

}  // namespace

// ---- computation

namespace {

// The modules whose call operators are running on this thread, outermost first, and the stack as
// it was in the innermost call that an Error left (the first catch to run records it).
thread_local std::vector<const Module*> t_calls;
thread_local std::vector<const Module*> t_failed;

std::string shapes_of(const std::vector<Tensor>& inputs) {
  std::string out;
  for (const Tensor& t : inputs) {
    if (!out.empty()) out += ", ";
    out += t.defined() ? to_string(t.shape()) : std::string("undefined");
  }
  return out;
}

}  // namespace

struct Module::HookHandle::Table {
  std::uint64_t next_id = 1;
  std::vector<std::pair<std::uint64_t, ForwardPreHook>> pre;
  std::vector<std::pair<std::uint64_t, ForwardHook>> post;
  std::vector<std::pair<std::uint64_t, BackwardHook>> backward;
};

void Module::HookHandle::remove() {
  const std::shared_ptr<Table> table = table_.lock();
  if (!table) return;
  const auto drop = [&](auto& list) {
    std::erase_if(list, [&](const auto& e) { return e.first == id_; });
  };
  drop(table->pre);
  drop(table->post);
  drop(table->backward);
  table_.reset();
}

Module::HookHandle Module::register_forward_pre_hook(ForwardPreHook hook) {
  CT_CHECK(hook != nullptr, "register_forward_pre_hook: expected a function, got an empty one");
  if (!hooks_) hooks_ = std::make_shared<HookHandle::Table>();
  const std::uint64_t id = hooks_->next_id++;
  hooks_->pre.emplace_back(id, std::move(hook));
  return HookHandle(hooks_, id);
}

Module::HookHandle Module::register_forward_hook(ForwardHook hook) {
  CT_CHECK(hook != nullptr, "register_forward_hook: expected a function, got an empty one");
  if (!hooks_) hooks_ = std::make_shared<HookHandle::Table>();
  const std::uint64_t id = hooks_->next_id++;
  hooks_->post.emplace_back(id, std::move(hook));
  return HookHandle(hooks_, id);
}

Module::HookHandle Module::register_backward_hook(BackwardHook hook) {
  CT_CHECK(hook != nullptr, "register_backward_hook: expected a function, got an empty one");
  if (!hooks_) hooks_ = std::make_shared<HookHandle::Table>();
  const std::uint64_t id = hooks_->next_id++;
  hooks_->backward.emplace_back(id, std::move(hook));
  return HookHandle(hooks_, id);
}

Tensor Module::forward(const Tensor& x) {
  CT_FAIL(
      "{}: expected a module that overrides forward(x) for one input, got a call with one input "
      "of shape {} (this module defines neither forward(x) nor forward_inputs)",
      type_name(), x.defined() ? to_string(x.shape()) : std::string("undefined"));
}

Tensor Module::forward_inputs(const std::vector<Tensor>& inputs) {
  CT_CHECK(inputs.size() == 1, "{}: expected 1 input, got {} of shapes [{}]", type_name(),
           inputs.size(), shapes_of(inputs));
  return forward(inputs[0]);
}

template <class Body>
Tensor Module::invoke(const std::vector<Tensor>& inputs, Body&& body) {
  const bool outermost = t_calls.empty();
  t_failed.clear();  // an error that a caller caught and handled is no longer the one to name
  t_calls.push_back(this);
  struct Pop {
    ~Pop() { t_calls.pop_back(); }
  } pop;
  try {
    if (hooks_ && !hooks_->pre.empty()) {
      const auto pre = hooks_->pre;  // a hook may remove itself
      for (const auto& [id, hook] : pre) hook(*this, inputs);
    }
    Tensor y = body();
    if (hooks_ && !hooks_->post.empty()) {
      const auto post = hooks_->post;
      for (const auto& [id, hook] : post) hook(*this, inputs, y);
    }
    return after_forward(std::move(y));
  } catch (const Error& e) {
    if (t_failed.empty()) t_failed = t_calls;
    if (!outermost) throw;
    const Module* culprit = t_failed.back();
    t_failed.clear();
    if (culprit == this) throw;
    std::string name = "<unregistered>";
    for (const auto& [path, m] : named_modules())
      if (m.get() == culprit) {
        name = path;
        break;
      }
    throw Error(fmt::format("{} [in module '{}' ({})]", e.message(), name, culprit->type_name()),
                e.file(), e.line());
  }
}

Tensor Module::after_forward(Tensor y) {
  if (hooks_ && !hooks_->backward.empty() && y.defined() && any_requires_grad({y})) {
    // An identity node on the output: its backward sees the output's gradient first, and passes
    // it on as it is (under create_graph that is the gradient on the tape, so the derivatives
    // through the module stay differentiable; the hooks see that same tensor).
    std::vector<BackwardHook> hooks;
    for (const auto& [id, hook] : hooks_->backward) hooks.push_back(hook);
    std::weak_ptr<Module> owner = weak_from_this();
    const bool owned = !owner.expired();
    Module* self = this;
    Tensor out = y.detach();
    record(out, "backward_hook", {y}, {},
           [hooks = std::move(hooks), owner, owned, self](const Saved&, const Tensor& dy,
                                                          const GradMask&) {
             std::shared_ptr<Module> keep = owner.lock();
             if (!owned || keep)
               for (const BackwardHook& hook : hooks) hook(*self, dy);
             return std::vector<Tensor>{dy};
           });
    y = out;
  }
  observe_output(y);
  return y;
}

Tensor Module::operator()(const Tensor& x) {
  // Through forward_inputs, so that a module with several inputs sees the count.
  const std::vector<Tensor> inputs{x};
  return invoke(inputs, [&] { return forward_inputs(inputs); });
}

Tensor Module::operator()(const std::vector<Tensor>& inputs) {
  return invoke(inputs, [&] { return forward_inputs(inputs); });
}

void Module::observe_output(const Tensor& y) {
  if (t_trace && y.defined()) t_trace->calls.emplace_back(this, y.shape());
}

// ---- registration

void Module::check_new_name(const std::string& name, const char* op) const {
  CT_CHECK(!name.empty(), "{}: expected a non-empty name, got ''", op);
  CT_CHECK(name.find('.') == std::string::npos, "{}: expected a name without '.', got '{}'", op,
           name);
  const auto taken = [&](const auto& list) {
    return std::any_of(list.begin(), list.end(), [&](const auto& e) { return e.first == name; });
  };
  CT_CHECK(!taken(parameters_) && !taken(buffers_) && !taken(children_),
           "{}: expected a new name, got '{}' (already registered in this {})", op, name,
           type_name());
}

Tensor Module::register_parameter(std::string name, Tensor t, bool requires_grad) {
  check_new_name(name, "register_parameter");
  CT_CHECK(t.defined(),
           "register_parameter: expected a defined tensor for '{}', got an undefined one", name);
  CT_CHECK(t.is_leaf(), "register_parameter: expected a leaf tensor for '{}', got the output of {}",
           name, t.grad_fn_name());
  t.requires_grad_(requires_grad);
  parameters_.emplace_back(std::move(name), t);
  return t;
}

Tensor Module::register_buffer(std::string name, Tensor t) {
  check_new_name(name, "register_buffer");
  CT_CHECK(t.defined(), "register_buffer: expected a defined tensor for '{}', got an undefined one",
           name);
  buffers_.emplace_back(std::move(name), t);
  return t;
}

void Module::add_child(std::string name, std::shared_ptr<Module> module) {
  check_new_name(name, "register_module");
  CT_CHECK(module.get() != this, "register_module: expected another module for '{}', got itself",
           name);
  children_.emplace_back(std::move(name), std::move(module));
}

void Module::replace_child(const std::string& name, std::shared_ptr<Module> module) {
  CT_CHECK(module != nullptr, "replace_child: expected a module for '{}', got nullptr", name);
  CT_CHECK(module.get() != this, "replace_child: expected another module for '{}', got itself",
           name);
  const auto it = std::find_if(children_.begin(), children_.end(),
                               [&](const auto& e) { return e.first == name; });
  CT_CHECK(it != children_.end(),
           "replace_child: expected the name of a child of this {}, got '{}'", type_name(), name);
  it->second = std::move(module);
}

void Module::remove_child(const std::string& name) {
  const auto it = std::find_if(children_.begin(), children_.end(),
                               [&](const auto& e) { return e.first == name; });
  CT_CHECK(it != children_.end(), "remove_child: expected the name of a child of this {}, got '{}'",
           type_name(), name);
  children_.erase(it);
}

// ---- traversal

void Module::walk(const std::string& prefix, std::vector<const Module*>& seen,
                  const Visitor& fn) const {
  if (std::find(seen.begin(), seen.end(), this) != seen.end()) return;
  seen.push_back(this);
  fn(prefix, *this);
  for (const auto& [name, child] : children_) child->walk(join(prefix, name), seen, fn);
}

NamedTensors Module::named_parameters(bool recurse) const {
  if (!recurse) return parameters_;
  NamedTensors out;
  std::vector<const TensorImpl*> taken;
  std::vector<const Module*> seen;
  walk("", seen, [&](const std::string& prefix, const Module& m) {
    for (const auto& [name, t] : m.parameters_) {
      if (std::find(taken.begin(), taken.end(), t.impl()) != taken.end()) continue;
      taken.push_back(t.impl());
      out.emplace_back(join(prefix, name), t);
    }
  });
  return out;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters(recurse)) out.push_back(t);
  return out;
}

NamedTensors Module::named_buffers(bool recurse) const {
  if (!recurse) return buffers_;
  NamedTensors out;
  std::vector<const TensorImpl*> taken;
  std::vector<const Module*> seen;
  walk("", seen, [&](const std::string& prefix, const Module& m) {
    for (const auto& [name, t] : m.buffers_) {
      if (std::find(taken.begin(), taken.end(), t.impl()) != taken.end()) continue;
      taken.push_back(t.impl());
      out.emplace_back(join(prefix, name), t);
    }
  });
  return out;
}

std::vector<Tensor> Module::buffers(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_buffers(recurse)) out.push_back(t);
  return out;
}

NamedModules Module::named_children() const {
  return children_;
}

std::vector<std::shared_ptr<Module>> Module::children() const {
  std::vector<std::shared_ptr<Module>> out;
  for (const auto& [name, child] : children_) out.push_back(child);
  return out;
}

NamedModules Module::named_modules(const std::string& prefix) {
  NamedModules out;
  std::shared_ptr<Module> self = weak_from_this().lock();
  if (!self) self = std::shared_ptr<Module>(std::shared_ptr<Module>(), this);  // non-owning
  out.emplace_back(prefix, self);
  // The same pre-order as walk(), over the owning pointers.
  std::vector<const Module*> seen{this};
  const std::function<void(const std::string&, const Module&)> visit = [&](const std::string& path,
                                                                           const Module& m) {
    for (const auto& [name, child] : m.children_) {
      if (std::find(seen.begin(), seen.end(), child.get()) != seen.end()) continue;
      seen.push_back(child.get());
      out.emplace_back(join(path, name), child);
      visit(join(path, name), *child);
    }
  };
  visit(prefix, *this);
  return out;
}

std::vector<std::shared_ptr<Module>> Module::modules() {
  std::vector<std::shared_ptr<Module>> out;
  for (auto& [name, m] : named_modules()) out.push_back(std::move(m));
  return out;
}

void Module::apply(const std::function<void(Module&)>& fn) {
  for (const auto& [name, child] : children_) child->apply(fn);
  fn(*this);
}

std::int64_t Module::num_parameters(bool trainable_only) const {
  std::int64_t n = 0;
  for (const Tensor& p : parameters())
    if (!trainable_only || p.requires_grad()) n += p.numel();
  return n;
}

// ---- modes and conversions

void Module::train(bool on) {
  training_ = on;
  for (const auto& [name, child] : children_) child->train(on);
}

void Module::to(DType dtype) {
  CT_CHECK(is_floating(dtype), "Module::to: expected a floating dtype, got {}", dtype_name(dtype));
  const auto convert = [dtype](const Tensor& t) { return t.to(dtype); };
  std::vector<const Module*> seen;
  walk("", seen, [&](const std::string&, const Module& m) {
    for (const auto* list : {&m.parameters_, &m.buffers_})
      for (const auto& [name, t] : *list)
        if (t.is_floating_point()) convert_in_place(t, convert);
  });
}

void Module::to(Device device) {
  const auto convert = [device](const Tensor& t) { return t.to(device); };
  std::vector<const Module*> seen;
  walk("", seen, [&](const std::string&, const Module& m) {
    for (const auto* list : {&m.parameters_, &m.buffers_})
      for (const auto& [name, t] : *list) convert_in_place(t, convert);
  });
}

void Module::zero_grad() {
  for (Tensor& p : parameters()) p.zero_grad();
}

// ---- serialisation

void Module::collect_state(const std::string& prefix, NamedTensors& out) const {
  for (const auto& [name, t] : parameters_) out.emplace_back(join(prefix, name), t);
  for (const auto& [name, t] : buffers_) out.emplace_back(join(prefix, name), t);
  for (const auto& [name, child] : children_) child->collect_state(join(prefix, name), out);
}

StateDict Module::state_dict() const {
  NamedTensors entries;
  collect_state("", entries);
  StateDict out;
  out.reserve(entries.size());
  for (auto& [name, t] : entries) out.emplace_back(std::move(name), t.detach());
  return out;
}

void Module::load_state_dict(const StateDict& dict, bool strict) {
  NamedTensors own;
  collect_state("", own);
  std::unordered_map<std::string, std::size_t> given;
  std::vector<std::string> problems;
  for (std::size_t i = 0; i < dict.size(); ++i) {
    const auto& [name, t] = dict[i];
    if (!given.emplace(name, i).second)
      problems.push_back(fmt::format("expected each name once, got {} twice", name));
    if (!t.defined())
      problems.push_back(fmt::format("expected a tensor for {}, got an undefined one", name));
  }
  std::vector<std::pair<Tensor, Tensor>> copies;  // (destination, source)
  std::unordered_set<std::string> known;
  for (const auto& [name, dst] : own) {
    known.insert(name);
    const auto it = given.find(name);
    if (it == given.end()) {
      if (strict)
        problems.push_back(fmt::format("expected an entry for {}, got none (missing)", name));
      continue;
    }
    const Tensor& src = dict[it->second].second;
    if (!src.defined()) continue;
    if (src.shape() != dst.shape()) {
      problems.push_back(fmt::format("expected {} of shape {}, got {}", name,
                                     to_string(dst.shape()), to_string(src.shape())));
    } else if (src.dtype() != dst.dtype()) {
      problems.push_back(fmt::format("expected {} of dtype {}, got {}", name,
                                     dtype_name(dst.dtype()), dtype_name(src.dtype())));
    } else {
      copies.emplace_back(dst, src);
    }
  }
  if (strict)
    for (const auto& [name, t] : dict)
      if (!known.contains(name))
        problems.push_back(
            fmt::format("expected only the {}'s entries, got unexpected {}", type_name(), name));
  if (!problems.empty()) {
    std::string all;
    for (const auto& p : problems) all += (all.empty() ? "" : "; ") + p;
    CT_FAIL("load_state_dict: {}", all);
  }
  NoGradGuard no_grad;
  for (auto& [dst, src] : copies) {
    const bool aliased = src.storage() == dst.storage() && src.offset() == dst.offset() &&
                         src.strides() == dst.strides();
    if (!aliased) dst.copy_(src);  // loading a model's own state_dict is a no-op
  }
}

// ---- printing

std::string Module::repr(int indent) const {
  const std::string extra = extra_repr();
  if (children_.empty()) return type_name() + "(" + extra + ")";
  const std::string pad(static_cast<std::size_t>(indent + 2), ' ');
  std::string out = type_name() + "(\n";
  if (!extra.empty()) out += pad + extra + "\n";
  for (const auto& [name, child] : children_)
    out += pad + "(" + name + "): " + child->repr(indent + 2) + "\n";
  out += std::string(static_cast<std::size_t>(indent), ' ') + ")";
  return out;
}

std::string Module::str() const {
  return repr(0);
}

std::ostream& operator<<(std::ostream& os, const Module& m) {
  return os << m.str();
}

std::string group_digits(std::int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

std::string Module::summary(const Shape& input_shape, DType dtype) {
  return summary(std::vector<Shape>{input_shape}, dtype);
}

std::string Module::summary(const std::vector<Shape>& input_shapes, DType dtype) {
  CT_CHECK(!input_shapes.empty(), "summary: expected at least one input shape, got none");
  // Names and training flags of the tree; flags come back however forward ends.
  std::vector<std::pair<const Module*, std::string>> names;
  std::vector<std::pair<Module*, bool>> flags;
  for (const auto& [path, m] : named_modules()) {
    names.emplace_back(m.get(), path);
    flags.emplace_back(m.get(), m->training_);
  }
  Trace trace;
  struct Restore {
    std::vector<std::pair<Module*, bool>>& flags;
    Trace* previous;
    ~Restore() {
      for (auto& [m, on] : flags) m->training_ = on;
      t_trace = previous;
    }
  } restore{flags, t_trace};

  Device device = kCPU;
  const std::vector<Tensor> params = parameters();
  const std::vector<Tensor> bufs = buffers();
  if (!params.empty())
    device = params.front().device();
  else if (!bufs.empty())
    device = bufs.front().device();
  for (auto& [m, on] : flags) m->training_ = false;
  Shape output_shape;
  {
    NoGradGuard no_grad;
    std::vector<Tensor> inputs;
    for (const Shape& shape : input_shapes)
      inputs.push_back(zeros(shape, TensorOptions(dtype).device(device)));
    t_trace = &trace;
    output_shape = (inputs.size() == 1 ? (*this)(inputs[0]) : (*this)(inputs)).shape();
    t_trace = restore.previous;
  }

  struct Row {
    std::string name, type, shape, params;
  };
  std::vector<Row> rows;
  for (const auto& [m, shape] : trace.calls) {
    const auto it = std::find_if(names.begin(), names.end(),
                                 [&, mod = m](const auto& e) { return e.first == mod; });
    std::int64_t own = 0;
    for (const auto& [name, p] : m->parameters_) own += p.numel();
    if (!m->children_.empty() && m->parameters_.empty()) continue;
    std::string name = it == names.end() ? "?" : it->second;
    if (name.empty()) name = "(self)";
    rows.push_back({name, m->type_name(), to_string(shape), group_digits(own)});
  }
  Row head{"Layer", "Type", "Output shape", "Params"};
  std::size_t w0 = head.name.size(), w1 = head.type.size(), w2 = head.shape.size(),
              w3 = head.params.size();
  for (const Row& r : rows) {
    w0 = std::max(w0, r.name.size());
    w1 = std::max(w1, r.type.size());
    w2 = std::max(w2, r.shape.size());
    w3 = std::max(w3, r.params.size());
  }
  const auto line = [&](const Row& r) {
    return fmt::format("{:<{}}  {:<{}}  {:<{}}  {:>{}}\n", r.name, w0, r.type, w1, r.shape, w2,
                       r.params, w3);
  };
  const std::string rule(w0 + w1 + w2 + w3 + 6, '-');
  std::string shown;
  for (const Shape& shape : input_shapes) shown += (shown.empty() ? "" : ", ") + to_string(shape);
  std::string out = fmt::format("{} summary: input{} {} ({}), output {}\n", type_name(),
                                input_shapes.size() == 1 ? "" : "s", shown, dtype_name(dtype),
                                to_string(output_shape));
  out += rule + "\n" + line(head) + rule + "\n";
  for (const Row& r : rows) out += line(r);
  const std::int64_t total = num_parameters(), trainable = num_parameters(true);
  out += rule + "\n";
  out += "Total params: " + group_digits(total) + "\n";
  out += "Trainable params: " + group_digits(trainable) + "\n";
  out += "Non-trainable params: " + group_digits(total - trainable) + "\n";
  return out;
}

}  // namespace convtape::nn
