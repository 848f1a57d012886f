#include "kernels/cpu/chunked_ce.h"

#include <algorithm>
#include <cmath>

namespace muonrec::kernels::cpu {

void ce_chunk_forward(const float* logits, const int64_t* targets, int64_t rows, int64_t width, int64_t chunk_begin,
                      float* row_max, float* row_sum, float* target_logit) {
#pragma omp parallel for
  for (int64_t r = 0; r < rows; ++r) {
    const float* z = logits + r * width;
    const float chunk_max = *std::max_element(z, z + width);
    const float new_max = std::max(row_max[r], chunk_max);
    // Rescale what was summed under the old maximum (exp(-inf) = 0 before the first chunk).
    float sum = row_sum[r] * std::exp(row_max[r] - new_max);
    for (int64_t c = 0; c < width; ++c) sum += std::exp(z[c] - new_max);
    row_max[r] = new_max;
    row_sum[r] = sum;
    const int64_t t = targets[r] - chunk_begin;
    if (targets[r] >= 0 && t >= 0 && t < width) target_logit[r] = z[t];
  }
}

void ce_finish(const float* row_max, const float* row_sum, const float* target_logit, const int64_t* targets,
               int64_t rows, float* logsumexp, float* loss, float* valid_count) {
  double total = 0.0;
  int64_t counted = 0;
  for (int64_t r = 0; r < rows; ++r) {
    logsumexp[r] = row_max[r] + std::log(row_sum[r]);
    if (targets[r] < 0) continue;
    total += logsumexp[r] - target_logit[r];
    ++counted;
  }
  valid_count[0] = static_cast<float>(counted);
  loss[0] = counted ? static_cast<float>(total / counted) : 0.0f;
}

void ce_chunk_backward(float* logits, const int64_t* targets, const float* logsumexp, const float* valid_count,
                       const float* dloss, int64_t rows, int64_t width, int64_t chunk_begin) {
  const float factor = valid_count[0] > 0 ? dloss[0] / valid_count[0] : 0.0f;
#pragma omp parallel for
  for (int64_t r = 0; r < rows; ++r) {
    float* z = logits + r * width;
    if (targets[r] < 0) {
      std::fill(z, z + width, 0.0f);
      continue;
    }
    for (int64_t c = 0; c < width; ++c) z[c] = std::exp(z[c] - logsumexp[r]) * factor;
    const int64_t t = targets[r] - chunk_begin;
    if (t >= 0 && t < width) z[t] -= factor;
  }
}

}  // namespace muonrec::kernels::cpu
