#include "muonrec/kernels/cpu/hstu_attention.h"

#include "muonrec/kernels/cpu/matmul.h"
#include "muonrec/kernels/cpu/packed_keys.h"
#include "muonrec/kernels/cpu/vector_functions.h"
#include "muonrec/kernels/hstu_time_bucket.h"

#include <algorithm>
#include <vector>

namespace muonrec::kernels::cpu {
namespace {

// The shapes of one call: each uvqk row holds 4 blocks of heads x head_dim columns.
struct Geometry {
  int64_t batch, seq, heads, head_dim;
  int64_t width() const { return heads * head_dim; }
  int64_t row() const { return 4 * width(); }
};

// The relative bias of the call, shared by the heads.
struct RelativeBias {
  const float* pos_bias;         // [2T-1]
  const float* time_bias;        // null without timestamps
  const int32_t* time_buckets;  // [B, T, T], null without timestamps
  int64_t seq;
  float at(int64_t b, int64_t i, int64_t j) const {
    float bias = pos_bias[j - i + seq - 1];
    if (time_bias) bias += time_bias[time_buckets[(b * seq + i) * seq + j]];
    return bias;
  }
};

// One head of one sequence: its packed keys and values, and the weights of the queries that see at
// least one of them (from the first valid position on). Queries at padded positions after that are
// computed like the others: their q is not isolated.
struct HeadWeights {
  PackedKeys keys;
  std::vector<int64_t> seen;   // per query row: how many keys it sees (those at or before it)
  std::vector<float> z, s, w;  // [query rows, keys]: pre-activations, sigmoid(z), SiLU(z) / T; 0 past `seen`
  int64_t first_query = 0;     // position of query row 0 (the first valid one)
  int64_t query_rows() const { return static_cast<int64_t>(seen.size()); }
  int64_t key_count() const { return keys.count(); }
};

// Fills hw for head h of sequence b: z_ij = q_i.k_j + bias(i, j), s = sigmoid(z), w = z s / T.
void head_weights(const float* uvqk, const float* valid, const RelativeBias& bias, const Geometry& g, int64_t b,
                  int64_t h, HeadWeights& hw) {
  const int64_t seq = g.seq, hd = g.head_dim, row = g.row();
  const float* seq_b = uvqk + b * seq * row;
  const float* q = seq_b + 2 * g.width() + h * hd;
  const float* k = seq_b + 3 * g.width() + h * hd;
  const float* v = seq_b + g.width() + h * hd;
  hw.keys.pack(valid + b * seq, seq, k, v, row, hd);
  const int64_t n = hw.key_count();
  const std::vector<int64_t>& keys = hw.keys.positions;
  hw.first_query = n > 0 ? keys[0] : seq;
  const int64_t m = seq - hw.first_query;
  hw.seen.resize(static_cast<size_t>(m));
  for (int64_t r = 0, c = 0; r < m; ++r) {
    while (c < n && keys[c] <= hw.first_query + r) ++c;
    hw.seen[r] = c;
  }
  hw.z.assign(static_cast<size_t>(m * n), 0.0f);
  hw.s.assign(hw.z.size(), 0.0f);
  hw.w.assign(hw.z.size(), 0.0f);
  const float inv_seq = 1.0f / static_cast<float>(seq);
  for_each_query_block(hw.seen, [&](const QueryBlock& blk) {
    gemm_strided(false, true, blk.rows, blk.keys, hd, 1.0f, q + (hw.first_query + blk.row0) * row, row,
                 hw.keys.k.data(), hd, 0.0f, hw.z.data() + blk.row0 * n, n);
  });
  for (int64_t r = 0; r < m; ++r) {
    const int64_t i = hw.first_query + r, seen = hw.seen[r];
    float* z = hw.z.data() + r * n;
    float* s = hw.s.data() + r * n;
    float* w = hw.w.data() + r * n;
    for (int64_t c = 0; c < seen; ++c) {
      z[c] += bias.at(b, i, keys[c]);
      s[c] = -z[c];
    }
    std::fill(z + seen, z + n, 0.0f);  // keys after the query (computed by its block's product)
    exp_array(s, s, seen);
    for (int64_t c = 0; c < seen; ++c) {
      s[c] = 1.0f / (1.0f + s[c]);
      w[c] = z[c] * s[c] * inv_seq;
    }
  }
}

}  // namespace

void hstu_attention_forward(const float* uvqk, const float* valid, const float* pos_bias, const float* time_bias,
                            const int32_t* time_buckets, float* out, int64_t batch, int64_t seq, int64_t heads,
                            int64_t head_dim) {
  const Geometry g{batch, seq, heads, head_dim};
  const RelativeBias bias{pos_bias, time_bias, time_buckets, seq};
  const int64_t d = g.width();
#pragma omp parallel
  {
    HeadWeights hw;  // one per thread, reused across heads
    // Dynamic: a head's work grows with the square of its sequence's unpadded length, which on
    // real data varies from a few positions to T (static halves left ML-1M's second core idle).
#pragma omp for collapse(2) schedule(dynamic)
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t h = 0; h < heads; ++h) {
        head_weights(uvqk, valid, bias, g, b, h, hw);
        float* out_h = out + b * seq * d + h * head_dim;
        // Queries before the first valid key see nothing: an all-zero row (no softmax).
        for (int64_t i = 0; i < hw.first_query; ++i) std::fill_n(out_h + i * d, head_dim, 0.0f);
        for_each_query_block(hw.seen, [&](const QueryBlock& blk) {
          gemm_strided(false, false, blk.rows, head_dim, blk.keys, 1.0f, hw.w.data() + blk.row0 * hw.key_count(),
                       hw.key_count(), hw.keys.v.data(), head_dim, 0.0f, out_h + (hw.first_query + blk.row0) * d, d);
        });
      }
    }
  }
}

