// Tensor methods that compute: conversions (to, clone, contiguous), in-place writes outside
// autograd, element reads that may need a device copy, and the method forms of ops.
#include <cstring>

#include "core/autograd.h"
#include "cuda/cuda.h"
#include "ops/backend.h"
#include "ops/detail.h"
#include "ops/elementwise.h"
#include "ops/factory.h"
#include "ops/linalg.h"
#include "ops/reduce.h"
#include "ops/shape.h"

namespace convtape {

namespace {

// An identity-gradient (up to dtype / device) entry for conversions.
void record_conversion(Tensor& y, std::string_view op, const Tensor& x) {
  if (!x.is_floating_point() || !y.is_floating_point()) return;
  const DType dt = x.dtype();
  const Device dev = x.device();
  record(y, op, {x}, {}, [dt, dev](const Saved&, const Tensor& dy, const GradMask&) {
    return std::vector<Tensor>{dy.to(dt).to(dev)};
  });
}

void check_inplace(const Tensor& t, const char* op) {
  CT_CHECK(!(t.requires_grad() && GradMode::is_enabled()),
           "{}: expected a tensor that does not require grad, or a NoGradGuard scope, got one that "
           "requires grad "
           "(shape {})",
           op, to_string(t.shape()));
}

}  // namespace

Tensor Tensor::to(DType target) const {
  if (dtype() == target) return *this;
  Tensor y = empty(shape(), TensorOptions(target).device(device()));
  backend::copy(*this, y);
  record_conversion(y, "to", *this);
  return y;
}

Tensor Tensor::to(Device target) const {
  if (device() == target) return *this;
  // A dense copy on the source's device first (a no-op for dense tensors), then one transfer.
  const Tensor src = detach().contiguous();
  Tensor y = empty(shape(), TensorOptions(dtype()).device(target));
  cuda::copy("to", y.raw_data(), target, src.raw_data(), src.device(),
             static_cast<std::size_t>(numel()) * dtype_size(dtype()));
  record_conversion(y, "to", *this);
  return y;
}

Tensor Tensor::clone() const {
  Tensor y = empty(shape(), options());
  backend::copy(*this, y);
  record_conversion(y, "clone", *this);
  return y;
}

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  Tensor y = detach().clone();
  record_conversion(y, "contiguous", *this);
  return y;
}

Tensor& Tensor::fill_(double value) {
  // Writes one value everywhere, so an expanded destination is fine (PyTorch allows it too).
  check_inplace(*this, "fill_");
  detail::check_element_value("fill_", value, dtype());
  backend::fill(*this, value);
  storage()->bump_version();
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  check_inplace(*this, "copy_");
  detail::check_defined("copy_", src, "source");
  check_no_internal_overlap(*this, "copy_");
  CT_CHECK(src.dim() <= dim() && broadcast_shapes(src.shape(), shape(), "copy_") == shape(),
           "copy_: expected a source that broadcasts to {}, got {}", to_string(shape()),
           to_string(src.shape()));
  NoGradGuard guard;
  Tensor from = src.device() == device() ? src : src.to(device());
  // A source that overlaps the destination in memory (x[1:].copy_(x[:-1])) is read whole before
  // anything is written, on both backends: a copy through a temporary.
  if (from.storage() == storage() &&
      !(from.raw_data() == raw_data() && from.shape() == shape() && from.strides() == strides()))
    from = from.clone();
  backend::copy(from, *this);
  storage()->bump_version();
  return *this;
}

Tensor& Tensor::add_(const Tensor& other, double alpha) {
  check_inplace(*this, "add_");
  detail::check_floating_same("add_", {*this, other});
  check_no_internal_overlap(*this, "add_");
  detail::check_same_device("add_", {*this, other});
  CT_CHECK(broadcast_shapes(other.shape(), shape(), "add_") == shape(),
           "add_: expected an operand that broadcasts to {}, got {}", to_string(shape()),
           to_string(other.shape()));
  // Same shape, contiguous, and not a shifted view of this tensor's own storage.
  if (is_contiguous() && other.is_contiguous() && other.shape() == shape() &&
      (other.storage() != storage() || other.raw_data() == raw_data())) {
    backend::axpy_(*this, other, alpha);  // the optimizers' case: no temporaries
  } else {
    const Tensor scaled = alpha == 1.0 ? other : backend::unary(Unary::MulScalar, other, alpha);
    backend::copy(backend::binary(Binary::Add, *this, scaled), *this);
  }
  storage()->bump_version();
  return *this;
}

