#include "muonrec/engine/allocator.h"

#include <atomic>
#include <cstring>
#include <mutex>

#include "muonrec/engine/error.h"
#include "muonrec/engine/host_block_cache.h"
#ifdef MUONREC_WITH_CUDA
#include "muonrec/engine/cuda_check.h"
#endif

namespace muonrec {
namespace {

std::atomic<size_t> g_allocated[2];
std::atomic<size_t> g_peak[2];  // the most g_allocated held since the start or the last reset

void add_allocated(Device device, size_t bytes) {
  const int d = static_cast<int>(device);
  const size_t now = g_allocated[d] += bytes;
  size_t peak = g_peak[d].load();
  while (now > peak && !g_peak[d].compare_exchange_weak(peak, now)) {
  }
}

#ifdef MUONREC_WITH_CUDA
// Host-to-device uploads up to a slot's size go through pinned staging slots: the host copies into
// a slot and queues an asynchronous copy, so it never waits for the GPU to drain (the batch of the
// next step is prepared while this one runs). A slot is reused only once its last copy is done.
class UploadStaging {
 public:
  static constexpr int kSlots = 8;
  static constexpr size_t kSlotBytes = 4u << 20;

  // False when the upload is too large for a slot (the caller copies synchronously instead).
  bool upload(void* dst, const void* src, size_t bytes, cudaStream_t stream) {
    if (bytes > kSlotBytes) return false;
    std::lock_guard<std::mutex> lock(mutex_);
    if (!slots_[0].host) allocate();
    Slot& slot = slots_[next_];
    next_ = (next_ + 1) % kSlots;
    CUDA_CHECK(cudaEventSynchronize(slot.done));  // its previous copy has read the slot
    std::memcpy(slot.host, src, bytes);
    CUDA_CHECK(cudaMemcpyAsync(dst, slot.host, bytes, cudaMemcpyHostToDevice, stream));
    CUDA_CHECK(cudaEventRecord(slot.done, stream));
    return true;
  }

 private:
  struct Slot {
    void* host = nullptr;
    cudaEvent_t done = nullptr;
  };
  void allocate() {
    for (Slot& slot : slots_) {
      CUDA_CHECK(cudaMallocHost(&slot.host, kSlotBytes));
      CUDA_CHECK(cudaEventCreateWithFlags(&slot.done, cudaEventDisableTiming));
    }
  }
  std::mutex mutex_;
  Slot slots_[kSlots];
  int next_ = 0;
};

UploadStaging& upload_staging() {
  static UploadStaging staging;  // lives as long as the process: its pinned memory is never freed
  return staging;
}
#endif

}  // namespace

Storage::Storage(size_t bytes, Device device) : bytes_(bytes), device_(device) {
  if (bytes == 0) return;
  if (device == Device::CPU) {
    data_ = host_allocate(bytes);
  } else {
#ifdef MUONREC_WITH_CUDA
    CUDA_CHECK(cudaMallocAsync(&data_, bytes, current_stream()));
#else
    MUONREC_FAIL("this build of muonrec has no CUDA backend");
#endif
  }
  add_allocated(device, bytes);
}

Storage::~Storage() {
  if (!data_) return;
  g_allocated[static_cast<int>(device_)] -= bytes_;
  if (device_ == Device::CPU) {
    host_release(data_, bytes_);
  } else {
#ifdef MUONREC_WITH_CUDA
    cudaFreeAsync(data_, current_stream());  // no throw from a destructor
#endif
  }
}

size_t allocated_bytes(Device device) { return g_allocated[static_cast<int>(device)]; }
size_t peak_allocated_bytes(Device device) { return g_peak[static_cast<int>(device)]; }
void reset_peak_allocated_bytes(Device device) {
  g_peak[static_cast<int>(device)] = g_allocated[static_cast<int>(device)].load();
}

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
  if (kind == cudaMemcpyHostToDevice && upload_staging().upload(dst, src, bytes, current_stream())) return;
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
