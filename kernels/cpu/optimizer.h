// CPU reference: optimizer updates.
#pragma once

#include <cstdint>

namespace muonrec::kernels::cpu {

// One AdamW step (torch.optim.AdamW): p *= 1 - lr*wd; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
// p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps). `step` is t, counted from 1.
void adamw_step(float* param, const float* grad, float* m, float* v, int64_t n, float lr, float beta1, float beta2,
                float eps, float weight_decay, int64_t step);

}  // namespace muonrec::kernels::cpu
