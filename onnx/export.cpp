// export_model (see export.h): two traced forward passes, the graph written from the first,
// checked against the second, by ONNX's checker and by ONNX's shape inference against the traced
// shapes, then serialised.
#include "onnx/export.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include <fmt/ranges.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include "core/autograd.h"
#include "io/file.h"
#include "onnx/capture.h"
#include "onnx/graph.h"
#include "onnx/lower.h"
#include "ops/factory.h"
#include "ops/shape.h"

namespace convtape::onnx {

namespace {

using detail::Origin;
using detail::Pass;
using detail::TracedOp;
using detail::Value;

constexpr std::string_view kOp = "onnx::export_model";
constexpr std::int64_t kMinOpset = 13;  // Softmax's axis, Pad / Slice / Squeeze inputs, Resize
constexpr std::int64_t kMaxOpset = 17;  // the newest the ONNX library here knows

// The IR version that came with each opset (ONNX's versioning table).
std::int64_t ir_version(std::int64_t opset) {
  return opset >= 15 ? 8 : 7;
}

// Puts the whole tree in eval mode for its lifetime, then gives every module its own flag back.
class EvalMode {
 public:
  explicit EvalMode(nn::Module& module) {
    for (const auto& m : module.modules()) flags_.emplace_back(m, m->is_training());
    module.eval();
  }
  ~EvalMode() {
    // Pre-order: a parent's train() sets its children, which then get their own flag back.
    for (const auto& [m, on] : flags_) m->train(on);
  }
  EvalMode(const EvalMode&) = delete;
  EvalMode& operator=(const EvalMode&) = delete;

