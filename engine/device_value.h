// A small block of memory on a device that the host rewrites between steps (optimizer
// hyperparameters, pointer tables). Kernels read it in place, so a captured CUDA graph sees the
// new values on replay. Writes are asynchronous uploads (see copy_bytes): no stream sync.
#pragma once

#include <cstddef>

#include "muonrec/engine/allocator.h"

namespace muonrec {

class DeviceValue {
 public:
  DeviceValue(size_t bytes, Device device) : storage_(bytes, device) {}

  void* device_ptr() const { return storage_.data(); }
  size_t bytes() const { return storage_.bytes(); }
  // Copies `bytes` (at most bytes()) from host memory into the device block, ordered on the stream.
  void write(const void* src, size_t bytes);

 private:
  Storage storage_;
};

}  // namespace muonrec
