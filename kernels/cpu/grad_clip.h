// CPU reference: global-norm gradient clipping over one flat gradient buffer (the arena).
#pragma once

#include <cstdint>

namespace muonrec::kernels::cpu {

// norm[0] = ||grad||_2; then grad *= min(1, max_norm / (norm + 1e-6)) (torch.nn.utils.clip_grad_norm_).
void clip_grad_norm(float* grad, int64_t n, float max_norm, float* norm);

}  // namespace muonrec::kernels::cpu