 private:
  std::vector<std::pair<std::shared_ptr<nn::Module>, bool>> flags_;
};

struct Names {
  std::vector<std::string> inputs;
  std::string output;
};

Names check_options(const std::vector<Tensor>& examples, const ExportOptions& o) {
  CT_CHECK(o.opset >= kMinOpset && o.opset <= kMaxOpset, "{}: expected opset {} to {}, got {}", kOp,
           kMinOpset, kMaxOpset, o.opset);
  CT_CHECK(!examples.empty(), "{}: expected at least one example input, got none", kOp);
  for (std::size_t i = 0; i < examples.size(); ++i)
    CT_CHECK(examples[i].defined(),
             "{}: expected defined example inputs, got an undefined one at {}", kOp, i);
  Names names;
  if (o.input_names.empty()) {
    if (examples.size() == 1) names.inputs = {"input"};
    for (std::size_t i = 0; examples.size() > 1 && i < examples.size(); ++i)
      names.inputs.push_back(fmt::format("input{}", i));
  } else {
    CT_CHECK(o.input_names.size() == examples.size(),
             "{}: expected one input name per example input ({}), got {} names", kOp,
             examples.size(), o.input_names.size());
    names.inputs = o.input_names;
  }
  CT_CHECK(o.output_names.size() <= 1,
           "{}: expected one output name (a module returns one tensor), got {}", kOp,
           o.output_names.size());
  names.output = o.output_names.empty() ? "output" : o.output_names[0];
  std::set<std::string> seen;
  for (const std::string& n : names.inputs) {
    CT_CHECK(!n.empty() && n.rfind("const_", 0) != 0,
             "{}: expected input names that are not empty and do not start with const_, got '{}'",
             kOp, n);
    CT_CHECK(seen.insert(n).second, "{}: expected distinct input names, got '{}' twice", kOp, n);
  }
  CT_CHECK(
      !names.output.empty() && names.output.rfind("const_", 0) != 0 && !seen.count(names.output),
      "{}: expected an output name that is not empty, not an input's and does not start with "
      "const_, got '{}'",
      kOp, names.output);
  if (o.dynamic_batch) {
    for (std::size_t i = 0; i < examples.size(); ++i) {
      CT_CHECK(examples[i].dim() >= 1 && examples[i].size(0) == examples[0].size(0),
               "{}: expected inputs of one batch size (dim 0) with dynamic_batch, got {} and {}",
               kOp, to_string(examples[0].shape()), to_string(examples[i].shape()));
    }
  }
  return names;
}

// The first pass reads copies of the examples (floating ones requiring grad, so that every op of
// the pass records and an op without a trace is reported by record()).
std::vector<Tensor> first_inputs(const std::vector<Tensor>& examples) {
  std::vector<Tensor> xs;
  for (const Tensor& x : examples) {
    Tensor c = x.detach().clone();
    if (c.is_floating_point()) c.requires_grad_(true);
    xs.push_back(c);
  }
  return xs;
}

// The second pass reads other values: random normal ones for floating inputs, an integer input's
// own values reversed (so that indices stay valid); batch + 1 rows with dynamic_batch.
std::vector<Tensor> second_inputs(const std::vector<Tensor>& examples, bool dynamic_batch) {
  Generator gen(0x6f6e6e78);
  std::vector<Tensor> xs;
  for (const Tensor& x : examples) {
    Shape shape = x.shape();
    if (dynamic_batch) shape[0] += 1;
    Tensor c;
    if (x.is_floating_point()) {
      c = randn(shape, x.options(), &gen).requires_grad_(true);
    } else {
      std::vector<std::int64_t> all;
      for (std::int64_t d = 0; d < x.dim(); ++d) all.push_back(d);
      Tensor r = flip(x.detach(), all);
      if (dynamic_batch && x.size(0) == 0) {
        r = zeros(shape, x.options());  // no row to repeat
      } else if (dynamic_batch) {
        // One more row: the first one again.
        std::vector<std::int64_t> rows;
        for (std::int64_t i = 0; i < shape[0]; ++i) rows.push_back(i % x.size(0));
        r = index_select(r, 0, from_vector(rows, {shape[0]}).to(x.device()));
      }
      c = r.contiguous();
    }
    xs.push_back(c);
  }
  return xs;
}

std::string kind_name(const Origin& o) {
  switch (o.kind) {
    case Origin::Kind::Absent:
      return "nothing";
    case Origin::Kind::Input:
      return fmt::format("graph input {}", o.index);
    case Origin::Kind::Op:
      return fmt::format("the output of op #{}", o.index);
    case Origin::Kind::State:
      return fmt::format("'{}'", o.name);
    case Origin::Kind::Constant:
      return "a constant";
  }
  return "?";
}

bool same_values(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  const Tensor ca = a.detach().cpu().contiguous(), cb = b.detach().cpu().contiguous();
  const std::size_t bytes = static_cast<std::size_t>(ca.numel()) * dtype_size(ca.dtype());
  return bytes == 0 || std::memcmp(ca.raw_data(), cb.raw_data(), bytes) == 0;
}

// Ops that record without a trace but whose value is their input's (copies, the identity node
// of a module's backward hooks) or its conversion (to, a Cast).
bool passes_through(const trace::Event& e) {
  static const std::unordered_set<std::string> ops{"clone", "contiguous", "backward_hook", "to"};
  return !e.known && e.inputs.size() == 1 && ops.count(e.op) > 0;
}

// Attributes compared as values, NaN equal to NaN (a clamp bound).
bool same_attr(const trace::Attr& a, const trace::Attr& b) {
  const auto same = [](double x, double y) { return x == y || (std::isnan(x) && std::isnan(y)); };
  if (const auto* x = std::get_if<double>(&a)) {
    const auto* y = std::get_if<double>(&b);
    return y && same(*x, *y);
  }
  if (const auto* x = std::get_if<std::vector<double>>(&a)) {
    const auto* y = std::get_if<std::vector<double>>(&b);
    return y && std::equal(x->begin(), x->end(), y->begin(), y->end(), same);
  }
  return a == b;
}

// The ops the graph needs: those the output depends on, found backwards from it.
std::vector<bool> needed_ops(const Pass& a) {
  std::vector<bool> needed(a.ops.size(), false);
  const Origin out = a.origin(a.output);
  if (out.kind != Origin::Kind::Op) return needed;
  needed[out.index] = true;
  for (std::size_t i = a.ops.size(); i-- > 0;) {
    if (!needed[i]) continue;
    for (const Tensor& t : a.ops[i].event.inputs) {
      const Origin o = a.origin(t);
      if (o.kind == Origin::Kind::Op && o.index < i) needed[o.index] = true;
    }
  }
  return needed;
}

// A tensor read by the graph that did not come from an input, an op or the module's state is kept
// as a constant: it must be one, the same in the second pass (same values, same shape).
void check_constant(const Tensor& a, const Tensor& b, const std::string& what, bool dynamic) {
  if (same_values(a, b)) return;
  if (dynamic && a.shape() != b.shape())
    CT_FAIL(
        "{}: expected tensors that do not follow the batch size to come from ops that ONNX can "
        "express (dynamic_batch), got {} of shape {} at one batch size and {} at another, made "
        "outside the trace",
        kOp, what, to_string(a.shape()), to_string(b.shape()));
  CT_FAIL(
      "{}: expected values computed from the inputs to come from ops that ONNX can express, got "
      "{} computed outside the trace (by an op that records nothing, such as a comparison, "
      "argmax or detach)",
      kOp, what);
}

// The second pass must be the first one's graph: the same ops reading the same things, the same
// constants and attributes; with dynamic_batch only dims and target shapes may differ.
void check_same_graph(const Pass& a, const Pass& b, const std::vector<bool>& needed, bool dynamic) {
  const std::size_t n = std::min(a.ops.size(), b.ops.size());
  for (std::size_t i = 0; i <= n; ++i) {
    const bool end_a = i == a.ops.size(), end_b = i == b.ops.size();
    if (end_a && end_b) break;
    const bool differ = end_a || end_b || a.ops[i].event.op != b.ops[i].event.op ||
                        a.ops[i].event.inputs.size() != b.ops[i].event.inputs.size();
    CT_CHECK(!differ,
             "{}: expected the same ops for other input values{} (no control flow on input "
             "values), got {} and {} as op #{}",
             kOp, dynamic ? " and another batch size" : "",
             end_a ? std::string("no op") : detail::where(a.ops[i]),
             end_b ? std::string("no op") : detail::where(b.ops[i]), i);
  }
  for (std::size_t i = 0; i < a.ops.size(); ++i) {
    if (!needed[i]) continue;
    const trace::Event& ea = a.ops[i].event;
    const trace::Event& eb = b.ops[i].event;
    const std::string at = detail::where(a.ops[i]);
    CT_CHECK(ea.known ? detail::find_lowering(ea.op) != nullptr : passes_through(ea),
             "{}: expected ops that ONNX can express, got {}", kOp, at);
    for (std::size_t j = 0; j < ea.inputs.size(); ++j) {
      const Origin oa = a.origin(ea.inputs[j]), ob = b.origin(eb.inputs[j]);
      const std::string what = fmt::format("input {} of {}", j, at);
      if (oa.kind == Origin::Kind::Constant && ob.kind == Origin::Kind::Constant) {
        check_constant(ea.inputs[j], eb.inputs[j], what, dynamic);
        continue;
      }
      const bool same = oa.kind == ob.kind && oa.index == ob.index && oa.name == ob.name;
      if (!same && (oa.kind == Origin::Kind::Constant || ob.kind == Origin::Kind::Constant))
        check_constant(ea.inputs[j], eb.inputs[j], what, dynamic);
      CT_CHECK(same, "{}: expected {} to read the same value for other input values, got {} and {}",
               kOp, what, kind_name(oa), kind_name(ob));
    }
    for (std::size_t k = 0; k < ea.attrs.size(); ++k) {
      const auto& [key, value] = ea.attrs[k];
      const bool same =
          k < eb.attrs.size() && eb.attrs[k].first == key && same_attr(eb.attrs[k].second, value);
      CT_CHECK(same || (dynamic && detail::batch_dependent_attr(ea.op, key)),
               "{}: expected {} to take the same {} for other input values{}, got one that "
               "changes with them",
               kOp, at, key, dynamic ? " and another batch size" : "");
    }
  }
}

// What the graph's value of each traced tensor is, and what shape inference must find for it.
struct Expected {
  std::string name;
  Shape shape;
  std::vector<bool> dynamic;
  std::string at;
};

class Writer {
 public:
  Writer(::onnx::ModelProto& model, const Pass& a, const Pass& b, const Names& names,
         const ExportOptions& o)
      : graph_(*model.mutable_graph()), a_(a), b_(b), names_(names), options_(o) {}

