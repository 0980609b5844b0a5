// FlowNet's correlation layer (the cost volume of FlowNetC; Dosovitskiy et al. 2015, the Caffe
// "Correlation" layer): f1, f2 [N, C, H, W] -> y [N, D*D, H', W'], differentiable in both.
// Both inputs are zero-padded by `padding` on every side (padded extents Hp = H + 2 * padding,
// Wp = W + 2 * padding). With k = kernel_size (odd), kernel radius r = (k - 1) / 2,
// border b = max_displacement + r, grid radius R = max_displacement / stride2 (integer division)
// and D = 2R + 1:
//   H' = ceil((Hp - 2b) / stride1),  W' = ceil((Wp - 2b) / stride1)
//   the patch centre of output (y, x) is (cy, cx) = (y * stride1 + b, x * stride1 + b), in padded
//   coordinates, and for vertical offset p and horizontal offset o in [-R, R]:
//   y[n, (p + R) * D + (o + R), y, x] =
//       1 / (k * k * C) * sum_{c < C, -r <= i, j <= r}
//           f1p[n, c, cy + i, cx + j] * f2p[n, c, cy + i + p * stride2, cx + j + o * stride2]
//   (f1p, f2p the padded inputs). Every index stays inside the padded inputs by the choice of b.
// FlowNetC: kernel_size 1, max_displacement 20, stride1 1, stride2 2, padding 20 on [N, 256, 48,
// 64] features -> [N, 441, 48, 64].
// CPU and CUDA: cpu/correlation.h says how the CPU computes it, cuda/correlation.h the GPU
// (kernels.def lists both).
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace convtape {

class CorrelationOptions {
 public:
  CorrelationOptions() = default;
  // The configuration of FlowNetC's correlation layer: k 1, max_displacement 20, strides 1 and 2,
  // padding 20 (the output keeps the input's H and W).
  static CorrelationOptions flownetc() {
    return CorrelationOptions().kernel_size(1).max_displacement(20).stride1(1).stride2(2).padding(
        20);
  }

  // Side of the square patch compared at each position (odd).
  CorrelationOptions& kernel_size(std::int64_t k) {
    kernel_size_ = k;
    return *this;
  }
  // Largest displacement, in pixels of the padded input, along each axis.
  CorrelationOptions& max_displacement(std::int64_t d) {
    max_displacement_ = d;
    return *this;
  }
  // Step between neighbouring output positions.
  CorrelationOptions& stride1(std::int64_t s) {
    stride1_ = s;
    return *this;
  }
  // Step between neighbouring displacements.
  CorrelationOptions& stride2(std::int64_t s) {
    stride2_ = s;
    return *this;
  }
  // Zeros added on every side of both inputs.
  CorrelationOptions& padding(std::int64_t p) {
    padding_ = p;
    return *this;
  }

  std::int64_t kernel_size() const { return kernel_size_; }
  std::int64_t max_displacement() const { return max_displacement_; }
  std::int64_t stride1() const { return stride1_; }
  std::int64_t stride2() const { return stride2_; }
  std::int64_t padding() const { return padding_; }

 private:
  std::int64_t kernel_size_ = 1;
  std::int64_t max_displacement_ = 0;
  std::int64_t stride1_ = 1;
  std::int64_t stride2_ = 1;
  std::int64_t padding_ = 0;
};

// The cost volume of f1 and f2, both [N, C, H, W] of one floating dtype, on the CPU.
Tensor correlation(const Tensor& f1, const Tensor& f2, const CorrelationOptions& options = {});

}  // namespace convtape
