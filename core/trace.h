// Tracing: what a model exporter (onnx/) sees of one forward pass. While a trace::Session lives on
// a thread, every op front end that knows how it is exported reports itself as an Event (its
// name, its tensors and its attributes) through an OpScope; the ops it calls inside do not report
// (only the outermost traced op of a call chain does). Every other op that puts its output on the
// tape reports too, from record(), as an event without attributes (`known` false): an exporter
// that meets such an output in the graph it writes names the op it cannot express instead of
// writing a different graph. Off a session, OpScope costs one thread-local read.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "core/tensor.h"

namespace convtape::trace {

using Attr =
    std::variant<std::int64_t, double, std::vector<std::int64_t>, std::vector<double>, std::string>;
using Attrs = std::vector<std::pair<std::string, Attr>>;

struct Event {
  std::string op;              // convtape's op name: "conv", "max_pool", "add", ...
  std::vector<Tensor> inputs;  // undefined where an optional operand is absent (a bias)
  Tensor output;
  Attrs attrs;
  bool known = true;  // false: reported by record() for an op without an OpScope
};

class Tracer {
 public:
  virtual ~Tracer() = default;
  virtual void on_event(Event event) = 0;
};

// Routes this thread's events to tracer for its lifetime (one session per thread at a time).
class Session {
 public:
  explicit Session(Tracer& tracer);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
};

// True while a session is active on this thread and no traced op is running.
bool enabled() noexcept;

// Inside an op front end: `trace::OpScope scope; ... if (scope.recording()) scope.emit(...)`.
// The scope marks the op as running, so that the ops it calls (and its own record()) report
// nothing; recording() is true only for the outermost traced op of a session.
class OpScope {
 public:
  OpScope() noexcept;
  ~OpScope();
  OpScope(const OpScope&) = delete;
  OpScope& operator=(const OpScope&) = delete;
  bool recording() const noexcept { return recording_; }
  void emit(std::string_view op, std::vector<Tensor> inputs, const Tensor& output,
            Attrs attrs = {});

 private:
  bool active_ = false;     // a session is on: the depth was raised
  bool recording_ = false;  // and this is the outermost traced op
};

// Called by record() for every op output put on the tape: reports an untraced op.
void report_untraced(std::string_view op, const std::vector<Tensor>& inputs, const Tensor& output);

}  // namespace convtape::trace
