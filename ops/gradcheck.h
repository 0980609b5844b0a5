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
  // Per checked input (in order): whether any analytic or numeric derivative with respect to it
  // was non-zero.
  std::vector<bool> nonzero;
  std::string
      report;  // what was checked; on failure the input, the worst element, analytic and numeric
  explicit operator bool() const { return ok; }
};

using GradcheckFn = std::function<Tensor(const std::vector<Tensor>&)>;

GradcheckResult gradcheck(const GradcheckFn& fn, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});

// gradgradcheck: checks the second derivatives of fn. With y = fn(x) and a random float64 output
// gradient v (seeded by options.seed), the vector-Jacobian product g(x, v) = (dy/dx)^T v is
// computed with autograd::grad(create_graph = true), and gradcheck then compares the tape's
// derivatives of g with respect to x and v (that is, the second derivatives of <v, fn(x)>:
// d^2/dx^2 and d^2/dv dx) with central differences of g. Vacuity guard: the check fails when every
// one of these derivatives is zero; with require_curvature it also fails when every derivative of
// g with respect to the inputs x is zero (a function linear in each input, like a single-input
// conv or a reshape, has none; a bilinear conv of input and weight has).
struct GradgradcheckOptions : GradcheckOptions {
  bool require_curvature = false;
};

GradcheckResult gradgradcheck(const GradcheckFn& fn, const std::vector<Tensor>& inputs,
                              const GradgradcheckOptions& options = {});

}  // namespace convtape
