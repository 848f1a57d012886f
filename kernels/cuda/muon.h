// CUDA twins of kernels/cpu/muon.h (same names and arguments, plus the stream).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace muonrec::kernels::cuda {

void muon_momentum(const float* grad, float* buf, float* update, int64_t n, float momentum, bool nesterov,
                   cudaStream_t stream);
void sum_squares(const float* x, float* out, int64_t n, cudaStream_t stream);
void scale_by_inverse_norm(float* x, const float* sum_sq, float norm_factor, float eps, bool bf16_norm, int64_t n,
                           cudaStream_t stream);
void round_to_bf16(float* x, int64_t n, cudaStream_t stream);
void decay_and_add(float* param, const float* update, int64_t n, float decay, float alpha, cudaStream_t stream);

}  // namespace muonrec::kernels::cuda
