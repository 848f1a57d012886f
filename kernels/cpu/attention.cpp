#include "muonrec/kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "muonrec/kernels/cpu/matmul.h"
#include "muonrec/kernels/cpu/packed_keys.h"
#include "muonrec/kernels/cpu/vector_functions.h"
#include "muonrec/kernels/cpu/vector_math.h"

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

// x[0..n) -> exp(x - shift) in place; returns their sum, in double.
double exp_shifted(float* x, int64_t n, float shift) {
  for (int64_t j = 0; j < n; ++j) x[j] -= shift;
  exp_array(x, x, n);
  double total = 0.0;
  for (int64_t j = 0; j < n; ++j) total += x[j];
  return total;
}

// The queries of one head that follow one rule of attention.h. The valid ones see packed keys
// 0..seen (their own among them). The padded ones see the valid keys before them (every valid key
// without the causal mask) and their own key, whose column is `key_count` in their rows.
struct QueryGroup {
  bool own_key = false;
  int64_t key_count = 0;
  std::vector<int64_t> positions;  // ascending
  std::vector<int64_t> seen;       // per row: how many packed keys it sees
  std::vector<float> q;            // [rows, head_dim]: the q rows at the positions
  std::vector<float> p;            // [rows, stride]: scaled scores, then probabilities; 0 past `seen`

  int64_t rows() const { return static_cast<int64_t>(positions.size()); }
  int64_t stride() const { return key_count + 1; }
  // Row r's own-key entry of a [rows, stride] matrix (padded queries only).
  float& own(float* m, int64_t r) const { return m[r * stride() + key_count]; }

  void scores(const HeadView& head, const PackedKeys& keys, float scale);
  // Forward: turns the scores into probabilities and writes each row's lse at its position.
  void softmax(float* lse);
  // Backward: the probabilities from the scores and the saved lse.
  void probabilities(const float* lse);
  // dst [rows, head_dim] = m [rows, packed keys] times packed [keys, head_dim], block by block.
  void multiply_by_packed(const float* m, const float* packed, int64_t head_dim, float* dst) const;
};

void QueryGroup::scores(const HeadView& head, const PackedKeys& keys, float scale) {
  const int64_t hd = head.head_dim, ld = stride();
  q.resize(static_cast<size_t>(rows() * hd));
  for (int64_t r = 0; r < rows(); ++r) std::copy_n(head.query(positions[r]), hd, q.data() + r * hd);
  p.resize(static_cast<size_t>(rows() * ld));
  for_each_query_block(seen, [&](const QueryBlock& blk) {
    gemm_strided(false, true, blk.rows, blk.keys, hd, scale, q.data() + blk.row0 * hd, hd, keys.k.data(), hd, 0.0f,
                 p.data() + blk.row0 * ld, ld);
  });
  if (own_key)
    for (int64_t r = 0; r < rows(); ++r)
      own(p.data(), r) = dot(q.data() + r * hd, head.key(positions[r]), hd) * scale;
}

void QueryGroup::softmax(float* lse) {
  for (int64_t r = 0; r < rows(); ++r) {
    float* row = p.data() + r * stride();
    const int64_t n = seen[r];
    // Finite: every query sees at least one key (its own).
    const float max_score = own_key ? std::max(max_value(row, n), own(p.data(), r)) : max_value(row, n);
    double total = exp_shifted(row, n, max_score);
    if (own_key) total += own(p.data(), r) = std::exp(own(p.data(), r) - max_score);
    const float inv = static_cast<float>(1.0 / total);
    for (int64_t c = 0; c < n; ++c) row[c] *= inv;
    if (own_key) own(p.data(), r) *= inv;
    std::fill(row + n, row + key_count, 0.0f);  // keys after the query (computed by its block's product)
    lse[positions[r]] = max_score + static_cast<float>(std::log(total));
  }
}

void QueryGroup::probabilities(const float* lse) {
  for (int64_t r = 0; r < rows(); ++r) {
    float* row = p.data() + r * stride();
    const int64_t n = seen[r];
    const float row_lse = lse[positions[r]];
    exp_shifted(row, n, row_lse);
    if (own_key) own(p.data(), r) = std::exp(own(p.data(), r) - row_lse);
    std::fill(row + n, row + key_count, 0.0f);
  }
}

