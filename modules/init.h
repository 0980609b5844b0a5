// nn::init: weight initialisers (PyTorch's torch.nn.init, in place, outside autograd) and Scheme,
// an initialiser as a value that layer options carry.
// Fans of a weight [out, in, *k] (conv weights [K, C/groups, *R]; Linear [out, in]):
//   fan_in = in * prod(k), fan_out = out * prod(k)            (PyTorch's rule; needs >= 2 dims)
// Gains (calculate_gain): linear, conv*, conv_transpose*, sigmoid 1; tanh 5/3; relu sqrt(2);
//   leaky_relu sqrt(2 / (1 + slope^2)) (slope 0.01 unless given); selu 3/4.
//   uniform_(a, b)        U(a, b)                    normal_(mean, std)   N(mean, std^2)
//   constant_(v), zeros_, ones_
//   xavier_uniform_(gain) U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out))      (Glorot)
//   xavier_normal_(gain)  N(0, s^2), s = gain * sqrt(2 / (fan_in + fan_out))
//   kaiming_uniform_(a, mode, nonlinearity)  U(-b, b), b = gain * sqrt(3 / fan)  (He)
//   kaiming_normal_(a, mode, nonlinearity)   N(0, s^2), s = gain / sqrt(fan)
//   with gain = calculate_gain(nonlinearity, a) and fan = fan_in, fan_out or, as an extension
//   that PuzzleLib's "avg" factor needs, (fan_in + fan_out) / 2.
// Every random initialiser draws from gen, or from the default generator (manual_seed) when gen is
// null. The functions take the tensor by handle, fill it (under NoGradGuard, so parameters that
// require grad may be initialised) and return the same handle.
// The layers' default (PyTorch's): weight kaiming_uniform_(a = sqrt(5)), that is U(-b, b) with
// b = 1 / sqrt(fan_in), and bias U(-1 / sqrt(fan_in), 1 / sqrt(fan_in)) with the weight's fan_in.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/random.h"
#include "core/shape.h"
#include "core/tensor.h"

namespace convtape::nn::init {

enum class FanMode { FanIn, FanOut, FanAvg };

struct Fans {
  std::int64_t fan_in = 0;
  std::int64_t fan_out = 0;
};

Fans calculate_fans(const Shape& weight_shape);
Fans calculate_fans(const Tensor& weight);
// fan_in, fan_out or their mean.
double select_fan(const Fans& fans, FanMode mode);
double calculate_gain(const std::string& nonlinearity, std::optional<double> param = std::nullopt);

Tensor uniform_(Tensor t, double a = 0.0, double b = 1.0, Generator* gen = nullptr);
Tensor normal_(Tensor t, double mean = 0.0, double std = 1.0, Generator* gen = nullptr);
Tensor constant_(Tensor t, double value);
Tensor zeros_(Tensor t);
Tensor ones_(Tensor t);
Tensor xavier_uniform_(Tensor t, double gain = 1.0, Generator* gen = nullptr);
Tensor xavier_normal_(Tensor t, double gain = 1.0, Generator* gen = nullptr);
Tensor kaiming_uniform_(Tensor t, double a = 0.0, FanMode mode = FanMode::FanIn,
                        const std::string& nonlinearity = "leaky_relu", Generator* gen = nullptr);
Tensor kaiming_normal_(Tensor t, double a = 0.0, FanMode mode = FanMode::FanIn,
                       const std::string& nonlinearity = "leaky_relu", Generator* gen = nullptr);

// PuzzleLib's scheme argument: a name, or (name, factor) as its tuple form ("he", "out").
struct PuzzleLibInit {
  PuzzleLibInit(const char* scheme) : name(scheme) {}  // NOLINT(google-explicit-constructor)
  PuzzleLibInit(std::string scheme, std::string fan_factor = "in")  // NOLINT
      : name(std::move(scheme)), factor(std::move(fan_factor)) {}
  std::string name;
  std::string factor = "in";
};

// An initialiser as a value. apply() fills a tensor; the fans come from the tensor, or are given
// (a layer passes its weight's fans when it initialises the bias).
class Scheme {
 public:
  enum class Kind {
    Uniform,
    Normal,
    Constant,
    XavierUniform,
    XavierNormal,
    KaimingUniform,
    KaimingNormal,
    FanInUniform
  };

  static Scheme uniform(double a = 0.0, double b = 1.0);
  static Scheme normal(double mean = 0.0, double std = 1.0);
  static Scheme constant(double value);
  static Scheme zeros() { return constant(0.0); }
  static Scheme ones() { return constant(1.0); }
  static Scheme xavier_uniform(double gain = 1.0);
  static Scheme xavier_normal(double gain = 1.0);
  static Scheme kaiming_uniform(double a = 0.0, FanMode mode = FanMode::FanIn,
                                std::string nonlinearity = "leaky_relu");
  static Scheme kaiming_normal(double a = 0.0, FanMode mode = FanMode::FanIn,
                               std::string nonlinearity = "leaky_relu");
  // U(-1 / sqrt(fan_in), 1 / sqrt(fan_in)): PyTorch's default bias of Linear and Conv.
  static Scheme fan_in_uniform();
  // kaiming_uniform(a = sqrt(5)): PyTorch's default weight of Linear and Conv.
  static Scheme pytorch_default();
  // PuzzleLib's createTensorWithScheme, with factor f = fan_in ("in", the default), fan_out
  // ("out") or their mean ("avg"):
  //   "xavier_uniform"        U(-sqrt(3 / f), sqrt(3 / f))  = kaiming_uniform(0, f, "linear")
  //   "xavier", "xavier_normal"  N(0, 1 / f)               = kaiming_normal(0, f, "linear")
  //   "he"                    N(0, 2 / f)                   = kaiming_normal(0, f, "relu")
  //   "gaussian"              N(0, wscale^2)                = normal(0, wscale)
  //   "uniform"               U(-wscale, wscale)            = uniform(-wscale, wscale)
  //   "none"                  PuzzleLib leaves the memory uninitialised; here: zeros
  // wscale only enters "gaussian" and "uniform", as in PuzzleLib. (With factor "avg",
  // "xavier_uniform" is Glorot's U(-sqrt(6 / (fan_in + fan_out)), ...).)
  static Scheme puzzlelib(const PuzzleLibInit& scheme, double wscale = 1.0);

  void apply(Tensor t, const Fans& fans, Generator* gen = nullptr) const;
  void apply(Tensor t, Generator* gen = nullptr) const;
  // "kaiming_uniform(a=2.23607, mode=fan_in, nonlinearity=leaky_relu)".
  std::string str() const;

  Kind kind() const { return kind_; }
  double p0() const { return p0_; }  // a / mean / value / gain, by kind
  double p1() const { return p1_; }  // b / std
  FanMode mode() const { return mode_; }
  const std::string& nonlinearity() const { return nonlinearity_; }

 private:
  Scheme(Kind kind, double p0, double p1) : kind_(kind), p0_(p0), p1_(p1) {}

  Kind kind_;
  double p0_;
  double p1_;
  FanMode mode_ = FanMode::FanIn;
  std::string nonlinearity_;
};

}  // namespace convtape::nn::init
