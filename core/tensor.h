// Tensor: a shared handle to a strided view (shape, strides, offset) of a Storage, plus its
// autograd state. Copying a Tensor copies the handle, not the data. Views (reshape of a contiguous
// tensor, narrow, slice, permute, transpose, expand, squeeze, unsqueeze) share storage; kernels
// that need dense memory call contiguous() first.
//
// core/ declares the type and implements what needs no kernel (metadata, element access, autograd
// flags). Methods that compute (to, clone, contiguous, backward, printing, the method forms of ops)
// are defined in ops/, which is where kernels are dispatched.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/shape.h"
#include "core/storage.h"

namespace convtape {

namespace autograd {
struct Node;
struct LeafHooks;
}  // namespace autograd

// Options for factories: dtype (default float32), device (default CPU), requires_grad (default
// false). Chainable: TensorOptions().dtype(kFloat64).requires_grad(true). A DType or Device
// converts to it.
class TensorOptions {
 public:
  TensorOptions() = default;
  TensorOptions(DType d) : dtype_(d) {}  // NOLINT(google-explicit-constructor): kFloat64 reads well
  TensorOptions(Device d) : device_(d) {}  // NOLINT(google-explicit-constructor)

  TensorOptions dtype(DType d) const {
    auto o = *this;
    o.dtype_ = d;
    return o;
  }
  TensorOptions device(Device d) const {
    auto o = *this;
    o.device_ = d;
    return o;
  }
  TensorOptions requires_grad(bool r) const {
    auto o = *this;
    o.requires_grad_ = r;
    return o;
  }

  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  bool requires_grad() const { return requires_grad_; }

 private:
  DType dtype_ = kFloat32;
  Device device_ = kCPU;
  bool requires_grad_ = false;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  std::int64_t offset = 0;  // in elements
  Shape shape;
  Shape strides;  // in elements; 0 for a broadcast (expanded) dim
  DType dtype = kFloat32;
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;
  std::shared_ptr<autograd::Node> grad_fn;
  // Hooks run by backward once this leaf's gradient is final (autograd::
  // register_post_accumulate_grad_hook); null for every tensor that has none.
  std::shared_ptr<autograd::LeafHooks> hooks;
};

class Tensor {
 public:
  Tensor() = default;  // undefined: used for "no tensor", e.g. a conv without bias
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // A tensor over existing storage. Refuses negative sizes, a shape whose element count overflows
  // int64, element offsets that overflow, and views reaching outside the storage; an empty view is
  // always accepted (its offset is stored as 0).
  static Tensor make(std::shared_ptr<Storage> storage, Shape shape, Shape strides,
                     std::int64_t offset, DType dtype);
  // Uninitialised contiguous CPU tensor (for any device, see convtape::empty in ops/factory.h).
  // Shapes whose byte count overflows or exceeds checked::kMaxBytes are refused before allocating.
  static Tensor empty_cpu(const Shape& shape, DType dtype);

