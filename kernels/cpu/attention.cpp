#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/matmul.h"
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

// Whether query i attends key j (attention.h).
inline bool attends(const float* valid, int64_t i, int64_t j, bool causal) {
  return ((j <= i || !causal) && valid[j] != 0.0f) || j == i;
}

// Scaled scores of every query of one head against every key, s[i * seq + j] = q_i.k_j * scale, as
// one matrix product over the packed rows, then -inf where the mask hides the key.
void head_scores(const HeadView& head, const float* valid, int64_t seq, float scale, bool causal, float* s) {
  gemm_strided(false, true, seq, seq, head.head_dim, scale, head.query(0), head.row, head.key(0), head.row, 0.0f, s,
               seq);
  for (int64_t i = 0; i < seq; ++i)
    for (int64_t j = 0; j < seq; ++j)
      if (!attends(valid, i, j, causal)) s[i * seq + j] = -std::numeric_limits<float>::infinity();
}

// Turns masked scores p[0..n) (-inf where hidden, maximum max_score) into probabilities in place.
// Returns the log of the softmax denominator.
float softmax_in_place(float* p, int64_t n, float max_score) {
  for (int64_t j = 0; j < n; ++j) p[j] -= max_score;
  exp_array(p, p, n);  // hidden keys: exp(-inf) = 0
  double total = 0.0;
  for (int64_t j = 0; j < n; ++j) total += p[j];
  const float inv = static_cast<float>(1.0 / total);
  for (int64_t j = 0; j < n; ++j) p[j] *= inv;
  return max_score + static_cast<float>(std::log(total));
}

// The softmax of p as above, and o = sum_j P_j value(j).
template <class ValueAt>
void softmax_weighted_sum(float* p, int64_t n, float max_score, ValueAt value, float* o, int64_t head_dim) {
  softmax_in_place(p, n, max_score);
  std::fill(o, o + head_dim, 0.0f);
  for (int64_t j = 0; j < n; ++j)
    if (p[j] != 0.0f) axpy(p[j], value(j), o, head_dim);
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
      // Scores, then each row's probabilities in place, then out = P V as one product.
      std::vector<float> p(static_cast<size_t>(seq * seq));
      head_scores(head, valid + b * seq, seq, scale, causal, p.data());
      for (int64_t i = 0; i < seq; ++i) {
        float* row = p.data() + i * seq;
        // The maximum is finite: a query always attends itself.
        lse[(b * heads + h) * seq + i] = softmax_in_place(row, seq, max_value(row, seq));
      }
      gemm_strided(false, false, seq, head_dim, seq, 1.0f, p.data(), seq, head.value(0), head.row, 0.0f,
                   out + b * seq * width + h * head_dim, width);
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
#pragma omp parallel for collapse(2)
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t h = 0; h < heads; ++h) {
      const HeadView head{qkv + b * seq * row + h * head_dim, width, row, head_dim};
      const float* dout_h = dout + b * seq * width + h * head_dim;
      const float* out_h = out + b * seq * width + h * head_dim;
      float* dq = dqkv + b * seq * row + h * head_dim;  // this head's dq, then dk at +width, dv at +2*width
      // P from the scores and the saved lse; dP = dout V^T.
      std::vector<float> p(static_cast<size_t>(seq * seq)), ds(p.size());
      head_scores(head, valid + b * seq, seq, scale, causal, p.data());
      gemm_strided(false, true, seq, seq, head_dim, 1.0f, dout_h, width, head.value(0), row, 0.0f, ds.data(), seq);
      for (int64_t i = 0; i < seq; ++i) {
        float* p_i = p.data() + i * seq;
        float* ds_i = ds.data() + i * seq;
        const float row_lse = lse[(b * heads + h) * seq + i];
        for (int64_t j = 0; j < seq; ++j) p_i[j] -= row_lse;
        exp_array(p_i, p_i, seq);  // the probabilities; hidden keys get exp(-inf) = 0
        // delta_i = sum_j P_ij dP_ij. It is subtracted from each dP_ij, so it is summed in double:
        // its rounding error would be amplified where the two nearly cancel.
        double delta = 0.0;
        for (int64_t c = 0; c < head_dim; ++c)
          delta += static_cast<double>(dout_h[i * width + c]) * out_h[i * width + c];
        // dS_ij = P_ij (dP_ij - delta_i), times the score scale.
        for (int64_t j = 0; j < seq; ++j) ds_i[j] = p_i[j] * (ds_i[j] - static_cast<float>(delta)) * scale;
      }
      // dq = dS K, dk = dS^T Q, dv = P^T dout: each writes this head's columns of every row.
      gemm_strided(false, false, seq, head_dim, seq, 1.0f, ds.data(), seq, head.key(0), row, 0.0f, dq, row);
      gemm_strided(true, false, seq, head_dim, seq, 1.0f, ds.data(), seq, head.query(0), row, 0.0f, dq + width, row);
      gemm_strided(true, false, seq, head_dim, seq, 1.0f, p.data(), seq, dout_h, width, 0.0f, dq + 2 * width, row);
    }
  }
}

}  // namespace muonrec::kernels::cpu
