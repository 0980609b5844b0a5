// Tensor printing in PyTorch's style: nested brackets, one number format for the whole tensor
// (integers as "1.", fixed with 4 decimals, or scientific when magnitudes span too much), long
// dims summarised with "...", then shape, dtype, device and autograd state.
#include <cmath>
#include <ostream>

#include <fmt/format.h>

#include "core/autograd.h"
#include "ops/factory.h"

namespace convtape {

namespace {

constexpr std::int64_t kSummarizeAbove = 1000;
constexpr std::int64_t kEdgeItems = 3;

enum class Style { Integer, Fixed, Scientific, Int64 };

struct Printer {
  const Tensor& t;  // contiguous, CPU, float64 or int64
  Style style;
  bool summarize;
  std::size_t width = 1;

  std::string number(std::int64_t flat) const {
    if (style == Style::Int64)
      return fmt::format("{}", static_cast<const std::int64_t*>(t.raw_data())[flat]);
    const double v = static_cast<const double*>(t.raw_data())[flat];
    if (!std::isfinite(v)) return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
    switch (style) {
      case Style::Integer:
        return fmt::format("{:.0f}.", v);
      case Style::Fixed:
        return fmt::format("{:.4f}", v);
      default:
        return fmt::format("{:.4e}", v);
    }
  }

  void write(std::string& out, std::int64_t d, std::int64_t base, std::size_t indent) const {
    const Shape& s = t.shape();
    if (d == t.dim()) {
      const std::string v = number(base);
      out.append(width - std::min(width, v.size()), ' ');
      out += v;
      return;
    }
    const std::int64_t n = s[static_cast<std::size_t>(d)];
    const std::int64_t stride = t.strides()[static_cast<std::size_t>(d)];
    out += '[';
    const bool cut = summarize && n > 2 * kEdgeItems;
    for (std::int64_t i = 0; i < n; ++i) {
      if (cut && i == kEdgeItems) {
        out += d + 1 == t.dim() ? "..., " : fmt::format("...,\n{:{}}", "", indent + 1);
        i = n - kEdgeItems;
      }
      write(out, d + 1, base + i * stride, indent + 1);
      if (i + 1 < n) {
        if (d + 1 == t.dim()) {
          out += ", ";
        } else {
          out += ',';
          out.append(static_cast<std::size_t>(t.dim() - d - 1), '\n');
          out.append(indent + 1, ' ');
        }
      }
    }
    out += ']';
  }
};

}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  NoGradGuard guard;
  const Tensor h = dtype() == kInt64 ? cpu().contiguous() : cpu().to(kFloat64).contiguous();
  Style style = Style::Int64;
  if (dtype() != kInt64) {
    const double* p = h.data_ptr<double>();
    bool integral = true;
    double lo = INFINITY, hi = 0.0;
    for (std::int64_t i = 0; i < h.numel(); ++i) {
      const double a = std::abs(p[i]);
      if (!std::isfinite(a)) continue;
      integral = integral && a == std::floor(a);
      if (a != 0.0) lo = std::min(lo, a);
      hi = std::max(hi, a);
    }
    if (integral && hi < 1e8)
      style = Style::Integer;
    else if (hi >= 1e8 || (lo < 1e-4) || (lo < INFINITY && hi / lo > 1000.0))
      style = Style::Scientific;
    else
      style = Style::Fixed;
  }
  Printer pr{h, style, h.numel() > kSummarizeAbove};
  for (std::int64_t i = 0; i < h.numel(); ++i) pr.width = std::max(pr.width, pr.number(i).size());
  std::string out = "tensor(";
  pr.write(out, 0, 0, 7);
  out += fmt::format(", shape={}, dtype={}", to_string(shape()), dtype_name(dtype()));
  if (is_cuda()) out += fmt::format(", device={}", device().str());
  if (grad_fn())
    out += fmt::format(", grad_fn=<{}>", grad_fn_name());
  else if (requires_grad())
    out += ", requires_grad=true";
  return out + ")";
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  return os << t.str();
}

}  // namespace convtape
