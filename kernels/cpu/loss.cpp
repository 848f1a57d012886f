#include "muonrec/kernels/cpu/loss.h"

#include <algorithm>
#include <cmath>

#include "muonrec/kernels/cpu/vector_functions.h"

namespace muonrec::kernels::cpu {

void cross_entropy_forward(const float* logits, const int64_t* targets, float* loss, float* logsumexp,
                           float* valid_count, int64_t rows, int64_t classes) {
#pragma omp parallel for
  for (int64_t r = 0; r < rows; ++r) {
    const float* z = logits + r * classes;
    float max_z = *std::max_element(z, z + classes);
    double sum = 0.0;
    for (int64_t c = 0; c < classes; ++c) sum += std::exp(static_cast<double>(z[c] - max_z));
    logsumexp[r] = max_z + static_cast<float>(std::log(sum));
  }
  // The mean in row order, so that the loss's bits do not depend on the thread count.
  double total = 0.0;
  int64_t counted = 0;
  for (int64_t r = 0; r < rows; ++r) {
    if (targets[r] < 0) continue;
    total += logsumexp[r] - logits[r * classes + targets[r]];
    ++counted;
  }
  valid_count[0] = static_cast<float>(counted);
  loss[0] = counted ? static_cast<float>(total / counted) : 0.0f;
}

void cross_entropy_backward(const float* logits, const int64_t* targets, const float* logsumexp,
                            const float* valid_count, const float* dloss, float* dlogits, int64_t rows,
                            int64_t classes) {
  const float factor = valid_count[0] > 0 ? dloss[0] / valid_count[0] : 0.0f;
#pragma omp parallel for
  for (int64_t r = 0; r < rows; ++r)
    cross_entropy_gradient_row(logits + r * classes, targets[r], logsumexp[r], factor, classes, 0,
                               dlogits + r * classes);
}

void cross_entropy_gradient_row(const float* z, int64_t target, float logsumexp, float factor, int64_t width,
                                int64_t chunk_begin, float* dz) {
  if (target < 0) {
    std::fill(dz, dz + width, 0.0f);
    return;
  }
  for (int64_t c = 0; c < width; ++c) dz[c] = z[c] - logsumexp;
  exp_array(dz, dz, width);  // vectorised; dz may be z
  for (int64_t c = 0; c < width; ++c) dz[c] *= factor;
  const int64_t t = target - chunk_begin;
  if (t >= 0 && t < width) dz[t] -= factor;
}

}  // namespace muonrec::kernels::cpu
