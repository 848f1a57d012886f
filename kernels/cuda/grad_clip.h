// CUDA launcher: global-norm gradient clipping (contract of kernels/cpu/grad_clip.h); norm is a
// device pointer, and nothing is read back to the host.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace muonrec::kernels::cuda {

void clip_grad_norm(float* grad, int64_t n, float max_norm, float* norm, cudaStream_t stream);

}  // namespace muonrec::kernels::cuda
