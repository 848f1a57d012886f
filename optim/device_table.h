// A host table of plain structs (pointer tables, chunk lists) mirrored in a device's memory for
// the fused optimizer kernels. It is uploaded again only when its bytes change (a buffer moved, a
// parameter gained or lost its gradient), so a steady training loop uploads nothing.
#pragma once

#include <cstring>
#include <memory>
#include <vector>

#include "muonrec/engine/device_value.h"

namespace muonrec {

template <typename T>
class DeviceTable {
 public:
  // Makes the copy on `device` equal to `entries` (T must have no padding bytes) and returns it.
  const T* sync(const std::vector<T>& entries, Device device) {
    const size_t bytes = entries.size() * sizeof(T);
    const bool same = on_device_ && device_ == device && entries.size() == host_.size() &&
                      (bytes == 0 || std::memcmp(entries.data(), host_.data(), bytes) == 0);
    if (!same) {
      host_ = entries;
      device_ = device;
      on_device_ = std::make_unique<DeviceValue>(bytes, device);
      on_device_->write(host_.data(), bytes);
    }
    return static_cast<const T*>(on_device_->device_ptr());
  }

 private:
  std::vector<T> host_;
  Device device_ = Device::CPU;
  std::unique_ptr<DeviceValue> on_device_;
};

}  // namespace muonrec
