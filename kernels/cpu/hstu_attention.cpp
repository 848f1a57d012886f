#include "kernels/cpu/hstu_attention.h"

#include "kernels/cpu/vector_functions.h"
#include "kernels/cpu/vector_math.h"
#include "kernels/hstu_time_bucket.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace muonrec::kernels::cpu {
namespace {

// Column offsets of the four blocks of a uvqk row and of head h inside them.
struct HeadColumns {
  int64_t u, v, q, k;
};
HeadColumns head_columns(int64_t heads, int64_t head_dim, int64_t h) {
  const int64_t d = heads * head_dim, base = h * head_dim;
  return HeadColumns{base, d + base, 2 * d + base, 3 * d + base};
}

// Relative attention bias of query i and key j in sequence b (the same for every head).
float relative_bias(const float* pos_bias, const float* time_bias, const int32_t* time_buckets, int64_t b,
                    int64_t seq, int64_t i, int64_t j) {
  float bias = pos_bias[j - i + seq - 1];
  if (time_bias) bias += time_bias[time_buckets[(b * seq + i) * seq + j]];
  return bias;
}

// Pre-activations z_j = q_i . k_j + bias(i, j) of query i against keys 0..i (0 where key j is
// padding), and sigmoid(z_j) beside them: the exps of a row in one vectorised call.
void row_pre_activations(const float* seq_b, const float* valid_b, const HeadColumns& col, int64_t row,
                         int64_t head_dim, const float* pos_bias, const float* time_bias,
                         const int32_t* time_buckets, int64_t b, int64_t seq, int64_t i, float* z,
                         float* sigmoid) {
  const float* q = seq_b + i * row + col.q;
  for (int64_t j = 0; j <= i; ++j) {
    z[j] = valid_b[j] == 0.0f ? 0.0f
                              : dot(q, seq_b + j * row + col.k, head_dim) +
                                    relative_bias(pos_bias, time_bias, time_buckets, b, seq, i, j);
    sigmoid[j] = -z[j];
  }
  exp_array(sigmoid, sigmoid, i + 1);
  for (int64_t j = 0; j <= i; ++j) sigmoid[j] = 1.0f / (1.0f + sigmoid[j]);
}

}  // namespace

void hstu_attention_forward(const float* uvqk, const float* valid, const float* pos_bias, const float* time_bias,
                            const int32_t* time_buckets, float* out, int64_t batch, int64_t seq, int64_t heads,
                            int64_t head_dim) {
  const int64_t d = heads * head_dim, row = 4 * d;
  const float inv_seq = 1.0f / static_cast<float>(seq);
#pragma omp parallel for collapse(2)
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t h = 0; h < heads; ++h) {
      const HeadColumns col = head_columns(heads, head_dim, h);
      const float* seq_b = uvqk + b * seq * row;
      std::vector<float> z(static_cast<size_t>(seq)), s(static_cast<size_t>(seq));
      for (int64_t i = 0; i < seq; ++i) {
        row_pre_activations(seq_b, valid + b * seq, col, row, head_dim, pos_bias, time_bias, time_buckets, b, seq, i,
                            z.data(), s.data());
        float* o = out + (b * seq + i) * d + h * head_dim;
        std::fill(o, o + head_dim, 0.0f);
        // Masked keys are skipped, not multiplied by 0, so padding never reaches the output even
        // when its values are not finite.
        for (int64_t j = 0; j <= i; ++j) {
          if (valid[b * seq + j] == 0.0f) continue;
          const float w = z[j] * s[j] * inv_seq;
          axpy(w, seq_b + j * row + col.v, o, head_dim);
        }
      }
    }
  }
}

void hstu_attention_backward(const float* uvqk, const float* valid, const float* pos_bias, const float* time_bias,
                             const int32_t* time_buckets, const float* dout, float* duvqk, float* dpos_bias,
                             float* dtime_bias, int64_t batch, int64_t seq, int64_t heads, int64_t head_dim,
                             int64_t num_time_buckets) {
  const int64_t d = heads * head_dim, row = 4 * d;
  const int64_t num_offsets = 2 * seq - 1;
  const int64_t time_columns = dtime_bias ? num_time_buckets : 0;
  const int64_t partial_width = num_offsets + time_columns;
  const float inv_seq = 1.0f / static_cast<float>(seq);
  std::fill(duvqk, duvqk + batch * seq * row, 0.0f);
  // Bias gradients: each (b, h) sums its own contributions in a fixed order into its own partial
  // row (in double: the terms have both signs and many cancel), then the rows are added in (b, h)
  // order. The result does not depend on how the threads were scheduled.
  std::vector<double> partials(static_cast<size_t>(batch * heads * partial_width), 0.0);
#pragma omp parallel for collapse(2)
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t h = 0; h < heads; ++h) {
      const HeadColumns col = head_columns(heads, head_dim, h);
      const float* seq_b = uvqk + b * seq * row;
      float* dseq_b = duvqk + b * seq * row;
      double* dpos = partials.data() + (b * heads + h) * partial_width;
      double* dtime = dpos + num_offsets;
      std::vector<float> zs(static_cast<size_t>(seq)), ss(static_cast<size_t>(seq));
      for (int64_t i = 0; i < seq; ++i) {
        const float* q = seq_b + i * row + col.q;
        const float* dy = dout + (b * seq + i) * d + h * head_dim;
        float* dq = dseq_b + i * row + col.q;
        row_pre_activations(seq_b, valid + b * seq, col, row, head_dim, pos_bias, time_bias, time_buckets, b, seq, i,
                            zs.data(), ss.data());
        for (int64_t j = 0; j <= i; ++j) {
          if (valid[b * seq + j] == 0.0f) continue;
          const float* k = seq_b + j * row + col.k;
          const float* v = seq_b + j * row + col.v;
          const float z = zs[j], s = ss[j];
          const float w = z * s * inv_seq;
          // dz = dw * SiLU'(z) / T with dw = dy_i . v_j and SiLU'(z) = s (1 + z (1 - s)).
          const float dz = dot(dy, v, head_dim) * s * (1.0f + z * (1.0f - s)) * inv_seq;
          float* dk = dseq_b + j * row + col.k;
          float* dv = dseq_b + j * row + col.v;
          axpy(dz, k, dq, head_dim);
          axpy(dz, q, dk, head_dim);
          axpy(w, dy, dv, head_dim);
          dpos[j - i + seq - 1] += dz;
          if (time_columns) dtime[time_buckets[(b * seq + i) * seq + j]] += dz;
        }
      }
    }
  }
  std::vector<double> totals(static_cast<size_t>(partial_width), 0.0);
  for (int64_t bh = 0; bh < batch * heads; ++bh)
    for (int64_t c = 0; c < partial_width; ++c) totals[c] += partials[bh * partial_width + c];
  for (int64_t o = 0; o < num_offsets; ++o) dpos_bias[o] = static_cast<float>(totals[o]);
  for (int64_t t = 0; t < time_columns; ++t) dtime_bias[t] = static_cast<float>(totals[num_offsets + t]);
}

void hstu_time_buckets(const int64_t* timestamps, int32_t* buckets, int64_t batch, int64_t seq) {
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < seq; ++i)
      for (int64_t j = 0; j < seq; ++j)
        buckets[(b * seq + i) * seq + j] = hstu_time_bucket_at(timestamps + b * seq, seq, i, j);
}

}  // namespace muonrec::kernels::cpu
