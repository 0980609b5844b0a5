// CUDA copies: a strided (and broadcast) device source into a strided device destination with dtype
// conversion, and fill of a strided destination; the device side of cpu/copy.h.
// Plain C++: any folder may include it. A build without CUDA links cuda/no_cuda.cpp, whose
// versions throw "<op>: this build has no CUDA support".
#pragma once

#include <cstdint>

#include "core/kernel_args.h"
#include "core/tensor.h"

namespace convtape::cuda {

// dst[...] = convert(src[...]); src's shape broadcasts to dst's; both on the same device.
void copy(const Tensor& src, const Tensor& dst);
// Every element of dst (any strides) = value.
void fill(const Tensor& dst, double value);

}  // namespace convtape::cuda
