// nn::init: fans, gains, the in-place initialisers and Scheme. See init.h for the formulas.
#include "modules/init.h"

#include <cmath>

#include "core/autograd.h"
#include "ops/factory.h"

namespace convtape::nn::init {

namespace {

const char* fan_mode_name(FanMode mode) {
  switch (mode) {
    case FanMode::FanIn:
      return "fan_in";
    case FanMode::FanOut:
      return "fan_out";
    case FanMode::FanAvg:
      return "fan_avg";
  }
  return "?";
}

// Writes values (a CPU tensor of t's shape) into t outside autograd.
Tensor fill_from(Tensor t, const Tensor& values) {
  NoGradGuard no_grad;
  t.copy_(values);
  return t;
}

void check_target(const Tensor& t, const char* op) {
  CT_CHECK(t.defined() && t.is_floating_point(),
           "{}: expected a defined floating-point tensor, got {}", op,
           t.defined() ? std::string(dtype_name(t.dtype())) : std::string("an undefined one"));
}

double kaiming_std(const Fans& fans, double a, FanMode mode, const std::string& nonlinearity,
                   const char* op) {
  const double fan = select_fan(fans, mode);
  CT_CHECK(fan > 0, "{}: expected a tensor with a positive {}, got {}", op, fan_mode_name(mode),
           fan);
  return calculate_gain(nonlinearity, a) / std::sqrt(fan);
}

double xavier_std(const Fans& fans, double gain, const char* op) {
  CT_CHECK(fans.fan_in + fans.fan_out > 0,
           "{}: expected a tensor with positive fans, got fan_in {}, fan_out {}", op, fans.fan_in,
           fans.fan_out);
  return gain * std::sqrt(2.0 / static_cast<double>(fans.fan_in + fans.fan_out));
}

}  // namespace

Fans calculate_fans(const Shape& s) {
  CT_CHECK(s.size() >= 2,
           "calculate_fans: expected a weight of at least 2 dims ([out, in, *k]), got {}",
           to_string(s));
  std::int64_t receptive = 1;
  for (std::size_t d = 2; d < s.size(); ++d) receptive *= s[d];
  return {s[1] * receptive, s[0] * receptive};
}

Fans calculate_fans(const Tensor& weight) {
  return calculate_fans(weight.shape());
}

double select_fan(const Fans& fans, FanMode mode) {
  switch (mode) {
    case FanMode::FanIn:
      return static_cast<double>(fans.fan_in);
    case FanMode::FanOut:
      return static_cast<double>(fans.fan_out);
    case FanMode::FanAvg:
      return static_cast<double>(fans.fan_in + fans.fan_out) / 2.0;
  }
  return 0.0;
}

double calculate_gain(const std::string& nonlinearity, std::optional<double> param) {
  if (nonlinearity == "linear" || nonlinearity == "conv1d" || nonlinearity == "conv2d" ||
      nonlinearity == "conv3d" || nonlinearity == "conv_transpose1d" ||
      nonlinearity == "conv_transpose2d" || nonlinearity == "conv_transpose3d" ||
      nonlinearity == "sigmoid")
    return 1.0;
  if (nonlinearity == "tanh") return 5.0 / 3.0;
  if (nonlinearity == "relu") return std::sqrt(2.0);
  if (nonlinearity == "leaky_relu") {
    const double slope = param.value_or(0.01);
    return std::sqrt(2.0 / (1.0 + slope * slope));
  }
  if (nonlinearity == "selu") return 0.75;
  CT_FAIL(
      "calculate_gain: expected linear, conv1d, conv2d, conv3d, conv_transpose1d, "
      "conv_transpose2d, conv_transpose3d, sigmoid, tanh, relu, leaky_relu or selu, got '{}'",
      nonlinearity);
}

Tensor uniform_(Tensor t, double a, double b, Generator* gen) {
  check_target(t, "uniform_");
  return fill_from(t, uniform(t.shape(), a, b, TensorOptions(t.dtype()), gen));
}

Tensor normal_(Tensor t, double mean, double std, Generator* gen) {
  check_target(t, "normal_");
  return fill_from(t, normal(t.shape(), mean, std, TensorOptions(t.dtype()), gen));
}

Tensor constant_(Tensor t, double value) {
  CT_CHECK(t.defined(), "constant_: expected a defined tensor, got an undefined one");
  NoGradGuard no_grad;
  t.fill_(value);
  return t;
}

Tensor zeros_(Tensor t) {
  return constant_(std::move(t), 0.0);
}

Tensor ones_(Tensor t) {
  return constant_(std::move(t), 1.0);
}

Tensor xavier_uniform_(Tensor t, double gain, Generator* gen) {
  check_target(t, "xavier_uniform_");
  const double bound = std::sqrt(3.0) * xavier_std(calculate_fans(t), gain, "xavier_uniform_");
  return uniform_(std::move(t), -bound, bound, gen);
}

Tensor xavier_normal_(Tensor t, double gain, Generator* gen) {
  check_target(t, "xavier_normal_");
  const double std = xavier_std(calculate_fans(t), gain, "xavier_normal_");
  return normal_(std::move(t), 0.0, std, gen);
}

Tensor kaiming_uniform_(Tensor t, double a, FanMode mode, const std::string& nonlinearity,
                        Generator* gen) {
  check_target(t, "kaiming_uniform_");
  const double bound =
      std::sqrt(3.0) * kaiming_std(calculate_fans(t), a, mode, nonlinearity, "kaiming_uniform_");
  return uniform_(std::move(t), -bound, bound, gen);
}

Tensor kaiming_normal_(Tensor t, double a, FanMode mode, const std::string& nonlinearity,
                       Generator* gen) {
  check_target(t, "kaiming_normal_");
  const double std = kaiming_std(calculate_fans(t), a, mode, nonlinearity, "kaiming_normal_");
  return normal_(std::move(t), 0.0, std, gen);
}

// ---- Scheme

Scheme Scheme::uniform(double a, double b) {
  CT_CHECK(a <= b, "Scheme::uniform: expected a <= b, got a = {}, b = {}", a, b);
  return {Kind::Uniform, a, b};
}

Scheme Scheme::normal(double mean, double std) {
  CT_CHECK(std >= 0.0, "Scheme::normal: expected std >= 0, got {}", std);
  return {Kind::Normal, mean, std};
}

Scheme Scheme::constant(double value) {
  return {Kind::Constant, value, 0.0};
}

Scheme Scheme::xavier_uniform(double gain) {
  return {Kind::XavierUniform, gain, 0.0};
}

Scheme Scheme::xavier_normal(double gain) {
  return {Kind::XavierNormal, gain, 0.0};
}

Scheme Scheme::kaiming_uniform(double a, FanMode mode, std::string nonlinearity) {
  calculate_gain(nonlinearity, a);  // rejects unknown names now rather than at apply()
  Scheme s(Kind::KaimingUniform, a, 0.0);
  s.mode_ = mode;
  s.nonlinearity_ = std::move(nonlinearity);
  return s;
}

Scheme Scheme::kaiming_normal(double a, FanMode mode, std::string nonlinearity) {
  Scheme s = kaiming_uniform(a, mode, std::move(nonlinearity));
  s.kind_ = Kind::KaimingNormal;
  return s;
}

Scheme Scheme::fan_in_uniform() {
  return {Kind::FanInUniform, 0.0, 0.0};
}

Scheme Scheme::pytorch_default() {
  return kaiming_uniform(std::sqrt(5.0));
}

Scheme Scheme::puzzlelib(const PuzzleLibInit& scheme, double wscale) {
  FanMode mode = FanMode::FanIn;
  if (scheme.factor == "out")
    mode = FanMode::FanOut;
  else if (scheme.factor == "avg")
    mode = FanMode::FanAvg;
  else
    CT_CHECK(scheme.factor == "in",
             "Scheme::puzzlelib: expected factor 'in', 'out' or 'avg', got '{}'", scheme.factor);
  const std::string& n = scheme.name;
  if (n.empty() || n == "xavier_uniform") return kaiming_uniform(0.0, mode, "linear");
  if (n == "xavier" || n == "xavier_normal") return kaiming_normal(0.0, mode, "linear");
  if (n == "he") return kaiming_normal(0.0, mode, "relu");
  if (n == "gaussian") return normal(0.0, wscale);
  if (n == "uniform") {
    CT_CHECK(wscale >= 0.0, "Scheme::puzzlelib: expected wscale >= 0 for 'uniform', got {}",
             wscale);
    return uniform(-wscale, wscale);
  }
  if (n == "none") return zeros();
  CT_FAIL(
      "Scheme::puzzlelib: expected initscheme 'xavier_uniform', 'xavier', 'xavier_normal', 'he', "
      "'gaussian', 'uniform' or 'none', got '{}'",
      n);
}

void Scheme::apply(Tensor t, const Fans& fans, Generator* gen) const {
  check_target(t, "Scheme::apply");
  switch (kind_) {
    case Kind::Uniform:
      uniform_(std::move(t), p0_, p1_, gen);
      return;
    case Kind::Normal:
      normal_(std::move(t), p0_, p1_, gen);
      return;
    case Kind::Constant:
      constant_(std::move(t), p0_);
      return;
    case Kind::XavierUniform: {
      const double bound = std::sqrt(3.0) * xavier_std(fans, p0_, "xavier_uniform_");
      uniform_(std::move(t), -bound, bound, gen);
      return;
    }
    case Kind::XavierNormal:
      normal_(std::move(t), 0.0, xavier_std(fans, p0_, "xavier_normal_"), gen);
      return;
    case Kind::KaimingUniform: {
      const double bound =
          std::sqrt(3.0) * kaiming_std(fans, p0_, mode_, nonlinearity_, "kaiming_uniform_");
      uniform_(std::move(t), -bound, bound, gen);
      return;
    }
    case Kind::KaimingNormal:
      normal_(std::move(t), 0.0, kaiming_std(fans, p0_, mode_, nonlinearity_, "kaiming_normal_"),
              gen);
      return;
    case Kind::FanInUniform: {
      const double bound =
          fans.fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fans.fan_in)) : 0.0;
      uniform_(std::move(t), -bound, bound, gen);
      return;
    }
  }
}

