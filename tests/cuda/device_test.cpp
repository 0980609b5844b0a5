// CUDA device plumbing: allocation, fill, host <-> device copies, conversions and views.
// Runs only where a CUDA device is present (the test main reports a skip otherwise).
#include "support/test_util.h"

using namespace convtape;

TEST_CASE("tensors round-trip between host and device", "[cuda]") {
  REQUIRE(cuda::device_count() > 0);
  const Tensor x = arange(12, kFloat64).reshape({3, 4});
  const Tensor d = x.to(Device::cuda());
  CHECK(d.is_cuda());
  CHECK(d.device() == Device::cuda(0));
  CHECK(ct_test::equal(d.cpu(), x));
  // A non-contiguous device view comes back with the right values.
  CHECK(d.transpose(0, 1).cpu().to_vector<double>() ==
        x.transpose(0, 1).contiguous().to_vector<double>());
  CHECK(ct_test::equal(d.to(kFloat32).cpu(), x.to(kFloat32)));
  CHECK(ct_test::equal(d.clone().cpu(), x));
}

TEST_CASE("device factories, fill and copy_", "[cuda]") {
  const Tensor z = zeros({5}, TensorOptions(kFloat32).device(Device::cuda()));
  CHECK(z.cpu().to_vector<float>() == std::vector<float>(5, 0.0f));
  Tensor f = full({2, 2}, 3.5, TensorOptions(kFloat64).device(Device::cuda()));
  CHECK(f.cpu().to_vector<double>() == std::vector<double>(4, 3.5));
  f.fill_(-1.0);
  CHECK(f.cpu().to_vector<double>() == std::vector<double>(4, -1.0));
  f.copy_(tensor({1, 2}, kFloat32));
  CHECK(f.cpu().to_vector<double>() == std::vector<double>{1, 2, 1, 2});
  CHECK(f.narrow(0, 1, 1).narrow(1, 1, 1).item() == 2.0);
  CHECK(randn({3}, TensorOptions().device(Device::cuda())).is_cuda());
}

TEST_CASE("element access on device tensors", "[cuda]") {
  Tensor d = zeros({2, 3}, Device::cuda());
  CT_REQUIRE_ERROR(d.at<float>({0, 0}), "at: expected a CPU tensor, got one on cuda:0");
  d.put_({1, 2}, 5.0);
  d.put_({0, -1}, -2.0);
  CHECK(d.cpu().to_vector<float>() == std::vector<float>{0, 0, -2, 0, 0, 5});
  CHECK(d.narrow(0, 1, 1).narrow(1, 2, 1).item() == 5.0);
  CT_REQUIRE_ERROR(d.put_({2, 0}, 1.0), "put_: expected index 0 in [-2, 2)");
}
