#include "muonrec/engine/device_value.h"

#include "muonrec/engine/error.h"

namespace muonrec {

void DeviceValue::write(const void* src, size_t bytes) {
  MUONREC_CHECK(bytes <= storage_.bytes(), "DeviceValue: {} bytes written into a {}-byte block", bytes,
                storage_.bytes());
  copy_bytes(storage_.data(), storage_.device(), src, Device::CPU, bytes);
}

}  // namespace muonrec
