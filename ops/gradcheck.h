// gradcheck: compares the tape's gradients of fn with float64 central differences.
// Inputs that require grad are checked; they must be float64. Small problems (input elements x
// output elements <= max_jacobian_entries) compare the full Jacobian; larger ones compare u^T J v
// along random directions, one input at a time. Criterion per entry (PyTorch's):
// |analytic - numeric| <= atol + rtol * |numeric|. A check in which every analytic and numeric
// gradient is zero fails: it would prove nothing.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace convtape {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-5;
  double rtol = 1e-3;
  std::int64_t max_jacobian_entries = 20000;
  int random_directions = 6;
  std::uint64_t seed = 0;
};

struct GradcheckResult {
  bool ok = false;
  std::string
      report;  // what was checked; on failure the input, the worst element, analytic and numeric
  explicit operator bool() const { return ok; }
};

using GradcheckFn = std::function<Tensor(const std::vector<Tensor>&)>;

GradcheckResult gradcheck(const GradcheckFn& fn, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});

}  // namespace convtape
