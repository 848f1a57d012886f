// Checked CUDA/cuBLAS calls and the engine's stream and cuBLAS handle. Included only where
// MUONREC_WITH_CUDA is set (the CUDA translation units and the dispatching engine ops).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "muonrec/engine/error.h"

#define CUDA_CHECK(call)                                                                     \
  do {                                                                                       \
    cudaError_t status_ = (call);                                                            \
    if (status_ != cudaSuccess)                                                              \
      ::muonrec::throw_error(__FILE__, __LINE__,                                             \
                             fmt::format("CUDA error {} in {}", cudaGetErrorString(status_), #call)); \
  } while (0)

#define CUBLAS_CHECK(call)                                                                        \
  do {                                                                                            \
    cublasStatus_t status_ = (call);                                                              \
    if (status_ != CUBLAS_STATUS_SUCCESS)                                                         \
      ::muonrec::throw_error(__FILE__, __LINE__,                                                  \
                             fmt::format("cuBLAS error {} in {}", cublasGetStatusString(status_), #call)); \
  } while (0)

// Every launch is followed by this: a bad configuration surfaces at its launcher, not later.
#define CUDA_LAUNCH_CHECK() CUDA_CHECK(cudaGetLastError())

namespace muonrec {

// The stream all engine work is queued on. Stream-ordered allocation and graph capture both rely on
// the step running on one stream.
cudaStream_t current_stream();
cublasHandle_t cublas_handle();

inline unsigned ceil_div(size_t n, unsigned block) { return static_cast<unsigned>((n + block - 1) / block); }

}  // namespace muonrec
