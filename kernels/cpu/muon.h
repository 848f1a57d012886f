// CPU reference: the elementwise and reduction pieces of a Muon step (torch.optim.Muon). The
// Newton-Schulz products themselves go through gemm.
#pragma once

#include <cstdint>

namespace muonrec::kernels::cpu {

// buf = lerp(buf, grad, 1 - momentum); update = nesterov ? lerp(grad, buf, momentum) : buf.
void muon_momentum(const float* grad, float* buf, float* update, int64_t n, float momentum, bool nesterov);
// out[0] = sum of x^2 (double accumulation).
void sum_squares(const float* x, float* out, int64_t n);
// x *= 1 / max(sqrt(sum_sq[0]) * norm_factor, eps): Frobenius normalization, the norm read from
// memory so no host synchronisation is needed between the two kernels. With bf16_norm the norm is
// rounded to bf16 first, as torch's norm() of a bf16 tensor returns it (this matters: it moves the
// result by about 1% after five iterations).
void scale_by_inverse_norm(float* x, const float* sum_sq, float norm_factor, float eps, bool bf16_norm, int64_t n);
// x = bf16(x): rounds each value to the nearest bf16 (ties to even), kept in f32 storage. Emulates
// bf16 tensors between the Newton-Schulz products.
void round_to_bf16(float* x, int64_t n);
// param = param * decay + alpha * update  (decoupled weight decay, then the orthogonal step).
void decay_and_add(float* param, const float* update, int64_t n, float decay, float alpha);

}  // namespace muonrec::kernels::cpu
