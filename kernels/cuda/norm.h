// CUDA launchers: layer norm and L2 normalization over the last axis (contracts of kernels/cpu/norm.h).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace muonrec::kernels::cuda {

// y = (x - mean) * rstd * weight + bias; weight and bias may be null. Saves mean and rstd per row.
void layer_norm_forward(const float* x, const float* weight, const float* bias, float* y, float* mean, float* rstd,
                        int64_t rows, int64_t cols, float eps, cudaStream_t stream);
// Writes dx, and (when non-null) dweight and dbias summed over rows in a fixed order (deterministic).
void layer_norm_backward(const float* x, const float* weight, const float* mean, const float* rstd, const float* dy,
                         float* dx, float* dweight, float* dbias, int64_t rows, int64_t cols, cudaStream_t stream);

// y = x / max(||x||, eps); saves the row norms.
void l2_normalize_forward(const float* x, float* y, float* norm, int64_t rows, int64_t cols, float eps,
                          cudaStream_t stream);
void l2_normalize_backward(const float* x, const float* norm, const float* dy, float* dx, int64_t rows, int64_t cols,
                           float eps, cudaStream_t stream);

}  // namespace muonrec::kernels::cuda
