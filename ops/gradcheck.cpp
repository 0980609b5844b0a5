// gradcheck: analytic gradients from the tape (vector-Jacobian products with one-hot or random
// output vectors) against float64 central differences of fn evaluated without the tape.
#include "ops/gradcheck.h"

#include <cmath>
#include <numeric>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/autograd.h"
#include "core/random.h"
#include "cuda/cuda.h"
#include "ops/factory.h"
#include "ops/shape.h"

namespace convtape {

namespace {

std::string unravel(std::int64_t flat, const Shape& shape) {
  Shape idx(shape.size());
  for (std::size_t d = shape.size(); d-- > 0;) {
    idx[d] = flat % std::max<std::int64_t>(shape[d], 1);
    flat /= std::max<std::int64_t>(shape[d], 1);
  }
  return to_string(idx);
}

// Writes n float64 values at element `first` of a dense tensor on any device, as a raw store that
// leaves the storage's version alone: the tape recorded these inputs, and the perturbations are
// undone before the next backward pass.
void store(const Tensor& x, std::int64_t first, const double* v, std::int64_t n) {
  double* dst = x.data_ptr<double>() + first;
  if (x.is_cpu())
    std::copy(v, v + n, dst);
  else
    cuda::copy("gradcheck", dst, x.device(), v, Device::cpu(),
               static_cast<std::size_t>(n) * sizeof(double));
}

std::vector<double> values(const Tensor& t, std::int64_t n) {
  if (!t.defined()) return std::vector<double>(static_cast<std::size_t>(n), 0.0);
  return t.to_vector<double>();
}

struct Worst {
  double excess = -INFINITY;  // |a - n| - tolerance; > 0 is a failure
  double diff = 0.0;
  std::string where;
  double analytic = 0.0, numeric = 0.0, tolerance = 0.0;
  bool any_nonzero = false;
  std::vector<bool> nonzero;  // per checked input
  double max_diff = 0.0;      // largest |analytic - numeric| seen, for the success report

  void see(std::size_t input, double a, double n, double tol,
           const std::function<std::string()>& describe) {
    const bool nz = a != 0.0 || n != 0.0;
    any_nonzero = any_nonzero || nz;
    if (nz) nonzero[input] = true;
    const double d = std::abs(a - n);
    max_diff = std::max(max_diff, d);
    const double ex = std::isnan(d) ? INFINITY : d - tol;
    if (ex > excess) {
      excess = ex;
      diff = d;
      where = describe();
      analytic = a;
      numeric = n;
      tolerance = tol;
    }
  }
};

}  // namespace

GradcheckResult gradcheck(const GradcheckFn& fn, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& o) {
  std::vector<Tensor> xs;
  std::vector<std::size_t> checked;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    if (t.defined() && t.requires_grad()) {
      CT_CHECK(t.dtype() == kFloat64, "gradcheck: expected float64 inputs, got {} for input {}",
               dtype_name(t.dtype()), i);
      xs.push_back(t.detach().clone().requires_grad_(true));  // dense, on the input's device
      checked.push_back(i);
    } else {
      xs.push_back(t);
    }
  }
  CT_CHECK(!checked.empty(),
           "gradcheck: expected at least one input that requires grad, got none of {}",
           inputs.size());

  const Tensor y = fn(xs);
  CT_CHECK(y.defined() && y.is_floating_point(),
           "gradcheck: expected a floating-point output from the function");
  CT_CHECK(y.requires_grad(),
           "gradcheck: expected an output that depends on the inputs through the tape, got {} "
           "that does not require grad",
           to_string(y.shape()));
  const std::int64_t n_out = y.numel();
  std::int64_t n_in = 0;
  for (auto i : checked) n_in += xs[i].numel();

  auto evaluate = [&]() {
    NoGradGuard guard;
    return fn(xs).to_vector<double>();
  };
  auto grads_for = [&](const Tensor& u) {
    for (auto i : checked) xs[i].zero_grad();
    y.backward(u, /*retain_graph=*/true);
    std::vector<std::vector<double>> g;
    for (auto i : checked) g.push_back(values(xs[i].grad(), xs[i].numel()));
    return g;
  };

