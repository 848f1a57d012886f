#include "muonrec/engine/device.h"

#include "muonrec/engine/error.h"
#ifdef MUONREC_WITH_CUDA
#include <cstdint>

#include "muonrec/engine/cuda_check.h"
#endif

namespace muonrec {

const char* device_name(Device device) { return device == Device::CPU ? "cpu" : "cuda"; }

#ifdef MUONREC_WITH_CUDA
namespace {

struct CudaContext {
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;

  CudaContext() {
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    int device = 0;
    CUDA_CHECK(cudaGetDevice(&device));
    cudaMemPool_t pool;
    CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device));
    // Keep freed blocks cached in the pool instead of returning them to the driver at every sync.
    uint64_t threshold = UINT64_MAX;
    CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold));
    CUBLAS_CHECK(cublasCreate(&cublas));
    CUBLAS_CHECK(cublasSetStream(cublas, stream));
    // fp32 products stay fp32 (no implicit TF32) so GPU results match the CPU reference to 1e-4.
    CUBLAS_CHECK(cublasSetMathMode(cublas, CUBLAS_DEFAULT_MATH));
  }
};

CudaContext& context() {
  static CudaContext ctx;
  return ctx;
}

}  // namespace

cudaStream_t current_stream() { return context().stream; }
cublasHandle_t cublas_handle() { return context().cublas; }

bool cuda_available() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

std::string cuda_unavailable_reason() {
  int count = 0;
  cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) return fmt::format("no usable GPU: {}", cudaGetErrorString(status));
  if (count == 0) return "no GPU is visible";
  return "";
}

void device_synchronize() {
  if (cuda_available()) CUDA_CHECK(cudaStreamSynchronize(current_stream()));
}
#else
bool cuda_available() { return false; }
std::string cuda_unavailable_reason() { return "this build of muonrec has no CUDA backend"; }
void device_synchronize() {}
#endif

Device parse_device(const std::string& name) {
  if (name == "cpu") return Device::CPU;
  if (name == "cuda" || name == "gpu") {
    MUONREC_CHECK(cuda_available(), "device 'cuda' requested but {}", cuda_unavailable_reason());
    return Device::CUDA;
  }
  if (name == "auto") return cuda_available() ? Device::CUDA : Device::CPU;
  MUONREC_FAIL("unknown device '{}' (expected auto, cpu or cuda)", name);
}

}  // namespace muonrec