void QueryGroup::multiply_by_packed(const float* m, const float* packed, int64_t head_dim, float* dst) const {
  for_each_query_block(seen, [&](const QueryBlock& blk) {
    float* dst_blk = dst + blk.row0 * head_dim;
    if (blk.keys == 0) {
      std::fill_n(dst_blk, blk.rows * head_dim, 0.0f);
      return;
    }
    gemm_strided(false, false, blk.rows, head_dim, blk.keys, 1.0f, m + blk.row0 * stride(), stride(), packed,
                 head_dim, 0.0f, dst_blk, head_dim);
  });
}

// One thread's buffers for one head at a time: its packed keys and its two query groups.
struct HeadWorkspace {
  PackedKeys keys;
  QueryGroup groups[2];  // the valid queries, then the padded ones
  std::vector<float> o;  // [rows, head_dim]: a group's outputs before they go to their positions

  void prepare(const HeadView& head, const float* valid, int64_t seq, bool causal) {
    keys.pack(valid, seq, head.key(0), head.value(0), head.row, head.head_dim);
    const int64_t n = keys.count();
    for (QueryGroup& group : groups) {
      group.key_count = n;
      group.positions.clear();
      group.seen.clear();
    }
    groups[1].own_key = true;
    int64_t valid_so_far = 0;
    for (int64_t t = 0; t < seq; ++t) {
      QueryGroup& group = groups[valid[t] != 0.0f ? 0 : 1];
      if (valid[t] != 0.0f) ++valid_so_far;
      group.positions.push_back(t);
      group.seen.push_back(causal ? valid_so_far : n);
    }
  }
};

// The softmax of masked scores p[0..n) (-inf where hidden, maximum max_score) in place, and
// o = sum_j P_j value(j).
template <class ValueAt>
void softmax_weighted_sum(float* p, int64_t n, float max_score, ValueAt value, float* o, int64_t head_dim) {
  const float inv = static_cast<float>(1.0 / exp_shifted(p, n, max_score));  // hidden keys: exp(-inf) = 0
  std::fill(o, o + head_dim, 0.0f);
  for (int64_t j = 0; j < n; ++j)
    if (p[j] != 0.0f) axpy(p[j] * inv, value(j), o, head_dim);
}

}  // namespace

