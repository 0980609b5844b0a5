// The cross-backend op harness (docs: DESIGN.md, habit 5). An op test states once a name, a
// function of tensors, its inputs (float64 CPU tensors; those that require grad are differentiated,
// int64 ones such as indices and labels pass through unchanged) and a tolerance per dtype, and
// OpCheck::run() checks from that:
//  (a) CPU float32 against CPU float64: the output, and the gradient of every input that requires
//      grad for one fixed random upstream gradient. Both runs see the inputs and the upstream
//      gradient rounded to float32, so that only the float32 arithmetic is measured.
//  (b) CUDA against CPU, float32 and float64: the output and the same gradients, which must live on
//      the device. Without a GPU each comparison is skipped and counted; the test mains print the
//      count and cuda::unavailable_reason() at exit (report_skipped_cuda_checks).
//  (c) a float64 gradcheck (convtape::gradcheck) on the CPU, and on the GPU when there is one.
//  (d) error cases, each a function, its inputs and a message substring: on every available device
//      (the inputs moved there with to(device), so values and dtypes stay, strides do not) the call
//      must throw convtape::Error whose message contains the substring.
// The comparisons are close() and identical() below, which every test comparing tensors shares.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "support/test_util.h"

namespace ct_test {

using OpFn = std::function<convtape::Tensor(const std::vector<convtape::Tensor>&)>;

// Element by element |got - want| <= atol + rtol |want|; NaN matches NaN and equal values match
// (infinities included). With atol_scaled, atol is multiplied by max(1, largest finite |want|):
// a long sum is off by about its partial sums times the epsilon, which that magnitude bounds, so a
// fixed atol fails the elements near zero of a correct result.
struct Tolerance {
  double rtol = 0.0;
  double atol = 0.0;
  bool atol_scaled = false;
  Tolerance times(double factor) const { return {rtol * factor, atol * factor, atol_scaled}; }
};
// Equal values (NaN matches NaN, -0 matches 0).
inline constexpr Tolerance kExact{};
// float32 1e-4 / 1e-5, float64 1e-12 / 1e-12, int64 exact.
Tolerance default_tolerance(convtape::DType dtype);

// got (on any device) against want: the same shape and dtype, int64 values exactly, floating ones
// within tol (by default, want's dtype's). The first mismatch is reported through UNSCOPED_INFO.
bool close(const convtape::Tensor& got, const convtape::Tensor& want, const Tolerance& tol);
bool close(const convtape::Tensor& got, const convtape::Tensor& want);
// The same shape, dtype and bits (any NaN matches any NaN; -0 does not match 0).
bool identical(const convtape::Tensor& got, const convtape::Tensor& want);

// One expected failure: fn on inputs throws convtape::Error with a message containing substring.
struct ErrorCase {
  OpFn fn;
  std::vector<convtape::Tensor> inputs;
  std::string substring;
};
// Every case on every available device (inputs moved there); those on CUDA are counted as skipped
// without a GPU.
void check_errors(const std::string& name, const std::vector<ErrorCase>& cases);

class OpCheck {
 public:
  OpCheck(std::string name, OpFn fn, std::vector<convtape::Tensor> inputs);

  // The tolerance of dtype's comparisons ((a) for float32, (b) for both), for the output and the
  // gradients, or for each on its own. Defaults: default_tolerance(dtype).
  OpCheck& tolerance(convtape::DType dtype, Tolerance output_and_gradients);
  OpCheck& tolerance(convtape::DType dtype, Tolerance output, Tolerance gradients);
  // The dtypes that run (default float32 and float64); without float32 there is no (a).
  OpCheck& dtypes(std::vector<convtape::DType> dtypes);
  // (b) alone: the tests/cuda files, whose CPU checks of the same ops live in tests/ops.
  OpCheck& cuda_only();
  // No (c): inputs at kinks or ties, empty tensors (a gradcheck with every gradient zero fails).
  OpCheck& no_gradcheck();
  OpCheck& gradcheck_options(const convtape::GradcheckOptions& options);
  // The seed of the upstream gradient, uniform in [-1, 1) (default 1).
  OpCheck& upstream_seed(std::uint64_t seed);
  // (d): the checked function, or another one, on these inputs.
  OpCheck& error(std::vector<convtape::Tensor> inputs, std::string substring);
  OpCheck& error(OpFn fn, std::vector<convtape::Tensor> inputs, std::string substring);

  void run() const;

 private:
  const Tolerance& output_tolerance(convtape::DType dtype) const;
  const Tolerance& gradient_tolerance(convtape::DType dtype) const;

  std::string name_;
  OpFn fn_;
  std::vector<convtape::Tensor> inputs_;
  Tolerance f32_output_, f32_gradients_, f64_output_, f64_gradients_;
  std::vector<convtape::DType> dtypes_;
  bool cpu_checks_ = true;
  bool gradcheck_ = true;
  convtape::GradcheckOptions gradcheck_options_;
  std::uint64_t upstream_seed_ = 1;
  std::vector<ErrorCase> errors_;
};

// What the harness skipped for want of a GPU in this process.
struct SkippedCudaChecks {
  int comparisons = 0;  // (b), one per dtype
  int gradchecks = 0;   // (c) on the GPU
  int errors = 0;       // (d) on the GPU, one per case
};
SkippedCudaChecks skipped_cuda_checks();
// Prints "op_check: N CPU-vs-CUDA comparisons, ... skipped: <cuda::unavailable_reason()>" when
// anything was skipped; the test mains call it once the tests have run.
void report_skipped_cuda_checks();

}  // namespace ct_test
