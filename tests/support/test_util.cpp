// Test helpers: comparisons with readable failure output and the golden-file parser.
#include "test_util.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

namespace ct_test {

using namespace convtape;

Tensor leaf(const Shape& shape, double low, double high) {
  return uniform(shape, low, high, kFloat64).requires_grad_(true);
}

Tensor distinct(const Shape& shape, std::uint32_t seed) {
  const std::int64_t n = numel(shape);
  std::vector<double> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i)
    v[static_cast<std::size_t>(i)] = 0.1 * static_cast<double>(i - n / 2) + 0.05;
  std::mt19937 gen(seed);
  std::shuffle(v.begin(), v.end(), gen);
  return tensor(v, shape, kFloat64).requires_grad_(true);
}

bool bits_equal(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  const Tensor ca = a.contiguous(), cb = b.contiguous();
  const std::size_t n = static_cast<std::size_t>(a.numel()) * dtype_size(a.dtype());
  return n == 0 || std::memcmp(ca.raw_data(), cb.raw_data(), n) == 0;
}

void require_same(const StateDict& a, const StateDict& b) {
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    INFO("entry " << i << " \"" << a[i].first << "\"");
    CHECK(a[i].first == b[i].first);
    CHECK(bits_equal(a[i].second, b[i].second));
  }
}

bool allclose(const Tensor& a, const Tensor& b, double rtol, double atol) {
  if (a.shape() != b.shape()) {
    UNSCOPED_INFO("shapes differ: " << to_string(a.shape()) << " vs " << to_string(b.shape()));
    return false;
  }
  const auto va = a.to_vector<double>();
  const auto vb = b.to_vector<double>();
  for (std::size_t i = 0; i < va.size(); ++i) {
    const double tol = atol + rtol * std::abs(vb[i]);
    const bool both_nan = std::isnan(va[i]) && std::isnan(vb[i]);
    if (!both_nan && !(std::abs(va[i] - vb[i]) <= tol)) {
      UNSCOPED_INFO("element " << i << ": " << va[i] << " vs " << vb[i] << " (tolerance " << tol
                               << ")");
      return false;
    }
  }
  return true;
}

bool equal(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  return a.to_vector<double>() == b.to_vector<double>();
}

std::string str(const Shape& v) {
  return to_string(v);
}

std::string str(const Pads& p) {
  std::ostringstream s;
  s << '[';
  for (std::size_t i = 0; i < p.size(); ++i)
    s << (i ? ", " : "") << '(' << p[i].first << ", " << p[i].second << ')';
  s << ']';
  return s.str();
}

// Format, one tensor per line:  <case> <name> <rank> <dims...> <values...>
const convtape::Tensor& in(const GoldenCase& c, const std::string& name) {
  const auto it = c.find(name);
  if (it == c.end()) throw std::runtime_error("golden case has no tensor " + name);
  return it->second;
}

std::map<std::string, GoldenCase> load_golden(const std::string& file) {
  const std::string path = std::string(CT_GOLDEN_DIR) + "/" + file;
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open golden file " + path);
  std::map<std::string, GoldenCase> cases;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ss(line);
    std::string case_name, name;
    std::int64_t rank = 0;
    ss >> case_name >> name >> rank;
    Shape shape(static_cast<std::size_t>(rank));
    for (auto& d : shape) ss >> d;
    std::vector<double> v(static_cast<std::size_t>(numel(shape)));
    for (auto& x : v) ss >> x;
    if (!ss)
      throw std::runtime_error("malformed golden line in " + path + ": " + line.substr(0, 80));
    cases[case_name][name] = tensor(v, shape, kFloat64);
  }
  return cases;
}

}  // namespace ct_test
