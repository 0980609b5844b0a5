// Inverted dropout: one mask drawn per call, y = x * mask, dx = dy * mask; channel dropout draws
// the mask per sample and channel and broadcasts it. See dropout.h.
#include "ops/dropout.h"

#include "core/autograd.h"
#include "core/trace.h"
#include "ops/detail.h"
#include "ops/elementwise.h"
#include "ops/factory.h"
#include "ops/shape.h"

namespace convtape {

namespace {

void check_p(const char* op, double p) {
  CT_CHECK(p >= 0.0 && p <= 1.0, "{}: expected p in [0, 1], got {}", op, p);
}

// y = x * mask with the mask broadcast to x's shape; dx = dy * mask (only the mask is saved).
Tensor apply_mask(const char* op, const Tensor& x, const Tensor& mask) {
  Tensor y;
  {
    NoGradGuard no_grad;
    y = mul(x, mask);
  }
  record(y, op, {x}, /*saved=*/{mask}, [](const Saved& s, const Tensor& dy, const GradMask&) {
    return std::vector<Tensor>{mul(dy, s[0])};
  });
  return y;
}

// The trace of a dropout that drew a mask (core/trace.h); one that returned x is no op at all.
void trace_dropout(trace::OpScope& scope, const char* op, const Tensor& x, const Tensor& y,
                   double p) {
  if (scope.recording() && !y.same(x)) scope.emit(op, {x}, y, {{"p", p}});
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
  trace::OpScope scope;
  Tensor y = apply_mask("dropout", x, dropout_mask(x.shape(), p, x.options(), gen));
  trace_dropout(scope, "dropout", x, y, p);
  return y;
}

namespace {

Tensor feature_dropout_impl(const char* op, const Tensor& x, double p, bool training,
                            Generator* gen) {
  detail::check_floating_same(op, {x});
  check_p(op, p);
  // PyTorch's order: the identity cases and p = 1 (zeros) come before the rank check.
  if (!training || p == 0.0 || x.numel() == 0) return x;
  if (p == 1.0) return apply_mask(op, x, zeros({}, x.options()));
  CT_CHECK(x.dim() >= 2, "{}: expected input [N, C, *] with at least 2 dims, got {}", op,
           to_string(x.shape()));
  Shape mask_shape(static_cast<std::size_t>(x.dim()), 1);
  mask_shape[0] = x.size(0);
  mask_shape[1] = x.size(1);
  return apply_mask(op, x, dropout_mask(mask_shape, p, x.options(), gen));
}

// The unbatched form: x given a leading dim of 1, dropped, and the dim removed again.
Tensor unbatched(const char* op, const Tensor& x, double p, bool training, Generator* gen) {
  detail::check_floating_same(op, {x});
  check_p(op, p);
  if (!training || p == 0.0 || x.numel() == 0) return x;
  return squeeze(feature_dropout_impl(op, unsqueeze(x, 0), p, training, gen), 0);
}

}  // namespace

Tensor feature_dropout(const Tensor& x, double p, bool training, Generator* gen) {
  trace::OpScope scope;
  Tensor y = feature_dropout_impl("feature_dropout", x, p, training, gen);
  trace_dropout(scope, "feature_dropout", x, y, p);
  return y;
}

Tensor dropout1d(const Tensor& x, double p, bool training, Generator* gen) {
  detail::check_defined("dropout1d", x);
  CT_CHECK(x.dim() == 2 || x.dim() == 3,
           "dropout1d: expected input [N, C, L] or unbatched [C, L] (2 or 3 dims), got {}",
           to_string(x.shape()));
  trace::OpScope scope;
  Tensor y = x.dim() == 3 ? feature_dropout_impl("dropout1d", x, p, training, gen)
                          : unbatched("dropout1d", x, p, training, gen);
  trace_dropout(scope, "dropout1d", x, y, p);
  return y;
}

Tensor dropout2d(const Tensor& x, double p, bool training, Generator* gen) {
  trace::OpScope scope;
  Tensor y = feature_dropout_impl("dropout2d", x, p, training, gen);
  trace_dropout(scope, "dropout2d", x, y, p);
  return y;
}

Tensor dropout3d(const Tensor& x, double p, bool training, Generator* gen) {
  detail::check_defined("dropout3d", x);
  trace::OpScope scope;
  Tensor y = x.dim() == 5 ? feature_dropout_impl("dropout3d", x, p, training, gen)
                          : unbatched("dropout3d", x, p, training, gen);
  trace_dropout(scope, "dropout3d", x, y, p);
  return y;
}

}  // namespace convtape