  Worst worst;
  worst.nonzero.assign(checked.size(), false);
  const bool full = n_out * n_in <= o.max_jacobian_entries;
  if (full) {
    // Analytic Jacobian, one row per output element.
    std::vector<std::vector<std::vector<double>>> rows;  // [out][input k][element]
    for (std::int64_t r = 0; r < n_out; ++r) {
      std::vector<double> onehot(static_cast<std::size_t>(n_out), 0.0);
      onehot[static_cast<std::size_t>(r)] = 1.0;
      rows.push_back(grads_for(tensor(onehot, y.shape(), y.options())));
    }
    // Numeric Jacobian, one column per input element.
    for (std::size_t k = 0; k < checked.size(); ++k) {
      Tensor& x = xs[checked[k]];
      const std::vector<double> start = x.to_vector<double>();
      for (std::int64_t j = 0; j < x.numel(); ++j) {
        const double orig = start[static_cast<std::size_t>(j)];
        const double up = orig + o.eps, down = orig - o.eps;
        store(x, j, &up, 1);
        const auto plus = evaluate();
        store(x, j, &down, 1);
        const auto minus = evaluate();
        store(x, j, &orig, 1);
        for (std::int64_t r = 0; r < n_out; ++r) {
          const double num =
              (plus[static_cast<std::size_t>(r)] - minus[static_cast<std::size_t>(r)]) /
              (2 * o.eps);
          const double ana = rows[static_cast<std::size_t>(r)][k][static_cast<std::size_t>(j)];
          worst.see(k, ana, num, o.atol + o.rtol * std::abs(num), [&] {
            return fmt::format("input {} (shape {}) element {}, output element {}", checked[k],
                               to_string(x.shape()), unravel(j, x.shape()), unravel(r, y.shape()));
          });
        }
      }
    }
  } else {
    Generator gen(o.seed);
    for (std::size_t k = 0; k < checked.size(); ++k) {
      Tensor& x = xs[checked[k]];
      const std::vector<double> orig = x.to_vector<double>();
      std::vector<double> p(orig.size());
      for (int d = 0; d < o.random_directions; ++d) {
        const Tensor u = randn(y.shape(), y.options(), &gen);
        const std::vector<double> v = randn(x.shape(), kFloat64, &gen).to_vector<double>();
        const std::vector<double> uv = u.to_vector<double>();
        const auto g = grads_for(u)[k];
        const double ana = std::inner_product(g.begin(), g.end(), v.begin(), 0.0);
        const auto n = static_cast<std::int64_t>(p.size());
        for (std::size_t j = 0; j < v.size(); ++j) p[j] = orig[j] + o.eps * v[j];
        store(x, 0, p.data(), n);
        const auto plus = evaluate();
        for (std::size_t j = 0; j < v.size(); ++j) p[j] = orig[j] - o.eps * v[j];
        store(x, 0, p.data(), n);
        const auto minus = evaluate();
        store(x, 0, orig.data(), n);
        double num = 0.0;
        for (std::size_t r = 0; r < uv.size(); ++r)
          num += uv[r] * (plus[r] - minus[r]) / (2 * o.eps);
        const double norm_u = std::sqrt(std::inner_product(uv.begin(), uv.end(), uv.begin(), 0.0));
        const double norm_v = std::sqrt(std::inner_product(v.begin(), v.end(), v.begin(), 0.0));
        worst.see(k, ana, num, o.atol * norm_u * norm_v + o.rtol * std::abs(num), [&] {
          return fmt::format("input {} (shape {}), random direction {}", checked[k],
                             to_string(x.shape()), d);
        });
      }
    }
  }

  GradcheckResult result;
  result.nonzero = worst.nonzero;
  const std::string mode = full
                               ? fmt::format("full Jacobian {} x {}", n_out, n_in)
                               : fmt::format("{} random directions per input", o.random_directions);
  if (!worst.any_nonzero) {
    result.report = fmt::format(
        "gradcheck: failed: every analytic and numeric gradient is zero ({}), so the check proves "
        "nothing",
        mode);
  } else if (worst.excess > 0.0) {
    result.report = fmt::format(
        "gradcheck: failed at {}: analytic {:.10g}, numeric {:.10g}, |diff| {:.3g} > "
        "tolerance {:.3g} ({})",
        worst.where, worst.analytic, worst.numeric, worst.diff, worst.tolerance, mode);
  } else {
    result.ok = true;
    result.report = fmt::format("gradcheck: ok ({}, largest |analytic - numeric| {:.3g})", mode,
                                worst.max_diff);
  }
  return result;
}

