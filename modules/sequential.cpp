// Sequential: registration by position or name, indexing, and the chained forward. See
// sequential.h.
#include "modules/sequential.h"

#include <algorithm>

namespace convtape::nn {

Sequential::Sequential(std::initializer_list<std::shared_ptr<Module>> modules) {
  for (const auto& m : modules) push_back(m);
}

Sequential::Sequential(const NamedModules& named) {
  for (const auto& [name, m] : named) push_back(name, m);
}

std::shared_ptr<Module> Sequential::push_back(std::shared_ptr<Module> module) {
  return push_back(std::to_string(modules_.size()), std::move(module));
}

std::shared_ptr<Module> Sequential::push_back(std::string name, std::shared_ptr<Module> module) {
  register_module(name, module);
  modules_.push_back(module);
  names_.push_back(std::move(name));
  return module;
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (const auto& m : modules_) y = (*m)(y);
  return y;
}

Tensor Sequential::forward_inputs(const std::vector<Tensor>& inputs) {
  if (inputs.size() == 1) return forward(inputs[0]);
  CT_CHECK(!modules_.empty(), "Sequential: expected one input for an empty Sequential, got {}",
           inputs.size());
  Tensor y = (*modules_.front())(inputs);
  for (std::size_t i = 1; i < modules_.size(); ++i) y = (*modules_[i])(y);
  return y;
}

const std::shared_ptr<Module>& Sequential::operator[](std::size_t index) const {
  CT_CHECK(index < modules_.size(), "Sequential: expected index < {}, got {}", modules_.size(),
           index);
  return modules_[index];
}

const std::shared_ptr<Module>& Sequential::operator[](const std::string& name) const {
  const auto it = std::find(names_.begin(), names_.end(), name);
  CT_CHECK(it != names_.end(), "Sequential: expected the name of a child, got '{}'", name);
  return modules_[static_cast<std::size_t>(it - names_.begin())];
}

}  // namespace convtape::nn
