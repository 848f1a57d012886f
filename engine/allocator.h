// Storage for tensor data. CPU: 64-byte aligned host memory, reused through engine/host_block_cache.h.
// CUDA: stream-ordered allocation from a pool whose release threshold keeps freed memory cached, so
// steady-state training allocates nothing from the driver (and a captured step can replay).
#pragma once

#include <cstddef>
#include <memory>

#include "muonrec/engine/device.h"

namespace muonrec {

class Storage {
 public:
  Storage(size_t bytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_;
};

// Bytes currently held by live storages on each device (for memory reports and leak tests).
size_t allocated_bytes(Device device);
// The most allocated_bytes has been since the process started or since the last reset (which sets
// it to what is allocated now): what a training step needs at its peak.
size_t peak_allocated_bytes(Device device);
void reset_peak_allocated_bytes(Device device);

// Copies between any two devices; the copy is ordered on the engine stream. Host-to-device copies
// of up to 4 MiB return at once (staged through pinned memory); the others return when the host
// side may be reused.
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes);
// Sets every byte to value (used for zero-fill and for poisoning outputs in tests).
void fill_bytes(void* dst, Device device, int value, size_t bytes);

}  // namespace muonrec