void hstu_attention_backward(const float* uvqk, const float* valid, const float* pos_bias, const float* time_bias,
                             const int32_t* time_buckets, const float* dout, float* duvqk, float* dpos_bias,
                             float* dtime_bias, int64_t batch, int64_t seq, int64_t heads, int64_t head_dim,
                             int64_t num_time_buckets) {
  const Geometry g{batch, seq, heads, head_dim};
  const RelativeBias bias{pos_bias, time_bias, time_buckets, seq};
  const int64_t d = g.width(), row = g.row();
  const int64_t num_offsets = 2 * seq - 1;
  const int64_t time_columns = dtime_bias ? num_time_buckets : 0;
  const int64_t partial_width = num_offsets + time_columns;
  const float inv_seq = 1.0f / static_cast<float>(seq);
  std::fill(duvqk, duvqk + batch * seq * row, 0.0f);
  // Bias gradients: each (b, h) sums its own contributions in a fixed order into its own partial
  // row (in double: the terms have both signs and many cancel), then the rows are added in (b, h)
  // order. The result does not depend on how the threads were scheduled.
  std::vector<double> partials(static_cast<size_t>(batch * heads * partial_width), 0.0);
#pragma omp parallel
  {
    HeadWeights hw;
    std::vector<float> dz, dk, dv;
#pragma omp for collapse(2) schedule(dynamic)
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t h = 0; h < heads; ++h) {
        head_weights(uvqk, valid, bias, g, b, h, hw);
        if (hw.query_rows() == 0) continue;  // all padding: no gradient (duvqk is zero-filled)
        const int64_t m = hw.query_rows(), n = hw.key_count(), i0 = hw.first_query;
        const float* q = uvqk + (b * seq + i0) * row + 2 * d + h * head_dim;
        const float* dy = dout + (b * seq + i0) * d + h * head_dim;
        float* dq = duvqk + (b * seq + i0) * row + 2 * d + h * head_dim;
        // dw = dy v^T, then dz = dw SiLU'(z) / T with SiLU'(z) = s (1 + z (1 - s)).
        dz.assign(static_cast<size_t>(m * n), 0.0f);
        for_each_query_block(hw.seen, [&](const QueryBlock& blk) {
          gemm_strided(false, true, blk.rows, blk.keys, head_dim, 1.0f, dy + blk.row0 * d, d, hw.keys.v.data(), head_dim,
                       0.0f, dz.data() + blk.row0 * n, n);
        });
        double* dpos = partials.data() + (b * heads + h) * partial_width;
        double* dtime = dpos + num_offsets;
        for (int64_t r = 0; r < m; ++r) {
          const int64_t i = i0 + r, seen = hw.seen[r];
          const float* z = hw.z.data() + r * n;
          const float* s = hw.s.data() + r * n;
          float* dz_r = dz.data() + r * n;
          for (int64_t c = 0; c < seen; ++c) {
            dz_r[c] *= s[c] * (1.0f + z[c] * (1.0f - s[c])) * inv_seq;
            const int64_t j = hw.keys.positions[c];
            dpos[j - i + seq - 1] += dz_r[c];
            if (time_columns) dtime[time_buckets[(b * seq + i) * seq + j]] += dz_r[c];
          }
          std::fill(dz_r + seen, dz_r + n, 0.0f);
        }
        // dq = dz k; dk = dz^T q and dv = w^T dy, summed over the query blocks into packed rows.
        dk.assign(static_cast<size_t>(n * head_dim), 0.0f);
        dv.assign(dk.size(), 0.0f);
        for_each_query_block(hw.seen, [&](const QueryBlock& blk) {
          const float* dz_blk = dz.data() + blk.row0 * n;
          gemm_strided(false, false, blk.rows, head_dim, blk.keys, 1.0f, dz_blk, n, hw.keys.k.data(), head_dim, 0.0f,
                       dq + blk.row0 * row, row);
          gemm_strided(true, false, blk.keys, head_dim, blk.rows, 1.0f, dz_blk, n, q + blk.row0 * row, row, 1.0f,
                       dk.data(), head_dim);
          gemm_strided(true, false, blk.keys, head_dim, blk.rows, 1.0f, hw.w.data() + blk.row0 * n, n,
                       dy + blk.row0 * d, d, 1.0f, dv.data(), head_dim);
        });
        float* dseq_b = duvqk + b * seq * row + h * head_dim;
        hw.keys.scatter(dk.data(), head_dim, dseq_b + 3 * d, row);
        hw.keys.scatter(dv.data(), head_dim, dseq_b + d, row);
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
  // A double-precision log per (b, i, j), 5 million per step at the ML-1M shape: split over the threads.
#pragma omp parallel for collapse(2)
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < seq; ++i)
      for (int64_t j = 0; j < seq; ++j)
        buckets[(b * seq + i) * seq + j] = hstu_time_bucket_at(timestamps + b * seq, seq, i, j);
}

}  // namespace muonrec::kernels::cpu
