// Devices and the CUDA backend library (core/device.h, cuda/cuda.h, cuda/backend_table.h): without
// a GPU, every way of asking for one fails with one message that says why ("convtape: no CUDA
// device" where the backend loads, "convtape: this installation has no CUDA backend" where it does
// not), never an internal op's name. The "[no_backend]" case runs only in its own processes,
// registered by tests/CMakeLists.txt with CONVTAPE_CUDA_BACKEND pointing at something that is not a
// backend, and CT_EXPECT_NO_BACKEND the reason the message must give.
#include <cstdlib>

#include "cuda/backend_table.h"
#include "cuda/cuda.h"
#include "ops/backend.h"
#include "support/test_util.h"

using namespace convtape;

namespace {
// Every way a program asks for a CUDA tensor, each failing with exactly `why`.
void require_refused(const std::string& why) {
  const Tensor x = ones({2});
  CT_REQUIRE_ERROR(Device::cuda(), why);
  CT_REQUIRE_ERROR(Device::cuda(1), why);
  CT_REQUIRE_ERROR(x.cuda(), why);
  CT_REQUIRE_ERROR(x.to(Device(DeviceType::CUDA, 0)), why);
  CT_REQUIRE_ERROR(zeros({2}, Device(DeviceType::CUDA, 0)), why);
  CT_REQUIRE_ERROR(randn({2, 2}, TensorOptions().device(Device(DeviceType::CUDA, 0))), why);
  CT_REQUIRE_ERROR(cuda::allocate("alloc_test", 16, Device(DeviceType::CUDA, 0)), why);
  CT_REQUIRE_ERROR(cuda::synchronize("sync_test", Device(DeviceType::CUDA, 0)), why);
  CHECK(cuda::device_count() == 0);
  CHECK_FALSE(cuda::is_available());
  CHECK(cuda::unavailable_reason() == why);
  // Nothing was allocated, so the statistics are zeros and releasing the cache does nothing.
  CHECK(cuda::memory_stats(Device(DeviceType::CUDA, 0)).allocations == 0);
  cuda::empty_cache();
}
}  // namespace

TEST_CASE("devices: names, and the CUDA checks that need no backend", "[device]") {
  CHECK(Device(DeviceType::CUDA, 1).str() == "cuda:1");
  CHECK(Device::cpu().str() == "cpu");
  CHECK(Device(DeviceType::CPU, 3) == Device::cpu());  // the host has one index
  CT_REQUIRE_ERROR(cuda::memory_stats(Device::cpu()), "memory_stats: expected a CUDA device");
  CT_REQUIRE_ERROR(cuda::reset_peak_memory_stats(Device::cpu()),
                   "reset_peak_memory_stats: expected a CUDA device, got cpu");
}

TEST_CASE("devices: asking for a CUDA device without a GPU fails with one clear message",
          "[device]") {
  if (cuda::is_available()) {  // tests/cuda covers real devices; here only the index check
    CT_REQUIRE_ERROR(Device::cuda(cuda::device_count()),
                     "Device::cuda: expected a CUDA device index in [0, ");
    CT_REQUIRE_ERROR(Device::cuda(-1), "Device::cuda: expected a CUDA device index in [0, ");
    return;
  }
  const std::string why = cuda::unavailable_reason();
  INFO(why);
  if (cuda::has_backend()) {
    // The backend library loads (this build made it) but the machine has no GPU.
    CHECK(why.starts_with("convtape: no CUDA device (the CUDA backend "));
    CHECK(why.find("libconvtape_cuda.so found none") != std::string::npos);
  } else {
    CHECK(why.starts_with("convtape: this installation has no CUDA backend ("));
    CHECK(why.find("libconvtape_cuda.so does not exist") != std::string::npos);
  }
  require_refused(why);
}

TEST_CASE("devices: a CUDA backend that cannot be loaded is reported, not used",
          "[.][no_backend]") {
  const char* expect = std::getenv("CT_EXPECT_NO_BACKEND");
  REQUIRE(expect != nullptr);
  REQUIRE(std::getenv("CONVTAPE_CUDA_BACKEND") != nullptr);
  CHECK_FALSE(cuda::has_backend());
  CHECK(cuda::loaded_backend() == nullptr);
  const std::string why = cuda::unavailable_reason();
  INFO(why);
  CHECK(why.starts_with("convtape: this installation has no CUDA backend ("));
  CHECK(why.find(expect) != std::string::npos);
  require_refused(why);
  // A tensor that claims a CUDA device (over host memory nothing dereferences) reaching a kernel
  // of the list: the dispatch refuses it the same way, whichever kernel it is.
  static float host[4] = {};
  auto fake = std::make_shared<Storage>(host, sizeof(host), Device(DeviceType::CUDA, 0), nullptr);
  Tensor d = Tensor::make(fake, {4}, {1}, 0, kFloat32);
  CT_REQUIRE_ERROR(backend::unary(Unary::Neg, d), why);
  CT_REQUIRE_ERROR(backend::axpy_(d, d, 1.0), why);
  CT_REQUIRE_ERROR(backend::correlation_backward_f1(d, d, CorrelationGeometry{}), why);
  CT_REQUIRE_ERROR(backend::fill(d, 1.0), why);
}
