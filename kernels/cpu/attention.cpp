#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace muonrec::kernels::cpu {

void attention_forward(const float* qkv, const float* valid, float* out, float* probs, int64_t batch, int64_t seq,
                       int64_t heads, int64_t head_dim, bool causal) {
  const int64_t d = heads * head_dim, row = 3 * d;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
#pragma omp parallel for collapse(2)
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t h = 0; h < heads; ++h) {
      std::vector<float> scores(static_cast<size_t>(seq));
      for (int64_t i = 0; i < seq; ++i) {
        const float* q = qkv + (b * seq + i) * row + h * head_dim;
        float* p = probs + ((b * heads + h) * seq + i) * seq;
        float max_score = -std::numeric_limits<float>::infinity();
        for (int64_t j = 0; j < seq; ++j) {
          bool allowed = ((j <= i || !causal) && valid[b * seq + j] != 0.0f) || j == i;
          if (!allowed) {
            scores[j] = -std::numeric_limits<float>::infinity();
            continue;
          }
          const float* k = qkv + (b * seq + j) * row + d + h * head_dim;
          float dot = 0.0f;
          for (int64_t c = 0; c < head_dim; ++c) dot += q[c] * k[c];
          scores[j] = dot * scale;
          max_score = std::max(max_score, scores[j]);
        }
        double total = 0.0;
        for (int64_t j = 0; j < seq; ++j) {
          p[j] = std::isinf(scores[j]) ? 0.0f : std::exp(scores[j] - max_score);
          total += p[j];
        }
        float inv = static_cast<float>(1.0 / total);
        float* o = out + (b * seq + i) * d + h * head_dim;
        std::fill(o, o + head_dim, 0.0f);
        for (int64_t j = 0; j < seq; ++j) {
          p[j] *= inv;
          if (p[j] == 0.0f) continue;
          const float* v = qkv + (b * seq + j) * row + 2 * d + h * head_dim;
          for (int64_t c = 0; c < head_dim; ++c) o[c] += p[j] * v[c];
        }
      }
    }
  }
}

void attention_backward(const float* qkv, const float* probs, const float* dout, float* dqkv, int64_t batch,
                        int64_t seq, int64_t heads, int64_t head_dim) {
  const int64_t d = heads * head_dim, row = 3 * d;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  std::fill(dqkv, dqkv + batch * seq * row, 0.0f);
#pragma omp parallel for collapse(2)
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t h = 0; h < heads; ++h) {
      std::vector<float> dp(static_cast<size_t>(seq));
      for (int64_t i = 0; i < seq; ++i) {
        const float* p = probs + ((b * heads + h) * seq + i) * seq;
        const float* dout_i = dout + (b * seq + i) * d + h * head_dim;
        // dP_ij = dO_i . v_j ; dS_ij = P_ij (dP_ij - sum_j P_ij dP_ij)
        double weighted = 0.0;
        for (int64_t j = 0; j < seq; ++j) {
          dp[j] = 0.0f;
          if (p[j] == 0.0f) continue;
          const float* v = qkv + (b * seq + j) * row + 2 * d + h * head_dim;
          for (int64_t c = 0; c < head_dim; ++c) dp[j] += dout_i[c] * v[c];
          weighted += static_cast<double>(p[j]) * dp[j];
        }
        const float* q = qkv + (b * seq + i) * row + h * head_dim;
        float* dq = dqkv + (b * seq + i) * row + h * head_dim;
        for (int64_t j = 0; j < seq; ++j) {
          if (p[j] == 0.0f) continue;
          float ds = p[j] * (dp[j] - static_cast<float>(weighted)) * scale;
          const float* k = qkv + (b * seq + j) * row + d + h * head_dim;
          float* dk = dqkv + (b * seq + j) * row + d + h * head_dim;
          float* dv = dqkv + (b * seq + j) * row + 2 * d + h * head_dim;
          for (int64_t c = 0; c < head_dim; ++c) {
            dq[c] += ds * k[c];
            dk[c] += ds * q[c];
            dv[c] += p[j] * dout_i[c];
          }
        }
      }
    }
  }
}

}  // namespace muonrec::kernels::cpu
