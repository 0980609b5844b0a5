// Pooling layers, each rank-fixed around one N-d op of ops/pool.h, x [N, C, *S] -> y [N, C, *S']:
//   MaxPool1d / 2d / 3d           max_pool with PoolOptions (kernel, stride = kernel by default,
//                                 padding, dilation, ceil_mode)
//   AvgPool1d / 2d / 3d           avg_pool with PoolOptions (also count_include_pad,
//                                 divisor_override)
//   AdaptiveAvgPool1d / 2d / 3d   adaptive_avg_pool to output_size (one value or one per dim)
//   AdaptiveMaxPool1d / 2d / 3d   adaptive_max_pool likewise
// S' per dim: floor((S + pad_lo + pad_hi - dilation * (k - 1) - 1) / stride) + 1 (ceil with
// ceil_mode, dropping a last window that starts in the high padding); adaptive: output_size.
// The options are ops/pool.h's PoolOptions: MaxPool2d(PoolOptions(2)) or MaxPool2d(2).
#pragma once

#include <cstdint>
#include <string>

#include "modules/module.h"
#include "ops/pool.h"

namespace convtape::nn {

using MaxPoolOptions = PoolOptions;
using AvgPoolOptions = PoolOptions;

// Max or average pooling of a fixed rank; the rank-named classes below are what users build.
class PoolNd : public Module {
 public:
  enum class Kind { Max, Avg };
  PoolNd(Kind kind, std::int64_t rank, const PoolOptions& options);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override;
  // "kernel_size=[2, 2], stride=[2, 2], padding=[0, 0], ..." with per-dim values expanded.
  std::string extra_repr() const override;
  const PoolOptions& options() const { return options_; }

 private:
  Kind kind_;
  std::int64_t rank_;
  PoolOptions options_;
};

class MaxPool1d : public PoolNd {
 public:
  explicit MaxPool1d(const PoolOptions& o) : PoolNd(Kind::Max, 1, o) {}
  explicit MaxPool1d(std::int64_t kernel_size) : MaxPool1d(PoolOptions(kernel_size)) {}
};
class MaxPool2d : public PoolNd {
 public:
  explicit MaxPool2d(const PoolOptions& o) : PoolNd(Kind::Max, 2, o) {}
  explicit MaxPool2d(std::int64_t kernel_size) : MaxPool2d(PoolOptions(kernel_size)) {}
};
class MaxPool3d : public PoolNd {
 public:
  explicit MaxPool3d(const PoolOptions& o) : PoolNd(Kind::Max, 3, o) {}
  explicit MaxPool3d(std::int64_t kernel_size) : MaxPool3d(PoolOptions(kernel_size)) {}
};
class AvgPool1d : public PoolNd {
 public:
  explicit AvgPool1d(const PoolOptions& o) : PoolNd(Kind::Avg, 1, o) {}
  explicit AvgPool1d(std::int64_t kernel_size) : AvgPool1d(PoolOptions(kernel_size)) {}
};
class AvgPool2d : public PoolNd {
 public:
  explicit AvgPool2d(const PoolOptions& o) : PoolNd(Kind::Avg, 2, o) {}
  explicit AvgPool2d(std::int64_t kernel_size) : AvgPool2d(PoolOptions(kernel_size)) {}
};
class AvgPool3d : public PoolNd {
 public:
  explicit AvgPool3d(const PoolOptions& o) : PoolNd(Kind::Avg, 3, o) {}
  explicit AvgPool3d(std::int64_t kernel_size) : AvgPool3d(PoolOptions(kernel_size)) {}
};

// Adaptive max or average pooling of a fixed rank to output_size (one value or one per dim).
class AdaptivePoolNd : public Module {
 public:
  enum class Kind { Max, Avg };
  AdaptivePoolNd(Kind kind, std::int64_t rank, Shape output_size);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override;
  std::string extra_repr() const override;  // "output_size=[1, 1]"
  const Shape& output_size() const { return output_size_; }

 private:
  Kind kind_;
  std::int64_t rank_;
  Shape output_size_;
};

class AdaptiveAvgPool1d : public AdaptivePoolNd {
 public:
  explicit AdaptiveAvgPool1d(Shape output_size)
      : AdaptivePoolNd(Kind::Avg, 1, std::move(output_size)) {}
};
class AdaptiveAvgPool2d : public AdaptivePoolNd {
 public:
  explicit AdaptiveAvgPool2d(Shape output_size)
      : AdaptivePoolNd(Kind::Avg, 2, std::move(output_size)) {}
};
class AdaptiveAvgPool3d : public AdaptivePoolNd {
 public:
  explicit AdaptiveAvgPool3d(Shape output_size)
      : AdaptivePoolNd(Kind::Avg, 3, std::move(output_size)) {}
};
class AdaptiveMaxPool1d : public AdaptivePoolNd {
 public:
  explicit AdaptiveMaxPool1d(Shape output_size)
      : AdaptivePoolNd(Kind::Max, 1, std::move(output_size)) {}
};
class AdaptiveMaxPool2d : public AdaptivePoolNd {
 public:
  explicit AdaptiveMaxPool2d(Shape output_size)
      : AdaptivePoolNd(Kind::Max, 2, std::move(output_size)) {}
};
class AdaptiveMaxPool3d : public AdaptivePoolNd {
 public:
  explicit AdaptiveMaxPool3d(Shape output_size)
      : AdaptivePoolNd(Kind::Max, 3, std::move(output_size)) {}
};

}  // namespace convtape::nn
