// Tensor metadata, element addressing and autograd flags: everything that needs no kernel.
#include "core/tensor.h"

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "core/autograd.h"
#include "core/checked.h"

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
  for (const auto d : shape)
    CT_CHECK(d >= 0, "tensor: expected non-negative sizes, got shape {}", to_string(shape));
  // numel() is used unchecked everywhere after this point: a shape whose element count does not
  // fit in int64 never becomes a tensor, even as a view (expand of a scalar to [2^62, 4]).
  const std::int64_t n = checked::numel(shape, "tensor");
  // The elements addressed lie in [lo, hi] (offsets in elements); every term is checked, as a
  // wrapped span would make a view that reaches outside its storage look like one inside it.
  std::int64_t lo = offset, hi = offset;
  if (n > 0) {
    for (std::size_t i = 0; i < shape.size(); ++i) {
      const auto span = checked::try_mul(shape[i] - 1, strides[i]);
      std::optional<std::int64_t> end;
      if (span) end = checked::try_add(*span < 0 ? lo : hi, *span);
      CT_CHECK(end.has_value(),
               "tensor: expected a view whose element offsets fit in 64 bits, got shape {}, "
               "strides {}, offset {}",
               to_string(shape), to_string(strides), offset);
      (*span < 0 ? lo : hi) = *end;
    }
  }
  const auto capacity = static_cast<std::int64_t>(storage->nbytes() / dtype_size(dtype));
  CT_CHECK(n == 0 || (lo >= 0 && hi < capacity),
           "tensor: expected a view inside its storage of {} elements, got shape {}, strides {}, "
           "offset {} (addressing elements {} to {})",
           capacity, to_string(shape), to_string(strides), offset, lo, hi);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::move(storage);
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  // An empty view addresses nothing; its offset (one past the end of a dim after a slice, say) is
  // dropped so that no pointer beyond the storage is ever formed from it.
  impl->offset = n == 0 ? 0 : offset;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::empty_cpu(const Shape& shape, DType dtype) {
  for (auto d : shape)
    CT_CHECK(d >= 0, "empty: expected non-negative sizes, got {}", to_string(shape));
  const std::int64_t bytes = checked::nbytes(shape, dtype_size(dtype), "empty");
  return make(Storage::allocate_cpu(static_cast<std::size_t>(bytes)), shape,
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
  // A gradient on the tape is stored detached, so the leaf never owns a graph (see tensor.h).
  const bool on_tape = grad.requires_grad() || !grad.is_leaf() || grad.impl()->grad != nullptr;
  impl_->grad = on_tape ? grad.detach().impl_ptr() : grad.impl_ptr();
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

bool has_internal_overlap(const Tensor& t) {
  const Shape& shape = t.shape();
  const Shape& strides = t.strides();
  // (|stride|, size) of the dims that step at all. Inside a valid non-empty view every
  // (size - 1) * |stride| and their sum fit (Tensor::make checked them against the storage).
  std::vector<std::pair<std::int64_t, std::int64_t>> dims;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 0) return false;  // nothing is addressed
    if (shape[i] == 1) continue;
    if (strides[i] == 0) return true;
    dims.emplace_back(strides[i] < 0 ? -strides[i] : strides[i], shape[i]);
  }
  std::sort(dims.begin(), dims.end());
  std::int64_t span = 0;  // the largest offset the smaller-stride dims reach
  bool nested = true;
  for (const auto& [stride, size] : dims) {
    if (stride <= span) {
      nested = false;
      break;
    }
    span += (size - 1) * stride;
  }
  if (nested) return false;  // every dim steps past all the smaller ones: no two elements meet
  // Interleaved strides (as_strided-like views from Tensor::make): enumerate when small enough,
  // and count as overlapping otherwise (refusing a write is safe, a silent aliasing is not).
  constexpr std::int64_t kMaxEnumerated = std::int64_t{1} << 20;
  const std::int64_t n = t.numel();
  if (n > kMaxEnumerated) return true;
  std::vector<std::int64_t> offsets{0};
  offsets.reserve(static_cast<std::size_t>(n));
  for (const auto& [stride, size] : dims) {
    const std::size_t before = offsets.size();
    for (std::int64_t k = 1; k < size; ++k)
      for (std::size_t j = 0; j < before; ++j) offsets.push_back(offsets[j] + k * stride);
  }
  std::sort(offsets.begin(), offsets.end());
  return std::adjacent_find(offsets.begin(), offsets.end()) != offsets.end();
}

void check_no_internal_overlap(const Tensor& t, std::string_view op) {
  CT_CHECK(!has_internal_overlap(t),
           "{}: expected a written-to tensor whose elements do not share memory, got shape {} "
           "with strides {} (clone() it first)",
           op, to_string(t.shape()), to_string(t.strides()));
}

}  // namespace convtape
