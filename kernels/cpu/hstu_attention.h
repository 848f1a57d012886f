// CPU reference: HSTU pointwise attention (reference/MODELS.md, HSTU). uvqk is the SiLU-activated
// projection [B, T, 4*H*Dh] with the u, v, q, k blocks along the last axis (head h uses columns
// h*Dh..h*Dh+Dh of each block); valid is [B, T] (1 real, 0 padding); out is [B, T, H*Dh]. The
// relative bias is shared by the heads: pos_bias [2T-1] indexed by j - i + T - 1, and, when there
// are timestamps, time_bias [num_time_buckets] indexed by time_buckets [B, T, T] (values in
// [0, num_time_buckets)). Without timestamps time_bias and time_buckets are both null.
#pragma once

#include <cstdint>

namespace muonrec::kernels::cpu {

// Per head: z_ij = q_i.k_j + pos_bias[j-i+T-1] + time_bias[bucket_bij], w_ij = SiLU(z_ij) / T where
// j <= i and valid[j] (0 elsewhere: no softmax, so a row may be all zero), out_i = sum_j w_ij v_j.
// buckets[b, i, j] = hstu_time_bucket(ts[b, i+1] - ts[b, j]) (kernels/hstu_time_bucket.h).
void hstu_time_buckets(const int64_t* timestamps, int32_t* buckets, int64_t batch, int64_t seq);

void hstu_attention_forward(const float* uvqk, const float* valid, const float* pos_bias, const float* time_bias,
                            const int32_t* time_buckets, float* out, int64_t batch, int64_t seq, int64_t heads,
                            int64_t head_dim);
// From dout [B, T, H*Dh] writes all of duvqk [B, T, 4*H*Dh] (the u block is zero: u is used outside
// this op), all of dpos_bias [2T-1], and, when dtime_bias is non-null, all of dtime_bias
// [num_time_buckets]. The bias gradients are sums over (b, h, i, j) taken in a fixed order.
void hstu_attention_backward(const float* uvqk, const float* valid, const float* pos_bias, const float* time_bias,
                             const int32_t* time_buckets, const float* dout, float* duvqk, float* dpos_bias,
                             float* dtime_bias, int64_t batch, int64_t seq, int64_t heads, int64_t head_dim,
                             int64_t num_time_buckets);

}  // namespace muonrec::kernels::cpu
