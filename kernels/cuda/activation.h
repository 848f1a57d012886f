// CUDA launchers: pointwise activations and their derivatives (contracts of kernels/cpu/activation.h).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "muonrec/kernels/cpu/activation.h"  // muonrec::kernels::Activation

namespace muonrec::kernels::cuda {

void activation_forward(Activation kind, const float* x, float* y, int64_t n, cudaStream_t stream);
// dx = dy * f'(x)
void activation_backward(Activation kind, const float* x, const float* dy, float* dx, int64_t n,
                         cudaStream_t stream);

}  // namespace muonrec::kernels::cuda
