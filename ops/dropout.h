// Inverted dropout (Srivastava et al. 2014). In training, each element of x is kept with
// probability 1 - p and scaled by 1 / (1 - p), or zeroed, so that E[y] = x:
//   y = x * m,  m = 1 / (1 - p) where u >= p, else 0, with u ~ U[0, 1) drawn per element
//   dx = dy * m (m is saved; x is not)
// Outside training, or with p = 0, y is x itself; p = 1 zeroes everything (gradient 0).
// The draws come from gen, or from the default generator (manual_seed) when gen is null, in
// row-major order under the generator's lock, so a seed fixes the mask and a mask is one
// contiguous run of the stream even when several threads share the generator.
#pragma once

#include "core/random.h"
#include "core/tensor.h"

namespace convtape {

Tensor dropout(const Tensor& x, double p, bool training = true, Generator* gen = nullptr);

// The mask dropout multiplies by: 1 / (1 - p) with probability 1 - p, else 0.
Tensor dropout_mask(const Shape& shape, double p, TensorOptions options = {},
                    Generator* gen = nullptr);

}  // namespace convtape
