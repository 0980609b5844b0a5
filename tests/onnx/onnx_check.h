// Reading back what onnx::export_model wrote, for the tests in tests/onnx: the model parsed, run
// through ONNX's checker and ONNX's (strict) shape inference here in the test, and small accessors
// for nodes, attributes, initializers and inferred shapes. The ONNX library is spelled ::onnx::
// (convtape::onnx is the exporter's namespace).
#pragma once

#include <catch2/catch.hpp>

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "convtape.h"
#include "onnx/export.h"

namespace ct_onnx {

// A module whose forward is a function of its inputs (a model written inline in a test).
class Fn : public convtape::nn::Module {
 public:
  using Body = std::function<convtape::Tensor(const std::vector<convtape::Tensor>&)>;
  explicit Fn(Body body, std::string type = "Fn")
      : body_(std::move(body)), type_(std::move(type)) {}
  convtape::Tensor forward_inputs(const std::vector<convtape::Tensor>& inputs) override {
    return body_(inputs);
  }
  std::string type_name() const override { return type_; }

 private:
  Body body_;
  std::string type_;
};

inline std::shared_ptr<Fn> fn(Fn::Body body) {
  return std::make_shared<Fn>(std::move(body));
}

// The serialized model parsed, checked (checker and strict shape inference, here in the test) and
// returned with the inferred shapes in its value_info.
inline ::onnx::ModelProto checked_model(const std::string& bytes) {
  ::onnx::ModelProto model;
  REQUIRE(model.ParseFromString(bytes));
  REQUIRE_NOTHROW(::onnx::checker::check_model(model));
  REQUIRE_NOTHROW(::onnx::shape_inference::InferShapes(
      model, ::onnx::OpSchemaRegistry::Instance(), ::onnx::ShapeInferenceOptions(true, 1, false)));
  return model;
}

inline ::onnx::ModelProto export_checked(convtape::nn::Module& m,
                                         const std::vector<convtape::Tensor>& inputs,
                                         const convtape::onnx::ExportOptions& options = {}) {
  return checked_model(convtape::onnx::export_model_bytes(m, inputs, options));
}

inline std::vector<std::string> op_types(const ::onnx::ModelProto& m) {
  std::vector<std::string> types;
  for (const auto& n : m.graph().node()) types.push_back(n.op_type());
  return types;
}

// The k-th node of a type (in graph order).
inline const ::onnx::NodeProto& node(const ::onnx::ModelProto& m, const std::string& type,
                                     int k = 0) {
  for (const auto& n : m.graph().node())
    if (n.op_type() == type && k-- == 0) return n;
  FAIL("no node " << type << " #" << k);
  throw std::logic_error("unreachable");
}

inline const ::onnx::AttributeProto* find_attr(const ::onnx::NodeProto& n,
                                               const std::string& name) {
  for (const auto& a : n.attribute())
    if (a.name() == name) return &a;
  return nullptr;
}

inline bool has_attr(const ::onnx::NodeProto& n, const std::string& name) {
  return find_attr(n, name) != nullptr;
}

inline std::vector<std::int64_t> ints(const ::onnx::NodeProto& n, const std::string& name) {
  const auto* a = find_attr(n, name);
  REQUIRE(a != nullptr);
  return {a->ints().begin(), a->ints().end()};
}

inline std::int64_t int_attr(const ::onnx::NodeProto& n, const std::string& name) {
  const auto* a = find_attr(n, name);
  REQUIRE(a != nullptr);
  return a->i();
}

inline float float_attr(const ::onnx::NodeProto& n, const std::string& name) {
  const auto* a = find_attr(n, name);
  REQUIRE(a != nullptr);
  return a->f();
}

inline std::string string_attr(const ::onnx::NodeProto& n, const std::string& name) {
  const auto* a = find_attr(n, name);
  REQUIRE(a != nullptr);
  return a->s();
}

// A shape as text: "[2, 10]", a symbolic dim by its name ("[batch, 10]"), an unknown one "?".
inline std::string shape_text(const ::onnx::TypeProto& type) {
  if (!type.tensor_type().has_shape()) return "unknown";
  std::string s = "[";
  bool first = true;
  for (const auto& d : type.tensor_type().shape().dim()) {
    s += first ? "" : ", ";
    first = false;
    s += d.has_dim_value() ? std::to_string(d.dim_value())
                           : (d.has_dim_param() ? d.dim_param() : std::string("?"));
  }
  return s + "]";
}

// The shape ONNX's shape inference gives a value (a graph output, or an inner value).
inline std::string inferred_shape(const ::onnx::ModelProto& m, const std::string& value) {
  for (const auto& v : m.graph().output())
    if (v.name() == value) return shape_text(v.type());
  for (const auto& v : m.graph().value_info())
    if (v.name() == value) return shape_text(v.type());
  for (const auto& v : m.graph().input())
    if (v.name() == value) return shape_text(v.type());
  return "none";
}

// The shape inferred for the output of the k-th node of a type.
inline std::string node_shape(const ::onnx::ModelProto& m, const std::string& type, int k = 0) {
  return inferred_shape(m, node(m, type, k).output(0));
}

inline std::string output_shape(const ::onnx::ModelProto& m) {
  REQUIRE(m.graph().output_size() == 1);
  return shape_text(m.graph().output(0).type());
}

inline std::set<std::string> initializer_names(const ::onnx::ModelProto& m, bool constants) {
  std::set<std::string> names;
  for (const auto& t : m.graph().initializer())
    if (constants == (t.name().rfind("const_", 0) == 0)) names.insert(t.name());
  return names;
}

inline const ::onnx::TensorProto& initializer(const ::onnx::ModelProto& m,
                                              const std::string& name) {
  for (const auto& t : m.graph().initializer())
    if (t.name() == name) return t;
  FAIL("no initializer " << name);
  throw std::logic_error("unreachable");
}

// The initializer's values equal t's (same shape, same bytes).
inline bool holds(const ::onnx::TensorProto& p, const convtape::Tensor& t) {
  const convtape::Tensor c = t.detach().contiguous();
  if (static_cast<std::int64_t>(p.dims_size()) != c.dim()) return false;
  for (int d = 0; d < p.dims_size(); ++d)
    if (p.dims(d) != c.size(d)) return false;
  const std::size_t bytes = static_cast<std::size_t>(c.numel()) * convtape::dtype_size(c.dtype());
  return p.raw_data().size() == bytes &&
         (bytes == 0 || std::memcmp(p.raw_data().data(), c.raw_data(), bytes) == 0);
}

// The int64 values of an initializer (the constant inputs: shapes, axes, pads).
inline std::vector<std::int64_t> int64_values(const ::onnx::ModelProto& m,
                                              const std::string& name) {
  const auto& p = initializer(m, name);
  REQUIRE(p.data_type() == ::onnx::TensorProto_DataType_INT64);
  std::vector<std::int64_t> v(p.raw_data().size() / sizeof(std::int64_t));
  if (!v.empty()) std::memcpy(v.data(), p.raw_data().data(), p.raw_data().size());
  return v;
}

}  // namespace ct_onnx
