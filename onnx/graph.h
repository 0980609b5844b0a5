// Writing an ONNX graph (internal to libconvtape_onnx): nodes with their attributes, initializers
// from tensors, and the small constants (shapes, axes, scalars) that ONNX's operators take as
// inputs. Everything here speaks the ONNX library's types, always spelled ::onnx:: (this code lives
// in convtape::onnx).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <onnx/onnx_pb.h>

#include "core/tensor.h"

namespace convtape::onnx::detail {

// One attribute of a node: an int, ints, a float (ONNX's attributes are float32) or a string.
struct NodeAttr {
  std::string name;
  std::variant<std::int64_t, std::vector<std::int64_t>, float, std::string> value;
};

// ONNX's element type for a convtape dtype.
int onnx_elem_type(DType dtype);

class GraphBuilder {
 public:
  explicit GraphBuilder(::onnx::GraphProto& graph) : graph_(graph) {}

  // Adds a node op_type(inputs) with one output, named "<scope>/<op_type>_<n>" (its output
  // "<node name>:0"); an empty input name is an absent optional input. Returns the output's name.
  std::string node(std::string_view op_type, const std::vector<std::string>& inputs,
                   const std::vector<NodeAttr>& attrs = {}, std::string_view scope = {});
  // An initializer named name holding t's values (t is read contiguous, on the CPU).
  void initializer(const std::string& name, const Tensor& t);
  // A fresh initializer "const_<n>" holding t / the int64 vector / a 0-d scalar of dtype.
  std::string constant(const Tensor& t);
  std::string constant_i64(const std::vector<std::int64_t>& values);
  std::string constant_scalar(double value, DType dtype);
  // A 1-d float32 constant (Resize's scales).
  std::string constant_f32(const std::vector<float>& values);

  // Renames a value wherever a node reads or writes it.
  void rename(const std::string& from, const std::string& to);

  ::onnx::GraphProto& graph() { return graph_; }

 private:
  ::onnx::GraphProto& graph_;
  std::int64_t nodes_ = 0;
  std::int64_t constants_ = 0;
};

}  // namespace convtape::onnx::detail
