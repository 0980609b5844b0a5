// Containers that hold modules without chaining them, PyTorch's nn.ModuleList and nn.ModuleDict:
// their modules are registered children, so they appear in str(), named_parameters(),
// state_dict() and train() / eval() / to() as Sequential's do ("layers.0.weight",
// "heads.cls.bias"), but neither container has a forward: calling one is an Error, as in PyTorch.
// The owner's forward calls the modules it holds, in whatever order it likes.
//   ModuleList  children named "0", "1", ... by position; push_back / append, extend, insert at
//               any position, set (PyTorch's __setitem__), pop / erase (__delitem__), indexing
//               (negative indices count from the end, as Python's), at<M>(i), iteration. After
//               an insert or an erase the children are renamed "0", "1", ... in the new order, as
//               PyTorch renames them, so a module's parameter and state-dict names follow its
//               position ("layers.3.weight" becomes "layers.4.weight" after an insert before it).
//   ModuleDict  children named by their keys, in insertion order; insert (an existing key is
//               replaced in place, keeping its position, as PyTorch's __setitem__), update,
//               pop / erase, clear, contains, operator[], at<M>(key), keys, values, items,
//               iteration over (name, module) pairs
// insert, set, pop and erase check everything before they modify anything: a failed call leaves
// the container as it was (extend and update stop at the first bad module, keeping those before).
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "modules/module.h"

namespace convtape::nn {

class ModuleList : public Module {
 public:
  using const_iterator = std::vector<std::shared_ptr<Module>>::const_iterator;

  ModuleList() = default;
  explicit ModuleList(std::initializer_list<std::shared_ptr<Module>> modules);
  explicit ModuleList(const std::vector<std::shared_ptr<Module>>& modules);

  // Appends a module named by its position ("3"); returns it.
  std::shared_ptr<Module> push_back(std::shared_ptr<Module> module);
  std::shared_ptr<Module> append(std::shared_ptr<Module> module) {
    return push_back(std::move(module));
  }
  void extend(const std::vector<std::shared_ptr<Module>>& modules);
  void extend(std::initializer_list<std::shared_ptr<Module>> modules) {
    extend(std::vector<std::shared_ptr<Module>>(modules));
  }
  void extend(const ModuleList& other);
  // Inserts module before position index, index in [-size(), size()] (negative: counted from the
  // end, as Python's list.insert: -1 inserts before the last module); the modules from index on
  // move up one position and are renamed accordingly.
  void insert(std::int64_t index, std::shared_ptr<Module> module);
  // Puts module in the place of the one at index, in [-size(), size()) (PyTorch's
  // list[index] = module); the name stays.
  void set(std::int64_t index, std::shared_ptr<Module> module);
  // Removes the module at index, in [-size(), size()), and returns it (PyTorch's pop(index));
  // the modules after it move down one position and are renamed accordingly.
  std::shared_ptr<Module> pop(std::int64_t index);
  // pop without the result (PyTorch's del list[index]).
  void erase(std::int64_t index);

  // PyTorch's error: a ModuleList holds modules but computes nothing.
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "ModuleList"; }

  std::size_t size() const { return modules_.size(); }
  bool empty() const { return modules_.empty(); }
  // index in [-size(), size()): negative indices count from the end.
  const std::shared_ptr<Module>& operator[](std::int64_t index) const;
  // The module at index as an M ("ModuleList: expected module 0 to be of the requested type, got
  // ReLU").
  template <class M>
  std::shared_ptr<M> at(std::int64_t index) const {
    const auto& m = (*this)[index];
    auto typed = std::dynamic_pointer_cast<M>(m);
    CT_CHECK(typed != nullptr, "ModuleList: expected module {} to be of the requested type, got {}",
             index, m->type_name());
    return typed;
  }
  const_iterator begin() const { return modules_.begin(); }
  const_iterator end() const { return modules_.end(); }

 private:
  // index made non-negative, checked against [-size(), size() + past_end) for op's message.
  std::size_t position(std::int64_t index, bool past_end, const char* op) const;
  // Makes the children "0", "1", ... hold next in order: existing names keep their place in the
  // order of children, names past the old size are appended, names past the new size removed.
  void assign(std::vector<std::shared_ptr<Module>> next);
  std::shared_ptr<Module> remove_at(std::int64_t index, const char* op);
  std::vector<std::shared_ptr<Module>> modules_;
};

class ModuleDict : public Module {
 public:
  using const_iterator = NamedModules::const_iterator;

  ModuleDict() = default;
  explicit ModuleDict(const NamedModules& modules);

  // Adds module under key (non-empty, without '.'); a key already present keeps its position
  // and gets module in place of its old one (PyTorch's dict[key] = module). Returns module.
  std::shared_ptr<Module> insert(std::string key, std::shared_ptr<Module> module);
  // insert for each pair, in order.
  void update(const NamedModules& modules);
  // Removes the module under key and returns it (PyTorch's pop(key)); the other keys keep their
  // order.
  std::shared_ptr<Module> pop(const std::string& key);
  // pop without the result (PyTorch's del dict[key]).
  void erase(const std::string& key);
  // Removes every module.
  void clear();

  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "ModuleDict"; }

  std::size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  bool contains(const std::string& key) const;
  const std::shared_ptr<Module>& operator[](const std::string& key) const;
  template <class M>
  std::shared_ptr<M> at(const std::string& key) const {
    const auto& m = (*this)[key];
    auto typed = std::dynamic_pointer_cast<M>(m);
    CT_CHECK(typed != nullptr,
             "ModuleDict: expected module '{}' to be of the requested type, got {}", key,
             m->type_name());
    return typed;
  }
  std::vector<std::string> keys() const;  // insertion order
  std::vector<std::shared_ptr<Module>> values() const;
  const NamedModules& items() const { return items_; }
  const_iterator begin() const { return items_.begin(); }
  const_iterator end() const { return items_.end(); }

 private:
  // The entry of key; op's Error lists the keys when there is none.
  NamedModules::const_iterator find(const std::string& key, const char* op) const;
  std::shared_ptr<Module> remove(const std::string& key, const char* op);
  NamedModules items_;
};

}  // namespace convtape::nn
