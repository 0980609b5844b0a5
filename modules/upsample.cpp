// Upsample: forward is interpolate(x, options). See upsample.h.
#include "modules/upsample.h"

#include <vector>

#include <fmt/ranges.h>

namespace convtape::nn {

namespace {

// A double as Python's repr prints a float: "2.0", "1.5", "1e+300".
std::string python_float(double v) {
  std::string s = fmt::format("{}", v);
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

// One value as itself, several as a Python tuple: "4", "(4, 6)".
template <class T, class F>
std::string python_values(const std::vector<T>& v, F format) {
  std::vector<std::string> parts;
  for (const T& x : v) parts.push_back(format(x));
  if (parts.size() == 1) return parts[0];
  return fmt::format("({})", fmt::join(parts, ", "));
}

}  // namespace

Upsample::Upsample(const UpsampleOptions& options) : options_(options) {
  const bool has_size = !options.size().empty(), has_scale = !options.scale_factor().empty();
  CT_CHECK(has_size != has_scale, "Upsample: expected either size or scale_factor, got {}",
           has_size ? "both" : "neither");
  const InterpolateMode m = options.mode();
  CT_CHECK(!options.align_corners().has_value() ||
               (m != InterpolateMode::Nearest && m != InterpolateMode::NearestExact),
           "Upsample: expected no align_corners with mode '{}' (it applies to the linear modes "
           "only)",
           interpolate_mode_name(m));
}

Tensor Upsample::forward(const Tensor& x) {
  return interpolate(x, options_);
}

std::string Upsample::extra_repr() const {
  std::string s = options_.scale_factor().empty()
                      ? "size=" + python_values(options_.size(),
                                                [](std::int64_t v) { return std::to_string(v); })
                      : "scale_factor=" + python_values(options_.scale_factor(), python_float);
  return s + fmt::format(", mode='{}'", interpolate_mode_name(options_.mode()));
}

}  // namespace convtape::nn
