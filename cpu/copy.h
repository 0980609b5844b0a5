// CPU copies: strided (and broadcast) source into a strided destination with dtype conversion,
// and fill. These back contiguous(), clone(), to(dtype), copy_(), expand materialisation and cat.
#pragma once

#include "core/tensor.h"

namespace convtape::cpu {

// dst[...] = convert(src[...]); src's shape broadcasts to dst's shape.
void copy(const Tensor& src, const Tensor& dst);
// Every element of dst (any strides) = value.
void fill(const Tensor& dst, double value);

}  // namespace convtape::cpu
