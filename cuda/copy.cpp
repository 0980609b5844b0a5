// CUDA copy and fill at the tensor level: checks, the layout plan (cuda/elementwise_plan.h) and
// the launch (cuda/copy.cu). A source whose bytes overlap the destination's (other than being the
// very same view) is first copied into a temporary, since device threads write dst while others
// still read src; the copy then reads src as it was before the call.
#include "cuda/copy.h"

#include "core/error.h"
#include "cuda/check.h"
#include "cuda/copy_launch.h"
#include "cuda/cuda.h"
#include "cuda/device_scope.h"
#include "cuda/elementwise_plan.h"

namespace convtape::cuda {

namespace {

void launch_checked_copy(const Tensor& src, const Tensor& dst) {
  const MapLayout layout = plan_copy("copy", src, dst);
  CT_CUDA_CHECK("copy", launch_copy(dst.dtype(), src.dtype(), src.raw_data(), dst.raw_data(),
                                    dst.numel(), layout));
}

}  // namespace

void copy(const Tensor& src, const Tensor& dst) {
  CT_CHECK(src.defined() && dst.defined(), "copy: expected defined tensors, got an undefined {}",
           src.defined() ? "destination" : "source");
  CT_CHECK(src.is_cuda() && dst.is_cuda() && src.device() == dst.device(),
           "copy: expected a source and a destination on one CUDA device, got {} and {}",
           src.device().str(), dst.device().str());
  bool fits = src.dim() <= dst.dim();
  for (std::int64_t i = 1; fits && i <= src.dim(); ++i) {
    const std::int64_t s = src.shape()[static_cast<std::size_t>(src.dim() - i)];
    fits = s == 1 || s == dst.shape()[static_cast<std::size_t>(dst.dim() - i)];
  }
  CT_CHECK(fits, "copy: expected a source that broadcasts to {}, got {}", to_string(dst.shape()),
           to_string(src.shape()));
  if (dst.numel() == 0) return;
  DeviceScope scope("copy", dst.device());
  if (copy_needs_staging(src, dst)) {
    const Tensor staged = cuda::empty(src.shape(), TensorOptions(src.dtype()).device(src.device()));
    launch_checked_copy(src, staged);
    launch_checked_copy(staged, dst);
  } else {
    launch_checked_copy(src, dst);
  }
}

void fill(const Tensor& dst, double value) {
  CT_CHECK(dst.defined(), "fill: expected a defined tensor, got an undefined one");
  CT_CHECK(dst.is_cuda(), "fill: expected a CUDA tensor, got one on {}", dst.device().str());
  if (dst.numel() == 0) return;
  DeviceScope scope("fill", dst.device());
  const MapLayout layout = plan_fill("fill", dst);
  CT_CUDA_CHECK("fill", launch_fill(dst.dtype(), dst.raw_data(), dst.numel(), layout, value));
}

}  // namespace convtape::cuda
