#include "engine/device_value.h"

#include <cstring>

#include "engine/error.h"
#ifdef MUONREC_WITH_CUDA
#include "engine/cuda_check.h"
#endif

namespace muonrec {

DeviceValue::DeviceValue(size_t bytes, Device device) : storage_(bytes, device) {
#ifdef MUONREC_WITH_CUDA
  if (device == Device::CUDA) {
    CUDA_CHECK(cudaMallocHost(&staging_, bytes));
    cudaEvent_t event;
    CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
    copy_done_ = event;
  }
#endif
}

DeviceValue::~DeviceValue() {
#ifdef MUONREC_WITH_CUDA
  if (copy_done_) {
    cudaEventSynchronize(static_cast<cudaEvent_t>(copy_done_));
    cudaEventDestroy(static_cast<cudaEvent_t>(copy_done_));
  }
  if (staging_) cudaFreeHost(staging_);
#endif
}

void DeviceValue::write(const void* src, size_t bytes) {
  MUONREC_CHECK(bytes <= storage_.bytes(), "DeviceValue: {} bytes written into a {}-byte block", bytes,
                storage_.bytes());
  if (storage_.device() == Device::CPU) {
    std::memcpy(storage_.data(), src, bytes);
    return;
  }
#ifdef MUONREC_WITH_CUDA
  auto event = static_cast<cudaEvent_t>(copy_done_);
  CUDA_CHECK(cudaEventSynchronize(event));  // the previous copy has read the staging buffer
  std::memcpy(staging_, src, bytes);
  CUDA_CHECK(cudaMemcpyAsync(storage_.data(), staging_, bytes, cudaMemcpyHostToDevice, current_stream()));
  CUDA_CHECK(cudaEventRecord(event, current_stream()));
#endif
}

}  // namespace muonrec
