// Optimizer base: group checks, zero_grad, learning-rate access, and the state dict (written in
// group / parameter order, read back all-or-nothing).
#include "optim/optimizer.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <unordered_set>

#include <fmt/ranges.h>

#include "optim/detail.h"

namespace convtape::optim {

namespace {

std::string keys_of(const Hyper& h) {
  std::vector<std::string> keys;
  for (const auto& kv : h) keys.push_back(kv.first);
  return fmt::format("{}", fmt::join(keys, ", "));
}

}  // namespace

double ParamGroup::get(const std::string& name) const {
  const auto it = options.find(name);
  CT_CHECK(it != options.end(), "ParamGroup: expected a hyper-parameter '{}', got only: {}", name,
           keys_of(options));
  return it->second;
}

Optimizer::Optimizer(std::string name, Hyper defaults)
    : name_(std::move(name)), defaults_(std::move(defaults)) {}

void Optimizer::init_groups(std::vector<ParamGroup> groups) {
  check_hyper(defaults_, "");
  for (auto& g : groups) add_param_group(std::move(g));
  CT_CHECK(num_params() > 0, "{}: expected at least one parameter, got an empty parameter list",
           name_);
}

Optimizer::~Optimizer() = default;

void Optimizer::check_group(ParamGroup& group, const std::string& where) {
  std::unordered_set<const TensorImpl*> seen;
  for (const auto& g : groups_)
    for (const auto& p : g.params) seen.insert(p.impl());
  for (std::size_t j = 0; j < group.params.size(); ++j) {
    const Tensor& p = group.params[j];
    CT_CHECK(p.defined(), "{}: expected defined parameters, got an undefined one at position {}{}",
             name_, j, where);
    CT_CHECK(p.is_floating_point(),
             "{}: expected floating-point parameters, got {} at position {}{}", name_,
             dtype_name(p.dtype()), j, where);
    CT_CHECK(p.is_leaf(),
             "{}: expected leaf tensors as parameters, got the output of '{}' at position {}{}",
             name_, p.grad_fn_name(), j, where);
    CT_CHECK(seen.insert(p.impl()).second,
             "{}: expected each parameter once, got parameter {}{} a second time", name_, j, where);
  }
  for (const auto& [key, value] : group.options)
    CT_CHECK(defaults_.count(key) == 1, "{}: expected hyper-parameters among ({}), got '{}'{}",
             name_, keys_of(defaults_), key, where);
  for (const auto& [key, value] : defaults_) group.options.emplace(key, value);
  check_hyper(group.options, where);
}

void Optimizer::add_param_group(ParamGroup group) {
  check_group(group, fmt::format(" in param group {}", groups_.size()));
  groups_.push_back(std::move(group));
}

std::size_t Optimizer::num_params() const {
  std::size_t n = 0;
  for (const auto& g : groups_) n += g.params.size();
  return n;
}

void Optimizer::zero_grad() {
  for (auto& g : groups_)
    for (auto& p : g.params) p.zero_grad();
}

double Optimizer::lr() const {
  const double lr0 = groups_.front().lr();
  for (std::size_t g = 1; g < groups_.size(); ++g)
    CT_CHECK(groups_[g].lr() == lr0,
             "{}: expected one learning rate for all groups, got {} in group 0 and {} in group {} "
             "(read param_groups()[g].lr() instead)",
             name_, lr0, groups_[g].lr(), g);
  return lr0;
}

void Optimizer::set_lr(double lr) {
  CT_CHECK(lr >= 0.0, "{}: expected lr >= 0, got {}", name_, lr);
  for (auto& g : groups_) g.set_lr(lr);
}

const ParamState& Optimizer::state(const Tensor& param) const {
  static const ParamState kEmpty;
  const auto it = state_.find(param.impl());
  return it == state_.end() ? kEmpty : it->second;
}

const Hyper& Optimizer::checked_hyper(std::size_t g) const {
  const Hyper& h = groups_[g].options;
  const std::string where = fmt::format(" in param group {}", g);
  for (const auto& [key, value] : h)
    CT_CHECK(defaults_.count(key) == 1, "{}: expected hyper-parameters among ({}), got '{}'{}",
             name_, keys_of(defaults_), key, where);
  for (const auto& [key, value] : defaults_)
    CT_CHECK(h.count(key) == 1, "{}: expected a hyper-parameter '{}'{}, got none", name_, key,
             where);
  check_hyper(h, where);
  return h;
}

StateDict Optimizer::state_dict() const {
  StateDict dict;
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    const std::string prefix = fmt::format("param_groups.{}.", g);
    dict.emplace_back(prefix + "num_params",
                      detail::scalar(static_cast<double>(groups_[g].params.size())));
    for (const auto& [key, value] : groups_[g].options)
      dict.emplace_back(prefix + key, detail::scalar(value));
  }
  std::size_t i = 0;
  for (const auto& group : groups_) {
    const StateLayout layout = state_layout(group.options);
    for (const auto& p : group.params) {
      const ParamState& st = state(p);
      const std::string prefix = fmt::format("state.{}.", i++);
      for (const auto& key : layout.scalars) {
        const auto it = st.scalars.find(key);
        if (it != st.scalars.end()) dict.emplace_back(prefix + key, detail::scalar(it->second));
      }
      for (const auto& key : layout.buffers) {
        const auto it = st.buffers.find(key);
        if (it != st.buffers.end()) dict.emplace_back(prefix + key, it->second.detach().clone());
      }
    }
  }
  return dict;
}