void Scheme::apply(Tensor t, Generator* gen) const {
  const bool needs_fans =
      kind_ != Kind::Uniform && kind_ != Kind::Normal && kind_ != Kind::Constant;
  const Fans fans = needs_fans ? calculate_fans(t) : Fans{};
  apply(std::move(t), fans, gen);
}

std::string Scheme::str() const {
  switch (kind_) {
    case Kind::Uniform:
      return fmt::format("uniform(a={}, b={})", p0_, p1_);
    case Kind::Normal:
      return fmt::format("normal(mean={}, std={})", p0_, p1_);
    case Kind::Constant:
      return fmt::format("constant({})", p0_);
    case Kind::XavierUniform:
      return fmt::format("xavier_uniform(gain={})", p0_);
    case Kind::XavierNormal:
      return fmt::format("xavier_normal(gain={})", p0_);
    case Kind::KaimingUniform:
    case Kind::KaimingNormal:
      return fmt::format("{}(a={:.6g}, mode={}, nonlinearity={})",
                         kind_ == Kind::KaimingUniform ? "kaiming_uniform" : "kaiming_normal", p0_,
                         fan_mode_name(mode_), nonlinearity_);
    case Kind::FanInUniform:
      return "uniform(-1/sqrt(fan_in), 1/sqrt(fan_in))";
  }
  return "?";
}

}  // namespace convtape::nn::init