Tensor& Tensor::mul_(double factor) {
  check_inplace(*this, "mul_");
  detail::check_floating_same("mul_", {*this});
  check_no_internal_overlap(*this, "mul_");
  detail::check_same_device("mul_", {*this});
  if (is_contiguous())
    backend::scale_(*this, factor);
  else
    backend::copy(backend::unary(Unary::MulScalar, *this, factor), *this);
  storage()->bump_version();
  return *this;
}

Tensor& Tensor::put_(const std::vector<std::int64_t>& index, double value) {
  check_inplace(*this, "put_");
  check_no_internal_overlap(*this, "put_");
  detail::check_element_value("put_", value, dtype());
  const std::int64_t off = element_offset(index, "put_");
  dispatch_all(dtype(), [&]<class T>() {
    const T v = static_cast<T>(value);
    if (is_cpu())
      static_cast<T*>(storage()->data())[off] = v;
    else
      cuda::copy("put_", static_cast<T*>(storage()->data()) + off, device(), &v, Device::cpu(),
                 sizeof(T));
  });
  storage()->bump_version();
  return *this;
}

double Tensor::item() const {
  CT_CHECK(numel() == 1, "item: expected a tensor with one element, got shape {}",
           to_string(shape()));
  const Tensor h = is_cpu() ? *this : cpu();
  return dispatch_all(dtype(), [&]<class T>() {
    return static_cast<double>(static_cast<const T*>(h.storage()->data())[h.offset()]);
  });
}

template <class T>
T Tensor::item() const {
  CT_CHECK(numel() == 1, "item: expected a tensor with one element, got shape {}",
           to_string(shape()));
  return to_vector<T>()[0];
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  NoGradGuard guard;
  const Tensor h = cpu().to(dtype_of<T>()).contiguous();
  const T* p = h.data_ptr<T>();
  return std::vector<T>(p, p + h.numel());
}

template float Tensor::item<float>() const;
template double Tensor::item<double>() const;
template std::int64_t Tensor::item<std::int64_t>() const;
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<std::int64_t> Tensor::to_vector<std::int64_t>() const;

Tensor Tensor::reshape(const Shape& s) const {
  return convtape::reshape(*this, s);
}
Tensor Tensor::view(const Shape& s) const {
  return convtape::view(*this, s);
}
Tensor Tensor::flatten(std::int64_t start_dim, std::int64_t end_dim) const {
  return convtape::flatten(*this, start_dim, end_dim);
}
Tensor Tensor::permute(const std::vector<std::int64_t>& dims) const {
  return convtape::permute(*this, dims);
}
Tensor Tensor::transpose(std::int64_t dim0, std::int64_t dim1) const {
  return convtape::transpose(*this, dim0, dim1);
}
Tensor Tensor::t() const {
  CT_CHECK(dim() <= 2, "t: expected a tensor with at most 2 dims, got shape {}",
           to_string(shape()));
  return dim() < 2 ? *this : convtape::transpose(*this, 0, 1);
}
Tensor Tensor::squeeze() const {
  return convtape::squeeze(*this);
}
Tensor Tensor::squeeze(std::int64_t d) const {
  return convtape::squeeze(*this, d);
}
Tensor Tensor::unsqueeze(std::int64_t d) const {
  return convtape::unsqueeze(*this, d);
}
Tensor Tensor::narrow(std::int64_t d, std::int64_t start, std::int64_t length) const {
  return convtape::narrow(*this, d, start, length);
}
Tensor Tensor::expand(const Shape& s) const {
  return convtape::expand(*this, s);
}
Tensor Tensor::sum() const {
  return convtape::sum(*this);
}
Tensor Tensor::sum(const std::vector<std::int64_t>& dims, bool keepdim) const {
  return convtape::sum(*this, dims, keepdim);
}
Tensor Tensor::mean() const {
  return convtape::mean(*this);
}
Tensor Tensor::mean(const std::vector<std::int64_t>& dims, bool keepdim) const {
  return convtape::mean(*this, dims, keepdim);
}
Tensor Tensor::max() const {
  return convtape::max(*this);
}
Tensor Tensor::min() const {
  return convtape::min(*this);
}
Tensor Tensor::argmax() const {
  return convtape::argmax(*this);
}
Tensor Tensor::argmax(std::int64_t d, bool keepdim) const {
  return convtape::argmax(*this, d, keepdim);
}
Tensor Tensor::matmul(const Tensor& other) const {
  return convtape::matmul(*this, other);
}
Tensor Tensor::pow(double exponent) const {
  return convtape::pow(*this, exponent);
}

}  // namespace convtape