GradcheckResult gradgradcheck(const GradcheckFn& fn, const std::vector<Tensor>& inputs,
                              const GradgradcheckOptions& o) {
  std::vector<Tensor> args;
  std::vector<std::size_t> diff;  // positions of the inputs that require grad
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    if (t.defined() && t.requires_grad()) {
      CT_CHECK(t.dtype() == kFloat64, "gradgradcheck: expected float64 inputs, got {} for input {}",
               dtype_name(t.dtype()), i);
      args.push_back(t.detach().clone().requires_grad_(true));
      diff.push_back(i);
    } else {
      args.push_back(t);
    }
  }
  CT_CHECK(!diff.empty(),
           "gradgradcheck: expected at least one input that requires grad, got none of {}",
           inputs.size());
  Tensor y;
  {
    GradModeGuard on(true);
    y = fn(args);
  }
  CT_CHECK(y.defined() && y.is_floating_point() && y.requires_grad(),
           "gradgradcheck: expected a floating-point output that depends on the inputs through "
           "the tape, got {}",
           y.defined() ? to_string(y.shape()) : std::string("an undefined tensor"));
  Generator gen(o.seed ^ 0x9e3779b97f4a7c15ULL);
  const Tensor v = randn(y.shape(), y.options().requires_grad(false), &gen).requires_grad_(true);
  args.push_back(v);

  // g(x, v): the flattened gradients of <v, fn(x)>, one tensor. The forward is recorded even when
  // gradcheck evaluates g without the tape; the graph of g is kept only when the tape is on.
  const std::size_t n = inputs.size();
  const GradcheckFn g = [&fn, &diff, n](const std::vector<Tensor>& a) {
    const bool create = GradMode::is_enabled();
    GradModeGuard on(true);
    std::vector<Tensor> xs(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(n));
    const Tensor out = fn(xs);
    std::vector<Tensor> wrt;
    for (auto i : diff) wrt.push_back(xs[i]);
    auto gs = autograd::grad({out}, wrt, {a[n]}, {.create_graph = create, .allow_unused = true});
    std::vector<Tensor> flat;
    for (std::size_t k = 0; k < gs.size(); ++k)
      flat.push_back(gs[k].defined()
                         ? gs[k].reshape({-1})
                         : zeros({wrt[k].numel()}, wrt[k].options().requires_grad(false)));
    GradModeGuard restore(create);
    return cat(flat, 0);
  };
  {
    // Every gradient must come back on the tape; one that does not was made by a backward
    // formula that does not record, and its second derivatives would read as zero.
    GradModeGuard on(true);
    std::vector<Tensor> wrt;
    for (auto i : diff) wrt.push_back(args[i]);
    const auto gs = autograd::grad({fn(std::vector<Tensor>(args.begin(), args.end() - 1))}, wrt,
                                   {v}, {.create_graph = true, .allow_unused = true});
    for (std::size_t k = 0; k < gs.size(); ++k)
      if (gs[k].defined() && !gs[k].requires_grad()) {
        GradcheckResult r;
        r.report = fmt::format(
            "gradgradcheck: failed: the gradient of input {} (shape {}) is not on the tape after "
            "a backward with create_graph (a backward formula that does not record)",
            diff[k], to_string(wrt[k].shape()));
        return r;
      }
  }
  GradcheckResult r = gradcheck(g, args, o);
  bool curvature = false;
  for (std::size_t k = 0; k + 1 < r.nonzero.size(); ++k) curvature = curvature || r.nonzero[k];
  r.report = "gradgradcheck: " + r.report.substr(std::string_view("gradcheck: ").size());
  if (r.ok && o.require_curvature && !curvature) {
    r.ok = false;
    r.report =
        "gradgradcheck: failed: every second derivative with respect to the inputs is "
        "zero (require_curvature), so the check proves nothing about them";
  }
  return r;
}

}  // namespace convtape