  void write(const std::vector<bool>& needed) {
    add_inputs();
    for (std::size_t i = 0; i < a_.ops.size(); ++i)
      if (needed[i]) write_op(i);
    add_output();
  }
  const std::vector<Expected>& expected() const { return expected_; }

 private:
  void add_inputs() {
    for (std::size_t i = 0; i < a_.inputs.size(); ++i) {
      const Tensor& x = a_.inputs[i];
      std::vector<bool> dyn(static_cast<std::size_t>(x.dim()), false);
      if (options_.dynamic_batch) dyn[0] = true;
      value_info(*graph_.graph().add_input(), names_.inputs[i], x, dyn, a_.inputs[i], b_.inputs[i]);
      values_[x.impl()] = Value{names_.inputs[i], dyn};
    }
  }

  // The value of a tensor the graph reads (an initializer the first time a state tensor or a
  // constant is read).
  Value value_of(const Tensor& t) {
    if (!t.defined()) return {};
    if (const auto it = values_.find(t.impl()); it != values_.end()) return it->second;
    const Origin o = a_.origin(t);
    std::string name;
    if (o.kind == Origin::Kind::State) {
      name = o.name;
      graph_.initializer(name, t);
    } else {
      name = graph_.constant(t);
    }
    Value v{name, std::vector<bool>(static_cast<std::size_t>(t.dim()), false)};
    values_[t.impl()] = v;
    return v;
  }

