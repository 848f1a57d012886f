// CUDA launchers: optimizer updates (contracts of kernels/cpu/optimizer.h).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace muonrec::kernels::cuda {

// One AdamW step (torch.optim.AdamW): p *= 1 - lr*wd; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
// p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps). `step` is t, counted from 1.
void adamw_step(float* param, const float* grad, float* m, float* v, int64_t n, float lr, float beta1, float beta2,
                float eps, float weight_decay, int64_t step, cudaStream_t stream);

}  // namespace muonrec::kernels::cuda
