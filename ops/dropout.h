// Inverted dropout (Srivastava et al. 2014). In training, each element of x is kept with
// probability 1 - p and scaled by 1 / (1 - p), or zeroed, so that E[y] = x:
//   y = x * m,  m = 1 / (1 - p) where u >= p, else 0, with u ~ U[0, 1) drawn per element
//   dx = dy * m (m is saved; x is not)
// Outside training, or with p = 0, y is x itself; p = 1 zeroes everything (gradient 0).
// Channel dropout (PyTorch's feature_dropout, Tompson et al. 2015) draws one mask value per sample
// and channel of x [N, C, *] instead, so whole feature maps are zeroed or scaled together:
//   y = x * m,  m [N, C, 1, ...] broadcast over the spatial dims
// dropout1d / dropout2d / dropout3d are its rank-checked forms, as torch.nn.functional's:
//   dropout1d  x [N, C, L] or unbatched [C, L]   (other ranks are an Error)
//   dropout2d  x [N, C, H, W]; as PyTorch 1.13, a 3-d x is taken as [N, C, L] (no unbatched
//              form), and other ranks of at least 2 are accepted as [N, C, *] (PyTorch warns)
//   dropout3d  x [N, C, D, H, W] or unbatched [C, D, H, W]; as PyTorch, any rank other than 5 is
//              taken as unbatched (given a leading dim of 1), other ranks accepted (PyTorch warns)
// The draws come from gen, or from the default generator (manual_seed) when gen is null, in
// row-major order under the generator's lock, so a seed fixes the mask and a mask is one
// contiguous run of the stream even when several threads share the generator.
#pragma once

#include "core/random.h"
#include "core/tensor.h"

namespace convtape {

Tensor dropout(const Tensor& x, double p, bool training = true, Generator* gen = nullptr);

// x [N, C, *] (at least 2 dims) -> y = x * m with one mask value per (n, c).
Tensor feature_dropout(const Tensor& x, double p, bool training = true, Generator* gen = nullptr);
Tensor dropout1d(const Tensor& x, double p = 0.5, bool training = true, Generator* gen = nullptr);
Tensor dropout2d(const Tensor& x, double p = 0.5, bool training = true, Generator* gen = nullptr);
Tensor dropout3d(const Tensor& x, double p = 0.5, bool training = true, Generator* gen = nullptr);

// The mask dropout multiplies by: 1 / (1 - p) with probability 1 - p, else 0.
Tensor dropout_mask(const Shape& shape, double p, TensorOptions options = {},
                    Generator* gen = nullptr);

}  // namespace convtape
