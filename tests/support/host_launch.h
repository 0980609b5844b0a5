// Runs a CUDA kernel functor (cuda/device_fn.h) on the host: f(i) for every i in [0, n), in order.
// The body tests use it to check the device index maths against the CPU backend without a GPU.
#pragma once

#include <cstdint>

namespace ct_test {

template <class F>
void run_on_host(std::int64_t n, const F& f) {
  for (std::int64_t i = 0; i < n; ++i) f(i);
}

}  // namespace ct_test
