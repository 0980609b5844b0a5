// StateDict: an ordered list of named tensors, the unit in which a model's parameters and
// buffers and an optimizer's state are saved, loaded and compared. Names are dotted paths
// ("features.0.weight", "state.3.momentum_buffer"); order is the registration order, so that two
// dicts of the same model line up entry by entry. Scalars (an optimizer's step count, a
// scheduler's epoch) are 0-d float64 tensors.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace convtape {

using StateDict = std::vector<std::pair<std::string, Tensor>>;

}  // namespace convtape
