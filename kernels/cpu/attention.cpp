#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/vector_functions.h"
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

// Turns masked scores p[0..n) (-inf where hidden, maximum max_score) into probabilities and writes
// o = sum_j P_j value(j). Returns the log of the softmax denominator.
template <class ValueAt>
float softmax_weighted_sum(float* p, int64_t n, float max_score, ValueAt value, float* o, int64_t head_dim) {
  for (int64_t j = 0; j < n; ++j) p[j] -= max_score;
  exp_array(p, p, n);  // hidden keys: exp(-inf) = 0
  double total = 0.0;
  for (int64_t j = 0; j < n; ++j) total += p[j];
  const float inv = static_cast<float>(1.0 / total);
  std::fill(o, o + head_dim, 0.0f);
  for (int64_t j = 0; j < n; ++j) {
    const float pj = p[j] * inv;
    if (pj == 0.0f) continue;
    axpy(pj, value(j), o, head_dim);
  }
  return max_score + static_cast<float>(std::log(total));
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
        lse[(b * heads + h) * seq + i] =
            softmax_weighted_sum(p.data(), seq, max_score, [&](int64_t j) { return head.value(j); },
                                 out + (b * seq + i) * width + h * head_dim, head_dim);
      }
    }
  }
}

void attention_continued_forward(const float* qkv_new, const float* context_qkv, const float* context_valid,
                                 const int64_t* context_rows, float* out, int64_t rows, int64_t new_len,
                                 int64_t context_len, int64_t heads, int64_t head_dim) {
  const int64_t width = heads * head_dim, T = context_len, S = new_len;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  const float hidden = -std::numeric_limits<float>::infinity();
#pragma omp parallel for collapse(2)
  for (int64_t n = 0; n < rows; ++n) {
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t c = context_rows[n];
      const HeadView context{context_qkv + c * T * 3 * width + h * head_dim, width, 3 * width, head_dim};
      const HeadView fresh{qkv_new + n * S * 3 * width + h * head_dim, width, 3 * width, head_dim};
      const float* valid = context_valid + c * T;
      // Keys 0..T-1 are the context's, T..T+s the new positions up to the query's own.
      std::vector<float> p(static_cast<size_t>(T + S));
      for (int64_t s = 0; s < S; ++s) {
        const float* q = fresh.query(s);
        float max_score = hidden;
        for (int64_t t = 0; t < T; ++t) {
          p[t] = valid[t] != 0.0f ? dot(q, context.key(t), head_dim) * scale : hidden;
          max_score = std::max(max_score, p[t]);
        }
        for (int64_t j = 0; j <= s; ++j) {
          p[T + j] = dot(q, fresh.key(j), head_dim) * scale;
          max_score = std::max(max_score, p[T + j]);
        }
        softmax_weighted_sum(
            p.data(), T + s + 1, max_score,
            [&](int64_t j) { return j < T ? context.value(j) : fresh.value(j - T); },
            out + (n * S + s) * width + h * head_dim, head_dim);
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
        for (int64_t j = 0; j < seq; ++j) p[j] -= row_lse;
        exp_array(p.data(), p.data(), seq);  // the probabilities; hidden keys get exp(-inf) = 0
        for (int64_t j = 0; j < seq; ++j) {
          const float pij = p[j];
          if (pij == 0.0f) continue;
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
