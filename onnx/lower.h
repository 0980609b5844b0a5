// Lowering one traced op to ONNX nodes (internal to libconvtape_onnx). A lowering reads the op's
// attributes (the contract between the op front ends' trace::OpScope emits and this file is
// listed in lower.cpp), its inputs' value names, and which of its dims follow the batch size
// (from the second pass), writes nodes through the GraphBuilder, and names its output's value; an
// option ONNX cannot express is refused through fail(), naming the op, the option and the module.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "onnx/capture.h"
#include "onnx/graph.h"

namespace convtape::onnx::detail {

// A value of the graph: its name ("" for an absent optional input) and, per dim, whether its
// extent follows the batch size (dynamic_batch).
struct Value {
  std::string name;
  std::vector<bool> dynamic;
};

class Lowering {
 public:
  Lowering(GraphBuilder& graph, const TracedOp& op, const TracedOp& other,
           std::vector<Value> inputs, std::int64_t opset)
      : graph_(graph), op_(op), other_(other), inputs_(std::move(inputs)), opset_(opset) {}

  const TracedOp& op() const { return op_; }
  const trace::Event& event() const { return op_.event; }
  // The same op in the second pass (other input values, another batch size with dynamic_batch).
  const trace::Event& other() const { return other_.event; }
  std::size_t inputs() const { return inputs_.size(); }
  const Tensor& input(std::size_t i) const { return op_.event.inputs.at(i); }
  const std::string& in(std::size_t i) const { return inputs_.at(i).name; }
  const std::vector<bool>& in_dynamic(std::size_t i) const { return inputs_.at(i).dynamic; }
  std::int64_t opset() const { return opset_; }

  // A node in the op's module's scope; returns its output's name.
  std::string node(std::string_view op_type, const std::vector<std::string>& inputs,
                   const std::vector<NodeAttr>& attrs = {});
  GraphBuilder& graph() { return graph_; }

  bool has(std::string_view key) const;
  std::int64_t i64(std::string_view key) const;
  std::vector<std::int64_t> ints(std::string_view key) const;
  double f64(std::string_view key) const;
  std::vector<double> doubles(std::string_view key) const;
  std::string str(std::string_view key) const;

  // "onnx::export_model: expected <expected>, got <got> in '<op>' in module '<name>' (<Type>)".
  [[noreturn]] void fail(std::string_view expected, std::string_view got) const;

  std::string result;  // set by the lowering: the name of the op's output value

 private:
  const trace::Attr& attr(std::string_view key) const;

  GraphBuilder& graph_;
  const TracedOp& op_;
  const TracedOp& other_;
  std::vector<Value> inputs_;
  std::int64_t opset_;
};

using LowerFn = void (*)(Lowering&);

// The lowering of a traced op by its name; nullptr when the op has none.
LowerFn find_lowering(std::string_view op);

// Whether attribute attr of op may differ between the two passes with dynamic_batch (a target
// shape that holds the batch size); the lowering then reads which dims follow the batch.
bool batch_dependent_attr(std::string_view op, std::string_view attr);

}  // namespace convtape::onnx::detail
