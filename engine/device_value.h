// A small block of memory on a device that the host rewrites between steps (optimizer
// hyperparameters, pointer tables). Kernels read it in place, so a captured CUDA graph sees the
// new values on replay. On the GPU a write goes through pinned staging with an async copy: it never
// waits for the stream, except to keep the host at most one write ahead of the copy.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "engine/allocator.h"

namespace muonrec {

class DeviceValue {
 public:
  DeviceValue(size_t bytes, Device device);
  ~DeviceValue();
  DeviceValue(const DeviceValue&) = delete;
  DeviceValue& operator=(const DeviceValue&) = delete;

  void* device_ptr() const { return storage_.data(); }
  size_t bytes() const { return storage_.bytes(); }
  // Copies `bytes` (at most bytes()) from host memory into the device block, ordered on the stream.
  void write(const void* src, size_t bytes);

 private:
  Storage storage_;
  void* staging_ = nullptr;    // pinned host memory (GPU only)
  void* copy_done_ = nullptr;  // cudaEvent_t after the last async copy (GPU only)
};

}  // namespace muonrec
