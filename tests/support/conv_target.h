// For tests that ask the conv plan what a call will run (cpu/conv_plan.h): a geometry builder, and
// the plan's machine side as cpu/conv.cpp fills it for a call.
#pragma once

#include <omp.h>

#include "cpu/conv_plan.h"
#include "cpu/gemm_kernel.h"
#include "cpu/isa.h"
#include "cpu/parallel.h"

namespace ct_test {

// A resolved conv geometry with padding lo below and hi above each dim, unit input dilation and
// stride `stride` (empty: 1 in every dim):
// out = (in + lo + hi - dil (k - 1) - 1) / stride + 1 per dim.
inline convtape::ConvGeometry conv_geometry(std::int64_t n, std::int64_t c, std::int64_t k,
                                            std::int64_t groups, const convtape::Shape& in,
                                            const convtape::Shape& kernel,
                                            const convtape::Shape& dil, const convtape::Shape& lo,
                                            const convtape::Shape& hi,
                                            const convtape::Shape& stride = {}) {
  convtape::ConvGeometry g;
  g.batch = n;
  g.channels = c;
  g.out_channels = k;
  g.groups = groups;
  g.in = in;
  g.kernel = kernel;
  g.dilation = dil;
  g.pad_lo = lo;
  for (std::size_t d = 0; d < in.size(); ++d) {
    g.stride.push_back(stride.empty() ? 1 : stride[d]);
    g.input_dilation.push_back(1);
    g.out.push_back((in[d] + lo[d] + hi[d] - dil[d] * (kernel[d] - 1) - 1) / g.stride[d] + 1);
  }
  return g;
}

// dtype on the ISA path in effect, with its GEMM kernel's blocking, plan_threads(), the team and
// the exact switch.
inline convtape::cpu::ConvTarget call_target(convtape::DType dtype, bool exact = false) {
  namespace cpu = convtape::cpu;
  cpu::ConvTarget t;
  t.dtype = dtype;
  t.isa = cpu::isa();
  if (dtype == convtape::DType::Float32) {
    const auto& k = cpu::gemm_kernel<float>();
    t.gemm = {k.mr, k.nr, k.kc, k.mc, k.nc};
  } else {
    const auto& k = cpu::gemm_kernel<double>();
    t.gemm = {k.mr, k.nr, k.kc, k.mc, k.nc};
  }
  t.threads = cpu::plan_threads();
  t.team = omp_get_max_threads();
  t.exact = exact;
  return t;
}

}  // namespace ct_test
