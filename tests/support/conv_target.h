// The conv plan's machine side as cpu/conv.cpp fills it for a call, for tests that ask the plan
// what a call will run (cpu/conv_plan.h).
#pragma once

#include <omp.h>

#include "cpu/conv_plan.h"
#include "cpu/gemm_kernel.h"
#include "cpu/isa.h"
#include "cpu/parallel.h"

namespace ct_test {

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
