#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/vector_math.h"

namespace muonrec::kernels::cpu {
namespace {

// One head of one sequence inside the packed qkv: row t of q starts at q + t * row, k and v follow
// at +width and +2*width.
struct HeadView {
  const float* q;
  int64_t width, row, head_dim;
  const float* query(int64_t t) const { return q + t * row; }
  const float* key(int64_t t) const { return q + t * row + width; }
  const float* value(int64_t t) const { return q + t * row + 2 * width; }
};

// Scaled scores of query i against every key, -inf where the mask hides the key. Returns their
// maximum, finite because a query always attends itself.
float row_scores(const HeadView& head, const float* valid, int64_t i, int64_t seq, float scale, bool causal,
                 float* scores) {
  float max_score = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < seq; ++j) {
    const bool attends = ((j <= i || !causal) && valid[j] != 0.0f) || j == i;
    scores[j] = attends ? dot(head.query(i), head.key(j), head.head_dim) * scale
                        : -std::numeric_limits<float>::infinity();
    max_score = std::max(max_score, scores[j]);
  }
  return max_score;
}

}  // namespace

void attention_forward(const float* qkv, const float* valid, float* out, float* lse, int64_t batch, int64_t seq,
                       int64_t heads, int64_t head_dim, bool causal) {
  const int64_t width = heads * head_dim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
#pragma omp parallel for collapse(2)
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t h = 0; h < heads; ++h) {
      const HeadView head{qkv + b * seq * 3 * width + h * head_dim, width, 3 * width, head_dim};
      std::vector<float> p(static_cast<size_t>(seq));
      for (int64_t i = 0; i < seq; ++i) {
        const float max_score = row_scores(head, valid + b * seq, i, seq, scale, causal, p.data());
        double total = 0.0;
        for (int64_t j = 0; j < seq; ++j) {
          p[j] = std::isinf(p[j]) ? 0.0f : std::exp(p[j] - max_score);
          total += p[j];
        }
        lse[(b * heads + h) * seq + i] = max_score + static_cast<float>(std::log(total));
        const float inv = static_cast<float>(1.0 / total);
        float* o = out + (b * seq + i) * width + h * head_dim;
        std::fill(o, o + head_dim, 0.0f);
        for (int64_t j = 0; j < seq; ++j) {
          const float pij = p[j] * inv;
          if (pij == 0.0f) continue;
          axpy(pij, head.value(j), o, head_dim);
        }
      }
    }
  }
}

void attention_backward(const float* qkv, const float* valid, const float* out, const float* lse, const float* dout,
                        float* dqkv, int64_t batch, int64_t seq, int64_t heads, int64_t head_dim, bool causal) {
  const int64_t width = heads * head_dim, row = 3 * width;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  std::fill(dqkv, dqkv + batch * seq * row, 0.0f);
#pragma omp parallel for collapse(2)
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t h = 0; h < heads; ++h) {
      const HeadView head{qkv + b * seq * row + h * head_dim, width, row, head_dim};
      float* dq_b = dqkv + b * seq * row + h * head_dim;
      std::vector<float> p(static_cast<size_t>(seq));
      for (int64_t i = 0; i < seq; ++i) {
        row_scores(head, valid + b * seq, i, seq, scale, causal, p.data());
        const float row_lse = lse[(b * heads + h) * seq + i];
        const float* dout_i = dout + (b * seq + i) * width + h * head_dim;
        const float* out_i = out + (b * seq + i) * width + h * head_dim;
        // delta_i = sum_j P_ij dP_ij. It is subtracted from each dP_ij, so it is summed in double:
        // its rounding error would be amplified where the two nearly cancel.
        double delta = 0.0;
        for (int64_t c = 0; c < head_dim; ++c) delta += static_cast<double>(dout_i[c]) * out_i[c];
        float* dq = dq_b + i * row;
        for (int64_t j = 0; j < seq; ++j) {
          if (std::isinf(p[j])) continue;
          const float pij = std::exp(p[j] - row_lse);
          // dS_ij = P_ij (dP_ij - delta_i) with dP_ij = dout_i . v_j, times the score scale.
          const float ds = pij * (dot(dout_i, head.value(j), head_dim) - static_cast<float>(delta)) * scale;
          const float* k = head.key(j);
          float* dk = dq_b + j * row + width;
          float* dv = dk + width;
          axpy(ds, k, dq, head_dim);
          axpy(ds, head.query(i), dk, head_dim);
          axpy(pij, dout_i, dv, head_dim);
        }
      }
    }
  }
}

}  // namespace muonrec::kernels::cpu
