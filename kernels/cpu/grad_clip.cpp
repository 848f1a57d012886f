#include "muonrec/kernels/cpu/grad_clip.h"

#include <cmath>

namespace muonrec::kernels::cpu {

void clip_grad_norm(float* grad, int64_t n, float max_norm, float* norm) {
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) total += static_cast<double>(grad[i]) * grad[i];
  norm[0] = static_cast<float>(std::sqrt(total));
  const float coefficient = max_norm / (norm[0] + 1e-6f);
  if (coefficient >= 1.0f) return;
  for (int64_t i = 0; i < n; ++i) grad[i] *= coefficient;
}

}  // namespace muonrec::kernels::cpu