  void write_op(std::size_t i) {
    const TracedOp& op = a_.ops[i];
    const trace::Event& e = op.event;
    std::vector<Value> inputs;
    for (const Tensor& t : e.inputs) inputs.push_back(value_of(t));
    const std::vector<bool> out_dyn =
        dims_that_differ(e.output.shape(), b_.ops[i].event.output.shape());
    if (!e.known) {
      // check_same_graph let only passes_through ops by: a copy (or a move between devices) is its
      // input's value, a conversion a Cast.
      if (e.op != "to" || e.output.dtype() == e.inputs[0].dtype()) {
        values_[e.output.impl()] = Value{inputs[0].name, out_dyn};
        return;
      }
      bind(op,
           graph_.node("Cast", {inputs[0].name},
                       {{"to", std::int64_t{detail::onnx_elem_type(e.output.dtype())}}}, op.module),
           out_dyn);
      return;
    }
    const detail::LowerFn lower = detail::find_lowering(e.op);
    detail::Lowering L(graph_, op, b_.ops[i], std::move(inputs), options_.opset);
    lower(L);
    bind(op, L.result, out_dyn);
  }

  void bind(const TracedOp& op, const std::string& name, const std::vector<bool>& dyn) {
    values_[op.event.output.impl()] = Value{name, dyn};
    expected_.push_back({name, op.event.output.shape(), dyn, detail::where(op)});
  }

  void add_output() {
    const Value v = value_of(a_.output);
    const bool from_node = std::any_of(
        graph_.graph().node().begin(), graph_.graph().node().end(),
        [&](const ::onnx::NodeProto& n) { return !n.output().empty() && n.output(0) == v.name; });
    const bool is_input =
        std::find(names_.inputs.begin(), names_.inputs.end(), v.name) != names_.inputs.end();
    if (from_node && !is_input) {
      graph_.rename(v.name, names_.output);
      for (Expected& x : expected_)
        if (x.name == v.name) x.name = names_.output;
    } else {
      graph_.rename(graph_.node("Identity", {v.name}), names_.output);
    }
    value_info(*graph_.graph().add_output(), names_.output, a_.output,
               dims_that_differ(a_.output.shape(), b_.output.shape()), a_.inputs[0], b_.inputs[0]);
  }

  // A graph input's or output's type: its dtype and shape, a dim that follows the batch symbolic
  // ("batch" when it is the batch size itself).
  void value_info(::onnx::ValueInfoProto& info, const std::string& name, const Tensor& t,
                  const std::vector<bool>& dyn, const Tensor& first_input,
                  const Tensor& second_input) {
    info.set_name(name);
    ::onnx::TypeProto_Tensor* type = info.mutable_type()->mutable_tensor_type();
    type->set_elem_type(detail::onnx_elem_type(t.dtype()));
    ::onnx::TensorShapeProto* shape = type->mutable_shape();
    for (std::int64_t d = 0; d < t.dim(); ++d) {
      ::onnx::TensorShapeProto_Dimension* dim = shape->add_dim();
      if (!dyn[static_cast<std::size_t>(d)]) {
        dim->set_dim_value(t.size(d));
        continue;
      }
      const bool batch = first_input.dim() > 0 && t.size(d) == first_input.size(0) &&
                         second_input.size(0) == first_input.size(0) + 1;
      dim->set_dim_param(batch ? "batch" : fmt::format("{}_dim{}", name, d));
    }
  }

  static std::vector<bool> dims_that_differ(const Shape& a, const Shape& b) {
    std::vector<bool> out(a.size(), false);
    for (std::size_t d = 0; d < a.size() && d < b.size(); ++d) out[d] = a[d] != b[d];
    return out;
  }

