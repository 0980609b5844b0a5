// Tape recording: grad mode, saved-tensor version checks, and attaching nodes to op outputs.
#include "core/autograd.h"

#include <atomic>

#include "core/trace.h"

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

Saved::Saved(std::string_view op, const std::vector<SavedValue>& tensors, const TensorImpl* output,
             const std::shared_ptr<autograd::Node>& node)
    : op_(op), node_(node) {
  data_.reserve(tensors.size());
  vars_.reserve(tensors.size());
  versions_.reserve(tensors.size() * 2);
  is_output_.reserve(tensors.size());
  for (const auto& v : tensors) {
    const Tensor& t = v.data;
    const Tensor& var = v.origin.defined() ? v.origin : t;
    const bool out = var.defined() && var.impl() == output;
    data_.push_back(t.defined() ? t.detach() : Tensor());
    // History is kept for tensors on the tape; the output is rebuilt from node_ on access.
    vars_.push_back(var.defined() && var.requires_grad() && !out ? var : Tensor());
    versions_.push_back(t.defined() ? t.storage()->version() : 0);
    versions_.push_back(var.defined() ? var.storage()->version() : 0);
    is_output_.push_back(out);
  }
}

Tensor Saved::operator[](std::size_t i) const {
  CT_CHECK(i < data_.size(),
           "backward of {}: expected a saved tensor index below {}, got {} (the graph may have "
           "been freed)",
           op_, data_.size(), i);
  const Tensor& t = data_[i];
  const Tensor& var = vars_[i];
  const std::uint64_t now = t.defined() ? t.storage()->version() : 0;
  const std::uint64_t var_now = var.defined() ? var.storage()->version() : versions_[2 * i + 1];
  CT_CHECK(now == versions_[2 * i] && var_now == versions_[2 * i + 1],
           "backward of {}: expected saved tensor {} unchanged since the forward pass, got one "
           "modified in place "
           "(version {} -> {})",
           op_, i, versions_[2 * i] + versions_[2 * i + 1], now + var_now);
  if (!GradMode::is_enabled()) return t;
  if (var.defined()) return var;
  if (is_output_[i]) {
    // The output as the tape knows it: same memory, grad_fn this node.
    auto node = node_.lock();
    CT_CHECK(node != nullptr, "backward of {}: expected the node of saved output {} alive", op_, i);
    auto impl = std::make_shared<TensorImpl>(*t.impl());
    impl->grad.reset();
    impl->hooks.reset();
    impl->requires_grad = true;
    impl->grad_fn = std::move(node);
    return Tensor(std::move(impl));
  }
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

HookHandle register_post_accumulate_grad_hook(const Tensor& leaf, PostAccumulateGradHook hook) {
  CT_CHECK(leaf.defined() && leaf.is_leaf() && leaf.requires_grad(),
           "register_post_accumulate_grad_hook: expected a leaf tensor that requires grad, got {}",
           !leaf.defined()   ? std::string("an undefined tensor")
           : !leaf.is_leaf() ? fmt::format("the output of {}", leaf.grad_fn_name())
                             : std::string("one that does not require grad"));
  CT_CHECK(hook != nullptr,
           "register_post_accumulate_grad_hook: expected a hook, got an empty "
           "function");
  auto& hooks = leaf.impl()->hooks;
  if (!hooks) hooks = std::make_shared<LeafHooks>();
  const std::uint64_t id = hooks->next_id++;
  hooks->hooks.emplace_back(id, std::move(hook));
  return HookHandle(leaf.impl_ptr(), id);
}

void HookHandle::remove() {
  const auto leaf = leaf_.lock();
  leaf_.reset();
  if (!leaf || !leaf->hooks) return;
  auto& v = leaf->hooks->hooks;
  std::erase_if(v, [&](const auto& h) { return h.first == id_; });
  if (v.empty()) leaf->hooks.reset();
}
}  // namespace autograd

bool any_requires_grad(const std::vector<Tensor>& inputs) {
  if (!GradMode::is_enabled()) return false;
  for (const auto& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void record(Tensor& y, std::string_view op, const std::vector<Tensor>& inputs,
            const std::vector<SavedValue>& saved, BackwardFn backward) {
  trace::report_untraced(op, inputs, y);
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
  node->saved = Saved(op, saved, y.impl(), node);
  node->backward = std::move(backward);
  y.impl()->grad_fn = std::move(node);
  y.impl()->requires_grad = true;
}

}  // namespace convtape
