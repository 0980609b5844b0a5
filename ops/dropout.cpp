// Inverted dropout: one mask drawn per call, y = x * mask, dx = dy * mask. See dropout.h.
#include "ops/dropout.h"

#include "core/autograd.h"
#include "ops/detail.h"
#include "ops/elementwise.h"

namespace convtape {

namespace {

void check_p(const char* op, double p) {
  CT_CHECK(p >= 0.0 && p <= 1.0, "{}: expected p in [0, 1], got {}", op, p);
}

}  // namespace

Tensor dropout_mask(const Shape& shape, double p, TensorOptions options, Generator* gen) {
  check_p("dropout_mask", p);
  CT_CHECK(is_floating(options.dtype()), "dropout_mask: expected a floating dtype, got {}",
           dtype_name(options.dtype()));
  for (auto d : shape)
    CT_CHECK(d >= 0, "dropout_mask: expected non-negative sizes, got {}", to_string(shape));
  Generator& g = gen ? *gen : default_generator();
  const double scale = p < 1.0 ? 1.0 / (1.0 - p) : 0.0;
  Tensor mask = Tensor::empty_cpu(shape, options.dtype());
  const std::int64_t n = mask.numel();
  {
    // One lock for the whole mask (see core/random.h): the mask is one contiguous run of the
    // stream even while other threads draw from the same generator.
    const auto lock = g.lock();
    dispatch_floating(options.dtype(), [&]<class T>() {
      T* m = mask.data_ptr<T>();
      const T keep = static_cast<T>(scale);
      for (std::int64_t i = 0; i < n; ++i) m[i] = g.uniform01() >= p ? keep : T(0);
    });
  }
  return options.device().is_cuda() ? mask.to(options.device()) : mask;
}

Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
  detail::check_floating_same("dropout", {x});
  check_p("dropout", p);
  if (!training || p == 0.0) return x;
  const Tensor mask = dropout_mask(x.shape(), p, x.options(), gen);
  Tensor y;
  {
    NoGradGuard no_grad;
    y = mul(x, mask);
  }
  record(y, "dropout", {x}, /*saved=*/{mask},
         [](const Saved& s, const Tensor& dy, const GradMask&) {
           return std::vector<Tensor>{mul(dy, s[0])};
         });
  return y;
}

}  // namespace convtape