  detail::GraphBuilder graph_;
  const Pass& a_;
  const Pass& b_;
  const Names& names_;
  const ExportOptions& options_;
  std::unordered_map<const TensorImpl*, Value> values_;
  std::vector<Expected> expected_;
};

std::string shape_string(const ::onnx::TypeProto& type) {
  if (!type.has_tensor_type() || !type.tensor_type().has_shape()) return "an unknown shape";
  std::vector<std::string> dims;
  for (const auto& d : type.tensor_type().shape().dim())
    dims.push_back(d.has_dim_value() ? std::to_string(d.dim_value())
                                     : (d.has_dim_param() ? d.dim_param() : std::string("?")));
  return fmt::format("[{}]", fmt::join(dims, ", "));
}

// ONNX's checker, then its shape inference (strict), whose shapes must be the traced ones: a dim
// that follows the batch must not come out as a number.
void check_model(const ::onnx::ModelProto& model, const std::vector<Expected>& expected) {
  try {
    ::onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    CT_FAIL("{}: expected a model that ONNX's checker accepts, got: {}", kOp, e.what());
  }
  ::onnx::ModelProto inferred = model;
  try {
    ::onnx::shape_inference::InferShapes(inferred, ::onnx::OpSchemaRegistry::Instance(),
                                         ::onnx::ShapeInferenceOptions(true, 1, false));
  } catch (const std::exception& e) {
    CT_FAIL("{}: expected a model that ONNX's shape inference accepts, got: {}", kOp, e.what());
  }
  std::unordered_map<std::string, const ::onnx::TypeProto*> types;
  for (const auto& v : inferred.graph().value_info()) types[v.name()] = &v.type();
  for (const auto& v : inferred.graph().output()) types[v.name()] = &v.type();
  for (const Expected& x : expected) {
    const auto it = types.find(x.name);
    if (it == types.end() || !it->second->has_tensor_type() ||
        !it->second->tensor_type().has_shape())
      continue;  // nothing inferred (a Resize to sizes computed at run time): nothing to compare
    const auto& dims = it->second->tensor_type().shape().dim();
    bool ok = dims.size() == static_cast<int>(x.shape.size());
    for (int d = 0; ok && d < dims.size(); ++d) {
      if (!dims[d].has_dim_value()) continue;
      const auto du = static_cast<std::size_t>(d);
      ok = !x.dynamic[du] && dims[d].dim_value() == x.shape[du];
    }
    CT_CHECK(ok,
             "{}: expected ONNX's shape inference to find the traced shape {}{} for the output of "
             "{}, got {}",
             kOp, to_string(x.shape),
             std::find(x.dynamic.begin(), x.dynamic.end(), true) != x.dynamic.end()
                 ? " (with the batch dims symbolic)"
                 : "",
             x.at, shape_string(*it->second));
  }
}

}  // namespace

std::string export_model_bytes(nn::Module& module, const std::vector<Tensor>& example_inputs,
                               const ExportOptions& options) {
  const Names names = check_options(example_inputs, options);
  const detail::StateNames states = detail::state_names(module);
  EvalMode eval(module);
  const Pass a = detail::capture(module, first_inputs(example_inputs), states);
  CT_CHECK(a.output.defined(), "{}: expected the module to return a tensor, got an undefined one",
           kOp);
  Pass b;
  try {
    b = detail::capture(module, second_inputs(example_inputs, options.dynamic_batch), states);
  } catch (const Error& e) {
    CT_FAIL(
        "{}: expected the module to run on other input values{} too (the second pass, which "
        "checks that the graph does not depend on the example values), got: {}",
        kOp, options.dynamic_batch ? " and batch size" : "", e.message());
  }
  const std::vector<bool> needed = needed_ops(a);
  check_same_graph(a, b, needed, options.dynamic_batch);
  {
    const Origin oa = a.origin(a.output), ob = b.origin(b.output);
    if (oa.kind == Origin::Kind::Constant || ob.kind == Origin::Kind::Constant)
      check_constant(a.output, b.output, "the module's output", options.dynamic_batch);
    CT_CHECK(oa.kind == ob.kind && oa.index == ob.index && oa.name == ob.name,
             "{}: expected the module's output to come from the same op for other input values, "
             "got {} and {}",
             kOp, kind_name(oa), kind_name(ob));
  }

  ::onnx::ModelProto model;
  model.set_ir_version(ir_version(options.opset));
  model.set_producer_name("convtape");
  model.set_producer_version(CONVTAPE_ONNX_VERSION);
  ::onnx::OperatorSetIdProto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(options.opset);
  model.mutable_graph()->set_name(module.type_name());
  Writer writer(model, a, b, names, options);
  writer.write(needed);
  check_model(model, writer.expected());
  std::string bytes;
  CT_CHECK(model.SerializeToString(&bytes), "{}: expected the model to serialise, got a failure",
           kOp);
  return bytes;
}

void export_model(nn::Module& module, const std::vector<Tensor>& example_inputs,
                  const std::string& path, const ExportOptions& options) {
  const std::string bytes = export_model_bytes(module, example_inputs, options);
  io::write_file_atomically(path, bytes.data(), bytes.size(), kOp);
}

}  // namespace convtape::onnx
