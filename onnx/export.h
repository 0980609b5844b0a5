// ONNX export (libconvtape_onnx, target convtape::onnx, built where Debian's libonnx-dev is
// found): one forward pass of a module on example inputs, traced (core/trace.h), written as an
// ONNX model. Parameters and buffers become initializers under their state_dict names, other
// constants "const_N"; every op of the pass that the output depends on must have an ONNX form, or
// export fails naming the op and the module it ran in:
//   "onnx::export_model: expected ops that ONNX can express, got 'sum' in module 'head' (Fn)"
// and so does an option ONNX cannot express (a conv's input dilation, BatchNorm on batch
// statistics, adaptive pooling with uneven windows, divisor_override, ...): never a graph that
// computes something else.
// The module runs in eval mode for the export (every module's own flag is restored after), twice:
// on the examples, and on other values (random; one more row with dynamic_batch). The two passes
// must trace the same ops on the same operands, so that a value computed outside the trace (a
// comparison's mask, argmax, detach, item) or control flow on input values is refused instead of
// frozen into the graph, and the dims that follow the batch are known.
// The written model passes onnx::checker::check_model and ONNX's strict shape inference, whose
// shapes are checked against the traced ones. Opsets 13 to 17.
// With ONNX's own headers in the same file, write convtape::onnx (the library's namespace is onnx).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "modules/module.h"

namespace convtape::onnx {

struct ExportOptions {
  std::int64_t opset = 17;     // the default domain's opset version, 13 to 17
  bool dynamic_batch = false;  // dim 0 of every input (one batch size) symbolic, "batch"
  std::vector<std::string> input_names = {};   // default: input, or input0, input1, ...
  std::vector<std::string> output_names = {};  // default: output
};

// Writes the model to path (through a temporary file, renamed when complete: io/file.h).
void export_model(nn::Module& module, const std::vector<Tensor>& example_inputs,
                  const std::string& path, const ExportOptions& options = {});

// The serialized ModelProto, for callers that keep it in memory (the tests).
std::string export_model_bytes(nn::Module& module, const std::vector<Tensor>& example_inputs,
                               const ExportOptions& options = {});

}  // namespace convtape::onnx