void Optimizer::load_state_dict(const StateDict& dict) {
  const std::string op = name_ + ".load_state_dict";
  const auto entries = detail::index_entries(op, dict);

  // Group count first, so that a dict of another model fails with the plainest message.
  std::size_t dict_groups = 0;
  for (const auto& [name, t] : entries)
    if (name.starts_with("param_groups.")) {
      const auto k = detail::split_indexed(std::string_view(name).substr(13));
      CT_CHECK(k.has_value(), "{}: expected entries 'param_groups.<g>.<name>', got '{}'", op, name);
      dict_groups = std::max(dict_groups, k->index + 1);
    }
  CT_CHECK(dict_groups == groups_.size(),
           "{}: expected a state dict of {} param group(s), got {} (entries "
           "'param_groups.<g>.*')",
           op, groups_.size(), dict_groups);

  // Global parameter index -> (group, parameter).
  std::vector<std::pair<std::size_t, const Tensor*>> params;
  for (std::size_t g = 0; g < groups_.size(); ++g)
    for (const auto& p : groups_[g].params) params.emplace_back(g, &p);

  std::vector<Hyper> hyper(groups_.size());
  std::vector<bool> counted(groups_.size(), false);
  std::vector<std::map<std::string, Tensor>> loaded(params.size());
  for (const auto& [name, t] : entries) {
    if (name.starts_with("param_groups.")) {
      const auto k = detail::split_indexed(std::string_view(name).substr(13));
      const double v = detail::scalar_value(op, name, t);
      if (k->key == "num_params") {
        CT_CHECK(v == static_cast<double>(groups_[k->index].params.size()),
                 "{}: expected {} parameter(s) in param group {}, got {} (entry '{}')", op,
                 groups_[k->index].params.size(), k->index, v, name);
        counted[k->index] = true;
      } else {
        CT_CHECK(defaults_.count(k->key) == 1,
                 "{}: expected hyper-parameters among ({}), got entry '{}'", op, keys_of(defaults_),
                 name);
        hyper[k->index][k->key] = v;
      }
    } else if (name.starts_with("state.")) {
      const auto k = detail::split_indexed(std::string_view(name).substr(6));
      CT_CHECK(k.has_value(), "{}: expected entries 'state.<i>.<name>', got '{}'", op, name);
      CT_CHECK(k->index < params.size(),
               "{}: expected state of parameters 0..{}, got entry '{}' ({} has {} parameters)", op,
               params.size() - 1, name, name_, params.size());
      loaded[k->index][k->key] = t;
    } else {
      CT_FAIL("{}: expected entries 'param_groups.*' and 'state.*', got '{}'", op, name);
    }
  }
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    CT_CHECK(counted[g], "{}: expected an entry 'param_groups.{}.num_params', got none", op, g);
    for (const auto& [key, value] : defaults_)
      CT_CHECK(hyper[g].count(key) == 1, "{}: expected an entry 'param_groups.{}.{}', got none", op,
               g, key);
    check_hyper(hyper[g], fmt::format(" in entries 'param_groups.{}.*'", g));
  }

  std::unordered_map<const TensorImpl*, ParamState> state;
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (loaded[i].empty()) continue;
    const auto [g, p] = params[i];
    const StateLayout layout = state_layout(hyper[g]);
    std::set<std::string> expected(layout.buffers.begin(), layout.buffers.end());
    expected.insert(layout.scalars.begin(), layout.scalars.end());
    std::set<std::string> got;
    for (const auto& kv : loaded[i]) got.insert(kv.first);
    CT_CHECK(got == expected,
             "{}: expected state entries ({}) together for parameter {} (param group {}), got "
             "({})",
             op, fmt::join(expected, ", "), i, g, fmt::join(got, ", "));
    ParamState& st = state[p->impl()];
    for (const auto& key : layout.scalars) {
      const std::string name = fmt::format("state.{}.{}", i, key);
      const double v = detail::scalar_value(op, name, loaded[i].at(key));
      CT_CHECK(std::isfinite(v) && v >= 0.0,
               "{}: expected a finite count >= 0 for entry '{}', got {}", op, name, v);
      st.scalars[key] = v;
    }
    for (const auto& key : layout.buffers) {
      const Tensor& t = loaded[i].at(key);
      CT_CHECK(t.shape() == p->shape() && t.dtype() == p->dtype(),
               "{}: expected {} {} (the parameter's) for entry 'state.{}.{}', got {} {}", op,
               dtype_name(p->dtype()), to_string(p->shape()), i, key, dtype_name(t.dtype()),
               to_string(t.shape()));
      st.buffers[key] = t.device() == p->device() ? t.detach().clone() : t.detach().to(p->device());
    }
  }

  for (std::size_t g = 0; g < groups_.size(); ++g) groups_[g].options = std::move(hyper[g]);
  state_ = std::move(state);
}

}  // namespace convtape::optim
