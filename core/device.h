// Where a tensor's storage lives: the host (CPU) or one CUDA device.
#pragma once

#include <string>

namespace convtape {

enum class DeviceType : unsigned char { CPU, CUDA };

class Device {
 public:
  constexpr Device() = default;
  constexpr Device(DeviceType type, int index)
      : type_(type), index_(type == DeviceType::CPU ? 0 : index) {}
  static constexpr Device cpu() { return {DeviceType::CPU, 0}; }
  // CUDA device `index`, after checking that it exists: the first call opens the CUDA backend
  // library (cuda/backend_table.h). Throws "convtape: this installation has no CUDA backend (...)",
  // "convtape: no CUDA device (...)" or "Device::cuda: expected a CUDA device index in [0, n),
  // got i". Device(DeviceType::CUDA, i) names a device without checking.
  static Device cuda(int index = 0);

  constexpr DeviceType type() const { return type_; }
  constexpr int index() const { return index_; }
  constexpr bool is_cpu() const { return type_ == DeviceType::CPU; }
  constexpr bool is_cuda() const { return type_ == DeviceType::CUDA; }
  std::string str() const {
    return is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(index_);
  }

  friend constexpr bool operator==(Device a, Device b) = default;

 private:
  DeviceType type_ = DeviceType::CPU;
  int index_ = 0;
};

inline constexpr Device kCPU = Device::cpu();

}  // namespace convtape
