// The adding-an-op guide's example (docs/adding-an-op.md): softplus(x) = log(1 + exp(x)) as one
// op on the tape, with its own backward, checked by gradcheck. Built and run by the test suite.
#include <convtape.h>

#include <cstdio>

using namespace convtape;

// softplus: x [*] -> y [*], y = log(1 + exp(x)), dy/dx = sigmoid(x).
Tensor softplus(const Tensor& x) {
  CT_CHECK(x.defined() && x.is_floating_point(),
           "softplus: expected a floating-point tensor, got {}",
           x.defined() ? std::string(dtype_name(x.dtype())) : std::string("an undefined one"));
  Tensor y;
  {
    NoGradGuard no_grad;  // the forward is computed off the tape ...
    y = log(exp(x) + 1.0);
  }
  // ... and recorded as one node that saves x for its backward.
  record(y, "softplus", {x}, /*saved=*/{x}, [](const Saved& s, const Tensor& dy, const GradMask&) {
    return std::vector<Tensor>{dy * sigmoid(s[0])};
  });
  return y;
}

int main() {
  manual_seed(1);
  const Tensor x = randn({4, 3}, kFloat64).requires_grad_();
  const GradcheckResult r =
      gradcheck([](const std::vector<Tensor>& in) { return softplus(in[0]); }, {x});
  std::printf("%s\n", r.report.c_str());
  return r.ok ? 0 : 1;
}
