// Signal-style correlation and convolution in N dimensions (numpy.correlate / numpy.convolve,
// scipy.signal and jax.scipy.signal's correlate / convolve), and the d2l book's corr2d helpers.
// All are thin checked wrappers over conv (ops/conv.h), so both arguments are differentiable and
// the CPU convolution kernels do the work.
//
// correlate(in1, in2, mode), convolve(in1, in2, mode): in1 and in2 of one rank (1 to 8, no batch or
// channel dims), sizes n1 and n2 per dim. The full correlation is
//   z[k] = sum_j in1[k - (n2 - 1) + j] * in2[j]      (k per dim in [0, n1 + n2 - 1), in1 read as 0
//                                                    outside its extent)
// and the full convolution z[k] = sum_j in1[k - j] * in2[j] (the kernel flipped). The modes crop
// the full result per dim, as scipy.signal does:
//   full   all n1 + n2 - 1 values;
//   same   n1 values (the shape of in1) starting at (n2 - 1) / 2, i.e. centred on the full result
//          as scipy's _centered does; for an even n2 the extra value sits on the low side;
//   valid  the |n1 - n2| + 1 values where one input lies wholly inside the other, starting at
//          min(n1, n2) - 1. One input must be at least as large as the other in every dim; when in2
//          is the larger one, scipy (and jax.scipy.signal) swap the inputs, which gives exactly
//          this crop of the full result (for correlate, the swapped product reversed).
// numpy.convolve / numpy.correlate agree for n1 >= n2; numpy's 'same' has max(n1, n2) values, so
// for a longer in2 it differs from scipy's (and ours), which keep the shape of in1.
//
// d2l helpers (Dive into Deep Learning, "Convolutions for images" and "Multiple input and multiple
// output channels"), valid cross-correlations with stride 1:
//   d2l::corr2d                   x [H, W],    k [h, w]       -> [H - h + 1, W - w + 1]
//   d2l::corr2d_multi_in          x [C, H, W], k [C, h, w]    -> [H', W'], summed over channels
//   d2l::corr2d_multi_in_out      x [C, H, W], k [O, C, h, w] -> [O, H', W']
//   d2l::corr2d_multi_in_out_1x1  x [C, H, W], k [O, C, 1, 1] -> [O, H, W], as the matrix product
//                                 k [O, C] x [C, H * W] (the book's demonstration that a 1x1
//                                 convolution is a per-pixel fully connected layer)
// They live in namespace d2l so that the book's names do not collide with code that defines them.
#pragma once

#include <string>

#include "core/tensor.h"

namespace convtape {

enum class SignalMode { Full, Same, Valid };

// "full", "same" or "valid", as numpy and scipy spell them.
SignalMode signal_mode_from_string(const std::string& name);

Tensor correlate(const Tensor& in1, const Tensor& in2, SignalMode mode = SignalMode::Full);
Tensor correlate(const Tensor& in1, const Tensor& in2, const std::string& mode);
Tensor convolve(const Tensor& in1, const Tensor& in2, SignalMode mode = SignalMode::Full);
Tensor convolve(const Tensor& in1, const Tensor& in2, const std::string& mode);

namespace d2l {

Tensor corr2d(const Tensor& x, const Tensor& k);
Tensor corr2d_multi_in(const Tensor& x, const Tensor& k);
Tensor corr2d_multi_in_out(const Tensor& x, const Tensor& k);
Tensor corr2d_multi_in_out_1x1(const Tensor& x, const Tensor& k);

}  // namespace d2l

}  // namespace convtape
