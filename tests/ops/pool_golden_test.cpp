// Float32 pooling against PyTorch 1.13: tests/golden/pool.txt, written by
// scripts/make_pool_golden.py. Each case holds x, the call's options (opt_* tensors, so the call is
// rebuilt from the file alone), torch's float32 output, an upstream gradient g and torch's float32
// gradient of sum(out * g); max cases also hold torch's argmax indices, and max_unpool cases the
// indices they unpool with. Cases "max<d>d_*" run max_pool<d>d (and max_pool_with_indices),
// "avg<d>d_*" avg_pool<d>d, "amax<d>d_*" / "aavg<d>d_*" adaptive max / avg pooling and
// "unpool<d>d_*" max_unpool<d>d.
// Max pooling and unpooling move values without arithmetic, so values and gradients must match
// exactly, as float32 (the golden file's 9 digits round-trip to torch's float32 values; the random
// inputs have no ties); averages compare with rtol 1e-5, atol 1e-6 (a few
// float32 roundings of windows of at most 27 terms).
#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "support/test_util.h"

namespace {

using namespace convtape;

const std::map<std::string, ct_test::GoldenCase>& golden() {
  static const auto cases = ct_test::load_golden("pool.txt");
  return cases;
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

std::vector<std::int64_t> ints(const ct_test::GoldenCase& c, const std::string& key) {
  std::vector<std::int64_t> v;
  for (double d : c.at(key).to_vector<double>()) v.push_back(static_cast<std::int64_t>(d));
  return v;
}

// Every key a case may hold; anything else means the script grew an option this test ignores.
const std::set<std::string>& known_keys() {
  static const std::set<std::string> keys = {"x",
                                             "out",
                                             "g",
                                             "grad_x",
                                             "indices",
                                             "opt_kernel",
                                             "opt_stride",
                                             "opt_padding",
                                             "opt_dilation",
                                             "opt_ceil_mode",
                                             "opt_count_include_pad",
                                             "opt_divisor_override",
                                             "opt_padding_lo",
                                             "opt_padding_hi",
                                             "opt_output_size"};
  return keys;
}

// The op a case name starts with: "max", "avg", "amax", "aavg" or "unpool".
std::string kind_of(const std::string& name) {
  for (const std::string k : {"amax", "aavg", "max", "avg", "unpool"})
    if (starts_with(name, k)) return k;
  return "";
}

PoolOptions pool_options(const ct_test::GoldenCase& c) {
  PoolOptions o;
  const auto set = [&](const std::string& key, auto&& scalar, auto&& vector) {
    if (!c.count(key)) return;
    const auto v = ints(c, key);
    if (v.size() == 1)
      scalar(v[0]);
    else
      vector(v);
  };
  set(
      "opt_kernel", [&](std::int64_t v) { o.kernel_size(v); },
      [&](const std::vector<std::int64_t>& v) { o.kernel_size(v); });
  set(
      "opt_stride", [&](std::int64_t v) { o.stride(v); },
      [&](const std::vector<std::int64_t>& v) { o.stride(v); });
  set(
      "opt_dilation", [&](std::int64_t v) { o.dilation(v); },
      [&](const std::vector<std::int64_t>& v) { o.dilation(v); });
  set(
      "opt_padding", [&](std::int64_t v) { o.padding(v); },
      [&](const std::vector<std::int64_t>& v) { o.padding(v); });
  if (c.count("opt_padding_lo")) {
    const auto lo = ints(c, "opt_padding_lo"), hi = ints(c, "opt_padding_hi");
    std::vector<std::pair<std::int64_t, std::int64_t>> pads;
    for (std::size_t d = 0; d < lo.size(); ++d) pads.emplace_back(lo[d], hi.at(d));
    o.padding(pads);
  }
  if (c.count("opt_ceil_mode")) o.ceil_mode(ints(c, "opt_ceil_mode").at(0) != 0);
  if (c.count("opt_count_include_pad"))
    o.count_include_pad(ints(c, "opt_count_include_pad").at(0) != 0);
  if (c.count("opt_divisor_override")) o.divisor_override(ints(c, "opt_divisor_override").at(0));
  return o;
}

Tensor as_indices(const Tensor& t) {
  return t.to(kInt64);
}

void check_case(const std::string& name, const ct_test::GoldenCase& c) {
  for (const auto& [key, t] : c) {
    INFO("key " << key);
    CHECK(known_keys().count(key) == 1);
  }
  const std::string kind = kind_of(name);
  REQUIRE(!kind.empty());
  Tensor x = c.at("x").to(kFloat32).requires_grad_(true);
  const std::int64_t s = x.dim() - 2;
  const bool exact = kind != "avg" && kind != "aavg";
  Tensor out, indices;
  if (kind == "max") {
    const PoolOptions o = pool_options(c);
    out = s == 1 ? max_pool1d(x, o) : s == 2 ? max_pool2d(x, o) : max_pool3d(x, o);
    const PoolWithIndices r = max_pool_with_indices(x.detach(), o);
    CHECK(ct_test::equal(r.values, out.detach()));
    indices = r.indices;
  } else if (kind == "avg") {
    const PoolOptions o = pool_options(c);
    out = s == 1 ? avg_pool1d(x, o) : s == 2 ? avg_pool2d(x, o) : avg_pool3d(x, o);
    NoGradGuard no_grad;
    CHECK(ct_test::equal(avg_pool(x, o), out));  // one kernel behind both front ends
  } else if (kind == "amax") {
    const Shape size = ints(c, "opt_output_size");
    out = adaptive_max_pool(x, size);
    const PoolWithIndices r = adaptive_max_pool_with_indices(x.detach(), size);
    CHECK(ct_test::equal(r.values, out.detach()));
    indices = r.indices;
  } else if (kind == "aavg") {
    const Shape size = ints(c, "opt_output_size");
    out = adaptive_avg_pool(x, size);
    if (std::all_of(size.begin(), size.end(), [](std::int64_t v) { return v == 1; })) {
      NoGradGuard no_grad;
      CHECK(ct_test::allclose(global_avg_pool(x), out, 1e-6, 0.0));
    }
  } else {
    const PoolOptions o = pool_options(c);
    const Shape size = c.count("opt_output_size") ? ints(c, "opt_output_size") : Shape{};
    const Tensor ind = as_indices(c.at("indices"));
    out = s == 1   ? max_unpool1d(x, ind, o, size)
          : s == 2 ? max_unpool2d(x, ind, o, size)
                   : max_unpool3d(x, ind, o, size);
  }
  REQUIRE(out.dtype() == kFloat32);
  if (exact)
    CHECK(ct_test::equal(out, c.at("out").to(kFloat32)));
  else
    CHECK(ct_test::allclose(out, c.at("out"), 1e-5, 1e-6));
  if (indices.defined() && c.count("indices")) {
    REQUIRE(indices.dtype() == kInt64);
    CHECK(ct_test::equal(indices, as_indices(c.at("indices"))));
  }
  out.backward(c.at("g").to(kFloat32));
  REQUIRE(x.grad().defined());
  if (exact)
    CHECK(ct_test::equal(x.grad(), c.at("grad_x").to(kFloat32)));
  else
    CHECK(ct_test::allclose(x.grad(), c.at("grad_x"), 1e-5, 1e-6));
}

}  // namespace

TEST_CASE("pool golden: the file covers every front end and option", "[golden][pool]") {
  const auto& cases = golden();
  CHECK(cases.size() >= 40);
  std::map<std::string, int> seen;
  for (const auto& [name, c] : cases) {
    INFO(name);
    const std::string kind = kind_of(name);
    const std::int64_t s = c.at("x").dim() - 2;
    REQUIRE(!kind.empty());
    CHECK(starts_with(name, kind + std::to_string(s) + "d_"));
    ++seen[kind + std::to_string(s) + "d"];
    const auto any_above = [&](const std::string& key, std::int64_t v) {
      if (!c.count(key)) return false;
      const auto vals = ints(c, key);
      return std::any_of(vals.begin(), vals.end(), [v](std::int64_t e) { return e > v; });
    };
    if (any_above("opt_stride", 1)) ++seen[kind + " stride"];
    if (c.count("opt_stride") == 0 && c.count("opt_kernel")) ++seen[kind + " default stride"];
    if (any_above("opt_padding", 0)) ++seen[kind + " padding"];
    if (c.count("opt_padding_lo")) ++seen[kind + " per-side padding"];
    if (any_above("opt_dilation", 1)) ++seen["dilation"];
    if (any_above("opt_ceil_mode", 0)) ++seen[kind + " ceil_mode"];
    if (c.count("opt_count_include_pad") && ints(c, "opt_count_include_pad").at(0) == 0)
      ++seen["count_include_pad false"];
    if (c.count("opt_divisor_override")) ++seen["divisor_override"];
    if (c.count("opt_kernel") && ints(c, "opt_kernel").size() > 1) ++seen[kind + " per-dim"];
  }
  for (const std::string kind : {"max", "avg", "amax", "aavg", "unpool"})
    for (int s = 1; s <= 3; ++s) {
      INFO(kind << s << "d");
      CHECK(seen[kind + std::to_string(s) + "d"] >= 1);
    }
  for (const std::string what :
       {"max stride", "max default stride", "max padding", "max per-side padding", "max ceil_mode",
        "max per-dim", "avg stride", "avg default stride", "avg padding", "avg per-side padding",
        "avg ceil_mode", "avg per-dim", "dilation", "count_include_pad false", "divisor_override",
        "unpool stride", "unpool padding"}) {
    INFO(what);
    CHECK(seen[what] >= 1);
  }
}

TEST_CASE("pool golden: float32 forward, indices and gradients match PyTorch", "[golden][pool]") {
  for (const auto& [name, c] : golden()) {
    DYNAMIC_SECTION(name) {
      check_case(name, c);
    }
  }
}
