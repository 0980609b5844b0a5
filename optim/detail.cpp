// State-dict helpers shared by optim/: scalars, entry maps, "<index>.<key>" names.
#include "optim/detail.h"

#include <charconv>

#include "ops/factory.h"

namespace convtape::optim::detail {

Tensor scalar(double v) {
  return full({}, v, kFloat64);
}

std::map<std::string, Tensor> index_entries(std::string_view op, const StateDict& dict) {
  std::map<std::string, Tensor> entries;
  for (const auto& [name, t] : dict) {
    CT_CHECK(t.defined(), "{}: expected a defined tensor for entry '{}', got an undefined one", op,
             name);
    CT_CHECK(entries.emplace(name, t).second, "{}: expected unique entry names, got '{}' twice", op,
             name);
  }
  return entries;
}

double scalar_value(std::string_view op, const std::string& name, const Tensor& t) {
  CT_CHECK(t.dim() == 0 && t.dtype() == kFloat64,
           "{}: expected a 0-d float64 tensor for entry '{}', got {} {}", op, name,
           dtype_name(t.dtype()), to_string(t.shape()));
  return t.item();
}

std::optional<IndexedKey> split_indexed(std::string_view rest) {
  const std::size_t dot = rest.find('.');
  if (dot == 0 || dot == std::string_view::npos || dot + 1 == rest.size()) return std::nullopt;
  IndexedKey out;
  const char* first = rest.data();
  const char* last = rest.data() + dot;
  const auto [ptr, ec] = std::from_chars(first, last, out.index);
  if (ec != std::errc() || ptr != last) return std::nullopt;
  out.key = std::string(rest.substr(dot + 1));
  return out;
}

}  // namespace convtape::optim::detail
