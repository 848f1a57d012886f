// Element types and the bf16 <-> f32 conversions shared by host and device code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace muonrec {

enum class DType : uint8_t { F32, BF16, I32, I64 };

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);
// Parses the names used by safetensors ("F32", "BF16", "I32", "I64"); throws on anything else.
DType dtype_from_safetensors(const std::string& name);

// bf16 is the upper half of an IEEE f32. Rounding to nearest even keeps conversions unbiased.
inline uint16_t f32_to_bf16_bits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu)) return 0x7fc0;  // NaN stays NaN
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

inline float bf16_bits_to_f32(uint16_t half) {
  uint32_t bits = static_cast<uint32_t>(half) << 16;
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

}  // namespace muonrec
