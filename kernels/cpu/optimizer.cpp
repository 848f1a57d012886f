#include "kernels/cpu/optimizer.h"

#include <cmath>

namespace muonrec::kernels::cpu {

void adamw_step(float* param, const float* grad, float* m, float* v, int64_t n, float lr, float beta1, float beta2,
                float eps, float weight_decay, int64_t step) {
  // Bias corrections in double, as torch computes them on the host.
  const double bc1 = 1.0 - std::pow(static_cast<double>(beta1), static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(static_cast<double>(beta2), static_cast<double>(step));
  const float step_size = static_cast<float>(lr / bc1);
  const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  for (int64_t i = 0; i < n; ++i) {
    param[i] *= 1.0f - lr * weight_decay;
    m[i] += (1.0f - beta1) * (grad[i] - m[i]);  // torch's lerp form, for bitwise-close moments
    v[i] = beta2 * v[i] + (1.0f - beta2) * grad[i] * grad[i];
    float denom = std::sqrt(v[i]) / bc2_sqrt + eps;
    param[i] -= step_size * m[i] / denom;
  }
}

}  // namespace muonrec::kernels::cpu
