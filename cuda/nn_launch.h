// Launchers of the softmax, nll, index and range-check kernels (cuda/nn_body.h), defined in
// cuda/nn.cu: raw device pointers to contiguous buffers in, the launch status out (cudaSuccess when
// everything was queued on the current device's default stream). dtype types the floating buffers
// (float32 / float64; index_select also takes int64).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace convtape::cuda::kernels {

// y = softmax (log: log-softmax) of x [outer, n, inner] along n, n > 0. mx [outer * inner] and sum
// [outer * inner] (double) are scratch, as are partial, va, vb (values of dtype), a and b (doubles)
// with the sizes softmax_scratch (cuda/nn_body.h) gives; they may be null where those are 0.
cudaError_t softmax(DType dtype, const void* x, void* y, std::int64_t outer, std::int64_t n,
                    std::int64_t inner, bool log, void* mx, double* sum, double* partial, void* va,
                    void* vb, double* a, double* b);

// out [batch] = -logp[i, labels[i]] * weight[labels[i]] for logp [batch, classes] (weight null:
// 1), 0 where labels[i] == ignore_index; sample_weights [batch] (may be null) the weights alone.
// On return (the kernel finished) *position is the first label outside [0, classes) other than
// ignore_index and *value the label, or *position = -1 when there is none; first is one int64 of
// device scratch.
cudaError_t nll_forward(DType dtype, const void* logp, const std::int64_t* labels,
                        const void* weight, void* out, void* sample_weights, std::int64_t batch,
                        std::int64_t classes, std::int64_t ignore_index, std::int64_t* first,
                        std::int64_t* position, std::int64_t* value);
// dx [batch, classes] from per-sample gradients g [batch].
cudaError_t nll_backward(DType dtype, const void* g, const std::int64_t* labels, const void* weight,
                         void* dx, std::int64_t batch, std::int64_t classes,
                         std::int64_t ignore_index);

// y [outer, len, inner] = x [outer, n, inner] at index [len] along n.
cudaError_t index_select(DType dtype, const void* x, const std::int64_t* index, void* y,
                         std::int64_t outer, std::int64_t n, std::int64_t inner, std::int64_t len);

// Bytes of device scratch that index_sort needs for len keys below 2^bits.
cudaError_t index_sort_scratch(std::int64_t len, int bits, std::size_t* bytes);
// keys = index [len] sorted ascending on its low `bits` bits (values in [0, 2^bits)), perm = the
// positions they came from, equal keys in increasing position (a stable radix sort). iota [len]
// and scratch (index_sort_scratch's bytes) are device scratch.
cudaError_t index_sort(const std::int64_t* index, std::int64_t len, int bits, std::int64_t* keys,
                       std::int64_t* iota, std::int64_t* perm, void* scratch, std::size_t bytes);
// y [outer, n, inner] = sums of src [outer, len, inner] rows by index, from index_sort's keys and
// perm.
cudaError_t index_add(DType dtype, const void* src, const std::int64_t* keys,
                      const std::int64_t* perm, void* y, std::int64_t outer, std::int64_t n,
                      std::int64_t inner, std::int64_t len);

// Finds the first of values [count] outside [lo, hi): on return (the kernel finished),
// *position is its position and *value the value, or *position = -1 when every value is in range.
// first is one int64 of device scratch.
cudaError_t first_out_of_range(const std::int64_t* values, std::int64_t count, std::int64_t lo,
                               std::int64_t hi, std::int64_t* first, std::int64_t* position,
                               std::int64_t* value);

}  // namespace convtape::cuda::kernels
