// Tape recording: grad mode, saved-tensor version checks, and attaching nodes to op outputs.
#include "core/autograd.h"

#include <atomic>

namespace convtape {

namespace {
thread_local bool t_grad_enabled = true;
std::atomic<std::uint64_t> g_sequence{0};
}  // namespace

bool GradMode::is_enabled() noexcept {
  return t_grad_enabled;
}
void GradMode::set_enabled(bool enabled) noexcept {
  t_grad_enabled = enabled;
}

Saved::Saved(std::string_view op, const std::vector<Tensor>& tensors) : op_(op) {
  tensors_.reserve(tensors.size());
  versions_.reserve(tensors.size());
  for (const auto& t : tensors) {
    tensors_.push_back(t.defined() ? t.detach() : Tensor());
    versions_.push_back(t.defined() ? t.storage()->version() : 0);
  }
}

const Tensor& Saved::operator[](std::size_t i) const {
  CT_CHECK(i < tensors_.size(),
           "backward of {}: expected a saved tensor index below {}, got {} (the graph may have "
           "been freed)",
           op_, tensors_.size(), i);
  const Tensor& t = tensors_[i];
  CT_CHECK(!t.defined() || t.storage()->version() == versions_[i],
           "backward of {}: expected saved tensor {} unchanged since the forward pass, got one "
           "modified in place "
           "(version {} -> {})",
           op_, i, versions_[i], t.storage()->version());
  return t;
}

namespace autograd {
Node::Node() {
  detail::count_node(+1);
}
Node::~Node() {
  // Long chains of nodes would otherwise be destroyed recursively; unlink them iteratively.
  std::vector<std::shared_ptr<Node>> pending;
  for (auto& e : next)
    if (e.node && e.node.use_count() == 1) pending.push_back(std::move(e.node));
  next.clear();
  while (!pending.empty()) {
    auto n = std::move(pending.back());
    pending.pop_back();
    for (auto& e : n->next)
      if (e.node && e.node.use_count() == 1) pending.push_back(std::move(e.node));
    n->next.clear();
  }
  detail::count_node(-1);
}
}  // namespace autograd

bool any_requires_grad(const std::vector<Tensor>& inputs) {
  if (!GradMode::is_enabled()) return false;
  for (const auto& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void record(Tensor& y, std::string_view op, const std::vector<Tensor>& inputs,
            const std::vector<Tensor>& saved, BackwardFn backward) {
  if (!any_requires_grad(inputs)) return;
  auto node = std::make_shared<autograd::Node>();
  node->name = std::string(op);
  node->sequence = g_sequence.fetch_add(1);
  node->next.reserve(inputs.size());
  node->inputs.reserve(inputs.size());
  for (const auto& t : inputs) {
    autograd::Edge e;
    if (t.defined() && t.requires_grad()) {
      if (t.grad_fn())
        e.node = t.grad_fn();
      else
        e.leaf = t.impl_ptr();
    }
    node->next.push_back(std::move(e));
    node->inputs.push_back(t.defined() ? autograd::InputMeta{t.shape(), t.dtype(), t.device()}
                                       : autograd::InputMeta{{}, kFloat32, kCPU});
  }
  node->saved = Saved(op, saved);
  node->backward = std::move(backward);
  y.impl()->grad_fn = std::move(node);
  y.impl()->requires_grad = true;
}

}  // namespace convtape
