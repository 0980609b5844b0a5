// The CPU convolution paths, one file each, and the dispatchers that run a plan (cpu/conv_plan.h).
// Every path computes, for contiguous operands x [N, C, *in], w [K, C/groups, *kernel],
// y [N, K, *out],
//   forward          y[n, k, o] = b[k] + sum over c in group(k), taps r of
//                                 w[k, c, r] * x~[n, c, o * stride + r * dilation - pad_lo]
//   backward_data    dx = the adjoint of the forward in x, given dy
//   backward_weight  dw[k, c, r] = sum over n, o of dy[n, k, o] * x~[n, c, o * stride + ...]
// for the geometry in plan.geometry, with the tiles and thread split the plan chose. The GEMM
// paths take the kernel whose blocking the plan was made with (an op fetches it once, so that a
// concurrent set_isa cannot mix two kernels' panel layouts within one call). Instantiated for
// float and double.
//   cpu/conv_depthwise.cpp  direct_padded, direct
//   cpu/conv_implicit.cpp   implicit_gemm (forward, weight gradient)
//   cpu/conv_im2col.cpp     pointwise_gemm, im2col_gemm (col2im for the data gradient)
//   cpu/conv_adjoint.cpp    transposed_forward, phase_split (data gradient as forward convs)
//   cpu/conv_phase.cpp      phase_implicit (phase_split over one padded copy of dy)
//   cpu/conv_dilated.cpp    dilation_split (undilated convs on the dilation phases)
//   cpu/conv_unfold.cpp     depth_unfold (rank >= 3 as a 2-D conv, leading taps as channels)
//   cpu/conv_split.cpp      kernel_split (a 4..9 kernel as 3x3 blocks over shifted inputs)
//   cpu/conv_winograd.cpp   winograd (float32 only)
//   cpu/conv_winograd_axes.cpp  winograd_s2 (float32 only; forward, weight gradient),
//                             winograd_1d, winograd_kxk (float32 only)
//   cpu/conv.cpp            the entry points and the dispatchers below
#pragma once

#include <vector>

#include "cpu/conv_plan.h"
#include "cpu/gemm_kernel.h"

namespace convtape::cpu::conv_detail {

// Dispatchers: run the path the plan names (not empty: the entry points answer those).
template <class T>
void run_forward(const ConvPlan& plan, const GemmKernel<T>& kern, const T* x, const T* w,
                 const T* b, T* y);
// The data gradient plus b[c] on channel c of dx where b is not null (a transposed conv's bias).
template <class T>
void run_backward_data(const ConvPlan& plan, const GemmKernel<T>& kern, const T* dy, const T* w,
                       T* dx, const T* b = nullptr);
template <class T>
void run_backward_weight(const ConvPlan& plan, const GemmKernel<T>& kern, const T* dy, const T* x,
                         T* dw);

// direct_padded or direct, as the plan says.
template <class T>
void depthwise_forward(const ConvPlan& plan, const T* x, const T* w, const T* b, T* y);
template <class T>
void depthwise_backward_data(const ConvPlan& plan, const T* dy, const T* w, T* dx);
template <class T>
void depthwise_backward_weight(const ConvPlan& plan, const T* dy, const T* x, T* dw);

template <class T>
void implicit_forward(const ConvPlan& plan, const GemmKernel<T>& kern, const T* x, const T* w,
                      const T* b, T* y);
template <class T>
void implicit_backward_weight(const ConvPlan& plan, const GemmKernel<T>& kern, const T* dy,
                              const T* x, T* dw);

// pointwise_gemm or im2col_gemm, as the plan says.
template <class T>
void im2col_forward(const ConvPlan& plan, const GemmKernel<T>& kern, const T* x, const T* w,
                    const T* b, T* y);
template <class T>
void im2col_backward_data(const ConvPlan& plan, const GemmKernel<T>& kern, const T* dy, const T* w,
                          T* dx);
template <class T>
void im2col_backward_weight(const ConvPlan& plan, const GemmKernel<T>& kern, const T* dy,
                            const T* x, T* dw);

template <class T>
void transposed_backward_data(const ConvPlan& plan, const GemmKernel<T>& kern, const T* dy,
                              const T* w, T* dx);
template <class T>
void phase_backward_data(const ConvPlan& plan, const GemmKernel<T>& kern, const T* dy, const T* w,
                         T* dx);

// phase_split's data gradient with one padded copy of dy per (sample, group) for every phase, and
// b[c] (null: none) added to dx[n, c] (cpu/conv_phase.cpp).
template <class T>
void phase_implicit_backward_data(const ConvPlan& plan, const GemmKernel<T>& kern, const T* dy,
                                  const T* w, const T* b, T* dx);
// Phase p's kernel as its forward conv reads it, flipped and channel-swapped:
// wt[grp*cg + c, k, t] = w[grp*kg + k, c, r(t)], in the kept Kept::flipped buffer
// (cpu/conv_adjoint.cpp).
template <class T>
const T* phase_weights(const ConvGeometry& g, const T* w, const PhaseConv& p);

template <class T>
void dilated_forward(const ConvPlan& plan, const GemmKernel<T>& kern, const T* x, const T* w,
                     const T* b, T* y);
template <class T>
void dilated_backward_data(const ConvPlan& plan, const GemmKernel<T>& kern, const T* dy, const T* w,
                           T* dx);
template <class T>
void dilated_backward_weight(const ConvPlan& plan, const GemmKernel<T>& kern, const T* dy,
                             const T* x, T* dw);

template <class T>
void unfold_forward(const ConvPlan& plan, const GemmKernel<T>& kern, const T* x, const T* w,
                    const T* b, T* y);
template <class T>
void unfold_backward_data(const ConvPlan& plan, const GemmKernel<T>& kern, const T* dy, const T* w,
                          T* dx);
template <class T>
void unfold_backward_weight(const ConvPlan& plan, const GemmKernel<T>& kern, const T* dy,
                            const T* x, T* dw);

template <class T>
void split_forward(const ConvPlan& plan, const GemmKernel<T>& kern, const T* x, const T* w,
                   const T* b, T* y);
template <class T>
void split_backward_data(const ConvPlan& plan, const GemmKernel<T>& kern, const T* dy, const T* w,
                         T* dx);
template <class T>
void split_backward_weight(const ConvPlan& plan, const GemmKernel<T>& kern, const T* dy, const T* x,
                           T* dw);

}  // namespace convtape::cpu::conv_detail
