// Float32 convolution against PyTorch 1.13: tests/golden/conv.txt, written by
// scripts/make_conv_golden.py. Each case holds x, w, optional b, the call's options (opt_* tensors,
// so the call is rebuilt from the file alone), torch's float32 output, an upstream gradient g, and
// torch's float32 gradients of sum(out * g). Cases "conv<d>d_*" run conv<d>d, cases "convT<d>d_*"
// run conv_transpose<d>d (torch's weight layout [C_in, C_out/groups, *k] is ours).
// Tolerance (REFERENCE.md): rtol 1e-4, atol 1e-5 for moderate reductions; atol grows with the
// square root of the reduction length L (the number of products summed into one element) past
// kModerate terms: atol = 1e-5 * sqrt(max(L, kModerate) / kModerate).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "support/test_util.h"

namespace {

using namespace convtape;

constexpr double kRtol = 1e-4;
constexpr double kAtol = 1e-5;
constexpr double kModerate = 64.0;

double atol_for(std::int64_t reduction_length) {
  return kAtol * std::sqrt(std::max(static_cast<double>(reduction_length), kModerate) / kModerate);
}

const std::map<std::string, ct_test::GoldenCase>& golden() {
  static const auto cases = ct_test::load_golden("conv.txt");
  return cases;
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

bool is_transpose(const std::string& name) {
  return starts_with(name, "convT");
}

std::vector<std::int64_t> ints(const ct_test::GoldenCase& c, const std::string& key) {
  std::vector<std::int64_t> v;
  for (double d : c.at(key).to_vector<double>()) v.push_back(static_cast<std::int64_t>(d));
  return v;
}

std::int64_t product(const Shape& s, std::size_t from) {
  std::int64_t p = 1;
  for (std::size_t i = from; i < s.size(); ++i) p *= s[i];
  return p;
}

// Every key a case may hold; anything else means the script grew an option this test ignores.
const std::set<std::string>& known_keys() {
  static const std::set<std::string> keys = {
      // operands and results
      "x", "w", "b", "out", "g", "grad_x", "grad_w", "grad_b",
      // options
      "opt_stride", "opt_padding", "opt_dilation", "opt_groups", "opt_output_padding",
      "opt_padding_lo", "opt_padding_hi", "opt_same", "opt_input_dilation", "opt_flip"};
  return keys;
}

ConvOptions conv_options(const ct_test::GoldenCase& c) {
  ConvOptions o;
  const auto stride = ints(c, "opt_stride"), dilation = ints(c, "opt_dilation");
  if (stride.size() == 1)
    o.stride(stride[0]);
  else
    o.stride(stride);
  if (dilation.size() == 1)
    o.dilation(dilation[0]);
  else
    o.dilation(dilation);
  o.groups(ints(c, "opt_groups").at(0));
  if (c.count("opt_same")) {
    o.padding(PaddingKind::Same);
  } else if (c.count("opt_padding_lo")) {
    const auto lo = ints(c, "opt_padding_lo"), hi = ints(c, "opt_padding_hi");
    std::vector<std::pair<std::int64_t, std::int64_t>> pads;
    for (std::size_t d = 0; d < lo.size(); ++d) pads.emplace_back(lo[d], hi.at(d));
    o.padding(pads);
  } else {
    const auto p = ints(c, "opt_padding");
    if (p.size() == 1)
      o.padding(p[0]);
    else
      o.padding(p);
  }
  if (c.count("opt_input_dilation")) {
    const auto d = ints(c, "opt_input_dilation");
    if (d.size() == 1)
      o.input_dilation(d[0]);
    else
      o.input_dilation(d);
  }
  if (c.count("opt_flip")) o.flip_kernel(ints(c, "opt_flip").at(0) != 0);
  return o;
}

ConvTransposeOptions conv_transpose_options(const ct_test::GoldenCase& c) {
  ConvTransposeOptions o;
  const auto stride = ints(c, "opt_stride"), padding = ints(c, "opt_padding"),
             output_padding = ints(c, "opt_output_padding"), dilation = ints(c, "opt_dilation");
  if (stride.size() == 1)
    o.stride(stride[0]);
  else
    o.stride(stride);
  if (padding.size() == 1)
    o.padding(padding[0]);
  else
    o.padding(padding);
  if (output_padding.size() == 1)
    o.output_padding(output_padding[0]);
  else
    o.output_padding(output_padding);
  if (dilation.size() == 1)
    o.dilation(dilation[0]);
  else
    o.dilation(dilation);
  o.groups(ints(c, "opt_groups").at(0));
  return o;
}

using ConvFn = std::function<Tensor(const Tensor&, const Tensor&, const Tensor&)>;

// The rank-specific front end and the rank-generic one for a case.
std::pair<ConvFn, ConvFn> functions(const std::string& name, const ct_test::GoldenCase& c) {
  const std::int64_t s = c.at("x").dim() - 2;
  if (is_transpose(name)) {
    const auto o = conv_transpose_options(c);
    ConvFn ranked = [o, s](const Tensor& x, const Tensor& w, const Tensor& b) {
      return s == 1   ? conv_transpose1d(x, w, b, o)
             : s == 2 ? conv_transpose2d(x, w, b, o)
                      : conv_transpose3d(x, w, b, o);
    };
    ConvFn generic = [o](const Tensor& x, const Tensor& w, const Tensor& b) {
      return conv_transpose(x, w, b, o);
    };
    return {ranked, generic};
  }
  const auto o = conv_options(c);
  ConvFn ranked = [o, s](const Tensor& x, const Tensor& w, const Tensor& b) {
    return s == 1 ? conv1d(x, w, b, o) : s == 2 ? conv2d(x, w, b, o) : conv3d(x, w, b, o);
  };
  ConvFn generic = [o](const Tensor& x, const Tensor& w, const Tensor& b) {
    return conv(x, w, b, o);
  };
  return {ranked, generic};
}

// Reduction lengths: how many products are summed into one element of each result.
struct Reductions {
  std::int64_t out, grad_x, grad_w, grad_b;
};

Reductions reductions(const std::string& name, const ct_test::GoldenCase& c) {
  const Shape &xs = c.at("x").shape(), &ws = c.at("w").shape(), &ys = c.at("out").shape();
  const std::int64_t groups = ints(c, "opt_groups").at(0), kernel = product(ws, 2);
  const std::int64_t n = xs[0];
  if (is_transpose(name)) {
    // x [N, C_in, *S], w [C_in, C_out/groups, *k], y [N, C_out, *S'].
    return {xs[1] / groups * kernel, ws[1] * kernel, n * product(xs, 2), n * product(ys, 2)};
  }
  // x [N, C, *S], w [K, C/groups, *k], y [N, K, *S'].
  return {ws[1] * kernel, ws[0] / groups * kernel, n * product(ys, 2), n * product(ys, 2)};
}

void check_close(const char* what, const Tensor& got, const Tensor& want, std::int64_t length) {
  INFO(what << ": reduction length " << length << ", atol " << atol_for(length));
  REQUIRE(got.defined());
  CHECK(got.dtype() == kFloat32);
  CHECK(ct_test::allclose(got, want, kRtol, atol_for(length)));
}

void check_case(const std::string& name, const ct_test::GoldenCase& c) {
  for (const auto& [key, t] : c) {
    INFO("key " << key);
    CHECK(known_keys().count(key) == 1);
  }
  const bool has_bias = c.count("b") == 1;
  REQUIRE(c.count("grad_b") == (has_bias ? 1u : 0u));

  Tensor x = c.at("x").to(kFloat32).requires_grad_(true);
  Tensor w = c.at("w").to(kFloat32).requires_grad_(true);
  Tensor b = has_bias ? c.at("b").to(kFloat32).requires_grad_(true) : Tensor();
  const auto [ranked, generic] = functions(name, c);
  const Reductions len = reductions(name, c);

  const Tensor out = ranked(x, w, b);
  REQUIRE(out.dtype() == kFloat32);
  check_close("out", out, c.at("out"), len.out);
  {
    NoGradGuard no_grad;
    CHECK(ct_test::equal(generic(x, w, b), out));  // one kernel behind both front ends
  }
  out.backward(c.at("g").to(kFloat32));
  check_close("grad_x", x.grad(), c.at("grad_x"), len.grad_x);
  check_close("grad_w", w.grad(), c.at("grad_w"), len.grad_w);
  if (has_bias) check_close("grad_b", b.grad(), c.at("grad_b"), len.grad_b);
}

}  // namespace

TEST_CASE("conv golden: the file covers every front end and option", "[golden][conv]") {
  const auto& cases = golden();
  CHECK(cases.size() >= 40);
  std::map<std::string, int> seen;
  for (const auto& [name, c] : cases) {
    const std::int64_t s = c.at("x").dim() - 2;
    const std::string kind = (is_transpose(name) ? "convT" : "conv") + std::to_string(s) + "d";
    INFO(name);
    CHECK(starts_with(name, kind + "_"));
    ++seen[kind];
    const std::int64_t groups = ints(c, "opt_groups").at(0);
    if (groups > 1) ++seen[kind + " groups"];
    if (groups > 1 && groups == c.at("x").size(1)) ++seen[kind + " depthwise"];
    ++seen[c.count("b") ? "bias" : "no bias"];
    const auto any_above = [&](const std::string& key, std::int64_t v) {
      if (!c.count(key)) return false;
      const auto vals = ints(c, key);
      return std::any_of(vals.begin(), vals.end(), [v](std::int64_t e) { return e > v; });
    };
    if (any_above("opt_stride", 1)) ++seen[kind + " stride"];
    if (any_above("opt_padding", 0) || c.count("opt_padding_lo") || c.count("opt_same"))
      ++seen[kind + " padding"];
    if (any_above("opt_dilation", 1)) ++seen[kind + " dilation"];
    if (any_above("opt_output_padding", 0)) ++seen["output_padding"];
    if (c.count("opt_padding_lo")) ++seen["per-side padding"];
    if (c.count("opt_same")) ++seen["SAME"];
    if (c.count("opt_input_dilation")) ++seen["input dilation"];
    if (c.count("opt_flip")) ++seen["flipped kernel"];
  }
  for (const std::string kind : {"conv1d", "conv2d", "conv3d", "convT1d", "convT2d", "convT3d"}) {
    INFO(kind);
    CHECK(seen[kind] >= 3);
    CHECK(seen[kind + " groups"] >= 1);
    CHECK(seen[kind + " stride"] >= 1);
    CHECK(seen[kind + " padding"] >= 1);
    CHECK(seen[kind + " dilation"] >= 1);
  }
  for (const std::string kind : {"conv1d", "conv2d", "conv3d", "convT2d"})
    CHECK(seen[kind + " depthwise"] >= 1);
  for (const std::string what : {"bias", "no bias", "output_padding", "per-side padding", "SAME",
                                 "input dilation", "flipped kernel"}) {
    INFO(what);
    CHECK(seen[what] >= 1);
  }
}

TEST_CASE("conv golden: float32 forward and gradients match PyTorch", "[golden][conv]") {
  for (const auto& [name, c] : golden()) {
    DYNAMIC_SECTION(name) {
      check_case(name, c);
    }
  }
}
