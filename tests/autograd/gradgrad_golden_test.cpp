// Second derivatives against PyTorch 1.13 (tests/golden/gradgrad_*.txt, written by
// scripts/make_gradgrad_golden.py): conv1d/2d/3d and conv_transpose1d/2d/3d (groups, stride,
// dilation, padding, output_padding, bias), max pooling (1-d to 3-d, stride, padding, dilation,
// ceil_mode; distinct values) and the FlowNet correlation (which PyTorch composes from padding,
// shifted slices, products and means in the script).
//
// Each case stores the inputs a_i, a fixed output gradient v, fixed directions u_i, the forward
// output, the first gradients g_i = (d out / d a_i)^T v and, with s = sum_i <g_i, u_i>, the second
// derivatives ds/da_i and ds/dv. The test computes the same with autograd::grad (create_graph for
// the first) in float64 and compares everything to 1e-10 relative; a derivative the tape reports
// as unused must be zero in the file.
#include <cstdint>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/test_util.h"

namespace {

using namespace convtape;
using ct_test::GoldenCase;

using ct_test::in;

std::vector<std::int64_t> ints(const GoldenCase& c, const std::string& name) {
  std::vector<std::int64_t> v;
  for (const double e : in(c, name).to_vector<double>()) v.push_back(static_cast<std::int64_t>(e));
  return v;
}

std::int64_t one_int(const GoldenCase& c, const std::string& name) {
  const auto v = ints(c, name);
  if (v.size() != 1) throw std::runtime_error("golden option " + name + " is not one value");
  return v[0];
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

bool close(const Tensor& got, const Tensor& want) {
  return ct_test::allclose(got, want, 1e-10, 1e-12);
}

using Op = std::function<Tensor(const std::vector<Tensor>&)>;

// The call of a case, rebuilt from its name and options; `names` gets its differentiable inputs.
Op op_of(const std::string& name, const GoldenCase& c, std::vector<std::string>& names) {
  if (starts_with(name, "conv") && !starts_with(name, "convt")) {
    const bool bias = c.count("b") != 0;
    names = bias ? std::vector<std::string>{"x", "w", "b"} : std::vector<std::string>{"x", "w"};
    ConvOptions o;
    o.stride(ints(c, "opt_stride"))
        .padding(ints(c, "opt_padding"))
        .dilation(ints(c, "opt_dilation"))
        .groups(one_int(c, "opt_groups"));
    const std::int64_t rank = in(c, "x").dim() - 2;
    return [o, bias, rank](const std::vector<Tensor>& in) {
      const Tensor b = bias ? in[2] : Tensor();
      return rank == 1   ? conv1d(in[0], in[1], b, o)
             : rank == 2 ? conv2d(in[0], in[1], b, o)
                         : conv3d(in[0], in[1], b, o);
    };
  }
  if (starts_with(name, "convt")) {
    const bool bias = c.count("b") != 0;
    names = bias ? std::vector<std::string>{"x", "w", "b"} : std::vector<std::string>{"x", "w"};
    const ConvTransposeOptions o = ConvTransposeOptions()
                                       .stride(ints(c, "opt_stride"))
                                       .padding(ints(c, "opt_padding"))
                                       .output_padding(ints(c, "opt_output_padding"))
                                       .dilation(ints(c, "opt_dilation"))
                                       .groups(one_int(c, "opt_groups"));
    const std::int64_t rank = in(c, "x").dim() - 2;
    return [o, bias, rank](const std::vector<Tensor>& in) {
      const Tensor b = bias ? in[2] : Tensor();
      return rank == 1   ? conv_transpose1d(in[0], in[1], b, o)
             : rank == 2 ? conv_transpose2d(in[0], in[1], b, o)
                         : conv_transpose3d(in[0], in[1], b, o);
    };
  }
  if (starts_with(name, "max")) {
    names = {"x"};
    PoolOptions o(ints(c, "opt_kernel"));
    o.stride(ints(c, "opt_stride"))
        .padding(ints(c, "opt_padding"))
        .dilation(ints(c, "opt_dilation"))
        .ceil_mode(one_int(c, "opt_ceil_mode") != 0);
    return [o](const std::vector<Tensor>& in) { return max_pool(in[0], o); };
  }
  if (starts_with(name, "corr_")) {
    names = {"f1", "f2"};
    const CorrelationOptions o = CorrelationOptions()
                                     .kernel_size(one_int(c, "opt_kernel_size"))
                                     .max_displacement(one_int(c, "opt_max_displacement"))
                                     .stride1(one_int(c, "opt_stride1"))
                                     .stride2(one_int(c, "opt_stride2"))
                                     .padding(one_int(c, "opt_padding"));
    return [o](const std::vector<Tensor>& in) { return correlation(in[0], in[1], o); };
  }
  throw std::runtime_error("golden case of an unknown op: " + name);
}

// Compares one derivative; an undefined one (unused by the tape) must be zero in the file.
void check_derivative(const std::string& what, const Tensor& got, const Tensor& want) {
  INFO(what);
  if (!got.defined()) {
    CHECK(ct_test::equal(zeros(want.shape(), kFloat64), want));
    return;
  }
  CHECK(close(got, want));
}

void check_case(const std::string& name, const GoldenCase& c) {
  INFO("case " << name);
  std::vector<std::string> names;
  const Op op = op_of(name, c, names);
  std::vector<Tensor> inputs;
  for (const auto& n : names) inputs.push_back(in(c, n).clone().requires_grad_(true));
  const Tensor v = in(c, "v").clone().requires_grad_(true);

  const Tensor out = op(inputs);
  CHECK(close(out, in(c, "out")));
  const auto g = autograd::grad({out}, inputs, {v}, {.create_graph = true});
  REQUIRE(g.size() == names.size());
  bool on_tape = true;
  for (std::size_t i = 0; i < g.size(); ++i) {
    check_derivative("grad_" + names[i], g[i], in(c, "grad_" + names[i]));
    INFO("grad_" << names[i] << " must be on the tape after create_graph");
    CHECK(g[i].requires_grad());
    on_tape = on_tape && g[i].requires_grad();
  }
  if (!on_tape) return;  // the second derivatives would only repeat the failure above

  Tensor s;
  for (std::size_t i = 0; i < g.size(); ++i) {
    const Tensor term = sum(mul(g[i], in(c, "u_" + names[i])));
    s = s.defined() ? add(s, term) : term;
  }
  std::vector<Tensor> wrt = inputs;
  wrt.push_back(v);
  const auto h = autograd::grad({s}, wrt, {}, {.allow_unused = true});
  for (std::size_t i = 0; i < names.size(); ++i)
    check_derivative("gg_" + names[i], h[i], in(c, "gg_" + names[i]));
  check_derivative("gg_v", h.back(), in(c, "gg_v"));
}

void check_file(const std::string& file, std::size_t expected_cases) {
  const auto cases = ct_test::load_golden(file);
  REQUIRE(cases.size() == expected_cases);
  for (const auto& [name, c] : cases) check_case(name, c);
}

}  // namespace

TEST_CASE("second derivatives against PyTorch: conv and conv_transpose",
          "[autograd][golden][conv]") {
  check_file("gradgrad_conv.txt", 8);
}

TEST_CASE("second derivatives against PyTorch: max pooling", "[autograd][golden][pool]") {
  check_file("gradgrad_pool.txt", 6);
}

TEST_CASE("second derivatives against PyTorch: FlowNet correlation",
          "[autograd][golden][correlation]") {
  check_file("gradgrad_correlation.txt", 4);
}
