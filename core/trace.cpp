// Tracing sessions and op scopes (see core/trace.h).
#include "core/trace.h"

#include "core/error.h"

namespace convtape::trace {

namespace {
struct State {
  Tracer* tracer = nullptr;
  int depth = 0;  // traced ops running on this thread
};
thread_local State t_state;
}  // namespace

Session::Session(Tracer& tracer) {
  CT_CHECK(t_state.tracer == nullptr,
           "trace: expected no trace session running on this thread, got a second one");
  t_state.tracer = &tracer;
  t_state.depth = 0;
}

Session::~Session() {
  t_state.tracer = nullptr;
  t_state.depth = 0;
}

bool enabled() noexcept {
  return t_state.tracer != nullptr && t_state.depth == 0;
}

OpScope::OpScope() noexcept {
  if (t_state.tracer == nullptr) return;
  active_ = true;
  recording_ = t_state.depth == 0;
  ++t_state.depth;
}

OpScope::~OpScope() {
  if (active_) --t_state.depth;
}

void OpScope::emit(std::string_view op, std::vector<Tensor> inputs, const Tensor& output,
                   Attrs attrs) {
  if (!recording_ || t_state.tracer == nullptr) return;
  t_state.tracer->on_event(Event{std::string(op), std::move(inputs), output, std::move(attrs)});
}

void report_untraced(std::string_view op, const std::vector<Tensor>& inputs, const Tensor& output) {
  if (!enabled()) return;
  t_state.tracer->on_event(Event{std::string(op), inputs, output, {}, /*known=*/false});
}

}  // namespace convtape::trace
