// ModuleList and ModuleDict: registration under positional names or keys, lookup, insertion,
// replacement and removal (with PyTorch's renaming of a list's children), and the forward that
// refuses to run. See container.h.
#include "modules/container.h"

#include <algorithm>

namespace convtape::nn {

namespace {

// A module a container can hold: not nullptr, not the container itself (a cycle).
void check_module(const Module& self, const std::shared_ptr<Module>& module, const char* op) {
  CT_CHECK(module != nullptr, "{}: expected a module, got nullptr", op);
  CT_CHECK(module.get() != &self, "{}: expected another module, got the {} itself", op,
           self.type_name());
}

}  // namespace

// ---- ModuleList

ModuleList::ModuleList(std::initializer_list<std::shared_ptr<Module>> modules) {
  for (const auto& m : modules) push_back(m);
}

ModuleList::ModuleList(const std::vector<std::shared_ptr<Module>>& modules) {
  extend(modules);
}

std::shared_ptr<Module> ModuleList::push_back(std::shared_ptr<Module> module) {
  register_module(std::to_string(modules_.size()), module);
  modules_.push_back(module);
  return module;
}

void ModuleList::extend(const std::vector<std::shared_ptr<Module>>& modules) {
  for (const auto& m : modules) push_back(m);
}

void ModuleList::extend(const ModuleList& other) {
  const std::vector<std::shared_ptr<Module>> copy = other.modules_;  // other may be *this
  extend(copy);
}

std::size_t ModuleList::position(std::int64_t index, bool past_end, const char* op) const {
  const auto n = static_cast<std::int64_t>(modules_.size());
  CT_CHECK(index >= -n && (past_end ? index <= n : index < n),
           "{}: expected index in [{}, {}{}, got {}", op, -n, n, past_end ? "]" : ")", index);
  return static_cast<std::size_t>(index < 0 ? index + n : index);
}

void ModuleList::assign(std::vector<std::shared_ptr<Module>> next) {
  const std::size_t n = modules_.size();
  const std::size_t m = next.size();
  // Registering a new name is the one step that can fail (a name taken by a parameter), so it
  // comes first; the replacements and removals below cannot fail.
  for (std::size_t i = n; i < m; ++i) register_module(std::to_string(i), next[i]);
  for (std::size_t i = 0; i < std::min(n, m); ++i) {
    if (modules_[i] != next[i]) replace_child(std::to_string(i), next[i]);
  }
  for (std::size_t i = m; i < n; ++i) remove_child(std::to_string(i));
  modules_ = std::move(next);
}

void ModuleList::insert(std::int64_t index, std::shared_ptr<Module> module) {
  const std::size_t at = position(index, /*past_end=*/true, "ModuleList::insert");
  check_module(*this, module, "ModuleList::insert");
  std::vector<std::shared_ptr<Module>> next = modules_;
  next.insert(next.begin() + static_cast<std::ptrdiff_t>(at), std::move(module));
  assign(std::move(next));
}

void ModuleList::set(std::int64_t index, std::shared_ptr<Module> module) {
  const std::size_t at = position(index, /*past_end=*/false, "ModuleList::set");
  check_module(*this, module, "ModuleList::set");
  std::vector<std::shared_ptr<Module>> next = modules_;
  next[at] = std::move(module);
  assign(std::move(next));
}

std::shared_ptr<Module> ModuleList::remove_at(std::int64_t index, const char* op) {
  const std::size_t at = position(index, /*past_end=*/false, op);
  std::vector<std::shared_ptr<Module>> next = modules_;
  std::shared_ptr<Module> removed = next[at];
  next.erase(next.begin() + static_cast<std::ptrdiff_t>(at));
  assign(std::move(next));
  return removed;
}

std::shared_ptr<Module> ModuleList::pop(std::int64_t index) {
  return remove_at(index, "ModuleList::pop");
}

void ModuleList::erase(std::int64_t index) {
  remove_at(index, "ModuleList::erase");
}

Tensor ModuleList::forward(const Tensor&) {
  CT_FAIL(
      "ModuleList: expected a module with a forward, got a call of a ModuleList, which holds "
      "modules but computes nothing (call its modules instead)");
}

const std::shared_ptr<Module>& ModuleList::operator[](std::int64_t index) const {
  return modules_[position(index, /*past_end=*/false, "ModuleList")];
}

// ---- ModuleDict

ModuleDict::ModuleDict(const NamedModules& modules) {
  update(modules);
}

std::shared_ptr<Module> ModuleDict::insert(std::string key, std::shared_ptr<Module> module) {
  CT_CHECK(module != nullptr, "ModuleDict::insert: expected a module for '{}', got nullptr", key);
  const auto it =
      std::find_if(items_.begin(), items_.end(), [&](const auto& e) { return e.first == key; });
  if (it != items_.end()) {
    replace_child(key, module);
    it->second = module;
    return module;
  }
  register_module(key, module);
  items_.emplace_back(std::move(key), module);
  return module;
}

void ModuleDict::update(const NamedModules& modules) {
  for (const auto& [key, m] : modules) insert(key, m);
}

std::shared_ptr<Module> ModuleDict::remove(const std::string& key, const char* op) {
  const auto it = find(key, op);
  std::shared_ptr<Module> removed = it->second;
  remove_child(key);
  items_.erase(it);
  return removed;
}

std::shared_ptr<Module> ModuleDict::pop(const std::string& key) {
  return remove(key, "ModuleDict::pop");
}

void ModuleDict::erase(const std::string& key) {
  remove(key, "ModuleDict::erase");
}

void ModuleDict::clear() {
  for (const auto& [key, m] : items_) remove_child(key);
  items_.clear();
}

Tensor ModuleDict::forward(const Tensor&) {
  CT_FAIL(
      "ModuleDict: expected a module with a forward, got a call of a ModuleDict, which holds "
      "modules but computes nothing (call its modules instead)");
}

bool ModuleDict::contains(const std::string& key) const {
  return std::any_of(items_.begin(), items_.end(), [&](const auto& e) { return e.first == key; });
}

NamedModules::const_iterator ModuleDict::find(const std::string& key, const char* op) const {
  const auto it =
      std::find_if(items_.begin(), items_.end(), [&](const auto& e) { return e.first == key; });
  CT_CHECK(
      it != items_.end(), "{}: expected one of the keys [{}], got '{}'", op,
      [&] {
        std::string out;
        for (const auto& [k, m] : items_) out += (out.empty() ? "'" : ", '") + k + "'";
        return out;
      }(),
      key);
  return it;
}

const std::shared_ptr<Module>& ModuleDict::operator[](const std::string& key) const {
  return find(key, "ModuleDict")->second;
}

std::vector<std::string> ModuleDict::keys() const {
  std::vector<std::string> out;
  for (const auto& [k, m] : items_) out.push_back(k);
  return out;
}

std::vector<std::shared_ptr<Module>> ModuleDict::values() const {
  std::vector<std::shared_ptr<Module>> out;
  for (const auto& [k, m] : items_) out.push_back(m);
  return out;
}

}  // namespace convtape::nn
