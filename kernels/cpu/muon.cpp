#include "muonrec/kernels/cpu/muon.h"

#include <algorithm>
#include <cmath>

#include "muonrec/engine/dtype.h"

namespace muonrec::kernels::cpu {

void muon_momentum(const float* grad, float* buf, float* update, int64_t n, float momentum, bool nesterov) {
  for (int64_t i = 0; i < n; ++i) {
    buf[i] += (1.0f - momentum) * (grad[i] - buf[i]);
    // torch's lerp with weight >= 0.5 evaluates end - (end - start) * (1 - weight).
    update[i] = nesterov ? buf[i] - (buf[i] - grad[i]) * (1.0f - momentum) : buf[i];
  }
}

void sum_squares(const float* x, float* out, int64_t n) {
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) total += static_cast<double>(x[i]) * x[i];
  out[0] = static_cast<float>(total);
}

void scale_by_inverse_norm(float* x, const float* sum_sq, float norm_factor, float eps, bool bf16_norm, int64_t n) {
  float norm = std::sqrt(sum_sq[0]);
  if (bf16_norm) norm = bf16_bits_to_f32(f32_to_bf16_bits(norm));
  const float inv = 1.0f / std::max(norm * norm_factor, eps);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void round_to_bf16(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = bf16_bits_to_f32(f32_to_bf16_bits(x[i]));
}

void decay_and_add(float* param, const float* update, int64_t n, float decay, float alpha) {
  for (int64_t i = 0; i < n; ++i) param[i] = param[i] * decay + alpha * update[i];
}

}  // namespace muonrec::kernels::cpu
