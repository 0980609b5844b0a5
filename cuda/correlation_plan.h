// How the CUDA correlation kernels see a CorrelationGeometry: the plain CorrelationShape of
// cuda/correlation_body.h. Host-only and free of CUDA headers, so that cuda/correlation.cpp and the
// body tests (tests/cuda_host/correlation_body_test.cpp) build the kernels' arguments with the same
// code.
#pragma once

#include "core/kernel_args.h"
#include "cuda/correlation_body.h"

namespace convtape::cuda {

inline CorrelationShape correlation_shape(const CorrelationGeometry& g) {
  CorrelationShape s;
  s.batch = g.batch;
  s.channels = g.channels;
  s.height = g.height;
  s.width = g.width;
  s.radius = g.radius();
  s.border = g.border();
  s.grid_radius = g.grid_radius();
  s.grid = g.grid();
  s.stride1 = g.stride1;
  s.stride2 = g.stride2;
  s.padding = g.padding;
  s.out_height = g.out_height();
  s.out_width = g.out_width();
  return s;
}

}  // namespace convtape::cuda