  // ---- metadata
  bool defined() const noexcept { return impl_ != nullptr; }
  const Shape& shape() const { return checked().shape; }
  const Shape& strides() const { return checked().strides; }
  std::int64_t dim() const { return static_cast<std::int64_t>(shape().size()); }
  std::int64_t size(std::int64_t d) const;
  std::int64_t numel() const { return convtape::numel(shape()); }
  DType dtype() const { return checked().dtype; }
  Device device() const { return checked().storage->device(); }
  bool is_cpu() const { return device().is_cpu(); }
  bool is_cuda() const { return device().is_cuda(); }
  bool is_floating_point() const { return is_floating(dtype()); }
  std::int64_t offset() const { return checked().offset; }
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const { return checked().storage; }
  TensorImpl* impl() const noexcept { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const noexcept { return impl_; }
  bool same(const Tensor& other) const noexcept { return impl_ == other.impl_; }
  TensorOptions options() const { return TensorOptions(dtype()).device(device()); }

  // ---- raw data (device pointer for CUDA tensors); T must match dtype()
  template <class T>
  T* data_ptr() const {
    check_dtype_is(dtype_of<T>(), "data_ptr");
    return static_cast<T*>(storage()->data()) + offset();
  }
  void* raw_data() const;

  // ---- element access; indices may be negative (counted from the end)
  // Reads one element of a CPU tensor (item() reads device tensors).
  template <class T>
  T at(const std::vector<std::int64_t>& index) const {
    check_dtype_is(dtype_of<T>(), "at");
    check_cpu("at");
    return static_cast<const T*>(storage()->data())[element_offset(index, "at")];
  }
  // Writes one element in place, on any device (outside autograd, see fill_).
  Tensor& put_(const std::vector<std::int64_t>& index, double value);
  // The single element of a one-element tensor, converted to double.
  double item() const;
  template <class T>
  T item() const;
  // All elements in row-major order, converted to T.
  template <class T>
  std::vector<T> to_vector() const;

  // ---- conversions (recorded on the tape where differentiable)
  Tensor to(DType dtype) const;
  Tensor to(Device device) const;
  Tensor cpu() const { return to(Device::cpu()); }
  Tensor cuda(int index = 0) const { return to(Device::cuda(index)); }
  Tensor clone() const;
  Tensor contiguous() const;
  Tensor detach() const;  // shares storage, leaves the tape

  // ---- autograd
  bool requires_grad() const { return checked().requires_grad; }
  Tensor& requires_grad_(bool requires_grad = true);
  bool is_leaf() const { return checked().grad_fn == nullptr; }
  Tensor grad() const;
  // Sets .grad. A gradient that is on the tape (it has a grad_fn or requires grad) is stored
  // detached: the leaf would otherwise hold its own graph (w.set_grad(mul(w, 2.0)) makes
  // w -> grad -> node -> w), a shared_ptr cycle that is never freed. PyTorch keeps the tensor as
  // it is; here its values are kept and its history dropped.
  void set_grad(const Tensor& grad);
  void zero_grad();  // drops the accumulated gradient
  const std::shared_ptr<autograd::Node>& grad_fn() const { return checked().grad_fn; }
  std::string grad_fn_name() const;
  // Backpropagates from this tensor. Without grad it must hold one element (the gradient is 1).
  // With create_graph, the backward formulas run as ops on the tape, so that the gradients
  // accumulated into .grad can be differentiated again (the graph is then retained). As in
  // PyTorch, a leaf's .grad then holds a graph that holds the leaf: reset it (zero_grad(), or an
  // optimizer's zero_grad) to free both. autograd::grad returns the gradients instead, and is the
  // better tool for gradient penalties and Hessian-vector products.
  void backward(const Tensor& grad = {}, bool retain_graph = false,
                bool create_graph = false) const;

  // ---- in place, outside autograd: refused on a tensor that requires grad while grad mode is on.
  // As in PyTorch, copy_, add_, mul_ and put_ refuse a destination whose elements share memory
  // (an expanded view: has_internal_overlap); fill_ writes one value, so it accepts one. A source
  // that overlaps the destination is read whole before anything is written (NumPy's answer, where
  // PyTorch refuses a partial overlap).
  Tensor& fill_(double value);
  Tensor& zero_() { return fill_(0.0); }
  Tensor& copy_(const Tensor& src);  // src broadcasts to this shape; dtype converts
  Tensor& add_(const Tensor& other, double alpha = 1.0);
  Tensor& mul_(double factor);

  // ---- method forms of common ops (see ops/)
  Tensor reshape(const Shape& shape) const;
  Tensor view(const Shape& shape) const;
  Tensor flatten(std::int64_t start_dim = 0, std::int64_t end_dim = -1) const;
  Tensor permute(const std::vector<std::int64_t>& dims) const;
  Tensor transpose(std::int64_t dim0, std::int64_t dim1) const;
  Tensor t() const;
  Tensor squeeze() const;
  Tensor squeeze(std::int64_t dim) const;
  Tensor unsqueeze(std::int64_t dim) const;
  Tensor narrow(std::int64_t dim, std::int64_t start, std::int64_t length) const;
  Tensor expand(const Shape& shape) const;
  Tensor sum() const;
  Tensor sum(const std::vector<std::int64_t>& dims, bool keepdim = false) const;
  Tensor mean() const;
  Tensor mean(const std::vector<std::int64_t>& dims, bool keepdim = false) const;
  Tensor max() const;
  Tensor min() const;
  Tensor argmax() const;
  Tensor argmax(std::int64_t dim, bool keepdim = false) const;
  Tensor matmul(const Tensor& other) const;
  Tensor pow(double exponent) const;

  // PyTorch-style text: values, then shape and dtype (and device / grad_fn where relevant).
  std::string str() const;

  // ---- internal helpers shared by core/ and ops/
  void check_dtype_is(DType expected, const char* op) const;
  std::int64_t element_offset(const std::vector<std::int64_t>& index, const char* op) const;
  void check_cpu(const char* op) const;

 private:
  const TensorImpl& checked() const;
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// True when two elements of t address one memory location (an expanded, stride-0 dim of size > 1,
// or strides that interleave). Exact: dims sorted by |stride| that each step past the span of the
// smaller ones cannot alias; views that fail that test (only Tensor::make builds them) are
// enumerated when small, and counted as overlapping when too large to enumerate.
bool has_internal_overlap(const Tensor& t);

// "<op>: expected a written-to tensor whose elements do not share memory, got shape [4, 3] with
// strides [0, 1]" when has_internal_overlap(t).
void check_no_internal_overlap(const Tensor& t, std::string_view op);

}  // namespace convtape

template <>
struct fmt::formatter<convtape::Tensor> : fmt::formatter<std::string_view> {
  template <class Ctx>
  auto format(const convtape::Tensor& t, Ctx& ctx) const {
    return fmt::formatter<std::string_view>::format(t.str(), ctx);
  }
};
