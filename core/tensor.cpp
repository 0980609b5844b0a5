// Tensor metadata, element addressing and autograd flags: everything that needs no kernel.
#include "core/tensor.h"

#include "core/autograd.h"

namespace convtape {

const TensorImpl& Tensor::checked() const {
  CT_CHECK(impl_ != nullptr, "tensor: expected a defined tensor, got an undefined (empty) handle");
  return *impl_;
}

Tensor Tensor::make(std::shared_ptr<Storage> storage, Shape shape, Shape strides,
                    std::int64_t offset, DType dtype) {
  CT_CHECK(storage != nullptr, "tensor: expected storage, got null");
  CT_CHECK(shape.size() == strides.size(),
           "tensor: expected as many strides as dims, got shape {} and strides {}",
           to_string(shape), to_string(strides));
  std::int64_t lo = offset, hi = offset;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    CT_CHECK(shape[i] >= 0, "tensor: expected non-negative sizes, got shape {}", to_string(shape));
    if (shape[i] == 0) {
      hi = lo - 1;  // empty view: nothing is addressed
      break;
    }
    const std::int64_t span = (shape[i] - 1) * strides[i];
    (span < 0 ? lo : hi) += span;
  }
  const auto capacity = static_cast<std::int64_t>(storage->nbytes() / dtype_size(dtype));
  CT_CHECK(hi < lo || (lo >= 0 && hi < capacity),
           "tensor: expected a view inside its storage of {} elements, got shape {}, strides {}, "
           "offset {}",
           capacity, to_string(shape), to_string(strides), offset);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::move(storage);
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::empty_cpu(const Shape& shape, DType dtype) {
  for (auto d : shape)
    CT_CHECK(d >= 0, "empty: expected non-negative sizes, got {}", to_string(shape));
  const std::int64_t n = convtape::numel(shape);
  return make(Storage::allocate_cpu(static_cast<std::size_t>(n) * dtype_size(dtype)), shape,
              contiguous_strides(shape), 0, dtype);
}

std::int64_t Tensor::size(std::int64_t d) const {
  return shape()[wrap_dim(d, dim(), "size")];
}

bool Tensor::is_contiguous() const {
  const auto& s = shape();
  const auto& st = strides();
  if (numel() == 0) return true;  // no element to address: any strides will do
  std::int64_t expected = 1;
  for (std::size_t i = s.size(); i-- > 0;) {
    if (s[i] == 1) continue;
    if (st[i] != expected) return false;
    expected *= s[i];
  }
  return true;
}

void* Tensor::raw_data() const {
  return static_cast<char*>(storage()->data()) +
         offset() * static_cast<std::int64_t>(dtype_size(dtype()));
}

void Tensor::check_dtype_is(DType expected, const char* op) const {
  CT_CHECK(dtype() == expected, "{}: expected a {} tensor, got {}", op, dtype_name(expected),
           dtype_name(dtype()));
}

void Tensor::check_cpu(const char* op) const {
  CT_CHECK(is_cpu(), "{}: expected a CPU tensor, got one on {}", op, device().str());
}

std::int64_t Tensor::element_offset(const std::vector<std::int64_t>& index, const char* op) const {
  CT_CHECK(static_cast<std::int64_t>(index.size()) == dim(),
           "{}: expected {} indices for shape {}, got {}", op, dim(), to_string(shape()),
           index.size());
  std::int64_t off = offset();
  for (std::size_t i = 0; i < index.size(); ++i) {
    std::int64_t k = index[i];
    const std::int64_t n = shape()[i];
    CT_CHECK(k >= -n && k < n, "{}: expected index {} in [{}, {}) for dim {} of shape {}, got {}",
             op, i, -n, n, i, to_string(shape()), k);
    if (k < 0) k += n;
    off += k * strides()[i];
  }
  return off;
}

Tensor& Tensor::requires_grad_(bool requires_grad) {
  CT_CHECK(!requires_grad || is_floating_point(),
           "requires_grad_: expected a floating-point tensor, got {}", dtype_name(dtype()));
  CT_CHECK(is_leaf() || requires_grad,
           "requires_grad_: expected a leaf tensor, got the output of {} (use detach() to make a "
           "new leaf)",
           grad_fn_name());
  impl_->requires_grad = requires_grad;
  return *this;
}

Tensor Tensor::grad() const {
  const auto& g = checked().grad;
  return g ? Tensor(g) : Tensor();
}

void Tensor::set_grad(const Tensor& grad) {
  if (!grad.defined()) {
    impl_->grad.reset();
    return;
  }
  CT_CHECK(grad.shape() == shape() && grad.dtype() == dtype() && grad.device() == device(),
           "set_grad: expected a gradient of shape {} ({}, {}), got {} ({}, {})",
           to_string(shape()), dtype_name(dtype()), device().str(), to_string(grad.shape()),
           dtype_name(grad.dtype()), grad.device().str());
  impl_->grad = grad.impl_ptr();
}

void Tensor::zero_grad() {
  checked().grad ? impl_->grad.reset() : void();
}

std::string Tensor::grad_fn_name() const {
  const auto& fn = checked().grad_fn;
  return fn ? fn->name : std::string();
}

Tensor Tensor::detach() const {
  const auto& s = checked();
  return make(s.storage, s.shape, s.strides, s.offset, s.dtype);
}

}  // namespace convtape
