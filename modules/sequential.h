// Sequential: a chain of modules, y = m_k(...m_1(m_0(x))). Children are named "0", "1", ... in
// the order they are added, or by the name given to push_back (PuzzleLib's name= argument), so
// that their parameters read "0.weight" or "depthwise.weight". An empty Sequential is the
// identity. Called with several inputs, Sequential passes them all to its first module (which takes
// them through forward_inputs) and chains the rest on its output.
// Built from a braced list, Sequential({conv, relu}), from modules of any types,
// std::make_shared<Sequential>(conv, relu, pool), or by push_back.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "modules/module.h"

namespace convtape::nn {

class Sequential : public Module {
 public:
  Sequential() = default;
  Sequential(std::initializer_list<std::shared_ptr<Module>> modules);
  template <class... M>
  requires(sizeof...(M) > 0 && (std::is_base_of_v<Module, M> &&
                                ...)) explicit Sequential(std::shared_ptr<M>... modules) {
    (push_back(std::move(modules)), ...);
  }
  explicit Sequential(const NamedModules& named);

  // Appends a module named by its position; returns it.
  std::shared_ptr<Module> push_back(std::shared_ptr<Module> module);
  std::shared_ptr<Module> push_back(std::string name, std::shared_ptr<Module> module);

  Tensor forward(const Tensor& x) override;
  Tensor forward_inputs(const std::vector<Tensor>& inputs) override;
  std::string type_name() const override { return "Sequential"; }

  std::size_t size() const { return modules_.size(); }
  bool empty() const { return modules_.empty(); }
  const std::shared_ptr<Module>& operator[](std::size_t index) const;
  const std::shared_ptr<Module>& operator[](const std::string& name) const;
  // The child at index as an M ("Sequential: expected child 0 to be a Linear, got Conv2d").
  template <class M>
  std::shared_ptr<M> at(std::size_t index) const {
    const auto& m = (*this)[index];
    auto typed = std::dynamic_pointer_cast<M>(m);
    CT_CHECK(typed != nullptr, "Sequential: expected child {} to be of the requested type, got {}",
             index, m->type_name());
    return typed;
  }
  const std::vector<std::shared_ptr<Module>>& sequence() const { return modules_; }

 private:
  std::vector<std::shared_ptr<Module>> modules_;
  std::vector<std::string> names_;
};

}  // namespace convtape::nn
