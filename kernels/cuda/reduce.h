// CUDA launchers: reductions and broadcasts (contracts of kernels/cpu/reduce.h). The reductions run
// in a fixed order (no float atomics), so results are bit-identical from run to run.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace muonrec::kernels::cuda {

// out[0] = sum of x (one element, on the device).
void sum_all(const float* x, float* out, int64_t n, cudaStream_t stream);
// out[j] = sum over i < outer of x[i * inner + j]  (the gradient of a broadcast over leading axes).
void sum_leading(const float* x, float* out, int64_t outer, int64_t inner, cudaStream_t stream);
// out[i] = scalar[0] * factor  (scalar is a one-element device array, e.g. an upstream gradient).
void broadcast_scalar(const float* scalar, float factor, float* out, int64_t n, cudaStream_t stream);

}  // namespace muonrec::kernels::cuda
