// The exporter's view of a forward pass (internal to libconvtape_onnx): every op the pass reported
// (core/trace.h) with the module it ran in, and where each op's inputs came from. Two passes of one
// module, on the example inputs and on other values (another batch size under dynamic_batch), are
// compared op by op, so that what the graph keeps as a constant is known not to depend on the
// inputs, and the dims that follow the batch size are known.
#pragma once

#include <cstddef>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/trace.h"
#include "modules/module.h"

namespace convtape::onnx::detail {

struct TracedOp {
  trace::Event event;
  std::string module;       // dotted name of the innermost module running it, "" for the top one
  std::string module_type;  // its type_name()
};

// Where a tensor read by an op comes from.
struct Origin {
  enum class Kind { Absent, Input, Op, State, Constant };
  Kind kind = Kind::Absent;
  std::size_t index = 0;  // Input: which graph input; Op: which op produced it
  std::string name;       // State: the state_dict name
};

// The module's parameters and buffers by tensor, with their state_dict names (a tensor shared by
// two modules under its first name).
using StateNames = std::unordered_map<const TensorImpl*, std::string>;
StateNames state_names(nn::Module& module);

struct Pass {
  std::vector<Tensor> inputs;  // what the forward pass was given
  Tensor output;
  std::vector<TracedOp> ops;
  std::unordered_map<const TensorImpl*, std::size_t> producer;  // op output -> the op's index
  std::unordered_map<const TensorImpl*, std::size_t> input_index;
  const StateNames* states = nullptr;

  // An input first, then an op's output, then the module's state; anything else is a constant.
  Origin origin(const Tensor& t) const;
};

// Runs module(inputs) once inside a trace session, with grad mode on, naming each op's module
// through forward pre- and post-hooks on every named module (removed again before returning).
Pass capture(nn::Module& module, const std::vector<Tensor>& inputs, const StateNames& states);

// "'<op>' in module '<name>' (<Type>)", the top module named '<root>'.
std::string where(const TracedOp& op);

}  // namespace convtape::onnx::detail
