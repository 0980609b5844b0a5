// Helpers shared by the optimizers and schedulers: 0-d float64 state-dict scalars, reading a
// StateDict into a checked name -> tensor map, and splitting "<prefix>.<index>.<key>" names.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "core/state_dict.h"
#include "core/tensor.h"

namespace convtape::optim::detail {

// A 0-d float64 CPU tensor holding v.
Tensor scalar(double v);

// The entries of dict by name; throws on an undefined tensor or a repeated name.
std::map<std::string, Tensor> index_entries(std::string_view op, const StateDict& dict);

// The value of a 0-d float64 entry; throws naming the entry otherwise.
double scalar_value(std::string_view op, const std::string& name, const Tensor& t);

// Splits "<index>.<key>" (the part after a prefix such as "state."): nullopt unless index is a
// decimal number and key is non-empty.
struct IndexedKey {
  std::size_t index = 0;
  std::string key;
};
std::optional<IndexedKey> split_indexed(std::string_view rest);

}  // namespace convtape::optim::detail
