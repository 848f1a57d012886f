#include "engine/allocator.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "engine/error.h"
#ifdef MUONREC_WITH_CUDA
#include "engine/cuda_check.h"
#endif

namespace muonrec {
namespace {

std::atomic<size_t> g_allocated[2];

constexpr size_t kHostAlignment = 64;  // a cache line: vector loads never split lines

}  // namespace

Storage::Storage(size_t bytes, Device device) : bytes_(bytes), device_(device) {
  if (bytes == 0) return;
  if (device == Device::CPU) {
    size_t rounded = (bytes + kHostAlignment - 1) / kHostAlignment * kHostAlignment;
    data_ = std::aligned_alloc(kHostAlignment, rounded);
    MUONREC_CHECK(data_ != nullptr, "out of host memory allocating {} bytes", bytes);
  } else {
#ifdef MUONREC_WITH_CUDA
    CUDA_CHECK(cudaMallocAsync(&data_, bytes, current_stream()));
#else
    MUONREC_FAIL("this build of muonrec has no CUDA backend");
#endif
  }
  g_allocated[static_cast<int>(device)] += bytes;
}

Storage::~Storage() {
  if (!data_) return;
  g_allocated[static_cast<int>(device_)] -= bytes_;
  if (device_ == Device::CPU) {
    std::free(data_);
  } else {
#ifdef MUONREC_WITH_CUDA
    cudaFreeAsync(data_, current_stream());  // no throw from a destructor
#endif
  }
}

size_t allocated_bytes(Device device) { return g_allocated[static_cast<int>(device)]; }

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
  if (bytes == 0) return;
  if (dst_device == Device::CPU && src_device == Device::CPU) {
    std::memcpy(dst, src, bytes);
    return;
  }
#ifdef MUONREC_WITH_CUDA
  cudaMemcpyKind kind = src_device == Device::CPU ? cudaMemcpyHostToDevice
                        : dst_device == Device::CPU ? cudaMemcpyDeviceToHost
                                                    : cudaMemcpyDeviceToDevice;
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, kind, current_stream()));
  // Host memory is pageable: the host side must not be touched before the copy completes.
  if (kind != cudaMemcpyDeviceToDevice) CUDA_CHECK(cudaStreamSynchronize(current_stream()));
#else
  MUONREC_FAIL("this build of muonrec has no CUDA backend");
#endif
}

void fill_bytes(void* dst, Device device, int value, size_t bytes) {
  if (bytes == 0) return;
  if (device == Device::CPU) {
    std::memset(dst, value, bytes);
    return;
  }
#ifdef MUONREC_WITH_CUDA
  CUDA_CHECK(cudaMemsetAsync(dst, value, bytes, current_stream()));
#endif
}

}  // namespace muonrec