void attention_forward(const float* qkv, const float* valid, float* out, float* lse, int64_t batch, int64_t seq,
                       int64_t heads, int64_t head_dim, bool causal) {
  const int64_t width = heads * head_dim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
#pragma omp parallel
  {
    HeadWorkspace ws;  // one per thread, reused across heads
    // Dynamic: a head's work grows with the square of its sequence's unpadded length.
#pragma omp for collapse(2) schedule(dynamic)
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t h = 0; h < heads; ++h) {
        const HeadView head{qkv + b * seq * 3 * width + h * head_dim, width, 3 * width, head_dim};
        ws.prepare(head, valid + b * seq, seq, causal);
        float* lse_h = lse + (b * heads + h) * seq;
        float* out_h = out + b * seq * width + h * head_dim;
        for (QueryGroup& group : ws.groups) {
          group.scores(head, ws.keys, scale);
          // out = P V over the packed keys, plus the own-key column's share.
          group.softmax(lse_h);
          ws.o.resize(static_cast<size_t>(group.rows() * head_dim));
          group.multiply_by_packed(group.p.data(), ws.keys.v.data(), head_dim, ws.o.data());
          for (int64_t r = 0; r < group.rows(); ++r) {
            float* o_r = ws.o.data() + r * head_dim;
            const int64_t i = group.positions[r];
            if (group.own_key) axpy(group.own(group.p.data(), r), head.value(i), o_r, head_dim);
            std::copy_n(o_r, head_dim, out_h + i * width);
          }
        }
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
#pragma omp parallel
  {
    HeadWorkspace ws;
    std::vector<float> dout_rows, ds, dq, dk, dv;
#pragma omp for collapse(2) schedule(dynamic)
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t h = 0; h < heads; ++h) {
        const HeadView head{qkv + b * seq * row + h * head_dim, width, row, head_dim};
        ws.prepare(head, valid + b * seq, seq, causal);
        const float* lse_h = lse + (b * heads + h) * seq;
        const float* dout_h = dout + b * seq * width + h * head_dim;
        const float* out_h = out + b * seq * width + h * head_dim;
        float* dq_h = dqkv + b * seq * row + h * head_dim;  // this head's dq, then dk at +width, dv at +2*width
        const int64_t n = ws.keys.count();
        dk.assign(static_cast<size_t>(n * head_dim), 0.0f);  // the packed keys' gradients, summed over both groups
        dv.assign(dk.size(), 0.0f);
        for (QueryGroup& group : ws.groups) {
          if (group.rows() == 0) continue;
          const int64_t m = group.rows(), ld = group.stride();
          // P from the scores and the saved lse; dP = dout V^T.
          group.scores(head, ws.keys, scale);
          group.probabilities(lse_h);
          dout_rows.resize(static_cast<size_t>(m * head_dim));
          for (int64_t r = 0; r < m; ++r)
            std::copy_n(dout_h + group.positions[r] * width, head_dim, dout_rows.data() + r * head_dim);
          ds.assign(static_cast<size_t>(m * ld), 0.0f);
          for_each_query_block(group.seen, [&](const QueryBlock& blk) {
            gemm_strided(false, true, blk.rows, blk.keys, head_dim, 1.0f, dout_rows.data() + blk.row0 * head_dim,
                         head_dim, ws.keys.v.data(), head_dim, 0.0f, ds.data() + blk.row0 * ld, ld);
          });
          for (int64_t r = 0; r < m; ++r) {
            const int64_t i = group.positions[r];
            const float* dout_i = dout_rows.data() + r * head_dim;
            // delta_i = sum_j P_ij dP_ij. It is subtracted from each dP_ij, so it is summed in double:
            // its rounding error would be amplified where the two nearly cancel.
            double delta = 0.0;
            for (int64_t c = 0; c < head_dim; ++c) delta += static_cast<double>(dout_i[c]) * out_h[i * width + c];
            // dS_ij = P_ij (dP_ij - delta_i), times the score scale; 0 past the keys the query sees.
            const float* p_r = group.p.data() + r * ld;
            float* ds_r = ds.data() + r * ld;
            for (int64_t c = 0; c < group.seen[r]; ++c) ds_r[c] = p_r[c] * (ds_r[c] - static_cast<float>(delta)) * scale;
            std::fill(ds_r + group.seen[r], ds_r + n, 0.0f);
            if (group.own_key) {
              const float p_own = group.own(group.p.data(), r);
              float& ds_own = group.own(ds.data(), r);
              ds_own = p_own * (dot(dout_i, head.value(i), head_dim) - static_cast<float>(delta)) * scale;
              // The own key and value are this query's alone: dk_i = dS_ii q_i, dv_i = P_ii dout_i.
              for (int64_t c = 0; c < head_dim; ++c) {
                dq_h[i * row + width + c] = ds_own * head.query(i)[c];
                dq_h[i * row + 2 * width + c] = p_own * dout_i[c];
              }
            }
          }
          // dq = dS K (+ the own key's share); dk += dS^T Q and dv += P^T dout over the packed keys.
          dq.resize(static_cast<size_t>(m * head_dim));
          group.multiply_by_packed(ds.data(), ws.keys.k.data(), head_dim, dq.data());
          for (int64_t r = 0; r < m; ++r) {
            const int64_t i = group.positions[r];
            float* dq_r = dq.data() + r * head_dim;
            if (group.own_key) axpy(group.own(ds.data(), r), head.key(i), dq_r, head_dim);
            std::copy_n(dq_r, head_dim, dq_h + i * row);
          }
          for_each_query_block(group.seen, [&](const QueryBlock& blk) {
            gemm_strided(true, false, blk.keys, head_dim, blk.rows, 1.0f, ds.data() + blk.row0 * ld, ld,
                         group.q.data() + blk.row0 * head_dim, head_dim, 1.0f, dk.data(), head_dim);
            gemm_strided(true, false, blk.keys, head_dim, blk.rows, 1.0f, group.p.data() + blk.row0 * ld, ld,
                         dout_rows.data() + blk.row0 * head_dim, head_dim, 1.0f, dv.data(), head_dim);
          });
        }
        ws.keys.scatter(dk.data(), head_dim, dq_h + width, row);
        ws.keys.scatter(dv.data(), head_dim, dq_h + 2 * width, row);
      }
    }
  }
}

}  // namespace muonrec::kernels::cpu
