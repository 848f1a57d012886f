#include "kernels/cpu/loss.h"

#include <algorithm>
#include <cmath>

namespace muonrec::kernels::cpu {

void cross_entropy_forward(const float* logits, const int64_t* targets, float* loss, float* logsumexp,
                           float* valid_count, int64_t rows, int64_t classes) {
  double total = 0.0;
  int64_t counted = 0;
#pragma omp parallel for reduction(+ : total, counted)
  for (int64_t r = 0; r < rows; ++r) {
    const float* z = logits + r * classes;
    float max_z = *std::max_element(z, z + classes);
    double sum = 0.0;
    for (int64_t c = 0; c < classes; ++c) sum += std::exp(static_cast<double>(z[c] - max_z));
    logsumexp[r] = max_z + static_cast<float>(std::log(sum));
    if (targets[r] >= 0) {
      total += logsumexp[r] - z[targets[r]];
      ++counted;
    }
  }
  valid_count[0] = static_cast<float>(counted);
  loss[0] = counted ? static_cast<float>(total / counted) : 0.0f;
}

void cross_entropy_backward(const float* logits, const int64_t* targets, const float* logsumexp,
                            const float* valid_count, const float* dloss, float* dlogits, int64_t rows,
                            int64_t classes) {
  const float factor = valid_count[0] > 0 ? dloss[0] / valid_count[0] : 0.0f;
#pragma omp parallel for
  for (int64_t r = 0; r < rows; ++r) {
    float* dz = dlogits + r * classes;
    if (targets[r] < 0) {
      std::fill(dz, dz + classes, 0.0f);
      continue;
    }
    const float* z = logits + r * classes;
    for (int64_t c = 0; c < classes; ++c) dz[c] = std::exp(z[c] - logsumexp[r]) * factor;
    dz[targets[r]] -= factor;
  }
}

}  // namespace muonrec::kernels::cpu
