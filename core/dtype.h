// Element types. float32 and float64 are the differentiable types; int64 holds indices and labels
// (argmax, index_select, class labels) and takes part in no arithmetic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>

namespace convtape {

enum class DType : std::uint8_t { Float32, Float64, Int64 };

inline constexpr DType kFloat32 = DType::Float32;
inline constexpr DType kFloat64 = DType::Float64;
inline constexpr DType kInt64 = DType::Int64;

constexpr std::size_t dtype_size(DType t) noexcept {
  return t == DType::Float32 ? 4 : 8;
}

constexpr std::string_view dtype_name(DType t) noexcept {
  switch (t) {
    case DType::Float32:
      return "float32";
    case DType::Float64:
      return "float64";
    case DType::Int64:
      return "int64";
  }
  return "?";
}

constexpr bool is_floating(DType t) noexcept {
  return t != DType::Int64;
}

// The DType of a C++ element type.
template <class T>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, float>)
    return DType::Float32;
  else if constexpr (std::is_same_v<T, double>)
    return DType::Float64;
  else {
    static_assert(std::is_same_v<T, std::int64_t>,
                  "convtape tensors hold float, double or int64_t");
    return DType::Int64;
  }
}

// Calls f.template operator()<T>() with T the C++ type of a floating dtype.
template <class F>
decltype(auto) dispatch_floating(DType t, F&& f) {
  if (t == DType::Float64) return f.template operator()<double>();
  return f.template operator()<float>();
}

// As dispatch_floating, over all three dtypes.
template <class F>
decltype(auto) dispatch_all(DType t, F&& f) {
  if (t == DType::Float64) return f.template operator()<double>();
  if (t == DType::Int64) return f.template operator()<std::int64_t>();
  return f.template operator()<float>();
}

}  // namespace convtape
