// Writing an ONNX graph (see graph.h).
#include "onnx/graph.h"

#include <cstring>

#include "ops/factory.h"

namespace convtape::onnx::detail {

int onnx_elem_type(DType dtype) {
  switch (dtype) {
    case kFloat32:
      return ::onnx::TensorProto_DataType_FLOAT;
    case kFloat64:
      return ::onnx::TensorProto_DataType_DOUBLE;
    case kInt64:
      return ::onnx::TensorProto_DataType_INT64;
  }
  return ::onnx::TensorProto_DataType_UNDEFINED;
}

namespace {

void set_attr(::onnx::AttributeProto& a, const NodeAttr& attr) {
  a.set_name(attr.name);
  if (const auto* i = std::get_if<std::int64_t>(&attr.value)) {
    a.set_type(::onnx::AttributeProto_AttributeType_INT);
    a.set_i(*i);
  } else if (const auto* v = std::get_if<std::vector<std::int64_t>>(&attr.value)) {
    a.set_type(::onnx::AttributeProto_AttributeType_INTS);
    for (const std::int64_t x : *v) a.add_ints(x);
  } else if (const auto* f = std::get_if<float>(&attr.value)) {
    a.set_type(::onnx::AttributeProto_AttributeType_FLOAT);
    a.set_f(*f);
  } else {
    a.set_type(::onnx::AttributeProto_AttributeType_STRING);
    a.set_s(std::get<std::string>(attr.value));
  }
}

}  // namespace

std::string GraphBuilder::node(std::string_view op_type, const std::vector<std::string>& inputs,
                               const std::vector<NodeAttr>& attrs, std::string_view scope) {
  ::onnx::NodeProto* n = graph_.add_node();
  const std::string name = scope.empty() ? fmt::format("{}_{}", op_type, nodes_++)
                                         : fmt::format("{}/{}_{}", scope, op_type, nodes_++);
  n->set_name(name);
  n->set_op_type(std::string(op_type));
  for (const std::string& in : inputs) n->add_input(in);
  // Trailing absent inputs are left out rather than named "".
  while (n->input_size() > 0 && n->input(n->input_size() - 1).empty())
    n->mutable_input()->RemoveLast();
  const std::string out = name + ":0";
  n->add_output(out);
  for (const NodeAttr& attr : attrs) set_attr(*n->add_attribute(), attr);
  return out;
}

void GraphBuilder::initializer(const std::string& name, const Tensor& t) {
  const Tensor c = t.detach().cpu().contiguous();
  ::onnx::TensorProto* p = graph_.add_initializer();
  p->set_name(name);
  p->set_data_type(onnx_elem_type(c.dtype()));
  for (const std::int64_t d : c.shape()) p->add_dims(d);
  const std::size_t bytes = static_cast<std::size_t>(c.numel()) * dtype_size(c.dtype());
  // Little-endian raw bytes, as ONNX stores raw_data (convtape runs on little-endian hosts).
  std::string raw(bytes, '\0');
  if (bytes > 0) std::memcpy(raw.data(), c.raw_data(), bytes);
  p->set_raw_data(std::move(raw));
}

std::string GraphBuilder::constant(const Tensor& t) {
  std::string name = fmt::format("const_{}", constants_++);
  initializer(name, t);
  return name;
}

std::string GraphBuilder::constant_i64(const std::vector<std::int64_t>& values) {
  return constant(from_vector(values, {static_cast<std::int64_t>(values.size())}));
}

std::string GraphBuilder::constant_scalar(double value, DType dtype) {
  return constant(full({}, value, dtype));
}

std::string GraphBuilder::constant_f32(const std::vector<float>& values) {
  return constant(from_vector(values, {static_cast<std::int64_t>(values.size())}));
}

void GraphBuilder::rename(const std::string& from, const std::string& to) {
  for (::onnx::NodeProto& n : *graph_.mutable_node()) {
    for (std::string& in : *n.mutable_input())
      if (in == from) in = to;
    for (std::string& out : *n.mutable_output())
      if (out == from) out = to;
  }
}

}  // namespace convtape::onnx::detail
